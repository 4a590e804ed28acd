"""A curate run: pick samples, label them with a bounded pool of teacher requests, append every
outcome as it arrives, stop cleanly on Ctrl-C or a fatal teacher answer, and count it all."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from mmssr_plugin.core.taxonomy import Capability
from mmssr_plugin.curation.backoff import RateGate, Stopped
from mmssr_plugin.curation.errors import CurateError, TeacherFatal
from mmssr_plugin.curation.labels import JsonlAppender, load_done, rejected_path
from mmssr_plugin.curation.pick import pick_samples
from mmssr_plugin.curation.teacher_client import Outcome, TeacherConfig, label_sample
from mmssr_plugin.data.load import load_samples
from mmssr_plugin.data.sample import Sample

logger = logging.getLogger(__name__)

# The run stops when this many samples in a row are rejected because no connection could be made.
UNREACHABLE_AFTER = 3


@dataclass
class CurateSummary:
    """Totals of one curate run.

    Attributes:
        pool: rows in the pool; invalid: rows with problems (never picked); picked: samples
            picked (at most N); skipped_done: picked samples already in the output; sent:
            samples this run worked on; rejected / accepted: their outcomes (rejected by reason);
            requests, retries, rate_limited: HTTP requests made, retries among them, 429 answers;
            failures: every failed attempt by reason (retried or not); stopped: the run was
            interrupted before every sample finished.
    """

    pool: int = 0
    invalid: int = 0
    picked: int = 0
    skipped_done: int = 0
    sent: int = 0
    rejected: Counter = field(default_factory=Counter)
    accepted: int = 0
    requests: int = 0
    retries: int = 0
    rate_limited: int = 0
    failures: Counter = field(default_factory=Counter)
    stopped: bool = False


def curate(
    dataset_dir: str | Path,
    dataset: str,
    num_samples: int,
    capabilities: Sequence[Capability],
    config: TeacherConfig,
    output: str | Path,
    *,
    media_dir: str | Path | None = None,
    seed: int = 0,
) -> CurateSummary:
    """Pick ``num_samples`` valid samples of ``dataset`` (seeded) and label them with the teacher.

    Args:
        dataset_dir: folder holding ``dataset_info.json``.
        dataset: dataset name(s), comma-separated.
        num_samples: how many samples to label (fewer when the pool has fewer valid ones).
        capabilities: the capabilities to score, with the keywords put into the prompt.
        config: the teacher and the retry policy.
        output: label file (JSON lines), appended to; its rejections go next to it.
        media_dir: image root (default ``dataset_dir``).
        seed: seed of the pick and of the retry jitter.

    Returns:
        The run's totals.

    Raises:
        DatasetError, CurateError, TeacherFatal: see :func:`label_samples`.
    """
    samples = load_samples(dataset_dir, dataset, media_dir, check_images=False)
    picked = pick_samples(samples, num_samples, seed)
    invalid = sum(1 for s in samples if not s.ok)
    summary = CurateSummary(pool=len(samples), invalid=invalid, picked=len(picked))
    if not picked:
        raise CurateError(f"dataset {dataset!r} has no valid sample to label ({invalid} rows with problems)")
    return label_samples(picked, capabilities, config, output, seed=seed, summary=summary)


def label_samples(
    samples: Sequence[Sample],
    capabilities: Sequence[Capability],
    config: TeacherConfig,
    output: str | Path,
    *,
    seed: int = 0,
    summary: CurateSummary | None = None,
    progress_every: float = 2.0,
) -> CurateSummary:
    """Label ``samples`` with the teacher, appending results to the output files as they arrive.

    Samples already in ``output`` are skipped. Ctrl-C stops starting requests, keeps the answers
    of requests in flight and returns (``summary.stopped``); a second Ctrl-C aborts. Progress is
    logged every ``progress_every`` seconds.

    Raises:
        CurateError: unusable output file (LabelsMismatch: labels for other capabilities).
        TeacherFatal: the teacher refuses every request (401, 403, 404) or cannot be reached
            (UNREACHABLE_AFTER samples in a row), raised after the answers in flight are saved.
    """
    summary = summary or CurateSummary(picked=len(samples))
    output = Path(output)
    if not output.parent.is_dir():
        raise CurateError(f"output folder {output.parent} does not exist")
    done = load_done(output, capabilities)
    todo = [s for s in samples if s.uid not in done]
    summary.skipped_done += len(samples) - len(todo)
    summary.sent += len(todo)
    logger.info(
        "curate: teacher %s at %s; capabilities %s; %d samples to label (%d already in %s)",
        config.model, config.url, ", ".join(c.id for c in capabilities), len(todo), len(samples) - len(todo), output,
    )
    stop = threading.Event()
    gate = RateGate(stop)
    accepted, rejected = JsonlAppender(output), JsonlAppender(rejected_path(output))
    fatal: TeacherFatal | None = None
    last_report = time.monotonic()
    finished = 0
    pool = ThreadPoolExecutor(max_workers=config.concurrency, thread_name_prefix="curate")
    try:
        pending: set[Future] = {
            pool.submit(label_sample, s, capabilities, config, gate, stop, seed) for s in todo
        }
        unreachable = 0  # samples in a row rejected because the teacher could not be reached
        while pending:
            try:
                completed, _ = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
                for future in completed:
                    pending.discard(future)
                    finished += 1
                    try:
                        outcome = future.result()
                    except Stopped:
                        summary.stopped = True
                        continue
                    except TeacherFatal as err:
                        fatal = fatal or err
                        pending = _halt(stop, pending)
                        continue
                    _record(outcome, summary, accepted, rejected, config.model)
                    unreachable = unreachable + 1 if outcome.reason == "connection error" else 0
                    if unreachable >= UNREACHABLE_AFTER and fatal is None:
                        fatal = TeacherFatal(
                            f"cannot reach the teacher at {config.url} ({unreachable} samples in a row failed "
                            f"to connect, last: {outcome.detail})"
                        )
                        pending = _halt(stop, pending)
                if time.monotonic() - last_report >= progress_every:
                    last_report = time.monotonic()
                    logger.info(_progress(summary, finished, len(todo)))
            except KeyboardInterrupt:
                if stop.is_set():
                    raise
                summary.stopped = True
                pending = _halt(stop, pending)
                logger.info(
                    "curate: stopping, waiting for %d requests in flight (Ctrl-C again to abort)", len(pending)
                )
    finally:
        stop.set()  # normally every worker is done; after an abort none may start or sleep on
        pool.shutdown(wait=False, cancel_futures=True)
        accepted.close()
        rejected.close()
    unreached = summary.rejected.get("connection error", 0)
    if fatal is None and todo and not summary.stopped and unreached == len(todo):
        fatal = TeacherFatal(
            f"cannot reach the teacher at {config.url} (all {unreached} samples failed to connect)"
        )
    if fatal is not None:
        summary.stopped = True
        fatal.summary = summary
        raise fatal
    logger.info(_progress(summary, finished, len(todo)))
    return summary


def _halt(stop: threading.Event, pending: set[Future]) -> set[Future]:
    """Stop the run: no new request starts; returns the futures still running (the rest are cancelled)."""
    stop.set()
    return {future for future in pending if not future.cancel()}


def _record(
    outcome: Outcome, summary: CurateSummary, accepted: JsonlAppender, rejected: JsonlAppender, teacher: str
) -> None:
    """Write one outcome and add it to the totals."""
    summary.requests += outcome.attempts
    summary.retries += max(outcome.attempts - 1, 0)
    summary.rate_limited += outcome.rate_limited
    summary.failures.update(outcome.failures)
    if outcome.label is not None:
        accepted.write(outcome.label.to_json())
        summary.accepted += 1
        return
    sample = outcome.sample
    rejected.write({
        "uid": sample.uid, "dataset": sample.dataset, "row": sample.row, "reason": outcome.reason,
        "detail": outcome.detail, "attempts": outcome.attempts, "teacher": teacher,
    })
    summary.rejected[outcome.reason] += 1


def _progress(summary: CurateSummary, finished: int, total: int) -> str:
    """One progress line."""
    return (
        f"curate: {finished}/{total} done (accepted {summary.accepted}, rejected "
        f"{sum(summary.rejected.values())}, retries {summary.retries}, 429s {summary.rate_limited})"
    )
