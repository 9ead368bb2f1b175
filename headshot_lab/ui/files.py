"""Session folders and what Gradio may serve of them.

Gradio serves only its own cache folder (``GRADIO_TEMP_DIR``) and ``allowed_paths``; the session
folders are neither, so nothing in them is reachable by URL. A file is shown or downloaded by
*publishing* it: its bytes are copied unchanged (no re-encode, so the disclosure XMP / C2PA stays
intact) to ``<publish_root>/<sha256(session id)[:32]>/<path in the session>`` inside Gradio's cache.
Deleting a session removes its folder and that published folder; Gradio's copies of uploads are
deleted as soon as the upload has been copied into the session.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from headshot_lab import workflow
from headshot_lab.atomic import atomic_write, copy_file_atomic, write_bytes_atomic
from headshot_lab.errors import HeadshotLabError, ImageError
from headshot_lab.privacy import CONSENT_VERSION, PurgeLoop, Session, SessionNotFoundError, SessionStore
from headshot_lab.ui.state import (
    THUMBNAIL_SIDE,
    Item,
    SessionState,
    logger,
    reset_state,
    safe_name,
    unique_name,
)

DELETED_MEMORY_S = 24 * 3600.0
"""How long the app remembers that a session was deleted (longer than any action runs; see ``settle_deleted``)."""


class SessionFiles:
    """Per-session folders, publishing files to Gradio's cache, and deleting everything of a session.

    Args:
        store: the :class:`SessionStore` (default: from the settings, ``HEADSHOT_LAB_DATA_DIR``).
        publish_root: where published copies go; must lie inside Gradio's cache folder
            (``GRADIO_TEMP_DIR``) for Gradio to serve them (default: ``<data dir>/gradio/published``).
        upload_root: Gradio's upload folder; uploads found there are deleted once copied into a session.
    """

    def __init__(
        self,
        store: SessionStore | None = None,
        *,
        publish_root: str | Path | None = None,
        upload_root: str | Path | None = None,
    ) -> None:
        self.store = store or SessionStore()
        default_root = workflow.default_publish_root(self.store)  # the same folder `headshot-lab delete-session` cleans
        self.publish_root = Path(publish_root) if publish_root is not None else default_root
        self.upload_root = Path(upload_root) if upload_root is not None else default_root.parent
        self._lock = threading.RLock()
        self._profiles: dict[tuple[str, tuple[str, ...]], Any] = {}
        self._deleted: dict[str, float] = {}  # session id -> when it was deleted (see settle_deleted)
        self.purge_loop: PurgeLoop | None = None

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self, interval_s: float = 600.0) -> PurgeLoop:
        """Start the TTL purge loop (idempotent): expired sessions and their published copies go."""
        with self._lock:
            if self.purge_loop is None or not self.purge_loop.running:
                self.purge_loop = self.store.start_purge_loop(
                    interval_s, on_error=lambda exc: logger.warning("purge failed: %s", exc), purge=self.purge_expired
                )
            self.remove_orphaned_copies()
            return self.purge_loop

    def purge_expired(self) -> int:
        """The store's TTL purge, plus the published copies (and cached profiles) of every session it removed.

        What the purge loop runs: without it, a purged session's thumbnails and downloads would stay in
        Gradio's cache until the next visitor (or Gradio's own cache sweep) came along.
        """
        report = workflow.purge_expired(store=self.store, publish_root=self.publish_root)
        for session_id in report.session_ids:
            self._gone(session_id)
        self.remove_orphaned_copies()  # sessions purged elsewhere (``headshot-lab purge``) or before a restart
        return report.purged

    def stop(self) -> None:
        if self.purge_loop is not None:
            self.purge_loop.stop()

    def remove_orphaned_copies(self) -> int:
        """Delete published copies whose session no longer exists (expired, deleted, or a restart).

        Also removes the empty ``tmp*`` files Gradio's ``File`` component leaves in its upload folder on
        every call. Anything younger than a minute is left alone (it may belong to a request in flight).
        """
        now = time.time()
        if self.upload_root.is_dir():
            for entry in self.upload_root.glob("tmp*"):
                with contextlib.suppress(OSError):
                    info = entry.lstat()
                    if entry.is_file() and info.st_size == 0 and now - info.st_mtime > 60:
                        entry.unlink()
        return workflow.remove_orphaned_copies(self.store, self.publish_root)

    # -- sessions ----------------------------------------------------------------------------------
    @staticmethod
    def publish_key(session_id: str) -> str:
        """Folder name of a session's published copies: ``sha256(id)[:32]`` (the id cannot be recovered)."""
        return workflow.publish_key(session_id)

    def publish_dir(self, session_id: str) -> Path:
        return workflow.published_dir(self.publish_root, session_id)

    def open_session(self, state: SessionState, *, create: bool = False) -> Session:
        """The state's live session; a new one (consent recorded) when ``create`` and there is none.

        Raises:
            HeadshotLabError: ``no_session`` (nothing uploaded yet) or ``session_not_found`` (expired).
        """
        if state.session_id:
            try:
                return self.store.get_session(state.session_id)
            except SessionNotFoundError:  # expired (the store has just purged it): its published copies go too
                self._gone(state.session_id)
                reset_state(state)
                if not create:
                    raise
        if not create:
            raise HeadshotLabError(
                "There is no session yet: nothing has been uploaded.",
                fix="Tick the consent box and upload your photos in tab 1 first.",
                code="no_session",
            )
        self.start()  # make sure the purge loop runs whenever sessions exist (idempotent)
        session = self.store.create_session(consent_version=CONSENT_VERSION)
        state.session_id = session.id
        return session

    def publish(self, session: Session, path: str | Path) -> str:
        """Copy a session file byte for byte into the session's published folder; return the copy's path."""
        source = Path(path)
        relative = source.resolve().relative_to(session.root.resolve())
        session.path(*relative.parts)  # refuses anything outside the session folder
        target = self.publish_dir(session.id) / relative
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        copy_file_atomic(source, target, fsync=False)  # a copy for display: atomic, but no need to hit the disk
        return str(target)

    def forget(self, state: Any) -> None:
        """``gr.State`` ``delete_callback``: the browser session ended, so its data goes too."""
        if isinstance(state, SessionState) and state.session_id:
            self.delete_session(state.session_id, reason="orphan")

    def forget_memory(self, session_id: str) -> None:
        with self._lock:
            for key in [k for k in self._profiles if k[0] == session_id]:
                del self._profiles[key]

    def delete_session(self, session_id: str, *, reason: str) -> workflow.Deletion:
        """:func:`headshot_lab.workflow.delete_session` (folder + published copies), then the app's memory of it."""
        deletion = workflow.delete_session(
            session_id, store=self.store, publish_root=self.publish_root, reason=reason, missing_ok=True
        )
        self._gone(session_id)
        return deletion

    def _gone(self, session_id: str) -> None:
        """A session was deleted or purged: its published copies and cached profiles go, and the id is noted."""
        shutil.rmtree(self.publish_dir(session_id), ignore_errors=True)
        self.forget_memory(session_id)
        now = time.monotonic()
        with self._lock:
            self._deleted = {k: t for k, t in self._deleted.items() if now - t < DELETED_MEMORY_S}
            self._deleted[session_id] = now

    def settle_deleted(self, state: SessionState) -> bool:
        """After an action: if ``state``'s session was deleted while the action ran, delete what it wrote since.

        "Delete my data now" (or the TTL purge) can run while an action of the same page is still working;
        that action's next write would re-create the session folder (and its published copies), so a
        deleted session would come back. This removes them again and empties ``state``.

        Returns:
            ``True`` when the session had been deleted (``state`` is then empty).
        """
        session_id = state.session_id
        if session_id is None:
            return False
        with self._lock:
            if session_id not in self._deleted:
                return False
        self.store.delete_session(session_id, reason="orphan", missing_ok=True)
        self._gone(session_id)
        reset_state(state)
        return True

    def discard_upload(self, path: str) -> None:
        """Delete Gradio's copy of an upload (only inside Gradio's upload folder)."""
        try:
            file = Path(path).resolve()
            root = self.upload_root.resolve()
        except (OSError, ValueError):
            return
        if root not in file.parents or self.publish_root.resolve() in file.parents:
            return
        with contextlib.suppress(OSError):
            file.unlink()
        with contextlib.suppress(OSError):
            if file.parent != root:
                file.parent.rmdir()  # Gradio keeps each upload in its own folder

    def ingest(self, session: Session, path: str, taken: set[str]) -> Item:
        """Copy one upload into the session, pixels only (lossless PNG), then delete Gradio's copy."""
        from headshot_lab.capture import animation_warning
        from headshot_lab.io import load_photo, read_bytes, save_image

        item = Item(name=unique_name(safe_name(path), taken), path="", kind="upload", origin=path)
        try:
            if self.publish_root.resolve() in Path(path).resolve().parents:  # shown by the app (to any page)
                raise ImageError(
                    f"{Path(path).name}: this is a file the app made, not one of your uploads.",
                    fix="Upload photos from your device.",
                    code="not_an_upload",
                )
            data, _ = read_bytes(path)
        except ImageError as exc:
            if exc.code == "file_not_found" and self.upload_root.resolve() in Path(path).resolve().parents:
                # Gradio keeps one copy per content: a page that checked a byte-identical file a moment
                # earlier has already deleted it. Re-adding the photo uploads it again.
                exc = ImageError(
                    f"{Path(path).name}: this upload is no longer on the server.",
                    fix="Remove the photo from the uploader and add it again.",
                    code="upload_gone",
                )
            item.ok, item.error = False, exc.to_dict()
            self.discard_upload(path)
            return item
        try:
            photo = load_photo(data, name=item.name, min_side=0)  # EXIF/GPS/XMP/ICC are dropped here
        except ImageError:
            item.ok = False
            raw = session.cache / "rejected" / item.name  # kept (privately) only to report on it
            raw.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_bytes_atomic(raw, data)
            item.raw = str(raw)
        else:
            item.path = str(save_image(photo.pixels, session.uploads / f"{Path(item.name).stem}.png"))
            animated = animation_warning(item.name, photo.frames, photo.format)
            if animated is not None:  # the session keeps a still copy: the checklist would not see the frames
                item.notes.append(animated.to_dict())
        finally:
            self.discard_upload(path)
        return item

    def thumbnail(self, session: Session, item: Item) -> str:
        from PIL import Image, ImageDraw

        target = session.cache / "thumbs" / f"{Path(item.name).stem}.webp"
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if item.path:
            with Image.open(item.path) as opened:
                image = opened.convert("RGB")
            image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        else:  # unreadable upload: a grey tile with a cross
            image = Image.new("RGB", (THUMBNAIL_SIDE, THUMBNAIL_SIDE), (205, 205, 205))
            draw = ImageDraw.Draw(image)
            draw.line((40, 40, THUMBNAIL_SIDE - 40, THUMBNAIL_SIDE - 40), fill=(150, 40, 40), width=10)
            draw.line((40, THUMBNAIL_SIDE - 40, THUMBNAIL_SIDE - 40, 40), fill=(150, 40, 40), width=10)
        with atomic_write(target, fsync=False) as handle:
            image.save(handle, "WEBP", quality=85)
        return self.publish(session, target)
