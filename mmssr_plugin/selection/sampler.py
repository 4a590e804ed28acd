"""The mmSSR sampler: capability shares spread over style bins, smallest bin first.

Implements "Sampling algorithm (specification for this project)" of ``docs/method.md`` exactly,
with numpy only. Each capability's eligible samples are sorted once and grouped per style bin;
picking then walks per-(capability, bin) pointers over those lists, and a per-(capability, bin)
count of eligible unpicked members is kept up to date with ``bincount``. No Python loop runs over
samples; the loops run over rounds, capabilities and bins.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from mmssr_plugin.selection.bins import StyleBins
from mmssr_plugin.selection.budget import Budget, resolve_budget
from mmssr_plugin.selection.memberships import Memberships
from mmssr_plugin.selection.ordering import descending_order
from mmssr_plugin.selection.result import SelectionResult


def select(
    scores: np.ndarray,
    capabilities: Sequence[str],
    bins: StyleBins,
    budget: Budget,
    threshold: float = 0.0,
    tiebreak: np.ndarray | None = None,
) -> SelectionResult:
    """Select a subset with the mmSSR sampler of the method notes.

    Args:
        scores: float ``[N, C]``; NaN means not scored (never eligible).
        capabilities: the C capability ids, in the order the sampler visits them.
        bins: style bins of the N samples.
        budget: ratio in (0, 1] or sample count >= 1 (see ``resolve_budget``).
        threshold: a sample is eligible for capability c only if ``scores[i, c] > threshold``.
        tiebreak: optional float ``[N, C]``; among equal scores higher tiebreak goes first (NaN
            after any number), then pool order. It never affects eligibility.

    Returns:
        The selection, in pool order, with per-capability counts and any shortfall.

    Raises:
        ValueError: on inconsistent shapes, duplicate capability ids, a NaN threshold or a bad
            budget.
    """
    scores = _as_matrix(scores, "scores")
    caps = list(capabilities)
    n, c = scores.shape
    if len(caps) != c:
        raise ValueError(f"scores has {c} columns but {len(caps)} capabilities were given")
    if len(set(caps)) != len(caps):
        raise ValueError(f"capability ids must be unique, got {caps}")
    if not isinstance(bins, StyleBins):
        raise TypeError(f"bins must be a StyleBins, got {type(bins).__name__}")
    if len(bins) != n:
        raise ValueError(f"bins cover {len(bins)} samples but scores has {n} rows")
    if tiebreak is not None:
        tiebreak = _as_matrix(tiebreak, "tiebreak")
        if tiebreak.shape != scores.shape:
            raise ValueError(
                f"tiebreak has shape {tiebreak.shape} but scores has shape {scores.shape}"
            )
    threshold = float(threshold)
    if math.isnan(threshold):
        raise ValueError("threshold is NaN")
    k = resolve_budget(budget, n)

    sampler = _Sampler(scores, bins, threshold, tiebreak)
    counts, exhausted, rounds = sampler.run(k)
    indices = np.flatnonzero(sampler.picked).astype(np.int64)
    return SelectionResult(
        indices=indices,
        budget=k,
        per_capability={cap: counts[i] for i, cap in enumerate(caps)},
        exhausted=[caps[i] for i in exhausted],
        rounds=rounds,
        threshold=threshold,
        picked_by=[caps[c] for c in sampler.picked_by[indices].tolist()],
    )


def _as_matrix(values: np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D [samples, capabilities], got shape {array.shape}")
    if array.dtype == np.bool_ or not (
        np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
    ):
        raise ValueError(f"{name} must hold real numbers, got dtype {array.dtype}")
    return array


class _Sampler:
    """Mutable state of one run: per-capability bin lists, pointers, counts, picked mask."""

    def __init__(
        self, scores: np.ndarray, bins: StyleBins, threshold: float, tiebreak: np.ndarray | None
    ) -> None:
        self.scores = scores
        self.threshold = threshold
        n, n_caps = scores.shape
        n_bins = len(bins.labels)
        self.n_bins = n_bins
        self.memberships = Memberships(bins)
        self.picked = np.zeros(n, dtype=bool)
        self.picked_by = np.full(n, -1, dtype=np.int64)  # the capability that picked each sample
        self.label_rank = np.empty(n_bins, dtype=np.int64)
        self.label_rank[sorted(range(n_bins), key=bins.labels.__getitem__)] = np.arange(n_bins)
        self.members: list[np.ndarray] = []  # per capability: sample ids grouped by bin
        self.starts = np.zeros((n_caps, n_bins + 1), dtype=np.int64)  # bin segment bounds
        for cap in range(n_caps):
            grouped, sizes = self.memberships.group(self._capability_order(cap, tiebreak))
            self.members.append(grouped)
            np.cumsum(sizes, out=self.starts[cap, 1:])
        self.pointer = self.starts[:, :-1].copy()  # first possibly unpicked member per bin
        self.remaining = np.diff(self.starts, axis=1)  # eligible unpicked members per bin

    def _capability_order(self, cap: int, tiebreak: np.ndarray | None) -> np.ndarray:
        """Eligible samples of one capability: score desc, tiebreak desc, pool order."""
        column = np.asarray(self.scores[:, cap], dtype=np.float64)
        eligible = np.flatnonzero(column > self.threshold)
        score = column[eligible]
        if tiebreak is None:
            return eligible[descending_order(score)]
        order = descending_order(np.asarray(tiebreak[eligible, cap], dtype=np.float64))
        return eligible[order[descending_order(score[order])]]

    def run(self, budget: int) -> tuple[list[int], list[int], int]:
        """Run the outer loop of the spec.

        Returns:
            ``(per-capability counts, exhausted capabilities in order, rounds)``.
        """
        n_caps = self.scores.shape[1]
        counts = [0] * n_caps
        exhausted: list[int] = []
        caps = list(range(n_caps))
        total = 0
        rounds = 0
        while total < budget and caps:
            rounds += 1
            per_cap = max((budget - total) // len(caps), 1)
            gone: list[int] = []
            for cap in caps:
                quota = min(per_cap, budget - total)
                if not self.remaining[cap].any():
                    gone.append(cap)
                    continue
                taken = self._pick_by_style(cap, quota)
                counts[cap] += taken
                total += taken
                if total >= budget:
                    break
            caps = [cap for cap in caps if cap not in gone]
            exhausted.extend(gone)
        return counts, exhausted, rounds

    def _pick_by_style(self, cap: int, quota: int) -> int:
        """Pick up to ``quota`` samples for one capability; returns how many were picked."""
        remaining = self.remaining[cap]
        live = np.flatnonzero(remaining)
        order = live[np.lexsort((self.label_rank[live], remaining[live]))]
        per_bin = max(quota // len(live), 1)
        debt = 0
        taken = 0
        chunks: list[np.ndarray] = []
        for b in order.tolist():
            if taken >= quota:
                break
            avail = int(remaining[b])
            take = min(per_bin + debt, avail, quota - taken)
            debt = max(per_bin + debt - avail, 0)
            if take == 0:
                continue
            chosen = self._take(cap, b, take)
            self.picked[chosen] = True
            self.picked_by[chosen] = cap
            remaining -= np.bincount(self.memberships.of(chosen)[0], minlength=self.n_bins)
            chunks.append(chosen)
            taken += take
        if chunks:
            self._discount_others(np.concatenate(chunks), cap)
        return taken

    def _take(self, cap: int, b: int, take: int) -> np.ndarray:
        """The first ``take`` unpicked members of bin ``b`` in capability ``cap``'s order."""
        members = self.members[cap]
        start = int(self.pointer[cap, b])
        end = int(self.starts[cap, b + 1])
        span = take + take // 2 + 16
        while True:
            stop = min(start + span, end)
            window = members[start:stop]
            free = np.flatnonzero(~self.picked[window])
            if len(free) >= take or stop == end:
                break
            span *= 2
        if len(free) < take:
            raise AssertionError("bin counts out of step with bin lists")  # cannot happen
        free = free[:take]
        self.pointer[cap, b] = start + int(free[-1]) + 1
        return window[free]

    def _discount_others(self, chosen: np.ndarray, cap: int) -> None:
        """Remove newly picked samples from the bin counts of every other capability."""
        bin_ids, owner = self.memberships.of(chosen)
        eligible = self.scores[chosen] > self.threshold  # [len(chosen), C]
        eligible[:, cap] = False  # already counted while picking
        n_caps = eligible.shape[1]
        cells = np.arange(n_caps, dtype=np.int64) * self.n_bins + bin_ids[:, None]
        hits = np.bincount(cells[eligible[owner]], minlength=n_caps * self.n_bins)
        self.remaining -= hits.reshape(n_caps, self.n_bins)
