"""Which number ranks samples: the argmax digit (ties broken by expected score) or the expected
score itself."""

from __future__ import annotations

from typing import Protocol

import numpy as np

RANKINGS = ("argmax", "expected")


class DigitMatrices(Protocol):
    """The per-sample, per-capability digit scores a ranking reads (e.g. ``DigitScores``)."""

    @property
    def argmax(self) -> np.ndarray:
        """int ``[N, C]``, the most likely digit; -1 where the score is missing."""

    @property
    def expected(self) -> np.ndarray:
        """float ``[N, C]``, the expected score; NaN where missing."""


def ranking_matrices(digits: DigitMatrices, ranking: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Scores for eligibility and order, plus the tie-break matrix (or None).

    Missing scores are NaN in both, so they are never eligible.
    """
    if ranking not in RANKINGS:
        raise ValueError(f"ranking must be one of {RANKINGS}, got {ranking!r}")
    expected = digits.expected.astype(np.float64)
    if ranking == "expected":
        return expected, None
    argmax = np.where(digits.argmax >= 0, digits.argmax, np.nan).astype(np.float64)
    return argmax, expected
