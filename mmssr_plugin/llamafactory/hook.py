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
ERROR_PREFIX = "mmssr-plugin: error: "
DISABLED_MESSAGE = (
    "the training config has a data_selection block, but MMSSR_DISABLE_HOOK=1 switches the "
    "selection stage off: remove the block, unset MMSSR_DISABLE_HOOK, or run `mmssr-cli train`"
)

# Whether this process's launch() already ran the stage (read_args then reuses it quietly).
_STATE = {"launched": False}


def patch_module(module: ModuleType, disabled: bool = False) -> None:
    """Wrap the entry points of a freshly imported LLaMA-Factory module (idempotent).

    With ``disabled`` (``MMSSR_DISABLE_HOOK=1``) only ``read_args`` is wrapped, to refuse a
    ``data_selection`` block with a clear line instead of LLaMA-Factory's unused-keys error. The
    ``mmssr_llava_qwen`` template is registered either way: it only adds a name, and training a
    converted checkpoint needs it with the selection stage switched off too.
    """
    if module.__name__ == "llamafactory.launcher" and not disabled:
        _wrap(module, "launch", _wrap_launch)
    elif module.__name__ == "llamafactory.train.tuner":
        _wrap(module, "read_args", functools.partial(_wrap_read_args, refuse=disabled))
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
            args = _load_or_exit(sys.argv[2], sys.argv[3:])
            if isinstance(args, dict) and "data_selection" in args:
                _run_or_exit(args)
                _STATE["launched"] = True
        return original()

    return launch


def _wrap_read_args(original: Callable[..., Any], refuse: bool = False) -> Callable[..., Any]:
    """``read_args`` that runs the stage on a ``data_selection`` block (or, ``refuse``, exits)."""

    @functools.wraps(original)
    def read_args(args: Any = None) -> Any:
        result = original(args)
        if isinstance(result, dict) and "data_selection" in result:
            if refuse:
                print(ERROR_PREFIX + DISABLED_MESSAGE, file=sys.stderr)
                raise SystemExit(2)
            result = _run_or_exit(dict(result), announce_reuse=not _STATE["launched"])
        return result

    return read_args


def _run_or_exit(args: dict[str, Any], announce_reuse: bool = True) -> dict[str, Any]:
    """Run the stage; a bad input or an internal error ends the process with one line."""
    from mmssr_plugin.llamafactory.config import DataSelectionError
    from mmssr_plugin.llamafactory.stage import apply_data_selection

    try:
        return apply_data_selection(args, announce_reuse=announce_reuse)
    except DataSelectionError as exc:
        print(ERROR_PREFIX + " ".join(str(exc).split()), file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt as exc:  # SIGINT, or SIGTERM while scoring (exit_status 143)
        print(ERROR_PREFIX + "interrupted; finished score shards are kept, rerun to resume",
              file=sys.stderr)
        raise SystemExit(getattr(exc, "exit_status", 130)) from None
    except Exception as exc:  # noqa: BLE001 - a bug: one line, the traceback in a log file
        from mmssr_plugin.utils.error_log import internal_error_line

        print(ERROR_PREFIX + internal_error_line(exc, "data_selection stage"), file=sys.stderr)
        raise SystemExit(1) from None


def _is_config_path(arg: str) -> bool:
    return arg.endswith((".yaml", ".yml", ".json"))


def _load_or_exit(path: str, overrides: list[str]) -> Any:
    from mmssr_plugin.llamafactory.config import DataSelectionError

    try:
        return load_config_args(path, overrides)
    except DataSelectionError as exc:
        print(ERROR_PREFIX + str(exc), file=sys.stderr)
        raise SystemExit(2) from None


def load_config_args(path: str, overrides: list[str]) -> Any:
    """Read the training config exactly as LLaMA-Factory's read_args does.

    Raises:
        DataSelectionError: the file is missing or not valid YAML/JSON, or an override is malformed.
    """
    import json

    from omegaconf import OmegaConf

    from mmssr_plugin.llamafactory.config import DataSelectionError

    try:
        override_config = OmegaConf.from_cli(overrides)
        if path.endswith(".json"):
            dict_config = OmegaConf.create(json.loads(Path(path).absolute().read_text()))
        else:
            dict_config = OmegaConf.load(Path(path).absolute())
        if not OmegaConf.is_dict(dict_config):
            raise DataSelectionError(f"{path} does not hold a mapping of training arguments")
        return OmegaConf.to_container(OmegaConf.merge(dict_config, override_config))
    except DataSelectionError:
        raise
    except Exception as exc:  # noqa: BLE001 - YAML, JSON, OmegaConf and OS errors alike
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise DataSelectionError(f"cannot read training config {path}: {reason}") from None
