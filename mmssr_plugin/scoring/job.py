"""A scoring job: open the fingerprinted store, plan the shards, score the pending ones (and the
failed samples whose cause changed) with the configured executor and read the table back with its
summary.

The parent process never imports torch (see :mod:`mmssr_plugin.scoring.executors`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Sequence

from mmssr_plugin.core.taxonomy import Capability
from mmssr_plugin.data.sample import Sample
from mmssr_plugin.scoring.config import DEFAULT_SHARD_SIZE, JobConfig, ScorerConfig
from mmssr_plugin.scoring.devices import visible_gpus
from mmssr_plugin.scoring.executors import (
    Execution, ScoringError, ScoringInterrupted, ScoringPlan, execute,
)
from mmssr_plugin.scoring.failures import failure_kind, failure_stands, invalid_reason
from mmssr_plugin.scoring.store import ScoreStore, ScoreTable, Shard, score_fingerprint
from mmssr_plugin.scoring.summary import ScoringSummary, summarize

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_SHARD_SIZE", "ScoringError", "ScoringInterrupted", "ScoringSummary", "failure_kind",
    "run_scoring", "summarize", "visible_gpus",
]


def run_scoring(
    samples: Sequence[Sample],
    scorer: ScorerConfig,
    capabilities: Sequence[Capability],
    cache_dir: str | Path,
    workers: int | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    progress: bool = True,
    identity: dict[str, Any] | None = None,
    job: JobConfig | None = None,
) -> tuple[ScoreTable, ScoringSummary]:
    """Score ``samples`` (reusing every finished shard in the store) and return the table.

    Failures are not reused as results: an invalid sample is reported with its current problems,
    and a stored failure of a sample that is valid now is scored again unless the engine failed
    on the very same image files (:func:`mmssr_plugin.scoring.failures.failure_stands`).

    Args:
        samples: the pool, in pool order (invalid samples are recorded as failures).
        scorer: engine configuration.
        capabilities: capabilities to score, in order.
        cache_dir: root of the score stores (``<cache_dir>/scores/<fingerprint>``); with the ray
            executor it must be on a filesystem every node of the cluster shares.
        workers: worker processes on CPU (default 1); with GPUs visible, one per GPU.
        shard_size: samples per shard (the unit of resumption).
        progress: show a progress bar on stderr.
        identity: the scorer's engine identity when the caller already computed it.
        job: the whole job configuration (executor, Ray address); when given, its ``workers`` and
            ``shard_size`` replace the two arguments above.

    Raises:
        ScoringError: a worker failed (finished shards are kept).
        ScoringInterrupted: SIGINT or SIGTERM stopped the job (workers stopped, shards kept).
    """
    started = time.monotonic()
    job = job or JobConfig(workers=workers, shard_size=shard_size)
    if identity is None:
        from mmssr_plugin.engines import engine_identity

        identity = engine_identity(scorer)
    store = ScoreStore(
        Path(cache_dir) / "scores",
        score_fingerprint(identity, capabilities, scorer.min_digit_mass),
    ).open()
    uids = [s.uid for s in samples]
    if len(set(uids)) != len(uids):
        raise ValueError("sample uids are not unique; the pool has duplicate rows under one id")
    shards = store.plan(uids, job.shard_size)
    shard_ids = [s.id for s in shards]
    done = store.done()
    table = store.read(uids, shard_ids)
    retries = _retry_tasks(samples, [s for s in shards if s.id in done], table)
    fresh = [s for s in shards if s.id not in done]
    plan = ScoringPlan(store, scorer, list(capabilities), samples, shards, fresh + retries,
                       progress)
    ran = Execution(0)
    if plan.pending:
        retried = sum(len(task.retry) for task in retries)
        logger.info(
            f"scoring {plan.pending_samples} of {len(samples)} samples "
            f"({len(shards) - len(fresh)} of {len(shards)} shards reused"
            f"{f', {retried} failed sample(s) scored again' if retried else ''}) "
            f"with the {job.executor} executor"
        )
        ran = execute(plan, job)
        table = store.read(uids, shard_ids)
    for index, sample in enumerate(samples):
        if sample.problems:
            table.mark_failed(index, invalid_reason(sample))
    summary = summarize(table, store, samples, plan.pending_samples, time.monotonic() - started,
                        ran.workers, ran.devices)
    return table, summary


def _retry_tasks(samples: Sequence[Sample], done: list[Shard], stored: ScoreTable) -> list[Shard]:
    """Tasks rescoring the valid samples of finished shards whose stored row is a failure that no
    longer stands (a missing image restored, a file replaced, an invalid sample fixed)."""
    causes = stored.causes or [None] * len(samples)
    tasks = []
    for shard in done:
        retry = tuple(
            i for i in range(shard.start, shard.stop)
            if stored.errors[i] is not None and not samples[i].problems
            and not failure_stands(stored.errors[i], causes[i], samples[i])
        )
        if retry:
            tasks.append(Shard(shard.id, shard.start, shard.stop, retry))
    return tasks
