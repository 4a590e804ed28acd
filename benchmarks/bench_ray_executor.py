"""Benchmark the ray executor against the local one: the fake engine on CPU, the same pool, the same
number of workers; samples/s and the driver's peak memory.

Each run is a fresh Python process (its peak RSS is the driver's alone): it builds the synthetic
pool (``--samples`` text samples, uids only matter to the fake engine), then calls
``run_scoring`` with all 14 capabilities into a fresh store. For ``ray`` the private local Ray
instance is started first and timed apart (``ray_start_s``): on a cluster it is up before a job;
``seconds`` is the scoring call itself for both executors (samples file, workers or actors, all
shards, reading the table back).

Memory: ``index_mb`` is the driver's RSS once the pool is built (the sample index the caller
holds), ``peak_mb`` its peak during the run; ``peak - index`` must not grow with the pool beyond
the score table read back at the end (N x 14 x 6 float32).

    .venv/bin/python benchmarks/bench_ray_executor.py --samples 20000 --workers 2
    .venv/bin/python benchmarks/bench_ray_executor.py --samples 100000 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _rss_mb() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def run_one(executor: str, samples: int, workers: int, shard_size: int, cache: str) -> dict:
    """One scoring run in this process; returns its figures."""
    import logging

    from mmssr_plugin.core.taxonomy import resolve_capabilities
    from mmssr_plugin.data.sample import Sample
    from mmssr_plugin.scoring.config import JobConfig, ScorerConfig
    from mmssr_plugin.scoring.job import run_scoring

    pool = [Sample(uid=f"pool:{i}:{i:012x}", dataset="pool", row=i, turns=("q", "a"))
            for i in range(samples)]
    index_mb = _rss_mb()
    ray_start = 0.0
    if executor == "ray":
        import ray

        started = time.monotonic()
        ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False,
                 logging_level=logging.WARNING)
        ray_start = time.monotonic() - started
    job = JobConfig(workers=workers, shard_size=shard_size, executor=executor)
    started = time.monotonic()
    table, summary = run_scoring(pool, ScorerConfig(backend="fake"), resolve_capabilities(None),
                                 cache, progress=False, job=job)
    seconds = time.monotonic() - started
    assert summary.scored == samples and summary.computed == samples
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "executor": executor, "samples": samples, "workers": summary.workers,
        "seconds": round(seconds, 2), "samples_per_s": round(samples / seconds, 1),
        "ray_start_s": round(ray_start, 2), "index_mb": round(index_mb, 1),
        "peak_mb": round(peak_mb, 1), "peak_minus_index_mb": round(peak_mb - index_mb, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shard-size", type=int, default=64)
    parser.add_argument("--executors", default="local,ray")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        figures = run_one(args.child, args.samples, args.workers, args.shard_size,
                          tempfile.mkdtemp(prefix="mmssr-bench-"))
        print(json.dumps(figures))
        return 0

    print("command:", shlex.join([Path(sys.executable).name, *sys.argv]))
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f}")
    rows = []
    for executor in args.executors.split(","):
        child = [sys.executable, __file__, "--child", executor, "--samples", str(args.samples),
                 "--workers", str(args.workers), "--shard-size", str(args.shard_size)]
        env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        out = subprocess.run(child, capture_output=True, text=True, env=env, check=False)
        if out.returncode != 0:
            print(out.stdout[-3000:], out.stderr[-3000:], sep="\n")
            return 1
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(json.dumps(rows[-1]))
    by = {row["executor"]: row for row in rows}
    if "local" in by and "ray" in by:
        overhead = 1 - by["ray"]["samples_per_s"] / by["local"]["samples_per_s"]
        print(f"ray overhead at {args.workers} worker(s): {100 * overhead:.1f}% of local samples/s "
              f"({'within' if overhead < 0.15 else 'OVER'} the 15% limit); cluster start "
              f"{by['ray']['ray_start_s']} s not counted")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
