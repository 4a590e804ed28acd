"""Golden tests: the scorer's user text must match the authors' strings byte for byte."""

import pytest

from mmssr_plugin.core.prompts import all_queries, format_convs, scorer_user_text
from mmssr_plugin.core.taxonomy import (
    CAPABILITY_QUERY,
    DEFAULT_CAPABILITIES,
    STYLE_QUERY,
    STYLES,
    Capability,
    resolve_capabilities,
)


def test_query_strings_are_the_released_ones():
    assert CAPABILITY_QUERY.format(cap_keyword="optical character recognition") == (
        "On a scale of 0 to 5, how do you rate the helpfulness of the VQA instance in training a "
        "Multimodal Large Language Model for optical character recognition?"
    )
    assert STYLE_QUERY == (
        "Interaction style candidates: [multi-choice, coordinate, yes/no, word/short-phrase, "
        "short description, detailed description, comparison, chain-of-thought (step-by-step), "
        "specified style]\nStyles: "
    )
    assert len(STYLES) == 9 and len(DEFAULT_CAPABILITIES) == 14


def test_single_turn():
    assert format_convs(["<image>\nWhat is in the image?", "A cat."]) == (
        "Question: <image>\nWhat is in the image? Answer: A cat."
    )


def test_multi_turn_with_strip_character_set_quirk():
    turns = ["<image>\nWhat color is the bus?", "Red.", "is it parked next to the station", "Yes."]
    assert format_convs(turns) == (
        "Question: <image>\nWhat color is the bus? Answer: Red.\n"
        "Question: parked next to the sta Answer: Yes."
    )


def test_question_prefix_is_stripped_as_characters_from_both_ends():
    # Leading "Question: Quote t" and trailing "tion", "t" go: every one is in the set.
    assert format_convs(["Question: Quote the caption", "ok"]) == "Question: he cap Answer: ok"
    # Lowercase "q" is not in the set, so the trailing strip stops there.
    assert format_convs(["  neon sign: question", "x"]) == "Question: gn: q Answer: x"


def test_odd_length_conversation_has_empty_last_answer():
    assert format_convs(["<image>\nName the animal.", "Dog.", "And its colour?"]) == (
        "Question: <image>\nName the animal. Answer: Dog.\nQuestion: And its colour? Answer: "
    )


def test_hint_turns_are_kept_unchanged():
    hint_image = "<image>\nHint: Please answer the question.\nQuestion: What is 2+2?"
    hint_text = "Hint: think step by step.\nWhich is larger, 0.7 or 0.65?"
    assert format_convs([hint_image, "4"]) == hint_image + " Answer: 4"
    assert format_convs([hint_text, "0.7"]) == hint_text + " Answer: 0.7"
    # Only a leading "Hint:" counts; a leading space sends the turn through the strip branch.
    assert format_convs([" Hint: x", "y"]) == "Question: Hint: x Answer: y"


def test_text_only_conversation_and_full_user_text():
    text = scorer_user_text(["Translate 'good morning' into French.", "Bonjour."], STYLE_QUERY)
    assert text == (
        "Question: Translate 'good morning' into French. Answer: Bonjour.\n" + STYLE_QUERY
    )
    cap = Capability("ocr", "optical character recognition")
    assert scorer_user_text(["<image>\nRead the sign.", "STOP"], cap.query) == (
        "Question: <image>\nRead the sign. Answer: STOP\nOn a scale of 0 to 5, how do you rate the "
        "helpfulness of the VQA instance in training a Multimodal Large Language Model for "
        "optical character recognition?"
    )


def test_all_queries_order():
    caps = resolve_capabilities("ocr,spatial")
    queries = all_queries(caps)
    assert queries == [caps[0].query, caps[1].query, STYLE_QUERY]
    assert all_queries(caps, with_style=False) == queries[:2]


def test_resolve_capabilities_keeps_order_and_accepts_custom():
    caps = resolve_capabilities(
        "medical,ocr", keywords={"medical": "medical image understanding", "ocr": "reading text"}
    )
    assert [(c.id, c.keyword) for c in caps] == [
        ("medical", "medical image understanding"),
        ("ocr", "reading text"),
    ]
    everything = resolve_capabilities("all", keywords={"medical": "medical imaging"})
    assert [c.id for c in everything] == list(DEFAULT_CAPABILITIES) + ["medical"]


@pytest.mark.parametrize(
    ("selected", "keywords", "message"),
    [
        ("ocr,nope", None, "unknown capabilities ['nope']"),
        ("ocr,ocr", None, "capabilities listed twice: ['ocr']"),
        ("", None, "the capability list is empty"),
        ("all", {"bad id": "x"}, "capability id 'bad id'"),
        ("all", {"med": " "}, "capability 'med' needs a non-empty keyword"),
    ],
)
def test_resolve_capabilities_errors(selected, keywords, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        resolve_capabilities(selected, keywords)
