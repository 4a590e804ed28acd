"""A tiny Qwen2-VL, built offline in seconds, for tests and CPU demos.

The model has random weights (seeded), a byte-level BPE tokenizer trained locally on a small
built-in corpus (the scorer prompts, the style names, the digits 0..5 as single tokens), the Qwen
special tokens and chat template, and small image/video processors, so that LLaMA-Factory's
``qwen2_vl`` template and its multimodal plugin handle it like a real Qwen2-VL checkpoint.

One random direction of the embeddings is made large and the digit rows of the output head are
aligned with it, so the digits carry most of the next-token probability and their distribution
varies with the prompt: scores look like a real scorer's, not like uniform noise.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from importlib.metadata import version
from pathlib import Path
from typing import Any, Callable

from mmssr_plugin.core.taxonomy import DEFAULT_CAPABILITIES, DIGITS, STYLE_QUERY, STYLES, SYSTEM_MESSAGE, Capability
from mmssr_plugin.utils import files

# Bump when the built files change. The cache folder name also carries a hash of this file and of
# the library versions that write the files, so a stale cache is never reused.
TINY_VLM_VERSION = "v2"
DEFAULT_CACHE_ROOT_ENV = "MMSSR_CACHE"

SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# Qwen2-VL's chat template (as shipped with Qwen/Qwen2-VL-*-Instruct).
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}"
    "Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}"
    "Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Pre-tokenization of Qwen2: digits are split one by one, so "0".."5" are single tokens.
_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"""
    r"""|\s*[\r\n]+|\s+(?!\S)|\s+"""
)

_EXTRA_CORPUS = (
    "Question: <image>\nWhat color is the bus? Answer: Red.",
    "Question: How many people are in the picture? Answer: 3",
    "Hint: Please answer the question and provide the correct option letter. Answer: A",
    "Question: Is the dog sitting on the sofa? Answer: Yes, it is.",
    "Question: Describe the image in detail. Answer: A man rides a bicycle along the street.",
    "Question: What is written on the sign? Answer: STOP",
    "Question: Which object is to the left of the table? Answer: The chair.",
    "Question: Solve the equation 2x + 1 = 5. Answer: Let's think step by step. x = 2.",
    "system user assistant 0 1 2 3 4 5 6 7 8 9 0, 1, 2, 3, 4, 5",
)

# Small image processor limits: a 32x32 image becomes 56x56 pixels, 4x4 patches, 4 LLM tokens.
IMAGE_MIN_PIXELS = 56 * 56
IMAGE_MAX_PIXELS = 112 * 112


def tiny_vlm_dir(seed: int = 0) -> Path:
    """The default cache folder of the tiny model: ``$MMSSR_CACHE`` or ``~/.cache/mmssr-plugin``."""
    root = os.environ.get(DEFAULT_CACHE_ROOT_ENV) or Path.home() / ".cache" / "mmssr-plugin"
    return Path(root) / f"tiny-qwen2vl-{TINY_VLM_VERSION}-{_build_key()}-seed{seed}"


@lru_cache(maxsize=1)
def _build_key() -> str:
    digest = hashlib.sha256(Path(__file__).read_bytes())
    for package in ("transformers", "tokenizers", "safetensors"):
        digest.update(f"{package}=={version(package)}".encode())
    return digest.hexdigest()[:10]


def build_tiny_qwen2vl(path: str | Path | None = None, seed: int = 0) -> Path:
    """Build (or reuse) a tiny Qwen2-VL checkpoint folder loadable by LLaMA-Factory.

    The build is deterministic (same seed, same weight bytes), needs no network and takes a few
    seconds. It is written to a temporary sibling folder and renamed into place, so concurrent
    processes never see a partial model; an existing complete folder is reused as is.

    Args:
        path: target folder; default :func:`tiny_vlm_dir` for ``seed``.
        seed: seed of the random weights.

    Returns:
        The model folder.
    """
    return build_folder_once(Path(path) if path is not None else tiny_vlm_dir(seed),
                             lambda staging: _write_model(staging, seed))


def build_folder_once(target: Path, write: Callable[[Path], None]) -> Path:
    """Write a model folder into a temporary sibling and rename it into place (reused if done)."""
    return files.build_folder_once(target, write, _complete)


