"""The ``data_selection:`` block of a LLaMA-Factory training YAML, parsed once into typed parts.

The block is flat for the user; :meth:`DataSelectionConfig.from_dict` checks it and splits it into
the scorer (``ScorerConfig``, the engines'), the selection settings (``SelectionConfig``, the
sampler's), the scoring job settings (``JobConfig``) and where results go (``OutputConfig``).
Scorer field names follow LLaMA-Factory's own where they mean the same thing
(``model_name_or_path``, ``adapter_name_or_path``, ``quantization_bit``, ``template``,
``infer_dtype``).
"""

from __future__ import annotations

from dataclasses import MISSING, Field, dataclass, field, fields
from pathlib import Path
from typing import Any

from mmssr_plugin.scoring.config import JobConfig, ScorerConfig
from mmssr_plugin.selection.budget import BudgetError, parse_budget
from mmssr_plugin.selection.config import SelectionConfig, check_threshold
from mmssr_plugin.utils.files import CACHE_DIR_NAME

SUBSETS_DIR_NAME = "mmssr_subsets"
"""Default folder (under the dataset directory) for the subset files."""

INFER_DTYPES = ("auto", "float16", "bfloat16", "float32")
"""LLaMA-Factory's ``infer_dtype`` values."""


class DataSelectionError(ValueError):
    """The data_selection block or the training arguments around it cannot be used."""


@dataclass(frozen=True)
class OutputConfig:
    """Where the stage keeps its caches and writes the subsets, and whether it writes a report."""

    cache_dir: str | None = field(
        default=None,
        metadata={"help": f"Score stores and selection manifests (default <dataset_dir>/{CACHE_DIR_NAME})."},
    )
    output_dir: str | None = field(
        default=None,
        metadata={"help": f"Where subset files go (default <dataset_dir>/{SUBSETS_DIR_NAME})."},
    )
    report: bool = field(default=True, metadata={"help": "Write the selection report."})


@dataclass(frozen=True)
class StagePaths:
    """The folders one run of the stage reads and writes, resolved against the training args."""

    dataset_dir: Path
    media_dir: Path
    cache_dir: Path
    output_dir: Path

    @classmethod
    def resolve(cls, args: dict[str, Any], output: OutputConfig) -> StagePaths:
        """``dataset_dir``/``media_dir`` from the training arguments, defaults under dataset_dir."""
        dataset_dir = Path(str(args.get("dataset_dir", "data")))
        return cls(
            dataset_dir=dataset_dir,
            media_dir=Path(str(args["media_dir"])) if args.get("media_dir") else dataset_dir,
            cache_dir=Path(output.cache_dir) if output.cache_dir else dataset_dir / CACHE_DIR_NAME,
            output_dir=Path(output.output_dir) if output.output_dir else dataset_dir / SUBSETS_DIR_NAME,
        )


_PARTS: dict[str, type] = {
    "scorer": ScorerConfig, "selection": SelectionConfig, "job": JobConfig, "output": OutputConfig,
}
# The keys after the scorer's, in the order users see them (help, errors, the recorded block).
_STAGE_KEY_ORDER = (
    "method", "budget", "capabilities", "capability_keywords", "threshold", "ranking", "workers",
    "shard_size", "source_column", "seed", "cache_dir", "output_dir", "report",
)


def _block_fields() -> dict[str, tuple[str, Field]]:
    """Block key -> (part attribute, dataclass field), in block order."""
    owner = {f.name: (part, f) for part, cls in _PARTS.items() for f in fields(cls)}
    order = [f.name for f in fields(ScorerConfig)] + list(_STAGE_KEY_ORDER)
    if sorted(order) != sorted(owner):
        raise RuntimeError(f"data_selection key order {order} does not match the parts' fields")
    return {name: owner[name] for name in order}


BLOCK_FIELDS = _block_fields()


def _default(f: Field) -> Any:
    return f.default_factory() if f.default_factory is not MISSING else f.default


