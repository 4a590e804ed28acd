"""``bench_scoring.py --shape``: the engine on a random scorer of a real shape, on CPU or CUDA.

Prints samples/s, computed tokens/s, effective TFLOP/s (2 x parameters x tokens: the language
model over prompt and decoded tokens, the vision tower over its patches; attention not counted),
the GPU busy share (CUDA events around every model forward, summed, over the wall time), peak
memory, the ratio to the authors' loop on a subset and the digit parity on that subset.
"""

from __future__ import annotations

import json
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from authors_loop import run_authors_loop
from gpu_shapes import SHAPES, models_built_on, shape_folder

from mmssr_plugin.core.taxonomy import resolve_capabilities
from mmssr_plugin.engines.hf.engine import HfEngine

NEAR_TIE = 0.02  # digit probabilities closer than this may swap under bf16 rounding


class ForwardTimer:
    """Summed time of the model's forward passes (CUDA events on GPU, wall clock on CPU)."""

    def __init__(self, model: Any, cuda: bool) -> None:
        self.cuda, self.spans, self._open = cuda, [], []
        model.register_forward_pre_hook(lambda *a: self._start())
        model.register_forward_hook(lambda *a: self._stop())

    def _mark(self):
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def _start(self) -> None:
        self._open.append(self._mark())

    def _stop(self) -> None:
        self.spans.append((self._open.pop(), self._mark()))

    def busy_seconds(self) -> float:
        if self.cuda:
            torch.cuda.synchronize()
            return sum(a.elapsed_time(b) for a, b in self.spans) / 1000
        return sum(b - a for a, b in self.spans)


def _params(module: Any) -> int:
    return sum(p.numel() for p in module.parameters()) if module is not None else 0


def machine(device: str) -> dict[str, str]:
    info = {"torch": torch.__version__, "python": sys.version.split()[0], "device": device}
    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gib=f"{props.total_memory / 2**30:.0f}",
                    cuda=str(torch.version.cuda))
    return info


def run_shape_benchmark(args: Any, load_samples: Any) -> int:
    """The ``--shape`` mode of ``bench_scoring.py``; returns the exit status."""
    cuda = args.device.startswith("cuda")
    dtype = getattr(torch, args.dtype or ("bfloat16" if cuda else "float32"))
    command = shlex.join([Path(sys.executable).name, *sys.argv])
    print("command:", command)
    info = machine(args.device)
    print("machine:", json.dumps(info))
    folder = shape_folder(args.shape)
    started = time.perf_counter()
    with models_built_on(args.device, dtype):
        engine = HfEngine(str(folder), infer_dtype=str(dtype).split(".")[-1],
                          batch_size=args.batch_size, max_style_tokens=args.style_max_new_tokens)
    build_s = time.perf_counter() - started
    vlm = engine.scorer
    lm_params = _params(vlm.model.model.language_model) - vlm.model.get_input_embeddings(
    ).weight.numel()
    vision_params = _params(getattr(vlm.model.model, "visual", None))
    print(f"model: {args.shape} {json.dumps(SHAPES[args.shape])}, {dtype}, built in "
          f"{build_s:.1f} s on {args.device}; language model {lm_params / 1e9:.2f} B + vision "
          f"{vision_params / 1e9:.2f} B parameters")
    caps = resolve_capabilities()
    timer = ForwardTimer(vlm.model, cuda)
    with tempfile.TemporaryDirectory(prefix="mmssr_bench_img_") as tmp:
        samples = load_samples(args.pool, args.media_dir, args.samples + args.warmup,
                               args.image_size, Path(tmp))
        warm, timed = samples[: args.warmup], samples[args.warmup :]
        if warm:
            engine.score_and_style(warm, caps)
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        timer.spans.clear()
        before = vlm.computed_tokens
        started = time.perf_counter()
        probs, answers = engine.score_and_style(timed, caps)
        if cuda:
            torch.cuda.synchronize()
        wall = time.perf_counter() - started
        busy = timer.busy_seconds()
        computed = vlm.computed_tokens - before
        decoded = sum(len(vlm.tokenizer.encode(a.raw)) for a in answers)
        image_tokens = sum(
            int((torch.tensor(vlm.encode(s, [caps[0].query]).prefix) == vlm.brancher.config
                 .image_token_id).sum()) for s in timed)
        patches = 4 * image_tokens  # 2x2 merge: 4 vision patches per image token
        flop = 2 * lm_params * (computed + decoded) + 2 * vision_params * patches
        peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
        subset = timed[: args.baseline_samples]
        started = time.perf_counter()
        authors = run_authors_loop(vlm, subset, caps, args.baseline_max_new_tokens,
                                   args.style_max_new_tokens)
        authors_s = time.perf_counter() - started
    comparisons = matches = ties = 0
    for i in range(len(subset)):
        for c in range(len(caps)):
            first = authors.first_tokens[i][c]
            if first in vlm.digit_ids:
                comparisons += 1
                ranked = np.sort(probs[i, c])[::-1]
                if vlm.digit_ids[int(probs[i, c].argmax())] == first:
                    matches += 1
                elif ranked[0] - ranked[1] < NEAR_TIE:
                    ties += 1
    rate, authors_rate = len(timed) / wall, len(subset) / authors_s
    results = {
        "command": command, "machine": info, "shape": args.shape, "dtype": str(dtype),
        "samples": len(timed), "image_size": args.image_size, "batch_size": args.batch_size,
        "seconds": wall, "samples_per_s": rate, "computed_tokens": computed,
        "decoded_tokens": decoded, "computed_tokens_per_s": (computed + decoded) / wall,
        "effective_tflops": flop / wall / 1e12, "gpu_busy_share": busy / wall if cuda else None,
        "forward_share": busy / wall, "peak_memory_gib": peak,
        "authors_samples": len(subset), "authors_seconds": authors_s,
        "authors_samples_per_s": authors_rate, "speedup": rate / authors_rate,
        "digit_comparisons": comparisons, "digit_matches": matches, "digit_near_ties": ties,
        "mean_digit_mass": float(probs.sum(-1).mean()),
    }
    for key, value in results.items():
        if key not in ("command", "machine"):
            print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    if comparisons == 0 or matches + ties < comparisons:
        print(f"FAIL: digit parity {matches}/{comparisons} ({ties} near ties)", file=sys.stderr)
        return 1
    return 0
