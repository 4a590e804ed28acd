"""The settings that decide which samples a selection picks, as one dataclass the methods read.

Field metadata carries each setting's ``help`` (and ``choices``), shown by ``--help-config``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from mmssr_plugin.core.taxonomy import Capability, resolve_capabilities
from mmssr_plugin.selection.budget import Budget
from mmssr_plugin.selection.methods import METHODS
from mmssr_plugin.selection.ranking import RANKINGS

SCORE_RANGE = (0, 5)
"""The scorers' scale: digits 0..5."""


def check_threshold(value: object) -> float:
    """``value`` as an eligibility threshold: a number in [0, 5) (a sample needs score > threshold).

    Raises:
        ValueError: not a number, or outside the score range.
    """
    low, high = SCORE_RANGE
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"threshold must be a number in [{low}, {high}), got {value!r}")
    if not low <= value < high:
        raise ValueError(
            f"threshold must lie in [{low}, {high}) (scores are {low}..{high} and a sample needs a "
            f"score above the threshold), got {value:g}"
        )
    return float(value)


@dataclass(frozen=True)
class SelectionConfig:
    """Method, budget, capabilities, eligibility threshold, ranking, image-source column, seed.

    The capabilities are resolved (built-in ids plus ``capability_keywords``) once, on
    construction; an unknown id raises ``ValueError``.
    """

    method: str = field(
        default="mmssr", metadata={"help": f"Selection method: {METHODS}.", "choices": METHODS}
    )
    budget: Budget = field(
        default=0.3,
        metadata={"help": "Ratio in (0, 1] of the pool, or a sample count >= 1 (an integer)."},
    )
    capabilities: str | list[str] = field(
        default="all", metadata={"help": "'all', or capability ids (list or comma-separated)."}
    )
    capability_keywords: dict[str, str] = field(
        default_factory=dict,
        metadata={"help": "id -> prompt keyword: overrides built-in keywords or adds capabilities."},
    )
    threshold: float = field(
        default=0.0,
        metadata={"help": "A sample is eligible for a capability if score > threshold; in [0, 5)."},
    )
    ranking: str = field(
        default="argmax",
        metadata={
            "help": "argmax: the argmax digit, ties by expected score; expected: the expected score.",
            "choices": RANKINGS,
        },
    )
    source_column: str | None = field(
        default="image_source",
        metadata={"help": "Row column naming the image source; else first image folder, else dataset."},
    )
    seed: int = field(default=42, metadata={"help": "Seed of the random method."})

    def __post_init__(self) -> None:
        resolved = tuple(resolve_capabilities(self.capabilities, self.capability_keywords))
        object.__setattr__(self, "_resolved", resolved)

    @property
    def capability_list(self) -> list[Capability]:
        """The ordered capabilities (built-in and custom) this selection uses."""
        return list(self._resolved)  # type: ignore[attr-defined]

    def budget_tag(self) -> str:
        """Short, file-name-safe budget label: ``b0.3`` or ``n1000``."""
        if isinstance(self.budget, int):
            return f"n{self.budget}"
        return f"b{self.budget:g}"

    def key_settings(self) -> dict[str, Any]:
        """The settings that change which samples are picked (hashed into the selection key)."""
        keys = ["method", "budget", "threshold", "ranking", "source_column"]
        keys += ["seed"] if self.method == "random" else []
        settings = {k: getattr(self, k) for k in keys}
        settings["capabilities"] = [[c.id, c.keyword] for c in self.capability_list]
        return settings

    def to_dict(self) -> dict[str, Any]:
        """The settings as given (capabilities unresolved), as plain data."""
        return asdict(self)
