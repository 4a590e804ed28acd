"""The files a scoring job hands its workers: the job description and the samples (JSON lines, with
the byte offset of every line so a worker can read just its shards)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from mmssr_plugin.core.taxonomy import Capability
from mmssr_plugin.data.sample import Sample
from mmssr_plugin.scoring.config import ScorerConfig
from mmssr_plugin.scoring.store import Shard
from mmssr_plugin.utils.files import atomic_write, atomic_write_json


@dataclass(frozen=True)
class WorkerJob:
    """Everything a worker needs: scorer, capabilities, store, samples file and the shard plan."""

    scorer: ScorerConfig
    capabilities: list[Capability]
    store_root: Path
    fingerprint: dict[str, Any]
    samples: Path
    shards: list[Shard]
    workers: int

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {
            "scorer": self.scorer.to_dict(),
            "capabilities": [[c.id, c.keyword] for c in self.capabilities],
            "store_root": str(self.store_root),
            "fingerprint": self.fingerprint,
            "samples": str(self.samples),
            "shards": [asdict(s) for s in self.shards],
            "workers": self.workers,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> WorkerJob:
        """Rebuild from :meth:`to_dict` output."""
        return cls(
            scorer=ScorerConfig.from_dict(values["scorer"]),
            capabilities=[Capability(cap_id, keyword) for cap_id, keyword in values["capabilities"]],
            store_root=Path(values["store_root"]),
            fingerprint=values["fingerprint"],
            samples=Path(values["samples"]),
            shards=[Shard(s["id"], s["start"], s["stop"], tuple(s.get("retry", ())))
                    for s in values["shards"]],
            workers=int(values["workers"]),
        )

    def write(self, path: Path) -> None:
        """Write the job file atomically."""
        atomic_write_json(path, self.to_dict(), indent=None)

    @classmethod
    def read(cls, path: Path) -> WorkerJob:
        """Read a job file written by :meth:`write`."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def prepare_samples(jobs_dir: Path, samples: Sequence[Sample]) -> tuple[Path, np.ndarray]:
    """The pool's samples file in ``jobs_dir`` and its line offsets.

    The file is named by its content, so a sample whose problems or image paths changed is never
    read from an older file; it is written only when no run wrote the same content before. The
    lines are not kept in memory: they are serialised once to hash them (and again to write).

    Returns:
        the file and ``int64 [N + 1]`` byte offsets: sample ``i`` is bytes ``[o[i], o[i + 1])``.
    """
    digest = hashlib.sha256()
    offsets = np.zeros(len(samples) + 1, dtype=np.int64)
    for i, line in enumerate(_sample_lines(samples)):
        digest.update(line)
        offsets[i + 1] = offsets[i] + len(line)
    path = Path(jobs_dir) / f"samples-{digest.hexdigest()[:16]}.jsonl"
    if not path.exists():
        with atomic_write(path, "wb") as handle:
            handle.writelines(_sample_lines(samples))
    return path, offsets


def _sample_lines(samples: Sequence[Sample]) -> Iterator[bytes]:
    for sample in samples:
        yield (json.dumps(asdict(sample), ensure_ascii=False) + "\n").encode("utf-8")


def read_samples(path: Path, begin: int = 0, end: int | None = None) -> list[Sample]:
    """Read samples written by :func:`prepare_samples` (the lines in bytes ``[begin, end)``)."""
    samples = []
    with open(path, "rb") as handle:
        handle.seek(begin)
        data = handle.read() if end is None else handle.read(end - begin)
    for line in data.split(b"\n"):
        if not line:
            continue
        row = json.loads(line)
        for key in ("turns", "images", "problems"):
            row[key] = tuple(row[key])
        samples.append(Sample(**row))
    return samples
