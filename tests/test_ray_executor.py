"""The ray executor on a local Ray cluster (CPU): scores array-equal to the local executor, a
killed actor and a SIGKILLed driver recovered from, failing samples recorded as failures and
scored again once their cause is gone, SIGINT / SIGTERM to the driver ending the run cleanly."""

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import psutil
import pytest
from PIL import Image

from mmssr_plugin.core.taxonomy import resolve_capabilities
from mmssr_plugin.data.load import load_samples
from mmssr_plugin.data.sample import Sample
from mmssr_plugin.scoring.config import JobConfig, ScorerConfig
from mmssr_plugin.scoring.executors.ray_actor import store_visibility_problem
from mmssr_plugin.scoring.job import ScoringError, run_scoring

ray = pytest.importorskip("ray")

FAKE = ScorerConfig(backend="fake")
CAPS = resolve_capabilities("ocr,spatial,stem")
ALL_CAPS = resolve_capabilities(None)
RAY_JOB = JobConfig(workers=2, shard_size=4, executor="ray")
LOCAL_JOB = JobConfig(workers=2, shard_size=4)
ACTOR_CLASS = "MapWorker(MapBatches(ShardScorer))"


@pytest.fixture(scope="module")
def ray_cluster():
    """One private local Ray instance (2 CPUs) for the module; the executor reuses it."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield
    ray.shutdown()


def synthetic_pool(n: int) -> list[Sample]:
    """``n`` valid text-only samples (the fake engine reads only their uids)."""
    return [Sample(uid=f"pool:{i}:{i:012x}", dataset="pool", row=i, turns=("q", "a"))
            for i in range(n)]


def assert_same_scores(one, two):
    np.testing.assert_array_equal(one.probs, two.probs)
    assert one.styles == two.styles and one.errors == two.errors and one.uids == two.uids


def test_ray_scores_equal_local_scores_and_a_rerun_reuses_them(ray_cluster, demo_data, tmp_path):
    samples = load_samples(demo_data, "mmssr_demo", source_column="image_source")
    local, _ = run_scoring(samples, FAKE, CAPS, tmp_path / "a", progress=False, job=LOCAL_JOB)
    remote, summary = run_scoring(samples, FAKE, CAPS, tmp_path / "b", progress=False, job=RAY_JOB)
    assert_same_scores(local, remote)
    assert summary.workers == 2 and summary.computed == 40 and summary.scored == 40
    assert len(list(summary.store_path.glob("shard-*.parquet"))) == 10
    again, rerun = run_scoring(samples, FAKE, CAPS, tmp_path / "b", progress=False, job=RAY_JOB)
    assert rerun.computed == 0 and rerun.workers == 0
    assert_same_scores(local, again)


@pytest.mark.slow
def test_tiny_scorer_on_ray_equals_local_and_records_failing_samples(
    ray_cluster, demo_data, tmp_path, tiny_model
):
    pool_path = demo_data / "mmssr_demo" / "pool.json"
    pool = json.loads(pool_path.read_text())
    pool[2]["image"] = "mmssr_demo/images/nowhere.png"
    pool_path.write_text(json.dumps(pool))
    broken = demo_data / pool[3]["image"]  # PIL reads the header, decoding fails
    Image.new("RGB", (48, 48), (9, 9, 9)).save(broken)
    broken.write_bytes(broken.read_bytes()[:60])
    samples = load_samples(demo_data, "mmssr_demo", source_column="image_source",
                           check_images=False)[:8]
    scorer = ScorerConfig(model_name_or_path=str(tiny_model), batch_size=4)
    local, _ = run_scoring(samples, scorer, CAPS, tmp_path / "a", progress=False, job=LOCAL_JOB)
    remote, summary = run_scoring(samples, scorer, CAPS, tmp_path / "b", progress=False,
                                  job=RAY_JOB)
    assert_same_scores(local, remote)
    assert remote.errors[2].startswith("invalid sample: missing image")
    assert remote.errors[3].startswith("scoring failed:")
    assert summary.scored == 6 and summary.failures == {"invalid sample": 1, "scoring failed": 1}


def _alive_actors() -> list[str]:
    return [actor_id for actor_id, info in ray._private.state.actors().items()
            if info["ActorClassName"] == ACTOR_CLASS and info["State"] == "ALIVE"]


@pytest.mark.slow
def test_a_killed_actor_is_restarted_and_the_scores_are_unchanged(ray_cluster, tmp_path):
    samples = synthetic_pool(6000)
    job = JobConfig(workers=2, shard_size=50, executor="ray")
    outcome = {}

    def score():
        outcome["result"] = run_scoring(samples, FAKE, ALL_CAPS, tmp_path / "ray", progress=False,
                                        job=job)

    runner = threading.Thread(target=score)
    runner.start()
    deadline = time.monotonic() + 180
    stores = tmp_path / "ray" / "scores"
    while time.monotonic() < deadline and not (
        _alive_actors() and any(stores.glob("*/shard-*.parquet"))
    ):
        time.sleep(0.05)
    victim = _alive_actors()[0]
    # What ray.kill(handle, no_restart=False) does, on the actor id (Ray Data keeps the handles).
    ray._private.worker.global_worker.core_worker.kill_actor(
        ray.ActorID.from_hex(victim), False
    )
    killed_at = len(list(stores.glob("*/shard-*.parquet")))
    runner.join(300)
    assert not runner.is_alive() and "result" in outcome
    assert killed_at < 120, "the run ended before the actor was killed"
    assert ray._private.state.actors()[victim]["NumRestarts"] >= 1
    table, summary = outcome["result"]
    local, _ = run_scoring(samples, FAKE, ALL_CAPS, tmp_path / "local", progress=False,
                           job=JobConfig(workers=2, shard_size=50))
    assert_same_scores(local, table)
    assert summary.scored == 6000


DRIVER = """
import sys
from mmssr_plugin.scoring.config import JobConfig, ScorerConfig
from mmssr_plugin.scoring.job import run_scoring
from mmssr_plugin.core.taxonomy import resolve_capabilities
sys.path.insert(0, {tests!r})
from test_ray_executor import synthetic_pool
run_scoring(synthetic_pool({n}), ScorerConfig(backend="fake"), resolve_capabilities(None),
            {cache!r}, progress=False, job=JobConfig(workers=2, shard_size=50, executor="ray"))
