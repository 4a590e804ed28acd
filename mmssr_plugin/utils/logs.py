"""The plugin's logger tree and how commands and the training stage show it.

Library modules log through ``logging.getLogger(__name__)``, all under the ``mmssr_plugin``
logger; only entry points (``mmssr-cli``, the LLaMA-Factory stage) call :func:`show_logs` to
decide where the lines go and how they look.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

ROOT_LOGGER = "mmssr_plugin"
_HANDLER_FLAG = "_mmssr_handler"


def show_logs(prefix: str = "", level: int = logging.INFO, stream: TextIO | None = None) -> None:
    """Print the plugin's log records as plain lines (``prefix`` + message) on ``stream``.

    Idempotent: a second call replaces the handler the first one installed.
    """
    logger = logging.getLogger(ROOT_LOGGER)
    for handler in list(logger.handlers):
        if getattr(handler, _HANDLER_FLAG, False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(logging.Formatter(prefix + "%(message)s"))
    setattr(handler, _HANDLER_FLAG, True)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
