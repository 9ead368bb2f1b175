"""Atomic file writes: a file holds either its old content or the complete new one, never a half.

Every writer here goes through one pattern:

1. open a temporary file *in the destination folder* (``.{name}.{random}.tmp``, created with
   ``O_EXCL`` so two writers never share one; ``name`` is shortened when the whole would pass the file
   system's 255-byte limit, and a destination name past that limit is refused in words);
2. write, ``flush`` and ``os.fsync`` it (so a power cut after step 3 cannot leave an empty file);
3. ``os.replace`` it over the destination — a rename within one file system, atomic on POSIX and
   Windows: readers see the old file or the new one.

On *any* exception in between — an encoder error, a full disk, ``KeyboardInterrupt`` — the temporary
file is removed and the destination is untouched. A process killed with ``SIGKILL`` cannot clean up,
so it may leave a ``.{name}.*.tmp`` file behind, but never a half-written destination; readers that
list a folder should skip dot-files (see :func:`is_temp_file`).

A full disk (``ENOSPC``) or an exhausted quota (``EDQUOT``) becomes a
:class:`~headshot_lab.errors.DiskFullError` (code ``disk_full``) naming the folder and the free
space, instead of a bare ``OSError``.

Libraries that write to a file object (``np.save``, ``torch.save``, ``PIL.Image.save``,
``matplotlib``'s ``savefig``, ``zipfile.ZipFile``, ``csv.writer``) write straight into the handle of
:func:`atomic_write`::

    with atomic_write(out / "embedding.npy") as handle:
        np.save(handle, vector)

The temporary file is created with mode ``0o666`` minus the umask — the same permissions as a plain
``open(path, "w")`` (``tempfile.NamedTemporaryFile`` would force ``0o600``); pass ``file_mode=0o600``
for private files. The folder itself is not fsynced after the rename: after a crash the rename may
be lost (the old file is back), but the destination is never half-written.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from headshot_lab.errors import DiskFullError, HeadshotLabError

DISK_FULL_ERRNOS = frozenset(e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if e is not None)
"""``errno`` values that mean "no space left": the disk is full, or the user's quota is used up."""
TEMP_SUFFIX = ".tmp"
NAME_MAX = 255
"""Longest file name (bytes) on the usual file systems (ext4, XFS, APFS, NTFS in UTF-16 units)."""
DEFAULT_FILE_MODE = 0o666
"""Like ``open()``: the process umask is applied by the kernel (``0o644`` with the usual ``022``)."""


def is_disk_full(exc: BaseException, folder: str | os.PathLike[str] | None = None) -> bool:
    """Whether ``exc`` is an ``OSError`` for a full disk or an exhausted quota.

    Some C writers lose the ``errno`` (numpy's ``tofile`` says "N requested and M written", Pillow's encoders
    "encoder error -2"): an ``OSError`` without one counts as "disk full" when ``folder``'s file system has no
    space left for this user.
    """
    if not isinstance(exc, OSError):
        return False
    if exc.errno in DISK_FULL_ERRNOS:
        return True
    if exc.errno is None and folder is not None:
        try:
            return shutil.disk_usage(folder).free == 0
        except OSError:
            return False
    return False


