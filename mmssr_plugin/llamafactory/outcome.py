"""What one run of the selection stage produced, as typed values passed between its steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmssr_plugin.scoring.store import ScoreTable
from mmssr_plugin.scoring.summary import ScoringSummary
from mmssr_plugin.selection.bins import StyleBins
from mmssr_plugin.selection.result import SelectionResult


@dataclass(frozen=True, eq=False)
class ScoredPool:
    """The mmssr method's view of the valid pool: its scores and style bins.

    Attributes:
        summary: what the scoring job did (store path, fingerprint key, counts).
        table: the stored scores of the valid samples, in pool order.
        capabilities: capability ids, in the order of the score columns.
        scores: float ``[N, C]`` the sampler ranked by (NaN: missing).
        bins: the pool's style bins.
        evaluation: what the report shows of the scorer's last held-out evaluation, if any.
    """

    summary: ScoringSummary
    table: ScoreTable
    capabilities: list[str]
    scores: np.ndarray
    bins: StyleBins
    evaluation: dict[str, Any] | None = None


@dataclass(frozen=True, eq=False)
class Picked:
    """The samples a method picked, with the scores behind them (mmssr only)."""

    result: SelectionResult
    scored: ScoredPool | None = None


@dataclass
class MadeSelection:
    """A new selection: the manifest the stage caches and the summary it shows.

    Attributes:
        manifest: plain JSON data: subset parts, provenance, sizes, config, report path.
        summary_lines: the human-readable summary (also recorded in the manifest).
    """

    manifest: dict[str, Any]
    summary_lines: list[str] = field(default_factory=list)
