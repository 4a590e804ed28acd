"""Turning next-token digit probabilities into scores: argmax, expected score, digit mass."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mmssr_plugin.scoring.config import DEFAULT_MIN_DIGIT_MASS


@dataclass(frozen=True)
class DigitScores:
    """Scores derived from probabilities ``probs[N, C, 6]``.

    Attributes:
        argmax: int8 [N, C], the most likely digit; -1 where the score is missing.
        expected: float32 [N, C], ``sum(k * p_k) / sum(p_k)``; NaN where missing.
        mass: float32 [N, C], total probability on the six digits (NaN where not scored).
    """

    argmax: np.ndarray
    expected: np.ndarray
    mass: np.ndarray

    @property
    def missing(self) -> np.ndarray:
        """Boolean [N, C]: no usable score."""
        return self.argmax < 0


def summarize_digits(probs: np.ndarray, min_mass: float = DEFAULT_MIN_DIGIT_MASS) -> DigitScores:
    """Derive argmax, expected score and digit mass; a low digit mass or NaN marks the score missing.

    Args:
        probs: float [N, C, 6] raw (unnormalised) probabilities of the digit tokens.
        min_mass: a score whose digit mass is below this is missing, never defaulted.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 3 or probs.shape[-1] != 6:
        raise ValueError(f"digit probabilities must have shape [N, C, 6], got {probs.shape}")
    mass = probs.sum(axis=-1)
    usable = np.isfinite(mass) & (mass >= min_mass) & (mass > 0)
    safe = np.where(usable[..., None], probs, 0.0)
    expected = np.divide(
        (safe * np.arange(6)).sum(axis=-1), np.where(usable, mass, 1.0)
    )
    argmax = np.where(usable, safe.argmax(axis=-1), -1).astype(np.int8)
    return DigitScores(
        argmax=argmax,
        expected=np.where(usable, expected, np.nan).astype(np.float32),
        mass=mass.astype(np.float32),
    )


def finite_mean(values: np.ndarray) -> float:
    """Mean of the finite values; NaN (without numpy's empty-slice warning) when there are none."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if len(finite) else float("nan")
