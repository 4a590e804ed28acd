"""Executors of a scoring job: where its pending tasks (new shards, and the retried rows of
finished ones) are scored.

``local`` runs worker processes on this machine (:mod:`.local`); ``ray`` runs an actor pool on a
Ray cluster through Ray Data (:mod:`.ray_data`). Both score a task the same way
(:class:`mmssr_plugin.scoring.worker.TaskScorer`) into the same store, and both stop on SIGINT or
SIGTERM with the same :class:`ScoringInterrupted` (:mod:`.interrupts`); Ray is imported only when
the ``ray`` executor is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from mmssr_plugin.core.taxonomy import Capability
from mmssr_plugin.data.sample import Sample
from mmssr_plugin.scoring.config import JobConfig, ScorerConfig
from mmssr_plugin.scoring.executors.interrupts import ScoringInterrupted, interruptible
from mmssr_plugin.scoring.store import ScoreStore, Shard

__all__ = ["Execution", "ScoringError", "ScoringInterrupted", "ScoringPlan", "execute"]


class ScoringError(RuntimeError):
    """Scoring could not finish (a worker failed, or the cluster cannot run it); finished shards
    are kept and a rerun resumes. One line; ``log_path`` names a failed worker's log if any."""

    def __init__(self, message: str, log_path: Path | None = None) -> None:
        super().__init__(message)
        self.log_path = log_path


@dataclass(frozen=True)
class ScoringPlan:
    """What an executor scores: the pool, its shard plan and the tasks still to do (new shards,
    then the retried rows of finished shards)."""

    store: ScoreStore
    scorer: ScorerConfig
    capabilities: list[Capability]
    samples: Sequence[Sample]
    shards: list[Shard]
    pending: list[Shard]
    progress: bool = True

    @property
    def pending_samples(self) -> int:
        """Samples the pending tasks score."""
        return sum(task.size for task in self.pending)


@dataclass(frozen=True)
class Execution:
    """How the pending shards were scored: workers (processes or actors) and their devices."""

    workers: int
    devices: list[str] = field(default_factory=list)


def execute(plan: ScoringPlan, job: JobConfig) -> Execution:
    """Score ``plan.pending`` with the executor ``job.executor`` names.

    Raises:
        ScoringError: the executor could not finish (finished shards are kept).
        ScoringInterrupted: SIGINT or SIGTERM stopped the run (workers or actors stopped first).
    """
    if job.executor == "ray":
        from mmssr_plugin.scoring.executors.ray_data import run_on_ray as run
    else:
        from mmssr_plugin.scoring.executors.local import run_locally as run
    with interruptible(plan.store):
        return run(plan, job)
