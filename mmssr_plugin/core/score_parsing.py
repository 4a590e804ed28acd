"""The authors' score rule: a generated answer is a score when Python's ``int()`` reads it in 0..5.

Their code applied ``int()`` to the answer text. The real ``int`` is applied here too, so its
acceptance is exact: surrounding whitespace, an optional sign, leading zeros, underscores between
digits (``"0_3"``) and non-ASCII decimal digits all parse as Python parses them; ``"-0"`` is 0.
Anything else (``"3.0"``, ``"5."``, ``"three"``, ``""``, a null answer) is missing, and so is an
integer outside 0..5 (``"10"``): the authors had no range check, but scores live on 0..5 here.
"""

from __future__ import annotations

import math


def parse_score(text: str | None) -> float:
    """A response's score: ``int(text)`` if that works and lies in 0..5, else NaN."""
    try:
        value = int(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return float(value) if 0 <= value <= 5 else math.nan
