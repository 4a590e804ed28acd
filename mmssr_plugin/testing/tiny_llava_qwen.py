"""A tiny random checkpoint in the released mmSSR models' LLaVA-NeXT ``llava_qwen`` layout.

Same on-disk layout as a LLaVA-NeXT ``LlavaQwenForCausalLM`` save: ``config.json`` with
``model_type: llava_qwen`` and the ``mm_*`` fields (the vision tower's architecture is not in it),
``generation_config.json`` with Qwen2-Instruct's ``repetition_penalty: 1.05``, one safetensors file
with the keys ``model.embed_tokens``, ``model.layers.*``, ``model.norm``, an untied ``lm_head``,
``model.vision_tower.vision_tower.vision_model.*`` (SigLIP, no ``head``),
``model.mm_projector.0/2.*`` and ``model.image_newline``, the tokenizer files and no preprocessor
config. The stored embedding matrix has more rows than the tokenizer, as Qwen2-7B's does.

The tower keeps so400m's fixed hyper-parameters (16 heads, 384 px, patch 14: 729 patches) with
tiny widths. Digits and the style words get a shared bias direction so scores and style answers
are not uniform noise.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

from mmssr_plugin.core.taxonomy import DIGITS, STYLES
from mmssr_plugin.testing import tiny_vlm
from mmssr_plugin.testing.tiny_vlm import build_folder_once

TINY_LLAVA_QWEN_VERSION = "v1"
VISION_TOWER_NAME = "google/siglip-so400m-patch14-384"
EXTRA_VOCAB_ROWS = 8  # stored embedding rows beyond len(tokenizer), as in Qwen2-7B checkpoints
VISION_HIDDEN = 64  # divisible by so400m's 16 heads
VISION_LAYERS = 2
TEXT_HIDDEN = 64


def tiny_llava_qwen_dir(seed: int = 0) -> Path:
    """The default cache folder of the tiny checkpoint, next to the tiny Qwen2-VL's."""
    name = f"tiny-llava-qwen-{TINY_LLAVA_QWEN_VERSION}-{_build_key()}-seed{seed}"
    return tiny_vlm.tiny_vlm_dir(seed).parent / name


@lru_cache(maxsize=1)
def _build_key() -> str:
    """Hash of this file, the tokenizer's source file and the writing libraries' versions."""
    sources = Path(__file__).read_bytes() + Path(tiny_vlm.__file__).read_bytes()
    versions = ",".join(version(p) for p in ("torch", "transformers", "tokenizers", "safetensors"))
    return hashlib.sha256(sources + versions.encode()).hexdigest()[:10]


def build_tiny_llava_qwen(path: str | Path | None = None, seed: int = 0) -> Path:
    """Build (or reuse) the tiny ``llava_qwen`` checkpoint with weights from ``seed`` at ``path``
    (default :func:`tiny_llava_qwen_dir`) and return its folder; deterministic, offline, atomic."""
    return build_folder_once(Path(path) if path is not None else tiny_llava_qwen_dir(seed),
                             lambda staging: _write_checkpoint(staging, seed))


