"""The literal `llamafactory-cli train x.yaml` with a data_selection block, as a subprocess on CPU."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import REPO

RECIPE = REPO / "recipes" / "quickstart" / "tiny_qwen2vl_lora_mmssr.yaml"
CLI = Path(sys.executable).parent / "llamafactory-cli"


def _train(tmp_path, model, data, *overrides, env=None):
    cmd = [str(CLI), "train", str(RECIPE), f"model_name_or_path={model}",
           f"dataset_dir={data}", f"output_dir={tmp_path / 'out'}", "max_steps=1",
           f"data_selection.model_name_or_path={model}", *overrides]
    full_env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", **(env or {})}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, cwd=tmp_path, timeout=600)
    return proc, proc.stdout + proc.stderr


def _num_examples(log):
    found = re.findall(r"Num examples = ([\d,]+)", log)
    return int(found[-1].replace(",", "")) if found else None


def test_random_method_selects_registers_and_trains_on_subset(tmp_path, tiny_model, demo_data):
    proc, log = _train(tmp_path, tiny_model, demo_data, "data_selection.method=random",
                       "data_selection.budget=0.25")
    assert proc.returncode == 0, log[-3000:]
    registry = json.loads((demo_data / "dataset_info.json").read_text())
    names = [n for n in registry if n.startswith("mmssr_demo_random_b0.25_")]
    assert len(names) == 1
    entry = registry[names[0]]
    assert entry["mmssr"]["selected"] == 10
    assert len(json.loads((demo_data / entry["file_name"]).read_text())) == 10
    assert _num_examples(log) == 10


def test_without_block_llamafactory_is_unchanged(tmp_path, tiny_model, demo_data):
    config = yaml.safe_load(RECIPE.read_text())
    del config["data_selection"]
    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump(config))
    cmd = [str(CLI), "train", str(plain), f"model_name_or_path={tiny_model}",
           f"dataset_dir={demo_data}", f"output_dir={tmp_path / 'out'}", "max_steps=1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "[mmssr]" not in log
    assert _num_examples(log) == 40
    assert set(json.loads((demo_data / "dataset_info.json").read_text())) == {"mmssr_demo"}


def test_bad_block_fails_before_training_with_the_valid_keys(tmp_path, tiny_model, demo_data):
    proc, log = _train(tmp_path, tiny_model, demo_data, "data_selection.budgt=3")
    assert proc.returncode != 0
    assert "mmssr-plugin: error: unknown data_selection keys ['budgt']; valid keys: method" in log
    assert "Traceback" not in log


def test_hook_can_be_switched_off(tmp_path, tiny_model, demo_data):
    proc, log = _train(tmp_path, tiny_model, demo_data, "data_selection.method=random",
                       env={"MMSSR_DISABLE_HOOK": "1"})
    assert proc.returncode == 2
    assert "mmssr-plugin: error: the training config has a data_selection block, but " \
        "MMSSR_DISABLE_HOOK=1 switches the selection stage off" in log
    assert "Some keys are not used" not in log and "Traceback" not in log


def test_mmssr_method_scores_once_then_reuses(tmp_path, tiny_model, demo_data):
    proc, log = _train(tmp_path, tiny_model, demo_data)
    assert proc.returncode == 0, log[-3000:]
    assert "scoring 40 of 40 samples" in log
    registry = json.loads((demo_data / "dataset_info.json").read_text())
    (name,) = [n for n in registry if n.startswith("mmssr_demo_mmssr_b0.3_")]
    provenance = registry[name]["mmssr"]
    assert provenance["selected"] == 12 and provenance["pool_size"] == 40
    assert provenance["scorer_fingerprint"] and provenance["source"] == "mmssr_demo"
    rows = json.loads((demo_data / registry[name]["file_name"]).read_text())
    assert len(rows) == 12
    assert _num_examples(log) == 12
    assert "[mmssr] report: " in log

    again, log2 = _train(tmp_path, tiny_model, demo_data)
    assert again.returncode == 0, log2[-3000:]
    assert "reusing selection" in log2 and "scoring " not in log2
    assert _num_examples(log2) == 12

    other, log3 = _train(tmp_path, tiny_model, demo_data, "data_selection.budget=0.5")
    assert other.returncode == 0, log3[-3000:]
    assert "40 (0 computed now, 40 reused)" in log3
    assert _num_examples(log3) == 20


def test_mmssr_cli_train_runs_the_stage_explicitly(tmp_path, tiny_model, demo_data):
    cmd = [str(Path(sys.executable).parent / "mmssr-cli"), "train", str(RECIPE),
           f"model_name_or_path={tiny_model}", f"dataset_dir={demo_data}",
           f"output_dir={tmp_path / 'out'}", "max_steps=1", "data_selection.method=random",
           f"data_selection.model_name_or_path={tiny_model}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=600,
                          env={**os.environ, "MMSSR_DISABLE_HOOK": "1"})
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "[mmssr] resolved training config" in log
    assert _num_examples(log) == 12


def test_torchrun_without_the_launcher_selects_once_across_ranks(tmp_path, tiny_model, demo_data):
    """torchrun straight on launcher.py (no `launch()`): the read_args hook covers every rank."""
    import llamafactory.launcher as launcher

    bin_dir = str(Path(sys.executable).parent)
    cmd = [str(Path(bin_dir) / "torchrun"), "--nproc_per_node", "2", launcher.__file__, str(RECIPE),
           f"model_name_or_path={tiny_model}", f"dataset_dir={demo_data}",
           f"output_dir={tmp_path / 'out'}", "max_steps=1", "data_selection.backend=fake"]
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
           "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "world size: 2" in log
    assert log.count("40 computed now") == 1 and log.count("reusing selection") == 1
    assert _num_examples(log) == 12
