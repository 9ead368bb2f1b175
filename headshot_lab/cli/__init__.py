"""``headshot-lab`` command line: a thin face over the library (a stable contract; tools parse it).

Each group of commands lives in its own module with a ``register(subparsers)`` function; heavy
libraries are imported inside the handlers so ``headshot-lab --help`` stays fast.

Exit codes: 0 when the command did its job (a report with problems in it is still a report),
1 when it could not (e.g. missing model weights), 2 on usage errors.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence

from headshot_lab import __version__
from headshot_lab.errors import HeadshotLabError

COMMAND_MODULES = (
    "headshot_lab.cli.check",
    "headshot_lab.cli.generate",
    "headshot_lab.cli.studio",
    "headshot_lab.cli.ship",
    "headshot_lab.cli.audit",
    "headshot_lab.ui.cli",
)


def print_json(payload: object) -> None:
    """Write ``payload`` as indented JSON to stdout (the machine-readable contract)."""
    json.dump(payload, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="headshot-lab",
        description="AI professional headshots that measure their own bias.",
    )
    parser.add_argument("--version", action="version", version=f"headshot-lab {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_reporting_errors(args.handler, args)


def run_reporting_errors(handler: Callable[..., int | None], *args: object) -> int:
    """Call ``handler(*args)``; a :class:`HeadshotLabError` becomes ``error:``/``fix:`` lines and exit code 1."""
    try:
        return int(handler(*args) or 0)
    except HeadshotLabError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.fix:
            print(f"fix: {exc.fix}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
