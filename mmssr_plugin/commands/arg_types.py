"""argparse value types shared by the subcommands (each raises ``ArgumentTypeError`` with a reason)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable


def bounded(
    kind: Callable[[str], float], low: float = -math.inf, strict: bool = False
) -> Callable[[str], float]:
    """An argparse type: a finite ``kind`` number >= ``low`` (> ``low`` when ``strict``)."""

    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if value < low or (strict and value == low):
            raise argparse.ArgumentTypeError(f"must be {'>' if strict else '>='} {low:g}, got {text}")
        return value

    return parse


def parse_keyword(text: str) -> tuple[str, str]:
    """``"id=keyword"`` -> ``(id, keyword)``."""
    cap_id, sep, keyword = text.partition("=")
    if not sep or not cap_id.strip() or not keyword.strip():
        raise argparse.ArgumentTypeError(f"expected ID=KEYWORD, got {text!r}")
    return cap_id.strip(), keyword.strip()
