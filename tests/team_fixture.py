"""A team output folder written straight from the contract (:mod:`headshot_lab.team.layout`), for the review,
DAM-export and retention tests: real photos exported with real disclosure metadata and an sRGB profile."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import yaml

from headshot_lab.cli import run_reporting_errors
from headshot_lab.cli.team_review import add_commands
from headshot_lab.export import export_headshots
from headshot_lab.team.layout import PersonStatus, TeamLayout

GUIDE = {
    "name": "acme-directory",
    "version": "3",
    "retention_days": 30,
    "naming": "{person_id}_{crop}.{ext}",
    "crops": ["square", "banner"],
    "format": "jpeg",
}
#: (person id, photo, run state, name, role)
PEOPLE = (
    ("p01", "obama", "done", "Ada Lovelace", "Engineer"),
    ("p02", "biden", "done", "Grace Hopper", "Admiral"),
    ("p03", "astronaut", "done", "Eileen Collins", "Pilot"),
    ("p04", "tom_hanks", "skipped", "No Consent", "Sales"),
)
CREATED = "2026-11-01T09:00:00Z"


def write_person(layout: TeamLayout, pid: str, photo: Path, state: str, name: str, role: str) -> PersonStatus:
    """One person's folder: inputs/ (a copy of the photo), work/ (an intermediate), files/ (exported crops)."""
    status = PersonStatus(
        person_id=pid,
        state=state,  # type: ignore[arg-type]
        reason="" if state == "done" else "no consent in the roster",
        guide_name=GUIDE["name"],
        guide_version=GUIDE["version"],
        mode="retouch",
        name=name,
        role=role,
        created=CREATED,
    )
    inputs = layout.inputs_dir(pid)
    inputs.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(photo, inputs / f"photo{photo.suffix}")
    if state == "done":
        work = layout.work_dir(pid)
        work.mkdir(parents=True, exist_ok=True)
        (work / "identity.json").write_text('{"embedding": [0.1, 0.2]}', encoding="utf-8")
        result = export_headshots(
            photo, layout.files_dir(pid), ["square", "banner"], face=None, stem=pid, kind="retouched"
        )
        status.files = [str(path.relative_to(layout.person_dir(pid))) for path in result.paths]
    layout.write_status(status)
    return status


def make_team(root: Path, photos: dict[str, Path], *, guide: dict | None = None) -> TeamLayout:
    """Write a whole team folder at ``root`` (team.json, guide.yaml, team_report.json, report.md, people/)."""
    guide = {**GUIDE, **(guide or {})}
    layout = TeamLayout(root)
    root.mkdir(parents=True, exist_ok=True)
    for pid, photo, state, name, role in PEOPLE:
        write_person(layout, pid, photos[photo], state, name, role)
    (root / "guide.yaml").write_text(yaml.safe_dump(guide), encoding="utf-8")
    team = {
        "guide": {
            "name": guide["name"],
            "version": guide["version"],
            "sha256": "0" * 64,
            "retention_days": guide.get("retention_days"),
            "naming": guide["naming"],
        },
        "mode": "retouch",
        "engine": "local",
        "created": CREATED,
        "updated": CREATED,
        "people": [pid for pid, *_ in PEOPLE],
    }
    (root / "team.json").write_text(json.dumps(team), encoding="utf-8")
    report = {
        "people": [{"person_id": pid, "state": state, "name": name} for pid, _, state, name, _ in PEOPLE],
        "consistency": {"score": 0.9, "outliers": ["p02"]},
    }
    (root / "team_report.json").write_text(json.dumps(report), encoding="utf-8")
    lines = ["# Team report", ""] + [f"- {pid} ({name}): {state}" for pid, _, state, name, _ in PEOPLE]
    (root / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (root / "contact_sheet.png").write_bytes(b"\x89PNG placeholder")
    return layout


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes (to prove a failed command changed nothing)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".review.lock"  # the lock file holds nothing
    }


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="headshot-lab team")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return run_reporting_errors(args.handler, args)


def rerun(root, pid: str, photo) -> None:
    """A re-run: the person's files are written again, from another photo (so their bytes change)."""
    export_headshots(
        photo, TeamLayout(root).files_dir(pid), ["square", "banner"], face=None, stem=pid, kind="retouched"
    )
