"""The Hugging Face engine's construction settings, and the identity they give its scores.

Cheap to import (no torch): the engine registry reads the field list from here, and an engine's
identity is computed from these settings without loading any model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from mmssr_plugin.core.taxonomy import PROMPT_VERSION
from mmssr_plugin.engines.base import path_fingerprint

HF_ENGINE_VERSION = "1"
DEFAULT_MAX_STYLE_TOKENS = 48
DEFAULT_MAX_BRANCH_ROWS = 512
ATTENTION_IMPLEMENTATIONS = ("sdpa", "disabled", "fa2", "fa3", "auto")

# Field metadata: taken from a ScorerConfig field of the same name by the engine registry.
FROM_SCORER_CONFIG = "from_scorer_config"
_SCORER = {FROM_SCORER_CONFIG: True}


@dataclass(frozen=True)
class HfEngineSettings:
    """How an ``HfEngine`` is built.

    Attributes:
        model_name_or_path: scorer model (local folder or hub id).
        adapter_name_or_path: LoRA adapter of the scorer (PEFT folder).
        quantization_bit: 4 or 8 to load with bitsandbytes.
        template: LLaMA-Factory chat template the scorer was trained with.
        infer_dtype: ``auto``, ``float32``, ``float16`` or ``bfloat16``.
        batch_size: samples whose prefixes run in one forward pass.
        styler_model_name_or_path: separate styler model; default: the scorer's model.
        styler_adapter_name_or_path: adapter of a separate styler.
        max_style_tokens: longest style answer generated.
        max_branch_rows: most query branches in one forward pass (on CUDA, fewer where the free
            memory asks for it).
        image_max_pixels, image_min_pixels: LLaMA-Factory's image resizing bounds (its defaults
            when unset).
        flash_attn: attention implementation, LLaMA-Factory's names: ``sdpa`` and ``disabled``
            (eager) run all branches of a sample in one row over its shared cache; ``fa2``/``fa3``
            one row per branch; ``auto`` as transformers chooses.
        encode_workers: threads encoding prompts and images ahead of the model (default: 1 on
            CUDA, 0 = in the scoring thread on CPU).
        extra_args: further LLaMA-Factory model arguments.
    """

    model_name_or_path: str = field(metadata=_SCORER)
    adapter_name_or_path: str | None = field(default=None, metadata=_SCORER)
    quantization_bit: int | None = field(default=None, metadata=_SCORER)
    template: str = field(default="qwen2_vl", metadata=_SCORER)
    infer_dtype: str = field(default="auto", metadata=_SCORER)
    batch_size: int = field(default=8, metadata=_SCORER)
    styler_model_name_or_path: str | None = field(default=None, metadata=_SCORER)
    styler_adapter_name_or_path: str | None = field(default=None, metadata=_SCORER)
    max_style_tokens: int = field(default=DEFAULT_MAX_STYLE_TOKENS, metadata=_SCORER)
    max_branch_rows: int = field(default=DEFAULT_MAX_BRANCH_ROWS, metadata=_SCORER)
    image_max_pixels: int | None = field(default=None, metadata=_SCORER)
    image_min_pixels: int | None = field(default=None, metadata=_SCORER)
    flash_attn: str = field(default="sdpa", metadata=_SCORER)
    encode_workers: int | None = field(default=None, metadata=_SCORER)
    extra_args: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.quantization_bit not in (None, 4, 8):
            raise ValueError(f"quantization_bit must be 4, 8 or None, got {self.quantization_bit}")
        if self.flash_attn not in ATTENTION_IMPLEMENTATIONS:
            raise ValueError(f"flash_attn must be one of {ATTENTION_IMPLEMENTATIONS}, "
                             f"got {self.flash_attn!r}")
        for name in ("batch_size", "max_style_tokens", "max_branch_rows"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        object.__setattr__(self, "extra_args", dict(self.extra_args or {}))

    @property
    def separate_styler(self) -> bool:
        """Whether the styler is a model (or adapter) of its own rather than the scorer."""
        return bool(self.styler_model_name_or_path or self.styler_adapter_name_or_path)

    def identity(self) -> dict[str, Any]:
        """The identity of scores made with these settings, without loading anything.

        Batch size, branch rows, attention implementation and encoding workers are left out:
        they change float rounding only. Image pixel bounds appear only when set.
        """
        styler = None
        if self.separate_styler:
            styler = {
                "model": path_fingerprint(self.styler_model_name_or_path or self.model_name_or_path),
                "adapter": path_fingerprint(self.styler_adapter_name_or_path),
            }
        return {
            "backend": "hf",
            "model": path_fingerprint(self.model_name_or_path),
            "adapter": path_fingerprint(self.adapter_name_or_path),
            "quantization": f"bnb-{self.quantization_bit}bit" if self.quantization_bit else None,
            "template": self.template,
            "infer_dtype": self.infer_dtype,
            "styler": styler or "scorer",
            "max_style_tokens": self.max_style_tokens,
            "extra_args": dict(sorted(self.extra_args.items())),
            **{name: getattr(self, name) for name in ("image_max_pixels", "image_min_pixels")
               if getattr(self, name) is not None},
            "engine_version": HF_ENGINE_VERSION,
            "prompt_version": PROMPT_VERSION,
        }


def scorer_config_fields() -> tuple[str, ...]:
    """The settings a ``ScorerConfig`` supplies (fields of the same name on both)."""
    return tuple(f.name for f in fields(HfEngineSettings) if f.metadata.get(FROM_SCORER_CONFIG))
