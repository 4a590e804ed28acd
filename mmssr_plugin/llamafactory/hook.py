"""Wrappers around LLaMA-Factory's ``launch`` and ``tuner.read_args`` that run the selection stage.

``launch`` (the ``llamafactory-cli`` parent, before torchrun exists) runs the stage once for
``train`` commands. ``tuner.read_args`` (every path into ``run_exp``: in-process training, torchrun
children, ``accelerate launch``, Python callers) pops the ``data_selection`` block, runs or reuses
the stage and points ``dataset`` at the registered subset, so HfArgumentParser never sees the block.
With ``tuner`` the ``mmssr_llava_qwen`` template and plugin are registered too.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

WRAPPED = "__mmssr_wrapped__"


def patch_module(module: ModuleType) -> None:
    """Wrap the entry points of a freshly imported LLaMA-Factory module (idempotent)."""
    if module.__name__ == "llamafactory.launcher":
        _wrap(module, "launch", _wrap_launch)
    elif module.__name__ == "llamafactory.train.tuner":
        _wrap(module, "read_args", _wrap_read_args)
        from mmssr_plugin.llamafactory.llava_qwen_template import register

        register()  # the template of converted llava_qwen checkpoints


def _wrap(module: ModuleType, name: str, wrapper: Callable[[Callable], Callable]) -> None:
    original = getattr(module, name, None)
    if original is None or getattr(original, WRAPPED, False):
        return
    wrapped = wrapper(original)
    setattr(wrapped, WRAPPED, True)
    setattr(module, name, wrapped)


def _wrap_launch(original: Callable[[], Any]) -> Callable[[], Any]:
    @functools.wraps(original)
    def launch() -> Any:
        if len(sys.argv) > 2 and sys.argv[1] == "train" and _is_config_path(sys.argv[2]):
            args = load_config_args(sys.argv[2], sys.argv[3:])
            if isinstance(args, dict) and "data_selection" in args:
                _run_or_exit(args)
        return original()

    return launch


def _wrap_read_args(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def read_args(args: Any = None) -> Any:
        result = original(args)
        if isinstance(result, dict) and "data_selection" in result:
            result = _run_or_exit(dict(result))
        return result

    return read_args


def _run_or_exit(args: dict[str, Any]) -> dict[str, Any]:
    from mmssr_plugin.llamafactory.config import DataSelectionError
    from mmssr_plugin.llamafactory.stage import apply_data_selection

    try:
        return apply_data_selection(args)
    except DataSelectionError as exc:
        print(f"mmssr-plugin: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _is_config_path(arg: str) -> bool:
    return arg.endswith((".yaml", ".yml", ".json"))


def load_config_args(path: str, overrides: list[str]) -> Any:
    """Read the training config exactly as LLaMA-Factory's read_args does."""
    import json

    from omegaconf import OmegaConf

    override_config = OmegaConf.from_cli(overrides)
    if path.endswith(".json"):
        dict_config = OmegaConf.create(json.loads(Path(path).absolute().read_text()))
    else:
        dict_config = OmegaConf.load(Path(path).absolute())
    return OmegaConf.to_container(OmegaConf.merge(dict_config, override_config))
