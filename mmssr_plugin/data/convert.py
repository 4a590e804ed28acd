"""One raw row -> a :class:`Sample`, for the sharegpt, openai and alpaca formattings.

The conversion follows LLaMA-Factory 0.9.5 (``data/converter.py``, ``data/mm_plugin.py``): the
same tags and columns, role checks, media resolution and placeholder rule. It never drops a row:
a broken row becomes a sample that carries its problems.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from mmssr_plugin.data.sample import DatasetSpec, InvalidLine, Sample, content_hash
from mmssr_plugin.data.sources import image_source_of
from mmssr_plugin.data.validate import conversation_problems, image_file_problems, placeholder_problems

_TAG_ROLES = {
    "user_tag": "user",
    "assistant_tag": "assistant",
    "observation_tag": "observation",
    "function_tag": "function",
    "system_tag": "system",
}
# Roles accepted at even / odd positions (0-based), as in LLaMA-Factory's converters.
_ACCEPTED = (("user", "observation"), ("assistant", "function"))


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
    written, image_problems = image_values(row, spec)
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
        problems += conversation_problems(sample.turns)
        if not image_problems:
            problems += placeholder_problems(sample.turns, images)
    problems += image_problems + image_file_problems(images, check_images, image_cache)
    return replace(sample, problems=tuple(problems))


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


def image_values(row: dict, spec: DatasetSpec) -> tuple[list[str], list[str]]:
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
