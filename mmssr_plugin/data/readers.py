"""The raw rows of a dataset's files (json, jsonl, parquet), in file order, as found."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mmssr_plugin.data.sample import DatasetError, DatasetSpec, InvalidLine

FILE_READERS = {"json": "json", "jsonl": "json", "parquet": "parquet"}
"""File extension -> reader; LLaMA-Factory's FILEEXT2TYPE maps both json and jsonl to "json"."""


def read_raw_rows(spec: DatasetSpec) -> Iterator[Any]:
    """Yield the raw rows of a dataset's files, in file order.

    A JSON file holding an array yields its elements; any other json/jsonl file is read as JSON
    lines (blank lines skipped; a line that does not parse yields an :class:`InvalidLine`);
    parquet yields dicts. Elements are yielded as found, so a row may not be a dict.

    Raises:
        DatasetError: a JSON array file that does not parse, or a file that cannot be opened.
    """
    for path in spec.file_paths:
        if FILE_READERS[path.suffix[1:]] == "parquet":
            yield from _parquet_rows(path)
        else:
            yield from _json_rows(path)


def _json_rows(path: Path) -> Iterator[Any]:
    try:
        with open(path, encoding="utf-8") as f:
            first = _first_char(f)
            f.seek(0)
            if first == "[":
                try:
                    rows = json.load(f)
                except ValueError as err:
                    raise DatasetError(f"cannot parse JSON file {path}: {err}") from None
                yield from rows
                return
            for line in f:
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except ValueError as err:
                    yield InvalidLine(line.rstrip("\r\n"), str(err))
    except OSError as err:
        raise DatasetError(f"cannot read {path}: {err}") from None


def _first_char(f: Any) -> str:
    """The first non-whitespace character of a text file ("" when there is none)."""
    while chunk := f.read(4096):
        if stripped := chunk.lstrip():
            return stripped[0]
    return ""


def _parquet_rows(path: Path) -> Iterator[dict]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as err:
        raise DatasetError(f"cannot read parquet file {path}: {err}") from None
    for batch in parquet.iter_batches(batch_size=1024):
        yield from batch.to_pylist()
