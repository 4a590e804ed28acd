"""How many samples run together: an order that keeps similar lengths together, a limit from the
free accelerator memory, and out-of-memory errors answered by halving the batch.

Imports no torch at module level; the out-of-memory test is ``torch.OutOfMemoryError``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mmssr_plugin.core.prompts import format_convs
from mmssr_plugin.data.sample import Sample

logger = logging.getLogger(__name__)

# Share of the free accelerator memory a batch may plan to use (the rest absorbs estimate error).
MEMORY_SHARE = 0.7
_CHARS_PER_TOKEN = 4
_PIXELS_PER_IMAGE_TOKEN = 28 * 28


def length_estimate(sample: Sample) -> int:
    """Rough prompt length of a sample, read cheaply (image headers only, nothing decoded)."""
    tokens = len(format_convs(sample.turns)) // _CHARS_PER_TOKEN
    for image in sample.images:
        try:
            from PIL import Image

            with Image.open(image) as handle:
                width, height = handle.size
            tokens += width * height // _PIXELS_PER_IMAGE_TOKEN
        except Exception:  # noqa: BLE001 - unreadable images fail later, with their reason
            pass
    return tokens


def length_order(samples: Sequence[Sample]) -> list[int]:
    """Sample indices by estimated prompt length, so a batch pads little."""
    estimates = [length_estimate(sample) for sample in samples]
    return sorted(range(len(samples)), key=lambda i: (estimates[i], i))


@dataclass(frozen=True)
class ModelShape:
    """What the memory of one token costs in a model (bytes)."""

    kv_bytes_per_token: int
    activation_bytes_per_token: int

    @classmethod
    def of(cls, config: Any, element_bytes: int) -> ModelShape:
        """From a transformers config (its ``text_config`` for VLMs)."""
        text = getattr(config, "text_config", None) or config
        heads = text.num_attention_heads
        head_dim = getattr(text, "head_dim", None) or text.hidden_size // heads
        kv_heads = getattr(text, "num_key_value_heads", None) or heads
        kv = 2 * text.num_hidden_layers * kv_heads * head_dim * element_bytes
        activation = (6 * text.hidden_size + 3 * text.intermediate_size) * element_bytes
        return cls(kv_bytes_per_token=kv, activation_bytes_per_token=activation)

    def sample_bytes(self, prompt_tokens: int) -> int:
        """Planned peak bytes of one sample: its cache twice (prefix and decoding copy) and the
        transient activations of one layer over its prompt, doubled for safety."""
        return 2 * prompt_tokens * (2 * self.kv_bytes_per_token + self.activation_bytes_per_token)


def memory_batch_limit(requested: int, free_bytes: int | None, bytes_per_sample: int) -> int:
    """At most ``requested`` samples, fewer where they would not fit in the free memory."""
    if free_bytes is None or bytes_per_sample <= 0:
        return max(1, requested)
    fits = int(free_bytes * MEMORY_SHARE) // bytes_per_sample
    return max(1, min(requested, fits))


def is_out_of_memory(error: BaseException) -> bool:
    """Whether an error is an accelerator out-of-memory error."""
    import torch

    return isinstance(error, torch.OutOfMemoryError)


class HalvingRunner:
    """Runs parts of a batch; an out-of-memory error halves the part (and later parts) and retries.

    Attributes:
        cap: most samples per part from now on (lowered by each out-of-memory error).
        on_out_of_memory: called after each out-of-memory error (frees cached memory).
    """

    def __init__(self, cap: int, on_out_of_memory: Callable[[], None] | None = None) -> None:
        self.cap = max(1, cap)
        self.on_out_of_memory = on_out_of_memory

    def run(self, items: list, run_part: Callable[[list], None], limit: int | None = None) -> None:
        """``run_part`` on consecutive parts of ``items`` of at most ``cap`` (and ``limit``)
        samples each."""
        size = max(1, min(self.cap, limit or self.cap))
        pending = [items[i : i + size] for i in range(0, len(items), size)]
        while pending:
            part = pending.pop(0)
            try:
                run_part(part)
            except Exception as error:
                if not is_out_of_memory(error) or len(part) == 1:
                    raise
                self.cap = max(1, len(part) // 2)
                logger.warning("out of memory with %d samples in a batch; retrying with %d",
                               len(part), self.cap)
                if self.on_out_of_memory:
                    self.on_out_of_memory()
                pending[:0] = [part[i : i + self.cap] for i in range(0, len(part), self.cap)]
