"""Reading the raw rows of LLaMA-Factory datasets into validated samples.

The reader follows LLaMA-Factory 0.9.5 (``data/parser.py``, ``data/converter.py``,
``data/loader.py``, ``data/mm_plugin.py``): the same ``dataset_info.json`` defaults, role checks,
media resolution and placeholder rule. Unlike LLaMA-Factory it never drops a row: every raw row
becomes a :class:`Sample`, and the broken ones carry their problems, so row indices keep mapping
to raw rows.

Problem strings have the form ``"<kind>"`` or ``"<kind>: <detail>"``; the kinds are stable and
greppable:

- ``not a dict row``, ``invalid json line``, ``missing column``, ``bad messages``,
  ``malformed turn``, ``unknown role``, ``wrong role order`` (row structure);
- ``empty conversation``, ``odd turn count``, ``empty turn text`` (conversation);
- ``bad images column``, ``bad image value``, ``image placeholder mismatch``, ``missing image``,
  ``unreadable image`` (images).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

DATA_CONFIG = "dataset_info.json"

# LLaMA-Factory reads the placeholder from the same environment variable.
IMAGE_PLACEHOLDER = os.getenv("IMAGE_PLACEHOLDER", "<image>")

FORMATS = ("sharegpt", "openai", "alpaca")

# File extension -> reader; LLaMA-Factory's FILEEXT2TYPE maps both json and jsonl to "json".
_READERS = {"json": "json", "jsonl": "json", "parquet": "parquet"}
_LF_ONLY_TYPES = ("arrow", "csv", "txt")

# LLaMA-Factory's DatasetAttr defaults. When an entry has "columns" (or "tags"), every name it
# does not list becomes None, exactly as DatasetAttr.join does.
_DEFAULT_COLUMNS: dict[str, str | None] = {
    "prompt": "instruction",
    "query": "input",
    "response": "output",
    "history": None,
    "messages": "conversations",
    "system": None,
    "tools": None,
    "images": None,
    "videos": None,
    "audios": None,
    "chosen": None,
    "rejected": None,
    "kto_tag": None,
}
_DEFAULT_TAGS: dict[str, str | None] = {
    "role_tag": "from",
    "content_tag": "value",
    "user_tag": "human",
    "assistant_tag": "gpt",
    "observation_tag": "observation",
    "function_tag": "function_call",
    "system_tag": "system",
}
_TAG_ROLES = {
    "user_tag": "user",
    "assistant_tag": "assistant",
    "observation_tag": "observation",
    "function_tag": "function",
    "system_tag": "system",
}
# Roles accepted at even / odd positions (0-based), as in LLaMA-Factory's converters.
_ACCEPTED = (("user", "observation"), ("assistant", "function"))
_HUB_KEYS = ("hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name")


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
    """A JSON-lines line that does not parse; :func:`read_raw_rows` yields it in place of a row."""

    text: str
    error: str


def load_dataset_info(dataset_dir: str | Path) -> dict[str, dict]:
    """Read ``dataset_dir/dataset_info.json``.

    Raises:
        DatasetError: hub-only ``dataset_dir`` (``ONLINE``, ``REMOTE:<repo>``), missing file,
            bad JSON, or a top level that is not an object.
    """
    text_dir = str(dataset_dir)
    if text_dir == "ONLINE" or text_dir.startswith("REMOTE:"):
        raise DatasetError(
            f"hub-only dataset_dir {text_dir!r} has no local registry; mmSSR selection needs local "
            f"files: download the data and point dataset_dir at a folder with {DATA_CONFIG}"
        )
    path = Path(dataset_dir) / DATA_CONFIG
    try:
        with open(path, encoding="utf-8") as f:
            info = json.load(f)
    except FileNotFoundError:
        raise DatasetError(f"{path} not found: dataset_dir must hold LLaMA-Factory's {DATA_CONFIG}") from None
    except (OSError, ValueError) as err:
        raise DatasetError(f"cannot read {path}: {err}") from None
    if not isinstance(info, dict):
        raise DatasetError(f"{path} must hold a JSON object (name -> entry), got {type(info).__name__}")
    return info


def resolve_dataset(dataset_dir: str | Path, name: str, info: Mapping[str, Any] | None = None) -> DatasetSpec:
    """Resolve one registry entry to local files, formatting, columns and tags.

    Args:
        dataset_dir: folder holding ``dataset_info.json``; relative ``file_name`` values are
            joined to it.
        name: the entry's name.
        info: the parsed registry, when already loaded (read from ``dataset_dir`` otherwise).

    Raises:
        DatasetError: unknown name (known names are listed), entry loaded from a hub or script,
            missing file, unsupported formatting or file type.
    """
    info = load_dataset_info(dataset_dir) if info is None else info
    if name not in info:
        known = ", ".join(info) or "(none)"
        raise DatasetError(f"unknown dataset {name!r} in {Path(dataset_dir) / DATA_CONFIG}; known: {known}")
    entry = info[name]
    if not isinstance(entry, dict):
        raise DatasetError(f"entry {name!r} in {DATA_CONFIG} must be an object, got {type(entry).__name__}")
    hub = [key for key in _HUB_KEYS if key in entry]
    if hub:
        also = " (LLaMA-Factory prefers it over file_name)" if "file_name" in entry else ""
        raise DatasetError(
            f"dataset {name!r} is hub-only: LLaMA-Factory loads it via {hub[0]}={entry[hub[0]]!r}{also}; "
            f"mmSSR selection needs local files: download it and register it with file_name only"
        )
    if "file_name" not in entry:
        raise DatasetError(f"dataset {name!r} has no file_name in {DATA_CONFIG}")
    formatting = entry.get("formatting", "alpaca")
    if formatting not in FORMATS:
        raise DatasetError(f"dataset {name!r}: unsupported formatting {formatting!r}; supported: {', '.join(FORMATS)}")
    if entry.get("ranking", False):
        raise DatasetError(f"dataset {name!r} is a ranking (preference) dataset; mmSSR selects SFT data")
    columns = _with_defaults(entry, "columns", _DEFAULT_COLUMNS)
    tags = _with_defaults(entry, "tags", _DEFAULT_TAGS)
    if formatting != "alpaca" and not (tags["role_tag"] and tags["content_tag"]):
        raise DatasetError(f"dataset {name!r}: its tags must name role_tag and content_tag (LLaMA-Factory needs both)")
    if formatting != "alpaca" and not columns["messages"]:
        raise DatasetError(
            f"dataset {name!r}: its columns do not name `messages`, so LLaMA-Factory reads no conversation "
            f'(add "messages": "conversations" or the right column)'
        )
    return DatasetSpec(
        name=name,
        file_paths=_data_files(Path(dataset_dir), name, str(entry["file_name"])),
        formatting=formatting,
        columns=columns,
        tags=tags,
        entry=entry,
    )


def _with_defaults(entry: Mapping[str, Any], key: str, defaults: dict[str, str | None]) -> dict[str, str | None]:
    """Apply DatasetAttr.join: defaults without ``entry[key]``, else only what it lists."""
    if key not in entry:
        return dict(defaults)
    given = entry[key]
    if not isinstance(given, dict):
        raise DatasetError(f"`{key}` of a {DATA_CONFIG} entry must be an object, got {type(given).__name__}")
    return {name: given.get(name) for name in defaults}


def _data_files(dataset_dir: Path, name: str, file_name: str) -> tuple[Path, ...]:
    """The files behind ``file_name`` (a file or a folder), checked for a readable type."""
    local = Path(os.path.join(dataset_dir, file_name))
    if local.is_dir():
        files = tuple(sorted((p for p in local.iterdir() if p.is_file()), key=lambda p: p.name))
        if not files:
            raise DatasetError(f"dataset {name!r}: folder {local} holds no files")
    elif local.is_file():
        files = (local,)
    else:
        raise DatasetError(
            f"dataset {name!r}: file {local} not found (file_name {file_name!r} is relative to dataset_dir {dataset_dir})"
        )
    kinds = set()
    for path in files:
        ext = path.suffix[1:]
        if ext not in _READERS:
            why = "LLaMA-Factory reads it but mmSSR selection does not" if ext in _LF_ONLY_TYPES else "unknown type"
            raise DatasetError(f"dataset {name!r}: unsupported file {path} ({why}); supported: {', '.join(_READERS)}")
        kinds.add(_READERS[ext])
    if len(kinds) > 1:
        raise DatasetError(
            f"dataset {name!r}: files in {local} mix types {sorted(kinds)}; LLaMA-Factory needs one type"
        )
    return files


def read_raw_rows(spec: DatasetSpec) -> Iterator[Any]:
    """Yield the raw rows of a dataset's files, in file order.

    A JSON file holding an array yields its elements; any other json/jsonl file is read as JSON
    lines (blank lines skipped; a line that does not parse yields an :class:`InvalidLine`);
    parquet yields dicts. Elements are yielded as found, so a row may not be a dict.

    Raises:
        DatasetError: a JSON array file that does not parse, or a file that cannot be opened.
    """
    for path in spec.file_paths:
        if _READERS[path.suffix[1:]] == "parquet":
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


def content_hash(row: Any) -> str:
    """12 hex chars of sha1 over the canonical JSON of a raw row (sorted keys, UTF-8 as is)."""
    if isinstance(row, InvalidLine):
        row = row.text
    text = json.dumps(row, sort_keys=True, ensure_ascii=False, default=_json_default)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def _json_default(value: Any) -> Any:
    """JSON stand-ins for parquet values JSON lacks (binary, dates, decimals)."""
    return value.hex() if isinstance(value, (bytes, bytearray)) else str(value)


def load_samples(
    dataset_dir: str | Path,
    names: Sequence[str] | str,
    media_dir: str | Path | None = None,
    source_column: str | None = None,
    *,
    check_images: bool = True,
) -> list[Sample]:
    """Read every raw row of the named datasets as validated samples, datasets in the given order.

    Args:
        dataset_dir: folder holding ``dataset_info.json``.
        names: dataset names, a list or LLaMA-Factory's comma-separated string; repeats are read
            once, as LLaMA-Factory does.
        media_dir: root for image paths (LLaMA-Factory's ``media_dir``); defaults to ``dataset_dir``.
        source_column: row column naming the image source, if the pool has one.
        check_images: open each image to check it is readable (existence is always checked).

    Raises:
        DatasetError: a dataset cannot be read at all.
    """
    if isinstance(names, str):
        names = names.split(",")
    names = list(dict.fromkeys(n.strip() for n in names if n.strip()))
    if not names:
        raise DatasetError("no dataset name given")
    info = load_dataset_info(dataset_dir)
    specs = [resolve_dataset(dataset_dir, name, info) for name in names]
    media = Path(dataset_dir if media_dir is None else media_dir)
    return samples_from_specs(specs, media, source_column, check_images=check_images)


# The registry entry of a bare LLaVA-style pool file (a JSON list with "conversations" and "image").
LLAVA_POOL_ENTRY = {"formatting": "sharegpt", "columns": {"messages": "conversations", "images": "image"}}


def load_pool_file(
    path: str | Path,
    media_dir: str | Path | None = None,
    source_column: str | None = None,
    *,
    check_images: bool = True,
) -> list[Sample]:
    """Read a LLaVA-style pool file that is not registered anywhere (dataset name: the file stem).

    Image paths resolve against ``media_dir`` (default: the file's folder).
    """
    path = Path(path).resolve()
    if not path.is_file():
        raise DatasetError(f"pool file {path} not found")
    info = {path.stem: {**LLAVA_POOL_ENTRY, "file_name": str(path)}}
    spec = resolve_dataset(path.parent, path.stem, info)
    media = Path(media_dir) if media_dir is not None else path.parent
    return samples_from_specs([spec], media, source_column, check_images=check_images)


def samples_from_specs(
    specs: Sequence[DatasetSpec],
    media_dir: Path,
    source_column: str | None,
    *,
    check_images: bool = True,
) -> list[Sample]:
    """Every raw row of the resolved datasets as a validated sample, datasets in order."""
    cache: dict[str, str | None] = {}
    return [
        sample_from_row(row, index, spec, media_dir, source_column, check_images=check_images, image_cache=cache)
        for spec in specs
        for index, row in enumerate(read_raw_rows(spec))
    ]


def sample_from_row(
    row: Any,
    row_index: int,
    spec: DatasetSpec,
    media_dir: Path,
    source_column: str | None,
    *,
    check_images: bool = True,
    image_cache: dict[str, str | None] | None = None,
) -> Sample:
    """Turn one raw row into a :class:`Sample`; never raises for bad rows.

    Args:
        row: the raw row (normally a dict).
        row_index: its index among all raw rows of the dataset.
        spec: the dataset it belongs to.
        media_dir: root for image paths.
        source_column: row column naming the image source, if any.
        check_images: open each image to check it is readable.
        image_cache: shared per-path results of the image check, to check each file once.
    """
    uid = f"{spec.name}:{row_index}:{content_hash(row)}"
    base = Sample(uid=uid, dataset=spec.name, row=row_index, turns=(), source=spec.name)
    if isinstance(row, InvalidLine):
        return replace(base, problems=(f"invalid json line: {row.error}",))
    if not isinstance(row, dict):
        return replace(base, problems=(f"not a dict row: {type(row).__name__}",))

    if spec.formatting == "alpaca":
        turns, system, problems = _alpaca_conversation(row, spec)
    else:
        turns, system, problems = _chat_conversation(row, spec)
    written, image_problems = _image_values(row, spec)
    images = tuple(_resolve_media(path, media_dir) for path in written)
    sample = Sample(
        uid=uid,
        dataset=spec.name,
        row=row_index,
        turns=tuple(turns),
        images=images,
        source=image_source_of(row, written, spec.name, source_column),
        system=system if isinstance(system, str) and system else None,
    )
    if not problems:
        problems += _conversation_problems(sample.turns)
        if not image_problems:
            problems += _placeholder_problems(sample.turns, images)
    problems += image_problems + _image_file_problems(images, check_images, image_cache)
    return replace(sample, problems=tuple(problems))


def validate_sample(
    sample: Sample, *, check_images: bool = True, image_cache: dict[str, str | None] | None = None
) -> tuple[str, ...]:
    """Problems that can be seen on a built sample: conversation shape, placeholders, image files.

    Row-structure problems (roles, columns) need the raw row; :func:`sample_from_row` finds those.
    """
    return tuple(
        _conversation_problems(sample.turns)
        + _placeholder_problems(sample.turns, sample.images)
        + _image_file_problems(sample.images, check_images, image_cache)
    )


def summarize_problems(samples: Sequence[Sample]) -> dict[str, int]:
    """Count the samples per problem kind (the text before ``":"``), most frequent first, ties by name."""
    counts = Counter(kind for s in samples for kind in {p.split(":", 1)[0] for p in s.problems})
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _chat_conversation(row: dict, spec: DatasetSpec) -> tuple[list[str], Any, list[str]]:
    """Turns, system and structure problems of a sharegpt / openai row (LLaMA-Factory's rules).

    Turn numbers in problems count from 1 after a leading system message, like ``Sample.turns``.
    """
    column = spec.columns["messages"]
    messages = row.get(column)
    if messages is None:
        return [], None, [f"missing column: {column}"]
    if not isinstance(messages, list):
        return [], None, [f"bad messages: expected a list, got {type(messages).__name__}"]
    tags = spec.tags
    role_tag, content_tag, system_tag = tags["role_tag"], tags["content_tag"], tags["system_tag"]
    if system_tag and messages and isinstance(messages[0], dict) and messages[0].get(role_tag) == system_tag:
        system, messages = messages[0].get(content_tag), messages[1:]
    else:
        system = row.get(spec.columns["system"]) if spec.columns["system"] else None

    problems: list[str] = []
    tagged: list[tuple[int, Any, str]] = []  # (turn number, role tag, text)
    for number, message in enumerate(messages, 1):
        if not isinstance(message, dict):
            problems.append(f"malformed turn: turn {number} is {type(message).__name__}, not a dict")
            continue
        missing = [tag for tag in (role_tag, content_tag) if tag not in message]
        if missing:
            problems.append(f"malformed turn: turn {number} has no {missing[0]!r} key")
            continue
        role, content = message[role_tag], message[content_tag]
        is_reply = role in (tags["assistant_tag"], tags["function_tag"])
        if spec.formatting == "openai" and is_reply and (tool_calls := message.get("tool_calls")):
            content = _tool_calls_text(tool_calls)
            role = tags["function_tag"]
        if not isinstance(content, str):
            problems.append(f"malformed turn: turn {number} content is {type(content).__name__}, not text")
            continue
        tagged.append((number, role, content))
    if spec.formatting == "openai":
        tagged = _merge_tool_responses(tagged, tags["observation_tag"])
    problems += _role_problems(tagged, tags)
    return [text for _, _, text in tagged], system, problems


def _tool_calls_text(tool_calls: Any) -> str | None:
    """An openai turn's tool calls as LLaMA-Factory writes them (None when they are malformed)."""
    if not isinstance(tool_calls, list) or not all(isinstance(t, dict) and "function" in t for t in tool_calls):
        return None
    return json.dumps([tool["function"] for tool in tool_calls], ensure_ascii=False, default=str)


def _merge_tool_responses(tagged: list[tuple[int, Any, str]], observation_tag: Any) -> list[tuple[int, Any, str]]:
    """Join consecutive openai tool responses into one turn (trailing ones dropped, as LF does)."""
    merged: list[tuple[int, Any, str]] = []
    pending: list[tuple[int, Any, str]] = []
    for item in tagged:
        if item[1] == observation_tag:
            pending.append(item)
            continue
        if pending:
            text = "\n</tool_response>\n<tool_response>\n".join(t for _, _, t in pending)
            merged.append((pending[0][0], observation_tag, text))
            pending = []
        merged.append(item)
    return merged


def _role_problems(tagged: list[tuple[int, Any, str]], tags: Mapping[str, str | None]) -> list[str]:
    """The first unknown or misplaced role (later ones follow from it), as a problem list."""
    role_of = {tags[key]: role for key, role in _TAG_ROLES.items() if tags[key] is not None}
    for position, (number, tag, _) in enumerate(tagged):
        role = role_of.get(tag) if isinstance(tag, str) else None
        if role is None:
            return [f"unknown role: turn {number} has {tag!r}"]
        if role not in _ACCEPTED[position % 2]:
            return [f"wrong role order: turn {number} expected {_ACCEPTED[position % 2][0]}, got {role}"]
    return []


def _alpaca_conversation(row: dict, spec: DatasetSpec) -> tuple[list[str], Any, list[str]]:
    """Turns, system and structure problems of an alpaca row (history, prompt + "\\n" + query, response)."""
    columns = spec.columns
    turns: list[str] = []
    problems: list[str] = []
    history = row.get(columns["history"]) if columns["history"] else None
    if isinstance(history, list):
        for number, pair in enumerate(history, 1):
            if isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(t, str) for t in pair):
                turns += pair
            else:
                problems.append(f"malformed turn: history entry {number} is not a [prompt, response] pair of texts")
    parts = [row[columns[key]] for key in ("prompt", "query") if columns[key] and row.get(columns[key])]
    if not all(isinstance(part, str) for part in parts):
        problems.append(f"malformed turn: turn {len(turns) + 1} prompt/query is not text")
        parts = [str(part) for part in parts]
    turns.append("\n".join(parts))
    response = row.get(columns["response"]) if columns["response"] else None
    if isinstance(response, str):
        turns.append(response)
    return turns, row.get(columns["system"]) if columns["system"] else None, problems


def _conversation_problems(turns: Sequence[str]) -> list[str]:
    if not turns:
        return ["empty conversation"]
    problems = [f"empty turn text: turn {number}" for number, text in enumerate(turns, 1) if not text.strip()]
    if len(turns) % 2:
        problems.append(f"odd turn count: {len(turns)} turns, the last user turn has no answer")
    return problems


def _placeholder_problems(turns: Sequence[str], images: Sequence[str]) -> list[str]:
    count = sum(text.count(IMAGE_PLACEHOLDER) for text in turns)
    if count == len(images):
        return []
    return [f"image placeholder mismatch: {count} {IMAGE_PLACEHOLDER} in text, {len(images)} images"]


def _image_values(row: dict, spec: DatasetSpec) -> tuple[list[str], list[str]]:
    """Image paths as written in the row (a list or a single string), and problems with them."""
    column = spec.columns["images"]
    value = row.get(column) if column else None
    if value is None:
        return [], []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return [], [f"bad images column: expected a list or a string, got {type(value).__name__}"]
    bad = [type(v).__name__ for v in value if not isinstance(v, str)]
    if bad:
        return [], [f"bad image value: expected a path string, got {bad[0]}"]
    return value, []


def _resolve_media(path: str, media_dir: Path) -> str:
    """``media_dir/path`` when that file exists, else ``path`` unchanged (LF's ``_find_medias``)."""
    joined = os.path.join(media_dir, path)
    return joined if os.path.isfile(joined) else path


def _image_file_problems(images: Sequence[str], check_images: bool, cache: dict[str, str | None] | None) -> list[str]:
    cache = {} if cache is None else cache
    problems = []
    for path in images:
        if path not in cache:
            cache[path] = _image_problem(path, check_images)
        if cache[path]:
            problems.append(cache[path])
    return problems


def _image_problem(path: str, check_images: bool) -> str | None:
    """Why an image file cannot be used, or None. Reading checks headers and chunks, not pixels."""
    if not os.path.isfile(path):
        return f"missing image: {path}"
    if not check_images:
        return None
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.verify()
    except Exception as err:  # noqa: BLE001 -- PIL raises many error types for bad files
        return f"unreadable image: {path} ({type(err).__name__}: {err})"
    return None


def image_source_of(row: dict, written_images: Sequence[str], dataset: str, source_column: str | None) -> str:
    """Configured source column, else the first folder of the first image path, else the dataset name."""
    value = row.get(source_column) if source_column else None
    if value not in (None, ""):
        return str(value)
    if written_images:
        parts = [part for part in re.split(r"[\\/]", written_images[0]) if part not in ("", ".")]
        if len(parts) > 1:
            return parts[0]
    return dataset
