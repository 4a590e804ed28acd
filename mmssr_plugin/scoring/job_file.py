"""The files a scoring job hands its worker processes: the job description and the samples."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

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


def write_samples(folder: Path, samples: Sequence[Sample]) -> Path:
    """Write samples as JSON lines for worker processes (atomically), named by their content so a
    sample whose problems or image paths changed is never read from an older file."""
    lines = [json.dumps(asdict(sample), ensure_ascii=False) + "\n" for sample in samples]
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("utf-8"))
    path = Path(folder) / f"samples-{digest.hexdigest()[:16]}.jsonl"
    if not path.exists():
        with atomic_write(path) as handle:
            handle.writelines(lines)
    return path


def read_samples(path: Path) -> list[Sample]:
    """Read samples written by :func:`write_samples`."""
    samples = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            for key in ("turns", "images", "problems"):
                row[key] = tuple(row[key])
            samples.append(Sample(**row))
    return samples
