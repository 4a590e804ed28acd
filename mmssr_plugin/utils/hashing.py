"""Canonical content hashes used for fingerprints, selection keys and shard ids."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_hash(payload: Any, length: int = 16) -> str:
    """Hex sha256 of the canonical JSON form of ``payload`` (sorted keys), truncated."""
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]