def is_temp_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a temporary file of this module (``.{name}.{random}.tmp``), e.g. left by a killed run."""
    name = Path(path).name
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def disk_full_error(folder: str | os.PathLike[str], what: str | None = None) -> DiskFullError:
    """The :class:`DiskFullError` for ``folder`` (with its free space, when it can be read)."""
    folder = Path(folder)
    try:
        free = f" ({shutil.disk_usage(folder).free / 1e6:.1f} MB free)"
    except OSError:
        free = ""
    target = f" {what}" if what else ""
    return DiskFullError(
        f"The disk is full: could not write{target} to {folder}{free}. Nothing was half-written.",
        fix=(
            "Free some disk space (or raise the quota) and try again; for the app and the sessions, "
            "HEADSHOT_LAB_DATA_DIR can point to a bigger disk."
        ),
    )


@contextlib.contextmanager
def disk_full_guard(folder: str | os.PathLike[str], what: str | None = None) -> Iterator[None]:
    """Turn ``ENOSPC``/``EDQUOT`` raised inside the block into a :class:`DiskFullError` for ``folder``."""
    try:
        yield
    except OSError as exc:
        if not is_disk_full(exc, folder):
            raise
        raise disk_full_error(folder, what) from exc


def check_name_length(path: str | os.PathLike[str]) -> None:
    """Refuse a destination whose file name is longer than :data:`NAME_MAX` bytes, in words (not ``ENAMETOOLONG``).

    Raises:
        HeadshotLabError: ``name_too_long``.
    """
    name = Path(path).name
    size = len(os.fsencode(name))
    if size > NAME_MAX:
        raise HeadshotLabError(
            f"The file name {name[:40]}… is too long ({size} bytes; file systems allow {NAME_MAX}).",
            fix="Rename the file (or the input it is named after) to something shorter.",
            code="name_too_long",
        )


def temp_name(name: str, token: str) -> str:
    """``.{name}.{token}.tmp``, with ``name`` cut (in bytes) so the whole stays within :data:`NAME_MAX`."""
    room = NAME_MAX - len(f"..{token}{TEMP_SUFFIX}".encode())
    encoded = os.fsencode(name)
    if len(encoded) > room:
        name = os.fsdecode(encoded[:room])  # a cut multi-byte character becomes surrogate escapes: still its bytes
    return f".{name}.{token}{TEMP_SUFFIX}"


def _open_temp(path: Path, file_mode: int) -> tuple[int, Path]:
    """Create ``.{name}.{random}.tmp`` next to ``path`` exclusively (see :func:`temp_name`); ``(fd, temp path)``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = path.with_name(temp_name(path.name, secrets.token_hex(4)))
        try:
            return os.open(tmp, flags, file_mode), tmp
        except FileExistsError:  # 32 random bits collided: draw again
            continue


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike[str],
    mode: str = "wb",
    *,
    encoding: str | None = None,
    newline: str | None = None,
    file_mode: int = DEFAULT_FILE_MODE,
    fsync: bool = True,
) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path`` for writing; on a clean exit it replaces ``path``.

    Args:
        path: the destination; its folder is created when missing.
        mode: ``"wb"`` (bytes) or ``"w"`` (text).
        encoding, newline: as for :func:`open` in text mode (``encoding`` defaults to UTF-8).
        file_mode: permission bits of the new file (the umask applies), e.g. ``0o600`` for private data.
        fsync: flush the data to the disk before the rename (turn off only for throw-away copies).

    Yields:
        The open file object.

    Raises:
        DiskFullError: the disk or the quota is full (the destination is untouched).
        HeadshotLabError: ``name_too_long``: the destination's name is longer than the file system allows.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write mode must be 'wb' or 'w', not {mode!r}")
    path = Path(path)
    check_name_length(path)
    folder = path.parent
    with disk_full_guard(folder, path.name):
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = _open_temp(path, file_mode)
        try:
            if mode == "wb":
                handle: IO[Any] = os.fdopen(fd, "wb")
            else:
                handle = os.fdopen(fd, "w", encoding=encoding or "utf-8", newline=newline)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        try:
            yield handle
            handle.flush()
            if fsync:
                os.fsync(handle.fileno())
            handle.close()
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                handle.close()  # may fail again (the buffered rest on a full disk); the descriptor is closed anyway
            tmp.unlink(missing_ok=True)
            raise


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, **options: Any) -> Path:
    """Write ``data`` to ``path`` atomically (options as for :func:`atomic_write`); return ``path``."""
    with atomic_write(path, "wb", **options) as handle:
        handle.write(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8", **options: Any) -> Path:
    """Write ``text`` to ``path`` atomically (newlines as given, no translation); return ``path``."""
    return write_bytes_atomic(path, text.encode(encoding), **options)


def write_json_atomic(
    path: str | os.PathLike[str],
    payload: Any,
    *,
    indent: int | None = 2,
    sort_keys: bool = False,
    default: Any = None,
    **options: Any,
) -> Path:
    """Write ``payload`` as UTF-8 JSON (``ensure_ascii=False``, a final newline) atomically; return ``path``."""
    text = json.dumps(payload, indent=indent, sort_keys=sort_keys, default=default, ensure_ascii=False) + "\n"
    return write_text_atomic(path, text, **options)


def copy_file_atomic(source: str | os.PathLike[str], path: str | os.PathLike[str], **options: Any) -> Path:
    """Copy ``source`` byte for byte to ``path`` atomically; return ``path``."""
    with open(source, "rb") as src, atomic_write(path, "wb", **options) as handle:
        shutil.copyfileobj(src, handle, io.DEFAULT_BUFFER_SIZE * 64)
    return Path(path)


def append_line(
    path: str | os.PathLike[str],
    line: str,
    *,
    encoding: str = "utf-8",
    file_mode: int = DEFAULT_FILE_MODE,
    fsync: bool = True,
) -> None:
    """Append one line (``"\\n"`` added when missing) to a line-based file such as a JSON Lines manifest.

    A whole-file rewrite for every line would make an ``n``-line manifest cost ``O(n²)``, so an append is
    done in place instead, and still all or nothing: the line goes out in *one* ``write`` on an
    ``O_APPEND`` descriptor (the kernel puts it at the end of the file as one piece, also next to other
    appenders on a local file system), and if that write fails or is short (a full disk), the file is
    truncated back to its size before, so a reader never sees half a line. The rollback assumes no other
    process appended in that instant (one writer per manifest; the logs append one short line at a time).

    Raises:
        DiskFullError: the disk or the quota is full (the file is as it was).
    """
    path = Path(path)
    data = (line if line.endswith("\n") else line + "\n").encode(encoding)
    with disk_full_guard(path.parent, path.name):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0), file_mode)
        try:
            start = os.fstat(fd).st_size
            try:
                written = os.write(fd, data)
                if written != len(data):
                    raise OSError(errno.ENOSPC, f"short write ({written} of {len(data)} bytes)", str(path))
                if fsync:
                    os.fsync(fd)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, start)
                raise
        finally:
            os.close(fd)


__all__ = [
    "DISK_FULL_ERRNOS",
    "NAME_MAX",
    "append_line",
    "atomic_write",
    "check_name_length",
    "copy_file_atomic",
    "disk_full_error",
    "disk_full_guard",
    "is_disk_full",
    "is_temp_file",
    "temp_name",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]
