"""The hf engine's model slot for a released ``llava_qwen`` checkpoint (direct loader).

Same prefix sharing and batching as for LLaMA-Factory models (the prefix of each sample, image
included, runs once and the queries branch from its cache), with the authors' prompt layout
(:mod:`.llava_qwen_prompts`) and model (:mod:`.llava_qwen_model`). Greedy answers use the
checkpoint's ``generation_config.json``: its stop ids and its ``repetition_penalty``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch

from mmssr_plugin.core.prompts import scorer_user_text
from mmssr_plugin.core.taxonomy import DIGITS
from mmssr_plugin.data.sample import Sample
from mmssr_plugin.engines.hf.engine import _Encoded, _LoadedVLM, _single_token, split_prompts
from mmssr_plugin.engines.hf.kv_branching import PrefixBrancher
from mmssr_plugin.engines.hf.llava_qwen_model import load_llava_qwen
from mmssr_plugin.engines.hf.llava_qwen_modeling import IMAGE_SLOT_ID
from mmssr_plugin.engines.hf.llava_qwen_prompts import (IMAGE_PLACEHOLDER, encode_prompt,
                                                        load_pixels, with_image_placeholders)


class LoadedLlavaQwen(_LoadedVLM):
    """A ``llava_qwen`` checkpoint (released or converted) with its tokenizer and optional LoRA
    adapter; ``template`` and ``extra_args`` unused."""

    def __init__(
        self, model_name_or_path: str, adapter_name_or_path: str | None,
        quantization_bit: int | None, template: str, infer_dtype: str,
        extra_args: Mapping[str, Any], max_rows: int,
    ) -> None:
        self.model, self.tokenizer, generation = load_llava_qwen(
            model_name_or_path, infer_dtype, quantization_bit, adapter_name_or_path)
        self.digit_ids = [_single_token(self.tokenizer, digit) for digit in DIGITS]
        eos = generation.eos_token_id
        if eos is None:
            eos = self.tokenizer.convert_tokens_to_ids(["<|im_end|>", "<|endoftext|>"])
        self.stop_ids = [eos] if isinstance(eos, int) else list(eos)
        pad = self.tokenizer.pad_token_id
        self.brancher = PrefixBrancher(
            self.model, pad if pad is not None else self.stop_ids[0], max_rows=max_rows,
            repetition_penalty=float(generation.repetition_penalty or 1.0))
        self.mm_token_ids = {IMAGE_SLOT_ID}
        self.prompt_tokens = 0
        self.computed_tokens = 0

    def encode(self, sample: Sample, queries: Sequence[str]) -> _Encoded:
        """The authors' prompt ids for every query; images without a placeholder go first."""
        images = list(sample.images)
        head = with_image_placeholders(scorer_user_text(sample.turns, ""), len(images))
        prompts = []
        for query in queries:
            if IMAGE_PLACEHOLDER in query:
                raise ValueError(f"a query must not contain {IMAGE_PLACEHOLDER!r}: {query!r}")
            prompts.append(encode_prompt(self.tokenizer, head + query, IMAGE_SLOT_ID,
                                         self.model.tokens_per_image))
        return split_prompts(prompts, images, self.mm_token_ids)

    def _encode_prefixes(self, batch: Sequence[_Encoded]):
        paths = [image for item in batch for image in item.images]
        mm_inputs = {}
        if paths:
            mm_inputs["pixel_values"] = torch.from_numpy(np.stack([load_pixels(p) for p in paths]))
        self._count_tokens(batch)
        return self.brancher.encode_prefixes([item.prefix for item in batch], mm_inputs)
