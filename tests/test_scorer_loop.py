"""The custom-capability loop end to end: teacher labels -> scorer data -> LoRA scorer adapter.

Also checks that every shipped scorer and training recipe only uses LLaMA-Factory 0.9.5 argument
names, a known template and a valid ``data_selection`` block.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from test_curate import DEMO, DEMO_DIR, MYCAP, FakeTeacher, demo_caps, mmssr

from mmssr_plugin.curation.pick import pick_samples
from mmssr_plugin.llamafactory.stage import apply_data_selection
from mmssr_plugin.data.load import load_samples
from mmssr_plugin.scoring.store import ScoreStore

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
SCORER_RECIPES = sorted((RECIPES / "scorer").glob("*.yaml"))
TRAIN_RECIPES = sorted((RECIPES / "train").glob("*_mmssr.yaml"))


def test_labels_to_scorer_adapter(tmp_path, tiny_model, train_tiny_scorer):
    samples = load_samples(DEMO_DIR, DEMO)
    labels = tmp_path / "labels.jsonl"
    with FakeTeacher(samples, demo_caps()) as teacher:
        first = pick_samples(samples, 12, 7)[0]
        teacher.script = {first.uid: ["500", "garbage"]}
        status, out, err = mmssr(
            "curate", "--dataset-dir", DEMO_DIR, "--dataset", DEMO, "--num-samples", "12", "--seed", "7",
            "--capabilities", "spatial,ocr,mycap", "--keyword", f"{MYCAP[0]}={MYCAP[1]}",
            "--base-url", teacher.url, "--model", "fake-teacher", "--output", labels,
            "--retry-base-delay", "0.01", "--concurrency", "4",
        )
    assert status == 0, err
    assert "accepted: 12; rejected: 0" in out and "retries: 2" in out

    data = tmp_path / "scorer_data"
    status, out, err = mmssr(
        "build-scorer-data", "--labels", labels, "--dataset-dir", DEMO_DIR, "--dataset", DEMO,
        "--output-dir", data, "--val-ratio", "0.2",
    )
    assert status == 0, err
    train = json.loads((data / "mmssr_scorer_train.json").read_text())
    val = json.loads((data / "mmssr_scorer_train_val.json").read_text())
    assert (len(train), len(val)) == (10 * 4, 2 * 4)  # 3 capabilities + style per sample
    custom = [r for r in train + val if r["messages"][0]["content"].endswith("for reading analog clocks?")]
    assert len(custom) == 12 and all(r["messages"][1]["content"] in "012345" for r in custom)

    adapter = tmp_path / "adapter"
    train_tiny_scorer(data, adapter)
    assert (adapter / "adapter_model.safetensors").is_file()
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and Path(config["base_model_name_or_path"]) == Path(tiny_model)
    evals = json.loads((adapter / "eval_results.json").read_text())
    assert evals["eval_loss"] == evals["eval_loss"]  # a number, not NaN: the val split was read

    # The tuned scorer in a data_selection run: base + adapter, custom capability included.
    pool = tmp_path / "pool"
    shutil.copytree(DEMO_DIR, pool)
    block = {"method": "mmssr", "model_name_or_path": str(tiny_model), "budget": 0.25,
             "capabilities": ["spatial", "ocr", MYCAP[0]], "capability_keywords": {MYCAP[0]: MYCAP[1]},
             "ranking": "expected", "report": False,
             # Five LoRA steps move the tiny random model's mass towards <|im_end|>; keep its
             # low-mass digit answers usable so both runs select.
             "min_digit_mass": 0.01}
    args = {"dataset": DEMO, "dataset_dir": str(pool)}
    base_run = apply_data_selection({**args, "data_selection": block}, log=lambda line: None)
    tuned_run = apply_data_selection(
        {**args, "data_selection": {**block, "adapter_name_or_path": str(adapter)}}, log=lambda line: None
    )
    assert base_run["dataset"] != tuned_run["dataset"]
    manifests = sorted((pool / ".mmssr_cache" / "selections").glob("*.json"))
    stores = {json.loads(m.read_text())["score_store"] for m in manifests}
    assert len(stores) == 2  # the adapter changes the fingerprint: nothing stale is reused
    uids = [s.uid for s in load_samples(pool, DEMO) if s.ok]
    base_scores, tuned_scores = (
        ScoreStore(Path(store).parent, json.loads((Path(store) / "fingerprint.json").read_text())).read(uids)
        for store in sorted(stores)
    )
    assert base_scores.scored.all() and tuned_scores.scored.all()
    assert not np.allclose(base_scores.probs, tuned_scores.probs, atol=1e-4)


def _lf_argument_names() -> set[str]:
    from llamafactory.hparams import (
        DataArguments,
        FinetuningArguments,
        GeneratingArguments,
        ModelArguments,
        TrainingArguments,
    )

    classes = (ModelArguments, DataArguments, TrainingArguments, FinetuningArguments, GeneratingArguments)
    return {f.name for cls in classes for f in dataclasses.fields(cls)}


@pytest.fixture(scope="module")
def lf_names() -> set[str]:
    return _lf_argument_names()


@pytest.mark.parametrize("recipe", SCORER_RECIPES + TRAIN_RECIPES, ids=lambda p: p.name)
def test_recipes_are_valid_llamafactory_configs(recipe, lf_names):
    import llamafactory.train.tuner  # noqa: F401  (the start-up hook registers the plugin's templates)
    from llamafactory.data.template import TEMPLATES

    config = yaml.safe_load(recipe.read_text())
    selection = config.pop("data_selection", None)
    assert not set(config) - lf_names, f"unknown LLaMA-Factory keys {set(config) - lf_names}"
    assert config["stage"] == "sft" and config["report_to"] == "none" and config["template"] in TEMPLATES
    if config.get("quantization_bit"):
        assert config["quantization_bit"] == 4 and config["quantization_method"] == "bnb"
    if recipe.parent.name == "scorer":
        assert config["finetuning_type"] == "lora" and config["lora_target"] == "all"
        assert (config["dataset"], config["eval_dataset"]) == ("mmssr_scorer_train", "mmssr_scorer_train_val")
        assert config["dataset_dir"] == "data/mmssr_scorer"
        assert config.get("bf16") or config.get("use_cpu")
        assert selection is None
    else:
        from mmssr_plugin.llamafactory.config import DataSelectionConfig

        parsed = DataSelectionConfig.from_dict(selection)
        assert parsed.selection.method == "mmssr" and parsed.scorer.adapter_name_or_path
        assert parsed.scorer.template == config["template"]
        assert parsed.scorer.quantization_bit == config.get("quantization_bit")
        if "deepspeed" in config:
            deepspeed = json.loads((ROOT / config["deepspeed"]).read_text())
            assert deepspeed["zero_optimization"]["stage"] == 3
            assert deepspeed["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True
            assert config["finetuning_type"] == "full"
