"""The scoring-engine interface, and the file fingerprints engine identities are made of."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mmssr_plugin.core.style_parsing import StyleAnswer
from mmssr_plugin.core.taxonomy import Capability
from mmssr_plugin.data.sample import Sample

# Files at least this large are fingerprinted by size and three 1 MiB slices, not read whole.
_FULL_HASH_LIMIT = 64 * 2**20
_SLICE = 2**20
_HASH_CACHE: dict[tuple, str] = {}


class ScoringEngine(ABC):
    """A backend that rates samples per capability and names their interaction styles.

    ``score`` is the log-likelihood side (one next-token distribution per query), ``styles`` the
    generation side, in the manner of lm-evaluation-harness.
    """

    name: str = ""

    @abstractmethod
    def score(self, samples: Sequence[Sample], capabilities: Sequence[Capability]) -> np.ndarray:
        """Next-token probabilities of the digits after each capability query.

        Args:
            samples: valid samples.
            capabilities: capabilities, in order.

        Returns:
            float32 ``[N, C, 6]``: raw probabilities of the tokens ``"0".."5"``, not
            renormalised, so ``probs.sum(-1)`` is the digit mass.
        """

    @abstractmethod
    def styles(self, samples: Sequence[Sample]) -> list[StyleAnswer]:
        """Generate and parse each sample's interaction styles."""

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """Everything that changes a score (model and adapter with file hashes, quantization,
        template, dtype, styler, prompt version), as plain JSON data for fingerprints."""

    def score_and_style(
        self, samples: Sequence[Sample], capabilities: Sequence[Capability]
    ) -> tuple[np.ndarray, list[StyleAnswer]]:
        """Both calls at once; engines that can share work between them override this."""
        return self.score(samples, capabilities), self.styles(samples)


def path_fingerprint(name_or_path: str | None) -> dict[str, Any] | None:
    """Describe a model or adapter: its name and, when it is a local folder or file, a content hash.

    Files up to 64 MiB are hashed whole; larger ones (weights) by size and their first, middle and
    last MiB, which changes with any retrained checkpoint while staying cheap for 15 GB models.
    Hidden files and ``*.md`` are ignored. Hub ids get no hash (``"sha256": None``).
    """
    if not name_or_path:
        return None
    path = Path(name_or_path).expanduser()
    if not path.exists():
        return {"name": str(name_or_path), "sha256": None}
    files = [path] if path.is_file() else sorted(
        p for p in path.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() != ".md"
    )
    digest = hashlib.sha256()
    for file in files:
        digest.update(f"{file.name}\0{_file_hash(file)}\0".encode())
    return {"name": str(name_or_path), "sha256": digest.hexdigest()}


def _file_hash(file: Path) -> str:
    stat = file.stat()
    key = (str(file.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _HASH_CACHE:
        digest = hashlib.sha256(str(stat.st_size).encode())
        with open(file, "rb") as handle:
            if stat.st_size <= _FULL_HASH_LIMIT:
                for block in iter(lambda: handle.read(_SLICE), b""):
                    digest.update(block)
            else:
                for offset in (0, stat.st_size // 2, stat.st_size - _SLICE):
                    handle.seek(offset)
                    digest.update(handle.read(_SLICE))
        _HASH_CACHE[key] = digest.hexdigest()
    return _HASH_CACHE[key]

