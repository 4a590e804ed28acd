"""The ray executor: the pending tasks (new shards, and the retried rows of finished ones) flow
through a Ray Data pipeline into an actor pool (one actor per GPU of the cluster for the hf
backend, else ``workers`` CPU actors); each actor builds the engine once and writes to the shared
store as a local worker does; the driver gets back one small row per task and shows the progress.

Fault tolerance is Ray Data's: actors are restarted without limit (``max_restarts=-1``) and a
batch whose actor died is retried ``SHARD_RETRIES`` times (``max_task_retries``) before the run
stops; an exception in the scoring code is not retried (``DataContext.actor_task_retry_on_errors``
stays off) but a failing sample never raises: it is recorded as a failure, as locally. Actors are
not detached, so they end with the driver. SIGINT or SIGTERM to the driver closes the pipeline
and shuts down a Ray instance this run started or joined, before the interrupt is reported as
locally (:mod:`mmssr_plugin.scoring.executors.interrupts`).
"""

from __future__ import annotations

import logging
import math
import uuid
from typing import Any

from mmssr_plugin.scoring.config import JobConfig
from mmssr_plugin.scoring.devices import worker_threads
from mmssr_plugin.scoring.executors import Execution, ScoringError, ScoringPlan
from mmssr_plugin.scoring.executors.interrupts import job_signal_handlers
from mmssr_plugin.scoring.executors.progress import ShardProgress
from mmssr_plugin.scoring.executors.ray_actor import ShardScorer
from mmssr_plugin.scoring.job_file import WorkerJob, prepare_samples
from mmssr_plugin.utils.files import atomic_write_text

logger = logging.getLogger(__name__)

SHARD_RETRIES = 3
"""Retries of a batch of shards whose actor died (then the run stops; finished shards stay)."""
BLOCKS_PER_ACTOR = 16
"""Blocks of shards queued per actor: enough for balance at the tail, few for low overhead."""


def run_on_ray(plan: ScoringPlan, job: JobConfig) -> Execution:
    """Score the pending shards on a Ray cluster (joined at ``job.ray_address``, or a private local
    instance started here and shut down after); an already connected driver is used as it is.

    Raises:
        ScoringError: Ray is not installed, the cluster cannot be joined, the store is not shared
            with every node, or the pipeline failed (finished shards stay; a rerun resumes).
    """
    try:
        import ray
        import ray.data  # noqa: F401 - the executor's pipeline
    except ImportError:
        raise ScoringError(
            "the ray executor needs Ray Data: pip install 'ray[data]==2.58.1'"
        ) from None
    started_here = _connect(ray, job.ray_address)
    try:
        return _run(ray, plan, job)
    finally:
        if started_here:
            ray.shutdown()


def _connect(ray: Any, address: str | None) -> bool:
    """Join ``address`` or start a private local instance; True when this call connected."""
    if ray.is_initialized():
        return False
    try:
        with job_signal_handlers():  # SIGTERM keeps stopping the run as SIGINT does
            if address is None:
                ray.init(address="local", include_dashboard=False, logging_level=logging.WARNING)
            else:
                ray.init(address=address, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = "a local Ray instance" if address is None else f"the Ray cluster at {address!r}"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ScoringError(f"cannot start or join {where}: {first}") from None
    return True


def _run(ray: Any, plan: ScoringPlan, job: JobConfig) -> Execution:
    import pyarrow as pa

    resources = ray.cluster_resources()
    cluster_gpus = int(resources.get("GPU", 0)) if plan.scorer.backend == "hf" else 0
    cluster_cpus = max(1, int(resources.get("CPU", 1)))
    wanted = cluster_gpus or job.workers or 1
    if not cluster_gpus and wanted > cluster_cpus:
        logger.warning(f"{wanted} CPU actors asked for, the cluster has {cluster_cpus} CPUs")
        wanted = cluster_cpus
    n_actors = max(1, min(wanted, len(plan.pending)))
    threads = worker_threads(n_actors)
    actor_cpus = 1 if cluster_gpus else max(1, min(threads, cluster_cpus // n_actors))
    logger.info(
        f"{n_actors} Ray actor(s) with {'1 GPU' if cluster_gpus else f'{actor_cpus} CPU'} each "
        f"({threads} torch thread(s)); cluster: {resources.get('CPU', 0):g} CPU, "
        f"{resources.get('GPU', 0):g} GPU"
    )
    jobs = plan.store.path / "jobs"
    jobs.mkdir(exist_ok=True)
    samples_path, offsets = prepare_samples(jobs, plan.samples)
    setup = WorkerJob(
        scorer=plan.scorer, capabilities=list(plan.capabilities),
        store_root=plan.store.path.parent, fingerprint=plan.store.fingerprint,
        samples=samples_path, shards=[], workers=n_actors,
    ).to_dict()
    token = uuid.uuid4().hex
    marker = jobs / f"ray-driver-{token}.marker"
    atomic_write_text(marker, token)

    pending = plan.pending
    columns = pa.table({
        "shard": [s.id for s in pending],
        "start": pa.array([s.start for s in pending], pa.int64()),
        "stop": pa.array([s.stop for s in pending], pa.int64()),
        "retry": pa.array([list(s.retry) for s in pending], pa.list_(pa.int64())),
        "samples": pa.array([s.size for s in pending], pa.int64()),
        "begin": pa.array(offsets[[s.start for s in pending]], pa.int64()),
        "end": pa.array(offsets[[s.stop for s in pending]], pa.int64()),
    })
    step = math.ceil(len(pending) / (n_actors * BLOCKS_PER_ACTOR))
    blocks = [columns.slice(i, step) for i in range(0, len(pending), step)]
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # the driver shows its own bar
    ray.util.debug.log_once("ray_data_progress_manager_disabled")  # and needs no notice of it
    context.print_on_execution_start = False
    results = ray.data.from_arrow(blocks).map_batches(
        ShardScorer,
        fn_constructor_kwargs={"setup": setup, "threads": threads, "marker": str(marker),
                               "token": token},
        batch_size=1,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=n_actors),
        num_cpus=actor_cpus,
        num_gpus=1 if cluster_gpus else 0,
        max_restarts=-1,
        max_task_retries=SHARD_RETRIES,
    )
    try:
        _follow(ray, results, plan)
    finally:
        marker.unlink(missing_ok=True)
    devices = [f"ray: {n_actors} GPU actor(s)"] if cluster_gpus else []
    return Execution(n_actors, devices)


def _follow(ray: Any, results: Any, plan: ScoringPlan) -> None:
    """Consume the per-task rows: progress on the driver; a refused store stops the run. Leaving
    early (an error, an interrupt) closes the iterator, which shuts the pipeline and its actors
    down at once."""
    bar = ShardProgress(plan.pending_samples, len(plan.pending), plan.progress)
    samples = shards = failed = 0
    batches = iter(results.iter_batches(batch_size=None, batch_format="numpy"))
    try:
        for batch in batches:
            problems = [p for p in batch["problem"] if p]
            if problems:
                raise ScoringError(str(problems[0]))
            shards += len(batch["shard"])
            samples += int(batch["samples"].sum())
            failed += int(batch["failed"].sum())
            bar.advance_to(samples, shards)
    except ray.exceptions.RayError as exc:
        text = str(exc).strip().splitlines()
        raise ScoringError(
            f"the Ray scoring pipeline failed ({type(exc).__name__}: {text[-1] if text else ''}); "
            "finished shards are kept and a rerun resumes"
        ) from exc
    finally:
        batches.close()
        bar.close()
    if failed:
        logger.info(f"{failed} sample(s) recorded as failures")
