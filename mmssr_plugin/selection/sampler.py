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
from dataclasses import dataclass

import numpy as np

_RATIO_TOLERANCE = 1e-9  # relative; absorbs float error in N * r (100 * 0.29 = 28.999999999999996)
_PAD_WIDTH = 16  # most bins per sample for the padded membership table


@dataclass(frozen=True, eq=False)  # arrays inside: compare by identity
class StyleBins:
    """Per-sample bin membership in CSR form.

    Sample ``i`` is in bins ``ids[offsets[i]:offsets[i + 1]]``; every sample is in at least one
    bin and in no bin twice.

    Attributes:
        labels: bin label per bin id (unique).
        offsets: int64, shape ``[N + 1]``.
        ids: int32 bin ids.
    """

    labels: tuple[str, ...]
    offsets: np.ndarray
    ids: np.ndarray

    def __post_init__(self) -> None:
        labels = tuple(self.labels)
        offsets = np.asarray(self.offsets, dtype=np.int64)
        ids = np.asarray(self.ids, dtype=np.int32)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "offsets", offsets)
        object.__setattr__(self, "ids", ids)
        if not all(isinstance(label, str) for label in labels):
            raise ValueError("StyleBins labels must be strings")
        if len(set(labels)) != len(labels):
            raise ValueError("StyleBins labels must be unique")
        if offsets.ndim != 1 or ids.ndim != 1 or len(offsets) == 0:
            raise ValueError("StyleBins offsets and ids must be 1-D, offsets of length N + 1")
        if offsets[0] != 0 or offsets[-1] != len(ids):
            raise ValueError(
                f"StyleBins offsets must start at 0 and end at len(ids) = {len(ids)}, "
                f"got {offsets[0]} .. {offsets[-1]}"
            )
        sizes = np.diff(offsets)
        if len(sizes) and sizes.min() < 1:
            first = int(np.flatnonzero(sizes < 1)[0])
            raise ValueError(f"every sample needs at least one bin; sample {first} has none")
        if len(ids) and (ids.min() < 0 or ids.max() >= len(labels)):
            raise ValueError(f"StyleBins ids must lie in [0, {len(labels)})")
        if _has_duplicate_per_sample(offsets, ids, len(labels)):
            raise ValueError("a sample lists the same bin twice")

    @classmethod
    def from_lists(cls, per_sample: Sequence[Sequence[str]]) -> StyleBins:
        """Build bins from each sample's labels.

        Bin ids follow sorted label order, so nothing depends on string hashing; duplicate
        labels within a sample collapse.

        Args:
            per_sample: the bin labels of each sample, at least one per sample.

        Returns:
            The bins, ids sorted within each sample.
        """
        counts = np.fromiter((_label_count(labels) for labels in per_sample), np.int64)
        flat = [label for labels in per_sample for label in labels]
        labels = tuple(sorted(set(flat)))
        lookup = {label: i for i, label in enumerate(labels)}
        ids = np.fromiter((lookup[label] for label in flat), np.int64, count=len(flat))
        owner = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
        width = max(len(labels), 1)
        pairs = np.unique(owner * width + ids)  # unique (sample, bin), by sample then bin id
        kept = np.bincount(pairs // width, minlength=len(counts))
        offsets = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(kept, out=offsets[1:])
        return cls(labels, offsets, (pairs % width).astype(np.int32))

    @classmethod
    def from_styles(cls, styles: Sequence[Sequence[str]], sources: Sequence[str]) -> StyleBins:
        """Build the ``"{style}+{source}"`` bins of the method.

        Args:
            styles: each sample's styles (may be empty).
            sources: each sample's image source.

        Returns:
            The bins; a sample without a style is in ``"unknown+{source}"``.
        """
        if len(styles) != len(sources):
            raise ValueError(f"got styles for {len(styles)} samples but {len(sources)} sources")
        per_sample = []
        for sample, source in zip(styles, sources):
            named = sample if _label_count(sample) else ("unknown",)
            per_sample.append([f"{style}+{source}" for style in named])
        return cls.from_lists(per_sample)

    def __len__(self) -> int:
        return len(self.offsets) - 1


def _label_count(labels: Sequence[str]) -> int:
    if isinstance(labels, str):
        raise TypeError(f"expected a list of labels per sample, got the string {labels!r}")
    return len(labels)


def _has_duplicate_per_sample(offsets: np.ndarray, ids: np.ndarray, n_labels: int) -> bool:
    """True when some sample lists a bin twice (fast when ids ascend within samples)."""
    if len(ids) < 2:
        return False
    rises = ids[1:] > ids[:-1]
    starts = offsets[1:-1]
    rises[starts[(starts > 0) & (starts < len(ids))] - 1] = True  # sample boundaries
    if rises.all():
        return False
    keys = np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), np.diff(offsets))
    keys *= n_labels
    keys += ids
    keys.sort()
    return bool((keys[1:] == keys[:-1]).any())


