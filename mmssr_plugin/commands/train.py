"""``mmssr-cli train x.yaml``: the selection stage, then LLaMA-Factory training on the subset.

The explicit twin of ``llamafactory-cli train x.yaml`` with the start-up hook: it runs the stage in
this process, writes the resolved config (``data_selection`` removed, ``dataset`` pointing at the
subsets) into the dataset's selection cache and hands it to ``llamafactory-cli train``, so torchrun
children read a plain config and need no hook.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from mmssr_plugin.commands import CommandError

HELP = "run the data_selection stage of a training YAML, then llamafactory-cli train on the subset"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``train``."""
    parser.add_argument("config", type=Path, nargs="?",
                        help="LLaMA-Factory training YAML with data_selection")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, as llamafactory-cli takes")
    parser.add_argument("--help-config", action="store_true",
                        help="list the data_selection keys with their defaults and exit")
    parser.add_argument("--select-only", action="store_true",
                        help="make and register the subset, print the resolved config, do not train")


def run(args: argparse.Namespace) -> int:
    """Select, then train (unless --select-only)."""
    import yaml

    from mmssr_plugin.llamafactory.config import DataSelectionError
    from mmssr_plugin.llamafactory.hook import load_config_args
    from mmssr_plugin.llamafactory.stage import apply_data_selection
    from mmssr_plugin.utils.files import atomic_write_text
    from mmssr_plugin.utils.hashing import canonical_hash

    if args.help_config:
        from mmssr_plugin.llamafactory.config import help_text

        print("data_selection keys:\n" + help_text())
        return 0
    if args.config is None or not args.config.is_file():
        raise CommandError(f"training config {args.config} not found" if args.config else "give a training YAML (or --help-config)")
    try:
        train_args = load_config_args(str(args.config), list(args.overrides))
        if not isinstance(train_args, dict):
            raise CommandError(f"{args.config} does not hold a mapping of training arguments")
        cache_dir = _cache_dir(train_args)
        if "data_selection" in train_args:
            train_args = apply_data_selection(train_args)
    except DataSelectionError as exc:
        raise CommandError(str(exc)) from None
    except KeyboardInterrupt as exc:  # SIGINT, or SIGTERM while scoring (exit_status 143)
        print("mmssr-cli: interrupted; finished score shards are kept, rerun to resume", file=sys.stderr)
        return getattr(exc, "exit_status", 130)
    resolved = cache_dir / "train_configs" / f"{canonical_hash(train_args, 12)}.yaml"
    resolved.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(resolved, yaml.safe_dump(train_args, sort_keys=False))
    print(f"[mmssr] resolved training config: {resolved}", file=sys.stderr)
    if args.select_only:
        print(resolved.read_text())
        return 0
    env = {**os.environ, "MMSSR_DISABLE_HOOK": "1"}
    command = [sys.executable, "-m", "llamafactory.cli", "train", str(resolved)]
    return subprocess.run(command, env=env, check=False).returncode


def _cache_dir(train_args: dict[str, Any]) -> Path:
    """The selection's cache folder (the block's cache_dir, else the dataset's ``.mmssr_cache``)."""
    from mmssr_plugin.llamafactory.config import OutputConfig, StagePaths

    block = train_args.get("data_selection")
    cache_dir = block.get("cache_dir") if isinstance(block, dict) else None
    return StagePaths.resolve(train_args, OutputConfig(cache_dir=cache_dir)).cache_dir
