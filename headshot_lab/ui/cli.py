"""Command line for the two app actions no other command covers: ``audit-batch`` and ``delete-session``.

Both call :mod:`headshot_lab.workflow`, as the app's Audit tab and "Delete my data now" do. Registered in
``headshot_lab.cli.COMMAND_MODULES``; ``python -m headshot_lab.ui audit-batch …`` runs the same thing.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from pathlib import Path

from headshot_lab import workflow
from headshot_lab.privacy import SessionStore


def register(subparsers: argparse._SubParsersAction) -> None:
    """``headshot-lab audit-batch`` and ``headshot-lab delete-session``."""
    audit = subparsers.add_parser("audit-batch", help="audit card of a batch of outputs against the person's photos")
    audit.add_argument("outputs", nargs="+", help="output images or folders")
    audit.add_argument("--reference", required=True, action="append", help="the person's photos (files or folders)")
    audit.add_argument(
        "--paired", action="store_true", help="pair each output with the reference whose file stem it starts with"
    )
    audit.add_argument("--out", required=True, help="folder for report.md, results.json and the plots")
    audit.add_argument("--seed", type=int, default=0)
    audit.add_argument("--json", action="store_true", help="print the machine-readable card")
    audit.set_defaults(handler=run_audit_batch)

    delete = subparsers.add_parser("delete-session", help='delete one session\'s files now ("delete my data")')
    delete.add_argument("session_id", help="the 32-character session id")
    delete.add_argument("--data-dir", default=None, help="data folder (default: HEADSHOT_LAB_DATA_DIR)")
    delete.add_argument(
        "--publish-root",
        default=None,
        help="the app's published copies (default: $GRADIO_TEMP_DIR/published, else DATA_DIR/gradio/published)",
    )
    delete.add_argument("--json", action="store_true")
    delete.set_defaults(handler=run_delete_session)


def _expand(paths: Iterable[str]) -> dict[str, Path]:
    from headshot_lab.cli.check import expand_photo_args

    return {path.name: path for path in expand_photo_args(list(paths))}


def run_audit_batch(args: argparse.Namespace) -> int:
    from headshot_lab.cli import print_json

    references = _expand(args.reference)
    outputs = _expand(args.outputs)
    sources = workflow.pair_by_stem(outputs, references) if args.paired else {}
    card = workflow.audit_batch(references, outputs, sources=sources, out_dir=args.out, seed=args.seed)
    if args.json:
        print_json(card.to_dict())
    else:
        print(f"wrote {Path(args.out) / 'report.md'}; flags: {', '.join(card.flags) or 'none'}")
    return 0


def run_delete_session(args: argparse.Namespace) -> int:
    """:func:`headshot_lab.workflow.delete_session`: the session folder and its published copies, as the app does."""
    from headshot_lab.cli import print_json

    store = SessionStore(args.data_dir) if args.data_dir else SessionStore()
    deletion = workflow.delete_session(args.session_id, store=store, publish_root=args.publish_root, reason="user")
    payload = deletion.to_dict()
    if args.json:
        print_json(payload)
    else:
        print(
            f"deleted {payload['files']} files ({payload['bytes']} bytes) and {payload['published_files']} published copies"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m headshot_lab.ui audit-batch|delete-session …`` (the same as the headshot-lab commands)."""
    from headshot_lab.cli import run_reporting_errors

    parser = argparse.ArgumentParser(prog="python -m headshot_lab.ui")
    register(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args(argv)
    return run_reporting_errors(args.handler, args)
