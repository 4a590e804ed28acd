"""The authors' score files, parsed without the pool: ``<capability>.jsonl`` and ``style.jsonl``.

Score files are JSON lines ``{"idx": int, "pred_response": str}``, one per capability plus
``style.jsonl``. They are parsed by Arrow's JSON reader (C++, GIL released, so it can run in a
second thread while the pool streams in the first); each *distinct* response is interpreted
once in Python (:mod:`.rules`) and mapped back with numpy, so no Python code runs per line.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pajson

from mmssr_plugin.core.style_parsing import StyleAnswer
from mmssr_plugin.formats.authors.arrow_columns import distinct_codes, to_numpy
from mmssr_plugin.formats.authors.errors import AuthorsFormatError
from mmssr_plugin.formats.authors.rules import parse_style_response, score_codes

STYLE_FILE = "style.jsonl"
_SCORE_SCHEMA = pa.schema([("idx", pa.int64()), ("pred_response", pa.string())])
_LINE_SHAPE = '{"idx": <pool idx>, "pred_response": "<answer>"}'


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
        styles: style only: each distinct response read by the authors' style rule, then the
            empty answer for lines without a response.
    """

    name: str
    path: Path
    idx: np.ndarray
    codes: np.ndarray
    styles: tuple[StyleAnswer, ...] = ()


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
        idx = to_numpy(table.column("idx"), np.int64)
        if previous is not None and np.array_equal(previous, idx):
            idx = previous
        previous = idx
        responses = table.column("pred_response").combine_chunks()
        del table
        pa.default_memory_pool().release_unused()  # mimalloc keeps freed parser blocks otherwise
        if name == "style":
            distinct, codes = distinct_codes(responses)
            parsed = tuple(parse_style_response(text) for text in [*distinct, None])
            loaded.append(LoadedFile(name, path, idx, codes, parsed))
        else:
            loaded.append(LoadedFile(name, path, idx, score_codes(responses)))
    return loaded


def _read_jsonl(path: Path) -> pa.Table:
    """Arrow table with ``idx`` (int64) and ``pred_response`` (string) of a JSON-lines file.

    Raises:
        AuthorsFormatError: the file is empty, unreadable, has a malformed line (named in plain
            words), or no line has a ``pred_response``.
    """
    if path.stat().st_size == 0:
        raise AuthorsFormatError(f"{path} is empty: expected one JSON line {_LINE_SHAPE} per sample")
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
        reason = first_bad_line(path) or (
            str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__)
        raise AuthorsFormatError(f"{path}: not JSON lines of {{idx, pred_response}}: {reason}") from None
    except OSError as err:
        raise AuthorsFormatError(f"cannot read {path}: {err}") from None
    nulls = table.column("idx").null_count
    if nulls:
        first = pc.index(pc.is_null(table.column("idx")), True).as_py()
        raise AuthorsFormatError(f"{path}: line {first + 1} has no integer idx ({nulls} such lines)")
    if table.num_rows == 0:
        raise AuthorsFormatError(f"{path} holds no line: expected one JSON line {_LINE_SHAPE} per sample")
    if table.column("pred_response").null_count == table.num_rows:
        raise AuthorsFormatError(
            f"{path}: no line has a pred_response (the scorer's answer); lines look like "
            f"{_first_keys(path)}, expected {_LINE_SHAPE}"
        )
    return table


def first_bad_line(path: Path) -> str | None:
    """The first line that is not ``{"idx": int, "pred_response": str}``, described in plain words."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                return f"line {number} is not JSON ({line.strip()[:40]!r})"
            if not isinstance(record, dict):
                return f"line {number} is not a JSON object"
            idx, response = record.get("idx"), record.get("pred_response")
            if idx is not None and (isinstance(idx, bool) or not isinstance(idx, int)):
                return f"line {number}: idx must be an integer, got {idx!r}"
            if response is not None and not isinstance(response, str):
                return (f"line {number}: pred_response must be the answer as text (e.g. \"4\"), "
                        f"got {type(response).__name__} {json.dumps(response)[:40]}")
    return None


def _first_keys(path: Path) -> str:
    """The keys of the file's first line, as ``{a, b}``."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        try:
            record = json.loads(handle.readline())
        except ValueError:
            return "no JSON object"
    return "{" + ", ".join(record) + "}" if isinstance(record, dict) else "no JSON object"
