"""The score store: sharded, columnar, resumable, keyed by a fingerprint of everything that
changes a score.

Layout: ``<root>/<key>/fingerprint.json`` and one ``shard-<id>.parquet`` per finished shard. A
shard is a fixed run of consecutive samples of the pool; its id hashes its sample uids, so the same
pool always cuts into the same shards (bit-identical batches after a restart) and a grown pool
reuses the shards it shares. A shard file appears atomically (written aside, then renamed) only
once it is complete: a crash loses at most the shards in flight, and the temporary file a dead
writer left is removed when the store is next opened.

A failed row is not a result: it keeps its reason and the key of what caused it
(:func:`mmssr_plugin.scoring.failures.failure_cause`), so a job scores it again once that changed
and rewrites the row in its shard (:meth:`ScoreStore.rewrite_rows`).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from mmssr_plugin.core.taxonomy import PROMPT_VERSION, Capability
from mmssr_plugin.scoring.digits import DigitScores, summarize_digits
from mmssr_plugin.utils.files import atomic_write_text, atomic_write_with, remove_stale_temporaries
from mmssr_plugin.utils.hashing import canonical_hash

logger = logging.getLogger(__name__)

SHARD_GLOB = "shard-*.parquet"
NOT_SCORED = "not scored"


@dataclass(frozen=True)
class Shard:
    """A run of consecutive pool positions scored together.

    ``retry`` names pool positions of an already written shard to score again (their stored rows
    failed); such a task rewrites those rows of the shard and leaves the others as they are.
    """

    id: str
    start: int
    stop: int
    retry: tuple[int, ...] = ()


@dataclass(frozen=True)
class ShardResult:
    """What a worker computed for one shard (rows in shard order)."""

    uids: list[str]
    probs: np.ndarray  # float32 [n, C, 6]; NaN rows for failed samples
    styles: list[tuple[str, ...]]
    style_raw: list[str | None]
    style_unmatched: list[int]
    errors: list[str | None]
    causes: list[str | None] | None = None  # per failed row: the key of what caused the failure

    def with_rows_of(self, other: ShardResult) -> ShardResult:
        """This result with the rows of ``other`` replacing the rows of the same uids."""
        position = {uid: i for i, uid in enumerate(self.uids)}
        probs = np.array(self.probs, dtype=np.float32, copy=True)
        styles, style_raw = list(self.styles), list(self.style_raw)
        unmatched, errors = list(self.style_unmatched), list(self.errors)
        causes = list(self.causes or [None] * len(self.uids))
        for j, uid in enumerate(other.uids):
            i = position[uid]
            probs[i] = other.probs[j]
            styles[i], style_raw[i], unmatched[i] = other.styles[j], other.style_raw[j], other.style_unmatched[j]
            errors[i], causes[i] = other.errors[j], (other.causes or [None] * len(other.uids))[j]
        return ShardResult(list(self.uids), probs, styles, style_raw, unmatched, errors, causes)


@dataclass
class ScoreTable:
    """Scores of a list of samples, in the order asked for."""

    uids: list[str]
    capabilities: list[str]
    probs: np.ndarray  # float32 [N, C, 6]
    digits: DigitScores
    styles: list[tuple[str, ...]]
    style_raw: list[str | None]
    style_unmatched: np.ndarray  # int32 [N]
    errors: list[str | None]  # None when scored; a reason otherwise ("not scored" if absent)
    causes: list[str | None] | None = None  # per failed row: the key of what caused the failure

    @property
    def scored(self) -> np.ndarray:
        """Boolean [N]: the sample has scores (it did not fail and was not left out)."""
        return np.array([err is None for err in self.errors], dtype=bool)

    def mark_failed(self, index: int, reason: str) -> None:
        """Record sample ``index`` as failed for ``reason``, dropping any scores it had."""
        self.errors[index] = reason
        self.probs[index] = np.nan
        self.digits.argmax[index] = -1
        self.digits.expected[index] = np.nan
        self.digits.mass[index] = np.nan
        self.styles[index], self.style_raw[index] = (), None


def score_fingerprint(
    engine_identity: dict, capabilities: Sequence[Capability], min_digit_mass: float
) -> dict:
    """Everything that changes a stored score; its hash names the store folder."""
    return {
        "engine": engine_identity,
        "capabilities": [[cap.id, cap.keyword] for cap in capabilities],
        "prompt_version": PROMPT_VERSION,
        "min_digit_mass": min_digit_mass,
    }


class ScoreStore:
    """One fingerprinted folder of score shards."""

    def __init__(self, root: str | Path, fingerprint: dict):
        self.fingerprint = fingerprint
        self.key = canonical_hash(fingerprint)
        self.path = Path(root) / self.key
        self.capabilities = [cap_id for cap_id, _ in fingerprint["capabilities"]]
        self.min_digit_mass = float(fingerprint["min_digit_mass"])

    def open(self) -> "ScoreStore":
        """Create the folder and its fingerprint file; refuse a folder whose fingerprint differs.

        Temporary files of writers that are gone (killed mid-write) are removed; a live writer's
        are left alone.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        marker = self.path / "fingerprint.json"
        if marker.exists():
            found = json.loads(marker.read_text())
            if canonical_hash(found) != self.key:
                raise RuntimeError(f"score store {self.path} holds another fingerprint; remove it")
        else:
            atomic_write_text(marker, json.dumps(self.fingerprint, indent=2, sort_keys=True))
        removed = remove_stale_temporaries(self.path) + remove_stale_temporaries(self.path / "jobs")
        if removed:
            logger.info(f"removed {len(removed)} temporary file(s) of interrupted writers in {self.path}")
        return self

    @staticmethod
    def plan(uids: Sequence[str], shard_size: int) -> list[Shard]:
        """Cut the pool into shards of ``shard_size`` consecutive samples."""
        if shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {shard_size}")
        shards = []
        for start in range(0, len(uids), shard_size):
            stop = min(start + shard_size, len(uids))
            shards.append(Shard(canonical_hash(list(uids[start:stop])), start, stop))
        return shards

    def shard_path(self, shard_id: str) -> Path:
        """Where the shard ``shard_id`` is (or will be) stored."""
        return self.path / f"shard-{shard_id}.parquet"

    def shard_versions(self) -> dict[str, int]:
        """Finished shard id -> modification time in ns (a rewritten shard gets a new one)."""
        versions = {}
        for path in self.path.glob(SHARD_GLOB):
            try:
                versions[path.name[len("shard-") : -len(".parquet")]] = path.stat().st_mtime_ns
            except FileNotFoundError:  # replaced between the listing and the stat
                continue
        return versions

    def done(self) -> set[str]:
        """Ids of finished shards."""
        return set(self.shard_versions())

    def write_shard(self, shard_id: str, result: ShardResult) -> Path:
        """Write one finished shard atomically."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        n, n_caps = len(result.uids), len(self.capabilities)
        probs = np.asarray(result.probs, dtype=np.float32).reshape(n, n_caps, 6)
        digits = summarize_digits(probs, self.min_digit_mass)
        table = pa.table(
            {
                "uid": pa.array(result.uids, pa.string()),
                "probs": _fixed_list(probs.reshape(n, -1), pa.float32()),
                "argmax": _fixed_list(digits.argmax, pa.int8()),
                "expected": _fixed_list(digits.expected, pa.float32()),
                "digit_mass": _fixed_list(digits.mass, pa.float32()),
                "styles": pa.array([list(s) for s in result.styles], pa.list_(pa.string())),
                "style_raw": pa.array(result.style_raw, pa.string()),
                "style_unmatched": pa.array(result.style_unmatched, pa.int32()),
                "error": pa.array(result.errors, pa.string()),
                "cause": pa.array(result.causes or [None] * n, pa.string()),
            },
            metadata={"capabilities": json.dumps(self.capabilities)},
        )
        final = self.shard_path(shard_id)
        atomic_write_with(final, lambda tmp: _write_synced(pq, table, tmp))
        return final

    def read_shard(self, shard_id: str) -> ShardResult:
        """The rows of one finished shard, in shard order."""
        return _read_file(self.shard_path(shard_id), len(self.capabilities))

    def rewrite_rows(self, shard_id: str, result: ShardResult) -> Path:
        """Replace the rows of ``result``'s uids in a finished shard (atomically, like a write)."""
        return self.write_shard(shard_id, self.read_shard(shard_id).with_rows_of(result))

    def read(self, uids: Sequence[str], shard_ids: Sequence[str] | None = None) -> ScoreTable:
        """Gather the stored scores of ``uids`` (in that order); absent ones are 'not scored'.

        Args:
            uids: the samples to read.
            shard_ids: read these shards only (default: every shard of the store); a uid stored in
                several shards takes a scored row over a failed one, else the last file's.
        """
        n, n_caps = len(uids), len(self.capabilities)
        probs = np.full((n, n_caps, 6), np.nan, dtype=np.float32)
        styles: list[tuple[str, ...]] = [()] * n
        style_raw: list[str | None] = [None] * n
        unmatched = np.zeros(n, dtype=np.int32)
        errors: list[str | None] = [NOT_SCORED] * n
        causes: list[str | None] = [None] * n
        has_scores = np.zeros(n, dtype=bool)
        position = {uid: i for i, uid in enumerate(uids)}
        paths = sorted(self.path.glob(SHARD_GLOB)) if shard_ids is None else [
            self.shard_path(shard_id) for shard_id in shard_ids if self.shard_path(shard_id).exists()
        ]
        for path in paths:
            rows = _read_file(path, n_caps)
            targets = np.array([position.get(uid, -1) for uid in rows.uids], dtype=np.int64)
            succeeded = np.array([err is None for err in rows.errors], dtype=bool)
            take = targets >= 0
            take[take] &= succeeded[take] | ~has_scores[targets[take]]
            for j in np.flatnonzero(take):
                i = targets[j]
                styles[i], style_raw[i] = tuple(rows.styles[j]), rows.style_raw[j]
                errors[i], causes[i] = rows.errors[j], (rows.causes or [None] * len(rows.uids))[j]
            probs[targets[take]] = rows.probs[take]
            unmatched[targets[take]] = np.asarray(rows.style_unmatched, dtype=np.int32)[take]
            has_scores[targets[take]] |= succeeded[take]
        return ScoreTable(
            uids=list(uids),
            capabilities=list(self.capabilities),
            probs=probs,
            digits=summarize_digits(probs, self.min_digit_mass),
            styles=styles,
            style_raw=style_raw,
            style_unmatched=unmatched,
            errors=errors,
            causes=causes,
        )


def _read_file(path: Path, n_caps: int) -> ShardResult:
    """One shard file as a :class:`ShardResult` (shards written before failure causes: none)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    uids = table.column("uid").to_pylist()
    flat = table.column("probs").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return ShardResult(
        uids=uids,
        probs=flat.astype(np.float32).reshape(len(uids), n_caps, 6),
        styles=[tuple(s) for s in table.column("styles").to_pylist()],
        style_raw=table.column("style_raw").to_pylist(),
        style_unmatched=table.column("style_unmatched").to_pylist(),
        errors=table.column("error").to_pylist(),
        causes=table.column("cause").to_pylist() if "cause" in table.column_names else None,
    )


def _fixed_list(matrix: np.ndarray, value_type: Any) -> Any:
    import pyarrow as pa

    matrix = np.ascontiguousarray(matrix)
    width = matrix.shape[1] if matrix.ndim == 2 else 1
    values = pa.array(matrix.reshape(-1), value_type)
    return pa.FixedSizeListArray.from_arrays(values, width)


def _write_synced(pq: Any, table: Any, path: Path) -> None:
    """Write a parquet table and fsync it, so the rename publishes a complete file."""
    pq.write_table(table, path)
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
