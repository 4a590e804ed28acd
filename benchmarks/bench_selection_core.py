"""Time the sampler alone on a synthetic pool the size of LLaVA-OneVision single-image.

2.6M samples x 14 capabilities, integer scores 0..5 with ~1% NaN, 1-3 of the 9 styles per sample,
~20 image sources; 30% budget. Prints wall time of ``select``, peak RSS and the machine.

    .venv/bin/python benchmarks/bench_selection_core.py [--samples N] [--budget R]
        [--threshold T] [--tiebreak] [--sources S] [--seed S]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mmssr_plugin.selection.bins import StyleBins
from mmssr_plugin.selection.sampler import select
from mmssr_plugin.core.taxonomy import DEFAULT_CAPABILITIES, STYLES


def synthetic_pool(n: int, n_sources: int, seed: int) -> tuple[np.ndarray, StyleBins]:
    """Scores ``[n, 14]`` and style x source bins, built column by column to keep memory low."""
    rng = np.random.default_rng(seed)
    scores = np.empty((n, len(DEFAULT_CAPABILITIES)), dtype=np.float64)
    for cap in range(scores.shape[1]):
        column = rng.integers(0, 6, size=n, dtype=np.int8).astype(np.float64)
        column[rng.random(n, dtype=np.float32) < 0.01] = np.nan
        scores[:, cap] = column
    source = rng.integers(0, n_sources, size=n, dtype=np.int32)
    n_styles = rng.integers(1, 4, size=n, dtype=np.int8)
    # three distinct styles per sample (first, then two distinct offsets from it); keep n_styles
    n_all = len(STYLES)
    first = rng.integers(0, n_all, size=n, dtype=np.int8)
    step1 = rng.integers(1, n_all, size=n, dtype=np.int8)
    step2 = rng.integers(1, n_all - 1, size=n, dtype=np.int8)
    step2 += step2 >= step1
    style = np.stack([first, (first + step1) % n_all, (first + step2) % n_all], axis=1)
    style[np.arange(3)[None, :] >= n_styles[:, None]] = n_all  # drop unused slots
    style.sort(axis=1)
    owner = np.repeat(np.arange(n), n_styles)
    style = style[style < n_all]  # row-major: samples in order, styles ascending
    labels = [f"{s}+source{j:02d}" for s in STYLES for j in range(n_sources)]
    order = sorted(range(len(labels)), key=labels.__getitem__)
    rank = np.empty(len(labels), dtype=np.int32)
    rank[order] = np.arange(len(labels), dtype=np.int32)
    ids = rank[style.astype(np.int32) * n_sources + source[owner]]
    # ascending bin ids within a sample (sort by sample, then id)
    ids = ids[np.lexsort((ids, owner))]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(n_styles, out=offsets[1:])
    return scores, StyleBins(tuple(labels[i] for i in order), offsets, ids)


def _cpu_name() -> str:
    """The CPU model from ``/proc/cpuinfo`` (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _status_kib(field: str) -> int | None:
    """A ``/proc/self/status`` memory field in KiB (Linux), else None."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> int | None:
    """Reset the kernel's peak-RSS mark (Linux) and return the current RSS in KiB, else None."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return None
    return _status_kib("VmRSS")


def main() -> None:
    """Run the benchmark and print its numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2_600_000)
    parser.add_argument("--sources", type=int, default=20)
    parser.add_argument("--budget", type=float, default=0.3)
    parser.add_argument("--threshold", type=float, default=0.0)
    parser.add_argument("--tiebreak", action="store_true", help="add a float tiebreak matrix")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    scores, bins = synthetic_pool(args.samples, args.sources, args.seed)
    tiebreak = None
    if args.tiebreak:  # e.g. the expected score next to the argmax score
        tiebreak = np.random.default_rng(args.seed + 1).random(scores.shape, dtype=np.float32)
    budget = int(args.budget) if args.budget > 1 else args.budget
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    resident_before = _reset_peak_rss()
    start, cpu_start = time.perf_counter(), time.process_time()
    result = select(
        scores, list(DEFAULT_CAPABILITIES), bins, budget, args.threshold, tiebreak=tiebreak
    )
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    select_peak = _status_kib("VmHWM")

    print(f"command: {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    print(
        f"machine: {platform.platform()}, {_cpu_name()}, "
        f"{os.cpu_count()} CPUs, python {platform.python_version()}, numpy {np.__version__}"
    )
    print(
        f"pool: {len(bins)} samples x {scores.shape[1]} capabilities, {len(bins.labels)} bins, "
        f"{len(bins.ids)} memberships; budget {budget}, threshold {args.threshold:g}, "
        f"tiebreak {args.tiebreak} -> K = {result.budget}"
    )
    print(
        f"selected {len(result.indices)} (shortfall {result.shortfall}) in {result.rounds} "
        f"rounds; exhausted: {len(result.exhausted)} capabilities"
    )
    print(f"select wall time: {wall:.2f} s (CPU time {cpu:.2f} s)")
    print(f"peak RSS (getrusage, whole process): {rss_peak / 1024:.0f} MiB")
    if resident_before is not None and select_peak is not None:
        print(
            f"select's extra memory: peak RSS during select {select_peak / 1024:.0f} MiB minus "
            f"{resident_before / 1024:.0f} MiB resident before = "
            f"{(select_peak - resident_before) / 1024:.0f} MiB"
        )
    else:
        print(f"peak growth during select: {(rss_peak - rss_before) / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
