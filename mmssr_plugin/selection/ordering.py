"""A stable sort by value descending, NaN last, fast for the score columns the sampler sorts."""

from __future__ import annotations

import numpy as np


def descending_order(values: np.ndarray) -> np.ndarray:
    """Stable argsort by value descending, NaN last (-0.0 equals 0.0)."""
    with np.errstate(over="ignore"):  # huge values just miss the fast paths
        if len(values) and np.isfinite(values).all():
            low, high = values.min(), values.max()
            if high - low < 65535 and np.array_equal(values, np.floor(values)):
                key_type = np.uint8 if high - low < 255 else np.uint16
                return np.argsort((high - values).astype(key_type), kind="stable")  # radix
        narrow = values.astype(np.float32)
    if len(values) < 2**32 and np.array_equal(narrow, values, equal_nan=True):
        return _descending_float32(narrow)
    return np.argsort(-values, kind="stable")


def _descending_float32(values: np.ndarray) -> np.ndarray:
    """``descending_order`` for float32 values: one sort of unique ``(value key, position)`` words."""
    bits = (values + np.float32(0)).view(np.uint32).astype(np.uint64)  # + 0 makes -0.0 0.0
    ascending = np.where(bits >> 31, bits ^ 0xFFFFFFFF, bits | 0x80000000)  # order-preserving
    key = 0xFFFFFFFF - ascending
    key[np.isnan(values)] = 0xFFFFFFFF
    packed = (key << 32) | np.arange(len(values), dtype=np.uint64)
    packed.sort()  # keys are unique, so any sort is stable
    return (packed & 0xFFFFFFFF).astype(np.int64)
