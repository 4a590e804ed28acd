"""The authors' answer parsing: ``int()`` of a generated score, a plain comma split of styles.

Next to the plugin's defaults (digit probabilities; a lenient style match) these reproduce what
the released pipeline did with the same generated text:

- score: ``int(answer.strip())``, so ``"3"``, ``" 3"``, ``"+3"`` and ``"03"`` give 3 and
  ``"5."``, ``"3/5"`` or ``"three"`` fail. The authors had no range check (``"10"`` counted as
  10); scores are stored as probabilities over 0..5 here, so an integer outside 0..5 is recorded
  as missing, like a failed parse.
- styles: split on commas, strip whitespace, keep the pieces equal (case-sensitively) to a
  candidate; ``"Yes/No"``, ``"[multi-choice"`` or ``"yes/no."`` do not match (the default parser
  matches them).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from mmssr_plugin.core.taxonomy import DIGITS, STYLES
from mmssr_plugin.engines.style_parsing import StyleAnswer

SCORE_PARSINGS = ("digits", "authors_int")
STYLE_PARSINGS = ("default", "authors")


def authors_int(answer: str) -> int | None:
    """``int(answer.strip())``, or None where Python's ``int`` raises."""
    try:
        return int(answer.strip())
    except ValueError:
        return None


def authors_int_probs(answers: Sequence[Sequence[str]]) -> np.ndarray:
    """float32 ``[N, C, 6]``: one-hot on the parsed score, NaN where it is missing or off 0..5."""
    probs = np.full((len(answers), len(answers[0]) if answers else 0, len(DIGITS)), np.nan,
                    dtype=np.float32)
    for i, row in enumerate(answers):
        for c, answer in enumerate(row):
            score = authors_int(answer)
            if score is not None and 0 <= score < len(DIGITS):
                probs[i, c] = 0.0
                probs[i, c, score] = 1.0
    return probs


def authors_styles(text: str, candidates: Sequence[str] = STYLES) -> StyleAnswer:
    """Comma split, whitespace strip, case-sensitive match; order kept, duplicates dropped."""
    styles: list[str] = []
    unmatched = 0
    for piece in (p.strip() for p in text.split(",")):
        if not piece:
            continue
        if piece not in candidates:
            unmatched += 1
        elif piece not in styles:
            styles.append(piece)
    return StyleAnswer(styles=tuple(styles), raw=text, unmatched=unmatched)
