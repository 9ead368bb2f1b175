"""The team output folder: one contract that ``team run``, ``review``, ``export``, ``delete`` and retention share.

::

    OUT/
      team.json              run record: guide name/version/sha256, mode, engine, roster file, person ids, times
      guide.yaml             the exact style guide used (a copy)
      team_report.json       per person status, checklist summary, audit, consistency (written by ``team run``)
      report.md              the same in words
      contact_sheet.png/.pdf the sign-off sheet
      review.json            review states per person (pending / approved / rejected / resubmitted), with history
      exports.json           every DAM export folder written from here (so ``team delete`` reaches them)
      purges.jsonl           retention purges (one line per person purged)
      deletions.jsonl        ``team delete`` records (counts and a digest of the id, never the id)
      people/<person_id>/
        status.json          :class:`PersonStatus`
        files/               finished files, named by the guide (``{person_id}_{crop}.{ext}``)
        work/                intermediates (identity, candidates); purged after the guide's retention days
        inputs/              EXIF-stripped copies of the photos; purged after the guide's retention days

Every JSON file is written atomically (:func:`headshot_lab.atomic.write_text_atomic` or equivalent).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from headshot_lab.errors import HeadshotLabError

PersonState = Literal["done", "skipped", "failed"]
"""``done``: files exported; ``skipped``: not processed for a stated reason (no consent, blocking checks, bad row);
``failed``: processing raised (the reason says what)."""

PERSON_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
"""A person id is a safe file-name component: letters, digits, ``.``, ``_``, ``-``; at most 64 characters."""


def check_person_id(person_id: str) -> str:
    """``person_id`` unchanged when it is safe as a folder name, else a :class:`HeadshotLabError` (``bad_person_id``)."""
    if not PERSON_ID.match(person_id) or person_id in {".", ".."}:
        raise HeadshotLabError(
            f"{person_id!r} cannot be used as a person id.",
            fix="Use letters, digits, '.', '_' or '-' (at most 64 characters), starting with a letter or digit.",
            code="bad_person_id",
        )
    return person_id


@dataclass
class PersonStatus:
    """What happened to one person in a team run (``people/<id>/status.json``)."""

    person_id: str
    state: PersonState
    reason: str = ""
    guide_name: str = ""
    guide_version: str = ""
    mode: str = ""
    files: list[str] = field(default_factory=list)  # relative to the person's folder, e.g. "files/p01_square.jpg"
    checklist: dict[str, Any] = field(default_factory=dict)
    audit: dict[str, Any] = field(default_factory=dict)
    consistency: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    role: str = ""
    created: str = ""  # ISO 8601 UTC
    updated: str = ""  # ISO 8601 UTC, the last re-run (retention counts from the later of created/updated)
    attempts: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PersonStatus:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


class TeamLayout:
    """Paths inside one team output folder ``root``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def team_json(self) -> Path:
        return self.root / "team.json"

    @property
    def guide_copy(self) -> Path:
        return self.root / "guide.yaml"

    @property
    def report_json(self) -> Path:
        return self.root / "team_report.json"

    @property
    def report_md(self) -> Path:
        return self.root / "report.md"

    @property
    def contact_sheet_png(self) -> Path:
        return self.root / "contact_sheet.png"

    @property
    def contact_sheet_pdf(self) -> Path:
        return self.root / "contact_sheet.pdf"

    @property
    def review_json(self) -> Path:
        return self.root / "review.json"

    @property
    def review_lock(self) -> Path:
        """Lock file held while ``review.json`` / ``exports.json`` are read, changed and written back."""
        return self.root / ".review.lock"

    @property
    def exports_json(self) -> Path:
        return self.root / "exports.json"

    @property
    def purge_log(self) -> Path:
        return self.root / "purges.jsonl"

    @property
    def deletion_log(self) -> Path:
        return self.root / "deletions.jsonl"

    @property
    def people_dir(self) -> Path:
        return self.root / "people"

    def person_dir(self, person_id: str) -> Path:
        return self.people_dir / check_person_id(person_id)

    def status_file(self, person_id: str) -> Path:
        return self.person_dir(person_id) / "status.json"

    def files_dir(self, person_id: str) -> Path:
        return self.person_dir(person_id) / "files"

    def work_dir(self, person_id: str) -> Path:
        return self.person_dir(person_id) / "work"

    def inputs_dir(self, person_id: str) -> Path:
        return self.person_dir(person_id) / "inputs"

    def person_ids(self) -> list[str]:
        """Ids of every person with a ``status.json``, sorted (leftovers such as ``.deleting-*`` are not people)."""
        if not self.people_dir.is_dir():
            return []
        return sorted(p.parent.name for p in self.people_dir.glob("*/status.json") if PERSON_ID.match(p.parent.name))

    def read_status(self, person_id: str) -> PersonStatus:
        path = self.status_file(person_id)
        if not path.is_file():
            raise HeadshotLabError(
                f"No person {person_id!r} in {self.root}.",
                fix="Check the id against team_report.json.",
                code="unknown_person",
            )
        return PersonStatus.from_dict(json.loads(path.read_text(encoding="utf-8")))

    def write_status(self, status: PersonStatus) -> Path:
        from headshot_lab.atomic import write_text_atomic

        path = self.status_file(status.person_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(status.to_dict(), indent=2, ensure_ascii=False))
        return path

    def require_team(self) -> dict[str, Any]:
        """The ``team.json`` record; a clear error when ``root`` is not a team output folder."""
        if not self.team_json.is_file():
            raise HeadshotLabError(
                f"{self.root} is not a team output folder (no team.json).",
                fix="Pass the --out folder of a `headshot-lab team run`.",
                code="not_a_team_folder",
            )
        data: dict[str, Any] = json.loads(self.team_json.read_text(encoding="utf-8"))
        return data

    def guide_setting(self, key: str, default: Any = None) -> Any:
        """One setting of the guide used: ``team.json["guide"][key]`` first, else the ``guide.yaml`` copy, else
        ``default``."""
        guide = self.require_team().get("guide") or {}
        if isinstance(guide, dict) and guide.get(key) is not None:
            return guide[key]
        if self.guide_copy.is_file():
            import yaml

            try:
                data = yaml.safe_load(self.guide_copy.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError:
                raise HeadshotLabError(
                    f"{self.guide_copy} is not a readable style guide (YAML).",
                    fix="Restore the guide.yaml this team was run with.",
                    code="bad_guide",
                ) from None
            if isinstance(data, dict) and data.get(key) is not None:
                return data[key]
        return default


__all__ = ["PERSON_ID", "PersonState", "PersonStatus", "TeamLayout", "check_person_id"]
