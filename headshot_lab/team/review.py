"""Review states of a team run (``review.json``): who approved or rejected which files, and when.

States and the only transitions allowed::

    pending ──approve──▶ approved ──reject──▶ rejected ──(re-run / mark_resubmitted)──▶ resubmitted
       │                    ▲                                                           │
       └──reject──▶ rejected│◀───────────────────────────approve────────────────────────┘
                            └──(files change: a re-run)──▶ resubmitted

* ``approve`` is of *exactly* the person's current files: the sha256 of every file is recorded with it. When
  the files change afterwards (a re-run), the approval no longer holds and the person reads as ``resubmitted``
  (a rejected person whose files changed reads as ``resubmitted`` too: the re-run is the re-submission).
* ``reject`` needs a reason (said back to the person's owner).
* Only people whose run state is ``done`` and who have files can be reviewed; ``skipped``/``failed`` cannot.
* Sign-offs: when the guide lists ``sign_off: [hr, brand]``, each approval names its role (``--role hr``); the
  person is ``approved`` once every listed role has signed the same files. Before that the state stays
  ``pending``/``resubmitted`` and ``signoffs`` shows who has signed. With no ``sign_off`` in the guide one
  approval is enough (a role may still be named; it is recorded).

Every change appends a :class:`ReviewEvent` (UTC time, reviewer, role, reason, guide version, the digest of the
files). ``review.json`` is read, changed and written back under an exclusive lock (``.review.lock``) and written
atomically, so two reviewers at once never lose each other's changes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from headshot_lab.atomic import write_json_atomic
from headshot_lab.errors import HeadshotLabError
from headshot_lab.team.layout import PersonStatus, TeamLayout, check_person_id
from headshot_lab.train import file_sha256

ReviewState = Literal["pending", "approved", "rejected", "resubmitted"]
REVIEW_STATES: tuple[str, ...] = ("pending", "approved", "rejected", "resubmitted")
REVIEW_FORMAT = "headshot-lab-team-review/1"


class ReviewError(HeadshotLabError):
    """A review action that is not allowed (unknown id, invalid transition, missing reason)."""

    code = "review_error"


def utc_now() -> str:
    """The current time as ISO 8601 UTC, to the second (``2026-12-02T03:30:00Z``)."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """``text`` (ISO 8601; ``Z`` or an offset; a naive time is taken as UTC) as an aware UTC datetime.

    Raises:
        HeadshotLabError: ``bad_time`` when ``text`` is not an ISO 8601 time.
    """
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        raise HeadshotLabError(
            f"{text!r} is not a date and time.",
            fix="Use ISO 8601, e.g. 2026-12-02T03:30:00Z.",
            code="bad_time",
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass
class ReviewEvent:
    """One change of a person's review state."""

    at: str
    action: str  # approve | reject | resubmit
    state: str  # the state after the change
    by: str | None = None
    role: str | None = None
    reason: str = ""
    guide_version: str = ""
    files_sha256: str = ""


@dataclass
class ReviewEntry:
    """A person's review state. ``files`` maps each file (relative to the person's folder) to its sha256 at the
    last change; ``signoffs`` are the approvals of exactly those files (``{"role", "by", "at"}``)."""

    person_id: str
    state: str = "pending"
    reason: str = ""
    files_sha256: str = ""
    files: dict[str, str] = field(default_factory=dict)
    signoffs: list[dict[str, Any]] = field(default_factory=list)
    guide_version: str = ""
    updated: str = ""
    history: list[ReviewEvent] = field(default_factory=list)
    note: str = ""  # why the state read differs from the one stored (e.g. files changed after approval)

    @property
    def approved(self) -> bool:
        return self.state == "approved"

    @property
    def approved_by(self) -> str:
        """The sign-offs in words: ``"Ana (hr); Bo (brand)"``."""
        parts = []
        for signoff in self.signoffs:
            who = signoff.get("by") or "unnamed reviewer"
            parts.append(f"{who} ({signoff['role']})" if signoff.get("role") else str(who))
        return "; ".join(parts)

    @property
    def approved_at(self) -> str:
        return max((str(s.get("at", "")) for s in self.signoffs), default="") if self.approved else ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReviewEntry:
        known = set(cls.__dataclass_fields__)
        entry = cls(**{k: v for k, v in data.items() if k in known and k != "history"})
        fields = set(ReviewEvent.__dataclass_fields__)
        entry.history = [ReviewEvent(**{k: v for k, v in e.items() if k in fields}) for e in data.get("history", [])]
        return entry


