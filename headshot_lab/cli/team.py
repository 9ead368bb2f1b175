"""``team``: an organisation's roster through one versioned style guide.

Contracts (stable; other tools parse them):

* ``team run ROSTER --style-guide GUIDE --out DIR [--mode retouch|lora|faceid] [--engine local|ray]
  [--workers N] [--address ADDR] [--retries N] [--force] [--json]`` processes every person of the roster CSV into
  ``DIR`` (the layout of :mod:`headshot_lab.team.layout`) and prints one line per person
  (``done|skipped|failed  ID  reason``) and the report's path. ``--json`` prints
  ``{"out", "guide": {"name", "version", "sha256"}, "mode", "engine", "done", "skipped", "failed", "processed",
  "kept", "people": [{"person_id", "state", "reason"}], "roster_problems", "notes", "report", "report_md",
  "contact_sheet", "seconds"}`` instead.

Exit codes: 0 when the run finished (people skipped or failed are in the report), 1 when it could not run at all
(an unreadable roster or guide, another guide's team in ``DIR``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from headshot_lab.cli import output_folder, print_json, print_line, team_review
from headshot_lab.engine import ENGINES
from headshot_lab.team.run import MODES


def add_subcommands(team_subparsers: argparse._SubParsersAction) -> None:
    """The ``team`` sub-commands: ``run`` here, then review/export/delete/purge from :mod:`headshot_lab.cli.team_review`."""
    run = team_subparsers.add_parser("run", help="run a roster CSV through a style guide")
    run.add_argument("roster", metavar="ROSTER", help="roster CSV: person_id,photos,consent[,name,role,backdrop]")
    run.add_argument("--style-guide", required=True, metavar="GUIDE", help="the team style guide (.yaml)")
    run.add_argument("--out", required=True, metavar="DIR", help="the team output folder (resumed when it exists)")
    run.add_argument("--mode", choices=MODES, default="retouch", help="retouch (offline, default), lora or faceid")
    run.add_argument("--engine", choices=ENGINES, default="local", help="local processes (default) or ray")
    run.add_argument("--workers", type=int, default=1, help="worker processes / local Ray CPUs (default 1)")
    run.add_argument("--address", default=None, help="Ray cluster address (ray://host:10001 or auto)")
    run.add_argument("--retries", type=int, default=0, help="tries again for a person whose worker failed")
    run.add_argument(
        "--num-gpus",
        type=float,
        default=0.0,
        help="GPUs per worker for --mode lora|faceid on Ray (1: one worker per GPU, each keeping its pipeline)",
    )
    run.add_argument("--force", action="store_true", help="remake everyone, even people already done")
    run.add_argument("--json", action="store_true", help="print the machine-readable summary")
    run.set_defaults(handler=run_team)
    team_review.add_commands(team_subparsers)  # review / export / delete / purge


def register(subparsers: argparse._SubParsersAction) -> None:
    team = subparsers.add_parser("team", help="team headshots: a roster through one versioned style guide")
    team_subparsers = team.add_subparsers(dest="team_command", metavar="TEAM_COMMAND", required=True)
    add_subcommands(team_subparsers)


def run_team(args: argparse.Namespace) -> int:
    from headshot_lab.engine import EngineSpec
    from headshot_lab.team.run import run_team as run

    out = output_folder(args.out)
    engine = EngineSpec(
        kind=args.engine, workers=args.workers, address=args.address, retries=args.retries, num_gpus=args.num_gpus
    )
    result = run(args.roster, args.style_guide, out, mode=args.mode, engine=engine, force=args.force)
    payload = result.to_dict()
    if args.json:
        print_json(payload)
        return 0
    for person in payload["people"]:
        reason = " ".join(str(person["reason"]).split())
        print_line(f"{person['state']:8s} {person['person_id']}  {reason}".rstrip())
    for problem in payload["roster_problems"]:
        reason = str(problem["reason"]).removeprefix(f"Line {problem['line']}: ")  # the line is said once
        print_line(f"{'roster':8s} line {problem['line']}  {reason}")
    for line in still_rejected(out, payload["kept"]):
        print_line(line)
    print_line(
        f"{len(payload['done'])} done, {len(payload['skipped'])} skipped, {len(payload['failed'])} failed "
        f"({len(payload['kept'])} kept from before) — {payload['report_md']}"
    )
    return 0


def still_rejected(out: Path, kept: list[str]) -> list[str]:
    """One line for each person kept as before whose files stay rejected: a re-run re-submits only people it
    remade, and it remakes nobody whose photos and style guide are unchanged (``--force`` remakes them)."""
    from headshot_lab.errors import HeadshotLabError
    from headshot_lab.team import review
    from headshot_lab.team.layout import TeamLayout

    if not kept or not TeamLayout(out).review_json.is_file():
        return []
    try:
        states = review.review_state(out)
    except HeadshotLabError:
        return []
    lines = []
    for pid in kept:
        entry = states.get(pid)
        if entry is not None and entry.state == "rejected":
            why = f" ({' '.join(entry.reason.split())})" if entry.reason else ""
            lines.append(
                f"{'rejected':8s} {pid}  Still rejected{why}: their photos and the style guide did not change, so "
                "nothing was remade. Give them new photos, or run again with --force, to re-submit them."
            )
    return lines
