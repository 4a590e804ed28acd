"""The local executor: worker processes on this machine (one per visible GPU, or a configurable
number on CPU), started and waited for while a progress bar counts finished shards.

The parent process never imports torch: every model lives in worker processes, so a long-lived
launcher keeps no accelerator memory.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from mmssr_plugin.scoring.config import JobConfig
from mmssr_plugin.scoring.executors import Execution, ScoringError, ScoringPlan
from mmssr_plugin.scoring.executors.progress import ShardProgress
from mmssr_plugin.scoring.job_file import WorkerJob, prepare_samples, worker_threads
from mmssr_plugin.scoring.store import ScoreStore, Shard

logger = logging.getLogger(__name__)


@dataclass
class _Worker:
    process: subprocess.Popen
    log_file: IO[str]
    log_path: Path


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


def run_locally(plan: ScoringPlan, job: JobConfig) -> Execution:
    """Score the pending shards in worker processes (one per visible GPU for the hf backend).

    Raises:
        ScoringError: a worker exited with an error (the others are stopped; finished shards stay).
    """
    gpus = visible_gpus() if plan.scorer.backend == "hf" else []
    n_workers = max(1, min(len(gpus) if gpus else (job.workers or 1), len(plan.pending) or 1))
    logger.info(f"{n_workers} local worker(s) on {'GPU ' + ','.join(gpus) if gpus else 'CPU'}")
    jobs = plan.store.path / "jobs"
    jobs.mkdir(exist_ok=True)
    samples_path, _ = prepare_samples(jobs, plan.samples)
    worker_job = WorkerJob(
        scorer=plan.scorer,
        capabilities=list(plan.capabilities),
        store_root=plan.store.path.parent,
        fingerprint=plan.store.fingerprint,
        samples=samples_path,
        shards=plan.shards,
        workers=n_workers,
    )
    job_path = jobs / f"job-{samples_path.stem[len('samples-'):]}-{n_workers}.json"
    worker_job.write(job_path)
    threads = worker_threads(n_workers)
    workers = []
    for index in range(n_workers):
        env = dict(os.environ)
        env["OMP_NUM_THREADS"] = str(threads)
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = gpus[index]
        log_path = jobs / f"worker-{index}.log"
        handle = open(log_path, "w")
        process = subprocess.Popen(
            [sys.executable, "-m", "mmssr_plugin.scoring.worker", str(job_path), str(index)],
            env=env, stdout=handle, stderr=subprocess.STDOUT,
        )
        workers.append(_Worker(process, handle, log_path))
    _wait_with_progress(plan.store, plan.shards, workers, plan.progress, plan.pending_samples,
                        len(plan.pending))
    return Execution(n_workers, [f"cuda:{g}" for g in gpus])


def _wait_with_progress(
    store: ScoreStore, shards: list[Shard], workers: list[_Worker], progress: bool,
    pending_samples: int, pending_shards: int,
) -> None:
    """Poll the workers and the store; the progress bar (on stderr) counts finished samples."""
    sizes = {s.id: s.stop - s.start for s in shards}
    initial = set(store.done())
    bar = ShardProgress(pending_samples, pending_shards, progress)
    try:
        while True:
            finished = all(w.process.poll() is not None for w in workers)
            new = store.done() - initial
            bar.advance_to(sum(sizes.get(i, 0) for i in new), len(new))
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
