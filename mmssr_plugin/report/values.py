"""JSON-safe numbers and values for report content: rounded, NaN as None, plain Python types."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np


def finite_mean(values: np.ndarray) -> float | None:
    """The rounded mean of the finite values; None when there is none."""
    finite = values[np.isfinite(values)]
    return rounded(float(finite.mean())) if len(finite) else None


def rounded(value: float | None) -> float | None:
    """``value`` to 4 decimals; None for None, NaN and infinities."""
    return None if value is None or not math.isfinite(value) else round(float(value), 4)


def plain(value: Any) -> Any:
    """JSON-safe copy: NaN/inf become None, tuples lists, numpy scalars Python ones, keys str."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return rounded(value) if not math.isfinite(value) else value
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)
