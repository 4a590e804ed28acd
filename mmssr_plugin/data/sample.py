"""The data model of the data layer: a sample, a resolved dataset, an unparsable line, the error.

A :class:`Sample` is one raw row of a dataset, never dropped: a broken row carries its problems,
so row indices keep mapping to raw rows. Problem strings have the form ``"<kind>"`` or
``"<kind>: <detail>"``; the kinds are stable and greppable:

- ``not a dict row``, ``invalid json line``, ``missing column``, ``bad messages``,
  ``malformed turn``, ``unknown role``, ``wrong role order`` (row structure);
- ``empty conversation``, ``odd turn count``, ``empty turn text`` (conversation);
- ``bad images column``, ``bad image value``, ``image placeholder mismatch``, ``missing image``,
  ``unreadable image`` (images).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class DatasetError(ValueError):
    """A dataset cannot be read at all (clear, actionable message)."""


@dataclass(frozen=True)
class Sample:
    """One raw row of a dataset, normalised for scoring.

    Attributes:
        uid: stable id ``"{dataset}:{row}:{content_hash}"`` (hash: 12 hex chars of sha1 over the
            canonical JSON of the raw row).
        dataset: dataset name in ``dataset_info.json`` (or the pool file's stem).
        row: index of the raw row in the dataset's file(s), counting every row, broken ones too.
        turns: alternating user/assistant texts, user first (system turns removed).
        images: image paths as resolved against ``media_dir`` the way LLaMA-Factory does it.
        source: image source used for style bins.
        system: the system prompt of the row, if any.
        problems: reasons this sample is unusable (empty when it is valid).
    """

    uid: str
    dataset: str
    row: int
    turns: tuple[str, ...]
    images: tuple[str, ...] = ()
    source: str = ""
    system: str | None = None
    problems: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when the sample has no problem."""
        return not self.problems


@dataclass(frozen=True)
class DatasetSpec:
    """One ``dataset_info.json`` entry, resolved against ``dataset_dir``.

    Attributes:
        name: the entry's name.
        file_paths: the data files, in reading order (a folder's files sorted by name).
        formatting: ``"sharegpt"``, ``"openai"`` or ``"alpaca"``.
        columns: column names with LLaMA-Factory's defaults applied (None: not used).
        tags: sharegpt/openai tags with LLaMA-Factory's defaults applied (None: not used).
        entry: the raw entry, for provenance.
    """

    name: str
    file_paths: tuple[Path, ...]
    formatting: str
    columns: dict[str, str | None]
    tags: dict[str, str | None]
    entry: dict


@dataclass(frozen=True)
class InvalidLine:
    """A JSON-lines line that does not parse; the row readers yield it in place of a row."""

    text: str
    error: str


def content_hash(row: Any) -> str:
    """12 hex chars of sha1 over the canonical JSON of a raw row (sorted keys, UTF-8 as is)."""
    if isinstance(row, InvalidLine):
        row = row.text
    text = json.dumps(row, sort_keys=True, ensure_ascii=False, default=_json_default)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def _json_default(value: Any) -> Any:
    """JSON stand-ins for parquet values JSON lacks (binary, dates, decimals)."""
    return value.hex() if isinstance(value, (bytes, bytearray)) else str(value)
