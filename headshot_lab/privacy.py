"""Session store: one private folder per session, purged after a TTL, deletable on request.

Everything a person uploads or that is made from it (aligned crops, LoRA weights, generated
images, caches) lives under one session folder and nowhere else::

    <data_dir>/
      sessions/<session id>/          mode 0700, id = secrets.token_hex(16) (128 random bits)
        session.json                  created_at, expires_at, consent {version, timestamp}
        uploads/ aligned/ lora/ outputs/ cache/
      shared/class_images/<settings key>/   the base model's own class images (prior preservation): no user
                                    data, shared by every session (train.class_image_folder)
      logs/
        deletions.jsonl               {"timestamp", "reason", "session", "files", "bytes"}
        consent.jsonl                 {"timestamp", "event", "consent_version", "session"}
        .salt                         random key for the pseudonymous session digests (0600)

Privacy rules kept here:

* **No session id in clear outside its folder.** The logs carry ``session`` =
  ``HMAC-SHA256(salt, id)[:16]`` so that a creation and its deletion can be paired, but the id
  (which grants access) cannot be read back. No file names, no personal data, no IP address.
* **Purge after a TTL** (default 24 h, settable 0–30 days): a session is expired once
  ``now ≥ created_at + ttl``; ``ttl = 0`` keeps nothing beyond the next purge.
* **Delete now**: :meth:`SessionStore.delete_session` removes the whole folder at once (it is first
  renamed away, so a half-deleted session can never be served).
* **Traversal safe**: a session id from a user must match :data:`SESSION_ID_PATTERN`, and every path
  handed out is resolved and checked to stay inside its session folder.
* **No telemetry**: nothing here talks to the network.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from headshot_lab.atomic import append_line, write_bytes_atomic
from headshot_lab.config import Settings, get_settings
from headshot_lab.errors import HeadshotLabError

SESSION_ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
"""``secrets.token_hex(16)``: 32 lowercase hex characters, 128 random bits. Hex (not URL-safe base64) so an
id never starts with ``-`` and is never mistaken for a command-line option."""
SUBFOLDERS = ("uploads", "aligned", "lora", "outputs", "cache")
MAX_TTL_HOURS = 30 * 24.0
DEFAULT_TTL_HOURS = 24.0
CONSENT_VERSION = "2026-11-v1"
"""Version of the consent text the app shows; bump it whenever that text changes."""
DELETION_REASONS = frozenset({"ttl", "user", "admin", "orphan"})
_SESSION_FILE = "session.json"
_DIGEST_CHARS = 16
_DIR_MODE = 0o700
_FILE_MODE = 0o600


class SessionError(HeadshotLabError):
    code = "session_error"


class InvalidSessionIdError(SessionError):
    code = "invalid_session_id"
    fix = "Use the session link you were given; session ids are 32 letters, digits, '-' or '_'."


class SessionNotFoundError(SessionError):
    code = "session_not_found"
    fix = "The session has expired or was deleted; start a new one and upload your photos again."


class InvalidTTLError(SessionError):
    code = "invalid_ttl"
    fix = f"Set HEADSHOT_LAB_TTL_HOURS to a number of hours from 0 to {MAX_TTL_HOURS:.0f} (30 days)."


def validate_ttl_hours(value: float | str) -> float:
    """Return ``value`` as hours in ``[0, 720]`` or raise :class:`InvalidTTLError`."""
    try:
        hours = float(value)
    except (TypeError, ValueError):
        raise InvalidTTLError(f"The retention time {value!r} is not a number of hours.") from None
    if not (0.0 <= hours <= MAX_TTL_HOURS):  # also refuses NaN
        raise InvalidTTLError(f"The retention time must be between 0 and {MAX_TTL_HOURS:.0f} hours, got {value!r}.")
    return hours


def validate_session_id(session_id: object) -> str:
    """Return ``session_id`` if it matches :data:`SESSION_ID_PATTERN`, else raise (never echoing it)."""
    if not isinstance(session_id, str) or not SESSION_ID_PATTERN.fullmatch(session_id):
        raise InvalidSessionIdError("That is not a valid session id.")
    return session_id


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Session:
    """One session folder. Get paths with :meth:`path` (traversal safe), not by joining strings."""

    id: str
    root: Path
    created_at: float
    expires_at: float
    consent_version: str

    def path(self, *parts: str) -> Path:
        """``root / parts…`` resolved, refusing anything that would leave the session folder.

        Raises:
            SessionError: a part is absolute, contains ``..`` that escapes, or a symlink points out.
        """
        root = self.root.resolve()
        try:
            candidate = root.joinpath(*parts).resolve()
        except (ValueError, OSError, TypeError):  # NUL bytes, symlink loops, non-strings
            candidate = None
        if candidate is None or (candidate != root and root not in candidate.parents):
            raise SessionError("That file name is not allowed.", code="unsafe_path", fix="Use a plain file name.")
        return candidate

    @property
    def uploads(self) -> Path:
        return self.root / "uploads"

    @property
    def aligned(self) -> Path:
        return self.root / "aligned"

    @property
    def lora(self) -> Path:
        return self.root / "lora"

    @property
    def outputs(self) -> Path:
        return self.root / "outputs"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    def is_expired(self, now: float) -> bool:
        return now >= self.expires_at

    def to_dict(self) -> dict[str, object]:
        """For the owner of the session (the id is theirs); never write this to a log."""
        return {
            "id": self.id,
            "created_at": _iso(self.created_at),
            "expires_at": _iso(self.expires_at),
            "consent_version": self.consent_version,
        }


@dataclass(frozen=True)
class DeletionRecord:
    """One line of the deletion log: when, why, and how much; nothing that identifies a person."""

    timestamp: str
    reason: str
    session: str  # HMAC digest of the id, not the id
    files: int
    bytes: int

    def to_dict(self) -> dict[str, object]:
        return {
            "timestamp": self.timestamp,
            "reason": self.reason,
            "session": self.session,
            "files": self.files,
            "bytes": self.bytes,
        }


class PurgeLoop:
    """Handle of the background purge thread. ``stop()`` ends it (idempotent).

    ``purge`` replaces ``store.purge_expired`` (e.g. the app's, which also removes the copies it published).
    """

    def __init__(
        self,
        store: SessionStore,
        interval_s: float,
        on_error: Callable[[Exception], None] | None,
        purge: Callable[[], int] | None = None,
    ) -> None:
        self._store = store
        self._purge = purge
        self._interval = interval_s
        self._on_error = on_error
        self._stop = threading.Event()
        self.runs = 0
        self.purged = 0
        self.thread = threading.Thread(target=self._run, name="headshot-lab-purge", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.purged += (self._purge or self._store.purge_expired)()
            except Exception as exc:  # the loop must survive a bad disk moment
                if self._on_error is not None:
                    self._on_error(exc)
            self.runs += 1
            self._stop.wait(self._interval)

    def stop(self, timeout: float | None = 5.0) -> None:
        self._stop.set()
        if self.thread.is_alive() and threading.current_thread() is not self.thread:
            self.thread.join(timeout)

    @property
    def running(self) -> bool:
        return self.thread.is_alive()

    def __enter__(self) -> PurgeLoop:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SessionStore:
    """Per-session private folders with a retention limit.

    Args:
        data_dir: root folder (default ``Settings.data_dir`` / ``HEADSHOT_LAB_DATA_DIR``).
        ttl_hours: retention in hours, 0–720 (default ``Settings.ttl_hours``, 24).
        clock: ``() -> seconds since the epoch``; tests inject a fake one.
    """

    def __init__(
        self,
        data_dir: str | Path | None = None,
        ttl_hours: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if data_dir is None or ttl_hours is None:
            settings = _settings()
            data_dir = settings.data_dir if data_dir is None else data_dir
            ttl_hours = settings.ttl_hours if ttl_hours is None else ttl_hours
        self.data_dir = Path(data_dir).expanduser()
        self.ttl_hours = validate_ttl_hours(ttl_hours)
        self.clock = clock
        self.sessions_dir = self.data_dir / "sessions"
        self.logs_dir = self.data_dir / "logs"
        self.deletion_log = self.logs_dir / "deletions.jsonl"
        self.consent_log = self.logs_dir / "consent.jsonl"
        self._lock = threading.RLock()
        self._salt: bytes | None = None

    # -- layout ---------------------------------------------------------------------------------

    @property
    def ttl_seconds(self) -> float:
        return self.ttl_hours * 3600.0

    def _ensure_dirs(self) -> None:
        # The data dir may be a folder the user chose (even a shared one): create it private, never chmod it.
        self.data_dir.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
        for folder in (self.sessions_dir, self.logs_dir):
            _private_mkdir(folder)

    def _folder(self, session_id: str) -> Path:
        folder = self.sessions_dir / validate_session_id(session_id)
        # The id pattern has no separators or dots, but check containment anyway (defence in depth).
        if folder.resolve().parent != self.sessions_dir.resolve():
            raise InvalidSessionIdError("That is not a valid session id.")
        return folder

    def _digest(self, session_id: str) -> str:
        """``HMAC-SHA256(salt, id)`` truncated: pairs log lines without revealing the id."""
        if self._salt is None:
            self._salt = self._load_salt()
        return hmac.new(self._salt, session_id.encode(), hashlib.sha256).hexdigest()[:_DIGEST_CHARS]

    def _load_salt(self) -> bytes:
        self._ensure_dirs()
        path = self.logs_dir / ".salt"
        with contextlib.suppress(FileNotFoundError):
            salt = path.read_bytes()
            if len(salt) >= 16:
                return salt
        salt = secrets.token_bytes(32)
        _write_private(path, salt)
        return salt

    def _append_log(self, path: Path, record: dict[str, object]) -> None:
        self._ensure_dirs()
        append_line(path, json.dumps(record, sort_keys=True), file_mode=_FILE_MODE, fsync=False)  # all or nothing

    # -- sessions -------------------------------------------------------------------------------

    def create_session(self, *, consent_version: str = CONSENT_VERSION) -> Session:
        """Make a new private session folder and record consent (timestamp + text version only)."""
        with self._lock:
            self._ensure_dirs()
            now = self.clock()
            while True:
                session_id = secrets.token_hex(16)
                folder = self.sessions_dir / session_id
                try:
                    os.mkdir(folder, _DIR_MODE)
                    break
                except FileExistsError:  # pragma: no cover - 2**-192
                    continue
            os.chmod(folder, _DIR_MODE)  # mkdir honours the umask; make sure
            for name in SUBFOLDERS:
                _private_mkdir(folder / name)
            session = Session(
                id=session_id,
                root=folder,
                created_at=now,
                expires_at=now + self.ttl_seconds,
                consent_version=consent_version,
            )
            meta = {
                "created_at": now,
                "expires_at": session.expires_at,
                "consent": {"version": consent_version, "timestamp": _iso(now)},
            }
            _write_private(folder / _SESSION_FILE, json.dumps(meta, indent=2).encode())
            self._append_log(
                self.consent_log,
                {
                    "timestamp": _iso(now),
                    "event": "consent_given",
                    "consent_version": consent_version,
                    "session": self._digest(session_id),
                },
            )
            return session

    def get_session(self, session_id: str) -> Session:
        """The live session ``session_id``.

        Raises:
            InvalidSessionIdError: the id does not match the pattern (e.g. ``../../etc``).
            SessionNotFoundError: no such session, or it has expired (it is purged on the spot).
        """
        folder = self._folder(session_id)
        session = self._read_session(session_id, folder)
        if session is None:
            raise SessionNotFoundError("This session does not exist (it may have expired or been deleted).")
        if self._expired(session):
            self.delete_session(session_id, reason="ttl", missing_ok=True)
            raise SessionNotFoundError("This session has expired and its files were deleted.")
        return session

    def list_sessions(self) -> list[Session]:
        """All sessions on disk (expired ones included until the next purge)."""
        if not self.sessions_dir.is_dir():
            return []
        found = []
        for entry in sorted(self.sessions_dir.iterdir()):
            if SESSION_ID_PATTERN.fullmatch(entry.name) and entry.is_dir() and not entry.is_symlink():
                session = self._read_session(entry.name, entry)
                if session is not None:
                    found.append(session)
        return found

    def _read_session(self, session_id: str, folder: Path) -> Session | None:
        if not folder.is_dir() or folder.is_symlink():
            return None
        try:
            meta = json.loads((folder / _SESSION_FILE).read_text())
            created = float(meta["created_at"])
            expires = float(meta.get("expires_at", created + self.ttl_seconds))
            version = str(meta.get("consent", {}).get("version", ""))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            # Unreadable metadata: age the folder by its modification time so it still expires.
            try:
                created = folder.stat().st_mtime
            except FileNotFoundError:  # deleted meanwhile (another thread renamed it away): not a session
                return None
            expires, version = created + self.ttl_seconds, ""
        return Session(id=session_id, root=folder, created_at=created, expires_at=expires, consent_version=version)

    def _expired(self, session: Session) -> bool:
        """Expired when past its own deadline or past the store's (possibly shorter) current TTL."""
        now = self.clock()
        return now >= min(session.expires_at, session.created_at + self.ttl_seconds)

    # -- deletion -------------------------------------------------------------------------------

    def delete_session(
        self, session_id: str, *, reason: str = "user", missing_ok: bool = False
    ) -> DeletionRecord | None:
        """Delete every file of a session now ("delete my data") and log it without the id.

        Returns:
            The :class:`DeletionRecord` written to the log, or ``None`` if it was already gone and
            ``missing_ok``.

        Raises:
            InvalidSessionIdError: malformed id.
            SessionNotFoundError: no such session (unless ``missing_ok``).
        """
        if reason not in DELETION_REASONS:
            raise ValueError(f"reason must be one of {sorted(DELETION_REASONS)}")
        folder = self._folder(session_id)
        with self._lock:
            if not folder.is_dir() or folder.is_symlink():
                if missing_ok:
                    return None
                raise SessionNotFoundError("This session does not exist (it may have expired or been deleted).")
            # Rename first: the session disappears atomically, then the files go.
            tomb = self.sessions_dir / f".deleting-{secrets.token_hex(8)}"
            folder.rename(tomb)
            files, size = _count(tomb)
            shutil.rmtree(tomb, ignore_errors=True)
            if tomb.exists():  # pragma: no cover - permissions changed under us
                shutil.rmtree(tomb)
            record = DeletionRecord(
                timestamp=_iso(self.clock()), reason=reason, session=self._digest(session_id), files=files, bytes=size
            )
            self._append_log(self.deletion_log, record.to_dict())
            return record

    def purge_expired(self) -> int:
        """Delete every expired session (and leftovers of interrupted deletions); return how many."""
        purged = 0
        with self._lock:
            for session in self.list_sessions():
                if self._expired(session) and self.delete_session(session.id, reason="ttl", missing_ok=True):
                    purged += 1
            if self.sessions_dir.is_dir():
                for entry in self.sessions_dir.iterdir():
                    if entry.name.startswith(".deleting-"):
                        shutil.rmtree(entry, ignore_errors=True)
        return purged

    def start_purge_loop(
        self,
        interval_s: float = 600.0,
        *,
        on_error: Callable[[Exception], None] | None = None,
        purge: Callable[[], int] | None = None,
    ) -> PurgeLoop:
        """Purge now and then every ``interval_s`` seconds on a daemon thread; ``handle.stop()`` ends it.

        ``purge`` (default :meth:`purge_expired`) is what runs each time; it returns how many sessions went.
        """
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        loop = PurgeLoop(self, interval_s, on_error, purge)
        loop.thread.start()
        return loop

    def read_deletion_log(self) -> list[dict[str, object]]:
        """The deletion log as a list of dicts (oldest first)."""
        if not self.deletion_log.is_file():
            return []
        return [json.loads(line) for line in self.deletion_log.read_text().splitlines() if line.strip()]


def _settings() -> Settings:
    try:
        return get_settings()
    except ValueError as exc:  # e.g. HEADSHOT_LAB_TTL_HOURS=abc
        raise InvalidTTLError(f"A HEADSHOT_LAB_* setting is not valid: {exc}.") from None


def _private_mkdir(path: Path) -> None:
    path.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
    if path.stat().st_mode & 0o777 != _DIR_MODE:
        os.chmod(path, _DIR_MODE)


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600, atomically."""
    write_bytes_atomic(path, data, file_mode=_FILE_MODE)


def _count(folder: Path) -> tuple[int, int]:
    """Number of files and their total bytes under ``folder`` (symlinks counted, never followed)."""
    files = size = 0
    for dirpath, _dirs, names in os.walk(folder, followlinks=False):
        for name in names:
            files += 1
            with contextlib.suppress(OSError):
                size += os.lstat(os.path.join(dirpath, name)).st_size
    return files, size


def remove_tree(folder: str | os.PathLike[str]) -> tuple[int, int]:
    """Delete ``folder`` the way a session is deleted: renamed away first (it disappears at once), then removed.

    Returns ``(files, bytes)`` it held, ``(0, 0)`` when there was no such folder (a symlink is unlinked, never
    followed).
    """
    path = Path(folder)
    if path.is_symlink():
        path.unlink()
        return 0, 0
    if not path.is_dir():
        return 0, 0
    tomb = path.parent / f".deleting-{secrets.token_hex(8)}"
    path.rename(tomb)
    counts = _count(tomb)
    shutil.rmtree(tomb, ignore_errors=True)
    if tomb.exists():  # pragma: no cover - permissions changed under us
        shutil.rmtree(tomb)
    return counts
