"""``headshot-lab audit run`` / ``audit merge``: the suite's commands, added to the package's CLI as a plugin.

Declared in ``pyproject.toml`` under ``[project.entry-points."headshot_lab.audit_commands"]``; the
package finds it with :func:`importlib.metadata.entry_points` and never imports ``eval`` itself.
"""

from __future__ import annotations

import argparse


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``run`` (the same as ``python -m eval``) and ``merge`` to ``headshot-lab audit``."""
    from eval.__main__ import add_run_arguments

    run = commands.add_parser("run", help="run an audit config (python -m eval)")
    add_run_arguments(run)
    run.set_defaults(handler=run_audit)

    merge = commands.add_parser("merge", help="merge the output folders of sharded runs")
    merge.add_argument("shards", nargs="+", help="shard output folders")
    merge.add_argument("--output-path", dest="output_path", required=True)
    merge.add_argument("--quiet", action="store_true")
    merge.set_defaults(handler=run_merge)


def run_audit(args: argparse.Namespace) -> int:
    from eval.__main__ import run_from_args

    return run_from_args(args)


def run_merge(args: argparse.Namespace) -> int:
    from eval.__main__ import merge_from_args

    return merge_from_args([*args.shards, "--output-path", args.output_path, *(["--quiet"] if args.quiet else [])])
