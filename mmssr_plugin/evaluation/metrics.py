"""Agreement of a scorer with a teacher: exact agreement, MAE, Spearman, non-digit share, style
precision and recall. Pure numpy; every figure comes with the sample count behind it.

Definitions (per capability, over the samples the teacher scored):

- a sample is *answered* when its digit mass reaches ``min_digit_mass`` (the rule selection
  uses); otherwise the scorer gave no digit answer and its score is missing;
- ``agreement``: share of answered samples whose argmax digit equals the teacher's score;
- ``mae``: mean absolute difference between the argmax digit and the teacher's score (answered);
- ``spearman``: rank correlation of the expected score with the teacher's score (answered; ties
  get average ranks; None with a reason when either side is constant or fewer than 2 samples);
- ``non_digit_share``: share of scored samples that were not answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mmssr_plugin.core.taxonomy import STYLES
from mmssr_plugin.scoring.digits import summarize_digits

SCORE_LEVELS = 6
DECIMALS = 6


def rounded(value: float | None) -> float | None:
    """A float rounded to ``DECIMALS`` places (None stays None): stable JSON across platforms."""
    return None if value is None else round(float(value), DECIMALS)


def share(part: int, whole: int) -> float | None:
    """``part / whole`` rounded, None when ``whole`` is 0."""
    return rounded(part / whole) if whole else None


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values``; tied values share the mean of the ranks they span."""
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.r_[True, ordered[1:] != ordered[:-1]] if len(values) else np.zeros(0, bool)
    group = np.cumsum(starts) - 1
    first = np.flatnonzero(starts)
    sizes = np.diff(np.r_[first, len(values)])
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = (first + (sizes + 1) / 2.0)[group]
    return ranks


def spearman(predicted: np.ndarray, teacher: np.ndarray) -> tuple[float | None, str | None]:
    """Spearman correlation (Pearson on average ranks) and, when it is undefined, why.

    Returns:
        ``(rho, None)``, or ``(None, reason)`` with reason ``"fewer than 2 samples"``,
        ``"constant scorer"`` (every prediction equal) or ``"constant teacher"``.
    """
    x = np.asarray(predicted, dtype=np.float64)
    y = np.asarray(teacher, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"spearman needs two 1-d arrays of one length, got {x.shape} and {y.shape}")
    if len(x) < 2:
        return None, "fewer than 2 samples"
    if np.all(x == x[0]):
        return None, "constant scorer"
    if np.all(y == y[0]):
        return None, "constant teacher"
    rx, ry = average_ranks(x), average_ranks(y)
    dx, dy = rx - rx.mean(), ry - ry.mean()
    rho = float(dx @ dy / np.sqrt((dx @ dx) * (dy @ dy)))
    return rounded(min(max(rho, -1.0), 1.0)), None


def score_metrics(teacher: np.ndarray, probs: np.ndarray, min_digit_mass: float) -> dict[str, Any]:
    """Every score figure of one capability (or of all pairs pooled).

    Args:
        teacher: int ``[N]`` teacher scores 0..5; -1 where the teacher did not score the sample.
        probs: float ``[N, 6]`` the scorer's raw digit probabilities.
        min_digit_mass: below this digit mass the scorer gave no digit answer.

    Returns:
        ``samples`` (teacher-scored), ``answered``, ``non_digit`` and ``non_digit_share``,
        ``agreement``, ``mae``, ``spearman`` (+ ``spearman_undefined``), ``mean_digit_mass``,
        ``confusion`` (teacher 0..5 rows x scorer 0..5 and "no digit" columns) and
        ``calibration`` (per teacher score: answered samples and their mean expected score).
    """
    teacher = np.asarray(teacher, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    if probs.shape != (len(teacher), SCORE_LEVELS):
        raise ValueError(f"probabilities must have shape [{len(teacher)}, 6], got {probs.shape}")
    if teacher.size and teacher.max() >= SCORE_LEVELS:
        raise ValueError(f"teacher scores must lie in 0..5 (-1: not scored), got {int(teacher.max())}")
    labelled = teacher >= 0
    truth = teacher[labelled]
    digits = summarize_digits(probs[labelled][:, None, :], min_digit_mass)
    argmax, expected = digits.argmax[:, 0].astype(np.int64), digits.expected[:, 0].astype(np.float64)
    answered = argmax >= 0
    confusion = np.zeros((SCORE_LEVELS, SCORE_LEVELS + 1), dtype=np.int64)
    np.add.at(confusion, (truth, np.where(answered, argmax, SCORE_LEVELS)), 1)
    rho, undefined = spearman(expected[answered], truth[answered])
    n, n_answered = int(len(truth)), int(answered.sum())
    mass = digits.mass[:, 0]
    return {
        "samples": n,
        "answered": n_answered,
        "non_digit": n - n_answered,
        "non_digit_share": share(n - n_answered, n),
        "agreement": share(int((argmax[answered] == truth[answered]).sum()), n_answered),
        "mae": rounded(np.abs(argmax[answered] - truth[answered]).mean()) if n_answered else None,
        "spearman": rho,
        "spearman_undefined": undefined,
        "mean_digit_mass": rounded(np.nanmean(mass)) if np.isfinite(mass).any() else None,
        "confusion": confusion.tolist(),
        "calibration": [
            {
                "teacher": level,
                "samples": int((answered & (truth == level)).sum()),
                "mean_expected": rounded(expected[answered & (truth == level)].mean())
                if (answered & (truth == level)).any() else None,
            }
            for level in range(SCORE_LEVELS)
        ],
    }


def style_metrics(
    teacher: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]
) -> dict[str, Any]:
    """Precision and recall per style over the samples whose teacher label names styles.

    Args:
        teacher: the teacher's styles per sample (empty: the sample is left out).
        predicted: the styler's parsed styles per sample.

    Returns:
        ``samples`` (with teacher styles), ``no_style_answer`` (of them, answers naming no known
        style), ``per_style``: style -> ``{"teacher", "predicted", "correct", "precision",
        "recall"}`` (precision over ``predicted``, recall over ``teacher`` samples), and
        ``overall``: the same counts summed over styles (micro average).
    """
    if len(teacher) != len(predicted):
        raise ValueError(f"{len(teacher)} teacher style lists but {len(predicted)} answers")
    pairs = [(set(t), set(p)) for t, p in zip(teacher, predicted) if t]
    per_style = {
        style: _precision_recall(
            sum(style in t for t, _ in pairs),
            sum(style in p for _, p in pairs),
            sum(style in t and style in p for t, p in pairs),
        )
        for style in STYLES
    }
    totals = [sum(entry[key] for entry in per_style.values()) for key in ("teacher", "predicted", "correct")]
    return {
        "samples": len(pairs),
        "no_style_answer": sum(not p for _, p in pairs),
        "per_style": per_style,
        "overall": _precision_recall(*totals),
    }


def _precision_recall(teacher: int, predicted: int, correct: int) -> dict[str, Any]:
    return {
        "teacher": teacher,
        "predicted": predicted,
        "correct": correct,
        "precision": share(correct, predicted),
        "recall": share(correct, teacher),
    }
