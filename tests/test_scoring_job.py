"""Scoring jobs: worker processes over disjoint shards, failures recorded, the summary."""

import json
import multiprocessing

import numpy as np
from PIL import Image

from mmssr_plugin.llamafactory.stage import apply_data_selection
from mmssr_plugin.data.load import load_samples
from mmssr_plugin.scoring.job import run_scoring
from mmssr_plugin.scoring.config import ScorerConfig
from mmssr_plugin.core.taxonomy import resolve_capabilities

FAKE = ScorerConfig(backend="fake")
CAPS = resolve_capabilities("ocr,spatial,stem")


def test_two_workers_give_the_one_worker_scores(demo_data, tmp_path):
    samples = load_samples(demo_data, "mmssr_demo", source_column="image_source")
    one, summary_one = run_scoring(samples, FAKE, CAPS, tmp_path / "a", workers=1, shard_size=4,
                                   progress=False)
    two, summary_two = run_scoring(samples, FAKE, CAPS, tmp_path / "b", workers=2, shard_size=4,
                                   progress=False)
    assert summary_two.workers == 2 and summary_one.workers == 1
    np.testing.assert_array_equal(one.probs, two.probs)
    assert one.styles == two.styles
    assert summary_two.computed == 40 and summary_two.scored == 40
    assert len(list(summary_two.store_path.glob("shard-*.parquet"))) == 10


def test_invalid_and_undecodable_samples_are_recorded_failures(demo_data, tmp_path, tiny_model):
    pool_path = demo_data / "mmssr_demo" / "pool.json"
    pool = json.loads(pool_path.read_text())
    pool[2]["image"] = "mmssr_demo/images/nowhere.png"
    pool_path.write_text(json.dumps(pool))
    # A file that PIL can open (header) but not decode: truncated pixel data.
    broken = demo_data / pool[3]["image"]
    Image.new("RGB", (48, 48), (9, 9, 9)).save(broken)
    broken.write_bytes(broken.read_bytes()[:60])
    samples = load_samples(demo_data, "mmssr_demo", source_column="image_source", check_images=False)[:8]
    scorer = ScorerConfig(model_name_or_path=str(tiny_model), batch_size=4)
    table, summary = run_scoring(samples, scorer, CAPS, tmp_path / "c", shard_size=8,
                                 progress=False)
    assert table.errors[2].startswith("invalid sample: missing image")
    assert table.errors[3].startswith("scoring failed:")
    assert [e is None for e in table.errors] == [True, True, False, False, True, True, True, True]
    assert summary.scored == 6 and summary.failures == {"invalid sample": 1, "scoring failed": 1}
    assert np.isfinite(table.probs[[0, 1, 4, 5, 6, 7]]).all() and np.isnan(table.probs[[2, 3]]).all()
    text = "\n".join(summary.lines())
    assert "6 scored, 2 failed" in text and "failed: 1 x invalid sample" in text


def _select_in_process(args):
    data_dir, queue = args
    block = {"method": "mmssr", "backend": "fake", "budget": 0.3, "report": False}
    lines: list[str] = []
    out = apply_data_selection({"dataset": "mmssr_demo", "dataset_dir": data_dir,
                                "data_selection": block}, log=lines.append)
    queue.put((out["dataset"], sum("computed now" in line for line in lines),
               sum("reusing selection" in line for line in lines)))


def test_concurrent_ranks_select_once(demo_data):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_select_in_process, args=((str(demo_data), queue),)) for _ in range(3)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
    results = [queue.get(timeout=5) for _ in procs]
    assert all(proc.exitcode == 0 for proc in procs)
    assert len({name for name, _, _ in results}) == 1
    assert sorted(computed for _, computed, _ in results) == [0, 0, 1]
    assert sorted(reused for _, _, reused in results) == [0, 1, 1]
