"""The authors' pool file, streamed: per record its idx, its image source and its span in the file.

The pool is a JSON list of records (``idx``, ``image_source``, ``image``, ``conversations``, ...)
that can be gigabytes. Only each record's ``idx``, image source and character span are kept, so
the selected records' original text can later be copied verbatim (:mod:`.records`).
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from mmssr_plugin.data.sources import image_source_of
from mmssr_plugin.formats.authors.errors import AuthorsFormatError
from mmssr_plugin.formats.authors.json_list_stream import stream_records

CHUNK_CHARS = 8 * 2**20  # characters read per chunk when streaming the pool


@dataclass(frozen=True, eq=False)
class Pool:
    """What is kept of a pool file: one entry per record, in file order.

    Attributes:
        path: the pool file.
        idx: int64 ``[N]``, each record's ``idx``.
        source_codes: int32 ``[N]``, index into ``source_labels``.
        source_labels: image source names, in order of first appearance.
        spans: int64 ``[N, 2]``, each record's ``[start, end)`` character offsets in the file.
    """

    path: Path
    idx: np.ndarray
    source_codes: np.ndarray
    source_labels: tuple[str, ...]
    spans: np.ndarray

    def __len__(self) -> int:
        return len(self.idx)

    @cached_property
    def _lookup(self) -> _IdxLookup:
        return _IdxLookup(self.idx)

    def positions(self, idx: np.ndarray) -> np.ndarray:
        """Pool positions of the given idx values (int64), -1 where an idx is not in the pool."""
        return self._lookup(np.asarray(idx, dtype=np.int64))


class _IdxLookup:
    """idx -> pool position: a dense table when idx values are compact, else binary search."""

    def __init__(self, idx: np.ndarray) -> None:
        self.n = len(idx)
        self.low = int(idx.min()) if self.n else 0
        span = int(idx.max()) - self.low + 1 if self.n else 0
        self.table: np.ndarray | None = None
        if span <= 4 * self.n + 1024:
            self.table = np.full(span, -1, dtype=np.int64)
            self.table[idx - self.low] = np.arange(self.n, dtype=np.int64)
        else:
            self.order = np.argsort(idx, kind="stable")
            self.sorted = idx[self.order]

    def __call__(self, query: np.ndarray) -> np.ndarray:
        if self.n == 0:
            return np.full(len(query), -1, dtype=np.int64)
        if self.table is not None:
            shifted = query - self.low
            inside = (shifted >= 0) & (shifted < len(self.table))
            out = np.full(len(query), -1, dtype=np.int64)
            out[inside] = self.table[shifted[inside]]
            return out
        at = np.minimum(np.searchsorted(self.sorted, query), self.n - 1)
        return np.where(self.sorted[at] == query, self.order[at], -1)

    def first_duplicate(self, idx: np.ndarray) -> int | None:
        """The smallest idx value that occurs more than once, or None."""
        if self.table is not None:
            if int((self.table >= 0).sum()) == self.n:
                return None
            counts = np.bincount(idx - self.low)
            return int(np.flatnonzero(counts > 1)[0]) + self.low
        same = np.flatnonzero(self.sorted[1:] == self.sorted[:-1])
        return int(self.sorted[same[0]]) if len(same) else None


def read_pool(path: str | Path, chunk_chars: int = CHUNK_CHARS) -> Pool:
    """Stream a pool file (a JSON list of records) and keep idx, source and span per record.

    The source is the record's ``image_source``, else the first folder of its ``image`` path,
    else the pool file's stem.

    Args:
        path: the pool JSON file.
        chunk_chars: characters read at a time (tests use tiny values).

    Raises:
        AuthorsFormatError: unreadable file, not a JSON list, invalid or truncated JSON, a record
            that is not an object, a missing or non-integer idx, or a duplicate idx.
    """
    path = Path(path)
    idx, starts, ends, codes = array("q"), array("q"), array("q"), array("i")
    labels: dict[str, int] = {}
    try:
        with open(path, encoding="utf-8", newline="") as f:
            for number, start, end, record in stream_records(f, path, chunk_chars):
                value = record.get("idx")
                if type(value) is not int:  # excludes bool and float
                    what = "has no idx" if value is None else f"has a non-integer idx {value!r}"
                    raise AuthorsFormatError(f"{path}: record {number} {what}")
                source = record.get("image_source")
                if type(source) is not str or not source:
                    source = _record_source(record, path.stem)
                code = labels.get(source)
                if code is None:
                    code = labels[source] = len(labels)
                try:
                    idx.append(value)
                except OverflowError:
                    raise AuthorsFormatError(f"{path}: record {number} has idx {value} outside int64") from None
                starts.append(start)
                ends.append(end)
                codes.append(code)
    except OSError as err:
        raise AuthorsFormatError(f"cannot read pool {path}: {err.strerror or err}") from None
    except UnicodeDecodeError as err:
        raise AuthorsFormatError(f"{path}: not UTF-8 text ({err.reason})") from None
    pool = Pool(
        path=path,
        idx=np.frombuffer(idx, dtype=np.int64),
        source_codes=np.frombuffer(codes, dtype=np.int32),
        source_labels=tuple(labels),
        spans=np.stack([np.frombuffer(starts, dtype=np.int64), np.frombuffer(ends, dtype=np.int64)], axis=1),
    )
    duplicate = pool._lookup.first_duplicate(pool.idx)
    if duplicate is not None:
        where = np.flatnonzero(pool.idx == duplicate)[:2] + 1
        raise AuthorsFormatError(f"{path}: duplicate idx {duplicate} (records {where[0]} and {where[1]})")
    return pool


def _record_source(record: dict, pool_name: str) -> str:
    """The plugin's source rule: ``image_source``, else the image's first folder, else the pool name."""
    return image_source_of(record, record_images(record), pool_name, "image_source")


def record_images(record: dict) -> list[str]:
    """A record's image paths as written: its ``image`` string or the strings of its list."""
    image = record.get("image")
    if isinstance(image, str):
        return [image]
    if isinstance(image, list):
        return [item for item in image if isinstance(item, str)]
    return []
