"""One scoring worker: loads the engine once and scores its share of the pending shards.

Run as ``python -m mmssr_plugin.scoring.worker JOB.json WORKER_INDEX``; the job file is written by
:mod:`mmssr_plugin.scoring.processes`. Workers split the shards by index (shard i goes to worker
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
from mmssr_plugin.scoring.store import ScoreStore, ShardResult


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


def run_worker(
    job: WorkerJob,
    worker_index: int,
    on_shard: Callable[[int], None] | None = None,
) -> int:
    """Score every pending shard of this worker (and the retried rows of finished ones); returns
    the number of samples scored. The engine is built only when a valid sample needs it."""
    store = ScoreStore(job.store_root, job.fingerprint).open()
    samples = read_samples(job.samples)
    mine = [s for k, s in enumerate(job.shards) if k % job.workers == worker_index]
    engine = None
    done_samples = 0
    for shard in mine:
        if shard.retry:
            chunk = [samples[i] for i in shard.retry]
        elif store.shard_path(shard.id).exists():
            continue
        else:
            chunk = samples[shard.start : shard.stop]
        if engine is None and any(s.ok for s in chunk):
            engine = build_engine(job.scorer)
        result = score_chunk(engine, chunk, job.capabilities)
        if shard.retry:
            store.rewrite_rows(shard.id, result)
        else:
            store.write_shard(shard.id, result)
        done_samples += len(chunk)
        if on_shard:
            on_shard(len(chunk))
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