"""


def _processes_with(token: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("MMSSR_RAY_TEST") == token:
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


@pytest.mark.slow
def test_a_sigkilled_driver_leaves_no_writer_and_a_rerun_recomputes_no_finished_shard(
    ray_cluster, tmp_path
):
    n = 12000
    token = uuid.uuid4().hex
    env = {**os.environ, "MMSSR_RAY_TEST": token}
    script = DRIVER.format(tests=str(Path(__file__).parent), n=n, cache=str(tmp_path))
    driver = subprocess.Popen([sys.executable, "-c", script], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stores = tmp_path / "scores"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not any(stores.glob("*/shard-*.parquet")):
        assert driver.poll() is None, "the driver exited before scoring"
        time.sleep(0.05)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    deadline = time.monotonic() + 60
    while _processes_with(token) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = [(p.pid, p.name()) for p in _processes_with(token)]
    assert not left, f"processes of the killed driver's Ray instance are still running: {left}"
    finished = {p.name for p in stores.glob("*/shard-*.parquet")}
    assert 0 < len(finished) < n // 50
    time.sleep(2)
    assert {p.name for p in stores.glob("*/shard-*.parquet")} == finished
    assert not list(stores.glob("*/.shard-*.tmp"))

    table, summary = run_scoring(synthetic_pool(n), FAKE, ALL_CAPS, tmp_path, progress=False,
                                 job=JobConfig(workers=2, shard_size=50, executor="ray"))
    assert summary.computed == n - 50 * len(finished) and summary.scored == n


IMAGE = "mmssr_demo/images/coco/005.png"


def test_a_restored_image_is_scored_again_under_ray(ray_cluster, demo_data, tmp_path):
    image, aside = demo_data / IMAGE, tmp_path / "aside.png"
    image.rename(aside)
    missing = load_samples(demo_data, "mmssr_demo", source_column="image_source")
    table, summary = run_scoring(missing, FAKE, CAPS, tmp_path / "b", progress=False, job=RAY_JOB)
    assert summary.scored == 39 and table.errors[5].startswith("invalid sample: missing image")
    assert [(r.row, r.image) for r in summary.failed_samples] == [(5, IMAGE)]

    aside.rename(image)
    restored = load_samples(demo_data, "mmssr_demo", source_column="image_source")
    again, rerun = run_scoring(restored, FAKE, CAPS, tmp_path / "b", progress=False, job=RAY_JOB)
    assert rerun.computed == 1 and rerun.scored == 40 and not rerun.failed_samples
    local, _ = run_scoring(restored, FAKE, CAPS, tmp_path / "a", progress=False, job=LOCAL_JOB)
    assert_same_scores(local, again)


@pytest.mark.slow
@pytest.mark.parametrize("number", [signal.SIGINT, signal.SIGTERM], ids=["sigint", "sigterm"])
def test_an_interrupted_ray_driver_stops_its_ray_instance_with_one_line(number, tmp_path):
    from test_bad_inputs import MMSSR_CLI, command_env

    token = uuid.uuid4().hex
    cache = tmp_path / "cache"
    args = ["score", "--pool", str(Path(__file__).parents[1] / "data_info/mmssr_demo/pool.json"),
            "--backend", "fake", "--no-progress", "--cache-dir", str(cache), "--shard-size", "4",
            "--workers", "2"]
    env = command_env(tmp_path, {"MMSSR_TEST_SLOW_FAKE": "0.5", "MMSSR_RAY_TEST": token})
    driver = subprocess.Popen([MMSSR_CLI, *args, "--executor", "ray"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not list(cache.glob("scores/*/shard-*.parquet")) and time.monotonic() < deadline:
        assert driver.poll() is None, driver.communicate()
        time.sleep(0.1)
    driver.send_signal(number)  # to the driver only: it must stop its Ray instance itself
    stdout, stderr = driver.communicate(timeout=120)
    assert driver.returncode == 128 + number, (stdout[-2000:], stderr[-2000:])
    # Ray's own start-up notices may precede it; the run's last word is the one line.
    line = stderr.strip().splitlines()[-1]
    assert line.startswith(f"mmssr-cli: scoring interrupted by {signal.Signals(number).name}: the "
                           "workers are stopped"), line
    assert "run the same command again to resume" in line and "Traceback" not in stdout + stderr
    deadline = time.monotonic() + 60
    while _processes_with(token) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = [(p.pid, p.name()) for p in _processes_with(token)]
    assert not left, f"processes of the interrupted driver's Ray instance are still running: {left}"
    kept = len(list(cache.glob("scores/*/shard-*.parquet")))
    assert f"{kept} shard(s) finished in this run are kept" in line and 1 <= kept < 10
    resumed = subprocess.run([MMSSR_CLI, *args], capture_output=True, text=True,
                             env=command_env(tmp_path), timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    assert f"({kept} of 10 shards reused)" in resumed.stdout


def test_a_store_not_visible_from_a_node_is_refused_with_one_line(ray_cluster, tmp_path):
    marker = tmp_path / "ray-driver-x.marker"
    marker.write_text("token")
    assert store_visibility_problem(tmp_path, marker, "token") is None
    problem = store_visibility_problem(tmp_path, tmp_path / "elsewhere.marker", "token")
    assert "is not shared with Ray node" in problem and "\n" not in problem


def test_ray_address_needs_the_ray_executor():
    with pytest.raises(ValueError, match="ray_address is used by the ray executor only"):
        JobConfig(ray_address="auto")


def test_the_yaml_block_and_the_score_command_take_the_executor():
    from mmssr_plugin.cli import build_parser
    from mmssr_plugin.llamafactory.config import DataSelectionConfig, DataSelectionError

    block = {"method": "mmssr", "backend": "fake", "budget": 0.3}
    config = DataSelectionConfig.from_dict({**block, "executor": "ray", "ray_address": "auto"})
    assert (config.job.executor, config.job.ray_address) == ("ray", "auto")
    assert DataSelectionConfig.from_dict(block).job.executor == "local"
    with pytest.raises(DataSelectionError, match="data_selection.executor must be one of"):
        DataSelectionConfig.from_dict({**block, "executor": "spark"})
    with pytest.raises(DataSelectionError, match="ray_address is used by the ray executor only"):
        DataSelectionConfig.from_dict({**block, "ray_address": "auto"})
    args = build_parser().parse_args(["score", "--pool", "p.json", "--backend", "fake",
                                      "--executor", "ray", "--ray-address", "auto"])
    assert (args.executor, args.ray_address) == ("ray", "auto")
