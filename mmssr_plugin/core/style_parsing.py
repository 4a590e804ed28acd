"""Parsing a styler answer into interaction styles: the method's rule, or the authors' stricter one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mmssr_plugin.core.taxonomy import STYLES

# Trimmed from both ends of a piece besides whitespace: list brackets, quotes, a final period.
_TRIM = " \t\r\n[]\"'`."


@dataclass(frozen=True)
class StyleAnswer:
    """A parsed styler answer.

    Attributes:
        styles: matched candidates, in the order the answer names them, without duplicates.
        raw: the generated text as it was (``""`` for a missing answer).
        unmatched: number of non-empty comma-separated pieces that match no candidate.
    """

    styles: tuple[str, ...]
    raw: str
    unmatched: int


def _method_key(piece: str) -> str:
    return piece.strip(_TRIM).lower()


def parse_styles(
    text: str | None, candidates: Sequence[str] = STYLES, *, authors_rules: bool = False
) -> StyleAnswer:
    """Split on commas, trim, match each piece to a candidate; keep order, drop duplicates.

    The method's rule (default): matching ignores case and surrounding whitespace, brackets,
    quotes and a final period (``"[Yes/No."`` matches ``yes/no``). The authors' rule
    (``authors_rules=True``, their released selection code): each piece is stripped of
    whitespace only and must equal a candidate exactly, case included. Under both, a piece
    that is not empty after trimming and matches nothing counts as unmatched.

    Args:
        text: the styler's generated text; ``None`` (a missing answer) reads as ``""``.
        candidates: the style names, canonical spelling.
        authors_rules: match as the authors' code does.

    Returns:
        The matched styles in canonical spelling, the raw text and the unmatched piece count.
    """
    text = text or ""
    key: Callable[[str], str] = str.strip if authors_rules else _method_key
    lookup = {name if authors_rules else name.lower(): name for name in candidates}
    styles: list[str] = []
    unmatched = 0
    for piece in text.split(","):
        piece = key(piece)
        if not piece:
            continue
        name = lookup.get(piece)
        if name is None:
            unmatched += 1
        elif name not in styles:
            styles.append(name)
    return StyleAnswer(styles=tuple(styles), raw=text, unmatched=unmatched)
