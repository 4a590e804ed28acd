"""Unexpected internal errors: the traceback goes to a log file, the user sees one line naming it.

Entry points (``mmssr-cli``, the training stage, scoring workers) call :func:`write_error_log` when
something fails that is not a known bad input, and show :func:`internal_error_line`.
"""

from __future__ import annotations

import os
import tempfile
import time
import traceback
from pathlib import Path

ERROR_LOG_DIR_ENV = "MMSSR_ERROR_LOG_DIR"
"""Folder for the error logs (default: ``<temp dir>/mmssr_plugin_errors``)."""


def error_log_dir() -> Path:
    """The folder error logs are written to."""
    configured = os.environ.get(ERROR_LOG_DIR_ENV)
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "mmssr_plugin_errors"


def write_error_log(error: BaseException, context: str = "") -> Path | None:
    """Write ``error``'s traceback (and ``context``) to a new log file; None if it cannot be written."""
    folder = error_log_dir()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    path = folder / f"error-{stamp}-{os.getpid()}.log"
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text((context + "\n" if context else "") + text, encoding="utf-8")
    except OSError:
        return None
    return path


def internal_error_line(error: BaseException, context: str = "") -> str:
    """One line for an unexpected error: its type and message, and the log holding the traceback."""
    path = write_error_log(error, context)
    message = " ".join(str(error).split()) or "no message"
    where = f"the traceback is in {path}" if path else "its traceback could not be written to a log file"
    return f"internal error ({type(error).__name__}: {message}); {where}"
