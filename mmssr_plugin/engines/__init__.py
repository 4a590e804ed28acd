"""Scoring engines behind one interface, looked up by name.

Importing this package never imports torch: backends load when an engine is built, and an
engine's identity (for score fingerprints) is computed without loading any model.
"""

from __future__ import annotations

import importlib
from typing import Any

from mmssr_plugin.core.style_parsing import StyleAnswer, parse_styles
from mmssr_plugin.engines.base import ScoringEngine, path_fingerprint
from mmssr_plugin.engines.hf.config import (
    scorer_config_fields as hf_scorer_config_fields,
)

# name -> (module, class); modules import lazily.
ENGINES: dict[str, tuple[str, str]] = {
    "hf": (f"{__name__}.hf.engine", "HfEngine"),
    "fake": (f"{__name__}.fake", "FakeEngine"),
}

# ScorerConfig fields each backend takes (a config carries fields for all backends).
_CONFIG_FIELDS: dict[str, tuple[str, ...]] = {
    "hf": hf_scorer_config_fields(),
    "fake": (),
}


def engine_class(name: str) -> type[ScoringEngine]:
    """The engine class registered under ``name``."""
    if name not in ENGINES:
        raise ValueError(f"unknown scoring engine {name!r}; available: {', '.join(ENGINES)}")
    module, cls = ENGINES[name]
    return getattr(importlib.import_module(module), cls)


def _resolve(spec: Any, kwargs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if isinstance(spec, str):
        return spec, kwargs
    name = getattr(spec, "backend", None)
    if not isinstance(name, str):
        raise TypeError(f"expected an engine name or a ScorerConfig, got {type(spec).__name__}")
    fields = {key: getattr(spec, key) for key in _CONFIG_FIELDS.get(name, ())}
    return name, {**fields, **kwargs}


def get_engine(spec: Any, **kwargs: Any) -> ScoringEngine:
    """Build an engine (loading its model for ``hf``).

    Args:
        spec: an engine name (``"hf"``, ``"fake"``) or a ``ScorerConfig``.
        **kwargs: constructor arguments; with a config they override its fields.
    """
    name, kwargs = _resolve(spec, kwargs)
    return engine_class(name)(**kwargs)


def engine_identity(spec: Any, **kwargs: Any) -> dict[str, Any]:
    """The identity an engine built from the same arguments would report, without building it."""
    name, kwargs = _resolve(spec, kwargs)
    return engine_class(name).describe(**kwargs)


__all__ = [
    "ENGINES",
    "ScoringEngine",
    "StyleAnswer",
    "engine_class",
    "engine_identity",
    "get_engine",
    "parse_styles",
    "path_fingerprint",
]
