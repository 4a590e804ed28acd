"""A scoring job: open the fingerprinted store, plan the shards, score the pending ones in worker
processes and read the table back with its summary.

The parent process never imports torch (see :mod:`mmssr_plugin.scoring.processes`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Sequence

from mmssr_plugin.core.taxonomy import Capability
from mmssr_plugin.data.sample import Sample
from mmssr_plugin.scoring.config import DEFAULT_SHARD_SIZE, ScorerConfig
from mmssr_plugin.scoring.devices import visible_gpus
from mmssr_plugin.scoring.failures import failure_kind
from mmssr_plugin.scoring.processes import ScoringError, run_workers
from mmssr_plugin.scoring.store import ScoreStore, ScoreTable, score_fingerprint
from mmssr_plugin.scoring.summary import ScoringSummary, summarize

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_SHARD_SIZE", "ScoringError", "ScoringSummary", "failure_kind", "run_scoring",
    "summarize", "visible_gpus",
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
) -> tuple[ScoreTable, ScoringSummary]:
    """Score ``samples`` (reusing every finished shard in the store) and return the table.

    Args:
        samples: the pool, in pool order (invalid samples are recorded as failures).
        scorer: engine configuration.
        capabilities: capabilities to score, in order.
        cache_dir: root of the score stores (``<cache_dir>/scores/<fingerprint>``).
        workers: worker processes on CPU (default 1); with GPUs visible, one per GPU.
        shard_size: samples per shard (the unit of resumption).
        progress: show a progress bar on stderr.
        identity: the scorer's engine identity when the caller already computed it.
    """
    started = time.monotonic()
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
    shards = store.plan(uids, shard_size)
    done = store.done()
    pending = [s for s in shards if s.id not in done]
    pending_samples = sum(s.stop - s.start for s in pending)
    gpus = visible_gpus() if scorer.backend == "hf" else []
    n_workers = max(1, min(len(gpus) if gpus else (workers or 1), len(pending) or 1))
    if pending:
        logger.info(
            f"scoring {pending_samples} of {len(samples)} samples "
            f"({len(shards) - len(pending)} of {len(shards)} shards reused) with "
            f"{n_workers} worker(s) on {'GPU ' + ','.join(gpus) if gpus else 'CPU'}"
        )
        run_workers(store, scorer, capabilities, samples, shards, n_workers, gpus, progress,
                    pending_samples)
    table = store.read(uids)
    summary = summarize(table, store, pending_samples, time.monotonic() - started, n_workers,
                        [f"cuda:{g}" for g in gpus])
    return table, summary
