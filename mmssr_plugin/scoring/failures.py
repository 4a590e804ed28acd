"""Failure reasons of scored samples, grouped by kind for summaries and reports."""

from __future__ import annotations


def failure_kind(reason: str) -> str:
    """Group failure reasons by kind: the text before the first ':' (or the first 60 chars)."""
    return reason.split(":", 1)[0] if ":" in reason else reason[:60]
