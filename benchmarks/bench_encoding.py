"""CPU time per sample the hf engine spends encoding prompts: tokenisation, image decoding and
preprocessing, and building the batch's model inputs (no model forward).

Measured on the ``medium`` benchmark model's tokenizer and processor (Qwen2-VL's real pixel
limits) over demo-pool samples with images upscaled to ``--image-size``, for all 14 capability
queries + the style query, in batches of ``--batch-size``: per batch, every sample's
``encoder.encode`` and the batch's ``encoder.collate``. One thread; the best of ``--repeats``.

    .venv/bin/python benchmarks/bench_encoding.py --image-size 224
    .venv/bin/python benchmarks/bench_encoding.py --image-size 672
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LLAMAFACTORY_VERBOSITY", "WARNING")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

import torch
from bench_scoring import DEFAULT_MEDIA, DEFAULT_POOL, build_medium_qwen2vl, load_samples

from mmssr_plugin.core.prompts import all_queries
from mmssr_plugin.core.taxonomy import resolve_capabilities
from mmssr_plugin.engines.hf.engine import HfEngine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--samples", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    print("command:", shlex.join([Path(sys.executable).name, *sys.argv]))
    engine = HfEngine(str(build_medium_qwen2vl()), infer_dtype="float32",
                      batch_size=args.batch_size)
    encoder = engine.scorer.encoder
    queries = all_queries(resolve_capabilities())
    with tempfile.TemporaryDirectory() as tmp:
        samples = load_samples(DEFAULT_POOL, DEFAULT_MEDIA, args.samples, args.image_size,
                               Path(tmp))

        def encode_all() -> None:
            for start in range(0, len(samples), args.batch_size):
                batch = [encoder.encode(s, queries) for s in samples[start : start + args.batch_size]]
                encoder.collate(batch)

        encode_all()  # warm-up (and the per-engine query tails)
        best = None
        for _ in range(args.repeats):
            cpu, wall = time.process_time(), time.perf_counter()
            encode_all()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            best = (cpu, wall) if best is None or cpu < best[0] else best
    result = {"image_size": args.image_size, "samples": len(samples),
              "cpu_ms_per_sample": 1000 * best[0] / len(samples),
              "wall_ms_per_sample": 1000 * best[1] / len(samples)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
