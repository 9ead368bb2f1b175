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
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from headshot_lab import __version__
from headshot_lab.errors import HeadshotLabError

COMMAND_MODULES = (
    "headshot_lab.cli.check",
    "headshot_lab.cli.generate",
    "headshot_lab.cli.studio",
    "headshot_lab.cli.ship",
    "headshot_lab.cli.audit",
    "headshot_lab.cli.team",
    "headshot_lab.cli.upscale",
    "headshot_lab.ui.cli",
)


_SURROGATE = re.compile("[\ud800-\udfff]")


def json_text(payload: object) -> str:
    r"""``payload`` as indented JSON, valid UTF-8 whatever the file names in it.

    A file name that is not valid UTF-8 reaches Python as a str with surrogate escapes (``caf\udce9.jpg`` for
    the bytes ``caf\xe9.jpg``); those characters are written as ``\udcXX`` escapes, which every JSON parser
    reads and Python's ``os.fsencode(json.loads(...))`` turns back into the original bytes.
    """
    text = json.dumps(payload, indent=2, ensure_ascii=False, default=str)
    return _SURROGATE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def print_json(payload: object) -> None:
    """Write ``payload`` as indented JSON to stdout (the machine-readable contract; see :func:`json_text`)."""
    text = json_text(payload)
    try:
        sys.stdout.write(text + "\n")
    except UnicodeEncodeError:  # a stdout that only takes ASCII: escape everything
        sys.stdout.write(json.dumps(payload, indent=2, ensure_ascii=True, default=str) + "\n")


def print_line(text: str, file: TextIO | None = None) -> None:
    """Print one line; a file name that is not valid UTF-8 goes out as its original bytes (never a traceback)."""
    stream = file or sys.stdout
    try:
        stream.write(text + "\n")
        return
    except UnicodeEncodeError:
        pass
    buffer = getattr(stream, "buffer", None)
    if buffer is None:
        stream.write(text.encode("ascii", "backslashreplace").decode("ascii") + "\n")
        return
    stream.flush()
    buffer.write(os.fsencode(text) + b"\n")
    buffer.flush()


def output_folder(path: str | os.PathLike[str], flag: str = "--out") -> Path:
    """The output folder ``path``, created when missing; a clear error when it is a file (or inside one).

    Raises:
        HeadshotLabError: ``out_not_a_folder``, ``out_not_writable``.
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise HeadshotLabError(
            f"{flag} {folder} is a file, not a folder.",
            fix=f"Give {flag} a folder (it is created when missing), e.g. {folder.parent / (folder.name + '-out')}.",
            code="out_not_a_folder",
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise HeadshotLabError(
            f"{flag} {folder}: part of this path is a file, not a folder.",
            fix=f"Give {flag} a folder path whose parents are folders.",
            code="out_not_a_folder",
        ) from None
    except PermissionError:
        raise HeadshotLabError(
            f"{flag} {folder}: this folder cannot be created or written here (permission denied).",
            fix=f"Give {flag} a folder you can write to.",
            code="out_not_writable",
        ) from None
    return folder


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
        print_line(f"error: {exc.message}", sys.stderr)
        if exc.fix:
            print_line(f"fix: {exc.fix}", sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except OSError as exc:  # a path the command could not use: said in one line, not a traceback
        where = f": {exc.filename}" if exc.filename else ""
        print_line(f"error: {exc.strerror or exc}{where}", sys.stderr)
        print_line("fix: check the paths given (folders exist and are writable, names are not too long).", sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
