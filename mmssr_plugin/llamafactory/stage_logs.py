"""How the selection stage shows the plugin's log lines: ``[mmssr] <message>`` on stderr (the
training log), or handed to a caller's function line by line."""

from __future__ import annotations

import contextlib
import logging
import sys
from typing import Callable, Iterator

from mmssr_plugin.utils.logs import ROOT_LOGGER, show_logs

LOG_PREFIX = "[mmssr] "


class _LineHandler(logging.Handler):
    """Hands each formatted record to a function."""

    def __init__(self, sink: Callable[[str], None]) -> None:
        super().__init__()
        self._sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self._sink(self.format(record))


@contextlib.contextmanager
def stage_logs(sink: Callable[[str], None] | None = None) -> Iterator[None]:
    """Show the plugin's INFO lines with the ``[mmssr] `` prefix while the block runs.

    Without ``sink`` they go to stderr (through :func:`show_logs`, which stays installed); with
    one, each line is passed to it, for this block only.
    """
    if sink is None:
        show_logs(LOG_PREFIX, stream=sys.stderr)
        yield
        return
    root = logging.getLogger(ROOT_LOGGER)
    handler = _LineHandler(sink)
    handler.setFormatter(logging.Formatter(LOG_PREFIX + "%(message)s"))
    saved = root.level, root.propagate
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    root.propagate = False
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(saved[0])
        root.propagate = saved[1]
