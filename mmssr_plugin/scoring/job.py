"""A scoring job: which shards are pending, worker processes, progress, and the summary.

The parent process never imports torch: every model lives in worker processes (one per visible
GPU, or a configurable number on CPU), so a long-lived launcher keeps no accelerator memory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from mmssr_plugin.data.samples import Sample
from mmssr_plugin.scoring.config import ScorerConfig
from mmssr_plugin.scoring.worker import write_samples
from mmssr_plugin.scoring.store import ScoreStore, ScoreTable, score_fingerprint
from mmssr_plugin.utils.hashing import canonical_hash
from mmssr_plugin.core.taxonomy import Capability

DEFAULT_SHARD_SIZE = 64


class ScoringError(RuntimeError):
    """A worker process failed; the message carries the end of its output."""


@dataclass
class ScoringSummary:
    """What a scoring job did, for printing and for reports."""

    store_path: Path
    fingerprint_key: str
    total: int
    computed: int  # samples scored by this run (the rest came from the store)
    scored: int
    failures: dict[str, int]  # reason kind -> count
    non_digit: dict[str, int]  # capability -> scores missing because the answer was no digit
    digit_mass: dict[str, float]  # capability -> mean digit mass over scored samples
    style_unmatched: int
    seconds: float
    workers: int
    devices: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        rate = self.computed / self.seconds if self.seconds > 0 else 0.0
        out = [
            f"scores: {self.store_path}",
            f"samples: {self.total} ({self.computed} computed now, "
            f"{self.total - self.computed} reused), {self.scored} scored, "
            f"{self.total - self.scored} failed",
            f"time: {self.seconds:.1f} s ({rate:.2f} samples/s, {self.workers} worker(s) on "
            f"{', '.join(self.devices) or 'cpu'})",
        ]
        for reason, count in self.failures.items():
            out.append(f"  failed: {count} x {reason}")
        missing = {cap: n for cap, n in self.non_digit.items() if n}
        if missing:
            out.append(f"non-digit answers (score left missing): {missing}")
        if self.digit_mass:
            masses = list(self.digit_mass.values())
            out.append(
                f"digit mass: mean {np.mean(masses):.3f}, lowest capability "
                f"{min(self.digit_mass, key=self.digit_mass.get)} {min(masses):.3f}"
            )
        if self.style_unmatched:
            out.append(f"style answers with unmatched text pieces: {self.style_unmatched}")
        return out


def visible_gpus() -> list[str]:
    """GPU indices visible to this process, found without importing torch."""
    declared = os.environ.get("CUDA_VISIBLE_DEVICES")
    if declared is not None:
        return [d.strip() for d in declared.split(",") if d.strip() and d.strip() != "-1"]
    if not shutil.which("nvidia-smi"):
        return []
    try:
        listing = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(listing.splitlines()) if line.startswith("GPU ")]


def failure_kind(reason: str) -> str:
    """Group failure reasons by kind: the text before the first ':' (or the first 60 chars)."""
    return reason.split(":", 1)[0] if ":" in reason else reason[:60]


def run_scoring(
    samples: Sequence[Sample],
    scorer: ScorerConfig,
    capabilities: Sequence[Capability],
    cache_dir: str | Path,
    workers: int | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> tuple[ScoreTable, ScoringSummary]:
    """Score ``samples`` (reusing every finished shard in the store) and return the table.

    Args:
        samples: the pool, in pool order (invalid samples are recorded as failures).
        scorer: engine configuration.
        capabilities: capabilities to score, in order.
        cache_dir: root of the score stores (``<cache_dir>/scores/<fingerprint>``).
        workers: worker processes on CPU (default 1); with GPUs visible, one per GPU.
        shard_size: samples per shard (the unit of resumption).
        progress: show a progress bar on stderr.
        log: where summary lines go.
    """
    from mmssr_plugin.engines import engine_identity

    started = time.monotonic()
    identity = engine_identity(scorer)
    store = ScoreStore(
        Path(cache_dir) / "scores",
        score_fingerprint(identity, capabilities, scorer.min_digit_mass),
    ).open()
    uids = [s.uid for s in samples]
    if len(set(uids)) != len(uids):
        raise ValueError("sample uids are not unique; the pool has duplicate rows under one id")
    shards = store.plan(uids, shard_size)
    done = store.done()
    pending = [s for s in shards if s.id not in done]
    pending_samples = sum(s.stop - s.start for s in pending)
    gpus = visible_gpus() if scorer.backend == "hf" else []
    n_workers = max(1, min(len(gpus) if gpus else (workers or 1), len(pending) or 1))
    if pending:
        log(
            f"scoring {pending_samples} of {len(samples)} samples "
            f"({len(shards) - len(pending)} of {len(shards)} shards reused) with "
            f"{n_workers} worker(s) on {'GPU ' + ','.join(gpus) if gpus else 'CPU'}"
        )
        _run_workers(store, scorer, capabilities, samples, shards, n_workers, gpus, progress,
                     pending_samples)
    table = store.read(uids)
    summary = summarize(table, store, pending_samples, time.monotonic() - started, n_workers,
                        [f"cuda:{g}" for g in gpus])
    return table, summary


def summarize(
    table: ScoreTable, store: ScoreStore, computed: int, seconds: float, workers: int,
    devices: list[str],
) -> ScoringSummary:
    """Count failures, non-digit answers and digit mass of a score table."""
    scored = table.scored
    failures = Counter(failure_kind(err) for err in table.errors if err is not None)
    non_digit = {
        cap: int((table.digits.missing[:, c] & scored).sum())
        for c, cap in enumerate(table.capabilities)
    }
    mass = {
        cap: float(np.nanmean(table.digits.mass[scored, c])) if scored.any() else float("nan")
        for c, cap in enumerate(table.capabilities)
    }
    return ScoringSummary(
        store_path=store.path,
        fingerprint_key=store.key,
        total=len(table.uids),
        computed=computed,
        scored=int(scored.sum()),
        failures=dict(sorted(failures.items(), key=lambda kv: (-kv[1], kv[0]))),
        non_digit=non_digit,
        digit_mass=mass if scored.any() else {},
        style_unmatched=int((table.style_unmatched > 0).sum()),
        seconds=seconds,
        workers=workers,
        devices=devices,
    )


def _run_workers(
    store: ScoreStore,
    scorer: ScorerConfig,
    capabilities: Sequence[Capability],
    samples: Sequence[Sample],
    shards: list,
    n_workers: int,
    gpus: list[str],
    progress: bool,
    pending_samples: int,
) -> None:
    jobs = store.path / "jobs"
    jobs.mkdir(exist_ok=True)
    key = canonical_hash([s.uid for s in samples])
    samples_path = jobs / f"samples-{key}.jsonl"
    if not samples_path.exists():
        tmp = samples_path.with_name(f".{samples_path.name}.{os.getpid()}.tmp")
        write_samples(tmp, samples)
        os.replace(tmp, samples_path)
    job = {
        "scorer": scorer.to_dict(),
        "capabilities": [[c.id, c.keyword] for c in capabilities],
        "store_root": str(store.path.parent),
        "fingerprint": store.fingerprint,
        "samples": str(samples_path),
        "shards": [vars(s) for s in shards],
        "workers": n_workers,
    }
    job_path = jobs / f"job-{key}-{n_workers}.json"
    job_path.write_text(json.dumps(job))
    threads = max(1, (os.cpu_count() or 1) // n_workers)
    procs = []
    for index in range(n_workers):
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", str(threads))
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = gpus[index]
        log_path = jobs / f"worker-{index}.log"
        handle = open(log_path, "w")
        proc = subprocess.Popen(
            [sys.executable, "-m", "mmssr_plugin.scoring.worker", str(job_path), str(index)],
            env=env, stdout=handle, stderr=subprocess.STDOUT,
        )
        procs.append((proc, handle, log_path))
    _wait_with_progress(store, shards, procs, progress, pending_samples)


def _wait_with_progress(store, shards, procs, progress: bool, pending_samples: int) -> None:
    from tqdm import tqdm

    sizes = {s.id: s.stop - s.start for s in shards}
    initial = set(store.done())
    interactive = sys.stderr.isatty()
    bar = tqdm(total=pending_samples, unit="sample", disable=not progress, dynamic_ncols=True,
               desc="scoring", file=sys.stderr, mininterval=0.5 if interactive else 10.0)
    shown = 0
    try:
        while True:
            finished = all(proc.poll() is not None for proc, _, _ in procs)
            now_done = sum(sizes.get(i, 0) for i in store.done() - initial)
            if now_done > shown:
                bar.update(now_done - shown)
                shown = now_done
            failed = [(p, log) for p, _, log in procs if p.poll() not in (None, 0)]
            if failed:
                for proc, _, _ in procs:
                    if proc.poll() is None:
                        proc.terminate()
                proc, log_path = failed[0]
                tail = log_path.read_text(errors="replace")[-2000:]
                raise ScoringError(
                    f"scoring worker exited with code {proc.returncode}; finished shards are "
                    f"kept and a rerun resumes. Log {log_path}:\n{tail}"
                )
            if finished:
                break
            time.sleep(0.25)
    finally:
        bar.close()
        for proc, handle, _ in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            handle.close()
