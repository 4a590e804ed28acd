"""Loading a released (or converted) mmSSR ``llava_qwen`` checkpoint for scoring.

The model class is :class:`~.llava_qwen_modeling.MmssrLlavaQwenForCausalLM` (the one LLaMA-Factory
trains a converted checkpoint with), so a LoRA adapter trained there applies here unchanged.
Imports torch: only the hf engine loads this module.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from mmssr_plugin.engines.hf.llava_qwen_checkpoint import (UnsupportedCheckpoint, load_spec,
                                                            model_config)
from mmssr_plugin.engines.hf.llava_qwen_modeling import MmssrLlavaQwenForCausalLM

logger = logging.getLogger(__name__)

# Kept in the compute dtype under bitsandbytes (as LLaMA-Factory keeps a VLM's vision parts).
UNQUANTIZED_MODULES = ["model.vision_tower", "model.mm_projector", "lm_head"]


def resolve_dtype(infer_dtype: str) -> torch.dtype:
    """``auto``: bfloat16 on a GPU that has it, else float16 on GPU, float32 on CPU."""
    named = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if infer_dtype in named:
        return named[infer_dtype]
    if infer_dtype != "auto":
        raise ValueError(f"infer_dtype must be auto, float32, float16 or bfloat16: {infer_dtype!r}")
    if torch.cuda.is_available():
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def load_llava_qwen(
    folder: str | Path, infer_dtype: str = "auto", quantization_bit: int | None = None,
    adapter_name_or_path: str | None = None,
) -> tuple[MmssrLlavaQwenForCausalLM, Any, Any]:
    """Load a ``llava_qwen`` checkpoint folder (released or converted) for inference.

    bitsandbytes 4/8-bit quantizes the language model only (tower, projector and ``lm_head`` stay
    in the compute dtype). The vocabulary is resized to ``len(tokenizer)``, as LLaVA-NeXT's loader
    does, so softmax and argmax run over the tokenizer's rows only. A LoRA adapter (trained with
    ``llamafactory-cli`` on the converted checkpoint) is applied with PEFT.

    Returns:
        The model (eval mode, on the GPU when there is one), its tokenizer and generation config.
    """
    from transformers import AutoTokenizer, BitsAndBytesConfig, GenerationConfig
    from transformers.utils import logging as hf_logging

    spec = load_spec(folder)
    dtype = resolve_dtype(infer_dtype)
    device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() \
        else torch.device("cpu")
    kwargs: dict[str, Any] = {}
    if quantization_bit == 8:
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_8bit=True, llm_int8_skip_modules=UNQUANTIZED_MODULES)
    elif quantization_bit == 4:
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_compute_dtype=dtype, bnb_4bit_use_double_quant=True,
            bnb_4bit_quant_type="nf4", bnb_4bit_quant_storage=dtype,
            llm_int8_skip_modules=UNQUANTIZED_MODULES)
    elif quantization_bit is not None:
        raise ValueError(f"quantization_bit must be 4, 8 or None, got {quantization_bit}")
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # llava_qwen is unknown to transformers' auto classes
    try:
        tokenizer = AutoTokenizer.from_pretrained(spec.folder)
        model, info = MmssrLlavaQwenForCausalLM.from_pretrained(
            spec.folder, config=model_config(spec), dtype=dtype, device_map={"": device},
            attn_implementation="sdpa", output_loading_info=True, **kwargs)
    finally:
        hf_logging.set_verbosity(verbosity)
    missing = [key for key in info["missing_keys"] if not key.startswith("lm_head")
               or not model.config.tie_word_embeddings]
    if missing or info["unexpected_keys"]:
        raise UnsupportedCheckpoint(
            f"{spec.folder}: weights do not match the llava_qwen layout (missing "
            f"{sorted(missing)[:3]}, unexpected {sorted(info['unexpected_keys'])[:3]})")
    model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    if adapter_name_or_path:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_name_or_path, is_trainable=False)
    generation = (GenerationConfig.from_pretrained(spec.folder)
                  if (spec.folder / "generation_config.json").is_file() else GenerationConfig())
    logger.info("loaded llava_qwen checkpoint %s (%s, %s%s)", spec.folder, dtype,
                f"bnb-{quantization_bit}bit" if quantization_bit else "unquantized",
                f", adapter {adapter_name_or_path}" if adapter_name_or_path else "")
    return model.eval(), tokenizer, generation