@dataclass(frozen=True)
class DataSelectionConfig:
    """The parsed ``data_selection`` block: one typed part per owner.

    ``scorer`` is validated for the ``mmssr`` method only; for ``random`` it is kept as given (it
    is recorded, never used to score).
    """

    scorer: ScorerConfig
    selection: SelectionConfig
    job: JobConfig
    output: OutputConfig

    @classmethod
    def from_dict(cls, values: Any) -> DataSelectionConfig:
        """Parse the YAML block; bad values and unknown keys are refused with one clear line."""
        if not isinstance(values, dict):
            raise DataSelectionError(
                f"data_selection must be a mapping of settings, got {type(values).__name__}"
            )
        unknown = sorted(set(values) - set(BLOCK_FIELDS))
        if unknown:
            valid = [*_STAGE_KEY_ORDER, *(f.name for f in fields(ScorerConfig))]
            raise DataSelectionError(
                f"unknown data_selection keys {unknown}; valid keys: {', '.join(valid)}"
            )
        block = {name: values.get(name, _default(f)) for name, (_, f) in BLOCK_FIELDS.items()}
        try:
            return _parse(block)
        except TypeError as exc:
            raise DataSelectionError(f"data_selection: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        """The block as parsed (defaults filled, budget a number), flat, in block order."""
        return {name: getattr(getattr(self, part), name) for name, (part, _) in BLOCK_FIELDS.items()}


def _parse(block: dict[str, Any]) -> DataSelectionConfig:
    """Check the filled-in block key by key (first problem wins) and build the parts."""
    for name in ("method", "ranking", "backend"):
        choices = BLOCK_FIELDS[name][1].metadata["choices"]
        if block[name] not in choices:
            raise DataSelectionError(
                f"data_selection.{name} must be one of {list(choices)}, got {block[name]!r}"
            )
    block["budget"] = _parse_budget(block["budget"])
    try:
        check_threshold(block["threshold"])
    except ValueError as exc:
        raise DataSelectionError(f"data_selection.{exc}") from None
    if block["method"] == "mmssr" and block["infer_dtype"] not in INFER_DTYPES:
        raise DataSelectionError(
            f"data_selection.infer_dtype must be one of {list(INFER_DTYPES)}, got {block['infer_dtype']!r}"
        )
    parts = {part: {} for part in _PARTS}
    for name, (part, _) in BLOCK_FIELDS.items():
        parts[part][name] = block[name]
    try:
        selection = SelectionConfig(**parts["selection"])
    except ValueError as exc:
        raise DataSelectionError(_capabilities_message(exc)) from None
    try:
        scorer = ScorerConfig(**parts["scorer"], check=selection.method == "mmssr")
    except ValueError as exc:
        raise DataSelectionError(f"data_selection: {exc}") from None
    for name in ("batch_size", "shard_size"):
        if not isinstance(block[name], int) or block[name] < 1:
            raise DataSelectionError(f"data_selection.{name} must be an integer >= 1")
    workers = block["workers"]
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise DataSelectionError("data_selection.workers must be an integer >= 1")
    return DataSelectionConfig(
        scorer=scorer, selection=selection, job=JobConfig(**parts["job"]),
        output=OutputConfig(**parts["output"]),
    )


def _capabilities_message(exc: ValueError) -> str:
    """The capability error in the block's words: an unknown id points at capability_keywords."""
    message = str(exc)
    if message.startswith("unknown capabilities"):
        message = message.split(" (", 1)[0] + (
            "; add a capability of your own under data_selection.capability_keywords "
            "(id: keyword)"
        )
    return f"data_selection.capabilities: {message}"


def _parse_budget(value: Any) -> float | int:
    """The shared budget parser, with the block's wording of its errors."""
    try:
        return parse_budget(value)
    except BudgetError as exc:
        if exc.kind == "text":
            raise DataSelectionError(f"budget must be a number, got {str(exc.value).strip()!r}") from None
        if exc.kind == "count":
            raise DataSelectionError(f"a budget count must be >= 1, got {exc.value}") from None
        if exc.kind == "ratio":
            raise DataSelectionError(
                f"a budget ratio must lie in (0, 1], got {exc.value} "
                "(use an integer for a sample count)"
            ) from None
        raise DataSelectionError(
            f"budget must be a ratio in (0, 1] or a count >= 1, got {exc.value!r}"
        ) from None


def help_text() -> str:
    """One line per key: name, default and help (for ``mmssr-cli train --help-config``)."""
    lines = []
    for name, (_, f) in BLOCK_FIELDS.items():
        choices = f.metadata.get("choices")
        values = f" Values: {', '.join(map(str, choices))}." if choices else ""
        lines.append(f"  {name} (default {_default(f)!r}): {f.metadata.get('help', '')}{values}")
    return "\n".join(lines)
