"""``mmssr-cli``: one argparse dispatcher; each subcommand lives in ``mmssr_plugin/commands/``.

Building the parser is cheap (numpy at most, for the config dataclasses whose fields become
options; no pyarrow or torch): subcommands import what they need when they run.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import NoReturn, Sequence

from mmssr_plugin.commands import COMMANDS, CommandError, load_command

PROG = "mmssr-cli"


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors become one ``CommandError`` line instead of usage + exit."""

    def error(self, message: str) -> NoReturn:
        raise CommandError(message)


def build_parser() -> argparse.ArgumentParser:
    """The parser with every subcommand of ``commands.COMMANDS`` registered."""
    parser = _Parser(prog=PROG, description="mmSSR data selection for LLaMA-Factory.")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        command = load_command(name)
        sub = subparsers.add_parser(name, help=command.HELP, description=command.HELP)
        command.add_arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``mmssr-cli``.

    Returns:
        The exit status: 0 on success (also when a reader such as ``head`` closed stdout early);
        2 with one line ``mmssr-cli: error: <reason>`` on stderr for bad arguments or unusable
        inputs; 130 on Ctrl-C; 1 with one line naming a log file that holds the traceback for an
        unexpected internal error.
    """
    try:
        args = build_parser().parse_args(argv)
        status = int(args.run(args) or 0)
        sys.stdout.flush()
        return status
    except SystemExit as stop:  # --help / --version
        return stop.code if isinstance(stop.code, int) else 0
    except BrokenPipeError:  # `mmssr-cli ... | head -1`: the reader wants no more
        _silence_stdout()
        return 0
    except (CommandError, ValueError, OSError) as err:
        reason = " ".join(str(err).split()) or type(err).__name__
        print(f"{PROG}: error: {reason}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # SIGINT, or SIGTERM while scoring (exit_status 143)
        print(f"{PROG}: interrupted", file=sys.stderr)
        return getattr(exc, "exit_status", 130)
    except Exception as err:  # noqa: BLE001 - a bug: one line, the traceback in a log file
        from mmssr_plugin.utils.error_log import internal_error_line

        print(f"{PROG}: {internal_error_line(err, ' '.join(sys.argv))}", file=sys.stderr)
        return 1


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


if __name__ == "__main__":
    sys.exit(main())
