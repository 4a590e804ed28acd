"""One actor of the ray executor's pool: builds the engine once and scores whole shards into the
shared store.

The actor is rebuilt from a small plain-data setup (the job file's fields without the shard plan,
a thread count, the driver's marker), so Ray can restart it anywhere: no engine, model or sample
travels through the object store. It reads its tasks' samples from the pool's samples file in the
store (one byte range per shard) and scores each task as a local worker does
(:class:`mmssr_plugin.scoring.worker.TaskScorer`): a new shard is written with the store's atomic
write and skipped when it is already there, complete, so a retried batch never writes a shard
twice; the retried rows of a finished shard (failures whose cause changed) are rewritten in place.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Any

import numpy as np

from mmssr_plugin.scoring.devices import CPU_WORKER_ENV
from mmssr_plugin.scoring.job_file import WorkerJob, read_samples
from mmssr_plugin.scoring.store import ScoreStore, Shard
from mmssr_plugin.scoring.worker import TaskScorer, build_engine

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
    """Ray Data callable class: one engine per actor (built when a valid sample first needs it),
    one task per batch row.

    Args:
        setup: ``WorkerJob.to_dict()`` of the job (its shard list empty: tasks come as rows).
        threads: torch threads, the same count a local worker uses (it changes float rounding).
        marker: the driver's marker file in the store; ``token`` is its content.
    """

    def __init__(self, setup: dict[str, Any], threads: int, marker: str, token: str) -> None:
        self.job = WorkerJob.from_dict(setup)
        self.threads = threads
        store = ScoreStore(self.job.store_root, self.job.fingerprint)
        self.problem = store_visibility_problem(store.path, Path(marker), token)
        self.tasks = TaskScorer(store, self.job.capabilities, self._build_engine)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        for key, value in CPU_WORKER_ENV.items():
            os.environ.setdefault(key, value)

    def _build_engine(self) -> Any:
        engine = build_engine(self.job.scorer)
        if "torch" in sys.modules:  # the engine uses torch: pin its threads like a local worker
            sys.modules["torch"].set_num_threads(self.threads)
        return engine

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list]:
        """Score and write every task of ``batch`` (a stored new shard is skipped); small results
        only."""
        out: dict[str, list] = {name: [] for name in RESULT_COLUMNS}
        for shard_id, start, stop, retry, size, begin, end in zip(
            batch["shard"], batch["start"], batch["stop"], batch["retry"], batch["samples"],
            batch["begin"], batch["end"],
        ):
            task = Shard(str(shard_id), int(start), int(stop), tuple(int(i) for i in retry))
            result = None
            if not self.problem:
                result = self.tasks.score(
                    task, lambda: read_samples(self.job.samples, int(begin), int(end))
                )
            out["shard"].append(task.id)
            out["samples"].append(int(size))
            out["computed"].append(result is not None)
            out["failed"].append(0 if result is None else sum(e is not None for e in result.errors))
            out["problem"].append(self.problem or "")
        return out
