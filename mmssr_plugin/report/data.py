"""The figures of a selection report, as plain JSON-ready data.

``count_report_data`` counts from arrays only (source codes, argmax / expected matrices, style
bins, precomputed scoring facts) and fetches just the few records shown as examples, so a
multi-million-sample pool needs no per-sample Python object. ``build_report_data`` adapts samples
and a score table to it. Every list shown to people is capped (bins, sources, examples, turn
text), so the report stays small and takes seconds to build.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mmssr_plugin.data.samples import Sample
from mmssr_plugin.scoring.job import failure_kind
from mmssr_plugin.selection.sampler import StyleBins
from mmssr_plugin.scoring.store import ScoreTable
from mmssr_plugin.core.taxonomy import STYLES

REPORT_FORMAT = "mmssr-report/1"
SCORE_LABELS = ("0", "1", "2", "3", "4", "5", "missing")
DEFAULT_TOP_K = 5
MAX_TABLE_ROWS = 300  # bins / sources listed in full up to this many
MAX_MATRIX_SOURCES = 30  # sources (columns) of the style x source matrix
MAX_TURNS = 6  # conversation turns kept per example
MAX_TURN_CHARS = 600  # characters kept per turn


@dataclass
class ReportData:
    """Everything a report shows; only str, int, float, bool, None, lists and dicts inside.

    Attributes:
        title: page title.
        key: the selection key (cache name of the manifest), if any.
        method: ``"mmssr"`` or ``"random"``.
        config: the exact selection configuration.
        scorer_fingerprint: content of the score store's ``fingerprint.json`` (None: random).
        sizes: loaded / pool / excluded / budget / subset / shortfall counts, the shortfall
            reason and the exhausted capabilities.
        excluded_by_reason: validation problem kind -> samples with it.
        scoring: scored / failed counts, failures by reason, non-digit answers per capability,
            style answers with unmatched text (None: random). Selections from the authors' score
            files have ``style_unmatched_pieces``, ``style_unparseable`` and ``score_files``
            instead of ``style_unmatched``; ``expected_available`` is False when the scores hold
            no expected score (means and examples' expected are then None).
        capabilities: per capability its picks, score histogram of pool and subset (argmax
            0..5 + missing) and mean expected score.
        style_bins: style x source bins with pool and subset counts, largest pool first, and a
            style x source matrix of the largest sources.
        sources: image sources with pool and subset counts, largest pool first.
        examples: capability -> ``{"top": [...], "bottom": [...]}`` scored pool examples.
        scorer_evaluation: the scorer's last evaluation against held-out teacher labels (page,
            headline figures), when one exists for the same scorer identity.
    """

    title: str
    key: str | None
    method: str
    config: dict[str, Any]
    scorer_fingerprint: dict[str, Any] | None
    sizes: dict[str, Any]
    excluded_by_reason: dict[str, int]
    scoring: dict[str, Any] | None
    capabilities: list[dict[str, Any]] = field(default_factory=list)
    style_bins: dict[str, Any] | None = None
    sources: dict[str, Any] = field(default_factory=dict)
    examples: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)
    format: str = REPORT_FORMAT
    scorer_evaluation: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A deep copy as plain dicts and lists."""
        return asdict(self)


@dataclass(frozen=True)
class ExampleRecord:
    """What an example card shows of one pool record.

    Attributes:
        uid: the record's id.
        dataset: the dataset (or pool file) it comes from.
        row: its row in that dataset.
        turns: alternating user/assistant texts, user first.
        images: image paths, resolved.
    """

    uid: str
    dataset: str
    row: int
    turns: Sequence[str]
    images: Sequence[str]


FetchRecords = Callable[[np.ndarray], Sequence[ExampleRecord]]


