"""Recognising, refusing and quantizing llava_qwen checkpoints; the authors' parse settings."""

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from mmssr_plugin.core.score_parsing import parse_score
from mmssr_plugin.core.style_parsing import parse_styles
from mmssr_plugin.engines.hf.llava_qwen_checkpoint import (UnsupportedCheckpoint, load_spec,
                                                            resolve_layout)
from mmssr_plugin.scoring.config import ScorerConfig

torch = pytest.importorskip("torch")

from mmssr_plugin.core.taxonomy import resolve_capabilities  # noqa: E402
from mmssr_plugin.data.sample import Sample  # noqa: E402
from mmssr_plugin.engines import engine_identity, get_engine  # noqa: E402
from mmssr_plugin.testing.tiny_llava_qwen import build_tiny_llava_qwen  # noqa: E402

CAPS = resolve_capabilities()


@pytest.fixture(scope="module")
def checkpoint() -> Path:
    return build_tiny_llava_qwen()


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> list[Sample]:
    from PIL import Image

    path = tmp_path_factory.mktemp("img") / "a.png"
    Image.new("RGB", (40, 60), (10, 200, 90)).save(path)
    return [Sample("t:0:0", "t", 0, ("<image>\nWhat is shown?", "A square."), (str(path),)),
            Sample("t:1:1", "t", 1, ("How many dogs?", "2"))]


@pytest.fixture(scope="module")
def full_precision(checkpoint, samples):
    engine = get_engine("hf", model_name_or_path=str(checkpoint), infer_dtype="float32")
    return engine.score(samples, CAPS[:3])


def _variant(checkpoint: Path, tmp_path: Path, **changes) -> Path:
    folder = tmp_path / "variant"
    shutil.copytree(checkpoint, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_layout_is_detected_from_config_json(checkpoint, tmp_path):
    assert resolve_layout("auto", str(checkpoint)) == "llava_qwen"
    lmms = _variant(checkpoint, tmp_path, model_type="llava")  # lmms-lab's uploads say llava
    assert resolve_layout("auto", str(lmms)) == "llava_qwen"
    native = tmp_path / "hf-llava"
    native.mkdir()
    (native / "config.json").write_text(json.dumps({"model_type": "llava", "text_config": {}}))
    assert resolve_layout("auto", str(native)) == "llamafactory"
    assert resolve_layout("auto", "Qwen/Qwen2-VL-2B-Instruct") == "llamafactory"
    assert resolve_layout("llava_qwen", "anything") == "llava_qwen"
    with pytest.raises(ValueError, match="model_layout must be one of"):
        resolve_layout("llava", str(checkpoint))
    spec = load_spec(checkpoint)  # anyres_max_9 and the unused mm_* fields are accepted
    assert spec.config["image_aspect_ratio"] == "anyres_max_9"
    assert not any(key.startswith("mm_") for key in spec.text_config)


@pytest.mark.parametrize("changes, message", [
    ({"mm_projector_type": "linear"}, "mm_projector_type 'linear' is not supported"),
    ({"mm_vision_tower": "openai/clip-vit-large-patch14-336"}, "only SigLIP so400m"),
    ({"mm_patch_merge_type": "flat"}, "mm_patch_merge_type 'flat' is not supported"),
])
def test_unsupported_configs_are_refused_in_one_line(checkpoint, tmp_path, changes, message):
    with pytest.raises(UnsupportedCheckpoint, match=message) as error:
        get_engine("hf", model_name_or_path=str(_variant(checkpoint, tmp_path, **changes)),
                   infer_dtype="float32")
    assert "\n" not in str(error.value)


def test_identity_names_the_layout_and_parsing_only_when_they_differ(checkpoint, tmp_path):
    identity = engine_identity("hf", model_name_or_path=str(checkpoint))
    assert identity["layout"] == "llava_qwen" and "score_parsing" not in identity
    authors = engine_identity("hf", model_name_or_path=str(checkpoint),
                              score_parsing="authors_int", style_parsing="authors")
    assert authors["score_parsing"] == "authors_int" and authors["style_parsing"] == "authors"
    other = tmp_path / "qwen"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "qwen2_vl"}))
    assert "layout" not in engine_identity("hf", model_name_or_path=str(other))
    config = ScorerConfig(model_name_or_path=str(checkpoint), score_parsing="authors_int")
    assert engine_identity(config)["score_parsing"] == "authors_int"
    with pytest.raises(ValueError, match="score_parsing must be one of"):
        ScorerConfig(model_name_or_path="x", score_parsing="int")


