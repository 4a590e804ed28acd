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
from mmssr_plugin.engines.hf.llava_qwen_checkpoint import MODEL_LAYOUTS, resolve_layout

HF_ENGINE_VERSION = "1"
DEFAULT_MAX_STYLE_TOKENS = 48
# digits: probabilities of the first answer token; authors_int: int() of the greedy answer.
SCORE_PARSINGS = ("digits", "authors_int")
# default: the method's lenient match; authors: their plain comma split, case-sensitive match.
STYLE_PARSINGS = ("default", "authors")
DEFAULT_MAX_BRANCH_ROWS = 512
# LLaMA-Factory's flash_attn names (disabled: eager attention).
ATTENTION_IMPLEMENTATIONS = ("sdpa", "disabled", "fa2", "fa3", "auto")
# Settings with a fixed set of values (checked here and, before any model loads, by ScorerConfig).
SETTING_CHOICES = {"model_layout": MODEL_LAYOUTS, "score_parsing": SCORE_PARSINGS,
                   "style_parsing": STYLE_PARSINGS, "flash_attn": ATTENTION_IMPLEMENTATIONS}
# Settings that count something: their least value (None, where allowed, means the default).
SETTING_MINIMUMS = {"batch_size": 1, "max_style_tokens": 1, "max_branch_rows": 1,
                    "image_max_pixels": 1, "image_min_pixels": 1, "encode_workers": 0}

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
            when unset; the ``llava_qwen`` layout always resizes to 384x384).
        flash_attn: attention implementation, LLaMA-Factory's names: ``sdpa`` and ``disabled``
            (eager) run all branches of a sample in one row over its shared cache; ``fa2``/``fa3``
            one row per branch; ``auto`` as transformers chooses.
        encode_workers: threads encoding prompts and images ahead of the model (default: 1 on
            CUDA, 0 = in the scoring thread on CPU).
        extra_args: further LLaMA-Factory model arguments.
        model_layout: ``auto`` (a LLaVA-NeXT ``llava_qwen`` save is recognised from its
            ``config.json``), ``llamafactory`` or ``llava_qwen`` (the released mmSSR models, run
            with the authors' prompt layout).
        score_parsing: ``digits`` (digit probabilities) or ``authors_int`` (``int()`` of the
            greedy answer, as the authors' script).
        style_parsing: ``default`` or ``authors`` (plain comma split, case-sensitive match).
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
    model_layout: str = field(default="auto", metadata=_SCORER)
    score_parsing: str = field(default="digits", metadata=_SCORER)
    style_parsing: str = field(default="default", metadata=_SCORER)

    def __post_init__(self) -> None:
        if self.quantization_bit not in (None, 4, 8):
            raise ValueError(f"quantization_bit must be 4, 8 or None, got {self.quantization_bit}")
        check_settings(self)
        object.__setattr__(self, "extra_args", dict(self.extra_args or {}))

    @property
    def separate_styler(self) -> bool:
        """Whether the styler is a model (or adapter) of its own rather than the scorer."""
        return bool(self.styler_model_name_or_path or self.styler_adapter_name_or_path)

    def layout(self, model_name_or_path: str) -> str:
        """``llava_qwen`` or ``llamafactory`` for one of this engine's models."""
        return resolve_layout(self.model_layout, model_name_or_path)

    def identity(self) -> dict[str, Any]:
        """The identity of scores made with these settings, without loading anything.

        Batch size, branch rows, attention implementation and encoding workers are left out:
        they change float rounding only. Layout and parsing appear only where they differ from the
        LLaMA-Factory layout and the defaults, and image pixel bounds only when set, so existing
        scores keep their fingerprints.
        """
        styler = None
        if self.separate_styler:
            styler = {
                "model": path_fingerprint(self.styler_model_name_or_path or self.model_name_or_path),
                "adapter": path_fingerprint(self.styler_adapter_name_or_path),
            }
        layouts = {self.layout(self.model_name_or_path)}
        if self.separate_styler:
            layouts.add(self.layout(self.styler_model_name_or_path or self.model_name_or_path))
        variant = {key: value for key, value in (
            ("layout", ",".join(sorted(layouts))), ("score_parsing", self.score_parsing),
            ("style_parsing", self.style_parsing)) if value not in ("llamafactory", "digits", "default")}
        return {
            **variant,
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


def check_settings(settings: Any) -> None:
    """Raise on a setting of :data:`SETTING_CHOICES` off its list or of :data:`SETTING_MINIMUMS`
    below its least value (attributes of ``settings``), or on pixel bounds the wrong way round."""
    for name, allowed in SETTING_CHOICES.items():
        value = getattr(settings, name)
        if value not in allowed:
            raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    for name, least in SETTING_MINIMUMS.items():
        value = getattr(settings, name)
        if value is not None and value < least:
            raise ValueError(f"{name} must be >= {least}, got {value}")
    low, high = settings.image_min_pixels, settings.image_max_pixels
    if low is not None and high is not None and low > high:
        raise ValueError(f"image_min_pixels ({low}) must not exceed image_max_pixels ({high})")


def scorer_config_fields() -> tuple[str, ...]:
    """The settings a ``ScorerConfig`` supplies (fields of the same name on both)."""
    return tuple(f.name for f in fields(HfEngineSettings) if f.metadata.get(FROM_SCORER_CONFIG))
