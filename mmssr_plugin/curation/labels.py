"""Label files: the JSON-lines format, reading and validating it, appending safely, resuming.

Label file format (JSON lines, one object per sample; users may also write it by hand)::

    {"uid": "mmssr_demo:3:1a2b3c4d5e6f", "dataset": "mmssr_demo", "row": 3,
     "scores": {"spatial": 4, "ocr": 0, "mycap": 5},
     "styles": ["multi-choice", "chain-of-thought (step-by-step)"],
     "teacher": "gpt-4o-2024-08-06",
     "capabilities": {"spatial": "object spatial understanding",
                      "ocr": "optical character recognition",
                      "mycap": "reading analog clocks"}}

- ``uid``: the sample's uid as :func:`mmssr_plugin.data.load.load_samples` builds it,
  ``"{dataset}:{row}:{hash of the raw row}"``; it decides which sample a label belongs to, so a
  label stops matching when its row changes. ``dataset`` and ``row`` are for people.
- ``scores``: capability id -> integer 0..5 (how helpful the sample is for training that
  capability). Every id of ``capabilities`` must be scored.
- ``capabilities``: capability id -> the keyword the label was made with; the scorer is trained
  with exactly this keyword in its prompt, and selection must use the same one. Optional in
  hand-written files for built-in ids (their built-in keyword is then used); required for custom
  ids.
- ``styles``: interaction styles from :data:`mmssr_plugin.core.taxonomy.STYLES`, canonical spelling,
  in order. Optional (empty or absent) in hand-written files: then the sample adds no style
  example. Curated labels always have at least one.
- ``teacher``: free text naming who labelled (provenance only).

Rejected samples are appended to ``<output>.rejected.jsonl`` as
``{"uid", "dataset", "row", "reason", "detail", "attempts", "teacher"}``; ``reason`` is one of
:data:`mmssr_plugin.curation.teacher_client.REJECT_REASONS` or ``"http <status>"``. A rerun skips
uids already in the output (so an interrupted run resumes without repeating paid requests) and
tries rejected samples again.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from mmssr_plugin.core.taxonomy import DEFAULT_CAPABILITIES, Capability
from mmssr_plugin.curation.answers import check_scores, check_styles
from mmssr_plugin.curation.errors import CurateError, LabelFileError, LabelsMismatch

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Label:
    """One line of a label file (see the module docstring)."""

    uid: str
    dataset: str
    row: int
    scores: dict[str, int]
    styles: tuple[str, ...]
    teacher: str
    capabilities: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        """The label as its JSON-lines object."""
        return {
            "uid": self.uid,
            "dataset": self.dataset,
            "row": self.row,
            "scores": self.scores,
            "styles": list(self.styles),
            "teacher": self.teacher,
            "capabilities": self.capabilities,
        }


def label_from_json(obj: Any) -> Label:
    """One label-file object as a :class:`Label`.

    Raises:
        ValueError: a missing or malformed field.
    """
    if not isinstance(obj, dict):
        raise ValueError("a label must be a JSON object")
    uid, dataset, row = obj.get("uid"), obj.get("dataset", ""), obj.get("row", -1)
    if not isinstance(uid, str) or not uid:
        raise ValueError('"uid" must be a non-empty string')
    if not isinstance(dataset, str) or isinstance(row, bool) or not isinstance(row, int):
        raise ValueError('"dataset" must be a string and "row" an integer')
    raw_scores, raw_caps = obj.get("scores"), obj.get("capabilities", {})
    if not isinstance(raw_scores, dict) or not raw_scores:
        raise ValueError('"scores" must be a non-empty object')
    if not isinstance(raw_caps, dict):
        raise ValueError('"capabilities" must be an object (id -> keyword)')
    keywords = {}
    for cap_id in list(raw_caps) + [c for c in raw_scores if c not in raw_caps]:
        keyword = raw_caps.get(cap_id, DEFAULT_CAPABILITIES.get(cap_id))
        if not isinstance(keyword, str) or not keyword.strip():
            raise ValueError(f"capability {cap_id!r} has no keyword (custom ids need one in \"capabilities\")")
        keywords[cap_id] = keyword.strip()
    scores = check_scores(raw_scores, keywords)
    styles = check_styles(obj.get("styles"), required=False)
    teacher = obj.get("teacher", "")
    return Label(uid, dataset, row, scores, styles, str(teacher), keywords)


def read_labels(path: str | Path) -> list[Label]:
    """Read and validate a label file (format in the module docstring).

    Raises:
        LabelFileError: ``path:line: reason`` for the first bad line; OSError if unreadable.
    """
    labels = []
    with open(path, encoding="utf-8") as handle:
        for number, text in enumerate(handle, 1):
            if not text.strip():
                continue
            try:
                labels.append(label_from_json(json.loads(text)))
            except (ValueError, TypeError) as err:
                reason = "not a JSON object" if isinstance(err, json.JSONDecodeError) else str(err)
                raise LabelFileError(f"{path}:{number}: {reason}") from None
    return labels


def rejected_path(output: str | Path) -> Path:
    """``<output>.rejected.jsonl``."""
    return Path(f"{output}.rejected.jsonl")


def load_done(output: Path, capabilities: Sequence[Capability]) -> set[str]:
    """Uids already labelled in ``output`` (an interrupted, partial last line is cut off first).

    Raises:
        LabelsMismatch: the file holds labels made for other capabilities or keywords.
        CurateError: the file breaks the label file format.
    """
    if not output.exists():
        return set()
    with open(output, "rb+") as handle:
        data = handle.read()
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            handle.truncate(keep)
            logger.warning("curate: cut an unfinished last line off %s (that sample is redone)", output)
    wanted = {cap.id: cap.keyword for cap in capabilities}
    try:
        labels = read_labels(output)
    except LabelFileError as err:
        raise CurateError(f"cannot resume from {err}") from None
    for label in labels:
        if label.capabilities != wanted:
            raise LabelsMismatch(output, label.capabilities, wanted)
    return {label.uid for label in labels}


class JsonlAppender:
    """Appends one JSON object per line, flushed and fsynced, so nothing written is lost."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: IO[str] | None = None

    def write(self, obj: Mapping[str, Any]) -> None:
        """Append ``obj`` as one line and make it durable before returning."""
        if self._handle is None:
            self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 -- kept open for the whole run
        self._handle.write(json.dumps(obj, ensure_ascii=False) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        """Close the file (if anything was written)."""
        if self._handle is not None:
            self._handle.close()
