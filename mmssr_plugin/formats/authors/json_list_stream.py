"""Streaming the objects of a top-level JSON list, with each object's character span in the file.

Text is read in chunks and decoded one record at a time, so a pool of gigabytes never sits in
memory whole; a record cut by a chunk boundary is decoded again after the next read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from mmssr_plugin.formats.authors.errors import AuthorsFormatError

_WS = re.compile(r"[ \t\n\r]*")
_NEXT_RECORD = re.compile(r"[ \t\n\r]*,[ \t\n\r]*(?=\{)")  # "," between two records
_MAX_TOKEN = 16  # a decode error this close to the end of the buffer may be a cut token


def stream_records(f: TextIO, path: Path, chunk_chars: int) -> Iterator[tuple[int, int, int, dict]]:
    """Yield ``(record number, start, end, record)`` for each object of a top-level JSON list.

    ``start``/``end`` are character offsets in the file. The buffer keeps only the unconsumed
    tail of the text read so far; a record cut by a chunk boundary is decoded again after the
    next read (the read size doubles while one record does not fit).
    """
    decoder = json.JSONDecoder()
    scan = decoder.scan_once  # what raw_decode calls, minus a Python frame per record
    whitespace = _WS.match
    next_record = _NEXT_RECORD.match
    first = f.read(chunk_chars)
    eof = not first
    base = 1 if first.startswith("\ufeff") else 0  # offsets count a byte-order mark, as the output pass does
    buf = first[base:]
    pos = 0
    number = 0
    state = "open"  # open -> first (a record or "]") -> sep ("," or "]") -> record -> sep ...

    def refill(minimum: int) -> None:
        nonlocal buf, base, pos, eof
        more = f.read(max(chunk_chars, minimum))
        eof = not more
        buf = buf[pos:] + more
        base += pos
        pos = 0

    while True:
        pos = whitespace(buf, pos).end()
        if pos >= len(buf):
            if eof:
                if state == "open":
                    raise AuthorsFormatError(f"{path}: empty file, expected a JSON list of records")
                if state != "done":
                    raise AuthorsFormatError(f"{path}: truncated file (the JSON list is not closed)")
                return
            refill(0)
            continue
        char = buf[pos]
        if state == "done":
            raise AuthorsFormatError(f"{path}: extra data after the JSON list at character {base + pos}")
        if state == "open":
            if char != "[":
                raise AuthorsFormatError(f"{path}: not a JSON list (starts with {char!r})")
            pos += 1
            state = "first"
        elif state == "sep":
            if char not in ",]":
                raise AuthorsFormatError(
                    f"{path}: expected ',' or ']' after record {number} at character {base + pos}"
                )
            pos += 1
            state = "record" if char == "," else "done"
        elif char == "]" and state == "first":
            pos += 1
            state = "done"
        elif char != "{":
            raise AuthorsFormatError(f"{path}: record {number + 1} is not an object (starts with {char!r})")
        else:
            while True:  # fast path: decode records while they follow each other in the buffer
                try:
                    record, end = scan(buf, pos)
                except (json.JSONDecodeError, StopIteration):
                    break
                number += 1
                yield number, base + pos, base + end, record
                following = next_record(buf, end)
                if following is None:
                    pos = end
                    state = "sep"
                    break
                pos = following.end()
                state = "record"
            if state != "sep":  # the decode at pos failed
                err = _decode_error(decoder, buf, pos)
                unterminated = err.msg.startswith("Unterminated")
                if not eof and (unterminated or len(buf) - err.pos < _MAX_TOKEN):
                    refill(2 * (len(buf) - pos))  # maybe cut by the chunk end: read on, retry
                    continue
                if unterminated or not buf[err.pos :].strip():
                    raise AuthorsFormatError(
                        f"{path}: truncated file (record {number + 1} at character {base + pos} is incomplete)"
                    )
                raise AuthorsFormatError(
                    f"{path}: invalid JSON in record {number + 1} at character {base + err.pos}: {err.msg}"
                )


def _decode_error(decoder: json.JSONDecoder, buf: str, pos: int) -> json.JSONDecodeError:
    """Why the JSON value at ``pos`` does not decode."""
    try:
        decoder.raw_decode(buf, pos)
    except json.JSONDecodeError as err:
        return err
    return json.JSONDecodeError("does not decode", buf, pos)
