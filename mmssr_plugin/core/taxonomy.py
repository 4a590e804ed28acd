"""Capabilities, interaction styles and query strings: the single source of truth.

The capability keywords and both query strings are those the released mmSSR scorers were trained
on (see the method notes); keywords can be overridden and new capabilities added by users.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

# The version of the prompt text below; it is part of every score fingerprint.
PROMPT_VERSION = "mmssr-v1"

SYSTEM_MESSAGE = "You are a helpful assistant."

CAPABILITY_QUERY = (
    "On a scale of 0 to 5, how do you rate the helpfulness of the VQA instance in training a "
    "Multimodal Large Language Model for {cap_keyword}?"
)

STYLES: tuple[str, ...] = (
    "multi-choice",
    "coordinate",
    "yes/no",
    "word/short-phrase",
    "short description",
    "detailed description",
    "comparison",
    "chain-of-thought (step-by-step)",
    "specified style",
)

# Note the single trailing space after "Styles:".
STYLE_QUERY = "Interaction style candidates: [" + ", ".join(STYLES) + "]\nStyles: "

# Capability id -> keyword used in the prompt, in the canonical order.
DEFAULT_CAPABILITIES: dict[str, str] = {
    "spatial": "object spatial understanding",
    "attribute": "attribute identification",
    "logical": "logical deduction",
    "scene": "scene understanding",
    "finegrained": "fine-grained recognition",
    "language": "language generation",
    "incontext": "in-context learning",
    "comparative": "comparative analysis",
    "activity": "activity recognition",
    "causal": "causal reasoning",
    "humanities": "humanities",
    "stem": "stem knowledge",
    "data": "data understanding",
    "ocr": "optical character recognition",
}

DIGITS: tuple[str, ...] = ("0", "1", "2", "3", "4", "5")


@dataclass(frozen=True)
class Capability:
    """One capability: a short id (file and column names) and the keyword put into the prompt."""

    id: str
    keyword: str

    @property
    def query(self) -> str:
        """The capability query sent after the conversation."""
        return CAPABILITY_QUERY.format(cap_keyword=self.keyword)


def _valid_id(cap_id: str) -> bool:
    return bool(cap_id) and all(ch.isalnum() or ch in "_-" for ch in cap_id)


def resolve_capabilities(
    selected: str | Iterable[str] | None = "all",
    keywords: Mapping[str, str] | None = None,
) -> list[Capability]:
    """Build the ordered capability list.

    Args:
        selected: ``"all"`` (or ``None``) for every known capability, a comma-separated string, or
            a list of ids. The order given is kept: it is the order the sampler visits them in.
        keywords: overrides or additions, id -> keyword. A new id becomes a custom capability;
            with ``selected="all"`` custom capabilities follow the built-in 14.

    Raises:
        ValueError: an unknown id, a duplicate, an empty list, or a malformed id or keyword.
    """
    known = dict(DEFAULT_CAPABILITIES)
    for cap_id, keyword in (keywords or {}).items():
        if not _valid_id(cap_id):
            raise ValueError(f"capability id {cap_id!r} must be letters, digits, '_' or '-'")
        if not isinstance(keyword, str) or not keyword.strip():
            raise ValueError(f"capability {cap_id!r} needs a non-empty keyword")
        known[cap_id] = keyword.strip()
    if selected is None or selected == "all":
        ids = list(known)
    else:
        if isinstance(selected, str):
            ids = [part.strip() for part in selected.split(",") if part.strip()]
        else:
            ids = [str(part).strip() for part in selected]
        if not ids:
            raise ValueError("the capability list is empty")
        unknown = [cap_id for cap_id in ids if cap_id not in known]
        if unknown:
            raise ValueError(
                f"unknown capabilities {unknown}; known: {', '.join(known)} "
                "(add your own with an id and a keyword)"
            )
        duplicates = sorted({cap_id for cap_id in ids if ids.count(cap_id) > 1})
        if duplicates:
            raise ValueError(f"capabilities listed twice: {duplicates}")
    return [Capability(cap_id, known[cap_id]) for cap_id in ids]
