"""Reading the authors' pool and score files, and writing a selected subset, fast and lean.

The pool is a JSON list of records (``idx``, ``image_source``, ``image``, ``conversations``, ...)
that can be gigabytes. It is streamed: text is read in chunks and decoded one record at a time;
per record only its ``idx``, its image source and its character span in the file are kept, so the
output step copies the selected records' original text verbatim in a second sequential pass
(and the report re-reads the few records it shows the same way).

Score files are JSON lines ``{"idx": int, "pred_response": str}``, one ``<capability>.jsonl`` per
capability plus ``style.jsonl``. They are parsed by Arrow's JSON reader (C++, GIL released) in a
second thread while the pool streams in the first; each *distinct* response is interpreted once
in Python and mapped back with numpy, so no Python code runs per line.

Capability score rule: the response is a score when Python's ``int(response)`` succeeds and lies in
0..5. Because the real ``int`` is applied (once per distinct string), its acceptance is replicated
exactly: surrounding whitespace, an optional sign, leading zeros, underscores between digits
(``"0_3"``) and non-ASCII decimal digits (``"３"``) all parse as Python parses them; ``"-0"`` is 0.
Anything else (``"3.0"``, ``"three"``, ``""``, ``"6"``, a null or absent response) is missing (NaN)
and counted as unparseable.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
from array import array
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence, TextIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from mmssr_plugin.data.samples import image_source_of
from mmssr_plugin.selection.sampler import StyleBins
from mmssr_plugin.core.taxonomy import STYLES

CHUNK_CHARS = 8 * 2**20  # characters read per chunk when streaming the pool
STYLE_FILE = "style.jsonl"
_SCORE_SCHEMA = pa.schema([("idx", pa.int64()), ("pred_response", pa.string())])
_WS = re.compile(r"[ \t\n\r]*")
_NEXT_RECORD = re.compile(r"[ \t\n\r]*,[ \t\n\r]*(?=\{)")  # "," between two records
_MAX_TOKEN = 16  # a decode error this close to the end of the buffer may be a cut token
_STYLE_SET = frozenset(STYLES)
_SCORE_VALUES = np.array([0, 1, 2, 3, 4, 5, np.nan], dtype=np.float32)  # by int8 code; -1 -> NaN


class AuthorsFormatError(ValueError):
    """A pool or score file cannot be used; the message is one line saying why."""


# --------------------------------------------------------------------------------------------
# Pool


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
            for number, start, end, record in _stream_records(f, path, chunk_chars):
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
    """``samples._source``: ``image_source``, else the image's first folder, else the pool name."""
    return image_source_of(record, record_images(record), pool_name, "image_source")


def record_images(record: dict) -> list[str]:
    """A record's image paths as written: its ``image`` string or the strings of its list."""
    image = record.get("image")
    if isinstance(image, str):
        return [image]
    if isinstance(image, list):
        return [item for item in image if isinstance(item, str)]
    return []


def _stream_records(f: TextIO, path: Path, chunk_chars: int) -> Iterator[tuple[int, int, int, dict]]:
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


# --------------------------------------------------------------------------------------------
# Score files


@dataclass(frozen=True)
class FileStats:
    """Counts from one score file.

    Attributes:
        name: capability id, or ``"style"``.
        path: the file.
        lines: records in the file.
        unparseable: lines with a pool idx whose response is not usable (not a score 0..5 for a
            capability; no recognised style for ``style``).
        missing: pool samples with no line in the file.
        unknown: lines whose idx is not in the pool.
        unmatched: style only: comma-separated pieces that match no style (summed over pool lines).
    """

    name: str
    path: Path
    lines: int
    unparseable: int
    missing: int
    unknown: int
    unmatched: int = 0


@dataclass
class AuthorsScores:
    """Everything the sampler needs, read from a score folder.

    Attributes:
        capabilities: capability ids, the column order of ``scores``.
        scores: float32 ``[N, C]``, NaN where missing or unparseable.
        bins: ``"{style}+{source}"`` bins per pool sample.
        files: per-file counts, capabilities first then ``style``.
    """

    capabilities: tuple[str, ...]
    scores: np.ndarray
    bins: StyleBins
    files: list[FileStats]


