"""Customising the released scorer: convert -> LLaMA-Factory LoRA in the authors' token layout ->
scoring with the adapter, on the tiny llava_qwen checkpoint."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mmssr_plugin.core.taxonomy import resolve_capabilities  # noqa: E402
from mmssr_plugin.data.load import load_samples  # noqa: E402
from mmssr_plugin.engines import get_engine  # noqa: E402
from mmssr_plugin.engines.hf.llava_qwen_checkpoint import UnsupportedCheckpoint  # noqa: E402
from mmssr_plugin.engines.hf.llava_qwen_convert import convert_llava_qwen  # noqa: E402
from mmssr_plugin.engines.hf.llava_qwen_modeling import IMAGE_SLOT_ID  # noqa: E402
from mmssr_plugin.testing.tiny_llava_qwen import build_tiny_llava_qwen  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEMO_DIR, DEMO = ROOT / "data_info", "mmssr_demo"
CAPS = resolve_capabilities("spatial,ocr")


@pytest.fixture(scope="module")
def converted(tmp_path_factory) -> Path:
    return convert_llava_qwen(build_tiny_llava_qwen(), tmp_path_factory.mktemp("lf") / "tiny-lf")


@pytest.fixture(scope="module")
def scorer_data(tmp_path_factory) -> Path:
    """``mmssr-cli build-scorer-data`` output for hand-written labels of the demo pool."""
    from mmssr_plugin.cli import main

    folder = tmp_path_factory.mktemp("scorer_data")
    samples = [s for s in load_samples(DEMO_DIR, DEMO) if s.ok and s.images][:6]
    with open(folder / "labels.jsonl", "w") as handle:
        for k, sample in enumerate(samples):
            handle.write(json.dumps({"uid": sample.uid, "scores": {"spatial": k % 6, "ocr": 5 - k % 6},
                                     "styles": ["multi-choice"]}) + "\n")
    status = main(["build-scorer-data", "--labels", str(folder / "labels.jsonl"), "--dataset-dir",
                   str(DEMO_DIR), "--dataset", DEMO, "--output-dir", str(folder / "data"),
                   "--val-ratio", "0.2"])
    assert status == 0
    return folder / "data"


def test_converted_checkpoint_scores_like_the_released_one(converted):
    samples = [s for s in load_samples(DEMO_DIR, DEMO) if s.ok][:2]
    released = get_engine("hf", model_name_or_path=str(build_tiny_llava_qwen()), infer_dtype="float32")
    ours = get_engine("hf", model_name_or_path=str(converted), infer_dtype="float32")
    assert ours.identity()["layout"] == "llava_qwen"
    np.testing.assert_allclose(ours.score(samples, CAPS), released.score(samples, CAPS), atol=1e-6)
    config = json.loads((converted / "config.json").read_text())
    assert config["model_type"] == "mmssr_llava_qwen" and "AutoModelForCausalLM" in config["auto_map"]
    assert convert_llava_qwen(build_tiny_llava_qwen(), converted) == converted  # safe to re-run
    with pytest.raises(UnsupportedCheckpoint, match="not a conversion of"):
        convert_llava_qwen(build_tiny_llava_qwen(), DEMO_DIR)
    with pytest.raises(UnsupportedCheckpoint, match="already a converted checkpoint"):
        convert_llava_qwen(converted, converted.parent / "again")


def test_preflight_accepts_released_and_converted_folders(converted, tmp_path):
    """``template`` does not apply to the llava_qwen layout: its default and the training template
    pass, for the released and the converted folder alike; a LLaMA-Factory styler needs its own."""
    from mmssr_plugin.llamafactory.config import DataSelectionError
    from mmssr_plugin.llamafactory.preflight import check_scorer
    from mmssr_plugin.scoring.config import ScorerConfig

    for folder in (build_tiny_llava_qwen(), converted):
        for template in ("qwen2_vl", "mmssr_llava_qwen"):
            check_scorer(ScorerConfig(model_name_or_path=str(folder), template=template))
            check_scorer(ScorerConfig(model_name_or_path=str(folder), template=template,
                                      styler_model_name_or_path=str(folder), model_layout="llava_qwen"))
    styler = tmp_path / "qwen2vl-styler"
    styler.mkdir()
    (styler / "config.json").write_text(json.dumps({"model_type": "qwen2_vl"}))
    mixed = {"model_name_or_path": str(converted), "styler_model_name_or_path": str(styler)}
    check_scorer(ScorerConfig(**mixed, template="qwen2_vl"))  # the styler's template
    with pytest.raises(DataSelectionError, match="data_selection.styler_model_name_or_path loads "
                                                 "through LLaMA-Factory"):
        check_scorer(ScorerConfig(**mixed, template="mmssr_llava_qwen"))
    with pytest.raises(DataSelectionError, match="unknown template 'qwen2vl'"):
        check_scorer(ScorerConfig(**mixed, template="qwen2vl"))


def test_training_ids_equal_the_scoring_prompt(converted, scorer_data):
    import llamafactory.train.tuner  # noqa: F401  (the start-up hook registers the template)
    from llamafactory.data import get_template_and_fix_tokenizer
    from llamafactory.data.processor.supervised import SupervisedDatasetProcessor
    from llamafactory.extras.constants import IGNORE_INDEX
    from llamafactory.hparams import DataArguments
    from PIL import Image
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(converted)
    data_args = DataArguments(template="mmssr_llava_qwen", cutoff_len=4096)
    template = get_template_and_fix_tokenizer(tokenizer, data_args)
    processor = SupervisedDatasetProcessor(template=template, tokenizer=tokenizer, processor=None,
                                           data_args=data_args)
    engine = get_engine("hf", model_name_or_path=str(converted), infer_dtype="float32")
    records = json.loads((scorer_data / "mmssr_scorer_train.json").read_text())
    by_image = {s.images[0]: s for s in load_samples(DEMO_DIR, DEMO) if s.ok and s.images}
    record = records[0]
    sample = by_image[record["images"][0]]
    user, answer = record["messages"]
    ids, labels = processor._encode_data_example(
        prompt=[user], response=[answer], system=record["system"], tools="",
        images=record["images"], videos=[], audios=[])
    encoded = engine.scorer.encode(sample, [user["content"].rsplit("\n", 1)[1]])
    prompt = encoded.prefix + encoded.suffixes[0]
    assert ids[: len(prompt)] == prompt and ids.count(IMAGE_SLOT_ID) == 730
    answer_ids = ids[len(prompt):]
    assert tokenizer.decode(answer_ids) == answer["content"] + "<|im_end|>\n"
    assert labels == [IGNORE_INDEX] * len(prompt) + answer_ids
    # LLaMA-Factory's dummy image (batches without images) gets the same image layout.
    dummy, _ = template.mm_plugin.process_token_ids(
        tokenizer.encode("<image>", add_special_tokens=False), None, [Image.new("RGB", (8, 8))],
        [], [], tokenizer, None)
    assert dummy == [IMAGE_SLOT_ID] * 730 + tokenizer.encode("\n", add_special_tokens=False)


@pytest.mark.slow
def test_lora_training_then_selection_with_the_adapter(converted, scorer_data, tmp_path):
    from mmssr_plugin.llamafactory.stage import apply_data_selection
    from mmssr_plugin.scoring.store import ScoreStore

    adapter = tmp_path / "adapter"
    command = [
        sys.executable, "-m", "llamafactory.cli", "train",
        str(ROOT / "recipes/scorer/mmssr_7b_scorer_lora.yaml"), f"model_name_or_path={converted}",
        f"dataset_dir={scorer_data}", f"output_dir={adapter}", "bf16=false", "use_cpu=true",
        "max_steps=3", "per_device_train_batch_size=2", "gradient_accumulation_steps=1",
        "learning_rate=0.01", "lr_scheduler_type=constant", "warmup_ratio=0",
        "eval_strategy='no'", "load_best_model_at_end=false", "preprocessing_num_workers=1",
        "dataloader_num_workers=0", "lora_rank=4", "lora_alpha=8", "logging_steps=1",
        "save_steps=1000", "plot_loss=false",
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert not any("vision_tower" in t or "mm_projector" in t for t in config["target_modules"])

    pool = tmp_path / "pool"
    shutil.copytree(DEMO_DIR, pool, ignore=shutil.ignore_patterns(".mmssr_cache", "mmssr_subsets"))
    block = {"method": "mmssr", "model_name_or_path": str(converted), "budget": 0.25,
             "capabilities": ["spatial", "ocr"], "report": False, "infer_dtype": "float32",
             "min_digit_mass": 0.0}
    args = {"dataset": DEMO, "dataset_dir": str(pool)}
    apply_data_selection({**args, "data_selection": block}, log=lambda line: None)
    apply_data_selection({**args, "data_selection": {**block, "adapter_name_or_path": str(adapter)}},
                         log=lambda line: None)
    stores = sorted({json.loads(m.read_text())["score_store"]
                     for m in (pool / ".mmssr_cache" / "selections").glob("*.json")})
    assert len(stores) == 2  # the adapter has a fingerprint of its own
    fingerprints = [json.loads((Path(s) / "fingerprint.json").read_text()) for s in stores]
    assert {f["engine"]["adapter"] is None for f in fingerprints} == {True, False}
    uids = [s.uid for s in load_samples(pool, DEMO) if s.ok]
    base, tuned = (ScoreStore(Path(s).parent, f).read(uids) for s, f in zip(stores, fingerprints))
    assert not np.allclose(base.probs, tuned.probs, atol=1e-4)  # the adapter changes the scores
