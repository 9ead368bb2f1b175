"""Decode uploads in separate worker processes with a CPU-time limit, so no file can starve other visitors.

An upload is the one thing the app decodes that a stranger wrote. Size caps stop big files, the loader's own
budgets stop the known bombs, but a small file may still be built to take minutes to decode (thousands of empty
JPEG scans, a quadratic TIFF page walk, an EXIF amplifier …). Here every upload is decoded by
:func:`headshot_lab.io.load_photo` in a **worker process** and written there as the session's pixels-only PNG:

* a decode that uses more than ``timeout_s`` seconds of **CPU time** is stopped by the kernel (the worker sets
  its ``RLIMIT_CPU`` before each decode; ``SIGXCPU`` ends it: a thread cannot be stopped, a process can) and the
  file is refused as "takes too long to read" (code ``decode_timeout``); a fresh worker takes its place. CPU
  time, not wall time, so that a busy server never refuses an ordinary photo for being slow to get the CPU;
  ``wall_limit_s`` (default 60 s) is the backstop for a worker that hangs without using the CPU;
* a decode runs at normal priority for :data:`GRACE_CPU_S` (more than an ordinary photo needs); past it, its
  worker drops to the lowest CPU priority (``nice`` +19 and Linux's ``SCHED_IDLE``: only CPU time nothing else
  wants) and is retired after that file (a process cannot raise its priority again): a hostile decode gets only
  the CPU that is left over, an ordinary one is never slowed. Workers have an address-space limit
  (``memory_mb``): a hostile file cannot take the server's memory (``MemoryError``, refused as ``decode_memory``);
* any other exception in the worker (a malformed EXIF tag, a decoder bug) is a refusal of that one file, never a
  failure of the batch (code ``unreadable``);
* at most ``workers`` decodes run at once; each request decodes its photos one after another, so a request
  holds at most one worker (and the app gives one request :data:`REQUEST_BUDGET_S` seconds of decoding in all).

Protocol: each worker reads length-prefixed pickles ``(data, name, target, min_side)`` on stdin and answers
``("ok", {"format", "frames", "width", "height"})`` or ``("error", {"code", "message", "fix"})`` on stdout. The
pickles only ever travel between this process and its own children.

If workers cannot be started (a platform without ``subprocess``), :class:`DecodePool` decodes in-process (no
time limit) and logs why.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from headshot_lab.errors import ImageError

logger = logging.getLogger("headshot_lab.ui")

DEFAULT_TIMEOUT_S = 10.0
"""CPU seconds one upload may take to decode (a 40 MP JPEG takes about 1 s on one slow core)."""
DEFAULT_WALL_LIMIT_S = 60.0
"""Wall-clock backstop of one decode (a worker waiting for the CPU is not stopped before)."""
REQUEST_BUDGET_S = 3 * DEFAULT_TIMEOUT_S
"""CPU seconds of decoding one request of the app may use in all (20 slow files cost 30 s, not 200 s)."""
SAVE_TIMEOUT_S = 60.0
"""Wall-clock seconds the PNG encode of a decoded photo may take (bounded by the pixel cap, not by the file)."""
DEFAULT_WORKERS = 4
DEFAULT_MEMORY_MB = 3072
"""Address-space limit of a worker: a 40 MP photo needs about 0.6 GB to decode, convert and save."""
WORKER_NICE = 19
GRACE_CPU_S = 1.0
"""CPU seconds a decode runs at normal priority; past them its worker drops to idle priority (and is retired after)."""
_HEADER = struct.Struct("!Q")
# The worker loads this file by path: not the ``headshot_lab.ui`` package (whose imports cost a second of CPU on
# every restart after a kill), only what decoding needs.
_BOOTSTRAP = (
    "import os, sys, importlib.util\n"
    "spec = importlib.util.spec_from_file_location('headshot_lab_decode_worker', sys.argv[1])\n"
    "module = importlib.util.module_from_spec(spec)\n"
    "sys.modules[spec.name] = module\n"
    "spec.loader.exec_module(module)\n"
    "module.main()\n"
)
_START_TIMEOUT_S = 60.0


@dataclass
class DecodeBudget:
    """CPU seconds of decoding left to one request (every file's decode takes its share, a refused one too)."""

    cpu_s: float = REQUEST_BUDGET_S

    def spend(self, seconds: float) -> None:
        self.cpu_s -= max(float(seconds), 0.0)


@dataclass(frozen=True)
class Decoded:
    """What a worker wrote: the PNG at ``path`` and the facts the app reports (``format``, ``frames``)."""

    path: Path
    format: str
    frames: int
    width: int
    height: int
    cpu_s: float = 0.0


def _write_message(stream: IO[bytes], payload: Any) -> None:
    """One length-prefixed pickle; written in full also on an unbuffered pipe (whose writes may be partial)."""
    body = pickle.dumps(payload, protocol=pickle.HIGHEST_PROTOCOL)
    data = memoryview(_HEADER.pack(len(body)) + body)
    while data:
        written = stream.write(data)
        data = data[written or 0 :]
    stream.flush()


def _read_exact(stream: IO[bytes], size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise EOFError("the other side closed the pipe")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _read_message(stream: IO[bytes]) -> Any:
    (size,) = _HEADER.unpack(_read_exact(stream, _HEADER.size))
    return pickle.loads(_read_exact(stream, size))


def decode_to_png(
    data: bytes, name: str, target: str | Path, min_side: int = 0, *, decoded: Any = None
) -> dict[str, Any]:
    """``load_photo(data)`` (EXIF/GPS/XMP/ICC dropped) saved as a lossless PNG at ``target``; what was found.

    ``decoded()`` is called between the decode (whose time the file's author controls) and the PNG encode (whose
    time is bounded by the loader's pixel cap).
    """
    from headshot_lab.io import load_photo, save_image

    photo = load_photo(data, name=name, min_side=min_side)
    if decoded is not None:
        decoded()
    save_image(photo, target)  # keeps an upload's AI label (labels never weaken)
    height, width = photo.pixels.shape[:2]
    return {"format": photo.format, "frames": int(photo.frames), "width": int(width), "height": int(height)}


def _cpu_used() -> float:
    times = os.times()
    return times.user + times.system


def _cpu_limit(seconds: float | None) -> None:
    """Let this process use ``seconds`` more CPU time (``RLIMIT_CPU`` soft limit; ``None``: no limit)."""
    with contextlib.suppress(ImportError, ValueError, OSError):
        import math
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        soft = hard if seconds is None else math.ceil(_cpu_used() + max(seconds, 0.0))
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _answer(request: tuple[Any, ...], decoded: Any = None, limit: bool = False) -> tuple[str, dict[str, Any]]:
    """One request, every failure turned into a refusal (a worker never dies of a file, only of a kill).

    ``request``: ``(data, name, target, min_side[, cpu_s])``; with ``limit``, the decode may use ``cpu_s`` CPU
    seconds (past them the kernel ends this process with ``SIGXCPU``); the PNG encode is not limited.
    """
    data, name, target, min_side = request[:4]
    cpu_s = request[4] if len(request) > 4 else None
    started = _cpu_used()

    def done_decoding() -> None:
        if limit:
            _cpu_limit(None)
        if decoded is not None:
            decoded()

    demoted = threading.Event()
    finished = threading.Event()
    if limit:
        _cpu_limit(cpu_s)
        threading.Thread(target=_demote_after, args=(started, finished, demoted), daemon=True).start()
    try:
        status, facts = "ok", decode_to_png(data, name, target, min_side, decoded=done_decoding)
    except ImageError as exc:
        status, facts = "error", exc.to_dict()
    except MemoryError:
        status, facts = "error", memory_error(name).to_dict()
    except Exception as exc:  # a decoder bug on a hostile file: refuse the file
        status, facts = "error", unreadable_error(name, exc).to_dict()
    finally:
        finished.set()
        if limit:
            _cpu_limit(None)
    return status, {**facts, "cpu_s": round(_cpu_used() - started, 3), "demoted": demoted.is_set()}


def _demote_after(started: float, finished: threading.Event, demoted: threading.Event) -> None:
    """Once the decode has used :data:`GRACE_CPU_S`, drop the decoding (main) thread to the lowest CPU priority.

    On Linux a priority belongs to a thread; the main thread's id is the process id.
    """
    main = os.getpid()
    while not finished.wait(0.05):
        if _cpu_used() - started >= GRACE_CPU_S:
            with contextlib.suppress(AttributeError, OSError):
                os.setpriority(os.PRIO_PROCESS, main, WORKER_NICE)
            with contextlib.suppress(AttributeError, OSError):
                os.sched_setscheduler(main, os.SCHED_IDLE, os.sched_param(0))  # type: ignore[attr-defined]
            demoted.set()
            return


def serve(stdin: IO[bytes] | None = None, stdout: IO[bytes] | None = None) -> None:
    """The worker's loop: say ``ready``, then answer requests until stdin closes (the app ended or dropped it)."""
    stdin = stdin or sys.stdin.buffer
    if stdout is None:  # answers go to a private copy of fd 1; anything a library prints goes to stderr
        stdout = os.fdopen(os.dup(1), "wb")
        os.dup2(2, 1)
        sys.stdout = sys.stderr
    _write_message(stdout, ("ready", {}))
    while True:
        try:
            request = _read_message(stdin)
        except EOFError:
            return
        _write_message(stdout, _answer(request, decoded=lambda: _write_message(stdout, ("decoded", {})), limit=True))


def _limit_self(memory_mb: int | None) -> None:
    """The worker's address-space cap (its priority is lowered by ``_BOOTSTRAP``, before any import)."""
    if memory_mb:
        with contextlib.suppress(ImportError, ValueError, OSError):
            import resource

            limit = int(memory_mb) * 2**20
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


# -- errors --------------------------------------------------------------------------------------------
def timeout_error(name: str, seconds: float) -> ImageError:
    return ImageError(
        f"{name}: this file takes too long to read (stopped after {seconds:.0f} s of work); it may be damaged or "
        "built to slow the server down.",
        fix="Export the photo again as an ordinary JPEG or PNG (e.g. take a screenshot of it) and upload that.",
        code="decode_timeout",
    )


def memory_error(name: str) -> ImageError:
    return ImageError(
        f"{name}: this file needs too much memory to read; it may be damaged or built to overload the server.",
        fix="Export the photo again as an ordinary JPEG or PNG and upload that.",
        code="decode_memory",
    )


def unreadable_error(name: str, exc: BaseException) -> ImageError:
    return ImageError(
        f"{name}: this file could not be read ({type(exc).__name__}); it may be damaged.",
        fix="Export the photo again as an ordinary JPEG or PNG and upload that.",
        code="unreadable",
    )


def _remove_temps(target: Path) -> None:
    """The temporary file a killed worker may have left next to ``target`` (see :mod:`headshot_lab.atomic`)."""
    with contextlib.suppress(OSError):
        for leftover in target.parent.glob(f".{target.name}.*.tmp"):
            leftover.unlink(missing_ok=True)


def _from_dict(error: dict[str, str]) -> ImageError:
    return ImageError(error.get("message", "The file could not be read."), fix=error.get("fix"), code=error.get("code"))


# -- the pool ------------------------------------------------------------------------------------------
class _Worker:
    """One worker process and its pipes."""

    def __init__(self, memory_mb: int | None) -> None:
        env = dict(os.environ)
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = "1"  # one core per decode; also keeps the address space small
        env["HEADSHOT_LAB_DECODE_MEMORY_MB"] = str(memory_mb or 0)
        package_root = str(Path(__file__).resolve().parents[2])  # the same headshot_lab as this process's
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH", "")) if p)
        self.process = subprocess.Popen(
            [sys.executable, "-c", _BOOTSTRAP, __file__],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            close_fds=True,
            bufsize=0,  # unbuffered: select() on the pipe sees every byte (a buffered reader could hide one message)
        )
        self.ready = False

    def wait_ready(self, timeout_s: float) -> bool:
        """Wait for the worker's ``ready`` (its imports done): a decode's time limit never includes the start."""
        assert self.process.stdout is not None
        if not self.ready and self._wait_readable(self.process.stdout.fileno(), time.monotonic() + timeout_s):
            with contextlib.suppress(EOFError, OSError, pickle.UnpicklingError):
                self.ready = _read_message(self.process.stdout) == ("ready", {})
        return self.ready

    def alive(self) -> bool:
        return self.process.poll() is None

    def request(
        self, payload: tuple[Any, ...], timeout_s: float, save_timeout_s: float = SAVE_TIMEOUT_S
    ) -> tuple[str, dict[str, Any]] | None:
        """Send one request; its answer, or ``None`` when none came in time (or the worker died).

        The decode must end within ``timeout_s`` (the worker then says ``decoded``), the PNG encode within
        ``save_timeout_s`` more.
        """
        assert self.process.stdin is not None and self.process.stdout is not None
        try:
            _write_message(self.process.stdin, payload)
        except (BrokenPipeError, OSError):
            return None
        answer = self._next(time.monotonic() + timeout_s)
        if answer is not None and answer[0] == "decoded":
            answer = self._next(time.monotonic() + save_timeout_s)
        return answer

    def _next(self, deadline: float) -> Any:
        assert self.process.stdout is not None
        if not self._wait_readable(self.process.stdout.fileno(), deadline):
            return None
        try:
            return _read_message(self.process.stdout)  # each message is written in one piece
        except (EOFError, OSError, pickle.UnpicklingError):
            return None

    @staticmethod
    def _wait_readable(fd: int, deadline: float) -> bool:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                readable, _, _ = select.select([fd], [], [], left)
            except InterruptedError:
                continue
            return bool(readable)

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.process.kill()
        with contextlib.suppress(Exception):
            self.process.wait(timeout=5)
        for stream in (self.process.stdin, self.process.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()


class DecodePool:
    """Decode uploads in up to ``workers`` worker processes, each decode limited to ``timeout_s`` CPU seconds.

    Args:
        workers: how many decodes may run at once (requests beyond that wait for a free worker).
        timeout_s: CPU seconds one decode may use; past them the worker is ended and the file refused.
        wall_limit_s: wall-clock backstop of one decode (default: the larger of 60 s and 6 × ``timeout_s``).
        memory_mb: address-space limit of each worker (``None``: none).
        in_process: decode in this process instead (no limit; for platforms without worker processes).
    """

    def __init__(
        self,
        workers: int = DEFAULT_WORKERS,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        wall_limit_s: float | None = None,
        memory_mb: int | None = DEFAULT_MEMORY_MB,
        in_process: bool = False,
    ) -> None:
        if workers < 1 or timeout_s <= 0:
            raise ValueError("workers must be ≥ 1 and timeout_s > 0")
        self.workers, self.timeout_s, self.memory_mb = int(workers), float(timeout_s), memory_mb
        self.wall_limit_s = float(wall_limit_s) if wall_limit_s else max(DEFAULT_WALL_LIMIT_S, 6 * self.timeout_s)
        self.in_process = in_process
        self._idle: list[_Worker] = []
        self._slots = threading.BoundedSemaphore(self.workers)
        self._lock = threading.Lock()
        self.stats = {"decoded": 0, "refused": 0, "timeouts": 0, "restarts": 0}

    def decode(
        self, data: bytes, name: str, target: str | Path, *, min_side: int = 0, timeout_s: float | None = None
    ) -> Decoded:
        """Decode ``data`` and write its pixels as a PNG at ``target`` (``timeout_s``: less CPU time than the pool's).

        Raises:
            ImageError: the loader's refusal, or ``decode_timeout`` / ``decode_memory`` / ``unreadable``; its
                ``cpu_s`` attribute says how much CPU time the attempt used.
        """
        target = Path(target)
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.in_process:
            status, facts = _answer((data, name, str(target), min_side))
        else:
            limit = self.timeout_s if timeout_s is None else max(min(timeout_s, self.timeout_s), 0.1)
            status, facts = self._remote((data, name, str(target), min_side, limit), limit)
        cpu_s = float(facts.get("cpu_s", 0.0))
        if status != "ok":
            self.stats["refused"] += 1
            target.unlink(missing_ok=True)
            error = _from_dict(facts)
            error.cpu_s = cpu_s  # type: ignore[attr-defined]
            raise error
        self.stats["decoded"] += 1
        return Decoded(
            target, str(facts["format"]), int(facts["frames"]), int(facts["width"]), int(facts["height"]), cpu_s
        )

    def _remote(self, payload: tuple[Any, ...], limit: float) -> tuple[str, dict[str, Any]]:
        with self._slots:
            worker = self._take()
            if worker is None:  # no worker could be started: decode here rather than not at all
                return _answer(payload)
            answer = worker.request(payload, self.wall_limit_s)
            if answer is None:
                try:
                    code: int | None = worker.process.wait(timeout=2)
                except subprocess.TimeoutExpired:  # still running at the backstop
                    code = None
                worker.kill()
                _remove_temps(Path(payload[2]))
                self.stats["restarts"] += 1
                too_slow = code is None or code == -signal.SIGXCPU  # still running at the backstop, or out of CPU
                if too_slow:
                    self.stats["timeouts"] += 1
                error = timeout_error(payload[1], limit) if too_slow else memory_error(payload[1])
                return "error", {**error.to_dict(), "cpu_s": limit}
            if answer[1].get("demoted"):  # it cannot raise its priority again: a fresh worker takes its place
                worker.kill()
                self.stats["restarts"] += 1
            else:
                self._give_back(worker)
            return answer  # type: ignore[no-any-return]

    def _take(self) -> _Worker | None:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive():
                    return worker
                worker.kill()
        try:
            worker = _Worker(self.memory_mb)
        except OSError as exc:
            logger.warning("decode workers unavailable (%s): decoding in-process", exc)
            return None
        if not worker.wait_ready(_START_TIMEOUT_S):
            logger.warning("a decode worker did not start within %.0f s: decoding in-process", _START_TIMEOUT_S)
            worker.kill()
            return None
        return worker

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            self._idle.append(worker)

    def warm(self, count: int | None = None) -> None:
        """Start ``count`` (default: all) workers now, side by side, so the first uploads do not wait for one."""
        if self.in_process:
            return
        with self._lock:
            missing = min(count or self.workers, self.workers) - len(self._idle)
        try:
            starting = [_Worker(self.memory_mb) for _ in range(max(missing, 0))]
        except OSError as exc:
            logger.warning("decode workers unavailable (%s): decoding in-process", exc)
            return
        for worker in starting:
            if worker.wait_ready(_START_TIMEOUT_S):
                self._give_back(worker)
            else:
                worker.kill()

    def close(self) -> None:
        """Stop every idle worker (busy ones stop when their request ends and they find stdin closed)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.kill()


def main() -> None:
    _limit_self(int(os.environ.get("HEADSHOT_LAB_DECODE_MEMORY_MB", "0") or 0) or None)
    serve()


if __name__ == "__main__":
    main()
