"""The selection methods: ``mmssr`` (the sampler over ranked scores and style bins) and
``random`` (a seeded uniform draw). Both return a :class:`SelectionResult` in pool order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mmssr_plugin.selection.bins import StyleBins
from mmssr_plugin.selection.budget import Budget, resolve_budget
from mmssr_plugin.selection.ranking import DigitMatrices, ranking_matrices
from mmssr_plugin.selection.result import SelectionResult
from mmssr_plugin.selection.sampler import select

METHODS = ("mmssr", "random")


@dataclass(frozen=True, eq=False)
class MmssrSelection:
    """An mmSSR selection and what it was made from.

    Attributes:
        result: the picks.
        scores: float ``[N, C]`` the sampler ranked by (NaN: missing).
        bins: the pool's style bins.
    """

    result: SelectionResult
    scores: np.ndarray
    bins: StyleBins


def select_mmssr(
    digits: DigitMatrices,
    styles: Sequence[Sequence[str]],
    sources: Sequence[str],
    capabilities: Sequence[str],
    budget: Budget,
    threshold: float = 0.0,
    ranking: str = "argmax",
) -> MmssrSelection:
    """Rank the digit scores, bin the pool by style and source, and run the mmSSR sampler.

    Args:
        digits: the pool's digit scores, one column per capability in ``capabilities`` order.
        styles: each sample's styles; sources: each sample's image source.
        capabilities: capability ids, in the order the sampler visits them.
        budget: ratio in (0, 1] or sample count >= 1.
        threshold: a sample is eligible for a capability only if its score is above this.
        ranking: one of ``RANKINGS``.
    """
    scores, tiebreak = ranking_matrices(digits, ranking)
    bins = StyleBins.from_styles(styles, sources)
    result = select(scores, capabilities, bins, budget, threshold, tiebreak)
    return MmssrSelection(result, scores, bins)


def select_random(pool_size: int, budget: Budget, seed: int) -> SelectionResult:
    """K samples drawn uniformly without replacement by a generator seeded with ``seed``.

    A count budget larger than the pool takes the whole pool and says why it fell short.
    """
    k = resolve_budget(budget, pool_size)
    take = min(k, pool_size)
    rng = np.random.default_rng(seed)
    indices = np.sort(rng.choice(pool_size, size=take, replace=False)).astype(np.int64)
    note = None
    if take < k:
        note = f"the pool has only {pool_size} valid samples, fewer than the budget {k}"
    return SelectionResult(indices, k, {}, [], rounds=0, shortfall_note=note)
