"""Scores read from generated text: greedy answers to every query, then the authors' ``int()``.

Used with ``score_parsing: authors_int`` (the authors' script), instead of the digit probabilities
of the first answer token. Each sample's prefix still runs once; its queries branch from it.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from mmssr_plugin.core.score_parsing import parse_score
from mmssr_plugin.core.taxonomy import DIGITS
from mmssr_plugin.data.sample import Sample

# An int() answer in 0..5 ends long before this; a longer one cannot parse into 0..5 anyway
# unless it is padded with whitespace or leading zeros past this many tokens.
MAX_SCORE_ANSWER_TOKENS = 16


def generate_answers(
    vlm: Any, samples: Sequence[Sample], queries: Sequence[str], batch_size: int,
    max_new_tokens: int = MAX_SCORE_ANSWER_TOKENS,
) -> list[list[str]]:
    """``[N][Q]`` decoded greedy answers of a loaded model (``engine._LoadedVLM`` or subclass),
    batched and prepared ahead by its batch runner."""
    texts: list[list[str]] = [[] for _ in samples]

    def run_batch(indices: list[int], batch: list[Any], mm_inputs: dict) -> None:
        state = vlm._encode_prefixes(batch, mm_inputs)
        rows = [b for b, item in enumerate(batch) for _ in item.suffixes]
        suffixes = [suffix for item in batch for suffix in item.suffixes]
        vlm.computed_tokens += sum(map(len, suffixes))
        generated = vlm.brancher.branch_generate(state, rows, suffixes, max_new_tokens,
                                                 vlm.stop_ids)
        for row, ids in zip(rows, generated):
            texts[indices[row]].append(vlm.tokenizer.decode(ids, skip_special_tokens=True))

    vlm.runner.run(samples, queries, max(1, batch_size), run_batch)
    return texts


def authors_int_probs(answers: Sequence[Sequence[str]]) -> np.ndarray:
    """float32 ``[N, C, 6]``: one-hot on each answer's ``int()`` score, NaN where it is missing
    (:func:`mmssr_plugin.core.score_parsing.parse_score`: no int, or one off 0..5)."""
    probs = np.full((len(answers), len(answers[0]) if answers else 0, len(DIGITS)), np.nan,
                    dtype=np.float32)
    for i, row in enumerate(answers):
        for c, answer in enumerate(row):
            score = parse_score(answer)
            if not math.isnan(score):
                probs[i, c] = 0.0
                probs[i, c, int(score)] = 1.0
    return probs
