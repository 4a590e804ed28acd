"""Running an engine call batch by batch: prompts prepared ahead, sizes fitted to the memory.

Samples are ordered by estimated length and cut into batches; each batch's prompts and images are
encoded in background threads (:mod:`.prefetch`) while the model runs the batch before it. On
CUDA a batch is cut further where the free memory asks for it, and an out-of-memory error halves
it and retries (:mod:`.batching`). Imports torch: only the hf engine loads this module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from mmssr_plugin.data.sample import Sample
from mmssr_plugin.engines.hf.batching import (
    HalvingRunner,
    ModelShape,
    length_order,
    memory_batch_limit,
)
from mmssr_plugin.engines.hf.prefetch import prefetched
from mmssr_plugin.engines.hf.prompt_encoding import EncodedSample

RunBatch = Callable[[list[int], list[EncodedSample], dict], None]


class BatchRunner:
    """Plans, prepares and runs the batches of one loaded model.

    Attributes:
        encode_workers: background encoding threads (0: encode in the calling thread).
        halving: the out-of-memory guard (its ``cap`` persists across calls).
        fault_hook: called with the size of each part before it runs (tests inject errors).
    """

    def __init__(self, vlm: Any, encode_workers: int | None) -> None:
        self.vlm = vlm
        self.device = vlm.brancher.device
        self.cuda = self.device.type == "cuda"
        self.encode_workers = encode_workers if encode_workers is not None else int(self.cuda)
        self.halving = HalvingRunner(cap=2**31, on_out_of_memory=self._free_cached_memory)
        element = torch.finfo(vlm.brancher.dtype).bits // 8
        self.shape = ModelShape.of(vlm.brancher.config, element)
        self.fault_hook: Callable[[int], None] | None = None

    def run(self, samples: Sequence[Sample], queries: Sequence[str], batch_size: int,
            run_batch: RunBatch) -> None:
        """``run_batch(indices, encoded, mm_inputs)`` over all samples, in batches."""
        order = length_order(samples)
        plans = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]

        def prepare(indices: list[int]) -> tuple[list[int], list[EncodedSample], dict]:
            items = [self.vlm.encoder.encode(samples[i], queries) for i in indices]
            return indices, items, self._collate(items)

        for indices, items, mm_inputs in prefetched(prepare, plans, self.encode_workers):
            whole = len(indices)

            def run_part(part: list[tuple[int, EncodedSample]]) -> None:
                if self.fault_hook:
                    self.fault_hook(len(part))
                encoded = [item for _, item in part]
                inputs = mm_inputs if len(part) == whole else self._collate(encoded)
                run_batch([i for i, _ in part], encoded, inputs)

            self.halving.run(list(zip(indices, items)), run_part, self._memory_limit(items))

    def _collate(self, items: list[EncodedSample]) -> dict:
        mm_inputs = dict(self.vlm.encoder.collate(items))
        if self.cuda:  # page-locked: the copy to the device overlaps the model's work
            for key, value in mm_inputs.items():
                if isinstance(value, torch.Tensor):
                    mm_inputs[key] = value.pin_memory()
        return mm_inputs

    def _memory_limit(self, items: list[EncodedSample]) -> int:
        """Samples of this batch that fit in the free device memory (all of them on CPU)."""
        if not self.cuda:
            return len(items)
        free, _ = torch.cuda.mem_get_info(self.device)
        free += torch.cuda.memory_reserved(self.device) - torch.cuda.memory_allocated(self.device)
        tokens = max(len(item.prefix) + sum(map(len, item.suffixes)) for item in items)
        return memory_batch_limit(len(items), free, self.shape.sample_bytes(tokens))

    def _free_cached_memory(self) -> None:
        if self.cuda:
            torch.cuda.empty_cache()
