"""Session folders and what Gradio may serve of them.

Gradio serves only its own cache folder (``GRADIO_TEMP_DIR``) and ``allowed_paths``; the session
folders are neither, so nothing in them is reachable by URL. A file is shown or downloaded by
*publishing* it: its bytes are copied unchanged (no re-encode, so the disclosure XMP / C2PA stays
intact) to ``<publish_root>/<sha256(session id)[:32]>/<path in the session>`` inside Gradio's cache.
Deleting a session removes its folder and that published folder; Gradio's copies of uploads are
deleted as soon as the upload has been copied into the session, or refused.

Uploads are decoded in worker processes with a wall-clock limit (:mod:`headshot_lab.ui.decode`). A request may
delete only the uploads its own page handed over (``SessionState.handed``; with the running app, only files
Gradio's upload route stored): the shared files every page is shown (style swatches, the "refused" tile) live in
``assets_root``, outside Gradio's cache, served as a static path.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from headshot_lab import workflow
from headshot_lab.atomic import atomic_write, copy_file_atomic
from headshot_lab.errors import HeadshotLabError, ImageError
from headshot_lab.privacy import CONSENT_VERSION, PurgeLoop, Session, SessionNotFoundError, SessionStore
from headshot_lab.ui.decode import REQUEST_BUDGET_S, DecodeBudget, DecodePool, unreadable_error
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


_DECODER: DecodePool | None = None
_DECODER_LOCK = threading.Lock()


def shared_decoder() -> DecodePool:
    """The process's :class:`DecodePool` (its workers are shared by every backend of the process)."""
    global _DECODER
    with _DECODER_LOCK:
        if _DECODER is None:
            _DECODER = DecodePool()
        return _DECODER


