"""What the app keeps per browser session, what every action returns, and the error guard."""

from __future__ import annotations

import functools
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from headshot_lab.errors import HeadshotLabError, ModelUnavailableError
from headshot_lab.reporting import Progress, report_progress, table_cell  # noqa: F401 (re-exported)

# The policies live in the service layer; re-exported here for the UI.
from headshot_lab.workflow import (  # noqa: F401
    FORMATS,
    IDENTITY_MODES,
    MAX_PHOTOS,
    MAX_PICKS,
    MIN_PHOTOS,
    POSE_CHOICES,
    PUBLISHED_DIR,
)

logger = logging.getLogger("headshot_lab.ui")

MIN_PICKS = 5
THUMBNAIL_SIDE = 320
MAX_UPLOAD_MB = 25
ACTIONS = (
    "check_photos", "train_identity", "generate", "preview", "retouch", "select", "export", "audit", "delete_my_data",
)  # fmt: skip
ONE_AT_A_TIME = frozenset(ACTIONS) - {"delete_my_data"}
"""Actions a page may run only one at a time (deleting is never held up)."""
CONSENT_TEXT = (
    "I am the person in these photos (or have their written permission) and I agree that they are processed "
    "on this server to make headshots. Nothing is shared; everything is deleted when I press “Delete my data "
    "now”, when I close this page, or automatically after the retention period."
)
RETOUCH_OFFER = (
    "Studio retouch (tab 3, below the generator) works without any model: it puts your own photo on a studio "
    "backdrop with even light."
)


@dataclass
class Item:
    """One image of a session.

    Attributes:
        name: display name, unique in the session (``obama.jpg``, ``retouched/obama_corporate.png``).
        path: absolute path inside the session folder (``""`` for an upload that could not be read).
        kind: ``"upload"``, ``"generated"`` or ``"retouched"``.
        source: for outputs made from one upload, that upload's name.
        ok: uploads: usable for training (no error in the capture report).
        origin: uploads: the path Gradio handed over (to recognise a re-submitted file).
        raw: no longer written (nothing of a refused upload is kept); kept so that old states still load.
        error: uploads that could not be read (or were refused while copying in): the refusal.
        notes: uploads: warnings found while copying it in (e.g. ``animated``: only the first frame was
            kept), added to the checklist's report, since the checklist sees the session's still copy.
    """

    name: str
    path: str
    kind: str
    source: str | None = None
    ok: bool = True
    origin: str = ""
    raw: str = ""
    error: dict[str, str] | None = None
    notes: list[dict[str, str]] = field(default_factory=list)


@dataclass
class SessionState:
    """What ``gr.State`` holds for one browser session (server-side only; never sent to the browser).

    ``handed``: Gradio upload paths this page handed over and that are not deleted yet (the only Gradio files a
    request of this page may delete); ``owner``: a random token naming the page (one action at a time per page).
    """

    session_id: str | None = None
    uploads: list[Item] = field(default_factory=list)
    outputs: list[Item] = field(default_factory=list)
    identity: dict[str, Any] | None = None
    picks: list[str] = field(default_factory=list)
    runs: int = 0
    handed: list[str] = field(default_factory=list, compare=False)
    owner: str = field(default="", compare=False, repr=False)

    def page(self) -> str:
        """The page's random token, drawn on first use (``gr.State`` deep-copies its initial value for every
        page, so a token drawn at construction would be shared by all of them)."""
        if not self.owner:
            self.owner = secrets.token_hex(8)
        return self.owner

    def usable_uploads(self, *, strict: bool = False) -> list[Item]:
        """Uploads that passed the checklist; unless ``strict``, all readable ones when none passed."""
        readable = [item for item in self.uploads if item.path]
        passed = [item for item in readable if item.ok]
        return passed if strict else passed or readable

    def output(self, name: str) -> Item | None:
        return next((item for item in self.outputs if item.name == name), None)

    def next_run(self) -> int:
        self.runs += 1
        return self.runs


@dataclass
class ActionResult:
    """What one action returns; ``app.py`` maps the fields onto components.

    Attributes:
        state: the updated session state (goes back into ``gr.State``).
        status: Markdown for the status line (errors: message and fix).
        error: ``HeadshotLabError.to_dict()`` when the action failed, else ``None``.
        gallery: ``(published path, caption)`` pairs.
        report: the action's JSON-friendly payload (no server paths).
        files: published files to download (served byte for byte).
        download: the published zip, when there is one.
        choices, picks: the selectable output names and the preselected ones (select → export).
    """

    state: SessionState
    status: str = ""
    error: dict[str, str] | None = None
    gallery: list[tuple[str, str]] = field(default_factory=list)
    report: dict[str, Any] | None = None
    files: list[str] = field(default_factory=list)
    download: str | None = None
    choices: list[str] = field(default_factory=list)
    picks: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None


