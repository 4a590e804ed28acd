"""How the authors' code reads a scorer response: the capability score rule and the style rule.

Capability score rule: :func:`mmssr_plugin.core.score_parsing.parse_score` (the response is a
score when Python's ``int(response)`` succeeds and lies in 0..5; applied once per distinct string).
Anything else (``"3.0"``, ``"three"``, ``""``, ``"6"``, a null or absent response) is missing (NaN)
and counted as unparseable.

Style rule: :func:`mmssr_plugin.core.style_parsing.parse_styles` with ``authors_rules=True``
(split on commas, strip whitespace, exact case-sensitive match).
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from mmssr_plugin.core.score_parsing import parse_score
from mmssr_plugin.core.style_parsing import StyleAnswer, parse_styles
from mmssr_plugin.formats.authors.arrow_columns import distinct_codes, valid_mask

__all__ = ["parse_score", "parse_style_response", "score_codes"]


def score_codes(responses: pa.StringArray) -> np.ndarray:
    """int8 score per response, -1 when ``parse_score`` gives NaN.

    Fast path: a one-byte response is a score exactly when it is one of ``0``..``5`` (that is
    what ``int`` accepts of single ASCII characters), read straight from Arrow's buffers. The
    other responses are parsed once per distinct string with ``parse_score``.
    """
    n = len(responses)
    codes = np.full(n, -1, dtype=np.int8)
    if n == 0:
        return codes
    _, offsets_buf, data_buf = responses.buffers()
    start = responses.offset
    offsets = np.frombuffer(offsets_buf, dtype=np.int32)[start : start + n + 1]
    lengths = np.diff(offsets)
    valid = valid_mask(responses)
    single = np.flatnonzero((lengths == 1) & valid)
    if len(single):
        digit = np.frombuffer(data_buf, dtype=np.uint8)[offsets[single]] - np.uint8(ord("0"))
        ok = digit <= 5  # bytes below "0" wrap around to large values
        codes[single[ok]] = digit[ok]
    others = np.flatnonzero((lengths != 1) & valid)
    if len(others):
        # from_buffers, not pa.array: converting a numpy array makes pyarrow import pandas (0.3 s)
        indices = pa.Array.from_buffers(pa.int64(), len(others), [None, pa.py_buffer(others.astype(np.int64))])
        distinct, which = distinct_codes(responses.take(indices))
        lookup = np.array([parse_score(text) for text in distinct] + [math.nan])
        codes[others] = np.where(np.isnan(lookup), -1, lookup).astype(np.int8)[which]
    return codes


def parse_style_response(text: str | None) -> StyleAnswer:
    """A style response read by the authors' rule (``None``: no response, no styles)."""
    return parse_styles(text, authors_rules=True)
