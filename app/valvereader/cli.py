"""`valvereader` command line. With no subcommand (or only paths) it opens the window.

Each subcommand lives in the module that owns it, which provides ``add_arguments(parser)``
and ``run(args) -> int``; those modules import heavy packages (torch, Qt) inside ``run`` only,
so that ``valvereader --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from . import DISCLAIMER, __version__

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "classify": ("valvereader.inference.classify", "identify the valve in X-ray files or folders"),
    "info": ("valvereader.io.info", "show what the loader sees in a file"),
    "phantoms": ("valvereader.phantoms.cli", "generate phantom skull radiographs with valves"),
    "train": ("valvereader.training.cli_train", "train a valve model"),
    "evaluate": ("valvereader.training.cli_evaluate", "cross-validate or test a valve model"),
    "view": ("valvereader.gui.launch", "open the viewer (optionally save a screenshot and exit)"),
    "serve": ("valvereader.node.cli", "run a DICOM node that reads the films it receives"),
    "export-reviews": ("valvereader.review_export", "write a reviewed batch's accepted and corrected valves as training crops"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``only`` just that subcommand's module is imported (start-up)."""
    parser = argparse.ArgumentParser(
        prog="valvereader",
        description=f"Shunt Valve Reader {__version__}. {DISCLAIMER}",
    )
    parser.add_argument("--version", action="version", version=f"valvereader {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        if only is not None and name != only:
            continue
        sub_parser = sub.add_parser(name, help=help_text, description=f"{help_text}. {DISCLAIMER}")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            # A missing optional part (e.g. training without torch) must not break the rest.
            sub_parser.add_argument("rest", nargs=argparse.REMAINDER)
            sub_parser.set_defaults(_module=_Unavailable(name, exc))
            continue
        module.add_arguments(sub_parser)
        sub_parser.set_defaults(_module=module)
    return parser


class _Unavailable:
    def __init__(self, name: str, error: ImportError):
        self.name, self.error = name, error

    def run(self, args: argparse.Namespace) -> int:
        print(f"error: 'valvereader {self.name}' is not available here: {self.error}", file=sys.stderr)
        return 2


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # `valvereader` or `valvereader FILE...` opens the window, like any desktop viewer; a plain
    # word that is no file here is a mistyped subcommand, for argparse to refuse.
    if not argv or (argv[0] not in SUBCOMMANDS and not argv[0].startswith("-") and not _mistyped_command(argv[0])):
        argv = ["view", *argv]
    # Import only the subcommand asked for, so the window appears fast.
    parser = build_parser(argv[0] if argv[0] in SUBCOMMANDS else None)
    args = parser.parse_args(argv)
    if getattr(args, "_module", None) is None:  # only options, e.g. `valvereader --`
        parser.error("give a COMMAND, or files to open")
    if args.command == "view" and not _window_can_open(parser, args):
        return 2
    try:
        return int(args._module.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _mistyped_command(word: str) -> bool:
    return re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", word) is not None and not Path(word).exists()


def _window_can_open(parser: argparse.ArgumentParser, args: argparse.Namespace) -> bool:
    """Missing files are a usage error; no display (or Qt's libraries missing) one line, not Qt's abort."""
    missing = [str(path) for path in getattr(args, "paths", []) if not path.exists()]
    if missing:
        _subparser(parser, "view").error(f"no such file or folder: {', '.join(missing)}")
    from .gui.display_check import problem

    message = problem(screenless_ok=getattr(args, "screenshot", None) is not None)
    if message is not None:
        print(message, file=sys.stderr)
        return False
    return True


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and name in action.choices:
            return action.choices[name]
    return parser

if __name__ == "__main__":
    sys.exit(main())
