"""Parsing a styler answer into interaction styles (the method's rule)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from mmssr_plugin.core.taxonomy import STYLES

# Trimmed from both ends of a piece besides whitespace: list brackets, quotes, a final period.
_TRIM = " \t\r\n[]\"'`."


@dataclass(frozen=True)
class StyleAnswer:
    """A parsed styler answer.

    Attributes:
        styles: matched candidates, in the order the answer names them, without duplicates.
        raw: the generated text as it was.
        unmatched: number of non-empty comma-separated pieces that match no candidate.
    """

    styles: tuple[str, ...]
    raw: str
    unmatched: int


def parse_styles(text: str, candidates: Sequence[str] = STYLES) -> StyleAnswer:
    """Split on commas, trim, match each piece to a candidate; keep order, drop duplicates.

    Matching ignores case and surrounding whitespace, brackets, quotes and a final period
    (``"[Yes/No."`` matches ``yes/no``); anything else that is not empty counts as unmatched.

    Args:
        text: the styler's generated text.
        candidates: the style names, canonical spelling.

    Returns:
        The matched styles in canonical spelling, the raw text and the unmatched piece count.
    """
    lookup = {name.lower(): name for name in candidates}
    styles: list[str] = []
    unmatched = 0
    for piece in text.split(","):
        key = piece.strip(_TRIM).lower()
        if not key:
            continue
        name = lookup.get(key)
        if name is None:
            unmatched += 1
        elif name not in styles:
            styles.append(name)
    return StyleAnswer(styles=tuple(styles), raw=text, unmatched=unmatched)