@pytest.mark.parametrize("bits, tolerance", [(8, 0.05), (4, 0.5)])
def test_bitsandbytes_loads_and_scores(checkpoint, samples, full_precision, bits, tolerance):
    engine = get_engine("hf", model_name_or_path=str(checkpoint), quantization_bit=bits,
                        infer_dtype="float32")
    probs = engine.score(samples, CAPS[:3])
    assert probs.shape == (2, 3, 6) and np.isfinite(probs).all()
    assert np.abs(probs - full_precision).max() < tolerance
    assert engine.identity()["quantization"] == f"bnb-{bits}bit"


def test_authors_int_scores_parse_the_greedy_answers(checkpoint, samples):
    from mmssr_plugin.engines.hf.answers import authors_int_probs, generate_answers

    engine = get_engine("hf", model_name_or_path=str(checkpoint), infer_dtype="float32",
                        score_parsing="authors_int", style_parsing="authors")
    probs, styles = engine.score_and_style(samples, CAPS[:4])
    answers = generate_answers(engine.scorer, samples, [c.query for c in CAPS[:4]], 1)
    np.testing.assert_array_equal(probs, authors_int_probs(answers))
    digits = get_engine("hf", model_name_or_path=str(checkpoint), infer_dtype="float32")
    greedy_first = digits.score(samples, CAPS[:4]).argmax(-1)
    for i, row in enumerate(answers):
        for c, answer in enumerate(row):
            assert answer[:1] == str(greedy_first[i, c])  # the first answer token is the argmax
    assert [s.raw for s in styles] == [s.raw for s in digits.styles(samples)]


@pytest.mark.parametrize("answer, score", [
    ("3", 3), (" 3\n", 3), ("+3", 3), ("03", 3), ("10", None), ("5.", None), ("3/5", None),
    ("three", None), ("", None), ("4 ", 4),
])
def test_authors_int(answer, score):
    value = parse_score(answer)
    assert (math.isnan(value) and score is None) or value == score


def test_authors_int_probs_one_hot_or_missing():
    from mmssr_plugin.engines.hf.answers import authors_int_probs

    probs = authors_int_probs([["3", "10", "5."], ["0", " 5", "x"]])
    assert probs[0, 0].tolist() == [0, 0, 0, 1, 0, 0] and probs[1, 1].tolist() == [0] * 5 + [1]
    assert np.isnan(probs[0, 1]).all() and np.isnan(probs[0, 2]).all() and np.isnan(probs[1, 2]).all()


@pytest.mark.parametrize("text, authors, default", [
    ("multi-choice, yes/no", ("multi-choice", "yes/no"), ("multi-choice", "yes/no")),
    ("Yes/No, comparison", ("comparison",), ("yes/no", "comparison")),
    ("[multi-choice, coordinate]", (), ("multi-choice", "coordinate")),
    ("yes/no.", (), ("yes/no",)),
    (" short description ,short description", ("short description",), ("short description",)),
])
def test_authors_style_split_against_the_default(text, authors, default):
    assert parse_styles(text, authors_rules=True).styles == authors
    assert parse_styles(text).styles == default


def test_score_command_on_a_llava_qwen_checkpoint(checkpoint, tmp_path, capsys):
    from PIL import Image

    from mmssr_plugin.cli import main

    Image.new("RGB", (30, 30), (250, 10, 10)).save(tmp_path / "r.png")
    pool = [{"idx": 0, "image": "r.png", "conversations": [
        {"from": "human", "value": "<image>\nWhat color?"}, {"from": "gpt", "value": "Red."}]},
        {"idx": 1, "conversations": [
            {"from": "human", "value": "Name a prime."}, {"from": "gpt", "value": "7"}]}]
    (tmp_path / "pool.json").write_text(json.dumps(pool))
    status = main(["score", "--pool", str(tmp_path / "pool.json"), "--model", str(checkpoint),
                   "--infer-dtype", "float32", "--capabilities", "spatial,ocr", "--workers", "1",
                   "--score-parsing", "authors_int", "--style-parsing", "authors",
                   "--no-progress"])
    out = capsys.readouterr()
    assert status == 0, out.err
    fingerprints = list((tmp_path / ".mmssr_cache").rglob("fingerprint.json"))
    assert len(fingerprints) == 1
    engine = json.loads(fingerprints[0].read_text())["engine"]
    assert engine["layout"] == "llava_qwen" and engine["score_parsing"] == "authors_int"
