"""Failures are not results: a failed sample is scored again once its cause is gone, its record
names the row and the image, and stale temporaries of killed writers leave the store."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from conftest import REPO
from mmssr_plugin.data.failures import FailureRecord, failure_record, sample_failures
from mmssr_plugin.data.load import load_samples
from mmssr_plugin.llamafactory.stage import apply_data_selection
from mmssr_plugin.scoring.config import ScorerConfig
from mmssr_plugin.scoring.failures import failure_cause, failure_stands
from mmssr_plugin.scoring.store import ScoreStore, score_fingerprint
from mmssr_plugin.core.taxonomy import resolve_capabilities
from mmssr_plugin.engines import engine_identity

MMSSR_CLI = str(Path(sys.executable).parent / "mmssr-cli")
IMAGE = "mmssr_demo/images/coco/005.png"


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def _score(data: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [MMSSR_CLI, "score", "--dataset", "mmssr_demo", "--dataset-dir", str(data),
               "--backend", "fake", "--no-progress", "--shard-size", "16", *extra]
    result = subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=120)
    assert result.returncode == 0, result.stderr
    return result


def _selected_rows(data: Path) -> list[dict]:
    block = {"method": "mmssr", "backend": "fake", "budget": 1.0, "report": False,
             "shard_size": 16}
    out = apply_data_selection({"dataset": "mmssr_demo", "dataset_dir": str(data),
                                "data_selection": block}, log=lambda line: None)
    entry = json.loads((data / "dataset_info.json").read_text())[out["dataset"]]
    return json.loads((data / entry["file_name"]).read_text())


def test_a_restored_image_is_scored_again_and_selected(demo_data, tmp_path):
    reference = tmp_path / "reference"
    shutil.copytree(demo_data, reference)
    image, aside = demo_data / IMAGE, tmp_path / "aside.png"
    image.rename(aside)
    missing = _score(demo_data)
    assert "39 scored, 1 failed" in missing.stdout
    assert "failed sample: mmssr_demo row 5 (mmssr_demo:5:" in missing.stdout
    assert f"invalid sample: missing image: {IMAGE}" in missing.stdout
    assert f"image path(s) resolve to no file, e.g. {IMAGE}; set --media-dir" in missing.stdout

    aside.rename(image)
    restored = _score(demo_data)
    assert "scoring 1 of 40 samples (3 of 3 shards reused, 1 failed sample(s) scored again)" in restored.stdout
    assert "40 (1 computed now, 39 reused), 40 scored, 0 failed" in restored.stdout
    assert "40 (0 computed now, 40 reused), 40 scored, 0 failed" in _score(demo_data).stdout

    fresh = _score(reference)
    assert "40 (40 computed now, 0 reused), 40 scored" in fresh.stdout
    store = _store(demo_data)
    uids = [s.uid for s in load_samples(demo_data, "mmssr_demo")]
    again, clean = store.read(uids), _store(reference).read(uids)
    np.testing.assert_array_equal(again.probs, clean.probs)
    assert again.styles == clean.styles and again.errors == clean.errors == [None] * 40

    selected = _selected_rows(demo_data)
    assert selected == _selected_rows(reference)
    assert any(row.get("image") == IMAGE for row in selected)


def _store(data: Path) -> ScoreStore:
    identity = engine_identity(ScorerConfig(backend="fake"))
    return ScoreStore(data / ".mmssr_cache" / "scores",
                      score_fingerprint(identity, resolve_capabilities("all"), 0.5))


def test_an_engine_failure_stands_only_while_its_image_files_are_unchanged(demo_data):
    sample = next(s for s in load_samples(demo_data, "mmssr_demo") if s.images)
    cause = failure_cause(sample)
    reason = "scoring failed: OSError: image file is truncated"
    assert failure_stands(reason, cause, sample)
    assert not failure_stands(reason, None, sample)  # a shard written before causes were kept
    assert not failure_stands("invalid sample: missing image: x.png", cause, sample)
    path = Path(sample.images[0])
    os.utime(path, ns=(time.time_ns(), path.stat().st_mtime_ns + 1_000_000))
    assert not failure_stands(reason, cause, sample)


def test_failure_records_name_dataset_row_uid_image_and_reason(demo_data):
    samples = load_samples(demo_data, "mmssr_demo")
    sample = samples[7]
    record = failure_record(sample, f"invalid sample: missing image: {sample.images[0]}")
    assert record == FailureRecord("mmssr_demo", 7, sample.uid, sample.images[0], record.reason)
    assert FailureRecord.from_dict(json.loads(json.dumps(record.to_dict()))) == record
    assert sample_failures(sample) == []
    text_only = next(s for s in samples if not s.images)
    assert failure_record(text_only, "scoring failed: x").image is None


def test_opening_a_store_removes_only_dead_writers_temporaries(tmp_path):
    store = ScoreStore(tmp_path, score_fingerprint({"model": "m"}, resolve_capabilities("ocr"), 0.5)).open()
    dead_writer = subprocess.Popen([sys.executable, "-c", "pass"])
    dead_writer.wait()
    live_writer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = store.path / f".shard-aa.parquet.{dead_writer.pid}.tmp"
        live = store.path / f".shard-bb.parquet.{live_writer.pid}.tmp"
        stale_job = store.path / "jobs" / f".job-cc-1.json.{dead_writer.pid}.tmp"
        stale_job.parent.mkdir()
        for path in (stale, live, stale_job):
            path.write_bytes(b"half a parquet file")
        store.open()
        assert not stale.exists() and not stale_job.exists()
        assert live.exists()
        assert store.done() == set()
    finally:
        live_writer.kill()
        live_writer.wait()