@dataclass(frozen=True, eq=False)
class PoolView:
    """A pool as the report counts it: a source code per sample; records only when shown.

    Attributes:
        source_codes: int ``[N]``, each sample's index into ``source_labels``.
        source_labels: image source names.
        fetch: the records at the given ascending pool positions (called once, for the few
            examples shown).
    """

    source_codes: np.ndarray
    source_labels: Sequence[str]
    fetch: FetchRecords

    def __len__(self) -> int:
        return len(self.source_codes)


@dataclass(frozen=True, eq=False)
class PoolScores:
    """A pool's scores as the report counts them.

    Attributes:
        capabilities: capability ids, in report order.
        argmax: int8 ``[N, *]``, argmax digit 0..5, -1 when missing.
        expected: float ``[N, *]`` expected score, NaN when missing; None when the scores have
            none (shown as n/a; examples are then ranked by argmax and pool order).
        columns: the column of each capability in ``argmax`` and ``expected``.
        bins: the pool's style bins.
        scoring: the scoring facts (``ReportData.scoring``), shown as given.
    """

    capabilities: Sequence[str]
    argmax: np.ndarray
    expected: np.ndarray | None
    columns: Sequence[int]
    bins: StyleBins
    scoring: dict[str, Any]


def build_report_data(
    pool: Sequence[Sample],
    selected: Sequence[int] | np.ndarray,
    *,
    budget: int,
    config: Mapping[str, Any],
    table: ScoreTable | None = None,
    capabilities: Sequence[str] | None = None,
    bins: StyleBins | None = None,
    per_capability: Mapping[str, int] | None = None,
    exhausted: Sequence[str] = (),
    shortfall_reason: str | None = None,
    excluded_by_reason: Mapping[str, int] | None = None,
    loaded: int | None = None,
    scorer_fingerprint: Mapping[str, Any] | None = None,
    key: str | None = None,
    top_k: int = DEFAULT_TOP_K,
) -> ReportData:
    """Count the figures of one selection made from samples and a score table.

    Args:
        pool: the valid samples the selection drew from, in pool order.
        selected: pool indices of the subset.
        budget: K, the requested subset size.
        config: the exact selection configuration (shown verbatim).
        table: the scores of ``pool`` (same order); None for the random method.
        capabilities: capability ids in selection order (default: the table's).
        bins: style bins of ``pool`` (default: built from the table's styles and sources).
        per_capability: capability -> samples it contributed.
        exhausted: capabilities that ran out of eligible samples.
        shortfall_reason: why fewer than K samples were picked, if so.
        excluded_by_reason: validation problem kind -> samples (before the pool was formed).
        loaded: samples read before validation (None: unknown).
        scorer_fingerprint: the score store's fingerprint content.
        key: the selection key.
        top_k: examples shown per capability at each end of the score range.

    Raises:
        ValueError: the table or bins do not cover the pool, or an index is out of range.
    """
    labels: dict[str, int] = {}
    codes = np.fromiter((labels.setdefault(s.source, len(labels)) for s in pool), np.int64, len(pool))
    view = PoolView(codes, tuple(labels), lambda at: [_sample_record(pool[i]) for i in at.tolist()])
    scores = None
    if table is not None:
        if list(table.uids) != [s.uid for s in pool]:
            raise ValueError("the score table does not cover the pool in pool order")
        caps = list(capabilities) if capabilities is not None else list(table.capabilities)
        columns = [table.capabilities.index(cap) for cap in caps]
        if bins is None:
            bins = StyleBins.from_styles(table.styles, [s.source for s in pool])
        scores = PoolScores(caps, table.digits.argmax, table.digits.expected, columns, bins,
                            _scoring_facts(table, caps, columns))
    return count_report_data(
        view, selected, budget=budget, config=config, scores=scores,
        per_capability=per_capability, exhausted=exhausted, shortfall_reason=shortfall_reason,
        excluded_by_reason=excluded_by_reason, loaded=loaded,
        scorer_fingerprint=scorer_fingerprint, key=key, top_k=top_k,
    )