_SETTING = re.compile(r"(?<![`\w])([A-Z][A-Z0-9]*_[A-Z0-9_]*[A-Z0-9])(?![`\w])")


def code_settings(text: str) -> str:
    """Put environment-variable names (``HEADSHOT_LAB_BASE_MODEL``) in Markdown code spans."""
    return _SETTING.sub(r"`\1`", text)


def format_error(exc: HeadshotLabError) -> str:
    """``⚠️ **message**`` then the fix: the text the CLI prints as ``error:`` / ``fix:``."""
    text = f"⚠️ **{code_settings(exc.message)}**"
    return f"{text}\n\n{code_settings(exc.fix)}" if exc.fix else text


def fail_result(state: SessionState, exc: HeadshotLabError, extra: str = "") -> ActionResult:
    status = format_error(exc) + (f"\n\n{extra}" if extra else "")
    return ActionResult(state=state, status=status, error=exc.to_dict())


def guarded(method: Callable[..., ActionResult]) -> Callable[..., ActionResult]:
    """Turn every failure into a status (never a traceback): user errors verbatim, bugs as one line.

    Afterwards, if the session was deleted while the action ran ("Delete my data now" pressed meanwhile,
    or the TTL purge), the backend's ``settle_deleted`` removes whatever the action wrote since, and the
    action reports that nothing was kept.
    """

    @functools.wraps(method)
    def wrapper(self: Any, state: SessionState | None, *args: Any, **kwargs: Any) -> ActionResult:
        state = state if isinstance(state, SessionState) else SessionState()
        gate = getattr(self, "one_at_a_time", None) if method.__name__ in ONE_AT_A_TIME else None
        if gate is None:
            result = attempt(self, state, *args, **kwargs)
        else:
            try:
                with gate(state):
                    result = attempt(self, state, *args, **kwargs)
            except HeadshotLabError as exc:  # the page's previous action is still running
                return fail_result(state, exc)
        settle = getattr(self, "settle_deleted", None)
        if settle is not None and settle(result.state):
            deleted = HeadshotLabError(
                "Your data was deleted while this was running, so nothing it made was kept.",
                fix="Upload your photos again (tab 1) to start over.",
                code="session_deleted",
            )
            result = fail_result(result.state, deleted)
        return result

    def attempt(self: Any, state: SessionState, *args: Any, **kwargs: Any) -> ActionResult:
        try:
            result = method(self, state, *args, **kwargs)
            result.report = without_path_keys(result.report)
            return result
        except ModelUnavailableError as exc:
            return fail_result(state, exc, RETOUCH_OFFER)
        except HeadshotLabError as exc:
            return fail_result(state, exc)
        except Exception as exc:  # a bug must not end the visitor's session
            logger.exception("%s failed", method.__name__)
            error = HeadshotLabError(
                f"Something went wrong in {method.__name__.replace('_', ' ')} ({type(exc).__name__}).",
                fix="Your files are safe; try again, or try fewer photos. If it keeps happening, please report it.",
                code="internal_error",
            )
            return fail_result(state, error)

    return wrapper


def without_path_keys(payload: Any) -> Any:
    """``payload`` with every ``"path"`` key renamed ``"name"``.

    gradio_client takes any JSON object with a string ``"path"`` for a file and tries to download it;
    the app's reports name photos (``"obama.jpg"``), never server paths, so they say ``"name"``.
    """
    if isinstance(payload, dict):
        return {("name" if key == "path" else key): without_path_keys(value) for key, value in payload.items()}
    if isinstance(payload, list):
        return [without_path_keys(value) for value in payload]
    return payload


def safe_name(name: str, fallback: str = "photo") -> str:
    """A file name with only letters, digits, ``-``, ``_`` and ``.`` (no path, no leading dot)."""
    base = Path(str(name)).name
    cleaned = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in base).lstrip(".")
    return cleaned[:80] or fallback


def output_stem(name: str) -> str:
    """A file stem for an output name, unique per name: ``generated/run-001/headshot-0000.png`` → ``generated_run-001_headshot-0000``."""
    return safe_name(str(Path(name).with_suffix("")).replace("/", "_"), "headshot")


def unique_name(name: str, taken: set[str]) -> str:
    """``name``, or ``stem-2.ext``, ``stem-3.ext`` …: unique by *stem* among ``taken`` (stems), which it updates.

    Unique stems keep every file made from a photo apart (``me.jpg`` and ``me.png`` → ``me.png``, ``me-2.png``).
    """
    stem, suffix = Path(name).stem, Path(name).suffix
    candidate, count = stem, 1
    while candidate in taken:
        count += 1
        candidate = f"{stem}-{count}"
    taken.add(candidate)
    return candidate + suffix


def reset_state(state: SessionState) -> None:
    """Empty ``state`` in place (its session expired or was deleted); it still names the same page."""
    fresh = SessionState(owner=state.page())
    for name in vars(fresh):
        setattr(state, name, getattr(fresh, name))
