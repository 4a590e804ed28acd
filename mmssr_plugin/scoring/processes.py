"""Worker processes of a scoring job: which GPUs are visible, starting the workers, waiting for
them while a progress bar counts finished shards, and stopping them all on a failure or a signal.

The parent process never imports torch: every model lives in worker processes (one per visible
GPU, or a configurable number on CPU), so a long-lived launcher keeps no accelerator memory.
SIGINT and SIGTERM to the parent stop every worker before :class:`ScoringInterrupted` is raised;
a worker whose parent dies anyway stops by itself (:mod:`mmssr_plugin.scoring.parent_watch`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Sequence

from mmssr_plugin.core.taxonomy import Capability
from mmssr_plugin.data.sample import Sample
from mmssr_plugin.scoring.config import ScorerConfig
from mmssr_plugin.scoring.job_file import WorkerJob, write_samples
from mmssr_plugin.scoring.parent_watch import parent_environment
from mmssr_plugin.scoring.store import ScoreStore, Shard


# How long stopped workers get to exit on SIGTERM before they are killed.
STOP_GRACE_SECONDS = 10.0


class ScoringError(RuntimeError):
    """A worker process failed: one line with its exit cause, its last log line and the log."""

    def __init__(self, message: str, log_path: Path | None = None) -> None:
        super().__init__(message)
        self.log_path = log_path


class ScoringInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped a scoring job; its workers are stopped, finished shards kept.

    ``exit_status`` is the conventional status of the signal (130 for SIGINT, 143 for SIGTERM).
    """

    def __init__(self, signal_number: int, message: str = "") -> None:
        super().__init__(message or f"scoring interrupted by {signal.Signals(signal_number).name}")
        self.signal_number = int(signal_number)
        self.exit_status = 128 + int(signal_number)


@dataclass
class _Worker:
    index: int
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
        ScoringInterrupted: SIGINT or SIGTERM reached this process (every worker is stopped first).
    """
    jobs = store.path / "jobs"
    jobs.mkdir(exist_ok=True)
    samples_path = write_samples(jobs, samples)
    job = WorkerJob(
        scorer=scorer,
        capabilities=list(capabilities),
        store_root=store.path.parent,
        fingerprint=store.fingerprint,
        samples=samples_path,
        shards=shards,
        workers=n_workers,
    )
    job_path = jobs / f"job-{samples_path.stem[len('samples-'):]}-{n_workers}.json"
    job.write(job_path)
    threads = max(1, (os.cpu_count() or 1) // n_workers)
    workers: list[_Worker] = []
    before = store.shard_versions()
    with _terminate_raises():
        try:
            for index in range(n_workers):
                workers.append(_start_worker(index, job_path, jobs, threads, gpus))
            _wait_with_progress(store, shards, workers, progress, pending_samples)
        except KeyboardInterrupt as stop:
            number = getattr(stop, "signal_number", signal.SIGINT)
            _stop_workers(workers)
            kept = len(set(store.shard_versions().items()) - set(before.items()))
            raise ScoringInterrupted(
                number,
                f"scoring interrupted by {signal.Signals(number).name}: the workers are stopped, "
                f"{kept} shard(s) finished in this run are kept in {store.path}; run the same "
                f"command again to resume",
            ) from None
        finally:
            _stop_workers(workers)


def _start_worker(index: int, job_path: Path, jobs: Path, threads: int, gpus: list[str]) -> _Worker:
    """Start worker ``index`` with its output going to ``jobs/worker-<index>.log``."""
    env = {**os.environ, **parent_environment()}
    env.setdefault("OMP_NUM_THREADS", str(threads))
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    if gpus:
        env["CUDA_VISIBLE_DEVICES"] = gpus[index]
    log_path = jobs / f"worker-{index}.log"
    handle = open(log_path, "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "mmssr_plugin.scoring.worker", str(job_path), str(index)],
        env=env, stdout=handle, stderr=subprocess.STDOUT,
    )
    return _Worker(index, process, handle, log_path)


@contextlib.contextmanager
def _terminate_raises() -> Iterator[None]:
    """While the block runs, SIGTERM raises :class:`ScoringInterrupted` like SIGINT raises
    ``KeyboardInterrupt`` (signal handlers can be set from the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_terminate(number: int, frame: Any) -> None:
        raise ScoringInterrupted(number)

    previous = signal.signal(signal.SIGTERM, on_terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _wait_with_progress(
    store: ScoreStore, shards: list[Shard], workers: list[_Worker], progress: bool,
    pending_samples: int,
) -> None:
    """Poll the workers and the store; the progress bar (on stderr) counts finished samples."""
    from tqdm import tqdm

    sizes = {s.id: len(s.retry) or s.stop - s.start for s in shards}
    initial = store.shard_versions()
    interactive = sys.stderr.isatty()
    bar = tqdm(total=pending_samples, unit="sample", disable=not progress, dynamic_ncols=True,
               desc="scoring", file=sys.stderr, mininterval=0.5 if interactive else 10.0)
    shown = 0
    try:
        while True:
            finished = all(w.process.poll() is not None for w in workers)
            now = store.shard_versions()
            now_done = sum(sizes.get(i, 0) for i, v in now.items() if initial.get(i) != v)
            if now_done > shown:
                bar.update(now_done - shown)
                shown = now_done
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
        worker.log_file.close()
