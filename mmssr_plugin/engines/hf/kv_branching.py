"""Prefix sharing for Hugging Face VLMs: run each prompt prefix once, branch queries from its cache.

Layout of a batch row: ``[prefix | right pad | left pad | suffix]``. Pads are masked out and every
token gets an explicit position (Qwen-VL M-RoPE positions from the model's ``get_rope_index``,
plain positions otherwise), so a suffix continues its prefix exactly as in one unbroken prompt,
whatever the padding. Suffixes end at the last column, so one logit row per branch is computed.
Imports torch: only the hf engine loads this module.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from transformers import DynamicCache

from mmssr_plugin.engines.hf.packed_branches import PACKABLE_ATTENTION, packed_branch_probs

# Greedy decoding reads the tokens back (to stop finished branches) every this many steps only.
STOP_CHECK_EVERY = 4


@dataclass
class PrefixState:
    """Encoded prefixes of a batch of samples.

    Attributes:
        cache: key/value cache of the padded prefixes ``[B, ..., P, ...]``; never modified.
        mask: ``[B, P]`` attention mask (1 for prefix tokens, 0 for right padding).
        next_pos: ``[B]`` position of the first token after each prefix.
    """

    cache: DynamicCache
    mask: torch.Tensor
    next_pos: torch.Tensor


class PrefixBrancher:
    """Runs prefixes and their branches on one causal VLM.

    Args:
        model: a loaded ``*ForConditionalGeneration`` or ``*ForCausalLM`` (PEFT-wrapped is fine).
        pad_token_id: id used for padding (never attended to).
        max_rows: most branches evaluated in one forward pass (bounds cache copies in memory).
        repetition_penalty: greedy decoding's penalty on the tokens a branch generated so far
            (as ``generate`` from ``inputs_embeds`` applies it: prompt tokens are not penalised).
    """

    def __init__(self, model: Any, pad_token_id: int, max_rows: int = 64,
                 repetition_penalty: float = 1.0) -> None:
        self.model = model
        self.pad_token_id = pad_token_id
        self.max_rows = max(1, max_rows)
        self.repetition_penalty = repetition_penalty
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        self.config = base.config
        self._rope_index: Callable | None = getattr(base, "get_rope_index", None) or getattr(
            getattr(base, "model", None), "get_rope_index", None
        )
        self.device = next(model.parameters()).device
        self.dtype = base.dtype
        text_config = getattr(self.config, "text_config", None) or self.config
        self.attention = getattr(text_config, "_attn_implementation", None) or "sdpa"
        self.stop_check_every = STOP_CHECK_EVERY

    @property
    def mrope(self) -> bool:
        """True when the model uses 3-D multimodal rotary positions (Qwen-VL family)."""
        return self._rope_index is not None

    @torch.inference_mode()
    def encode_prefixes(self, prefixes: Sequence[Sequence[int]], mm_inputs: dict) -> PrefixState:
        """Run the prefixes (with their images) once and keep the cache."""
        width = max(len(p) for p in prefixes)
        ids = torch.full((len(prefixes), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(prefixes), width), dtype=torch.long)
        for row, prefix in enumerate(prefixes):
            ids[row, : len(prefix)] = torch.tensor(prefix, dtype=torch.long)
            mask[row, : len(prefix)] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        mm = self._to_device(mm_inputs)
        positions, next_pos = self._prefix_positions(ids, mask, mm)
        out = self.model(
            input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
            past_key_values=DynamicCache(config=self.config), logits_to_keep=1, **mm,
        )
        return PrefixState(cache=out.past_key_values, mask=mask, next_pos=next_pos)

    @torch.inference_mode()
    def extend(self, state: PrefixState, suffixes: Sequence[Sequence[int]]) -> PrefixState:
        """Longer prefixes: prefix ``b`` followed by ``suffixes[b]`` (which may be empty)."""
        _, cache, mask, next_pos = self._branch(state, range(len(suffixes)), suffixes, True)
        return PrefixState(cache=cache, mask=mask, next_pos=next_pos)

    @torch.inference_mode()
    def branch_probs(
        self, state: PrefixState, rows: Sequence[int], suffixes: Sequence[Sequence[int]],
        token_ids: Sequence[int],
    ) -> torch.Tensor:
        """Next-token probabilities of ``token_ids`` after each ``prefix[rows[i]] + suffixes[i]``.

        Returns:
            float32 ``[len(rows), len(token_ids)]`` on the CPU.
        """
        picked = torch.tensor(list(token_ids), device=self.device)
        out = []
        for start in range(0, len(rows), self.max_rows):
            stop = start + self.max_rows
            logits, *_ = self._branch(state, rows[start:stop], suffixes[start:stop], False)
            out.append(logits.float().softmax(-1)[:, picked].cpu())
        return torch.cat(out)

    @property
    def can_pack(self) -> bool:
        """Whether all branches of a sample can run in one row (a 4-D tree mask is accepted)."""
        return self.attention in PACKABLE_ATTENTION

    @torch.inference_mode()
    def packed_probs(
        self, state: PrefixState, tails: Sequence[Sequence[Sequence[int]]],
        token_ids: Sequence[int],
    ) -> torch.Tensor:
        """Next-token probabilities of ``token_ids`` after every ``prefix[b] + tails[b][j]``,
        all tails of a sample in one row over its shared cache (:mod:`.packed_branches`).

        Returns:
            float32 ``[B, n_tails, len(token_ids)]`` on the CPU.
        """
        per_forward = max(1, self.max_rows // max(1, len(tails[0])))
        out = []
        for start in range(0, len(tails), per_forward):
            stop = min(start + per_forward, len(tails))
            part = self.select(state, slice(start, stop))
            out.append(packed_branch_probs(self, part, tails[start:stop], token_ids))
        return torch.cat(out).cpu()

    def select(self, state: PrefixState, rows: slice) -> PrefixState:
        """The state of a contiguous range of samples (views: nothing is copied)."""
        if rows == slice(0, state.mask.shape[0]):
            return state
        cache = DynamicCache(
            ddp_cache_data=[(keys[rows], values[rows]) for keys, values, *_ in state.cache],
            config=self.config,
        )
        return PrefixState(cache=cache, mask=state.mask[rows], next_pos=state.next_pos[rows])

    @torch.inference_mode()
    def branch_generate(
        self, state: PrefixState, rows: Sequence[int], suffixes: Sequence[Sequence[int]],
        max_new_tokens: int, stop_ids: Sequence[int],
    ) -> list[list[int]]:
        """Greedy continuation of each ``prefix[rows[i]] + suffixes[i]``, up to a stop token.

        Returns:
            The generated ids per branch, without the stop token.
        """
        generated: list[list[int]] = []
        for start in range(0, len(rows), self.max_rows):
            stop = start + self.max_rows
            generated += self._greedy(
                *self._branch(state, rows[start:stop], suffixes[start:stop], True),
                max_new_tokens, set(stop_ids),
            )
        return generated

    def _branch(
        self, state: PrefixState, rows: Sequence[int], suffixes: Sequence[Sequence[int]],
        keep_cache: bool,
    ) -> tuple[torch.Tensor, DynamicCache, torch.Tensor, torch.Tensor]:
        """Run suffixes after copies of their prefixes' caches; last logits and the new state."""
        rows = list(rows)
        contiguous = rows == list(range(rows[0], rows[0] + len(rows))) if rows else False
        index = slice(rows[0], rows[0] + len(rows)) if contiguous else torch.tensor(
            rows, device=self.device)  # a range is read as views; other rows are copied
        width = max(1, max(len(s) for s in suffixes))  # an empty suffix reads one masked pad
        ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        suffix_mask = torch.zeros((len(rows), width), dtype=torch.long)
        for row, suffix in enumerate(suffixes):  # left pad: every suffix ends at the last column
            if suffix:
                ids[row, width - len(suffix):] = torch.tensor(list(suffix), dtype=torch.long)
                suffix_mask[row, width - len(suffix):] = 1
        ids, suffix_mask = ids.to(self.device), suffix_mask.to(self.device)
        offsets = (suffix_mask.cumsum(-1) - 1).clamp(min=0)
        positions = state.next_pos[index, None] + offsets
        cache = DynamicCache(
            ddp_cache_data=[(keys[index], values[index]) for keys, values, *_ in state.cache],
            config=self.config,
        )
        mask = torch.cat([state.mask[index], suffix_mask], dim=1)
        out = self.model(
            input_ids=ids, attention_mask=mask, position_ids=self._expand(positions),
            past_key_values=cache, use_cache=keep_cache, logits_to_keep=1,
        )
        next_pos = state.next_pos[index] + suffix_mask.sum(-1)
        return out.logits[:, -1], cache, mask, next_pos

    def _greedy(
        self, logits: torch.Tensor, cache: DynamicCache, mask: torch.Tensor,
        next_pos: torch.Tensor, max_new_tokens: int, stop_ids: set[int],
    ) -> list[list[int]]:
        """Greedy decoding. Tokens stay on the device; every ``stop_check_every`` steps one read
        finds the branches that stopped, and they leave the batch (with their cache rows)."""
        n_rows = logits.shape[0]
        tokens_out = torch.full((n_rows, max(1, max_new_tokens)), -1, dtype=torch.long,
                                device=self.device)
        stops = torch.tensor(sorted(stop_ids), dtype=torch.long, device=self.device)
        branch = torch.arange(n_rows, device=self.device)  # branch index of each cache row
        alive = torch.ones(n_rows, dtype=torch.bool, device=self.device)
        seen = None  # [rows, vocabulary]: tokens each row generated (for the repetition penalty)
        if self.repetition_penalty != 1.0:
            seen = torch.zeros(logits.shape, dtype=torch.bool, device=self.device)
        for step in range(max_new_tokens):
            tokens = self._penalised(logits, seen).argmax(-1)
            alive = alive & ~torch.isin(tokens, stops)
            tokens_out[branch, step] = torch.where(alive, tokens, -1)
            if seen is not None:  # a stopped row's history no longer matters
                seen[torch.arange(seen.shape[0], device=self.device), tokens] = True
            if step == max_new_tokens - 1:
                break
            if (step + 1) % self.stop_check_every == 0:
                keep = alive.nonzero().squeeze(-1)  # the one host read of these steps
                if keep.numel() == 0:
                    break
                if keep.numel() < alive.numel():
                    cache.batch_select_indices(keep)
                    mask, next_pos, branch = mask[keep], next_pos[keep], branch[keep]
                    tokens, alive = tokens[keep], alive[keep]
                    seen = seen[keep] if seen is not None else None
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            out = self.model(
                input_ids=tokens[:, None], attention_mask=mask,
                position_ids=self._expand(next_pos[:, None]), past_key_values=cache,
                use_cache=True, logits_to_keep=1,
            )
            logits, next_pos = out.logits[:, -1], next_pos + 1
        generated = []
        for row in tokens_out.tolist():
            ended = row.index(-1) if -1 in row else len(row)
            generated.append(row[:ended] if max_new_tokens else [])
        return generated

    def _penalised(self, logits: torch.Tensor, seen: torch.Tensor | None) -> torch.Tensor:
        """Logits after the repetition penalty (transformers' rule) on the tokens each row
        generated so far (``seen``; None without a penalty)."""
        if seen is None:
            return logits
        logits = logits.float()
        penalised = torch.where(logits < 0, logits * self.repetition_penalty,
                                logits / self.repetition_penalty)
        return torch.where(seen, penalised, logits)

    def _prefix_positions(
        self, ids: torch.Tensor, mask: torch.Tensor, mm: dict
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Positions of the padded prefixes and the position following each prefix."""
        if self._rope_index is None:
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            return positions, mask.sum(-1)
        params = inspect.signature(self._rope_index).parameters
        kwargs: dict[str, Any] = {
            "input_ids": ids,
            "image_grid_thw": mm.get("image_grid_thw"),
            "video_grid_thw": mm.get("video_grid_thw"),
            "attention_mask": mask,
        }
        if "mm_token_type_ids" in params:
            types = torch.zeros_like(ids)
            for kind, key in ((1, "image_token_id"), (2, "video_token_id")):
                token = getattr(self.config, key, None)
                if token is not None:
                    types[ids == token] = kind
            kwargs["mm_token_type_ids"] = types
        if "second_per_grid_ts" in params and "second_per_grid_ts" in mm:
            kwargs["second_per_grid_ts"] = torch.tensor(mm["second_per_grid_ts"],
                                                        device=self.device)
        positions, _ = self._rope_index(**kwargs)
        # Text after the last image continues from the highest position used so far.
        last = positions.amax(dim=0).masked_fill(mask == 0, -1).amax(dim=-1)
        return positions, last + 1

    def expand_positions(self, positions: torch.Tensor) -> torch.Tensor:
        """Text positions ``[R, S]`` as the model expects them (``[3, R, S]`` for M-RoPE)."""
        return positions[None].expand(3, -1, -1) if self.mrope else positions

    _expand = expand_positions

    def _to_device(self, mm_inputs: dict) -> dict:
        moved = {}
        for key, value in mm_inputs.items():
            if not isinstance(value, torch.Tensor):
                value = torch.tensor(value)
            if key == "second_per_grid_ts":
                moved[key] = value.tolist()
                continue
            value = value.to(self.device, non_blocking=True)  # then cast, on the device
            moved[key] = value.to(self.dtype) if torch.is_floating_point(value) else value
        return moved
