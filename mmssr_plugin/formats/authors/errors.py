"""The one error the authors'-format readers and writers raise."""

from __future__ import annotations


class AuthorsFormatError(ValueError):
    """A pool or score file cannot be used; the message is one line saying why."""
