"""What a selection picked, with its shortfall and the reason for it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SelectionResult:
    """What a selection method picked.

    Attributes:
        indices: selected pool indices, ascending (pool order), int64.
        budget: K, the requested number of samples.
        per_capability: capability id -> samples it contributed, in capability order.
        exhausted: capabilities that ran out of eligible samples, in the order they ran out.
        rounds: rounds of the outer loop.
        threshold: the eligibility threshold used (for the shortfall sentence).
        shortfall_note: why fewer than K samples were selected, when the method says so itself
            (the sentence of the mmSSR sampler otherwise).
        picked_by: the capability that picked each selected sample, aligned with ``indices``
            (None for methods without capabilities).
    """

    indices: np.ndarray
    budget: int
    per_capability: dict[str, int]
    exhausted: list[str]
    rounds: int
    threshold: float = 0.0
    shortfall_note: str | None = None
    picked_by: list[str] | None = None

    @property
    def shortfall(self) -> int:
        """K minus the number of selected samples."""
        return self.budget - len(self.indices)

    @property
    def shortfall_reason(self) -> str | None:
        """None without shortfall, else why fewer than K samples were selected."""
        if self.shortfall <= 0:
            return None
        if self.shortfall_note is not None:
            return self.shortfall_note
        n_caps = len(self.per_capability)
        if n_caps == 0:
            return (
                f"no capabilities were given, so none of the {self.budget} requested samples "
                "could be selected"
            )
        which = "the 1 capability" if n_caps == 1 else f"any of the {n_caps} capabilities"
        return (
            f"only {len(self.indices)} of {self.budget} requested samples had a score above the "
            f"threshold {self.threshold:g} for {which}; all capabilities ran out"
        )