def resolve_budget(budget: float | int, pool_size: int) -> int:
    """Turn a budget into a sample count K.

    Args:
        budget: a float ratio in (0, 1] (K = floor(N * r)) or an int count >= 1 (K = budget).
        pool_size: N, the number of samples in the pool.

    Returns:
        K. A ratio's floor tolerates float error of 1e-9 relative (100 * 0.29 gives 29).

    Raises:
        ValueError: for a bool, a count < 1, a ratio outside (0, 1], NaN, or a negative pool.
    """
    if isinstance(pool_size, (bool, np.bool_)) or not isinstance(pool_size, (int, np.integer)):
        raise TypeError(f"pool_size must be an int, got {pool_size!r}")
    if pool_size < 0:
        raise ValueError(f"pool_size must be >= 0, got {pool_size}")
    if isinstance(budget, (bool, np.bool_)):
        raise ValueError(
            f"budget must be a ratio in (0, 1] or a sample count >= 1, not the bool {budget}"
        )
    if isinstance(budget, (int, np.integer)):
        if budget < 1:
            raise ValueError(f"a sample-count budget must be >= 1, got {budget}")
        return int(budget)
    if isinstance(budget, (float, np.floating)):
        ratio = float(budget)
        if math.isnan(ratio):
            raise ValueError("budget ratio is NaN")
        if not 0.0 < ratio <= 1.0:
            raise ValueError(
                f"a float budget is a ratio of the pool and must lie in (0, 1], got {ratio}; "
                "pass an int for a sample count"
            )
        exact = pool_size * ratio
        nearest = round(exact)
        if abs(exact - nearest) <= _RATIO_TOLERANCE * max(1.0, exact):
            return min(int(nearest), pool_size)
        return min(math.floor(exact), pool_size)
    raise ValueError(
        f"budget must be a float ratio in (0, 1] or an int count >= 1, got {type(budget).__name__}"
    )


@dataclass
class SelectionResult:
    """What the sampler picked.

    Attributes:
        indices: selected pool indices, ascending (pool order), int64.
        budget: K, the requested number of samples.
        per_capability: capability id -> samples it contributed, in capability order.
        exhausted: capabilities that ran out of eligible samples, in the order they ran out.
        rounds: rounds of the outer loop.
        threshold: the eligibility threshold used (for the shortfall sentence).
    """

    indices: np.ndarray
    budget: int
    per_capability: dict[str, int]
    exhausted: list[str]
    rounds: int
    threshold: float = 0.0

    @property
    def shortfall(self) -> int:
        """K minus the number of selected samples."""
        return self.budget - len(self.indices)

    @property
    def shortfall_reason(self) -> str | None:
        """None without shortfall, else why fewer than K samples were selected."""
        if self.shortfall <= 0:
            return None
        n_caps = len(self.per_capability)
        if n_caps == 0:
            return (
                f"no capabilities were given, so none of the {self.budget} requested samples "
                "could be selected"
            )
        which = "the 1 capability" if n_caps == 1 else f"any of the {n_caps} capabilities"
        return (
            f"only {len(self.indices)} of {self.budget} requested samples had a score above the "
            f"threshold {self.threshold:g} for {which}; all capabilities ran out"
        )