def score_file_paths(score_dir: str | Path, capabilities: Sequence[str]) -> dict[str, Path]:
    """The files to read, name -> path (capabilities in order, then ``style``).

    Raises:
        AuthorsFormatError: if the folder or any file is missing (all missing ones are named).
    """
    folder = Path(score_dir)
    if "style" in capabilities:
        raise AuthorsFormatError(f"a capability cannot be called 'style': {STYLE_FILE} holds the styles")
    if not folder.is_dir():
        raise AuthorsFormatError(f"score folder {folder} does not exist")
    paths = {cap: folder / f"{cap}.jsonl" for cap in capabilities}
    paths["style"] = folder / STYLE_FILE
    missing = [path.name for path in paths.values() if not path.is_file()]
    if missing:
        raise AuthorsFormatError(f"missing score files in {folder}: {', '.join(missing)}")
    return paths


def read_scores(score_dir: str | Path, pool: Pool, capabilities: Sequence[str]) -> AuthorsScores:
    """Read ``<capability>.jsonl`` for each capability and ``style.jsonl`` against a pool.

    Raises:
        AuthorsFormatError: missing files, malformed lines, or a duplicate idx in a file.
    """
    paths = score_file_paths(score_dir, capabilities)
    return assemble_scores(pool, capabilities, load_score_files(paths))


def read_pool_and_scores(
    pool_path: str | Path, score_dir: str | Path, capabilities: Sequence[str], chunk_chars: int = CHUNK_CHARS
) -> tuple[Pool, AuthorsScores]:
    """``read_pool`` and ``read_scores`` at once: the score files are parsed in a second thread.

    Arrow's JSON reader releases the GIL, so on two cores the score files cost little extra wall
    time on top of streaming the pool.

    Raises:
        AuthorsFormatError: as ``read_pool`` and ``read_scores`` (a pool error is raised first).
    """
    paths = score_file_paths(score_dir, capabilities)
    stop = threading.Event()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mmssr-scores") as executor:
        loading = executor.submit(load_score_files, paths, stop)
        try:
            pool = read_pool(pool_path, chunk_chars)
        except BaseException:
            stop.set()
            raise
        loaded = loading.result()
    return pool, assemble_scores(pool, capabilities, loaded)


