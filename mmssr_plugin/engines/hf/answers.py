"""Greedy answers to every query of every sample, branching from each sample's shared prefix.

Used where scores are read from generated text (the authors' ``int()`` parse) rather than from
the digit probabilities of the first answer token.
"""

from __future__ import annotations

from typing import Any, Sequence

from mmssr_plugin.data.samples import Sample

# An int() answer in 0..5 ends long before this; a longer one cannot parse into 0..5 anyway
# unless it is padded with whitespace or leading zeros past this many tokens.
MAX_SCORE_ANSWER_TOKENS = 16


def generate_answers(
    vlm: Any, samples: Sequence[Sample], queries: Sequence[str], batch_size: int,
    max_new_tokens: int = MAX_SCORE_ANSWER_TOKENS,
) -> list[list[str]]:
    """``[N][Q]`` decoded greedy answers of a loaded model (``engine._LoadedVLM`` or subclass)."""
    encoded = [vlm.encode(sample, queries) for sample in samples]
    texts: list[list[str]] = [[] for _ in samples]
    for start in range(0, len(samples), max(1, batch_size)):
        batch = encoded[start : start + batch_size]
        state = vlm._encode_prefixes(batch)
        rows = [b for b, item in enumerate(batch) for _ in item.suffixes]
        suffixes = [suffix for item in batch for suffix in item.suffixes]
        vlm.computed_tokens += sum(map(len, suffixes))
        generated = vlm.brancher.branch_generate(state, rows, suffixes, max_new_tokens,
                                                 vlm.stop_ids)
        for row, ids in zip(rows, generated):
            texts[start + row].append(vlm.tokenizer.decode(ids, skip_special_tokens=True))
    return texts
