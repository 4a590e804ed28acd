"""What a scoring job needs to know about its scorer, as one plain, serialisable dataclass."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from mmssr_plugin.engines.authors_parsing import SCORE_PARSINGS, STYLE_PARSINGS
from mmssr_plugin.engines.hf.llava_qwen_checkpoint import MODEL_LAYOUTS
from mmssr_plugin.scoring.digits import DEFAULT_MIN_DIGIT_MASS

BACKENDS = ("hf", "fake")


@dataclass
class ScorerConfig:
    """The scorer (and styler) of a scoring job."""

    backend: str = field(default="hf", metadata={"help": f"Scoring engine: one of {BACKENDS}."})
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Scorer model: local path or hub id."}
    )
    adapter_name_or_path: str | None = field(
        default=None, metadata={"help": "LoRA adapter of the scorer (PEFT folder), optional."}
    )
    quantization_bit: int | None = field(
        default=None, metadata={"help": "Load the scorer in 4 or 8 bit with bitsandbytes."}
    )
    template: str = field(default="qwen2_vl", metadata={"help": "LLaMA-Factory chat template."})
    styler_model_name_or_path: str | None = field(
        default=None, metadata={"help": "Styler model when it is not the scorer itself."}
    )
    styler_adapter_name_or_path: str | None = field(
        default=None, metadata={"help": "LoRA adapter of a separate styler."}
    )
    infer_dtype: str = field(
        default="auto", metadata={"help": "auto, float32, float16 or bfloat16."}
    )
    batch_size: int = field(default=8, metadata={"help": "Samples per engine batch."})
    model_layout: str = field(
        default="auto",
        metadata={"help": "auto, llamafactory or llava_qwen (the released mmSSR checkpoints; "
                          "auto recognises them from config.json)."},
    )
    score_parsing: str = field(
        default="digits",
        metadata={"help": "digits (digit probabilities) or authors_int (int() of the greedy "
                          "answer, as the authors' script)."},
    )
    style_parsing: str = field(
        default="default",
        metadata={"help": "default or authors (plain comma split, case-sensitive match)."},
    )
    min_digit_mass: float = field(
        default=DEFAULT_MIN_DIGIT_MASS,
        metadata={"help": "Below this probability on 0..5 a score is missing (not a digit)."},
    )

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.backend == "hf" and not self.model_name_or_path:
            raise ValueError("the hf backend needs model_name_or_path")
        if self.quantization_bit not in (None, 4, 8):
            raise ValueError(f"quantization_bit must be 4, 8 or unset, got {self.quantization_bit}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        for name, allowed in (("model_layout", MODEL_LAYOUTS), ("score_parsing", SCORE_PARSINGS),
                              ("style_parsing", STYLE_PARSINGS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if not 0.0 <= self.min_digit_mass <= 1.0:
            raise ValueError(f"min_digit_mass must lie in [0, 1], got {self.min_digit_mass}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ScorerConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown scorer keys {unknown}; valid keys: {sorted(known)}")
        return cls(**values)
