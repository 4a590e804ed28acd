"""The GPU benchmark's code path (a random scorer of a given shape built on the device, its
metrics, the authors' loop on a subset, digit parity), run on the CPU with a small shape."""

import json
import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
REPO = Path(__file__).resolve().parents[1]


def test_shape_benchmark_runs_on_cpu(tmp_path, monkeypatch):
    # The benchmark quiets LLaMA-Factory and transformers through the environment when imported;
    # keep that from leaking into the training subprocesses of later tests.
    for key in ("LLAMAFACTORY_VERBOSITY", "TRANSFORMERS_VERBOSITY"):
        monkeypatch.setenv(key, os.environ.get(key, "INFO"))
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    monkeypatch.setattr(sys, "argv", ["bench_scoring.py"])
    import bench_scoring

    out = tmp_path / "result.json"
    status = bench_scoring.main([
        "--shape", "test-small", "--device", "cpu", "--samples", "3", "--warmup", "1",
        "--image-size", "112", "--batch-size", "2", "--baseline-samples", "1", "--threads", "1",
        "--style-max-new-tokens", "4", "--json", str(out),
    ])
    result = json.loads(out.read_text())
    assert status == 0
    assert result["samples"] == 3 and result["samples_per_s"] > 0
    assert result["digit_comparisons"] > 0
    assert result["digit_matches"] + result["digit_near_ties"] == result["digit_comparisons"]
    assert result["mean_digit_mass"] > 0.3  # digits favoured: parity compares digit answers
    assert result["effective_tflops"] > 0 and 0 < result["forward_share"] <= 1
    assert result["computed_tokens"] > 0 and result["speedup"] > 0
