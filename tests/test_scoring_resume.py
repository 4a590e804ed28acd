"""A scoring run killed with SIGKILL at several points resumes to exactly the uninterrupted scores."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from conftest import REPO
from mmssr_plugin.data.load import load_pool_file
from mmssr_plugin.scoring.config import ScorerConfig
from mmssr_plugin.scoring.store import ScoreStore, score_fingerprint
from mmssr_plugin.engines import engine_identity
from mmssr_plugin.core.taxonomy import resolve_capabilities

POOL = REPO / "data_info" / "mmssr_demo" / "pool.json"
CAPS = "ocr,spatial,stem"


def _score_cmd(model, cache):
    return [str(Path(sys.executable).parent / "mmssr-cli"), "score", "--pool", str(POOL),
            "--media-dir", str(REPO / "data_info"), "--model", str(model), "--capabilities", CAPS,
            "--shard-size", "4", "--batch-size", "4", "--cache-dir", str(cache), "--no-progress"]


def _store(model, cache):
    scorer = ScorerConfig(model_name_or_path=str(model), batch_size=4)
    caps = resolve_capabilities(CAPS)
    return ScoreStore(cache / "scores", score_fingerprint(engine_identity(scorer), caps, 0.5))


def _table(model, cache):
    uids = [s.uid for s in load_pool_file(POOL, REPO / "data_info", "image_source")]
    return _store(model, cache).read(uids)


def _kill_after(cmd, store, shards_done, deadline=180):
    """Start a scoring run and SIGKILL its whole process group once `shards_done` shards exist."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    start = time.monotonic()
    while time.monotonic() - start < deadline and proc.poll() is None:
        if store.path.exists() and len(store.done()) >= shards_done:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return len(store.done()) if store.path.exists() else 0


def test_sigkill_then_resume_gives_the_uninterrupted_scores(tmp_path, tiny_model):
    reference_cache = tmp_path / "reference"
    done = subprocess.run(_score_cmd(tiny_model, reference_cache), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    reference = _table(tiny_model, reference_cache)
    assert reference.scored.all()

    cache = tmp_path / "killed"
    store = _store(tiny_model, cache)
    finished = [_kill_after(_score_cmd(tiny_model, cache), store, n) for n in (0, 2, 6)]
    assert finished[0] < 10 and finished == sorted(finished) and finished[-1] < 10
    assert not list(store.path.glob("shard-*.parquet.*tmp"))  # no partial shard is visible
    resumed = subprocess.run(_score_cmd(tiny_model, cache), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"scoring {40 - 4 * finished[-1]} of 40 samples" in resumed.stdout
    table = _table(tiny_model, cache)
    np.testing.assert_array_equal(table.probs, reference.probs)
    assert table.styles == reference.styles and table.errors == reference.errors

    again = subprocess.run(_score_cmd(tiny_model, cache), capture_output=True, text=True)
    assert "40 (0 computed now, 40 reused)" in again.stdout
