"""Scorer training data: label files -> a LLaMA-Factory sharegpt dataset (train and val split).

For every labelled sample and every capability it was scored on, one conversation asks the
capability query in exactly the text the scorer sees at selection time
(:func:`mmssr_plugin.core.prompts.scorer_user_text`) and answers with the digit; one more asks the style
query and answers with the styles joined by ``", "``. The keyword in each query is the one recorded
in the label file, so custom capabilities take part like built-in ones. All conversations of a
sample go to the same split, chosen by a seeded hash of its uid.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mmssr_plugin.core.prompts import scorer_user_text
from mmssr_plugin.core.taxonomy import STYLE_QUERY, SYSTEM_MESSAGE, Capability
from mmssr_plugin.curation.labels import Label, read_labels
from mmssr_plugin.curation.pick import seeded_order
from mmssr_plugin.data.load import load_samples
from mmssr_plugin.data.registry import update_registry
from mmssr_plugin.data.sample import Sample
from mmssr_plugin.data.validate import validate_sample
from mmssr_plugin.utils.files import atomic_write_text

SCORER_COLUMNS = {"messages": "messages", "images": "images", "system": "system"}
SCORER_TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}
VAL_SUFFIX = "_val"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class ScorerDataError(ValueError):
    """The labels cannot be turned into scorer data (conflicts, nothing usable, bad settings)."""


@dataclass
class MergedLabel:
    """Everything known about one sample across all label lines."""

    uid: str
    scores: dict[str, int] = field(default_factory=dict)
    styles: tuple[str, ...] = ()


@dataclass
class ScorerDataSummary:
    """What a build produced.

    Attributes:
        labels: label lines read; samples: labelled samples turned into data; unmatched: labelled
            uids not in the dataset (rows changed, or another dataset); unusable: labelled samples
            with problems, by problem kind; style_conflicts: samples whose label lines name
            different styles (the first is kept); capabilities: id -> keyword, in order;
            digits: per capability, how many samples got each score; styles: style counts;
            train / val: (samples, conversations, file) per split (val file None when empty).
    """

    labels: int = 0
    samples: int = 0
    unmatched: int = 0
    unmatched_examples: list[str] = field(default_factory=list)
    unusable: Counter = field(default_factory=Counter)
    style_conflicts: int = 0
    capabilities: dict[str, str] = field(default_factory=dict)
    digits: dict[str, Counter] = field(default_factory=dict)
    styles: Counter = field(default_factory=Counter)
    train: tuple[int, int, Path | None] = (0, 0, None)
    val: tuple[int, int, Path | None] = (0, 0, None)


def merge_labels(labels: Iterable[Label], summary: ScorerDataSummary) -> dict[str, MergedLabel]:
    """Merge label lines per uid (several files may score different capabilities of one sample).

    Each capability id must have one keyword across all labels, and one sample one score per
    capability; a sample's styles come from its first line that names some.

    Raises:
        ScorerDataError: two keywords for one capability, or two scores for one sample and capability.
    """
    merged: dict[str, MergedLabel] = {}
    for label in labels:
        summary.labels += 1
        for cap_id, keyword in label.capabilities.items():
            known = summary.capabilities.setdefault(cap_id, keyword)
            if known != keyword:
                raise ScorerDataError(
                    f"capability {cap_id!r} has two keywords in the labels ({known!r} and {keyword!r}): "
                    "a scorer must learn one keyword per capability; use another id for the other one"
                )
        entry = merged.setdefault(label.uid, MergedLabel(label.uid))
        for cap_id, score in label.scores.items():
            if entry.scores.setdefault(cap_id, score) != score:
                raise ScorerDataError(
                    f"sample {label.uid}: capability {cap_id!r} is scored twice ({entry.scores[cap_id]} and {score})"
                )
        if label.styles and not entry.styles:
            entry.styles = label.styles
        elif label.styles and label.styles != entry.styles:
            summary.style_conflicts += 1
    return merged


def scorer_conversations(
    sample: Sample, label: MergedLabel, capabilities: Sequence[Capability]
) -> list[dict[str, Any]]:
    """The sharegpt records of one sample: one per scored capability (in ``capabilities`` order),
    then the style record when the label names styles."""
    images = [os.path.abspath(path) for path in sample.images]
    pairs = [
        (scorer_user_text(sample.turns, cap.query), str(label.scores[cap.id]))
        for cap in capabilities
        if cap.id in label.scores
    ]
    if label.styles:
        pairs.append((scorer_user_text(sample.turns, STYLE_QUERY), ", ".join(label.styles)))
    return [
        {
            "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}],
            "images": images,
            "system": SYSTEM_MESSAGE,
        }
        for user, answer in pairs
    ]


def split_val(uids: Sequence[str], val_ratio: float, seed: int) -> set[str]:
    """The validation uids: the ``round(n * val_ratio)`` uids first in a seeded hash order.

    At least one when ``val_ratio > 0`` and there are two uids or more; always at most ``n - 1``.
    """
    if not 0.0 <= val_ratio < 1.0:
        raise ScorerDataError(f"the validation ratio must lie in [0, 1), got {val_ratio}")
    count = round(len(uids) * val_ratio)
    if val_ratio > 0 and len(uids) >= 2:
        count = max(count, 1)
    count = min(count, max(len(uids) - 1, 0))
    return set(seeded_order(uids, seed)[:count])


def build_scorer_data(
    label_paths: Sequence[str | Path],
    dataset_dir: str | Path,
    dataset: str,
    output_dir: str | Path,
    *,
    name: str = "mmssr_scorer_train",
    media_dir: str | Path | None = None,
    val_ratio: float = 0.1,
    seed: int = 42,
) -> ScorerDataSummary:
    """Write ``<name>.json`` and ``<name>_val.json`` to ``output_dir`` and register both there.

    Args:
        label_paths: label files (format: :mod:`mmssr_plugin.curation.labels`); merged per uid.
        dataset_dir: folder with the pool's ``dataset_info.json``.
        dataset: the labelled dataset name(s), comma-separated.
        output_dir: where the data files and their ``dataset_info.json`` go (created if missing).
        name: registry name of the training split; the validation split is ``<name>_val``.
        media_dir: image root of the pool (default ``dataset_dir``); written paths are absolute.
        val_ratio: share of labelled samples held out, in [0, 1); 0 writes no validation split.
        seed: seed of the split.

    Raises:
        ScorerDataError, LabelFileError, DatasetError: bad settings, labels or dataset.
    """
    if not _NAME.match(name):
        raise ScorerDataError(f"dataset name {name!r} must be letters, digits, '_', '.' or '-'")
    summary = ScorerDataSummary()
    merged = merge_labels((label for path in label_paths for label in read_labels(path)), summary)
    capabilities = [Capability(cap_id, keyword) for cap_id, keyword in summary.capabilities.items()]
    usable = usable_samples(load_samples(dataset_dir, dataset, media_dir, check_images=False), merged, summary)
    if not usable:
        raise ScorerDataError(
            f"none of the {len(merged)} labelled samples is usable in dataset {dataset!r} "
            f"({summary.unmatched} not found, {sum(summary.unusable.values())} with problems)"
        )
    val_uids = split_val([s.uid for s in usable], val_ratio, seed)
    splits: dict[str, list[dict[str, Any]]] = {"train": [], "val": []}
    for sample in usable:
        label = merged[sample.uid]
        splits["val" if sample.uid in val_uids else "train"] += scorer_conversations(sample, label, capabilities)
        for cap_id, score in label.scores.items():
            summary.digits.setdefault(cap_id, Counter())[score] += 1
        summary.styles.update(label.styles)
    summary.samples = len(usable)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"train": out / f"{name}.json", "val": out / f"{name}{VAL_SUFFIX}.json"}
    for split, records in splits.items():
        if records:
            atomic_write_text(files[split], json.dumps(records, ensure_ascii=False, indent=1) + "\n")
    train_n, val_n = len(usable) - len(val_uids), len(val_uids)
    summary.train = (train_n, len(splits["train"]), files["train"])
    summary.val = (val_n, len(splits["val"]), files["val"] if splits["val"] else None)
    provenance = {
        "labels": [str(Path(p).resolve()) for p in label_paths],
        "dataset_dir": str(Path(dataset_dir).resolve()),
        "dataset": dataset,
        "capabilities": summary.capabilities,
        "val_ratio": val_ratio,
        "seed": seed,
    }
    _register(out, name, splits, provenance, train_n, val_n)
    return summary


def usable_samples(
    samples: Sequence[Sample], merged: dict[str, MergedLabel], summary: ScorerDataSummary
) -> list[Sample]:
    """The labelled samples of the pool without problems, in pool order (counts the others).

    Only labelled samples have their image files opened (the pool may be large).
    """
    by_uid = {s.uid: s for s in samples}
    for uid in merged:
        if uid not in by_uid:
            summary.unmatched += 1
            if len(summary.unmatched_examples) < 3:
                summary.unmatched_examples.append(uid)
    usable = []
    for sample in samples:
        if sample.uid not in merged:
            continue
        problems = sample.problems or validate_sample(sample, check_images=True)
        if problems:
            summary.unusable[problems[0].split(":", 1)[0]] += 1
        else:
            usable.append(sample)
    return usable


def _register(
    out: Path, name: str, splits: dict[str, list], provenance: dict[str, Any], train_n: int, val_n: int
) -> None:
    """Register the splits in ``out/dataset_info.json`` (a stale ``<name>_val`` is removed)."""

    def entry(file_name: str, split: str, samples: int, records: int) -> dict[str, Any]:
        return {
            "file_name": file_name,
            "formatting": "sharegpt",
            "columns": dict(SCORER_COLUMNS),
            "tags": dict(SCORER_TAGS),
            "mmssr_scorer_data": {**provenance, "split": split, "samples": samples, "conversations": records},
        }

    def change(registry: dict[str, dict]) -> dict[str, dict]:
        registry[name] = entry(f"{name}.json", "train", train_n, len(splits["train"]))
        if splits["val"]:
            registry[name + VAL_SUFFIX] = entry(f"{name}{VAL_SUFFIX}.json", "val", val_n, len(splits["val"]))
        else:
            registry.pop(name + VAL_SUFFIX, None)
        return registry

    update_registry(out, change)