class SessionFiles:
    """Per-session folders, publishing files to Gradio's cache, and deleting everything of a session.

    Args:
        store: the :class:`SessionStore` (default: from the settings, ``HEADSHOT_LAB_DATA_DIR``).
        publish_root: where published copies go; must lie inside Gradio's cache folder
            (``GRADIO_TEMP_DIR``) for Gradio to serve them (default: ``<data dir>/gradio/published``).
        upload_root: Gradio's upload folder; uploads found there are deleted once copied into a session.
        assets_root: files shown to every page (style swatches, the "refused" tile): outside Gradio's cache and
            every session, so no request can delete them (default: ``<data dir>/assets``).
        decoder: decodes uploads in worker processes with a time limit (default: a :class:`DecodePool`).
        upload_registry: see :meth:`track_uploads`.
    """

    def __init__(
        self,
        store: SessionStore | None = None,
        *,
        publish_root: str | Path | None = None,
        upload_root: str | Path | None = None,
        assets_root: str | Path | None = None,
        decoder: DecodePool | None = None,
        upload_registry: Collection[str] | None = None,
    ) -> None:
        self.store = store or SessionStore()
        default_root = workflow.default_publish_root(self.store)  # the same folder `headshot-lab delete-session` cleans
        self.publish_root = Path(publish_root) if publish_root is not None else default_root
        self.upload_root = Path(upload_root) if upload_root is not None else default_root.parent
        self.assets_root = Path(assets_root) if assets_root is not None else self.store.data_dir / "assets"
        self.decoder = decoder if decoder is not None else shared_decoder()
        self.upload_registry = upload_registry
        self.request_budget_s = REQUEST_BUDGET_S  # CPU seconds of decoding one request may use, all files together
        self._busy: set[str] = set()  # pages (SessionState.owner) with an action running
        self._claims: dict[str, str] = {}  # upload path -> the page (SessionState.owner) that handed it over first
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
                "There is no session yet: no photo of yours is kept here.",
                fix="Tick the consent box and upload your photos in tab 1 first (files that cannot be read are not kept).",
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

    @contextlib.contextmanager
    def one_at_a_time(self, state: SessionState) -> Iterator[None]:
        """Refuse a page's action while another action of the same page runs (one heavy request per page).

        Raises:
            HeadshotLabError: ``busy``.
        """
        owner = state.page()
        with self._lock:
            if owner in self._busy:
                raise HeadshotLabError(
                    "Your previous step is still running.",
                    fix="Wait until its result appears, then try again.",
                    code="busy",
                )
            self._busy.add(owner)
        try:
            yield
        finally:
            with self._lock:
                self._busy.discard(owner)

    # -- uploads -----------------------------------------------------------------------------------------
    def track_uploads(self, registry: Collection[str] | None) -> None:
        """Only paths in ``registry`` count as uploads (the running app's ``Blocks.upload_file_set``: every file
        Gradio's upload route stored). Without one, any file in the upload folder outside the app's own does."""
        self.upload_registry = registry

    def is_upload(self, path: str | Path) -> bool:
        """Whether ``path`` is a visitor's upload in Gradio's upload folder (never a file the app made or shares).

        Published copies, the shared assets (style swatches, example images) and anything outside the upload
        folder are not uploads; with a registry (:meth:`track_uploads`) only what Gradio's upload route stored is.
        """
        try:
            file = Path(path).resolve()
            root = self.upload_root.resolve()
        except (OSError, ValueError):
            return False
        if root not in file.parents:
            return False
        for own in (self.publish_root, self.assets_root):
            with contextlib.suppress(OSError, ValueError):
                if file == own.resolve() or own.resolve() in file.parents:
                    return False
        registry = self.upload_registry
        if registry is not None:
            return str(path) in registry or os.path.abspath(path) in registry or str(file) in registry
        return True

    def receive(self, state: SessionState, paths: Sequence[str]) -> None:
        """Note in ``state`` the uploads this page handed over (the only files it may later have deleted).

        The first page to hand an upload over claims it; another page naming the same path later gets no say over
        it. (Gradio's upload route does not say which page uploaded a file; its path holds the SHA-256 of the
        bytes, so only someone who has those bytes can name it before it is claimed.)
        """
        for path in paths:
            if path in state.handed or not self.is_upload(path):
                continue
            with self._lock:
                owner = self._claims.setdefault(path, state.page())
            if owner == state.page():
                state.handed.append(path)

    def discard_upload(self, path: str, state: SessionState | None = None) -> bool:
        """Delete Gradio's copy of an upload that ``state``'s page handed over; never any other file.

        Only an upload (:meth:`is_upload`) that this page handed over (:meth:`receive`, kept in ``state.handed``)
        is deleted: a request naming a shared style swatch, an example, a published copy or another file of
        Gradio's cache deletes nothing. Returns whether a file was deleted.
        """
        if state is None or path not in state.handed:
            return False
        state.handed.remove(path)
        with self._lock:
            if self._claims.get(path) == state.page():
                del self._claims[path]
        if not self.is_upload(path):
            return False
        file = Path(path).resolve()
        try:
            file.unlink()
        except OSError:
            return False
        with contextlib.suppress(OSError):
            if file.parent != self.upload_root.resolve():
                file.parent.rmdir()  # Gradio keeps each upload in its own folder (only removed when empty)
        return True

    def discard_all(self, state: SessionState, paths: Iterable[str] = ()) -> int:
        """:meth:`discard_upload` of ``paths`` and of every upload the page handed over and still holds."""
        self.receive(state, list(paths))
        return sum(self.discard_upload(path, state) for path in list(state.handed))

    def ingest(
        self,
        session: Session,
        path: str,
        taken: set[str],
        state: SessionState | None = None,
        *,
        budget: DecodeBudget | None = None,
    ) -> Item:
        """Copy one upload into the session, pixels only (lossless PNG), then delete Gradio's copy.

        The upload is decoded by the :class:`~headshot_lab.ui.decode.DecodePool` (another process, a wall-clock
        limit). Nothing of a refused file is kept: its Gradio copy is deleted and only the refusal (``item.error``)
        stays. No exception escapes: whatever goes wrong with one file is that file's refusal. Once the request's
        ``budget`` (CPU seconds of decoding) is spent, the file is refused unread.
        """
        item = Item(name=unique_name(safe_name(path), taken), path="", kind="upload", origin=path)
        try:
            item = self._ingest(session, path, item, budget)
        except ImageError as exc:
            item.ok, item.error = False, exc.to_dict()
        except Exception as exc:  # one file must never fail the batch
            logger.exception("copying an upload in failed")
            item.ok, item.error = False, unreadable_error(item.name, exc).to_dict()
        finally:
            self.discard_upload(path, state)
        return item

    def _ingest(self, session: Session, path: str, item: Item, budget: DecodeBudget | None) -> Item:
        from headshot_lab.capture import animation_warning
        from headshot_lab.io import read_bytes

        if self.publish_root.resolve() in Path(path).resolve().parents:  # shown by the app (to any page)
            raise ImageError(
                f"{Path(path).name}: this is a file the app made, not one of your uploads.",
                fix="Upload photos from your device.",
                code="not_an_upload",
            )
        try:
            data, _ = read_bytes(path)
        except ImageError as exc:
            if exc.code == "file_not_found" and self.upload_root.resolve() in Path(path).resolve().parents:
                # Gradio keeps one copy per content: a page that checked a byte-identical file a moment
                # earlier has already deleted it. Re-adding the photo uploads it again.
                raise ImageError(
                    f"{Path(path).name}: this upload is no longer on the server.",
                    fix="Remove the photo from the uploader and add it again.",
                    code="upload_gone",
                ) from None
            raise
        left = None if budget is None else budget.cpu_s
        if left is not None and left <= 0:
            raise ImageError(
                f"{item.name}: not read, because the files before it in this upload took too long to read.",
                fix="Upload this photo again on its own (and leave out the files that were refused as too slow).",
                code="decode_budget",
            )
        target = session.uploads / f"{Path(item.name).stem}.png"
        try:
            decoded = self.decoder.decode(data, item.name, target, timeout_s=left)
        except ImageError as exc:
            if budget is not None:
                budget.spend(getattr(exc, "cpu_s", 0.0))
            raise
        if budget is not None:
            budget.spend(decoded.cpu_s)
        item.path = str(decoded.path)
        animated = animation_warning(item.name, decoded.frames, decoded.format)
        if animated is not None:  # the session keeps a still copy: the checklist would not see the frames
            item.notes.append(animated.to_dict())
        return item

    # -- shared assets -----------------------------------------------------------------------------------
    def shared_asset(self, name: str, make: Callable[[Path], None]) -> Path:
        """A file every page may be shown (a swatch, the "unreadable" tile), kept in :attr:`assets_root`.

        ``assets_root`` lies outside Gradio's cache and outside every session, so no request can delete it;
        ``app.py`` serves it as a static path. ``make(path)`` writes it when it is missing.
        """
        target = self.assets_root / name
        if not target.is_file():
            target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            make(target)
        return target

    def shared_images(self, images: Sequence[tuple[Any, str]], folder: str) -> list[tuple[str, str]]:
        """``(pixels, caption)`` pairs written once as PNGs under ``assets_root/folder``: ``(path, caption)``."""
        from headshot_lab.io import save_image

        out = []
        for index, (pixels, caption) in enumerate(images):
            path = self.assets_root / folder / f"{index:02d}-{safe_name(caption.split(':', 1)[0], 'image')}.png"
            save_image(pixels, path)
            out.append((str(path), caption))
        return out

    def refused_tile(self) -> str:
        """The shared grey tile with a cross shown for a file that was refused (nothing of it is kept)."""

        def make(target: Path) -> None:
            from PIL import Image, ImageDraw

            side = THUMBNAIL_SIDE
            image = Image.new("RGB", (side, side), (205, 205, 205))
            draw = ImageDraw.Draw(image)
            draw.line((40, 40, side - 40, side - 40), fill=(150, 40, 40), width=10)
            draw.line((40, side - 40, side - 40, 40), fill=(150, 40, 40), width=10)
            with atomic_write(target, fsync=False) as handle:
                image.save(handle, "WEBP", quality=85)

        return str(self.shared_asset("refused.webp", make))

    def thumbnail(self, session: Session, item: Item) -> str:
        """A published WebP thumbnail of an upload (the shared "refused" tile for a file that was refused)."""
        from PIL import Image

        if not item.path:
            return self.refused_tile()
        target = session.cache / "thumbs" / f"{Path(item.name).stem}.webp"
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with Image.open(item.path) as opened:
            image = opened.convert("RGB")
        image.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
        with atomic_write(target, fsync=False) as handle:
            image.save(handle, "WEBP", quality=85)
        return self.publish(session, target)
