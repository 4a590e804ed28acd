"""The score and style rules: a teacher answer and a label line must both hold 0..5 scores and
known styles; nothing is ever guessed."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from mmssr_plugin.core.taxonomy import STYLES, Capability
from mmssr_plugin.curation.errors import InvalidAnswer

# Reasons a teacher answer is invalid (each is retried, then recorded as the rejection reason).
ANSWER_REASONS = ("not json", "bad shape", "missing capability", "bad score", "unknown style", "no style")


def check_scores(scores: Any, cap_ids: Iterable[str]) -> dict[str, int]:
    """The scores of ``cap_ids`` as ints 0..5 (extra ids are dropped).

    Raises:
        InvalidAnswer: ``bad shape`` (not an object), ``missing capability``, ``bad score``.
    """
    if not isinstance(scores, dict):
        raise InvalidAnswer("bad shape", f'"scores" must be an object, got {type(scores).__name__}')
    checked = {}
    for cap_id in cap_ids:
        if cap_id not in scores:
            raise InvalidAnswer("missing capability", f"no score for {cap_id!r}")
        value = scores[cap_id]
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 5:
            raise InvalidAnswer("bad score", f"{cap_id}: {value!r} is not an integer 0..5")
        checked[cap_id] = value
    return checked


def check_styles(styles: Any, required: bool) -> tuple[str, ...]:
    """Styles in canonical spelling (case and surrounding blanks ignored), order kept, no repeats.

    Raises:
        InvalidAnswer: ``bad shape`` (not a list of strings), ``unknown style``, ``no style``
            (only when ``required``).
    """
    if styles is None:
        if required:
            raise InvalidAnswer("no style", '"styles" is missing')
        return ()
    if not isinstance(styles, list) or not all(isinstance(s, str) for s in styles):
        raise InvalidAnswer("bad shape", '"styles" must be a list of strings')
    lookup = {name.lower(): name for name in STYLES}
    canonical: list[str] = []
    for text in styles:
        name = lookup.get(text.strip().lower())
        if name is None:
            raise InvalidAnswer("unknown style", f"{text!r} is not one of the {len(STYLES)} candidates")
        if name not in canonical:
            canonical.append(name)
    if required and not canonical:
        raise InvalidAnswer("no style", '"styles" is empty')
    return tuple(canonical)


def parse_answer(content: Any, capabilities: Sequence[Capability]) -> tuple[dict[str, int], tuple[str, ...]]:
    """Validate the teacher's message content: the JSON scores and styles it must hold.

    Raises:
        InvalidAnswer: with one of ANSWER_REASONS.
    """
    if not isinstance(content, str):
        raise InvalidAnswer("bad shape", "the message has no text content")
    text = content.strip()
    if text.startswith("```") and text.endswith("```"):  # a fenced block around the object
        text = text[3:-3].removeprefix("json").strip()
    try:
        answer = json.loads(text)
    except ValueError:
        raise InvalidAnswer("not json", repr(content[:200])) from None
    if not isinstance(answer, dict):
        raise InvalidAnswer("bad shape", f"expected a JSON object, got {type(answer).__name__}")
    scores = check_scores(answer.get("scores"), [cap.id for cap in capabilities])
    return scores, check_styles(answer.get("styles"), required=True)
