"""The seeded, prefix-stable order of samples by uid (which samples get labelled, which go to val)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from mmssr_plugin.curation.errors import CurateError
from mmssr_plugin.data.sample import Sample


def seeded_order(uids: Sequence[str], seed: int) -> list[str]:
    """``uids`` sorted by a seeded hash of each uid alone (adding uids never reorders the others)."""
    return sorted(uids, key=lambda uid: _rank(seed, uid))


def pick_samples(samples: Sequence[Sample], num_samples: int, seed: int) -> list[Sample]:
    """The first ``num_samples`` valid samples in a seeded order of their uids.

    The order depends only on ``seed`` and each uid, so the picks for N are a prefix of the picks
    for any larger N, and growing the pool keeps already picked samples picked when they still
    rank first.
    """
    if num_samples < 1:
        raise CurateError(f"the number of samples must be >= 1, got {num_samples}")
    valid = [s for s in samples if s.ok]
    valid.sort(key=lambda s: _rank(seed, s.uid))
    return valid[:num_samples]


def _rank(seed: int, uid: str) -> str:
    return hashlib.sha256(f"{seed}:{uid}".encode()).hexdigest()
