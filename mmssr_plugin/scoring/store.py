"""The score store: sharded, columnar, resumable, keyed by a fingerprint of everything that
changes a score.

Layout: ``<root>/<key>/fingerprint.json`` and one ``shard-<id>.parquet`` per finished shard. A
shard is a fixed run of consecutive samples of the pool; its id hashes its sample uids, so the same
pool always cuts into the same shards (bit-identical batches after a restart) and a grown pool
reuses the shards it shares. A shard file appears atomically (written aside, then renamed) only
once it is complete: a crash loses at most the shards in flight.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from mmssr_plugin.core.taxonomy import PROMPT_VERSION, Capability
from mmssr_plugin.scoring.digits import DigitScores, summarize_digits
from mmssr_plugin.utils.files import atomic_write_text, atomic_write_with
from mmssr_plugin.utils.hashing import canonical_hash

SHARD_GLOB = "shard-*.parquet"


@dataclass(frozen=True)
class Shard:
    """A run of consecutive pool positions scored together."""

    id: str
    start: int
    stop: int


@dataclass(frozen=True)
class ShardResult:
    """What a worker computed for one shard (rows in shard order)."""

    uids: list[str]
    probs: np.ndarray  # float32 [n, C, 6]; NaN rows for failed samples
    styles: list[tuple[str, ...]]
    style_raw: list[str | None]
    style_unmatched: list[int]
    errors: list[str | None]


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

    @property
    def scored(self) -> np.ndarray:
        """Boolean [N]: the sample has scores (it did not fail and was not left out)."""
        return np.array([err is None for err in self.errors], dtype=bool)


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
        """Create the folder and its fingerprint file; refuse a folder whose fingerprint differs."""
        self.path.mkdir(parents=True, exist_ok=True)
        marker = self.path / "fingerprint.json"
        if marker.exists():
            found = json.loads(marker.read_text())
            if canonical_hash(found) != self.key:
                raise RuntimeError(f"score store {self.path} holds another fingerprint; remove it")
        else:
            atomic_write_text(marker, json.dumps(self.fingerprint, indent=2, sort_keys=True))
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

    def done(self) -> set[str]:
        """Ids of finished shards."""
        return {p.name[len("shard-") : -len(".parquet")] for p in self.path.glob(SHARD_GLOB)}

    def write_shard(self, shard_id: str, result: ShardResult) -> Path:
        """Write one finished shard atomically."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        n_caps = len(self.capabilities)
        probs = np.asarray(result.probs, dtype=np.float32).reshape(len(result.uids), n_caps, 6)
        digits = summarize_digits(probs, self.min_digit_mass)
        table = pa.table(
            {
                "uid": pa.array(result.uids, pa.string()),
                "probs": _fixed_list(probs.reshape(len(result.uids), -1), pa.float32()),
                "argmax": _fixed_list(digits.argmax, pa.int8()),
                "expected": _fixed_list(digits.expected, pa.float32()),
                "digit_mass": _fixed_list(digits.mass, pa.float32()),
                "styles": pa.array([list(s) for s in result.styles], pa.list_(pa.string())),
                "style_raw": pa.array(result.style_raw, pa.string()),
                "style_unmatched": pa.array(result.style_unmatched, pa.int32()),
                "error": pa.array(result.errors, pa.string()),
            },
            metadata={"capabilities": json.dumps(self.capabilities)},
        )
        final = self.shard_path(shard_id)
        atomic_write_with(final, lambda tmp: _write_synced(pq, table, tmp))
        return final

    def read(self, uids: Sequence[str]) -> ScoreTable:
        """Gather the stored scores of ``uids`` (in that order); absent ones are 'not scored'."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        files = sorted(self.path.glob(SHARD_GLOB))
        n, n_caps = len(uids), len(self.capabilities)
        probs = np.full((n, n_caps, 6), np.nan, dtype=np.float32)
        styles: list[tuple[str, ...]] = [()] * n
        style_raw: list[str | None] = [None] * n
        unmatched = np.zeros(n, dtype=np.int32)
        errors: list[str | None] = ["not scored"] * n
        if files:
            table = pa.concat_tables(pq.read_table(f) for f in files)
            position = {uid: i for i, uid in enumerate(uids)}
            rows = [position.get(uid, -1) for uid in table.column("uid").to_pylist()]
            stored = np.asarray(rows, dtype=np.int64)
            keep = stored >= 0
            targets = stored[keep]
            flat = table.column("probs").combine_chunks().flatten().to_numpy(zero_copy_only=False)
            probs[targets] = flat.reshape(len(rows), n_caps, 6)[keep]
            unmatched[targets] = table.column("style_unmatched").to_numpy()[keep]
            for target, row_styles, raw, err in zip(
                targets,
                _select(table.column("styles").to_pylist(), keep),
                _select(table.column("style_raw").to_pylist(), keep),
                _select(table.column("error").to_pylist(), keep),
            ):
                styles[target], style_raw[target], errors[target] = tuple(row_styles), raw, err
        return ScoreTable(
            uids=list(uids),
            capabilities=list(self.capabilities),
            probs=probs,
            digits=summarize_digits(probs, self.min_digit_mass),
            styles=styles,
            style_raw=style_raw,
            style_unmatched=unmatched,
            errors=errors,
        )


def _select(values: list, keep: np.ndarray) -> Iterable:
    return (value for value, k in zip(values, keep) if k)


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
