"""Checks that need no model, run before any model loads: scorer paths, layout and template, and
the folders and files a selection will write. Each problem is one ``DataSelectionError`` line
naming the key and what would be valid."""

from __future__ import annotations

import difflib
import importlib.util
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

from mmssr_plugin.engines.hf.llava_qwen_checkpoint import (
    UnsupportedCheckpoint,
    load_spec,
    resolve_layout,
)
from mmssr_plugin.llamafactory.config import DataSelectionError
from mmssr_plugin.llamafactory.llava_qwen_template import NAME as LLAVA_QWEN_TEMPLATE
from mmssr_plugin.scoring.config import DEFAULT_TEMPLATE, ScorerConfig

# A hub id: "name" or "org/name" (letters, digits, '-', '_', '.').
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")

# (scorer field, file a local folder must hold, what it is)
_MODEL_PATHS = (
    ("model_name_or_path", "config.json", "model"),
    ("adapter_name_or_path", "adapter_config.json", "LoRA adapter"),
    ("styler_model_name_or_path", "config.json", "model"),
    ("styler_adapter_name_or_path", "adapter_config.json", "LoRA adapter"),
)


def check_scorer(scorer: ScorerConfig, prefix: str = "data_selection.") -> None:
    """Model and adapter paths (a local folder with its config, or a hub id) and the template.

    Args:
        scorer: the scorer settings (only the ``hf`` backend loads models).
        prefix: how keys are named in messages (``data_selection.`` for the YAML block).
    """
    if scorer.backend != "hf":
        return
    for name, marker, what in _MODEL_PATHS:
        value = getattr(scorer, name)
        if value:
            check_model_path(f"{prefix}{name}", str(value), marker, what)
    layouts = {f"{prefix}{key}": check_layout(f"{prefix}{key}", path, scorer.model_layout)
               for key, path in _models(scorer).items()}
    check_template(scorer.template, f"{prefix}template", layouts)
    check_engine_settings(scorer, prefix, layouts)


def check_engine_settings(scorer: ScorerConfig, prefix: str, layouts: dict[str, str]) -> None:
    """Engine settings the values alone do not rule out (``ScorerConfig`` checks those): an
    attention implementation this environment cannot load, or settings the ``llava_qwen`` layout
    would ignore (its images are always 384x384, its attention SDPA)."""
    key = f"{prefix}flash_attn"
    if scorer.flash_attn == "fa3":
        raise DataSelectionError(
            f"{key}: fa3 is loaded by LLaMA-Factory for gpt-oss models only; use sdpa (all "
            "query branches of a sample in one row), disabled (eager), fa2 or auto")
    if scorer.flash_attn == "fa2" and importlib.util.find_spec("flash_attn") is None:
        raise DataSelectionError(
            f"{key}: fa2 needs the flash-attn package, which is not installed (pip install "
            "flash-attn); or use sdpa")
    if "llamafactory" in layouts.values():
        return
    ignored = [name for name, default in (("image_max_pixels", None), ("image_min_pixels", None),
                                          ("flash_attn", "sdpa"))
               if getattr(scorer, name) != default]
    if ignored:
        raise DataSelectionError(
            f"{prefix}{ignored[0]}: not used by the llava_qwen layout, which resizes every image "
            f"to 384x384 and runs SDPA attention; leave {prefix}{ignored[0]} unset")


def _models(scorer: ScorerConfig) -> dict[str, str]:
    """Config key -> model path of every model the scorer loads (a styler adapter alone rides on
    the scorer's model)."""
    models = {"model_name_or_path": str(scorer.model_name_or_path)}
    if scorer.styler_model_name_or_path:
        models["styler_model_name_or_path"] = str(scorer.styler_model_name_or_path)
    return models