def count_report_data(
    pool: PoolView,
    selected: Sequence[int] | np.ndarray,
    *,
    budget: int,
    config: Mapping[str, Any],
    scores: PoolScores | None = None,
    per_capability: Mapping[str, int] | None = None,
    exhausted: Sequence[str] = (),
    shortfall_reason: str | None = None,
    excluded_by_reason: Mapping[str, int] | None = None,
    loaded: int | None = None,
    scorer_fingerprint: Mapping[str, Any] | None = None,
    key: str | None = None,
    top_k: int = DEFAULT_TOP_K,
) -> ReportData:
    """Count the figures of one selection from arrays; only the examples' records are fetched.

    Args:
        pool: the pool's source codes and a way to fetch a few of its records.
        selected: pool indices of the subset.
        scores: the pool's scores, bins and scoring facts; None for the random method.
        (the others as in ``build_report_data``)

    Raises:
        ValueError: the scores or bins do not cover the pool, or an index is out of range.
    """
    n = len(pool)
    chosen = np.asarray(selected, dtype=np.int64)
    if (np.diff(chosen) <= 0).any():  # not ascending and unique already (np.unique is slow)
        chosen = np.unique(chosen)
    if len(chosen) and (chosen[0] < 0 or chosen[-1] >= n):
        raise ValueError(f"selected indices must lie in [0, {n})")
    mask = np.zeros(n, dtype=bool)
    mask[chosen] = True
    excluded = dict(excluded_by_reason or {})
    method = str(config.get("method", "mmssr" if scores is not None else "random"))
    data = ReportData(
        title=f"mmSSR selection report ({method}{', ' + key if key else ''})",
        key=key,
        method=method,
        config=_plain(dict(config)),
        scorer_fingerprint=_plain(dict(scorer_fingerprint)) if scorer_fingerprint else None,
        sizes={
            "loaded": loaded,
            "pool": n,
            "excluded": None if loaded is None else loaded - n,
            "budget": int(budget),
            "subset": len(chosen),
            "shortfall": int(budget) - len(chosen),
            "shortfall_reason": shortfall_reason,
            "exhausted": list(exhausted),
        },
        excluded_by_reason={str(k): int(v) for k, v in excluded.items()},
        scoring=None,
        sources=_count_table(_source_counts(pool, mask), ("source",)),
    )
    if scores is None:
        return data
    if len(scores.argmax) != n or (scores.expected is not None and len(scores.expected) != n):
        raise ValueError(f"the scores cover {len(scores.argmax)} samples but the pool has {n}")
    if len(scores.bins) != n:
        raise ValueError(f"style bins cover {len(scores.bins)} samples but the pool has {n}")
    picks = dict(per_capability or {})
    pairs = list(zip(scores.capabilities, scores.columns))
    data.scoring = _plain(scores.scoring)
    if scores.expected is None:
        data.scoring["expected_available"] = False
    data.capabilities = [
        _capability_facts(scores, cap, col, mask, picks.get(cap, 0)) for cap, col in pairs
    ]
    data.style_bins = _bin_facts(scores.bins, mask)
    data.examples = _examples(scores, pairs, pool, mask, top_k)
    return data


def _sample_record(sample: Sample) -> ExampleRecord:
    return ExampleRecord(sample.uid, sample.dataset, sample.row, sample.turns, sample.images)


def _scoring_facts(table: ScoreTable, caps: list[str], columns: list[int]) -> dict[str, Any]:
    scored = table.scored
    failures = Counter(failure_kind(err) for err in table.errors if err is not None)
    missing = table.digits.missing
    return {
        "scored": int(scored.sum()),
        "failed": int((~scored).sum()),
        "failures_by_reason": dict(sorted(failures.items(), key=lambda kv: (-kv[1], kv[0]))),
        "non_digit": {cap: int((missing[:, col] & scored).sum()) for cap, col in zip(caps, columns)},
        "style_unmatched": int((np.asarray(table.style_unmatched) > 0).sum()),
    }


