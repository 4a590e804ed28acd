"""Failures of scored samples: their kinds, what caused them, when a stored one still stands, and
their traceable records.

A failure is not a result. An invalid sample (its problems are found when the pool is read) is
never taken from the store; a sample the engine failed on is taken from it only while the inputs
that may have caused the failure are unchanged: the size and modification time of each image file
(the uid covers the row itself). Anything else is scored again.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from mmssr_plugin.data.failures import FailureRecord, failure_record
from mmssr_plugin.data.sample import Sample
from mmssr_plugin.utils.hashing import canonical_hash

INVALID_SAMPLE = "invalid sample"
SCORING_FAILED = "scoring failed"


def failure_kind(reason: str) -> str:
    """Group failure reasons by kind: the text before the first ':' (or the first 60 chars)."""
    return reason.split(":", 1)[0] if ":" in reason else reason[:60]


def invalid_reason(sample: Sample) -> str:
    """The failure reason of an invalid sample: its problems."""
    return f"{INVALID_SAMPLE}: " + "; ".join(sample.problems)


def failure_cause(sample: Sample) -> str:
    """A key of the inputs a failure may come from that the uid does not cover: each image file's
    path, size and modification time (a missing file keys as such)."""
    stats = []
    for path in sample.images:
        try:
            info = os.stat(path)
        except OSError:
            stats.append([path, None, None])
        else:
            stats.append([path, info.st_size, info.st_mtime_ns])
    return canonical_hash(stats)


def failure_stands(reason: str | None, cause: str | None, sample: Sample) -> bool:
    """True when a stored failure of a (now valid) sample may be reused: the engine failed on it
    and the image files are as they were then."""
    return (
        reason is not None
        and failure_kind(reason) == SCORING_FAILED
        and cause is not None
        and cause == failure_cause(sample)
    )


def failure_records(samples: Sequence[Sample], errors: Sequence[str | None]) -> list[FailureRecord]:
    """The traceable record (dataset, row, uid, image, reason) of every failed sample, pool order."""
    return [failure_record(sample, error) for sample, error in zip(samples, errors) if error is not None]
