"""Retention and deletion for a team folder: the guide's ``retention_days`` purge, and ``team delete``.

* :func:`purge_expired` removes ``people/<id>/inputs`` and ``people/<id>/work`` of every person whose last
  change (the latest of ``status.json``'s ``created`` / ``updated``; the file's time when it has neither) is at
  least ``retention_days`` old. Finished files stay, unless the guide says ``purge_files: true``. Each purge is
  one line of ``purges.jsonl`` (time, person, what went, counts). A guide without ``retention_days`` keeps
  everything (and says so).
* :func:`delete_person` removes one person everywhere: ``people/<id>``, their ``review.json`` entry, their rows in
  ``team_report.json`` and ``team.json``, their lines of ``report.md``, the contact sheet (it shows them; rebuild
  it with ``team run``'s report), their lines of ``purges.jsonl``, and their files in every DAM export recorded in
  ``exports.json`` (manifests rewritten). ``deletions.jsonl`` keeps counts and a digest of the id, never the id.
  A second delete finds nothing and says so.

The folders go the way a session goes (:func:`headshot_lab.privacy.remove_tree`: renamed away, then removed).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from headshot_lab.atomic import append_line, write_json_atomic, write_text_atomic
from headshot_lab.errors import HeadshotLabError
from headshot_lab.privacy import remove_tree
from headshot_lab.team.dam import remove_person_from_exports
from headshot_lab.team.layout import TeamLayout, check_person_id
from headshot_lab.team.review import locked, parse_time, read_entries, utc_now, write_entries

PURGED_FOLDERS: tuple[str, ...] = ("inputs", "work")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------------------------------- purge
@dataclass
class Purge:
    """What :func:`purge_expired` removed: ``purged`` = ``{person_id: [folders removed]}``; ``kept`` =
    ``{person_id: when their inputs expire}``."""

    now: str
    retention_days: float | None
    purged: dict[str, list[str]] = field(default_factory=dict)
    kept: dict[str, str] = field(default_factory=dict)
    files: int = 0
    bytes: int = 0
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "now": self.now,
            "retention_days": self.retention_days,
            "purged": self.purged,
            "kept": self.kept,
            "files": self.files,
            "bytes": self.bytes,
            "note": self.note,
        }


def retention_days(layout: TeamLayout) -> float | None:
    """The guide's ``retention_days`` (``team.json["guide"]`` first, else ``guide.yaml``); ``None`` when unset.

    Raises:
        HeadshotLabError: ``bad_retention`` when it is not a number ≥ 0.
    """
    value = layout.guide_setting("retention_days")
    if value is None:
        return None
    try:
        days = float(value)
    except (TypeError, ValueError):
        days = -1.0
    if not days >= 0 or isinstance(value, bool):
        raise HeadshotLabError(
            f"The style guide's retention_days ({value!r}) is not a number of days.",
            fix="Set retention_days to a number ≥ 0 in the guide (e.g. 30).",
            code="bad_retention",
        )
    return days


def last_change(layout: TeamLayout, person_id: str) -> datetime:
    """When ``person_id`` last changed: the latest of ``created``/``updated`` in ``status.json``, else its mtime."""
    path = layout.status_file(person_id)
    data = json.loads(path.read_text(encoding="utf-8"))
    times = []
    for key in ("created", "updated"):
        if data.get(key):
            try:
                times.append(parse_time(str(data[key])))
            except HeadshotLabError:
                continue
    return max(times) if times else datetime.fromtimestamp(path.stat().st_mtime, UTC)


def _as_time(now: datetime | str | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if isinstance(now, str):
        return parse_time(now)
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def purge_expired(root: str | Path, now: datetime | str | None = None) -> Purge:
    """Remove the inputs and intermediates of every person past the guide's retention (see the module doc).

    Expired when ``now − last_change(person) ≥ retention_days`` (``retention_days = 0``: at once).

    Raises:
        HeadshotLabError: ``not_a_team_folder``, ``bad_retention``, ``bad_time``.
    """
    layout = TeamLayout(root)
    layout.require_team()
    moment = _as_time(now)
    days = retention_days(layout)
    result = Purge(now=_iso(moment), retention_days=days)
    if days is None:
        result.note = "The style guide sets no retention_days: nothing is purged."
        return result
    folders = PURGED_FOLDERS + (("files",) if layout.guide_setting("purge_files", False) is True else ())
    for pid in layout.person_ids():
        expires = last_change(layout, pid) + timedelta(days=days)
        if moment < expires:
            if any((layout.person_dir(pid) / name).exists() for name in folders):
                result.kept[pid] = _iso(expires)
            continue
        removed = []
        for name in folders:
            folder = layout.person_dir(pid) / name
            if not (folder.exists() or folder.is_symlink()):
                continue
            files, size = remove_tree(folder)
            removed.append(name)
            result.files += files
            result.bytes += size
        if removed:
            result.purged[pid] = removed
            append_line(
                layout.purge_log,
                json.dumps({"at": utc_now(), "now": result.now, "person_id": pid, "removed": removed}),
            )
    for leftover in layout.people_dir.glob(".deleting-*") if layout.people_dir.is_dir() else []:
        remove_tree(leftover)
    if not result.purged:
        result.note = "Nothing has passed the retention time yet."
    return result


# ---------------------------------------------------------------------------------------- delete
@dataclass
class Deletion:
    """What :func:`delete_person` removed (``removed``: plain-words list; ``exports``: ``{dest: [files]}``)."""

    person_id: str
    removed: list[str] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    exports: dict[str, list[str]] = field(default_factory=dict)

    @property
    def nothing_left(self) -> bool:
        return not self.removed

    @property
    def message(self) -> str:
        if self.nothing_left:
            return f"Nothing left of {self.person_id} in this team folder: already deleted, or never there."
        return f"Deleted {self.person_id}: " + "; ".join(self.removed) + "."

    def to_dict(self) -> dict[str, Any]:
        return {
            "person_id": self.person_id,
            "nothing_left": self.nothing_left,
            "removed": self.removed,
            "files": self.files,
            "bytes": self.bytes,
            "exports": self.exports,
            "message": self.message,
        }


#: Keys of the team report whose value maps person ids to plain values (``{"p01": "2026.1"}``, ``{"p01": 0.09}``):
#: there a key equal to the person goes whatever its value is.
PERSON_MAPS = frozenset({"other_guide_version", "outliers"})


def scrub(value: Any, person_id: str, *, top: bool = True, person_map: bool = False) -> tuple[Any, int]:
    """``value`` without ``person_id``: list items equal to it, dicts whose ``person_id`` (or ``id``) is it, and
    dict keys equal to it holding a record (a dict or list; never a top-level key, never a plain setting) or
    sitting in a per-person map (the value of a :data:`PERSON_MAPS` key), at any depth; with how many were
    dropped."""
    dropped = 0
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == person_id and not top and (person_map or isinstance(item, dict | list)):
                dropped += 1
                continue
            if key in PERSON_MAPS and isinstance(item, dict):
                out[key], count = scrub(item, person_id, top=False, person_map=True)
                dropped += count
                continue
            out[key], count = scrub(item, person_id, top=False)
            dropped += count
        return out, dropped
    if isinstance(value, list):
        kept = []
        for item in value:
            if item == person_id or (isinstance(item, dict) and person_id in (item.get("person_id"), item.get("id"))):
                dropped += 1
                continue
            clean, count = scrub(item, person_id, top=False)
            kept.append(clean)
            dropped += count
        return kept, dropped
    return value, 0


def _scrub_json(path: Path, person_id: str) -> int:
    if not path.is_file():
        return 0
    data = json.loads(path.read_text(encoding="utf-8"))
    clean, dropped = scrub(data, person_id)
    if dropped:
        write_json_atomic(path, clean)
    return dropped


COUNTS_LINE = re.compile(r"^\*\*\d+ people: \d+ done, \d+ skipped, \d+ failed\.\*\*$", re.MULTILINE)


def _recount_report(layout: TeamLayout) -> bool:
    """After a deletion, the report's counts (``team_report.json`` and the summary line of ``report.md``) from the
    people left, so the report does not still count the person; whether anything changed."""
    if not layout.report_json.is_file():
        return False
    data = json.loads(layout.report_json.read_text(encoding="utf-8"))
    people, counts = data.get("people"), data.get("counts")
    if not isinstance(people, list) or not isinstance(counts, dict):
        return False
    states = [p.get("state") for p in people if isinstance(p, dict)]
    new = {s: states.count(s) for s in ("done", "skipped", "failed")} | {"people": len(people)}
    if all(counts.get(k) == v for k, v in new.items()):
        return False
    write_json_atomic(layout.report_json, {**data, "counts": {**counts, **new}})
    if layout.report_md.is_file():
        line = f"**{new['people']} people: {new['done']} done, {new['skipped']} skipped, {new['failed']} failed.**"
        text = layout.report_md.read_text(encoding="utf-8")
        write_text_atomic(layout.report_md, COUNTS_LINE.sub(line, text, count=1))
    return True


def _scrub_lines(path: Path, words: list[str]) -> int:
    """Drop the lines of the text file ``path`` naming any of ``words`` (as a whole token); how many went."""
    if not path.is_file() or not words:
        return 0
    pattern = re.compile("|".join(rf"(?<![\w.-]){re.escape(word)}(?![\w-])" for word in words))
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [line for line in lines if not pattern.search(line)]
    if len(kept) != len(lines):
        write_text_atomic(path, "".join(kept))
    return len(lines) - len(kept)


def _person_words(layout: TeamLayout, person_id: str) -> list[str]:
    """The id, and the person's name when ``status.json`` gives one (for the text files that name them)."""
    words = [person_id]
    try:
        name = layout.read_status(person_id).name.strip()
    except HeadshotLabError:
        return words
    return [*words, name] if len(name) >= 3 else words