def _capability_facts(
    scores: PoolScores, cap: str, col: int, mask: np.ndarray, picked: int
) -> dict[str, Any]:
    codes = scores.argmax[:, col].view(np.uint8)  # digits 0..5; missing (-1) reads as 255
    expected = scores.expected[:, col] if scores.expected is not None else None
    return {
        "id": cap,
        "picked": int(picked),
        "labels": list(SCORE_LABELS),
        "pool": _score_counts(codes),
        "subset": _score_counts(codes[mask]),
        "mean_expected_pool": None if expected is None else _mean(expected),
        "mean_expected_subset": None if expected is None else _mean(expected[mask]),
    }


def _score_counts(codes: np.ndarray) -> list[int]:
    """Samples per digit 0..5, then missing, of uint8 digit codes."""
    counts = np.bincount(codes, minlength=256)
    return [*counts[:6].tolist(), int(counts[6:].sum())]


def _bin_facts(bins: StyleBins, mask: np.ndarray) -> dict[str, Any]:
    n_bins = len(bins.labels)
    pool = np.bincount(bins.ids, minlength=n_bins)
    member = np.repeat(mask, np.diff(bins.offsets))
    subset = np.bincount(bins.ids[member], minlength=n_bins)
    counts = {label: (int(pool[b]), int(subset[b])) for b, label in enumerate(bins.labels)}
    facts = _count_table(counts, ("style", "source"))
    facts["covered"] = int((subset > 0).sum())
    facts["matrix"] = _style_source_matrix(counts)
    return facts


def _style_source_matrix(counts: Mapping[str, tuple[int, int]]) -> dict[str, Any]:
    """Pool and subset counts as ``[style][source]`` grids over the largest sources.

    Styles follow the method's order (then any others by name); sources go by pool memberships,
    largest first, ties by name.
    """
    cells: dict[tuple[str, str], tuple[int, int]] = {}
    by_source: Counter[str] = Counter()
    for label, (pool, subset) in counts.items():
        style, _, source = label.partition("+")
        cells[(style, source)] = (pool, subset)
        by_source[source] += pool
    present = {style for style, _ in cells}
    styles = [s for s in (*STYLES, "unknown") if s in present] + sorted(
        present - {*STYLES, "unknown"})
    sources = sorted(by_source, key=lambda name: (-by_source[name], name))
    shown = sources[:MAX_MATRIX_SOURCES]
    return {
        "styles": styles,
        "sources": shown,
        "sources_left_out": len(sources) - len(shown),
        "pool": [[cells.get((st, so), (0, 0))[0] for so in shown] for st in styles],
        "subset": [[cells.get((st, so), (0, 0))[1] for so in shown] for st in styles],
    }


def _source_counts(pool: PoolView, mask: np.ndarray) -> dict[str, tuple[int, int]]:
    labels = pool.source_labels
    codes = np.asarray(pool.source_codes, dtype=np.int64)
    in_pool = np.bincount(codes, minlength=len(labels))
    in_subset = np.bincount(codes[mask], minlength=len(labels))
    return {labels[c]: (int(in_pool[c]), int(in_subset[c])) for c in np.flatnonzero(in_pool)}


def _count_table(counts: Mapping[str, tuple[int, int]], parts: tuple[str, ...]) -> dict[str, Any]:
    """Rows ``{label, <parts>, pool, subset}``, largest pool first, ties by label; capped.

    A label splits into ``parts`` at the first ``"+"`` (bin labels are ``"{style}+{source}"``).
    """
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1][0], kv[0]))
    rows = []
    for label, (pool, subset) in ordered[:MAX_TABLE_ROWS]:
        pieces = label.split("+", 1) if len(parts) > 1 else [label]
        row: dict[str, Any] = dict(zip(parts, pieces + [""] * (len(parts) - len(pieces))))
        row.update(label=label, pool=pool, subset=subset)
        rows.append(row)
    return {
        "total": len(ordered),
        "rows": rows,
        "rows_left_out": max(len(ordered) - MAX_TABLE_ROWS, 0),
    }


