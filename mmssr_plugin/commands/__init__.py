"""Subcommands of ``mmssr-cli``, one module each.

A command module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``,
and imports heavy dependencies inside ``run`` only, so building the parser stays cheap. To add a
command, write ``commands/<name>.py`` and add ``<name>`` to ``COMMANDS``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

COMMANDS: tuple[str, ...] = (
    "select", "score", "train", "report", "curate", "build-scorer-data", "eval-scorer", "convert",
)


class CommandError(Exception):
    """A bad argument or unusable input; the CLI prints its message as one error line."""


def load_command(name: str) -> ModuleType:
    """The module implementing subcommand ``name``."""
    return importlib.import_module(f"{__name__}.{name.replace('-', '_')}")
