"""The hf engine's model slot for a released ``llava_qwen`` checkpoint (direct loader).

Same prefix sharing, batching and branching as for LLaMA-Factory models (the prefix of each
sample, image included, runs once, the queries branch from its cache, prompts and pixels are
prepared ahead of the model), with the authors' prompt layout (:mod:`.llava_qwen_prompts`) and
model (:mod:`.llava_qwen_model`). Greedy answers use the checkpoint's ``generation_config.json``:
its stop ids and its ``repetition_penalty``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from mmssr_plugin.core.prompts import scorer_user_text
from mmssr_plugin.data.sample import Sample
from mmssr_plugin.engines.hf.config import HfEngineSettings
from mmssr_plugin.engines.hf.engine import _LoadedVLM
from mmssr_plugin.engines.hf.llava_qwen_model import load_llava_qwen
from mmssr_plugin.engines.hf.llava_qwen_modeling import IMAGE_SLOT_ID
from mmssr_plugin.engines.hf.llava_qwen_prompts import (IMAGE_PLACEHOLDER, encode_prompt,
                                                        load_pixels, with_image_placeholders)
from mmssr_plugin.engines.hf.prompt_encoding import EncodedSample, split_prompts


class LlavaQwenPromptEncoder:
    """The authors' prompt ids for every query of a sample, and its pixels (loaded once)."""

    def __init__(self, tokenizer: Any, tokens_per_image: int) -> None:
        self.tokenizer = tokenizer
        self.tokens_per_image = tokens_per_image

    def encode(self, sample: Sample, queries: Sequence[str]) -> EncodedSample:
        """Shared prefix and per-query suffixes; images without a placeholder go first."""
        images = list(sample.images)
        head = with_image_placeholders(scorer_user_text(sample.turns, ""), len(images))
        prompts = []
        for query in queries:
            if IMAGE_PLACEHOLDER in query:
                raise ValueError(f"a query must not contain {IMAGE_PLACEHOLDER!r}: {query!r}")
            prompts.append(encode_prompt(self.tokenizer, head + query, IMAGE_SLOT_ID,
                                         self.tokens_per_image))
        pixels = {"pixel_values": np.stack([load_pixels(p) for p in images])} if images else {}
        return split_prompts(prompts, images, {IMAGE_SLOT_ID}, pixels)

    def collate(self, items: Sequence[EncodedSample]) -> dict[str, Any]:
        """The batch's pixel values, in sample order (none for text-only batches)."""
        pixels = [item.mm_inputs["pixel_values"] for item in items if item.mm_inputs]
        return {"pixel_values": torch.from_numpy(np.concatenate(pixels))} if pixels else {}


class LoadedLlavaQwen(_LoadedVLM):
    """A ``llava_qwen`` checkpoint (released or converted) with its tokenizer and optional LoRA
    adapter; ``template``, ``extra_args``, the image pixel bounds and ``flash_attn`` unused."""

    def __init__(self, model_name_or_path: str, adapter_name_or_path: str | None,
                 settings: HfEngineSettings) -> None:
        self.model, self.tokenizer, generation = load_llava_qwen(
            model_name_or_path, settings.infer_dtype, settings.quantization_bit,
            adapter_name_or_path)
        eos = generation.eos_token_id
        if eos is None:
            eos = self.tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
        self._set_up_running(settings, [eos] if isinstance(eos, int) else list(eos),
                             float(generation.repetition_penalty or 1.0))
        self.mm_token_ids = {IMAGE_SLOT_ID}
        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        self.encoder = LlavaQwenPromptEncoder(self.tokenizer, base.tokens_per_image)
