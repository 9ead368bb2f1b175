"""``team export``: the approved people's files in a DAM-ready folder, with a manifest.

::

    DEST/
      p01_square.jpg ...     each approved file, byte for byte, named by the guide's ``naming`` template
      manifest.csv           one row per file (:data:`MANIFEST_COLUMNS`)
      manifest.json          the same rows, the people left out (with why), the team folder and guide

Policy:

* Only people whose review state is ``approved`` go, and only when each file's sha256 is still the one approved.
* Each copied file is read back from DEST: its disclosure (IPTC DigitalSourceType + disclosure line in XMP,
  :func:`headshot_lab.provenance.read_provenance`) must be there and it must embed an sRGB ICC profile; a person
  with any file failing that is left out, with the reason.
* The export is built in a staging folder next to DEST and swapped in: DEST holds the old export or the new one,
  and a re-export replaces it cleanly (files of people no longer approved are gone).
* DEST must not be inside the team folder (nor contain it), and a DEST holding files of anything else is refused.
* Every DEST is recorded in the team folder's ``exports.json``, so ``team delete`` reaches the copies.
"""

from __future__ import annotations

import csv
import io
import json
import re
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from headshot_lab.atomic import copy_file_atomic, write_json_atomic, write_text_atomic
from headshot_lab.errors import HeadshotLabError
from headshot_lab.team.layout import PersonStatus, TeamLayout
from headshot_lab.team.review import ReviewEntry, locked, review_state, utc_now
from headshot_lab.train import file_sha256

MANIFEST_COLUMNS: tuple[str, ...] = (
    "person_id",
    "name",
    "role",
    "crop",
    "file",
    "width",
    "height",
    "format",
    "dpi",
    "icc",
    "guide_name",
    "guide_version",
    "sha256",
    "ai_disclosure",
    "approved_by",
    "approved_at",
)
MANIFEST_FORMAT = "headshot-lab-dam-export/1"
EXPORTS_FORMAT = "headshot-lab-team-exports/1"
DEFAULT_NAMING = "{person_id}_{crop}.{ext}"
_FIELD = re.compile(r"\{(\w+)\}")


class DamExportError(HeadshotLabError):
    code = "dam_export_error"


@dataclass
class DamExport:
    """What :func:`export_approved` wrote: the rows of ``manifest.csv``, who went, who did not and why."""

    dest: Path
    rows: list[dict[str, Any]] = field(default_factory=list)
    exported: list[str] = field(default_factory=list)
    not_exported: dict[str, str] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)  # files of the previous export that are gone now

    @property
    def manifest_csv(self) -> Path:
        return self.dest / "manifest.csv"

    @property
    def manifest_json(self) -> Path:
        return self.dest / "manifest.json"

    def to_dict(self) -> dict[str, Any]:
        return {
            "dest": str(self.dest),
            "exported": self.exported,
            "not_exported": self.not_exported,
            "files": [row["file"] for row in self.rows],
            "removed": self.removed,
            "manifest_csv": str(self.manifest_csv),
            "manifest_json": str(self.manifest_json),
        }


