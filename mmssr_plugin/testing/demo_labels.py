"""Label records from authors'-format score files, so a scorer can be trained on them.

The bundled demo pool ships its scores in the authors' format (``<capability>.jsonl`` and
``style.jsonl`` of ``{"idx", "pred_response"}`` lines). :func:`write_labels_from_scores` turns
them into a label file (the format of :mod:`mmssr_plugin.curation.labels`) that
``mmssr-cli build-scorer-data`` reads: one line per pool sample, with the scores that parse as
0..5 and the styles that match a candidate; unparseable answers are left out, never guessed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from mmssr_plugin.core.taxonomy import DEFAULT_CAPABILITIES, Capability
from mmssr_plugin.curation.labels import Label
from mmssr_plugin.data.load import load_samples
from mmssr_plugin.formats.authors.pool import read_pool
from mmssr_plugin.formats.authors.pool_scores import read_scores
from mmssr_plugin.utils.files import atomic_write_text

DEMO_TEACHER = "authors'-format score files"


def labels_from_scores(
    dataset_dir: str | Path,
    dataset: str,
    pool_file: str | Path,
    score_dir: str | Path,
    capabilities: tuple[Capability, ...] | None = None,
) -> list[Label]:
    """One label per pool sample that has at least one usable score, in pool order.

    Args:
        dataset_dir: folder with the pool's ``dataset_info.json``.
        dataset: the pool's registered name (its file is ``pool_file``).
        pool_file: the authors'-format pool file (a JSON list of records with ``idx``).
        score_dir: folder with ``<capability>.jsonl`` and ``style.jsonl``.
        capabilities: which capabilities to read (default: the 14 built-in ones).

    Raises:
        AuthorsFormatError: missing or malformed score files. ValueError: the registered dataset
            and the pool file hold different numbers of rows.
    """
    caps = capabilities or tuple(Capability(cap_id, kw) for cap_id, kw in DEFAULT_CAPABILITIES.items())
    pool = read_pool(pool_file)
    samples = load_samples(dataset_dir, dataset, check_images=False)
    if len(samples) != len(pool):
        raise ValueError(
            f"dataset {dataset!r} has {len(samples)} rows but the pool file {pool_file} has {len(pool)}: "
            "they must be the same file"
        )
    read = read_scores(score_dir, pool, [cap.id for cap in caps])
    scores, styles = read.scores, read.styles.per_sample()
    labels = []
    for position, sample in enumerate(samples):
        row = scores[position]
        usable = {cap.id: int(row[c]) for c, cap in enumerate(caps) if not math.isnan(row[c])}
        if not usable:
            continue
        keywords = {cap.id: cap.keyword for cap in caps if cap.id in usable}
        labels.append(
            Label(sample.uid, sample.dataset, sample.row, usable, styles[position], DEMO_TEACHER, keywords)
        )
    return labels


def write_labels_from_scores(
    output: str | Path, dataset_dir: str | Path, dataset: str, pool_file: str | Path, score_dir: str | Path
) -> int:
    """Write the labels of :func:`labels_from_scores` to ``output`` (JSON lines); returns their count."""
    labels = labels_from_scores(dataset_dir, dataset, pool_file, score_dir)
    atomic_write_text(Path(output), "".join(json.dumps(label.to_json()) + "\n" for label in labels))
    return len(labels)
