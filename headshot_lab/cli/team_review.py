"""``headshot-lab team review|export|delete|purge``: sign-off, the DAM folder, and data gone.

Contracts (stable; tools parse them; ``DIR`` is the ``--out`` folder of a ``team run``):

* ``team review DIR --list [--json]`` (the default) — one line per person: ``ID STATE [reason / note]``;
  ``--json``: ``{"people": {id: entry}, "pending": [ids], "required_signoffs": [roles]}``.
* ``team review DIR --approve ID [ID …] [--by NAME] [--role ROLE] [--json]`` — approves the current files of
  each (all or none); ``--role`` names the sign-off (``hr``, ``legal``, ``brand``) when the guide lists
  ``sign_off``. ``--json``: ``{"changed": {id: entry}}``.
* ``team review DIR --reject ID --reason TEXT [--by NAME] [--json]`` — the reason is required.
* ``team review DIR --resubmit ID`` — marks a rejected/approved person as re-submitted (after a re-run).
* ``team export DIR --out DEST [--json]`` — the approved people's files in a DAM-ready folder with
  ``manifest.csv`` and ``manifest.json``; prints the files, then who was left out and why (stderr).
  ``--json``: :meth:`headshot_lab.team.dam.DamExport.to_dict`.
* ``team delete DIR PERSON_ID [--json]`` — removes the person everywhere, exports included, and says what went;
  ``--json``: :meth:`headshot_lab.team.retention.Deletion.to_dict`.
* ``team purge DIR [--now ISO] [--json]`` — removes inputs and intermediates past the guide's retention_days;
  ``--json``: :meth:`headshot_lab.team.retention.Purge.to_dict`.

Exit codes as :mod:`headshot_lab.cli` documents: 0 done (people left out of an export are still a done export),
1 when the command could not do it (not a team folder, unknown id, invalid transition, DEST inside DIR …: one
``error:``/``fix:`` pair, nothing changed), 2 on usage errors (e.g. ``--reject`` without ``--reason``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from headshot_lab.cli import print_json, print_line


def add_commands(team_subparsers: argparse._SubParsersAction) -> None:
    """Add ``review``, ``export``, ``delete`` and ``purge`` to the ``team`` command's subparsers."""
    review = team_subparsers.add_parser(
        "review",
        help="list review states, approve or reject people's headshots",
        description="Review states: pending -> approved, or rejected (with a reason) -> re-submitted after a "
        "re-run. An approval is of exactly the files there now; if they change, the person needs a new review.",
    )
    review.add_argument("dir", type=Path, metavar="DIR", help="the team folder (--out of `team run`)")
    action = review.add_mutually_exclusive_group()
    action.add_argument("--list", action="store_true", help="show every person's state (the default)")
    action.add_argument("--approve", nargs="+", metavar="ID", help="approve these people's current files")
    action.add_argument("--reject", metavar="ID", help="reject this person's files (needs --reason)")
    action.add_argument("--resubmit", metavar="ID", help="mark a re-run person as re-submitted")
    review.add_argument("--reason", help="why the files are rejected (said back to the person)")
    review.add_argument("--by", metavar="NAME", help="who reviews (recorded in the history)")
    review.add_argument("--role", metavar="ROLE", help="the sign-off this is, e.g. hr, legal, brand")
    review.add_argument("--json", action="store_true", help="print JSON")
    review.set_defaults(handler=run_review, parser=review)

    export = team_subparsers.add_parser(
        "export",
        help="copy the approved people's files into a DAM-ready folder with a manifest",
        description="Only approved people, only the exact files approved; each file's AI disclosure and sRGB "
        "profile are checked after the copy. A re-export replaces the folder cleanly.",
    )
    export.add_argument("dir", type=Path, metavar="DIR", help="the team folder")
    export.add_argument("--out", required=True, type=Path, metavar="DEST", help="the DAM folder (outside DIR)")
    export.add_argument("--json", action="store_true", help="print JSON")
    export.set_defaults(handler=run_export)

    delete = team_subparsers.add_parser(
        "delete",
        help="remove one person everywhere (their files, review, report rows and exported copies)",
    )
    delete.add_argument("dir", type=Path, metavar="DIR", help="the team folder")
    delete.add_argument("person_id", metavar="PERSON_ID", help="the person to remove")
    delete.add_argument("--json", action="store_true", help="print JSON")
    delete.set_defaults(handler=run_delete)

    purge = team_subparsers.add_parser(
        "purge",
        help="remove photos and intermediates older than the style guide's retention days",
    )
    purge.add_argument("dir", type=Path, metavar="DIR", help="the team folder")
    purge.add_argument("--now", metavar="ISO", help="the time to purge as of (default: now), e.g. 2027-01-01T00:00Z")
    purge.add_argument("--json", action="store_true", help="print JSON")
    purge.set_defaults(handler=run_purge)


