"""The tiny custom-capability loop end to end, ending with the scorer's evaluation: curate against
a local teacher -> build-scorer-data -> LoRA train -> eval-scorer (base vs base + adapter) -> the
selection stage finds the evaluation by the scorer's identity."""

from __future__ import annotations

import dataclasses
import json

import pytest
from test_curate import CAPS_ARG, DEMO, MYCAP, FakeTeacher, demo_caps, mmssr

from mmssr_plugin.data.load import load_samples
from mmssr_plugin.evaluation.records import find_scorer_evaluation, low_digit_warning, report_link
from mmssr_plugin.llamafactory.config import DataSelectionConfig

pytestmark = pytest.mark.slow


def test_labels_to_evaluated_scorer(tmp_path, tiny_model, demo_data, train_tiny_scorer):
    labels = tmp_path / "labels.jsonl"
    with FakeTeacher(load_samples(demo_data, DEMO), demo_caps()) as teacher:
        status, _, err = mmssr(
            "curate", "--dataset-dir", demo_data, "--dataset", DEMO, "--num-samples", "16", "--seed", "7",
            "--capabilities", CAPS_ARG, "--keyword", f"{MYCAP[0]}={MYCAP[1]}", "--base-url", teacher.url,
            "--model", "fake-teacher", "--output", labels, "--concurrency", "4",
        )
    assert status == 0, err
    data = tmp_path / "scorer_data"
    status, _, err = mmssr("build-scorer-data", "--labels", labels, "--dataset-dir", demo_data, "--dataset", DEMO,
                           "--output-dir", data, "--val-ratio", "0.25")
    assert status == 0, err
    val_samples = len(json.loads((data / "mmssr_scorer_train_val.json").read_text())) // 4  # 3 caps + style
    adapter = tmp_path / "adapter"
    train_tiny_scorer(data, adapter)

    status, _, err = mmssr(
        "eval-scorer", "--val-split", data, "--scorer", f"name=base,model={tiny_model}",
        "--scorer", f"name=tuned,model={tiny_model},adapter={adapter}", "--output-dir", tmp_path / "eval",
    )
    assert status == 0, err
    document = json.loads((tmp_path / "eval" / "evaluation.json").read_text())
    assert document["held_out"]["samples"] == val_samples == 4
    assert [c["id"] for c in document["capabilities"]] == ["spatial", "ocr", MYCAP[0]]
    base, tuned = document["scorers"]
    assert (base["name"], tuned["name"]) == ("base", "tuned")
    assert base["identity"]["adapter"] is None and tuned["identity"]["adapter"]["sha256"]
    for scorer in (base, tuned):
        assert scorer["overall"]["samples"] == 3 * val_samples
        for figures in scorer["capabilities"].values():
            assert figures["samples"] == val_samples == figures["answered"] + figures["non_digit"]
    assert base["overall"]["mean_digit_mass"] != tuned["overall"]["mean_digit_mass"]

    # Five LoRA steps on the tiny random model move its mass from the digits to <|im_end|>: the
    # evaluation shows it, and the selection stage finds the record by the scorer's identity.
    assert base["overall"]["non_digit_share"] < 0.5 < tuned["overall"]["non_digit_share"]
    cache = demo_data / ".mmssr_cache"
    config = DataSelectionConfig.from_dict({
        "model_name_or_path": str(tiny_model), "capabilities": ["spatial", "ocr", MYCAP[0]],
        "capability_keywords": dict([MYCAP]), "adapter_name_or_path": str(adapter)})
    assert report_link(find_scorer_evaluation(cache, config.scorer))["name"] == "tuned"
    warning = low_digit_warning(find_scorer_evaluation(cache, config.scorer))
    assert warning and "(tuned)" in warning and str((tmp_path / "eval" / "evaluation.html").resolve()) in warning
    base_record = find_scorer_evaluation(cache, dataclasses.replace(config.scorer, adapter_name_or_path=None))
    assert base_record["name"] == "base" and low_digit_warning(base_record) is None