def select(
    scores: np.ndarray,
    capabilities: Sequence[str],
    bins: StyleBins,
    budget: float | int,
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
    return SelectionResult(
        indices=np.flatnonzero(sampler.picked).astype(np.int64),
        budget=k,
        per_capability={cap: counts[i] for i, cap in enumerate(caps)},
        exhausted=[caps[i] for i in exhausted],
        rounds=rounds,
        threshold=threshold,
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


def _descending(values: np.ndarray) -> np.ndarray:
    """Stable argsort by value descending, NaN last (-0.0 equals 0.0)."""
    with np.errstate(over="ignore"):  # huge values just miss the fast paths
        if len(values) and np.isfinite(values).all():
            low, high = values.min(), values.max()
            if high - low < 65535 and np.array_equal(values, np.floor(values)):
                key_type = np.uint8 if high - low < 255 else np.uint16
                return np.argsort((high - values).astype(key_type), kind="stable")  # radix
        narrow = values.astype(np.float32)
    if len(values) < 2**32 and np.array_equal(narrow, values, equal_nan=True):
        return _descending_float32(narrow)
    return np.argsort(-values, kind="stable")


def _descending_float32(values: np.ndarray) -> np.ndarray:
    """``_descending`` for float32 values: one sort of unique ``(value key, position)`` words."""
    bits = (values + np.float32(0)).view(np.uint32).astype(np.uint64)  # + 0 makes -0.0 0.0
    ascending = np.where(bits >> 31, bits ^ 0xFFFFFFFF, bits | 0x80000000)  # order-preserving
    key = 0xFFFFFFFF - ascending
    key[np.isnan(values)] = 0xFFFFFFFF
    packed = (key << 32) | np.arange(len(values), dtype=np.uint64)
    packed.sort()  # keys are unique, so any sort is stable
    return (packed & 0xFFFFFFFF).astype(np.int64)


class _Memberships:
    """Fast access to the bins of many samples at once.

    Samples in at most ``_PAD_WIDTH`` bins (always the case for style bins) use a padded
    ``[N, width]`` table of small-int bin ids, which makes gathers contiguous and lets numpy's
    radix sort group by bin; wider memberships fall back to CSR expansion.
    """

    def __init__(self, bins: StyleBins) -> None:
        self.n_bins = len(bins.labels)
        self.key_type = (
            np.uint8 if self.n_bins < 255 else np.uint16 if self.n_bins < 65535 else np.int32
        )  # leaves room for the padding value n_bins
        sizes = np.diff(bins.offsets)
        self.width = int(sizes.max()) if len(sizes) else 0
        self.offsets = bins.offsets
        self.keys = bins.ids.astype(self.key_type)
        self.table: np.ndarray | None = None
        if self.width <= _PAD_WIDTH:
            self.table = np.full((len(sizes), self.width), self.n_bins, dtype=self.key_type)
            for slot in range(self.width):
                rows = np.flatnonzero(sizes > slot)
                self.table[rows, slot] = self.keys[bins.offsets[rows] + slot]

    def of(self, samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bins of ``samples``, flattened, and the position in ``samples`` each belongs to."""
        if self.table is not None:
            rows = self.table[samples]
            valid = rows != self.n_bins
            return rows[valid], np.nonzero(valid)[0]
        starts = self.offsets[samples]
        sizes = self.offsets[samples + 1] - starts
        ends = np.cumsum(sizes)
        total = int(ends[-1]) if len(ends) else 0
        positions = np.arange(total, dtype=np.int64) + np.repeat(starts - (ends - sizes), sizes)
        return self.keys[positions], np.repeat(np.arange(len(samples)), sizes)

    def group(self, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Memberships of ``order``'s samples grouped by bin id, ``order`` kept within a bin.

        Returns:
            ``(sample ids as int32, members per bin)``.
        """
        if self.table is not None:
            flat = self.table[order].ravel()
            by_bin = np.argsort(flat, kind="stable")  # radix sort on 8/16-bit keys
            sizes = np.bincount(flat, minlength=self.n_bins + 1)[: self.n_bins]
            return order.astype(np.int32)[by_bin[: int(sizes.sum())] // self.width], sizes
        keys, owner = self.of(order)
        by_bin = np.argsort(keys, kind="stable")
        return order.astype(np.int32)[owner[by_bin]], np.bincount(keys, minlength=self.n_bins)


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
        self.memberships = _Memberships(bins)
        self.picked = np.zeros(n, dtype=bool)
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
            return eligible[_descending(score)]
        order = _descending(np.asarray(tiebreak[eligible, cap], dtype=np.float64))
        return eligible[order[_descending(score[order])]]

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