def check_layout(key: str, path: str, model_layout: str) -> str:
    """The layout of the model at ``path``; a ``llava_qwen`` one must be a local folder whose
    ``config.json`` the loader supports (projector, vision tower, patch merge)."""
    try:
        layout = resolve_layout(model_layout, path)
        if layout == "llava_qwen":
            load_spec(path)
    except json.JSONDecodeError as exc:
        raise DataSelectionError(f"{key}: {path}/config.json is not valid JSON ({exc})") from None
    except UnsupportedCheckpoint as exc:
        raise DataSelectionError(f"{key}: {exc}") from None
    return layout


def check_model_path(key: str, value: str, marker: str, what: str) -> None:
    """``value`` must be a local folder holding ``marker``, or have the shape of a hub id."""
    path = Path(value).expanduser()
    valid = f"give a local {what} folder (with {marker}) or a hub id such as org/name"
    if path.is_dir():
        if not (path / marker).is_file():
            raise DataSelectionError(f"{key}: folder {value} holds no {marker}; {valid}")
        return
    if path.exists():
        raise DataSelectionError(f"{key}: {value} is a file, not a {what} folder; {valid}")
    if _looks_like_path(value):
        raise DataSelectionError(f"{key}: {value} does not exist; {valid}")


def _looks_like_path(value: str) -> bool:
    """Whether a missing ``value`` was meant as a local path rather than a hub id."""
    if not _HUB_ID.match(value):
        return True
    first = value.split("/", 1)[0]
    return "/" in value and Path(first).is_dir()


def check_template(name: str, key: str, layouts: dict[str, str]) -> None:
    """``name`` must suit the layouts of the models (their config keys -> layout).

    LLaMA-Factory-layout models need a name in LLaMA-Factory's template registry (imported here,
    not at start-up). The ``llava_qwen`` layout builds the authors' prompts itself and uses no
    template: there ``name`` is left at its default or is ``mmssr_llava_qwen``, the template
    converted checkpoints are trained with.
    """
    llamafactory = [model for model, layout in layouts.items() if layout == "llamafactory"]
    if not llamafactory:
        if name not in (DEFAULT_TEMPLATE, LLAVA_QWEN_TEMPLATE):
            raise DataSelectionError(
                f"{key}: {name!r} is not used by the llava_qwen layout, which builds the authors' "
                f"prompts itself; leave {key} unset (or {LLAVA_QWEN_TEMPLATE})")
        return
    if name == LLAVA_QWEN_TEMPLATE:
        raise DataSelectionError(
            f"{key}: {name} is the template of converted llava_qwen checkpoints, but "
            f"{llamafactory[0]} loads through LLaMA-Factory (model_layout "
            "llamafactory, or a config.json without mm_vision_tower); give that model's "
            "LLaMA-Factory template or model_layout llava_qwen")
    from llamafactory.data.template import TEMPLATES

    if name in TEMPLATES:
        return
    close = difflib.get_close_matches(str(name), list(TEMPLATES), n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise DataSelectionError(
        f"{key}: unknown template {name!r}; {hint}LLaMA-Factory has {len(TEMPLATES)} templates "
        f"({', '.join(sorted(TEMPLATES)[:8])}, ...; see llamafactory/data/template.py)"
    )


def check_folder(key: str, folder: Path) -> None:
    """``folder`` must be usable as a folder: a directory, or creatable in a writable one."""
    if folder.exists():
        if not folder.is_dir():
            raise DataSelectionError(
                f"{key}: {folder} is an existing file; give a folder (created if missing)"
            )
        if not os.access(folder, os.W_OK | os.X_OK):
            raise DataSelectionError(f"{key}: folder {folder} is not writable")
        return
    existing = next((p for p in folder.absolute().parents if p.exists()), None)
    if existing is None or not existing.is_dir():
        raise DataSelectionError(
            f"{key}: {folder} cannot be created: {existing} is a file, not a folder"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise DataSelectionError(f"{key}: {folder} cannot be created in {existing} (not writable)")


def check_files_writable(key: str, files: Iterable[Path]) -> None:
    """No file the selection will write may be blocked by a folder of the same name."""
    for path in files:
        if path.is_dir():
            raise DataSelectionError(
                f"{key}: the file {path} would be written but a folder has that name; remove the "
                f"folder or choose another {key}"
            )
