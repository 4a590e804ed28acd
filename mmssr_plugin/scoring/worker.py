"""One scoring worker: loads the engine once and scores its share of the pending shards (the
task scoring it does is shared with the ray executor's actors).

Run as ``python -m mmssr_plugin.scoring.worker JOB.json WORKER_INDEX``; the job file is written by
:mod:`mmssr_plugin.scoring.executors.local`. Workers split the shards by index (shard i goes to worker
i mod W), so they never touch the same shard. A worker never outlives the job's process: it stops
when its parent is gone (:mod:`mmssr_plugin.scoring.parent_watch`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from mmssr_plugin.core.taxonomy import Capability
from mmssr_plugin.data.sample import Sample
from mmssr_plugin.scoring.config import ScorerConfig
from mmssr_plugin.scoring.failures import SCORING_FAILED, failure_cause, invalid_reason
from mmssr_plugin.scoring.job_file import WorkerJob, read_samples
from mmssr_plugin.scoring.parent_watch import stop_with_parent
from mmssr_plugin.scoring.store import ScoreStore, Shard, ShardResult


def build_engine(config: ScorerConfig) -> Any:
    """Construct the configured scoring engine (loads the model for the hf backend)."""
    from mmssr_plugin.engines import get_engine

    return get_engine(config)


def score_chunk(
    engine: Any, samples: Sequence[Sample], capabilities: Sequence[Capability]
) -> ShardResult:
    """Score and style one shard; invalid or failing samples become recorded failures, each with
    the key of its image files (:func:`mmssr_plugin.scoring.failures.failure_cause`)."""
    n, n_caps = len(samples), len(capabilities)
    probs = np.full((n, n_caps, 6), np.nan, dtype=np.float32)
    styles: list[tuple[str, ...]] = [()] * n
    style_raw: list[str | None] = [None] * n
    unmatched = [0] * n
    errors: list[str | None] = [None] * n
    valid = []
    for i, sample in enumerate(samples):
        if sample.problems:
            errors[i] = invalid_reason(sample)
        else:
            valid.append(i)

    def run(indices: list[int]) -> None:
        batch = [samples[i] for i in indices]
        batch_probs, answers = engine.score_and_style(batch, capabilities)
        for row, i in enumerate(indices):
            probs[i] = batch_probs[row]
            styles[i] = tuple(answers[row].styles)
            style_raw[i] = answers[row].raw
            unmatched[i] = answers[row].unmatched

    if valid:
        try:
            run(valid)
        except Exception:  # isolate the failing sample(s); the rest of the shard is kept
            for i in valid:
                try:
                    run([i])
                except Exception as exc:  # noqa: BLE001 - recorded as a failure with its reason
                    errors[i] = f"{SCORING_FAILED}: {type(exc).__name__}: {exc}".splitlines()[0]
    return ShardResult(
        uids=[s.uid for s in samples],
        probs=probs,
        styles=styles,
        style_raw=style_raw,
        style_unmatched=unmatched,
        errors=errors,
        causes=[None if error is None else failure_cause(s) for s, error in zip(samples, errors)],
    )


class TaskScorer:
    """Scores tasks into the store with one engine, built the first time a valid sample needs it.

    A task (:class:`~mmssr_plugin.scoring.store.Shard`) is either a new shard, written whole and
    skipped when it is stored already (so a repeated task never writes twice), or the retried rows
    of a finished shard, rewritten in place.

    Args:
        store: the opened score store.
        capabilities: capabilities to score, in order.
        build: makes the engine (called at most once).
    """

    def __init__(
        self, store: ScoreStore, capabilities: Sequence[Capability], build: Callable[[], Any]
    ) -> None:
        self.store = store
        self.capabilities = list(capabilities)
        self._build = build
        self._engine: Any = None

    def score(
        self, task: Shard, shard_samples: Callable[[], Sequence[Sample]]
    ) -> ShardResult | None:
        """Score ``task`` and write it; None when its shard is stored already.

        ``shard_samples`` returns the samples of the task's whole shard (pool positions
        ``[task.start, task.stop)``); it is called only when there is something to score.
        """
        if not task.retry and self.store.shard_path(task.id).exists():
            return None
        chunk = list(shard_samples())
        if task.retry:
            chunk = [chunk[i - task.start] for i in task.retry]
        if self._engine is None and any(s.ok for s in chunk):
            self._engine = self._build()
        result = score_chunk(self._engine, chunk, self.capabilities)
        if task.retry:
            self.store.rewrite_rows(task.id, result)
        else:
            self.store.write_shard(task.id, result)
        return result


def run_worker(
    job: WorkerJob,
    worker_index: int,
    on_shard: Callable[[int], None] | None = None,
) -> int:
    """Score every pending shard of this worker (and the retried rows of finished ones); returns
    the number of samples scored. The engine is built only when a valid sample needs it."""
    store = ScoreStore(job.store_root, job.fingerprint).open()
    samples = read_samples(job.samples)
    scorer = TaskScorer(store, job.capabilities, lambda: build_engine(job.scorer))
    mine = [s for k, s in enumerate(job.shards) if k % job.workers == worker_index]
    done_samples = 0
    for task in mine:
        result = scorer.score(task, lambda: samples[task.start : task.stop])
        if result is None:
            continue
        done_samples += len(result.uids)
        if on_shard:
            on_shard(len(result.uids))
    return done_samples


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of a worker process; its output goes to the job's worker log."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        sys.stderr.write("usage: python -m mmssr_plugin.scoring.worker JOB.json WORKER_INDEX\n")
        return 2
    stop_with_parent()
    run_worker(WorkerJob.read(Path(args[0])), int(args[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
