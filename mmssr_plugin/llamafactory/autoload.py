"""Imported at interpreter start by ``mmssr_plugin_autoload.pth`` in site-packages.

It only registers a post-import hook: when ``llamafactory.launcher`` or
``llamafactory.train.tuner`` is imported, :mod:`mmssr_plugin.llamafactory.hook` wraps their
``launch`` and ``read_args``. Nothing else is imported; ``MMSSR_DISABLE_HOOK=1`` switches the stage
off (a ``data_selection`` block is then refused with one clear line).
Safe to import any number of times.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import sys
from typing import Any

TARGETS = ("llamafactory.launcher", "llamafactory.train.tuner")
DISABLE_ENV = "MMSSR_DISABLE_HOOK"


class _PatchingLoader(importlib.abc.Loader):
    """Runs the real loader, then patches the freshly executed module."""

    def __init__(self, inner: importlib.abc.Loader, disabled: bool = False):
        self._inner = inner
        self._disabled = disabled

    def create_module(self, spec: Any) -> Any:
        return self._inner.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._inner.exec_module(module)
        from mmssr_plugin.llamafactory.hook import patch_module

        patch_module(module, disabled=self._disabled)

    def __getattr__(self, name: str) -> Any:  # get_code, get_source, ... for tools that ask
        return getattr(self._inner, name)


class LlamaFactoryHookFinder(importlib.abc.MetaPathFinder):
    """Finds nothing itself; wraps the loader of the LLaMA-Factory modules it patches."""

    _busy: set[str] = set()

    def __init__(self, disabled: bool = False) -> None:
        self.disabled = disabled

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname not in TARGETS or fullname in self._busy:
            return None
        self._busy.add(fullname)
        try:
            spec = importlib.util.find_spec(fullname)
        finally:
            self._busy.discard(fullname)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _PatchingLoader(spec.loader, self.disabled)
        return spec


def install() -> bool:
    """Register the finder once (patching modules already imported); False when disabled.

    Disabled, the finder only makes ``read_args`` refuse a ``data_selection`` block with a clear
    line (the block would otherwise fail as an unknown training argument).
    """
    disabled = os.environ.get(DISABLE_ENV, "").lower() in ("1", "true", "yes")
    if not any(isinstance(f, LlamaFactoryHookFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, LlamaFactoryHookFinder(disabled))
    already = [sys.modules[name] for name in TARGETS if name in sys.modules]
    if already:
        from mmssr_plugin.llamafactory.hook import patch_module

        for module in already:
            patch_module(module, disabled=disabled)
    return not disabled


install()
