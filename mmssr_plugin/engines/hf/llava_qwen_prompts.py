"""Prompt ids and pixels for the released ``llava_qwen`` checkpoints, as the authors built them.

- Token ids: ChatML written by hand (system ``You are a helpful assistant.``), not a chat
  template. The prompt is cut at every ``<image>``: the tokens of the text before it, the image's
  embedding slots, one ``"\\n"`` token, then the tokens of the text after it (which starts with
  its own ``"\\n"``): two separate newline tokens, never Qwen's merged ``"\\n\\n"``.
- Pixels: ``convert("RGB")``, PIL bicubic resize to 384x384 ignoring the aspect ratio (on uint8),
  scaled by 1/255, normalised with mean 0.5 and std 0.5; one view, no tiling.

A text-only sample gets the same prompt without image slots.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mmssr_plugin.core.taxonomy import SYSTEM_MESSAGE

IMAGE_PLACEHOLDER = "<image>"
IMAGE_SIZE = 384
IMAGE_MEAN = 0.5
IMAGE_STD = 0.5


def chatml_prompt(user_text: str, system: str = SYSTEM_MESSAGE) -> str:
    """The whole prompt string: system turn, user turn, open assistant turn."""
    return (f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user_text}<|im_end|>\n"
            "<|im_start|>assistant\n")


def with_image_placeholders(text: str, n_images: int) -> str:
    """``text`` with one ``<image>\\n`` per image in front when it has no placeholder (images
    first, as LLaVA-NeXT's data); the placeholders must then match the images one to one."""
    if n_images and IMAGE_PLACEHOLDER not in text:
        text = (IMAGE_PLACEHOLDER + "\n") * n_images + text
    if text.count(IMAGE_PLACEHOLDER) != n_images:
        raise ValueError(f"{text.count(IMAGE_PLACEHOLDER)} {IMAGE_PLACEHOLDER} placeholders "
                         f"for {n_images} images")
    return text


def encode_prompt(tokenizer: Any, user_text: str, image_slot_id: int,
                  tokens_per_image: int) -> list[int]:
    """Token ids of the ChatML prompt, each ``<image>`` replaced by its slots and a ``"\\n"``."""
    return encode_with_images(tokenizer, chatml_prompt(user_text), image_slot_id, tokens_per_image)


def encode_with_images(tokenizer: Any, text: str, image_slot_id: int,
                       tokens_per_image: int) -> list[int]:
    """Token ids of ``text``: the pieces between ``<image>`` placeholders tokenized one by one,
    each placeholder replaced by ``tokens_per_image`` slots and one ``"\\n"`` token."""
    newline = _tokens(tokenizer, "\n")
    if len(newline) != 1:
        raise ValueError(f"the tokenizer encodes a newline as {len(newline)} tokens {newline}")
    chunks = text.split(IMAGE_PLACEHOLDER)
    ids = _tokens(tokenizer, chunks[0])
    for chunk in chunks[1:]:
        ids += [image_slot_id] * tokens_per_image + newline + _tokens(tokenizer, chunk)
    return ids


def load_pixels(path: str) -> np.ndarray:
    """float32 ``[3, 384, 384]`` pixel values of one image file."""
    from PIL import Image

    with Image.open(path) as image:
        return image_pixels(image)


def image_pixels(image: Any) -> np.ndarray:
    """float32 ``[3, 384, 384]`` pixel values of one PIL image."""
    from PIL import Image

    resized = image.convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BICUBIC)
    pixels = np.asarray(resized, dtype=np.float64) * (1 / 255)  # as transformers' rescale
    return ((pixels - IMAGE_MEAN) / IMAGE_STD).astype(np.float32).transpose(2, 0, 1).copy()


def _tokens(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []
