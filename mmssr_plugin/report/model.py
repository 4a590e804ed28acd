"""What a report is made of: its JSON-ready content (:class:`ReportData`) and its typed inputs (the
selection's facts, the pool as source codes, the pool's scores, example records)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mmssr_plugin.selection.bins import StyleBins
from mmssr_plugin.selection.result import SelectionResult

REPORT_FORMAT = "mmssr-report/1"
DEFAULT_TOP_K = 5


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
        subsets: the registered subsets: ``{name, path, rows}`` each (empty: not registered).
        selected_samples: ``{total, rows, rows_left_out}``; each row the sample's uid, dataset,
            row, the capability that picked it, its score (argmax digit), expected score and
            style bins.
        failures: ``{file, total, rows, rows_left_out}``: the excluded or failed samples
            (dataset, row, uid, image, reason), the first ones listed, all in ``file``.
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
    subsets: list[dict[str, Any]] = field(default_factory=list)
    selected_samples: dict[str, Any] = field(default_factory=dict)
    failures: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A deep copy as plain dicts and lists."""
        return asdict(self)


@dataclass(frozen=True)
class SelectionFacts:
    """What the report says about the selection itself, whatever the pool's format.

    Attributes:
        selected: pool indices of the subset.
        budget: K, the requested subset size.
        config: the exact selection configuration (shown verbatim).
        per_capability: capability -> samples it contributed.
        exhausted: capabilities that ran out of eligible samples.
        shortfall_reason: why fewer than K samples were picked, if so.
        excluded_by_reason: validation problem kind -> samples (before the pool was formed).
        loaded: samples read before validation (None: unknown).
        scorer_fingerprint: what identifies the scores (None: not scored).
        key: the selection key, if any.
        picked_by: the capability that picked each selected sample, aligned with ``selected``.
        subsets: the registered subsets, ``{name, path, rows}`` each.
        failures: excluded or failed samples as ``FailureRecord`` dicts.
        failures_file: the file holding all of them.
    """

    selected: Sequence[int] | np.ndarray
    budget: int
    config: Mapping[str, Any]
    per_capability: Mapping[str, int] = field(default_factory=dict)
    exhausted: Sequence[str] = ()
    shortfall_reason: str | None = None
    excluded_by_reason: Mapping[str, int] = field(default_factory=dict)
    loaded: int | None = None
    scorer_fingerprint: Mapping[str, Any] | None = None
    key: str | None = None
    picked_by: Sequence[str] | None = None
    subsets: Sequence[Mapping[str, Any]] = ()
    failures: Sequence[Mapping[str, Any]] = ()
    failures_file: str | None = None

    @classmethod
    def of_result(cls, result: SelectionResult, config: Mapping[str, Any], **facts: Any) -> SelectionFacts:
        """The facts of a sampler result; ``facts`` gives the fields a result does not hold."""
        return cls(
            selected=result.indices, budget=result.budget, config=config,
            per_capability=result.per_capability, exhausted=result.exhausted,
            shortfall_reason=result.shortfall_reason, picked_by=result.picked_by, **facts,
        )


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
