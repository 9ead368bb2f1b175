"""The roster: who is in the team, where their photos are, and whether they agreed (a CSV file).

Columns (header row, any order, case-insensitive, surrounding spaces ignored):

==============  ========  ====================================================================================
column          required  meaning
==============  ========  ====================================================================================
``person_id``   yes       a safe folder name (:func:`~headshot_lab.team.layout.check_person_id`), unique
``photos``      yes       a folder, or ``;``-separated files, relative to the CSV's own folder
``consent``     yes       ``yes``/``no``/``true``/``false``/``1``/``0`` (anything else counts as *no consent*)
``name``        no        shown in the report and on the contact sheet
``role``        no        shown in the report
``backdrop``    no        one of the style guide's approved backdrop names (default: the guide's first)
==============  ========  ====================================================================================

**The roster is email-free.** A column named like an e-mail (``email``, ``e-mail``, ``mail`` …) is ignored and
named in :attr:`Roster.notes`; a *value* that looks like an e-mail address in ``name`` or ``role`` is dropped
(with a note on that row), so no address ever reaches ``status.json``, the report or the contact sheet.

Every row problem (missing photo folder, no photos, a duplicate or unsafe id, no consent, a bad consent value,
a line that is not UTF-8 text)
is collected on its row (:attr:`RosterRow.problem`): a bad row never stops the run. Only a whole-file problem
(not a text CSV, no header, no ``person_id``/``photos``/``consent`` column) raises one
:class:`~headshot_lab.errors.HeadshotLabError` (``bad_roster``).
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from headshot_lab.errors import HeadshotLabError
from headshot_lab.io import IMAGE_SUFFIXES
from headshot_lab.team.layout import check_person_id

REQUIRED_COLUMNS = ("person_id", "photos", "consent")
OPTIONAL_COLUMNS = ("name", "role", "backdrop")
CONSENT_YES = frozenset({"yes", "true", "1", "y"})
CONSENT_NO = frozenset({"no", "false", "0", "n", ""})
EMAIL_COLUMN = re.compile(r"^(e[-_ ]?mail|mail|email[-_ ]?address|work[-_ ]?email)$", re.IGNORECASE)
EMAIL_VALUE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
MAX_ROSTER_BYTES = 20_000_000


@dataclass
class RosterRow:
    """One person of the roster.

    Attributes:
        line: the row's line number in the file (the header is line 1).
        person_id: as written (stripped).
        photos: the photo files found (absolute paths), in name order.
        consent: the consent column said yes.
        problem: why this row cannot be processed (``""`` when it can): ``code`` + plain words.
    """

    line: int
    person_id: str
    photos: list[Path] = field(default_factory=list)
    consent: bool = False
    name: str = ""
    role: str = ""
    backdrop: str = ""
    problem_code: str = ""
    problem: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problem

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["photos"] = [str(p) for p in self.photos]
        return data


@dataclass
class Roster:
    """Every row of a roster file, in file order, with the file-level notes (ignored columns …)."""

    path: Path
    rows: list[RosterRow]
    notes: list[str] = field(default_factory=list)

    @property
    def ready(self) -> list[RosterRow]:
        """Rows that can be processed (photos found, consent given, id safe and unique)."""
        return [row for row in self.rows if row.ok]

    @property
    def problems(self) -> list[RosterRow]:
        return [row for row in self.rows if not row.ok]

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "rows": [r.to_dict() for r in self.rows], "notes": list(self.notes)}


def _decode(data: bytes, path: Path) -> tuple[str, set[int]]:
    """``(text, bad lines)``: UTF-8 (BOM or not) or UTF-16 with a BOM; a UTF-8 file with a few lines in another
    encoding (a name typed in Latin-1) keeps its good lines and names the bad ones (1-based line numbers),
    which become row problems. A binary file is one clear error."""
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise HeadshotLabError(
            f"{path.name} is not a CSV text file.",
            fix="Save the roster as CSV (UTF-8) with a header row: person_id,photos,consent.",
            code="bad_roster",
        )
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16"), set()
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8-sig"), set()
    except UnicodeDecodeError:
        pass
    lines, bad = [], set()
    for number, raw in enumerate(data.removeprefix(b"\xef\xbb\xbf").split(b"\n"), start=1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append(raw.decode("utf-8", errors="replace"))
            bad.add(number)
    return "\n".join(lines), bad


def parse_consent(value: str) -> tuple[bool, str]:
    """``(consent, problem)``: yes/true/1/y → given; no/false/0/n/empty → not given; anything else → not given,
    with the reason (an unclear answer is never read as a yes)."""
    text = value.strip().lower()
    if text in CONSENT_YES:
        return True, ""
    if text in CONSENT_NO:
        return False, "No consent: the roster's consent column says no."
    return False, f"No consent: the consent value {value.strip()!r} is not yes or no, so it counts as no."


def _existing(path: Path) -> Path:
    """``path``, or the spelling of it that exists: a roster typed on Windows writes ``photos\\Ann Lee``, and a
    folder copied from a Mac may name ``José`` in decomposed Unicode (NFD) while the CSV has it composed (NFC).
    ``path`` itself when no spelling exists (the caller then says it was not found)."""
    if path.exists():
        return path
    text = str(path)
    slashed = text.replace("\\", "/")
    spellings = [slashed] + [unicodedata.normalize(form, t) for t in (text, slashed) for form in ("NFC", "NFD")]
    for variant in dict.fromkeys(spellings):
        if variant != text and Path(variant).exists():
            return Path(variant)
    return path


def _photo_files(spec: str, base: Path) -> tuple[list[Path], str, str]:
    """``(files, problem_code, problem)`` for a ``photos`` cell: one folder, or ``;``-separated files."""
    parts = [p.strip() for p in spec.split(";") if p.strip()]
    if not parts:
        return [], "no_photos", "No photos: the photos column is empty."
    files: list[Path] = []
    missing: list[str] = []
    for part in parts:
        path = _existing(Path(part) if Path(part).is_absolute() else base / part)
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            files.append(path)
        else:
            missing.append(part)
    if missing and not files:
        what = "folder or file" if len(parts) == 1 else "files"
        return [], "missing_photos", f"Photos not found: the {what} {', '.join(missing)} does not exist."
    if not files:
        return [], "no_photos", f"No photos: {', '.join(parts)} holds no image files."
    return files, "", ""


def _clean_text(value: str, what: str, notes: list[str]) -> str:
    """``value`` stripped; an e-mail-like value is dropped (the roster is e-mail-free), with a note."""
    text = value.strip()
    if EMAIL_VALUE.search(text):
        notes.append(f"The {what} looked like an e-mail address and was left out (the roster holds no e-mails).")
        return ""
    return text[:200]


def read_roster(path: str | Path) -> Roster:
    """Read a roster CSV (see the module docstring). Row problems are collected per row, never raised.

    Raises:
        HeadshotLabError: ``bad_roster`` when the file cannot be read as a roster at all.
    """
    path = Path(path)
    if not path.is_file():
        raise HeadshotLabError(f"Roster {path} not found.", fix="Give the path of the roster CSV.", code="bad_roster")
    data = path.read_bytes()
    if len(data) > MAX_ROSTER_BYTES:
        raise HeadshotLabError(f"{path.name} is too large for a roster.", code="bad_roster", fix="Split it.")
    text, bad_lines = _decode(data, path)
    try:
        sample = text[:8192]
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t") if sample.strip() else csv.excel
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        header = next(reader)
    except StopIteration:
        header = []
    except csv.Error as exc:
        raise HeadshotLabError(f"{path.name} is not a readable CSV: {exc}.", code="bad_roster") from None
    columns = [h.strip().lower().replace(" ", "_") for h in header]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise HeadshotLabError(
            f"{path.name} has no {', '.join(missing)} column{'s' if len(missing) > 1 else ''}.",
            fix="The first row must name the columns: person_id,photos,consent (and optionally name,role,backdrop).",
            code="bad_roster",
        )
    notes: list[str] = []
    ignored = [header[i].strip() for i, c in enumerate(columns) if EMAIL_COLUMN.match(c)]
    if 1 in bad_lines:
        notes.append("The header row is not UTF-8 text; its column names were read as well as possible.")
    if ignored:
        notes.append(f"Ignored column {', '.join(ignored)}: the roster is e-mail-free and never stores addresses.")
    index = {c: i for i, c in enumerate(columns) if c in REQUIRED_COLUMNS + OPTIONAL_COLUMNS}
    base = path.parent
    rows: list[RosterRow] = []
    seen: set[str] = set()
    try:
        last = reader.line_num
        for cells in reader:
            first, last = last + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            row = _row(reader.line_num, cells, index, base, seen)
            if bad_lines & set(range(first, last + 1)) and row.problem_code not in {"duplicate_id", "bad_person_id"}:
                row.problem_code = "bad_encoding"
                row.problem = (
                    f"Line {row.line} is not UTF-8 text (saved in another encoding?), so its names cannot be "
                    "read reliably. Save the roster as “CSV UTF-8”."
                )
            rows.append(row)
    except csv.Error as exc:
        notes.append(f"Reading stopped at line {reader.line_num}: {exc} (the rows before it are used).")
    return Roster(path=path, rows=rows, notes=notes)


def _row(line: int, cells: list[str], index: dict[str, int], base: Path, seen: set[str]) -> RosterRow:
    def cell(name: str) -> str:
        i = index.get(name)
        return cells[i] if i is not None and i < len(cells) else ""

    row = RosterRow(line=line, person_id=cell("person_id").strip())
    row.name = _clean_text(cell("name"), "name", row.notes)
    row.role = _clean_text(cell("role"), "role", row.notes)
    row.backdrop = cell("backdrop").strip()
    row.consent, consent_problem = parse_consent(cell("consent"))

    def fail(code: str, message: str) -> RosterRow:
        row.problem_code, row.problem = code, message
        return row

    if not row.person_id:
        return fail("bad_person_id", f"Line {line}: the person_id is empty.")
    if EMAIL_VALUE.search(row.person_id):
        row.person_id = f"line-{line}"
        return fail("bad_person_id", f"Line {line}: the person_id looks like an e-mail address; use an id.")
    try:
        check_person_id(row.person_id)
    except HeadshotLabError as exc:
        return fail("bad_person_id", f"Line {line}: {exc.message} {exc.fix}")
    if row.person_id.lower() in seen:
        return fail("duplicate_id", f"Line {line}: the person_id {row.person_id} is used more than once.")
    seen.add(row.person_id.lower())
    if not row.consent:
        return fail("no_consent", consent_problem)
    row.photos, code, problem = _photo_files(cell("photos"), base)
    if problem:
        return fail(code, problem)
    return row


__all__ = ["REQUIRED_COLUMNS", "Roster", "RosterRow", "parse_consent", "read_roster"]
