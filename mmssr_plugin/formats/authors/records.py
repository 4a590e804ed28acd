"""Copying records out of the authors' pool by their character spans: the selected subset's file,
and the few records a report shows, read back.

The pool file is streamed once in ascending span order; the subset is the selected records'
original text, verbatim, as a JSON list.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import numpy as np

from mmssr_plugin.formats.authors.errors import AuthorsFormatError
from mmssr_plugin.formats.authors.pool import CHUNK_CHARS, Pool
from mmssr_plugin.utils.files import atomic_write_with


def write_selected(pool: Pool, positions: np.ndarray, output: str | Path, chunk_chars: int = CHUNK_CHARS) -> int:
    """Write the records at ``positions`` (ascending) as a JSON list, copying their text verbatim.

    The pool file is streamed once; the output is written to a temporary file in the same folder
    and renamed into place.

    Returns:
        The number of records written.

    Raises:
        AuthorsFormatError: positions not ascending or out of range, or a read/write failure.
    """
    positions = _check_positions(pool, positions)
    output = Path(output)

    def write(temporary: Path) -> None:
        with open(pool.path, encoding="utf-8", newline="") as source, open(
            temporary, "w", encoding="utf-8", newline=""
        ) as sink:
            sink.write("[")
            copier = _SpanCopier(source, sink.write, chunk_chars)
            separator = "\n"
            for start, end in pool.spans[positions].tolist():
                sink.write(separator)
                copier.copy(start, end)
                separator = ",\n"
            sink.write("\n]\n" if len(positions) else "]\n")

    try:
        atomic_write_with(output, write)
    except OSError as err:
        raise AuthorsFormatError(f"cannot write {output}: {err.strerror or err}") from None
    return len(positions)


def read_records(pool: Pool, positions: np.ndarray, chunk_chars: int = CHUNK_CHARS) -> list[dict]:
    """The records at ``positions`` (ascending), decoded again from their spans in the pool file.

    The file is read once, up to the last wanted record; only the wanted records are decoded.

    Raises:
        AuthorsFormatError: positions not ascending or out of range, a read failure, or a pool
            file that changed since it was read.
    """
    positions = _check_positions(pool, positions)
    records: list[dict] = []
    pieces: list[str] = []
    try:
        with open(pool.path, encoding="utf-8", newline="") as source:
            copier = _SpanCopier(source, pieces.append, chunk_chars)
            for position, (start, end) in zip(positions.tolist(), pool.spans[positions].tolist()):
                copier.copy(start, end)
                text = "".join(pieces)
                pieces.clear()
                try:
                    record = json.loads(text)
                except json.JSONDecodeError:
                    record = None
                if not isinstance(record, dict) or record.get("idx") != int(pool.idx[position]):
                    raise AuthorsFormatError(f"the pool file {pool.path} changed since it was read")
                records.append(record)
    except OSError as err:
        raise AuthorsFormatError(f"cannot read pool {pool.path}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise AuthorsFormatError(f"the pool file {pool.path} changed since it was read") from None
    return records


def _check_positions(pool: Pool, positions: np.ndarray) -> np.ndarray:
    """``positions`` as int64, checked to be ascending, unique pool positions."""
    positions = np.asarray(positions, dtype=np.int64)
    if len(positions) and (positions[0] < 0 or positions[-1] >= len(pool) or (np.diff(positions) <= 0).any()):
        raise AuthorsFormatError("selected positions must be ascending, unique pool positions")
    return positions


class _SpanCopier:
    """Copies character ranges of a text stream, in ascending order, reading it once."""

    def __init__(self, source: TextIO, write: Callable[[str], object], chunk_chars: int) -> None:
        self.source = source
        self.write = write
        self.chunk_chars = chunk_chars
        self.buf = ""
        self.base = 0  # file offset of buf[0]

    def copy(self, start: int, end: int) -> None:
        while start < end:
            local = start - self.base
            if local >= len(self.buf):
                self.base += len(self.buf)
                self.buf = self.source.read(self.chunk_chars)
                if not self.buf:
                    raise AuthorsFormatError("the pool file changed since it was read (ended early)")
                continue
            stop = min(end - self.base, len(self.buf))
            self.write(self.buf[local:stop])
            start = self.base + stop
