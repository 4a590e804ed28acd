"""Command-line options generated from a config dataclass: one option per field, its default,
type, choices and help taken from the field, so no default is declared twice."""

from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, fields
from typing import Any


def add_config_flags(
    parser: argparse.ArgumentParser | Any,
    config_class: type,
    names: Iterable[str] | None = None,
    flags: Mapping[str, str] | None = None,
) -> None:
    """Add ``--<field-name>`` options (dest = the field name) for fields of ``config_class``.

    Args:
        parser: a parser or argument group.
        config_class: a dataclass whose fields carry ``help`` (and optionally ``choices``) metadata.
        names: the fields to expose, in this order (default: all, in declaration order).
        flags: field name -> option name where it differs from ``--<field-name>``.
    """
    by_name = {f.name: f for f in fields(config_class)}
    hints = typing.get_type_hints(config_class)
    for name in names if names is not None else by_name:
        f = by_name[name]
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        option = (flags or {}).get(name, "--" + name.replace("_", "-"))
        kwargs: dict[str, Any] = {"dest": name, "default": default, "help": f.metadata.get("help")}
        value_type = _scalar_type(hints[name])
        if value_type is not str:
            kwargs["type"] = value_type
        if "choices" in f.metadata:
            kwargs["choices"] = f.metadata["choices"]
        parser.add_argument(option, **kwargs)


def _scalar_type(hint: Any) -> type:
    """``int`` for ``int | None``, ``float`` for ``float``, ``str`` otherwise."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = options[0] if len(options) == 1 else str
    return hint if hint in (int, float) else str