def _complete(folder: Path) -> bool:
    return (folder / "config.json").is_file() and (folder / "model.safetensors").is_file()


def _corpus() -> list[str]:
    capabilities = [Capability(cap_id, kw) for cap_id, kw in DEFAULT_CAPABILITIES.items()]
    return [
        SYSTEM_MESSAGE,
        STYLE_QUERY,
        ", ".join(STYLES),
        *(cap.query for cap in capabilities),
        *_EXTRA_CORPUS,
    ]


def _train_tokenizer() -> Any:
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.normalizer = normalizers.NFC()
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(_PRETOKENIZE_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        min_frequency=1,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(_corpus() * 4, trainer=trainer)
    trained = json.loads(bpe.to_str())["model"]
    vocab = trained["vocab"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in trained["merges"]]
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
        model_max_length=4096,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    for digit in DIGITS:
        ids = tokenizer.encode(digit, add_special_tokens=False)
        if len(ids) != 1:
            raise RuntimeError(f"tiny tokenizer splits the digit {digit!r} into {ids}")
    return tokenizer


def _write_model(folder: Path, seed: int) -> None:
    import torch
    from transformers import (
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    tokenizer = _train_tokenizer()
    ids = tokenizer.convert_tokens_to_ids
    config = Qwen2VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
                                "mrope_section": [2, 3, 3]},
            "bos_token_id": ids("<|endoftext|>"),
            "eos_token_id": ids("<|im_end|>"),
            "pad_token_id": ids("<|endoftext|>"),
        },
        vision_config={
            "depth": 2,
            "embed_dim": 64,  # >= 64: bitsandbytes 4-bit blocks on CPU need it
            "hidden_size": 64,
            "num_heads": 2,
            "mlp_ratio": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        image_token_id=ids("<|image_pad|>"),
        video_token_id=ids("<|video_pad|>"),
        vision_start_token_id=ids("<|vision_start|>"),
        vision_end_token_id=ids("<|vision_end|>"),
        tie_word_embeddings=False,
    )
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model = Qwen2VLForConditionalGeneration(config).eval()
        _favour_digits(model, [ids(d) for d in DIGITS])
    finally:
        torch.random.set_rng_state(generator_state)
    model.generation_config.eos_token_id = [ids("<|im_end|>"), ids("<|endoftext|>")]
    model.generation_config.pad_token_id = ids("<|endoftext|>")
    model.generation_config.do_sample = False
    model.save_pretrained(folder)
    processor = Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(min_pixels=IMAGE_MIN_PIXELS,
                                              max_pixels=IMAGE_MAX_PIXELS),
        video_processor=Qwen2VLVideoProcessor(min_pixels=IMAGE_MIN_PIXELS,
                                              max_pixels=IMAGE_MAX_PIXELS),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
    )
    processor.save_pretrained(folder)


def _favour_digits(model: Any, digit_ids: list[int]) -> None:
    """Make the digits the likely next tokens everywhere, with prompt-dependent proportions."""
    import torch

    with torch.no_grad():
        embed = model.get_input_embeddings().weight
        head = model.get_output_embeddings().weight
        embed[:, 0] = 0.1  # a constant direction the residual stream carries to the last norm
        head.normal_(0.0, 0.3)  # larger logits than the default init: peaked distributions
        head[:, 0] = 0.0
        head[digit_ids, 0] = 3.0  # digits then hold most of the mass (about 0.85 for seed 0)


def main(argv: list[str] | None = None) -> int:
    """``python -m mmssr_plugin.testing.tiny_vlm [--link PATH]``: build (or reuse) the tiny model,
    optionally pointing a symlink at it, and print its folder."""
    import argparse

    parser = argparse.ArgumentParser(description="Build the tiny offline Qwen2-VL.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--link", type=Path, help="symlink to (re)point at the built folder")
    args = parser.parse_args(argv)
    folder = build_tiny_qwen2vl(seed=args.seed)
    if args.link is not None:
        args.link.parent.mkdir(parents=True, exist_ok=True)
        if args.link.is_symlink() or args.link.exists():
            args.link.unlink()
        args.link.symlink_to(folder.resolve(), target_is_directory=True)
    print(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