def _entry_line(pid: str, entry: object) -> str:
    from headshot_lab.team.review import ReviewEntry

    assert isinstance(entry, ReviewEntry)
    extra = entry.reason if entry.state == "rejected" else entry.note
    if entry.signoffs and entry.state != "approved":
        extra = (extra + " " if extra else "") + f"(signed so far: {entry.approved_by})"
    elif entry.state == "approved" and entry.approved_by:
        extra = f"by {entry.approved_by}"
    return f"{pid}\t{entry.state}" + (f"\t{extra}" if extra else "")


def _one_line(text: str) -> str:
    """``text`` on one line (a checklist reason lists its photos on lines of its own)."""
    return " ".join(text.replace("\n- ", " ").split())


def _nothing_to_review(root: Path, pid: str) -> str:
    """``""`` for a person with headshots; else why there is nothing to review (a ``skipped``/``failed`` run
    state), so an admin does not read their ``pending`` as "waiting for me"."""
    from headshot_lab.team.layout import TeamLayout

    try:
        status = TeamLayout(root).read_status(pid)
    except (OSError, ValueError):
        return ""
    if status.state == "done" and status.files:
        return ""
    why = f" ({_one_line(status.reason)})" if status.reason else ""
    return f"nothing to review: {status.state}{why}"


def run_review(args: argparse.Namespace) -> int:
    from headshot_lab.team import review

    if args.reject and not (args.reason or "").strip():
        args.parser.error("--reject needs --reason TEXT (say what should change)")
    if args.approve:
        changed = review.approve(args.dir, args.approve, by=args.by, role=args.role)
    elif args.reject:
        changed = {args.reject: review.reject(args.dir, args.reject, args.reason, by=args.by)}
    elif args.resubmit:
        changed = {args.resubmit: review.mark_resubmitted(args.dir, args.resubmit)}
    else:
        entries = review.review_state(args.dir)
        if args.json:
            print_json(
                {
                    "people": {pid: entry.to_dict() for pid, entry in entries.items()},
                    "pending": review.pending(args.dir),
                    "required_signoffs": review.required_signoffs(args.dir),
                }
            )
        elif not entries:
            print_line("No people in this team folder yet.")
        for pid, entry in entries.items() if not args.json else ():
            line, idle = _entry_line(pid, entry), _nothing_to_review(args.dir, pid)
            print_line(f"{line}\t{idle}" if idle and line.count("\t") == 1 else line)
        return 0
    if args.json:
        print_json({"changed": {pid: entry.to_dict() for pid, entry in changed.items()}})
    else:
        for pid, entry in changed.items():
            print_line(_entry_line(pid, entry))
    return 0


def run_export(args: argparse.Namespace) -> int:
    from headshot_lab.team.dam import export_approved

    result = export_approved(args.dir, args.out)
    if args.json:
        print_json(result.to_dict())
        return 0
    for row in result.rows:
        print_line(str(result.dest / row["file"]))
    print_line(str(result.manifest_csv))
    if not result.exported:
        print_line("Nobody is approved yet: the export folder holds only an empty manifest.", sys.stderr)
    for pid, why in result.not_exported.items():
        print_line(f"not exported: {pid}: {_one_line(why)}", sys.stderr)
    return 0


def run_delete(args: argparse.Namespace) -> int:
    from headshot_lab.team.retention import delete_person

    result = delete_person(args.dir, args.person_id)
    if args.json:
        print_json(result.to_dict())
    else:
        print_line(result.message)
    return 0


def run_purge(args: argparse.Namespace) -> int:
    from headshot_lab.team.retention import purge_expired

    result = purge_expired(args.dir, now=args.now)
    if args.json:
        print_json(result.to_dict())
        return 0
    for pid, folders in result.purged.items():
        print_line(f"purged {pid}: {', '.join(folders)}")
    if result.note:
        print_line(result.note)
    print_line(f"{len(result.purged)} purged, {result.files} files, {result.bytes} bytes; {len(result.kept)} kept.")
    return 0


__all__ = ["add_commands", "run_delete", "run_export", "run_purge", "run_review"]
