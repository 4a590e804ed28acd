"""Executors of a scoring job: where its pending shards are scored.

``local`` runs worker processes on this machine (:mod:`.local`); ``ray`` runs an actor pool on a
Ray cluster through Ray Data (:mod:`.ray_data`). Both write the same store the same way; Ray is
imported only when the ``ray`` executor is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from mmssr_plugin.core.taxonomy import Capability
from mmssr_plugin.data.sample import Sample
from mmssr_plugin.scoring.config import JobConfig, ScorerConfig
from mmssr_plugin.scoring.store import ScoreStore, Shard


class ScoringError(RuntimeError):
    """Scoring could not finish (a worker failed, or the cluster cannot run it); finished shards
    are kept and a rerun resumes."""


@dataclass(frozen=True)
class ScoringPlan:
    """What an executor scores: the pool, its shard plan and the shards still to do."""

    store: ScoreStore
    scorer: ScorerConfig
    capabilities: list[Capability]
    samples: Sequence[Sample]
    shards: list[Shard]
    pending: list[Shard]
    progress: bool = True

    @property
    def pending_samples(self) -> int:
        """Samples in the pending shards."""
        return sum(s.stop - s.start for s in self.pending)


@dataclass(frozen=True)
class Execution:
    """How the pending shards were scored: workers (processes or actors) and their devices."""

    workers: int
    devices: list[str] = field(default_factory=list)


def execute(plan: ScoringPlan, job: JobConfig) -> Execution:
    """Score ``plan.pending`` with the executor ``job.executor`` names."""
    if job.executor == "ray":
        from mmssr_plugin.scoring.executors.ray_data import run_on_ray

        return run_on_ray(plan, job)
    from mmssr_plugin.scoring.executors.local import run_locally

    return run_locally(plan, job)
