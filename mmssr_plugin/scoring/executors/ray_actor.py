"""One actor of the ray executor's pool: builds the engine once and scores whole shards into the
shared store.

The actor is rebuilt from a small plain-data setup (the job file's fields without the shard plan,
a thread count, the driver's marker), so Ray can restart it anywhere: no engine, model or sample
travels through the object store. It reads its shards' samples from the pool's samples file in the
store (one byte range per shard) and writes each shard with the store's atomic write; a shard
that is already there, complete, is skipped, so a retried batch never writes a shard twice.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Any

import numpy as np

from mmssr_plugin.scoring.job_file import WorkerJob, read_samples
from mmssr_plugin.scoring.store import ScoreStore
from mmssr_plugin.scoring.worker import build_engine, score_chunk

RESULT_COLUMNS = ("shard", "samples", "computed", "failed", "problem")


def store_visibility_problem(store_path: Path, marker: Path, token: str) -> str | None:
    """Why this node cannot use the store, or None: the driver's marker must be readable here."""
    try:
        seen = marker.read_text(encoding="utf-8")
    except OSError:
        seen = None
    if seen == token:
        return None
    return (
        f"the score store {store_path} is not shared with Ray node {socket.gethostname()}: the "
        f"driver's marker file is not visible there; put cache_dir on a filesystem every node "
        f"mounts at the same path (NFS, Lustre, a cluster file system)"
    )


class ShardScorer:
    """Ray Data callable class: one engine per actor, one shard per batch row.

    Args:
        setup: ``WorkerJob.to_dict()`` of the job (its shard list empty: shards come as rows).
        threads: torch threads, the same count a local worker uses (it changes float rounding).
        marker: the driver's marker file in the store; ``token`` is its content.
    """

    def __init__(self, setup: dict[str, Any], threads: int, marker: str, token: str) -> None:
        self.job = WorkerJob.from_dict(setup)
        self.store = ScoreStore(self.job.store_root, self.job.fingerprint)
        self.problem = store_visibility_problem(self.store.path, Path(marker), token)
        self.engine: Any = None
        if self.problem:
            return
        os.environ["OMP_NUM_THREADS"] = str(threads)
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        self.engine = build_engine(self.job.scorer)
        if "torch" in sys.modules:  # the engine uses torch: pin its threads like a local worker
            sys.modules["torch"].set_num_threads(threads)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        """Score and write every shard of ``batch`` that is not stored yet; small results only."""
        out: dict[str, list] = {name: [] for name in RESULT_COLUMNS}
        for shard_id, size, begin, end in zip(
            batch["shard"], batch["samples"], batch["begin"], batch["end"]
        ):
            shard_id = str(shard_id)
            computed, failed = False, 0
            if not self.problem and not self.store.shard_path(shard_id).exists():
                chunk = read_samples(self.job.samples, int(begin), int(end))
                result = score_chunk(self.engine, chunk, self.job.capabilities)
                self.store.write_shard(shard_id, result)
                computed, failed = True, sum(err is not None for err in result.errors)
            out["shard"].append(shard_id)
            out["samples"].append(int(size))
            out["computed"].append(computed)
            out["failed"].append(failed)
            out["problem"].append(self.problem or "")
        return out
