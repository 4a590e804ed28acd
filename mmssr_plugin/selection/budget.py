"""The selection budget: a ratio of the pool or a sample count, parsed and checked in one place,
and turned into the sample count K of a given pool."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

_RATIO_TOLERANCE = 1e-9  # relative; absorbs float error in N * r (100 * 0.29 = 28.999999999999996)

Budget = float | int  # a float ratio in (0, 1] or an int sample count >= 1


class BudgetError(ValueError):
    """A budget that is not a ratio in (0, 1] or a sample count >= 1.

    Attributes:
        kind: what is wrong: ``"text"`` (a string that is not a number), ``"type"`` (not a
            number at all, or a bool), ``"count"`` (an int < 1) or ``"ratio"`` (a float outside
            (0, 1], or NaN). Callers that speak of the budget in their own terms (a config key,
            a flag) word their message from ``kind`` and ``value``.
        value: the offending value: the text for ``"text"``, the given object for ``"type"``,
            the parsed number otherwise.
    """

    def __init__(self, message: str, kind: str, value: Any) -> None:
        super().__init__(message)
        self.kind = kind
        self.value = value


def parse_budget(value: Any) -> Budget:
    """A budget from a number or its text: ``"1000"`` -> count 1000, ``"0.3"`` -> ratio 0.3.

    Text is read as an int when it is one, else as a float.

    Raises:
        BudgetError: not a number, a count < 1, or a ratio outside (0, 1].
    """
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            try:
                value = float(value)
            except ValueError:
                raise BudgetError(f"not a number: {value!r}", "text", value) from None
    return check_budget(value)


def check_budget(budget: Any) -> Budget:
    """The budget as a plain Python int (count) or float (ratio), checked.

    Raises:
        BudgetError: for a bool or a non-number (text included), a count < 1, or a ratio
            outside (0, 1] or NaN.
    """
    if isinstance(budget, (bool, np.bool_)):
        raise BudgetError(
            f"budget must be a ratio in (0, 1] or a sample count >= 1, not the bool {budget}",
            "type", budget,
        )
    if isinstance(budget, (int, np.integer)):
        if budget < 1:
            raise BudgetError(f"a sample-count budget must be >= 1, got {budget}", "count", int(budget))
        return int(budget)
    if isinstance(budget, (float, np.floating)):
        ratio = float(budget)
        if math.isnan(ratio):
            raise BudgetError("budget ratio is NaN", "ratio", ratio)
        if not 0.0 < ratio <= 1.0:
            raise BudgetError(
                f"a float budget is a ratio of the pool and must lie in (0, 1], got {ratio}; "
                "pass an int for a sample count",
                "ratio", ratio,
            )
        return ratio
    raise BudgetError(
        f"budget must be a float ratio in (0, 1] or an int count >= 1, got {type(budget).__name__}",
        "type", budget,
    )


def resolve_budget(budget: Budget, pool_size: int) -> int:
    """Turn a budget into a sample count K.

    Args:
        budget: a float ratio in (0, 1] (K = floor(N * r)) or an int count >= 1 (K = budget).
        pool_size: N, the number of samples in the pool.

    Returns:
        K. A ratio's floor tolerates float error of 1e-9 relative (100 * 0.29 gives 29).

    Raises:
        BudgetError: for a bool, a count < 1, a ratio outside (0, 1], NaN or text.
        ValueError: for a negative pool.
    """
    if isinstance(pool_size, (bool, np.bool_)) or not isinstance(pool_size, (int, np.integer)):
        raise TypeError(f"pool_size must be an int, got {pool_size!r}")
    if pool_size < 0:
        raise ValueError(f"pool_size must be >= 0, got {pool_size}")
    checked = check_budget(budget)
    if isinstance(checked, int):
        return checked
    exact = pool_size * checked
    nearest = round(exact)
    if abs(exact - nearest) <= _RATIO_TOLERANCE * max(1.0, exact):
        return min(int(nearest), pool_size)
    return min(math.floor(exact), pool_size)
