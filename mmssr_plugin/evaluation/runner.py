"""Scoring held-out samples with one or more scorers and measuring each against the teacher.

Scorers run through the engine interface (``get_engine``, ``score_and_style``), one at a time,
in this process; each is released before the next loads.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mmssr_plugin.engines import ScoringEngine, get_engine
from mmssr_plugin.evaluation.held_out import HeldOut
from mmssr_plugin.evaluation.metrics import score_metrics, style_metrics
from mmssr_plugin.scoring.config import ScorerConfig
from mmssr_plugin.utils.hashing import canonical_hash

logger = logging.getLogger(__name__)

EVALUATION_FORMAT = "mmssr-scorer-eval/1"
CHUNK = 64  # samples per engine call (progress is logged per chunk)


@dataclass(frozen=True)
class NamedScorer:
    """A scorer to evaluate and the name it is shown under."""

    name: str
    config: ScorerConfig


def evaluate_engine(
    name: str, engine: ScoringEngine, held_out: HeldOut, min_digit_mass: float
) -> dict[str, Any]:
    """Score and style the held-out samples with ``engine`` and measure it against the teacher."""
    probs, styles = [], []
    total = len(held_out.samples)
    for start in range(0, total, CHUNK):
        part = held_out.samples[start : start + CHUNK]
        part_probs, answers = engine.score_and_style(part, held_out.capabilities)
        probs.append(np.asarray(part_probs, dtype=np.float32))
        styles += [answer.styles for answer in answers]
        logger.info("%s: %d/%d samples scored", name, start + len(part), total)
    stacked = np.concatenate(probs) if probs else np.zeros((0, len(held_out.capabilities), 6), np.float32)
    return scorer_result(name, engine.identity(), stacked, styles, held_out, min_digit_mass)


def scorer_result(
    name: str,
    identity: dict[str, Any],
    probs: np.ndarray,
    styles: Sequence[Sequence[str]],
    held_out: HeldOut,
    min_digit_mass: float,
) -> dict[str, Any]:
    """One scorer's figures from its digit probabilities ``[N, C, 6]`` and parsed styles.

    Returns:
        ``name``, ``identity`` (+ ``identity_key``), ``capabilities`` (id -> score figures),
        ``overall`` (every scored sample and capability pooled) and ``styles``.
    """
    n, n_caps = held_out.scores.shape
    if probs.shape != (n, n_caps, 6):
        raise ValueError(f"the scorer returned probabilities of shape {probs.shape}, expected {(n, n_caps, 6)}")
    per_capability = {
        cap.id: score_metrics(held_out.scores[:, c], probs[:, c], min_digit_mass)
        for c, cap in enumerate(held_out.capabilities)
    }
    return {
        "name": name,
        "identity": identity,
        "identity_key": canonical_hash(identity),
        "capabilities": per_capability,
        "overall": score_metrics(held_out.scores.reshape(-1), probs.reshape(-1, 6), min_digit_mass),
        "styles": style_metrics(held_out.styles, styles),
    }


def evaluate_scorers(
    scorers: Sequence[NamedScorer], held_out: HeldOut, min_digit_mass: float
) -> list[dict[str, Any]]:
    """Build, run and release each scorer in turn; its figures in the order given.

    Raises:
        ValueError: two scorers share a name.
    """
    names = [scorer.name for scorer in scorers]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"scorer names must differ; given twice: {', '.join(repeated)}")
    results = []
    for scorer in scorers:
        logger.info("%s: loading the %s engine", scorer.name, scorer.config.backend)
        engine = get_engine(scorer.config)
        try:
            results.append(evaluate_engine(scorer.name, engine, held_out, min_digit_mass))
        finally:
            del engine
            gc.collect()
    return results


def evaluation_document(
    held_out: HeldOut, results: Sequence[dict[str, Any]], min_digit_mass: float
) -> dict[str, Any]:
    """Everything the page shows, as plain JSON data (the page's JSON twin)."""
    return {
        "format": EVALUATION_FORMAT,
        "title": f"Scorer evaluation: {len(results)} scorer(s) on {len(held_out.samples)} held-out samples",
        "held_out": held_out.source,
        "min_digit_mass": min_digit_mass,
        "capabilities": [{"id": cap.id, "keyword": cap.keyword} for cap in held_out.capabilities],
        "scorers": list(results),
    }
