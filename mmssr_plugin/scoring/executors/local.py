"""The local executor: worker processes on this machine (one per visible GPU, or a configurable
number on CPU), started and waited for while a progress bar counts finished shards, and all
stopped on a failure or an interrupt.

The parent process never imports torch: every model lives in worker processes, so a long-lived
launcher keeps no accelerator memory. SIGINT and SIGTERM to the parent stop every worker (the
stopping itself is :func:`mmssr_plugin.scoring.executors.interrupts.interruptible`'s); a worker
whose parent dies anyway stops by itself (:mod:`mmssr_plugin.scoring.parent_watch`).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from mmssr_plugin.scoring.config import JobConfig
from mmssr_plugin.scoring.devices import CPU_WORKER_ENV, visible_gpus, worker_threads
from mmssr_plugin.scoring.executors import Execution, ScoringError, ScoringPlan
from mmssr_plugin.scoring.executors.progress import ShardProgress
from mmssr_plugin.scoring.job_file import WorkerJob, prepare_samples
from mmssr_plugin.scoring.parent_watch import parent_environment
from mmssr_plugin.scoring.store import ScoreStore

logger = logging.getLogger(__name__)

# How long stopped workers get to exit on SIGTERM before they are killed.
STOP_GRACE_SECONDS = 10.0


@dataclass
class _Worker:
    index: int
    process: subprocess.Popen
    log_file: IO[str]
    log_path: Path


def run_locally(plan: ScoringPlan, job: JobConfig) -> Execution:
    """Score the pending tasks in worker processes (one per visible GPU for the hf backend).

    Raises:
        ScoringError: a worker exited with an error (the others are stopped; finished shards stay).
        KeyboardInterrupt: SIGINT (or SIGTERM, made to raise by the caller) reached this process;
            every worker is stopped first.
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
        shards=plan.pending,
        workers=n_workers,
    )
    job_path = jobs / f"job-{samples_path.stem[len('samples-'):]}-{n_workers}.json"
    worker_job.write(job_path)
    threads = worker_threads(n_workers)
    workers: list[_Worker] = []
    try:
        for index in range(n_workers):
            workers.append(_start_worker(index, job_path, jobs, threads, gpus))
        _wait_with_progress(plan, workers)
    finally:
        _stop_workers(workers)
    return Execution(n_workers, [f"cuda:{g}" for g in gpus])


def _start_worker(index: int, job_path: Path, jobs: Path, threads: int, gpus: list[str]) -> _Worker:
    """Start worker ``index`` with its output going to ``jobs/worker-<index>.log``."""
    env = {**os.environ, **parent_environment()}
    env["OMP_NUM_THREADS"] = str(threads)
    for key, value in CPU_WORKER_ENV.items():
        env.setdefault(key, value)
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = gpus[index]
    log_path = jobs / f"worker-{index}.log"
    handle = open(log_path, "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "mmssr_plugin.scoring.worker", str(job_path), str(index)],
        env=env, stdout=handle, stderr=subprocess.STDOUT,
    )
    return _Worker(index, process, handle, log_path)


def _wait_with_progress(plan: ScoringPlan, workers: list[_Worker]) -> None:
    """Poll the workers and the store; the progress bar (on stderr) counts finished samples (a
    retried task counts once its shard file is rewritten)."""
    store: ScoreStore = plan.store
    sizes = {task.id: task.size for task in plan.pending}
    initial = store.shard_versions()
    bar = ShardProgress(plan.pending_samples, len(plan.pending), plan.progress)
    try:
        while True:
            finished = all(w.process.poll() is not None for w in workers)
            new = [i for i, v in store.shard_versions().items() if i in sizes and initial.get(i) != v]
            bar.advance_to(sum(sizes[i] for i in new), len(new))
            failed = [w for w in workers if w.process.poll() not in (None, 0)]
            if failed:
                error = _worker_error(failed[0], len(workers))
                _stop_workers(workers)
                raise error
            if finished:
                break
            time.sleep(0.25)
    finally:
        bar.close()


def _worker_error(worker: _Worker, n_workers: int) -> ScoringError:
    """One line: which worker, how it ended, its last log line, and where its log is."""
    code = worker.process.returncode
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        cause = f"was killed by {name}" + (" (out of memory?)" if -code == signal.SIGKILL else "")
    else:
        cause = f"exited with code {code}"
    lines = [line.strip() for line in worker.log_path.read_text(errors="replace").splitlines()]
    last = next((line for line in reversed(lines) if line), "")
    return ScoringError(
        f"scoring worker {worker.index + 1} of {n_workers} {cause}"
        f"{': ' + last if last else ''}; finished shards are kept and a rerun resumes; "
        f"log: {worker.log_path}",
        worker.log_path,
    )


def _stop_workers(workers: list[_Worker]) -> None:
    """SIGTERM every running worker, wait up to ``STOP_GRACE_SECONDS``, SIGKILL what is left."""
    running = [w for w in workers if w.process.poll() is None]
    for worker in running:
        worker.process.terminate()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for worker in running:
        try:
            worker.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait()
    for worker in workers:
        if not worker.log_file.closed:
            worker.log_file.close()
