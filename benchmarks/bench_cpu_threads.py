"""Tiny-scorer throughput of a CPU scoring worker next to busy processes: the old worker settings
(``OMP_NUM_THREADS = cpu_count // workers``, OpenMP's default spin-waiting) against the new ones
(threads from the idle usable cores, ``OMP_WAIT_POLICY=PASSIVE``), and the old thread count with
passive waits alone.

Each setting runs in a fresh child process (OpenMP reads its settings at start-up), scoring the
40 demo samples with all 14 capabilities + style, ``--busy`` spinning processes running alongside.

    .venv/bin/python benchmarks/bench_cpu_threads.py --busy 1
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mmssr_plugin.scoring.devices import CPU_WORKER_ENV, usable_cores, worker_threads  # noqa: E402

CHILD = """
import json, sys, time
from mmssr_plugin.data.load import load_pool_file
from mmssr_plugin.engines import get_engine
from mmssr_plugin.core.taxonomy import resolve_capabilities
from mmssr_plugin.testing import build_tiny_qwen2vl
samples = [s for s in load_pool_file(sys.argv[1], sys.argv[2], None) if s.ok]
engine = get_engine("hf", model_name_or_path=str(build_tiny_qwen2vl()), infer_dtype="float32")
caps = resolve_capabilities()
engine.score_and_style(samples[:2], caps)
best = None
for _ in range(int(sys.argv[3])):
    start = time.perf_counter()
    engine.score_and_style(samples, caps)
    took = time.perf_counter() - start
    best = took if best is None else min(best, took)
print(json.dumps({"samples_per_s": len(samples) / best}))
"""


def run(env_changes: dict[str, str], repeats: int) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO), **env_changes}
    pool = REPO / "data_info" / "mmssr_demo" / "pool.json"
    out = subprocess.run([sys.executable, "-c", CHILD, str(pool), str(REPO / "data_info"),
                          str(repeats)], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["samples_per_s"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--busy", type=int, default=1, help="spinning processes alongside")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    print("command:", shlex.join([Path(sys.executable).name, *sys.argv]))
    print(f"cores: {os.cpu_count()} logical, {len(os.sched_getaffinity(0))} usable; "
          f"load average before: {os.getloadavg()}")
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])
                for _ in range(args.busy)]
    try:
        time.sleep(2)
        old = {"OMP_NUM_THREADS": str(os.cpu_count() or 1)}
        passive = {**old, "OMP_WAIT_POLICY": "PASSIVE"}
        new = {"OMP_NUM_THREADS": str(worker_threads(1, cores=usable_cores())), **CPU_WORKER_ENV}
        results = {name: (env, run(env, args.repeats))
                   for name, env in (("old", old), ("old threads, passive waits", passive),
                                     ("new", new))}
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    for name, (env, rate) in results.items():
        print(f"{name}: {json.dumps(env)} -> {rate:.2f} samples/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
