"""Worker processes of a scoring job: starting the workers (on the GPUs :mod:`.devices` finds, or
CPU threads that leave busy cores alone), and waiting for them while a progress bar counts
finished shards.

The parent process never imports torch: every model lives in worker processes (one per visible
GPU, or a configurable number on CPU), so a long-lived launcher keeps no accelerator memory.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Sequence

from mmssr_plugin.core.taxonomy import Capability
from mmssr_plugin.data.sample import Sample
from mmssr_plugin.scoring.config import ScorerConfig
from mmssr_plugin.scoring.devices import CPU_WORKER_ENV, cpu_threads_per_worker
from mmssr_plugin.scoring.job_file import WorkerJob, write_samples
from mmssr_plugin.scoring.store import ScoreStore, Shard
from mmssr_plugin.utils.hashing import canonical_hash


class ScoringError(RuntimeError):
    """A worker process failed; the message carries the end of its output."""


@dataclass
class _Worker:
    process: subprocess.Popen
    log_file: IO[str]
    log_path: Path


def run_workers(
    store: ScoreStore,
    scorer: ScorerConfig,
    capabilities: Sequence[Capability],
    samples: Sequence[Sample],
    shards: list[Shard],
    n_workers: int,
    gpus: list[str],
    progress: bool,
    pending_samples: int,
) -> None:
    """Write the job files, start ``n_workers`` worker processes and wait for all of them.

    Raises:
        ScoringError: a worker exited with an error (the others are stopped; finished shards stay).
    """
    jobs = store.path / "jobs"
    jobs.mkdir(exist_ok=True)
    key = canonical_hash([s.uid for s in samples])
    samples_path = jobs / f"samples-{key}.jsonl"
    if not samples_path.exists():
        write_samples(samples_path, samples)
    job = WorkerJob(
        scorer=scorer,
        capabilities=list(capabilities),
        store_root=store.path.parent,
        fingerprint=store.fingerprint,
        samples=samples_path,
        shards=shards,
        workers=n_workers,
    )
    job_path = jobs / f"job-{key}-{n_workers}.json"
    job.write(job_path)
    threads = cpu_threads_per_worker(n_workers)
    workers = []
    for index in range(n_workers):
        env = dict(os.environ)
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = gpus[index]
            env.setdefault("TOKENIZERS_PARALLELISM", "false")
        else:
            env.setdefault("OMP_NUM_THREADS", str(threads))
            for key, value in CPU_WORKER_ENV.items():
                env.setdefault(key, value)
        log_path = jobs / f"worker-{index}.log"
        handle = open(log_path, "w")
        process = subprocess.Popen(
            [sys.executable, "-m", "mmssr_plugin.scoring.worker", str(job_path), str(index)],
            env=env, stdout=handle, stderr=subprocess.STDOUT,
        )
        workers.append(_Worker(process, handle, log_path))
    _wait_with_progress(store, shards, workers, progress, pending_samples)


def _wait_with_progress(
    store: ScoreStore, shards: list[Shard], workers: list[_Worker], progress: bool,
    pending_samples: int,
) -> None:
    """Poll the workers and the store; the progress bar (on stderr) counts finished samples."""
    from tqdm import tqdm

    sizes = {s.id: s.stop - s.start for s in shards}
    initial = set(store.done())
    interactive = sys.stderr.isatty()
    bar = tqdm(total=pending_samples, unit="sample", disable=not progress, dynamic_ncols=True,
               desc="scoring", file=sys.stderr, mininterval=0.5 if interactive else 10.0)
    shown = 0
    try:
        while True:
            finished = all(w.process.poll() is not None for w in workers)
            now_done = sum(sizes.get(i, 0) for i in store.done() - initial)
            if now_done > shown:
                bar.update(now_done - shown)
                shown = now_done
            failed = [w for w in workers if w.process.poll() not in (None, 0)]
            if failed:
                for worker in workers:
                    if worker.process.poll() is None:
                        worker.process.terminate()
                first = failed[0]
                tail = first.log_path.read_text(errors="replace")[-2000:]
                raise ScoringError(
                    f"scoring worker exited with code {first.process.returncode}; finished shards "
                    f"are kept and a rerun resumes. Log {first.log_path}:\n{tail}"
                )
            if finished:
                break
            time.sleep(0.25)
    finally:
        bar.close()
        for worker in workers:
            if worker.process.poll() is None:
                worker.process.kill()
                worker.process.wait()
            worker.log_file.close()
