"""The ``data_selection:`` block of a LLaMA-Factory training YAML, as a validated dataclass.

Field names follow LLaMA-Factory's own where they mean the same thing (``model_name_or_path``,
``adapter_name_or_path``, ``quantization_bit``, ``template``, ``infer_dtype``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from mmssr_plugin.selection.ranking import RANKINGS
from mmssr_plugin.scoring.config import BACKENDS, ScorerConfig
from mmssr_plugin.utils.hashing import canonical_hash
from mmssr_plugin.core.taxonomy import resolve_capabilities

METHODS = ("mmssr", "random")


class DataSelectionError(ValueError):
    """The data_selection block or the training arguments around it cannot be used."""


@dataclass
class DataSelectionConfig(ScorerConfig):
    """Settings of the selection stage that runs before training.

    The scorer fields (``backend``, ``model_name_or_path``, ``adapter_name_or_path``,
    ``quantization_bit``, ``template``, styler, ``infer_dtype``, ``batch_size``,
    ``min_digit_mass``) come from :class:`ScorerConfig`; the fields below are the selection's.
    """

    method: str = field(default="mmssr", metadata={"help": f"Selection method: {METHODS}."})
    budget: float | int = field(
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
        default=0.0, metadata={"help": "A sample is eligible for a capability if score > threshold."}
    )
    ranking: str = field(
        default="argmax",
        metadata={"help": "Rank by the argmax digit (ties by expected score) or the expected score."},
    )
    workers: int | None = field(
        default=None, metadata={"help": "CPU scoring processes (GPUs: one per visible GPU)."}
    )
    shard_size: int = field(default=64, metadata={"help": "Samples per resumable score shard."})
    source_column: str | None = field(
        default="image_source",
        metadata={"help": "Row column naming the image source; else first image folder, else dataset."},
    )
    seed: int = field(default=42, metadata={"help": "Seed of the random method."})
    cache_dir: str | None = field(
        default=None,
        metadata={"help": "Score stores and selection manifests (default <dataset_dir>/.mmssr_cache)."},
    )
    output_dir: str | None = field(
        default=None,
        metadata={"help": "Where subset files go (default <dataset_dir>/mmssr_subsets)."},
    )
    report: bool = field(default=True, metadata={"help": "Write the selection report."})

    def __post_init__(self) -> None:
        self._check_choice("method", METHODS)
        self._check_choice("ranking", RANKINGS)
        self._check_choice("backend", BACKENDS)
        self.budget = parse_budget(self.budget)
        if not isinstance(self.threshold, (int, float)) or isinstance(self.threshold, bool):
            raise DataSelectionError(f"data_selection.threshold must be a number, got {self.threshold!r}")
        try:
            self.capability_list()
        except ValueError as exc:
            raise DataSelectionError(f"data_selection.capabilities: {exc}") from None
        if self.method == "mmssr":
            try:
                super().__post_init__()
            except ValueError as exc:
                raise DataSelectionError(f"data_selection: {exc}") from None
        for name in ("batch_size", "shard_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise DataSelectionError(f"data_selection.{name} must be an integer >= 1")
        if self.workers is not None and (not isinstance(self.workers, int) or self.workers < 1):
            raise DataSelectionError("data_selection.workers must be an integer >= 1")

    def _check_choice(self, name: str, choices: tuple[str, ...]) -> None:
        if getattr(self, name) not in choices:
            raise DataSelectionError(
                f"data_selection.{name} must be one of {list(choices)}, got {getattr(self, name)!r}"
            )

    def capability_list(self) -> list:
        """The ordered capabilities (built-in and custom) this selection uses."""
        return resolve_capabilities(self.capabilities, self.capability_keywords)

    def scorer(self) -> ScorerConfig:
        """The scorer configuration of the mmssr method."""
        return ScorerConfig(**{f.name: getattr(self, f.name) for f in fields(ScorerConfig)})

    def selection_settings(self) -> dict[str, Any]:
        """The settings that change which samples are picked (part of the selection key)."""
        keys = ["method", "budget", "threshold", "ranking", "source_column"]
        keys += ["seed"] if self.method == "random" else []
        settings = {k: getattr(self, k) for k in keys}
        settings["capabilities"] = [[c.id, c.keyword] for c in self.capability_list()]
        return settings

    def budget_tag(self) -> str:
        """Short, file-name-safe budget label: ``b0.3`` or ``n1000``."""
        if isinstance(self.budget, int):
            return f"n{self.budget}"
        return f"b{self.budget:g}"

    def key(self) -> str:
        return canonical_hash(self.selection_settings(), 8)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Any) -> "DataSelectionConfig":
        """Build from the YAML block; unknown keys are refused with the list of valid ones."""
        if not isinstance(values, dict):
            raise DataSelectionError(
                f"data_selection must be a mapping of settings, got {type(values).__name__}"
            )
        scorer_keys = [f.name for f in fields(ScorerConfig)]
        known = [f.name for f in fields(cls) if f.name not in scorer_keys] + scorer_keys
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise DataSelectionError(
                f"unknown data_selection keys {unknown}; valid keys: {', '.join(known)}"
            )
        try:
            return cls(**values)
        except TypeError as exc:
            raise DataSelectionError(f"data_selection: {exc}") from None


def parse_budget(value: Any) -> float | int:
    """A ratio in (0, 1] (float) or a count >= 1 (int); strings are parsed the same way."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text) if text.isdigit() else float(text)
        except ValueError:
            raise DataSelectionError(f"budget must be a number, got {text!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataSelectionError(f"budget must be a ratio in (0, 1] or a count >= 1, got {value!r}")
    if isinstance(value, int):
        if value < 1:
            raise DataSelectionError(f"a budget count must be >= 1, got {value}")
        return value
    if math.isnan(value) or not 0.0 < value <= 1.0:
        raise DataSelectionError(
            f"a budget ratio must lie in (0, 1], got {value} (use an integer for a sample count)"
        )
    return float(value)


def help_text() -> str:
    """One line per field: name, default and help (for ``mmssr-cli train --help-config``)."""
    lines = []
    for f in fields(DataSelectionConfig):
        default = f.default_factory() if callable(f.default_factory) else f.default  # type: ignore[misc]
        lines.append(f"  {f.name} (default {default!r}): {f.metadata.get('help', '')}")
    return "\n".join(lines)
