"""Held-out teacher labels joined to their samples: what a scorer is evaluated on.

Two sources: any label files of ``curate`` (every labelled sample of the pool is held out), or the
validation split that ``build-scorer-data`` wrote (only the samples whose conversations are in
that split, found by rebuilding each labelled sample's conversations and matching them, so the
held-out set is exactly what the scorer's training did not see).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mmssr_plugin.core.taxonomy import Capability
from mmssr_plugin.curation.labels import read_labels
from mmssr_plugin.curation.scorer_data import (
    VAL_SUFFIX,
    MergedLabel,
    ScorerDataSummary,
    usable_samples,
    merge_labels,
    scorer_conversations,
)
from mmssr_plugin.data.load import load_samples
from mmssr_plugin.data.registry import REGISTRY_FILE, load_dataset_info
from mmssr_plugin.data.sample import Sample


class HeldOutError(ValueError):
    """The held-out labels cannot be read or matched to samples (one actionable message)."""


@dataclass
class HeldOut:
    """Labelled samples to evaluate a scorer on.

    Attributes:
        samples: valid samples, in pool order.
        capabilities: the evaluated capabilities with the labels' keywords, in label order.
        scores: int ``[N, C]`` teacher scores 0..5; -1 where the teacher did not score the pair.
        styles: the teacher's styles per sample (empty: no style label).
        source: where the labels came from and what was left out, as plain JSON data.
    """

    samples: list[Sample]
    capabilities: list[Capability]
    scores: np.ndarray
    styles: list[tuple[str, ...]]
    source: dict[str, Any] = field(default_factory=dict)


def held_out_from_labels(
    label_paths: Sequence[str | Path],
    dataset_dir: str | Path,
    dataset: str,
    *,
    media_dir: str | Path | None = None,
    capability_ids: Sequence[str] | None = None,
) -> HeldOut:
    """Every labelled, valid sample of ``dataset`` in the label files.

    Raises:
        HeldOutError: a missing or empty label file, no labelled sample in the dataset, or a
            capability the labels do not score. LabelFileError / DatasetError: unreadable inputs.
    """
    summary, merged, usable = _labelled_samples(label_paths, dataset_dir, dataset, media_dir)
    source = {"kind": "labels", "val_split": None, "val_records_unmatched": 0}
    return _held_out(usable, merged, summary, capability_ids, {**source, **_provenance(
        label_paths, dataset_dir, dataset, summary, len(merged))})


def held_out_from_val_split(
    data_dir: str | Path,
    name: str = "mmssr_scorer_train",
    *,
    media_dir: str | Path | None = None,
    capability_ids: Sequence[str] | None = None,
) -> HeldOut:
    """The samples of the validation split ``<name>_val`` that ``build-scorer-data`` registered in
    ``data_dir``; labels and pool come from the split's provenance.

    Args:
        data_dir: the scorer data folder (its ``dataset_info.json`` holds the split).
        name: the training split's name (``<name>_val`` is read), or the validation split's own.
        media_dir: image root of the pool, when the data was built with one (default: the pool's
            dataset folder).
        capability_ids: evaluate only these capabilities (default: every labelled one).

    Raises:
        HeldOutError: no such split, no provenance, or no labelled sample matches the split.
    """
    entry_name = name if name.endswith(VAL_SUFFIX) else name + VAL_SUFFIX
    entry = _registry_entry(Path(data_dir), entry_name)
    provenance = entry.get("mmssr_scorer_data")
    if not isinstance(provenance, dict) or not {"labels", "dataset_dir", "dataset"} <= set(provenance):
        raise HeldOutError(f"{entry_name} in {Path(data_dir) / REGISTRY_FILE} was not written by build-scorer-data "
                           "(no mmssr_scorer_data provenance)")
    split_file = Path(data_dir) / str(entry.get("file_name", ""))
    records = _read_records(split_file)
    summary, merged, usable = _labelled_samples(
        provenance["labels"], provenance["dataset_dir"], provenance["dataset"], media_dir)
    wanted = Counter(_record_key(record) for record in records)
    everything = [Capability(cap_id, keyword) for cap_id, keyword in summary.capabilities.items()]
    held, matched = [], 0
    for sample in usable:
        keys = [_record_key(r) for r in scorer_conversations(sample, merged[sample.uid], everything)]
        if keys and all(wanted[key] > 0 for key in keys):
            held.append(sample)
            matched += len(keys)
    if not held:
        raise HeldOutError(
            f"no labelled sample's conversations are in {split_file}: the labels, the pool or its "
            "image root (media dir) differ from those the scorer data was built with"
        )
    source = {"kind": "val split", "val_split": str(split_file.resolve()),
              "val_records_unmatched": len(records) - matched}
    return _held_out(held, merged, summary, capability_ids, {**source, **_provenance(
        provenance["labels"], provenance["dataset_dir"], provenance["dataset"], summary, len(merged))})


def _labelled_samples(
    label_paths: Sequence[str | Path], dataset_dir: str | Path, dataset: str, media_dir: str | Path | None,
) -> tuple[ScorerDataSummary, dict[str, MergedLabel], list[Sample]]:
    """Merged labels and the usable labelled samples of the pool (as build-scorer-data finds them)."""
    if not label_paths:
        raise HeldOutError("no label file given")
    labels = []
    for path in label_paths:
        if not Path(path).is_file():
            raise HeldOutError(f"label file {path} does not exist")
        found = read_labels(path)
        if not found:
            raise HeldOutError(f"label file {path} holds no label")
        labels += found
    summary = ScorerDataSummary()
    merged = merge_labels(labels, summary)
    samples = load_samples(dataset_dir, dataset, media_dir, check_images=False)
    usable = usable_samples(samples, merged, summary)
    if not usable:
        raise HeldOutError(
            f"none of the {len(merged)} labelled samples is usable in dataset {dataset!r} "
            f"({summary.unmatched} not found, {sum(summary.unusable.values())} with problems)"
        )
    return summary, merged, usable


def _held_out(
    samples: list[Sample], merged: dict[str, MergedLabel], summary: ScorerDataSummary,
    capability_ids: Sequence[str] | None, source: dict[str, Any],
) -> HeldOut:
    known = summary.capabilities
    ids = list(known) if capability_ids is None else list(dict.fromkeys(capability_ids))
    unknown = [cap_id for cap_id in ids if cap_id not in known]
    if unknown or not ids:
        raise HeldOutError(
            f"capabilities {unknown or ids} are not scored in the labels; labelled: {', '.join(known)}"
        )
    capabilities = [Capability(cap_id, known[cap_id]) for cap_id in ids]
    scores = np.array(
        [[merged[s.uid].scores.get(cap.id, -1) for cap in capabilities] for s in samples], dtype=np.int64
    ).reshape(len(samples), len(capabilities))
    return HeldOut(samples, capabilities, scores, [merged[s.uid].styles for s in samples],
                   {**source, "samples": len(samples)})


def _provenance(
    label_paths: Sequence[str | Path], dataset_dir: str | Path, dataset: str, summary: ScorerDataSummary,
    labelled: int,
) -> dict[str, Any]:
    return {
        "labels": [str(Path(p).resolve()) for p in label_paths],
        "dataset_dir": str(Path(dataset_dir).resolve()),
        "dataset": dataset,
        "labelled_samples": labelled,
        "not_in_dataset": summary.unmatched,
        "unusable": dict(sorted(summary.unusable.items())),
    }


def _registry_entry(data_dir: Path, entry_name: str) -> dict[str, Any]:
    entry = load_dataset_info(data_dir).get(entry_name)
    if not isinstance(entry, dict):
        raise HeldOutError(
            f"no validation split {entry_name} in {data_dir / REGISTRY_FILE} (build the scorer data "
            "with a validation ratio above 0)"
        )
    return entry


def _read_records(path: Path) -> list[dict[str, Any]]:
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise HeldOutError(f"validation split file {path} does not exist") from None
    except (OSError, ValueError) as err:
        raise HeldOutError(f"cannot read the validation split {path}: {err}") from None
    if not isinstance(records, list) or not records:
        raise HeldOutError(f"{path} holds no conversation")
    return records


def _record_key(record: Any) -> str:
    return json.dumps(record, sort_keys=True, ensure_ascii=False)