def _write_checkpoint(folder: Path, seed: int) -> None:
    import torch
    from safetensors.torch import save_file
    from transformers import Qwen2Config, Qwen2ForCausalLM, SiglipVisionConfig, SiglipVisionModel

    tokenizer = tiny_vlm._train_tokenizer()
    tokenizer.add_tokens(["\n\n"])  # Qwen2 has a merged double newline; the layout must avoid it
    ids = tokenizer.convert_tokens_to_ids
    text_fields = {
        "hidden_size": TEXT_HIDDEN,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0,
        "vocab_size": len(tokenizer) + EXTRA_VOCAB_ROWS,
        "tie_word_embeddings": False,
        "hidden_act": "silu",
    }
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        language = Qwen2ForCausalLM(Qwen2Config(**text_fields)).eval()
        tower = SiglipVisionModel(SiglipVisionConfig(
            hidden_size=VISION_HIDDEN, intermediate_size=128, num_hidden_layers=VISION_LAYERS,
            num_attention_heads=16, image_size=384, patch_size=14, vision_use_head=False,
        )).eval()
        projector = [torch.randn(TEXT_HIDDEN, VISION_HIDDEN) * 0.2, torch.randn(TEXT_HIDDEN) * 0.02,
                     torch.randn(TEXT_HIDDEN, TEXT_HIDDEN) * 0.2, torch.randn(TEXT_HIDDEN) * 0.02]
        newline = torch.randn(TEXT_HIDDEN)
        _favour_answers(language, tokenizer)
    finally:
        torch.random.set_rng_state(generator_state)
    weights = {name: tensor for name, tensor in language.state_dict().items()}
    tower_prefix = "model.vision_tower.vision_tower.vision_model."
    weights.update({tower_prefix + name: t for name, t in tower.state_dict().items()})
    for name, tensor in zip(("0.weight", "0.bias", "2.weight", "2.bias"), projector):
        weights["model.mm_projector." + name] = tensor
    weights["model.image_newline"] = newline
    save_file({k: v.contiguous() for k, v in sorted(weights.items())},
              str(folder / "model.safetensors"), metadata={"format": "pt"})
    config = {
        "architectures": ["LlavaQwenForCausalLM"],
        "model_type": "llava_qwen",
        **text_fields,
        "bos_token_id": ids("<|endoftext|>"),
        "eos_token_id": ids("<|im_end|>"),
        "torch_dtype": "float32",
        "use_cache": True,
        "use_sliding_window": False,
        "sliding_window": 4096,
        "max_window_layers": 2,
        "attention_dropout": 0.0,
        "rope_scaling": None,
        "image_aspect_ratio": "anyres_max_9",
        "image_crop_resolution": None,
        "image_grid_pinpoints": [[384 * a, 384 * b] for a in range(1, 7) for b in range(1, 7)],
        "image_split_resolution": None,
        "mm_hidden_size": VISION_HIDDEN,
        "mm_patch_merge_type": "spatial_unpad",
        "mm_projector_lr": None,
        "mm_projector_type": "mlp2x_gelu",
        "mm_resampler_type": None,
        "mm_spatial_pool_mode": "bilinear",
        "mm_tunable_parts": "mm_vision_tower,mm_mlp_adapter,mm_language_model",
        "mm_use_im_patch_token": False,
        "mm_use_im_start_end": False,
        "mm_vision_select_feature": "patch",
        "mm_vision_select_layer": -2,
        "mm_vision_tower": VISION_TOWER_NAME,
        "mm_vision_tower_lr": 2e-06,
        "tokenizer_model_max_length": 32768,
        "tokenizer_padding_side": "right",
        "use_mm_proj": True,
        "vision_tower_pretrained": None,
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    generation = {
        "bos_token_id": ids("<|endoftext|>"),
        "do_sample": True,
        "eos_token_id": [ids("<|im_end|>"), ids("<|endoftext|>")],
        "pad_token_id": ids("<|endoftext|>"),
        "repetition_penalty": 1.05,
        "temperature": 0.7,
        "top_k": 20,
        "top_p": 0.8,
    }
    (folder / "generation_config.json").write_text(json.dumps(generation, indent=2) + "\n")
    tokenizer.chat_template = None  # the scoring path builds ChatML by hand
    tokenizer.save_pretrained(folder)


def _favour_answers(model: Any, tokenizer: Any) -> None:
    """Digits, then style words, become likely next tokens, with prompt-dependent proportions."""
    import torch

    style_ids = sorted({t for name in STYLES for t in tokenizer.encode(name + ", ")})
    digit_ids = [tokenizer.convert_tokens_to_ids(d) for d in DIGITS]
    with torch.no_grad():
        embed = model.get_input_embeddings().weight
        head = model.get_output_embeddings().weight
        embed[:, 0] = 0.1
        head.normal_(0.0, 0.3)
        head[:, 0] = 0.0
        head[style_ids, 0] = 2.0
        head[digit_ids, 0] = 4.0
