"""``mmssr-cli convert``: make a released mmSSR checkpoint fine-tunable with LLaMA-Factory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mmssr_plugin.commands import CommandError

HELP = "convert a released llava_qwen mmSSR checkpoint into one llamafactory-cli can fine-tune"
LAYOUTS = ("llava_qwen",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``convert``."""
    parser.add_argument("--layout", required=True, choices=LAYOUTS,
                        help="layout of the source checkpoint (llava_qwen: the released scorer "
                             "and styler)")
    parser.add_argument("source", type=Path, help="downloaded checkpoint folder")
    parser.add_argument("target", type=Path, help="folder to write (kept when already converted)")


def run(args: argparse.Namespace) -> int:
    """Convert and print the folder to use as ``model_name_or_path``."""
    from mmssr_plugin.engines.hf.llava_qwen_checkpoint import UnsupportedCheckpoint
    from mmssr_plugin.engines.hf.llava_qwen_convert import convert_llava_qwen
    from mmssr_plugin.utils.logs import show_logs

    show_logs(stream=sys.stdout)
    try:
        target = convert_llava_qwen(args.source, args.target)
    except UnsupportedCheckpoint as exc:
        raise CommandError(str(exc)) from None
    print(f"converted checkpoint: {target} (train with template: mmssr_llava_qwen, "
          "trust_remote_code: true)")
    return 0