# ---------------------------------------------------------------------------------------- naming
def _safe_part(value: object) -> str:
    """``value`` as a file-name part: letters, digits, ``.``, ``_``, ``-`` (others become ``_``)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", str(value)).strip("._")
    return cleaned or "x"


def parse_file_name(file_name: str, person_id: str, naming: str) -> tuple[str, str]:
    """``(crop, ext)`` of a finished file named by ``naming`` (``{person_id}_{crop}.{ext}``).

    The template becomes a regular expression (each ``{field}`` a lazy group); a name it does not match falls back
    to the stem after ``{person_id}_`` and the suffix.
    """
    pattern, last = "", 0
    for match in _FIELD.finditer(naming):
        pattern += re.escape(naming[last : match.start()])
        name = match.group(1)
        pattern += {"ext": r"(?P<ext>[A-Za-z0-9]+)", "person_id": re.escape(person_id)}.get(name, f"(?P<{name}>.+?)")
        last = match.end()
    pattern += re.escape(naming[last:])
    with_groups = re.fullmatch(pattern, file_name) if "{crop}" in naming else None
    path = Path(file_name)
    ext = path.suffix.lstrip(".").lower()
    if with_groups is not None and with_groups.groupdict().get("crop"):
        return with_groups.group("crop"), (with_groups.groupdict().get("ext") or ext).lower()
    stem = path.stem
    crop = stem[len(person_id) + 1 :] if stem.startswith(person_id + "_") else stem
    return crop or "image", ext


def dam_name(naming: str, status: PersonStatus, crop: str, ext: str, guide: dict[str, Any]) -> str:
    """The file name in the DAM folder: ``naming`` filled with ``person_id``, ``crop``, ``ext``, ``name``,
    ``role``, ``version`` and ``guide`` (each made safe for a file name; no folders)."""
    values = {
        "person_id": status.person_id,
        "crop": crop,
        "ext": ext,
        "name": status.name or status.person_id,
        "role": status.role or "staff",
        "version": guide.get("version", ""),
        "guide": guide.get("name", ""),
    }
    try:
        filled = naming.format(**{key: _safe_part(value) for key, value in values.items()})
    except (KeyError, IndexError, ValueError) as exc:
        raise DamExportError(
            f"The guide's file naming {naming!r} cannot be used ({exc}).",
            fix="Use fields from: {person_id}, {crop}, {ext}, {name}, {role}, {version}, {guide}.",
            code="bad_naming",
        ) from None
    return _safe_part(filled.replace("/", "_").replace("\\", "_"))


# ---------------------------------------------------------------------------------------- checks
def inspect_file(path: Path) -> dict[str, Any]:
    """What a DAM needs to know of one file, read from the file itself, and its ``problems`` (empty = fine).

    Keys: ``width``, ``height``, ``format``, ``dpi``, ``icc`` (the profile's description), ``ai_disclosure``,
    ``digital_source_type``, ``problems``.
    """
    from PIL import Image, ImageCms, UnidentifiedImageError

    from headshot_lab.provenance import read_provenance

    problems: list[str] = []
    try:
        with Image.open(path) as image:
            width, height = image.size
            fmt = (image.format or "").lower()
            dpi_value = image.info.get("dpi")
            icc_bytes = image.info.get("icc_profile")
    except (OSError, UnidentifiedImageError):
        return {"problems": [f"{path.name} cannot be read as an image"]}
    icc = ""
    if icc_bytes:
        try:
            icc = (ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc_bytes))) or "").strip()
        except (ImageCms.PyCMSError, OSError):
            icc = "unreadable profile"
    if not icc:
        problems.append(f"{path.name} has no embedded ICC colour profile")
    elif "srgb" not in icc.lower().replace(" ", ""):
        problems.append(f"{path.name} embeds {icc!r}, not an sRGB profile")
    meta = read_provenance(path, c2pa=False)
    if not meta.get("disclosure") or not meta.get("digital_source_type"):
        problems.append(f"{path.name} carries no AI disclosure (IPTC DigitalSourceType in XMP)")
    dpi = round(float(dpi_value[0])) if isinstance(dpi_value, tuple) and dpi_value else ""
    return {
        "width": width,
        "height": height,
        "format": fmt,
        "dpi": dpi,
        "icc": icc,
        "ai_disclosure": meta.get("disclosure") or "",
        "digital_source_type": meta.get("digital_source_type") or "",
        "problems": problems,
    }


def check_dest(root: Path, dest: Path) -> Path:
    """``dest`` resolved, or a clear error when it cannot take an export of ``root``.

    Refused: a file; the team folder itself, a folder inside it or one containing it; a non-empty folder that is
    not an earlier export of this team (its files would be replaced).
    """
    team, target = root.resolve(), dest.expanduser().resolve()
    if target == team or target.is_relative_to(team):
        raise DamExportError(
            f"The export folder {dest} is inside the team folder {root}.",
            fix="Give --out a folder outside the team folder, e.g. " + str(team.parent / (team.name + "-dam")) + ".",
            code="dest_inside_team",
        )
    if team.is_relative_to(target):
        raise DamExportError(
            f"The export folder {dest} contains the team folder {root}; replacing it would delete the team folder.",
            fix="Give --out a folder of its own, e.g. " + str(team.parent / (team.name + "-dam")) + ".",
            code="dest_contains_team",
        )
    if target.exists() and not target.is_dir():
        raise DamExportError(f"{dest} is a file, not a folder.", fix="Give --out a folder.", code="out_not_a_folder")
    if target.is_dir() and any(target.iterdir()):
        previous = _read_manifest(target)
        if previous is None:
            raise DamExportError(
                f"{dest} already holds other files (it is not an export of this team).",
                fix="Give --out an empty or new folder.",
                code="dest_not_empty",
            )
        if previous.get("team") != str(team):
            raise DamExportError(
                f"{dest} holds the export of another team folder ({previous.get('team')}).",
                fix="Give each team its own export folder.",
                code="dest_other_team",
            )
    return target


def _read_manifest(dest: Path) -> dict[str, Any] | None:
    path = dest / "manifest.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == MANIFEST_FORMAT else None


# ---------------------------------------------------------------------------------------- export
def _person_rows(
    layout: TeamLayout,
    status: PersonStatus,
    entry: ReviewEntry,
    staging: Path,
    guide: dict[str, Any],
    naming: str,
    taken: set[str],
) -> list[dict[str, Any]]:
    """Copy one approved person's files into ``staging`` and describe them; a :class:`DamExportError` saying why
    when any file is missing, changed since approval, or fails the metadata checks (nothing of theirs is kept)."""
    rows, written = [], []
    try:
        for name in status.files:
            source = layout.person_dir(status.person_id) / name
            if not source.is_file():
                raise DamExportError(f"file missing: {name}", code="file_missing")
            digest = file_sha256(source)
            if digest != entry.files.get(name):
                raise DamExportError(f"{name} changed after approval", code="changed_after_approval")
            crop, ext = parse_file_name(Path(name).name, status.person_id, naming)
            target_name = dam_name(naming, status, crop, ext, guide)
            if target_name in taken:
                raise DamExportError(f"{target_name} would be written twice (the guide's naming)", code="name_clash")
            target = copy_file_atomic(source, staging / target_name)
            written.append(target)
            taken.add(target_name)
            facts = inspect_file(target)
            if facts["problems"]:
                raise DamExportError("; ".join(facts["problems"]), code="file_check_failed")
            if file_sha256(target) != digest:  # pragma: no cover - a copy that differs: a failing disk
                raise DamExportError(f"{target_name}: the copy differs from the approved file", code="copy_differs")
            rows.append(
                {
                    "person_id": status.person_id,
                    "name": status.name,
                    "role": status.role,
                    "crop": crop,
                    "file": target_name,
                    **{key: facts[key] for key in ("width", "height", "format", "dpi", "icc", "ai_disclosure")},
                    "guide_name": guide.get("name", ""),
                    "guide_version": guide.get("version", ""),
                    "sha256": digest,
                    "approved_by": entry.approved_by,
                    "approved_at": entry.approved_at,
                }
            )
    except DamExportError:
        for path in written:
            path.unlink(missing_ok=True)
            taken.discard(path.name)
        raise
    return rows


def _why_not(status: PersonStatus, entry: ReviewEntry | None) -> str:
    if status.state != "done":
        return f"{status.state}" + (f": {status.reason}" if status.reason else "")
    if entry is None:
        return "not reviewed"
    if entry.state == "rejected":
        return f"rejected: {entry.reason}"
    if entry.note:
        return f"{entry.state}: {entry.note}"
    if entry.signoffs:
        return f"{entry.state}: signed by {entry.approved_by}, more sign-offs needed"
    if entry.state in ("pending", "resubmitted"):
        return f"{entry.state}: waiting for review (not approved yet)"
    return entry.state


def _manifest_csv(rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(MANIFEST_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _swap_in(staging: Path, dest: Path) -> None:
    """Replace ``dest`` by ``staging`` (two renames in one folder; the old export is then deleted)."""
    old = dest.parent / f".{dest.name}.old-{secrets.token_hex(4)}"
    if dest.exists():
        dest.rename(old)
    try:
        staging.rename(dest)
    except OSError:
        if old.exists():
            old.rename(dest)
        raise
    shutil.rmtree(old, ignore_errors=True)


def record_export(layout: TeamLayout, dest: Path, export: DamExport) -> None:
    """Write ``dest`` and the files per person into the team folder's ``exports.json`` (call under the lock)."""
    data = read_exports(layout)
    files: dict[str, list[str]] = {}
    for row in export.rows:
        files.setdefault(row["person_id"], []).append(row["file"])
    data[str(dest)] = {"at": utc_now(), "people": export.exported, "files": files}
    write_json_atomic(layout.exports_json, {"format": EXPORTS_FORMAT, "exports": data})


def read_exports(layout: TeamLayout) -> dict[str, dict[str, Any]]:
    """``{dest: {"at", "people", "files"}}`` of every export written from this team folder."""
    if not layout.exports_json.is_file():
        return {}
    data = json.loads(layout.exports_json.read_text(encoding="utf-8"))
    return dict(data.get("exports") or {})


def export_approved(root: str | Path, dest: str | Path) -> DamExport:
    """Copy the approved people's files into ``dest`` (a DAM-ready folder) with ``manifest.csv``/``.json``.

    Returns:
        :class:`DamExport`; ``not_exported`` says why each other person was left out.

    Raises:
        HeadshotLabError: ``not_a_team_folder``, ``dest_inside_team``, ``dest_contains_team``, ``dest_not_empty``,
            ``dest_other_team``, ``out_not_a_folder``, ``bad_naming``. Nothing in ``dest`` changes then.
    """
    layout = TeamLayout(root)
    team = layout.require_team()
    target = check_dest(layout.root, Path(dest))
    guide = dict(team.get("guide") or {})
    guide.setdefault("name", layout.guide_setting("name", ""))
    guide.setdefault("version", layout.guide_setting("version", ""))
    guide = {key: "" if value is None else value for key, value in guide.items()}
    naming = str(layout.guide_setting("naming", DEFAULT_NAMING) or DEFAULT_NAMING)
    previous = _read_manifest(target) or {}
    export = DamExport(dest=target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.staging-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        with locked(layout):
            entries = review_state(layout.root)
            taken: set[str] = set()
            for pid in layout.person_ids():
                status, entry = layout.read_status(pid), entries.get(pid)
                missing = [name for name in status.files if not (layout.person_dir(pid) / name).is_file()]
                if status.state == "done" and missing:
                    export.not_exported[pid] = f"file missing: {', '.join(missing)}"
                    continue
                if status.state != "done" or entry is None or not entry.approved:
                    export.not_exported[pid] = _why_not(status, entry)
                    continue
                try:
                    export.rows += _person_rows(layout, status, entry, staging, guide, naming, taken)
                    export.exported.append(pid)
                except DamExportError as exc:
                    export.not_exported[pid] = f"approved, but {exc.message}"
            manifest = {
                "format": MANIFEST_FORMAT,
                "team": str(layout.root.resolve()),
                "guide": {"name": guide.get("name", ""), "version": guide.get("version", ""), "naming": naming},
                "created": utc_now(),
                "columns": list(MANIFEST_COLUMNS),
                "rows": export.rows,
                "not_exported": export.not_exported,
            }
            write_text_atomic(staging / "manifest.csv", _manifest_csv(export.rows))
            write_json_atomic(staging / "manifest.json", manifest)
            export.removed = sorted(
                {row["file"] for row in previous.get("rows", [])} - {row["file"] for row in export.rows}
            )
            _swap_in(staging, target)
            record_export(layout, target, export)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return export


def remove_person_from_exports(layout: TeamLayout, person_id: str) -> dict[str, list[str]]:
    """Delete ``person_id``'s files from every recorded export and rewrite its manifests; ``{dest: [files]}``.

    Call under :func:`~headshot_lab.team.review.locked`. An export folder that is gone is dropped from the record.
    """
    exports = read_exports(layout)
    removed: dict[str, list[str]] = {}
    for dest_text, record in list(exports.items()):
        dest = Path(dest_text)
        manifest = _read_manifest(dest)
        if manifest is None:
            exports.pop(dest_text)
            continue
        mine = [row for row in manifest.get("rows", []) if row.get("person_id") == person_id]
        names = sorted({row["file"] for row in mine} | set(record.get("files", {}).get(person_id, [])))
        gone = []
        for name in names:
            path = dest / name
            if path.resolve().parent != dest.resolve():  # a manifest naming a file elsewhere: never followed
                continue
            if path.is_file():
                path.unlink()
                gone.append(name)
        manifest["rows"] = [row for row in manifest.get("rows", []) if row.get("person_id") != person_id]
        manifest.get("not_exported", {}).pop(person_id, None)
        write_text_atomic(dest / "manifest.csv", _manifest_csv(manifest["rows"]))
        write_json_atomic(dest / "manifest.json", manifest)
        record.get("files", {}).pop(person_id, None)
        record["people"] = [pid for pid in record.get("people", []) if pid != person_id]
        if gone:
            removed[dest_text] = gone
    if layout.exports_json.is_file():
        write_json_atomic(layout.exports_json, {"format": EXPORTS_FORMAT, "exports": exports})
    return removed


__all__ = [
    "DEFAULT_NAMING",
    "MANIFEST_COLUMNS",
    "DamExport",
    "DamExportError",
    "check_dest",
    "dam_name",
    "export_approved",
    "inspect_file",
    "parse_file_name",
    "read_exports",
    "remove_person_from_exports",
]