def _examples(
    scores: PoolScores, pairs: list[tuple[str, int]], pool: PoolView, mask: np.ndarray, k: int
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Per capability the k highest and k lowest scored pool samples; their records are fetched
    in one call."""
    ends = {cap: _extremes(scores, col, k) for cap, col in pairs}
    shown = [positions for top, bottom in ends.values() for positions in (top, bottom)]
    wanted = np.unique(np.concatenate(shown)) if shown else np.zeros(0, dtype=np.int64)
    records = dict(zip(wanted.tolist(), pool.fetch(wanted))) if len(wanted) else {}

    def example(i: int, col: int) -> dict[str, Any]:
        expected = math.nan if scores.expected is None else float(scores.expected[i, col])
        source = pool.source_labels[int(pool.source_codes[i])]
        return _example(records[i], source, int(scores.argmax[i, col]), expected, bool(mask[i]))

    return {
        cap: {"top": [example(i, col) for i in ends[cap][0].tolist()],
              "bottom": [example(i, col) for i in ends[cap][1].tolist()]}
        for cap, col in pairs
    }


def _extremes(scores: PoolScores, col: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the k highest and k lowest scored samples (argmax, then expected when there
    is one, then pool order)."""
    argmax = scores.argmax[:, col]
    if scores.expected is None:
        usable = np.flatnonzero(argmax >= 0)
        rank = argmax[usable]  # int8: digits 0..5, cheap to negate, partition and compare
    else:
        expected = scores.expected[:, col].astype(np.float64)
        usable = np.flatnonzero((argmax >= 0) & np.isfinite(expected))
        rank = argmax[usable].astype(np.float64) * 8.0 + expected[usable]  # argmax first
    return usable[_extreme(-rank, k)], usable[_extreme(rank, k)]


def _extreme(keys: np.ndarray, k: int) -> np.ndarray:
    """Positions of the k smallest keys, ascending, ties in position order; O(n) for large n."""
    if k <= 0 or len(keys) == 0:
        return np.zeros(0, dtype=np.int64)
    if len(keys) <= k:
        return np.argsort(keys, kind="stable")
    lowest = np.flatnonzero(keys == keys.min())
    if len(lowest) >= k:  # common with digit scores: many ties at the extreme, no partition needed
        return lowest[:k]
    cut = np.partition(keys, k - 1)[k - 1]
    below = np.flatnonzero(keys < cut)  # fewer than k
    below = below[np.argsort(keys[below], kind="stable")]
    return np.concatenate([below, np.flatnonzero(keys == cut)[: k - len(below)]])


def _example(
    record: ExampleRecord, source: str, argmax: int, expected: float, selected: bool
) -> dict[str, Any]:
    turns = [_clip(text) for text in record.turns[:MAX_TURNS]]
    return {
        "uid": record.uid,
        "dataset": record.dataset,
        "row": record.row,
        "source": source,
        "score": argmax,
        "expected": _round(expected),
        "selected": selected,
        "turns": turns,
        "turns_left_out": max(len(record.turns) - MAX_TURNS, 0),
        "image": record.images[0] if record.images else None,
        "n_images": len(record.images),
    }


def _clip(text: str) -> str:
    if len(text) <= MAX_TURN_CHARS:
        return text
    return f"{text[:MAX_TURN_CHARS]}... [{len(text) - MAX_TURN_CHARS} more characters]"


def _mean(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return _round(float(finite.mean())) if len(finite) else None


def _round(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else round(float(value), 4)


def _plain(value: Any) -> Any:
    """JSON-safe copy: NaN/inf become None, tuples lists, numpy scalars Python ones, keys str."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return _round(value) if not math.isfinite(value) else value
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)
