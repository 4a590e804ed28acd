"""Shared fixtures: the tiny offline VLM, a writable copy of the bundled demo data, and LoRA
training of the tiny scorer with the CPU recipe."""

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """The tiny Qwen2-VL scorer/trainee, built once per test session (cached on disk)."""
    from mmssr_plugin.testing.tiny_vlm import build_tiny_qwen2vl

    return build_tiny_qwen2vl()


@pytest.fixture()
def demo_data(tmp_path) -> Path:
    """A private copy of data_info/ (dataset_info.json + the demo pool) to register subsets in."""
    target = tmp_path / "data"
    shutil.copytree(REPO / "data_info", target, ignore=shutil.ignore_patterns(".mmssr_cache", "mmssr_subsets"))
    return target


@pytest.fixture()
def train_tiny_scorer(tiny_model, tmp_path) -> Callable[[Path, Path], None]:
    """``train(data_dir, adapter_dir)``: LoRA-train the tiny scorer on scorer data with
    recipes/scorer/tiny_cpu_lora_scorer.yaml through ``llamafactory-cli train``, as a user would."""

    def train(data: Path, adapter: Path) -> None:
        command = [
            sys.executable, "-m", "llamafactory.cli", "train", str(REPO / "recipes/scorer/tiny_cpu_lora_scorer.yaml"),
            f"model_name_or_path={tiny_model}", f"dataset_dir={data}", f"output_dir={adapter}",
        ]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
                                check=False)
        assert result.returncode == 0, result.stderr[-3000:]

    return train