def parse_score(text: str | None) -> float:
    """A response's score: ``int(text)`` if that works and lies in 0..5, else NaN."""
    try:
        value = int(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return float(value) if 0 <= value <= 5 else math.nan


def parse_styles(text: str | None) -> tuple[tuple[str, ...], int]:
    """Split a styler response on commas, trim, match the 9 styles.

    Returns:
        ``(styles, unmatched)``: matched styles in order without duplicates, and the number of
        non-empty pieces that match no style (matching is exact, case-sensitive).
    """
    styles: list[str] = []
    unmatched = 0
    for piece in (text or "").split(","):
        piece = piece.strip()
        if piece in _STYLE_SET:
            if piece not in styles:
                styles.append(piece)
        elif piece:
            unmatched += 1
    return tuple(styles), unmatched


@dataclass(frozen=True, eq=False)
class LoadedFile:
    """One score file, parsed without the pool.

    Attributes:
        name: capability id or ``"style"``.
        path: the file.
        idx: int64 idx per line; the very same array object as the previous file's when equal,
            so it is matched against the pool once.
        codes: capability: int8 score per line, -1 when unusable; style: int64 index into
            ``styles`` per line.
        styles: style only: ``parse_styles`` of each distinct response, then ``((), 0)`` for
            lines without a response.
    """

    name: str
    path: Path
    idx: np.ndarray
    codes: np.ndarray
    styles: tuple[tuple[tuple[str, ...], int], ...] = ()


def load_score_files(paths: Mapping[str, Path], stop: threading.Event | None = None) -> list[LoadedFile]:
    """Parse score files (name -> path, ``"style"`` for the style file) in order.

    Args:
        paths: as returned by ``score_file_paths``.
        stop: when set, the remaining files are skipped (the caller failed elsewhere).
    """
    loaded: list[LoadedFile] = []
    previous: np.ndarray | None = None
    for name, path in paths.items():
        if stop is not None and stop.is_set():
            break
        table = _read_jsonl(path)
        idx = _to_numpy(table.column("idx"), np.int64)
        if previous is not None and np.array_equal(previous, idx):
            idx = previous
        previous = idx
        responses = table.column("pred_response").combine_chunks()
        del table
        pa.default_memory_pool().release_unused()  # mimalloc keeps freed parser blocks otherwise
        if name == "style":
            distinct, codes = _distinct(responses)
            parsed = tuple(parse_styles(text) for text in distinct) + (((), 0),)
            loaded.append(LoadedFile(name, path, idx, codes, parsed))
        else:
            loaded.append(LoadedFile(name, path, idx, _score_codes(responses)))
    return loaded


def assemble_scores(pool: Pool, capabilities: Sequence[str], loaded: Sequence[LoadedFile]) -> AuthorsScores:
    """Match loaded files to the pool: the score matrix, the style bins and per-file counts.

    Raises:
        AuthorsFormatError: a duplicate idx in a file.
    """
    n = len(pool)
    scores = np.full((n, len(capabilities)), np.nan, dtype=np.float32)
    column_of = {cap: j for j, cap in enumerate(capabilities)}
    matched: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    files: list[FileStats] = []
    bins: StyleBins | None = None
    for file in loaded:
        if id(file.idx) not in matched:
            matched[id(file.idx)] = _match_pool(file.idx, pool, file.path)
        positions, in_pool = matched[id(file.idx)]
        codes = file.codes[in_pool]
        counts = dict(lines=len(file.idx), missing=n - len(positions), unknown=len(file.idx) - len(positions))
        if file.name == "style":
            has_style = np.array([bool(styles) for styles, _ in file.styles])
            unmatched = np.array([count for _, count in file.styles], dtype=np.int64)
            response = np.full(n, len(file.styles) - 1, dtype=np.int64)  # "no response" by default
            response[positions] = codes
            bins = _expand_bins(response, pool, [styles for styles, _ in file.styles])
            counts.update(unparseable=int((~has_style[codes]).sum()), unmatched=int(unmatched[codes].sum()))
        else:
            scores[positions, column_of[file.name]] = _SCORE_VALUES[codes]
            counts.update(unparseable=int((codes < 0).sum()))
        files.append(FileStats(name=file.name, path=file.path, **counts))
    if bins is None or len(files) != len(capabilities) + 1:
        raise AuthorsFormatError("score files were not all loaded")  # only after a cancelled load
    return AuthorsScores(tuple(capabilities), scores, bins, files)


def _read_jsonl(path: Path) -> pa.Table:
    """Arrow table with ``idx`` (int64) and ``pred_response`` (string) of a JSON-lines file."""
    if path.stat().st_size == 0:
        return _SCORE_SCHEMA.empty_table()
    try:
        table = pajson.read_json(
            path,
            # One thread: the pool is streamed on the other core; small blocks keep memory low.
            read_options=pajson.ReadOptions(use_threads=False),
            parse_options=pajson.ParseOptions(
                explicit_schema=_SCORE_SCHEMA, unexpected_field_behavior="ignore"
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise AuthorsFormatError(f"{path}: not JSON lines of {{idx, pred_response}}: {reason}") from None
    except OSError as err:
        raise AuthorsFormatError(f"cannot read {path}: {err}") from None
    nulls = table.column("idx").null_count
    if nulls:
        first = pc.index(pc.is_null(table.column("idx")), True).as_py()
        raise AuthorsFormatError(f"{path}: line {first + 1} has no integer idx ({nulls} such lines)")
    return table


def _match_pool(idx: np.ndarray, pool: Pool, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Map a file's idx to pool positions.

    Returns:
        ``(positions, in_pool)``: pool positions of the lines whose idx is in the pool, and the
        mask of those lines.

    Raises:
        AuthorsFormatError: if an idx occurs twice in the file.
    """
    where = pool.positions(idx)
    in_pool = where >= 0
    positions = where[in_pool]
    seen = np.bincount(positions, minlength=len(pool))
    duplicate = None
    if len(positions) and seen.max() > 1:
        duplicate = int(pool.idx[int(np.argmax(seen > 1))])
    else:
        outside, counts = np.unique(idx[~in_pool], return_counts=True)
        if len(counts) and counts.max() > 1:
            duplicate = int(outside[int(np.argmax(counts > 1))])
    if duplicate is not None:
        lines = np.flatnonzero(idx == duplicate)[:2] + 1
        raise AuthorsFormatError(f"{path}: duplicate idx {duplicate} (lines {lines[0]} and {lines[1]})")
    return positions, in_pool


def _score_codes(responses: pa.StringArray) -> np.ndarray:
    """int8 score per response, -1 when ``parse_score`` gives NaN.

    Fast path: a one-byte response is a score exactly when it is one of ``0``..``5`` (that is
    what ``int`` accepts of single ASCII characters), read straight from Arrow's buffers. The
    other responses are parsed once per distinct string with ``parse_score``.
    """
    n = len(responses)
    codes = np.full(n, -1, dtype=np.int8)
    if n == 0:
        return codes
    _, offsets_buf, data_buf = responses.buffers()
    start = responses.offset
    offsets = np.frombuffer(offsets_buf, dtype=np.int32)[start : start + n + 1]
    lengths = np.diff(offsets)
    valid = _valid(responses)
    single = np.flatnonzero((lengths == 1) & valid)
    if len(single):
        digit = np.frombuffer(data_buf, dtype=np.uint8)[offsets[single]] - np.uint8(ord("0"))
        ok = digit <= 5  # bytes below "0" wrap around to large values
        codes[single[ok]] = digit[ok]
    others = np.flatnonzero((lengths != 1) & valid)
    if len(others):
        # from_buffers, not pa.array: converting a numpy array makes pyarrow import pandas (0.3 s)
        indices = pa.Array.from_buffers(pa.int64(), len(others), [None, pa.py_buffer(others.astype(np.int64))])
        distinct, which = _distinct(responses.take(indices))
        lookup = np.array([parse_score(text) for text in distinct] + [math.nan])
        codes[others] = np.where(np.isnan(lookup), -1, lookup).astype(np.int8)[which]
    return codes


def _distinct(column: pa.Array) -> tuple[list[str | None], np.ndarray]:
    """Distinct strings of a column and each row's code into them (nulls get ``len(distinct)``)."""
    encoded = pc.dictionary_encode(column)
    distinct = encoded.dictionary.to_pylist()
    codes = _to_numpy(encoded.indices, np.int32).astype(np.int64)
    codes[~_valid(encoded.indices)] = len(distinct)
    return distinct, codes


def _valid(array: pa.Array) -> np.ndarray:
    """Bool mask of the non-null entries (unpacked from the bitmap; ``is_valid().to_numpy()`` is slow)."""
    if not array.null_count:
        return np.ones(len(array), dtype=bool)
    bits = np.unpackbits(np.frombuffer(array.buffers()[0], dtype=np.uint8), bitorder="little")
    return bits[array.offset : array.offset + len(array)].astype(bool)


def _to_numpy(array: pa.Array | pa.ChunkedArray, dtype: type[np.generic]) -> np.ndarray:
    """A fixed-width Arrow array's values as numpy, read from its buffer (null slots: any value).

    pyarrow's own ``to_numpy`` imports pandas (0.3 s and 40 MB) when it is installed.
    """
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    data = array.buffers()[1]
    if data is None or len(array) == 0:
        return np.empty(0, dtype=dtype)
    return np.frombuffer(data, dtype=dtype)[array.offset : array.offset + len(array)]


def _expand_bins(response: np.ndarray, pool: Pool, styles: list[tuple[str, ...]]) -> StyleBins:
    """Bins per sample from its response code and source code.

    Samples sharing (response, source) share their bins, so the bins are built once per distinct
    pair with ``StyleBins.from_styles`` and gathered to samples with numpy.
    """
    width = max(len(pool.source_labels), 1)
    combo, sample_combo = _dense_unique(response * width + pool.source_codes)
    small = StyleBins.from_styles(
        [styles[code] for code in (combo // width).tolist()],
        [pool.source_labels[code] for code in (combo % width).tolist()],
    )
    sizes = np.diff(small.offsets)[sample_combo]
    offsets = np.zeros(len(pool) + 1, dtype=np.int64)
    np.cumsum(sizes, out=offsets[1:])
    starts = small.offsets[sample_combo]
    gather = np.arange(offsets[-1], dtype=np.int64) + np.repeat(starts - offsets[:-1], sizes)
    return StyleBins(small.labels, offsets, small.ids[gather])


def _dense_unique(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(keys, return_inverse=True)`` in O(N) when the keys are small non-negative ints."""
    if len(keys) and keys.max() < 8 * len(keys) + 4096:
        present = np.bincount(keys) > 0
        unique = np.flatnonzero(present)
        code = np.cumsum(present) - 1
        return unique, code[keys]
    return np.unique(keys, return_inverse=True)


# --------------------------------------------------------------------------------------------
# Output


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
    temporary = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
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
        os.replace(temporary, output)
    except OSError as err:
        raise AuthorsFormatError(f"cannot write {output}: {err.strerror or err}") from None
    finally:
        temporary.unlink(missing_ok=True)  # gone after a successful replace
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
