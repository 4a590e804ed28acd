"""Shared fixtures: the tiny offline VLM and a writable copy of the bundled demo data."""

import shutil
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
