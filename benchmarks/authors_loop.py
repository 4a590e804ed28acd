"""A faithful re-implementation of the authors' scoring loop, as a speed and parity baseline.

The authors' inference script runs, batch size 1, for every sample and every capability, one
``model.generate(do_sample=False, max_new_tokens=1024)`` from scratch over the whole prompt
(system message, image, conversation, capability query), parses ``int()`` of the decoded answer,
and then does the same once more with the style query. Nothing is shared between the 15 calls of
a sample: the image is preprocessed, the vision tower runs and the whole prompt is prefilled 15
times.

This module repeats exactly that loop on a model loaded by our :class:`HfEngine`, with the
engine's own prompt encoding (``_LoadedVLM.encode`` with a single query returns the whole prompt
as prefix + suffix), so both sides see identical tokens. Only ``max_new_tokens`` differs from the
authors: see ``bench_scoring.py`` for why 2 is used for the capability queries.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from mmssr_plugin.data.sample import Sample
from mmssr_plugin.core.taxonomy import STYLE_QUERY, Capability


@dataclass
class AuthorsResult:
    """What the authors' loop produced.

    Attributes:
        first_tokens: ``[N][C]`` first generated token id per capability query.
        cap_texts: ``[N][C]`` decoded capability answers.
        scores: ``[N][C]`` ``int()`` of the answer, NaN where it does not parse.
        style_texts: ``[N]`` decoded style answers.
        generate_calls: number of ``generate`` calls made.
        prompt_tokens: prompt tokens prefilled in total (every call prefills its whole prompt).
    """

    first_tokens: list[list[int]] = field(default_factory=list)
    cap_texts: list[list[str]] = field(default_factory=list)
    scores: list[list[float]] = field(default_factory=list)
    style_texts: list[str] = field(default_factory=list)
    generate_calls: int = 0
    prompt_tokens: int = 0


def full_prompt_inputs(vlm: Any, sample: Sample, query: str) -> dict[str, torch.Tensor]:
    """The whole prompt of one (sample, query) as model inputs, encoded by the engine's helper.

    ``vlm.encode`` (LLaMA-Factory template + multimodal plugin, as the engine uses it) with one
    query splits the prompt into ``prefix`` and a one-token ``suffix``; joined, they are the full
    prompt. The image is preprocessed again for every call, as the authors' loop does.
    """
    encoded = vlm.encode(sample, [query])
    ids = list(encoded.prefix) + list(encoded.suffixes[0])
    images = list(encoded.images)
    inputs = dict(vlm.template.mm_plugin.get_mm_inputs(
        images, [], [], [len(images)], [0], [0], [ids], vlm.processor))
    input_ids = torch.tensor([ids])
    inputs.update(input_ids=input_ids, attention_mask=torch.ones_like(input_ids))
    image_token = getattr(vlm.model.config, "image_token_id", None)
    if image_token is not None:
        inputs["mm_token_type_ids"] = (input_ids == image_token).long()
    device = vlm.model.device
    return {key: value.to(device) if isinstance(value, torch.Tensor) else value
            for key, value in inputs.items()}


@torch.inference_mode()
def _generate(vlm: Any, inputs: dict, max_new_tokens: int) -> list[int]:
    out = vlm.model.generate(
        **inputs, do_sample=False, max_new_tokens=max_new_tokens,
        eos_token_id=list(vlm.stop_ids), pad_token_id=vlm.tokenizer.pad_token_id,
    )
    return out[0, inputs["input_ids"].shape[1]:].tolist()


def _parse_int(text: str) -> float:
    try:
        return float(int(text))
    except ValueError:
        return math.nan


def run_authors_loop(
    vlm: Any, samples: Sequence[Sample], capabilities: Sequence[Capability],
    cap_max_new_tokens: int, style_max_new_tokens: int,
) -> AuthorsResult:
    """Batch size 1, one ``generate`` per (sample, capability) and one per sample for style."""
    result = AuthorsResult()
    for sample in samples:
        firsts, texts, scores = [], [], []
        for cap in capabilities:
            inputs = full_prompt_inputs(vlm, sample, cap.query)
            result.prompt_tokens += inputs["input_ids"].shape[1]
            new = _generate(vlm, inputs, cap_max_new_tokens)
            result.generate_calls += 1
            firsts.append(new[0] if new else -1)
            text = vlm.tokenizer.decode(new, skip_special_tokens=True)
            texts.append(text)
            scores.append(_parse_int(text))
        result.first_tokens.append(firsts)
        result.cap_texts.append(texts)
        result.scores.append(scores)
        inputs = full_prompt_inputs(vlm, sample, STYLE_QUERY)
        result.prompt_tokens += inputs["input_ids"].shape[1]
        new = _generate(vlm, inputs, style_max_new_tokens)
        result.generate_calls += 1
        result.style_texts.append(vlm.tokenizer.decode(new, skip_special_tokens=True))
    return result
