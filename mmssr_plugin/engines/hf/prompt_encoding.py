"""Prompt encoding for LLaMA-Factory's chat templates: each sample's head tokenised once.

The 15 prompts of a sample differ only in the query that ends the user message, so the head
(system message, image tokens, conversation) is tokenised once, as part of the first query's whole
prompt, and every query's own tokens (the query and the template's closing tokens, the same for
every sample) are appended from a per-engine cache. Each image is decoded and processed once: the
plugin's processed tensors serve both for counting the image tokens of the head and as the model
inputs of the batch. Where a tokenizer or plugin would not give the same ids that way (checked
on probe prompts when the encoder is built, and per sample for the first query), every prompt is
tokenised whole, as before.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mmssr_plugin.core.prompts import scorer_user_text
from mmssr_plugin.core.taxonomy import SYSTEM_MESSAGE
from mmssr_plugin.data.sample import Sample

# Heads ending the way real heads do (a newline after text, punctuation, digits, image tokens)
# on which the split tokenisation is checked against whole prompts for every query.
_PROBE_HEADS = (
    "Question: What is it? Answer: A bus.\n",
    "<image>\nHint: Please answer. A. left B. right Answer: B\n",
    "Question: 2 + 3 Answer: 5\n",
    "Question: x Answer: \n",
)


@dataclass
class EncodedSample:
    """One sample's prompts: the shared token prefix, one suffix per query, its images.

    ``mm_inputs`` holds the sample's processed images (the plugin's tensors), made once.
    """

    prefix: list[int]
    suffixes: list[list[int]]
    images: list[str]
    mm_inputs: dict[str, Any] = field(default_factory=dict)


class TemplatePromptEncoder:
    """Encodes samples with a LLaMA-Factory template and multimodal plugin, heads tokenised once.

    Args:
        tokenizer, template, processor: as loaded by LLaMA-Factory.
        placeholder: the image placeholder of LLaMA-Factory messages (``<image>``).
        mm_token_ids: image/video token ids (they must all lie in the shared prefix).
    """

    def __init__(self, tokenizer: Any, template: Any, processor: Any, placeholder: str,
                 mm_token_ids: set[int]) -> None:
        self.tokenizer = tokenizer
        self.template = template
        self.processor = processor
        self.placeholder = placeholder
        self.mm_token_ids = set(mm_token_ids)
        self._tails: dict[tuple[str, ...], list[list[int]] | None] = {}

    def encode(self, sample: Sample, queries: Sequence[str]) -> EncodedSample:
        """The sample's shared prefix and per-query suffixes, and its processed images."""
        for query in queries:
            if self.placeholder in query:
                raise ValueError(f"a query must not contain {self.placeholder!r}: {query!r}")
        images = list(sample.images)
        head = scorer_user_text(sample.turns, "")  # conversation + "\n"; head + q is the user text
        if images and self.placeholder not in head:
            head = self.placeholder * len(images) + head
        mm_inputs = self._plugin()._get_mm_inputs(images, [], [], self.processor) if images else {}
        head = self._plugin(mm_inputs).process_messages(
            [{"role": "user", "content": head}], images, [], [], self.processor
        )[0]["content"]
        tails = self._query_tails(tuple(queries))
        if tails is not None:
            first = self._whole_prompt(head, queries[0], images)
            if first[len(first) - len(tails[0]):] == tails[0]:
                head_ids = first[: len(first) - len(tails[0])]
                return split_prompts(tails, images, self.mm_token_ids, mm_inputs, head_ids)
        prompts = [self._whole_prompt(head, query, images) for query in queries]
        return split_prompts(prompts, images, self.mm_token_ids, mm_inputs)

    def collate(self, items: Sequence[EncodedSample]) -> dict[str, Any]:
        """Model inputs of a batch's images, from each sample's processed images."""
        images = [image for item in items for image in item.images]
        merged = merge_mm_inputs([item.mm_inputs for item in items])
        return self._plugin(merged).get_mm_inputs(
            images, [], [], [len(item.images) for item in items], [0] * len(items),
            [0] * len(items), [item.prefix for item in items], self.processor,
        )

    def _plugin(self, processed: dict[str, Any] | None = None) -> Any:
        """The template's plugin; given ``processed``, a copy whose image processing returns it."""
        plugin = self.template.mm_plugin
        if processed is None:
            return plugin
        view = copy.copy(plugin)
        view._get_mm_inputs = lambda *args, **kwargs: dict(processed)
        return view

    def _whole_prompt(self, head: str, query: str, images: list[str]) -> list[int]:
        messages = [{"role": "user", "content": head + query}, {"role": "assistant", "content": ""}]
        ids, _ = self.template.encode_oneturn(self.tokenizer, messages, SYSTEM_MESSAGE)
        ids, _ = self.template.mm_plugin.process_token_ids(ids, None, images, [], [],
                                                           self.tokenizer, self.processor)
        return list(ids)

    def _query_tails(self, queries: tuple[str, ...]) -> list[list[int]] | None:
        """Each query's own ids (query + template close), or None where splitting is unsafe."""
        if queries not in self._tails:
            self._tails[queries] = self._probe_tails(queries)
        return self._tails[queries]

    def _probe_tails(self, queries: tuple[str, ...]) -> list[list[int]] | None:
        from llamafactory.data.mm_plugin import BasePlugin

        if type(self.template.mm_plugin).process_token_ids is not BasePlugin.process_token_ids:
            return None  # the plugin rewrites the ids of whole prompts
        tails = None
        for probe in _PROBE_HEADS:
            probe = probe.replace("<image>", "")
            wholes = [self._whole_prompt(probe, query, []) for query in queries]
            heads = [self._whole_prompt(probe, "", [])]
            # The head's ids are those the probe alone starts with, up to its last newline token.
            common = common_prefix_length(wholes + heads, keep_one=False)
            found = [w[common:] for w in wholes]
            if tails is None:
                tails = found
            if found != tails:
                return None
        return tails


def split_prompts(prompts: Sequence[Sequence[int]], images: list[str], mm_token_ids: set[int],
                  mm_inputs: dict[str, Any] | None = None,
                  head: Sequence[int] = ()) -> EncodedSample:
    """One sample's prompts (each ``head + prompts[i]``) as their longest common prefix and one
    suffix each; image tokens must all lie in the prefix."""
    cut = common_prefix_length(prompts)
    if any(token in mm_token_ids for p in prompts for token in p[cut:]):
        raise ValueError("image tokens after the shared prefix: the query must follow them")
    return EncodedSample(prefix=list(head) + list(prompts[0][:cut]),
                         suffixes=[list(p[cut:]) for p in prompts], images=images,
                         mm_inputs=dict(mm_inputs or {}))


def merge_mm_inputs(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per-sample processed inputs joined along the first dimension (tensors) or extended (lists)."""
    import torch

    merged: dict[str, Any] = {}
    for key in dict.fromkeys(k for part in parts for k in part):
        values = [part[key] for part in parts if key in part]
        if all(isinstance(v, torch.Tensor) for v in values):
            merged[key] = torch.cat(values) if values[0].dim() else values[0]
        elif all(isinstance(v, list) for v in values):
            merged[key] = [item for v in values for item in v]
        else:
            merged[key] = values[0]
    return merged


def common_prefix_length(prompts: Sequence[Sequence[int]], keep_one: bool = True) -> int:
    """Longest common token prefix; by default leaving at least one token of every prompt."""
    shortest = min(len(p) for p in prompts)
    cut = 0
    while cut < shortest and all(p[cut] == prompts[0][cut] for p in prompts):
        cut += 1
    return min(cut, shortest - 1) if keep_one else cut