# ---------------------------------------------------------------------------------------- files and lock
def files_digest(files: dict[str, str]) -> str:
    """One digest of a person's files: ``sha256("\\n".join(f"{name} {sha256(file)}" for name in sorted))``."""
    lines = "\n".join(f"{name} {files[name]}" for name in sorted(files))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def current_files(layout: TeamLayout, status: PersonStatus) -> dict[str, str]:
    """``{relative file: sha256}`` of the files ``status`` lists (a missing file is ``"missing"``; one that
    points outside the person's folder, e.g. ``../../x``, is ``"outside"`` and never read)."""
    folder = layout.person_dir(status.person_id)
    hashes = {}
    for name in status.files:
        path = folder / name
        if not path.resolve().is_relative_to(folder.resolve()):
            hashes[name] = "outside"
        else:
            hashes[name] = file_sha256(path) if path.is_file() else "missing"
    return hashes


@contextlib.contextmanager
def locked(layout: TeamLayout) -> Iterator[None]:
    """Hold an exclusive lock on the team folder's review data (``fcntl.flock``; a no-op where there is none)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: atomic replace still keeps the file whole
        yield
        return
    fd = os.open(layout.review_lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def read_entries(layout: TeamLayout) -> dict[str, ReviewEntry]:
    """The entries stored in ``review.json`` (empty when there is none), as stored."""
    if not layout.review_json.is_file():
        return {}
    try:
        data = json.loads(layout.review_json.read_text(encoding="utf-8"))
        return {pid: ReviewEntry.from_dict(entry) for pid, entry in (data.get("people") or {}).items()}
    except (ValueError, TypeError, AttributeError, KeyError):
        raise ReviewError(
            f"{layout.review_json} cannot be read (it is not a review file of headshot-lab).",
            fix="Restore it from a backup, or move it away to start the reviews again (everyone is then pending).",
            code="bad_review_file",
        ) from None


def write_entries(layout: TeamLayout, entries: dict[str, ReviewEntry]) -> Path:
    """Write ``review.json`` atomically (call under :func:`locked`)."""
    payload = {
        "format": REVIEW_FORMAT,
        "updated": utc_now(),
        "people": {pid: entries[pid].to_dict() for pid in sorted(entries)},
    }
    return write_json_atomic(layout.review_json, payload)


# ---------------------------------------------------------------------------------------- reading
def _guide_version(layout: TeamLayout) -> str:
    return str(layout.guide_setting("version", "") or "")


def required_signoffs(root: str | Path) -> list[str]:
    """The roles the guide requires (``sign_off: [hr, brand]``), lower case; ``[]`` when it lists none."""
    value = TeamLayout(root).guide_setting("sign_off", []) or []
    if isinstance(value, str):
        value = [value]
    return [str(role).strip().lower() for role in value if str(role).strip()]


def _effective(entry: ReviewEntry, files: dict[str, str]) -> ReviewEntry:
    """``entry`` as it reads now: an approval or rejection of other files than the current ones does not hold."""
    if entry.state == "pending" and not entry.files:
        return entry
    if files_digest(files) == entry.files_sha256:
        return entry
    if entry.state == "pending" and not entry.signoffs:
        return entry
    note = {
        "approved": "The files changed after approval (a re-run): they need a new review.",
        "rejected": "The files changed after the rejection (a re-run): they are re-submitted for review.",
    }.get(entry.state, "The files changed after the last sign-off: the sign-offs no longer hold.")
    missing = sorted(name for name, digest in files.items() if digest == "missing")
    if missing:
        note = f"File missing since the last review: {', '.join(missing)}."
    state = "pending" if entry.state == "pending" else "resubmitted"
    return ReviewEntry(
        person_id=entry.person_id,
        state=state,
        reason=entry.reason if entry.state == "rejected" else "",
        files_sha256=files_digest(files),
        files=files,
        signoffs=[],
        guide_version=entry.guide_version,
        updated=entry.updated,
        history=entry.history,
        note=note,
    )


def _load_state(layout: TeamLayout) -> tuple[dict[str, ReviewEntry], dict[str, PersonStatus]]:
    layout.require_team()
    stored = read_entries(layout)
    statuses = {pid: layout.read_status(pid) for pid in layout.person_ids()}
    entries = {}
    for pid, status in statuses.items():
        files = current_files(layout, status)
        entry = stored.get(pid) or ReviewEntry(person_id=pid, files=files, files_sha256="")
        if pid not in stored:
            entry.files_sha256 = files_digest(files)
        entries[pid] = _effective(entry, files)
    return entries, statuses


def review_state(root: str | Path) -> dict[str, ReviewEntry]:
    """Every person's review state now, by id (people who were never reviewed are ``pending``).

    The state is read against the current files: an approval of files that have since changed reads as
    ``resubmitted`` (see the module doc); nothing is written.

    Raises:
        HeadshotLabError: ``not_a_team_folder``.
    """
    return _load_state(TeamLayout(root))[0]


def pending(root: str | Path) -> list[str]:
    """Ids of the people waiting for a review: done, with files, and ``pending`` or ``resubmitted``."""
    entries, statuses = _load_state(TeamLayout(root))
    return [
        pid
        for pid, entry in entries.items()
        if entry.state in ("pending", "resubmitted") and statuses[pid].state == "done" and statuses[pid].files
    ]


# ---------------------------------------------------------------------------------------- changing
def _unknown(layout: TeamLayout, person_id: str) -> ReviewError:
    known = layout.person_ids()
    listed = ", ".join(known[:8]) + (" …" if len(known) > 8 else "")
    return ReviewError(
        f"There is no person {person_id!r} in this team folder.",
        fix=f"Use one of: {listed}." if known else "Run `headshot-lab team run` first.",
        code="unknown_person",
    )


def _reviewable(layout: TeamLayout, statuses: dict[str, PersonStatus], person_id: str, files: dict[str, str]) -> None:
    """A clear error unless ``person_id`` exists, was processed (``done``) and all its files are there."""
    check_person_id(person_id)
    status = statuses.get(person_id)
    if status is None:
        raise _unknown(layout, person_id)
    if status.state != "done":
        why = f" ({status.reason})" if status.reason else ""
        raise ReviewError(
            f"{person_id} was {status.state}{why}: there are no headshots to review.",
            fix="Fix the reason and run the person again; review them after that run.",
            code="not_reviewable",
        )
    outside = [name for name, digest in files.items() if digest == "outside"]
    if outside:
        raise ReviewError(
            f"{person_id}: status.json lists files outside the person's folder: {', '.join(outside)}.",
            fix="Run the person again so status.json lists their own files.",
            code="files_outside",
        )
    missing = [name for name, digest in files.items() if digest == "missing"]
    if not files or missing:
        raise ReviewError(
            f"{person_id}: " + (f"file missing: {', '.join(missing)}." if missing else "no files to review."),
            fix="Run the person again so their files are complete, then review.",
            code="files_missing",
        )


def _event(entry: ReviewEntry, action: str, version: str, **fields: Any) -> None:
    at = utc_now()
    entry.updated = at
    entry.guide_version = version
    entry.history.append(
        ReviewEvent(
            at=at, action=action, state=entry.state, guide_version=version, files_sha256=entry.files_sha256, **fields
        )
    )


def _check_role(role: str | None, required: list[str]) -> str | None:
    if role is not None:
        role = role.strip().lower() or None
    if required and role is None:
        raise ReviewError(
            f"This style guide needs a sign-off by each of: {', '.join(required)}.",
            fix=f"Name the role of this approval, e.g. --role {required[0]}.",
            code="role_required",
        )
    if required and role not in required:
        raise ReviewError(
            f"{role!r} is not a sign-off this style guide asks for ({', '.join(required)}).",
            fix=f"Use one of: {', '.join(required)}.",
            code="unknown_role",
        )
    return role


def approve(
    root: str | Path, ids: Sequence[str] | str, by: str | None = None, role: str | None = None
) -> dict[str, ReviewEntry]:
    """Approve the current files of each person in ``ids`` (all or none: every id is checked first).

    Allowed from ``pending`` and ``resubmitted`` (and on ``approved``: a further role's sign-off, or a no-op).
    A ``rejected`` person must be re-run first (their files change, or :func:`mark_resubmitted`).

    Returns:
        The changed entries, by id.

    Raises:
        ReviewError: ``unknown_person``, ``not_reviewable``, ``files_missing``, ``invalid_transition``,
            ``role_required``, ``unknown_role``, ``no_ids``.
    """
    wanted = [ids] if isinstance(ids, str) else list(dict.fromkeys(ids))
    if not wanted:
        raise ReviewError("No person to approve.", fix="Name one or more person ids.", code="no_ids")
    layout = TeamLayout(root)
    required = required_signoffs(root)
    role = _check_role(role, required)
    version = _guide_version(layout)
    with locked(layout):
        entries, statuses = _load_state(layout)
        for pid in wanted:
            _reviewable(layout, statuses, pid, entries[pid].files if pid in entries else {})
            if entries[pid].state == "rejected":
                raise ReviewError(
                    f"{pid} was rejected ({entries[pid].reason}); the same files cannot be approved now.",
                    fix="Re-run the person (their new files are then re-submitted), or mark them re-submitted.",
                    code="invalid_transition",
                )
        stored = read_entries(layout)
        for pid in wanted:
            entry = entries[pid]
            signoff = {"role": role, "by": by, "at": utc_now()}
            entry.signoffs = [
                s for s in entry.signoffs if s.get("role") != role or (role is None and s.get("by") != by)
            ]
            entry.signoffs.append(signoff)
            signed = {s.get("role") for s in entry.signoffs}
            if all(r in signed for r in required):
                entry.state = "approved"
                entry.reason = ""
            entry.note = ""
            _event(entry, "approve", version, by=by, role=role)
            stored[pid] = entry
        write_entries(layout, stored)
    return {pid: entries[pid] for pid in wanted}


def reject(root: str | Path, person_id: str, reason: str, by: str | None = None) -> ReviewEntry:
    """Reject ``person_id``'s current files, saying why (``reason`` is required).

    Allowed from ``pending``, ``resubmitted`` and ``approved`` (an approval withdrawn); not twice in a row.

    Raises:
        ReviewError: ``reason_required``, ``unknown_person``, ``not_reviewable``, ``invalid_transition``.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ReviewError(
            f"A rejection of {person_id} needs a reason.",
            fix='Say what to change, e.g. --reason "backdrop too dark".',
            code="reason_required",
        )
    layout = TeamLayout(root)
    version = _guide_version(layout)
    with locked(layout):
        entries, statuses = _load_state(layout)
        check_person_id(person_id)
        if person_id not in statuses:
            raise _unknown(layout, person_id)
        entry = entries[person_id]
        if statuses[person_id].state != "done":
            _reviewable(layout, statuses, person_id, entry.files)
        if entry.state == "rejected":
            raise ReviewError(
                f"{person_id} is already rejected ({entry.reason}).",
                fix="Re-run the person; their new files can then be approved or rejected.",
                code="invalid_transition",
            )
        entry.state, entry.reason, entry.signoffs, entry.note = "rejected", reason, [], ""
        _event(entry, "reject", version, by=by, reason=reason)
        stored = read_entries(layout)
        stored[person_id] = entry
        write_entries(layout, stored)
    return entry


def mark_resubmitted(root: str | Path, person_id: str) -> ReviewEntry:
    """Record that ``person_id`` was re-run (``rejected`` or ``approved`` → ``resubmitted``, files re-hashed).

    For ``team run`` to call after re-running a person. A person ``pending`` or already ``resubmitted`` stays
    as they are (their files are re-hashed; no event is added): there was no decision to undo.

    Raises:
        ReviewError: ``unknown_person``.
    """
    layout = TeamLayout(root)
    version = _guide_version(layout)
    with locked(layout):
        entries, statuses = _load_state(layout)
        check_person_id(person_id)
        if person_id not in statuses:
            raise _unknown(layout, person_id)
        stored = read_entries(layout)
        entry = entries[person_id]
        previous = stored.get(person_id)
        if previous is not None and previous.state in ("approved", "rejected"):
            entry.state, entry.signoffs, entry.note = "resubmitted", [], ""
            _event(entry, "resubmit", version)
        stored[person_id] = entry
        write_entries(layout, stored)
    return entry


def forget(root: str | Path, person_ids: Iterable[str]) -> list[str]:
    """Remove the review entries of ``person_ids`` (for ``team delete``); return the ids that had one."""
    layout = TeamLayout(root)
    with locked(layout):
        stored = read_entries(layout)
        gone = [pid for pid in person_ids if stored.pop(pid, None) is not None]
        if gone:
            write_entries(layout, stored)
    return gone


__all__ = [
    "REVIEW_STATES",
    "ReviewEntry",
    "ReviewError",
    "ReviewEvent",
    "ReviewState",
    "approve",
    "files_digest",
    "forget",
    "mark_resubmitted",
    "parse_time",
    "pending",
    "reject",
    "required_signoffs",
    "review_state",
    "utc_now",
]