def redraw_contact_sheet(layout: TeamLayout) -> bool:
    """Draw the contact sheet again from the people now in the folder (after a deletion, so the sign-off sheet
    of everyone else is not lost); ``False`` when it cannot be drawn (the caller then removes the old one)."""
    from headshot_lab.team.contact_sheet import write_contact_sheet

    try:
        people = [layout.read_status(pid) for pid in layout.person_ids()]
        title = f"{layout.guide_setting('name', '')} {layout.guide_setting('version', '')}".strip()
        write_contact_sheet(layout, people, title=title)
    except (HeadshotLabError, OSError, ValueError):
        return False
    return True


def delete_person(root: str | Path, person_id: str) -> Deletion:
    """Remove ``person_id`` everywhere this team folder knows of (see the module doc); say what went.

    Raises:
        HeadshotLabError: ``not_a_team_folder``, ``bad_person_id``.
    """
    layout = TeamLayout(root)
    layout.require_team()
    check_person_id(person_id)
    result = Deletion(person_id)
    with locked(layout):
        words = _person_words(layout, person_id)
        result.exports = remove_person_from_exports(layout, person_id)
        for dest, files in result.exports.items():
            result.removed.append(f"{len(files)} exported file(s) in {dest}")
        existed = layout.person_dir(person_id).exists()
        result.files, result.bytes = remove_tree(layout.person_dir(person_id))
        if existed:
            result.removed.append(f"people/{person_id} ({result.files} files)")
        stored = read_entries(layout)
        if stored.pop(person_id, None) is not None:
            write_entries(layout, stored)
            result.removed.append("the review entry")
        for path, what in ((layout.report_json, "team_report.json"), (layout.team_json, "team.json")):
            if count := _scrub_json(path, person_id):
                result.removed.append(f"{count} entr{'y' if count == 1 else 'ies'} in {what}")
        if count := _scrub_lines(layout.report_md, words):
            result.removed.append(f"{count} line(s) of report.md")
        if _recount_report(layout):
            result.removed.append("one person from the report's counts")
        if count := _scrub_lines(layout.purge_log, [person_id]):
            result.removed.append(f"{count} line(s) of purges.jsonl")
        if (existed or result.removed) and any(
            s.is_file() for s in (layout.contact_sheet_png, layout.contact_sheet_pdf)
        ):
            if redraw_contact_sheet(layout):
                result.removed.append("this person's tile on contact_sheet.png and .pdf (redrawn with everyone else)")
            else:
                for sheet in (layout.contact_sheet_png, layout.contact_sheet_pdf):
                    if sheet.is_file():
                        sheet.unlink()
                        result.removed.append(f"{sheet.name} (it showed this person; `team run` draws it again)")
        if result.removed:
            digest = hashlib.sha256(person_id.encode("utf-8")).hexdigest()[:16]
            record = {"at": utc_now(), "person": digest, "files": result.files, "bytes": result.bytes}
            append_line(layout.deletion_log, json.dumps({**record, "exports": len(result.exports)}))
    return result


__all__ = [
    "PERSON_MAPS",
    "PURGED_FOLDERS",
    "Deletion",
    "Purge",
    "delete_person",
    "last_change",
    "purge_expired",
    "redraw_contact_sheet",
    "retention_days",
]
