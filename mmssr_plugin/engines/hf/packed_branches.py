"""All query branches of a sample in one row: a tree attention mask over the shared prefix cache.

Row ``b`` holds the sample's query tails one after another, ``[prefix cache | tail 1 | tail 2 |
...]``; a 4-D mask lets every tail token see its sample's prefix and the earlier tokens of its own
tail only, and explicit positions continue the prefix in every tail, so each tail's last logits are
those of the whole prompt ``prefix + tail``. The prefix cache is read in place by every tail: no
copy per query, and grouped key/value heads are expanded once per sample instead of once per
query. Tail ``j`` of every row ends at the same column (tails are left-padded to the longest tail
``j`` of the batch), so one ``logits_to_keep`` index list picks every branch's last logits.
Imports torch: only the hf engine loads this module.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from transformers import DynamicCache

# Attention implementations that take a ready 4-D mask (boolean for SDPA, additive for eager).
PACKABLE_ATTENTION = ("sdpa", "eager")


def packed_layout(tails: Sequence[Sequence[Sequence[int]]], pad_token_id: int):
    """Token ids ``[B, T]``, real-token flags, block of each column and each block's end column."""
    n_tails = len(tails[0])
    if any(len(row) != n_tails for row in tails):
        raise ValueError("every sample needs the same number of query tails")
    widths = [max(1, max(len(row[j]) for row in tails)) for j in range(n_tails)]
    ends = torch.tensor(widths).cumsum(0)
    total = int(ends[-1])
    ids = torch.full((len(tails), total), pad_token_id, dtype=torch.long)
    real = torch.zeros((len(tails), total), dtype=torch.bool)
    for b, row in enumerate(tails):
        for j, tail in enumerate(row):
            if tail:
                end = int(ends[j])
                ids[b, end - len(tail) : end] = torch.tensor(list(tail), dtype=torch.long)
                real[b, end - len(tail) : end] = True
    block = torch.repeat_interleave(torch.arange(n_tails), torch.tensor(widths))
    return ids, real, block, ends - 1


def packed_mask(prefix_mask: torch.Tensor, real: torch.Tensor, block: torch.Tensor,
                attention: str, dtype: torch.dtype) -> torch.Tensor:
    """The ``[B, 1, T, P + T]`` tree mask (True / 0.0 where a query token may attend)."""
    total = real.shape[1]
    same_block = block[:, None] == block[None, :]
    causal = torch.ones((total, total), dtype=torch.bool, device=real.device).tril()
    tails = (same_block & causal)[None] & real[:, None, :]
    prefix = prefix_mask.bool()[:, None, :].expand(-1, total, -1)
    allowed = torch.cat([prefix, tails], dim=-1)[:, None]
    if attention == "sdpa":
        return allowed
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(
        ~allowed, torch.finfo(dtype).min)


def tail_offsets(real: torch.Tensor, block: torch.Tensor, ends: torch.Tensor) -> torch.Tensor:
    """Offset of each real token within its own tail (0 for the tail's first token)."""
    counts = real.long().cumsum(-1)
    starts = torch.cat([torch.zeros(1, dtype=torch.long, device=ends.device), ends[:-1] + 1])
    before = torch.where(starts > 0, counts[:, (starts - 1).clamp(min=0)], 0)  # [B, n_tails]
    return (counts - before[:, block] - 1).clamp(min=0)


@torch.inference_mode()
def packed_branch_probs(brancher: Any, state: Any, tails: Sequence[Sequence[Sequence[int]]],
                        token_ids: Sequence[int]) -> torch.Tensor:
    """Next-token probabilities of ``token_ids`` after every ``prefix[b] + tails[b][j]``.

    Args:
        brancher: the :class:`~mmssr_plugin.engines.hf.kv_branching.PrefixBrancher`.
        state: its :class:`PrefixState` for ``len(tails)`` samples (read, never modified).
        tails: per sample, its query tails (the same number for every sample).

    Returns:
        float32 ``[B, n_tails, len(token_ids)]`` on the model's device.
    """
    device = brancher.device
    ids, real, block, ends = packed_layout(tails, brancher.pad_token_id)
    ids, real, block, ends = ids.to(device), real.to(device), block.to(device), ends.to(device)
    mask = packed_mask(state.mask, real, block, brancher.attention, brancher.dtype)
    positions = state.next_pos[:, None] + tail_offsets(real, block, ends)
    cache = _ReadOnlyCache(ddp_cache_data=[(k, v) for k, v, *_ in state.cache],
                           config=brancher.config)
    out = brancher.model(
        input_ids=ids, attention_mask=mask, position_ids=brancher.expand_positions(positions),
        past_key_values=cache, use_cache=False, logits_to_keep=ends,
    )
    picked = torch.tensor(list(token_ids), device=device)
    return out.logits.float().softmax(-1)[..., picked]


class _ReadOnlyCache(DynamicCache):
    """The prefix cache as attention reads it: each layer gets ``prefix + new`` keys and values,
    and nothing is stored, so a branch pass keeps no second copy of the prefix cache."""

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int,
               *args: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        layer = self.layers[layer_idx]
        return (torch.cat([layer.keys, key_states], dim=-2),
                torch.cat([layer.values, value_states], dim=-2))
