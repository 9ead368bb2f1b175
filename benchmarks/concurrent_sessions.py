"""Concurrency benchmark: N simultaneous ``gradio_client`` sessions against the app on localhost.

The app is launched in this process on ``127.0.0.1`` (a free port; loopback only), its data in a
temporary folder. Then ``--sessions`` clients (one thread each, started together) each run the
CPU-only flow a visitor without a GPU runs — upload their own photos → ``/check_photos`` →
``/retouch`` → ``/select`` → ``/export`` — while a probe thread measures, every ``--probe-interval``
seconds, how long a cheap queued call (``/delete_my_data`` of a page with no data) and an HTTP fetch of
``/config`` take. The same probes are measured idle first, in the same run: the ratio says how much
the load slows the server down for everyone else.

Afterwards it checks isolation and clean-up on the server's own folders:

* every session's photos (distinct bytes and names per session: ``s07_obama.jpg``) landed in exactly
  one session folder, the session ids are distinct, and every file path a session got back lies
  inside *its* published folder;
* a session that names another session's headshots in ``/export`` is refused, and the other
  session's files are never served (``/gradio_api/file=…`` → 403);
* "Delete my data now" of session 0 removes it and leaves the others intact;
* after the retention time (the store's clock is moved past the TTL), the running purge loop removes
  every session folder and every published copy; nothing of any session is left in Gradio's cache.

Output (``benchmarks/results/concurrent_sessions.json`` via ``_common.write_result``): per-endpoint
latency ``p50/p90/p95/p99/max`` (numpy percentiles, seconds), throughput, probe latency under load
vs idle (ratio), errors, peak RSS, and the isolation results. Bounded: every call has a deadline
(``--timeout`` for the whole load) and the script stops by itself.

    .venv/bin/python benchmarks/concurrent_sessions.py [--sessions 20] [--photos 2] [--side 1024]

Fairness (``--scenario fairness``): ``--normal`` visitors each check ``--calls`` one-photo uploads in a row (a
new photo each time), first alone ("idle"), then beside ``--bombers`` visitors who keep uploading
``--bomb-files`` small progressive JPEGs that take tens of seconds each to decode
(:func:`headshot_lab.testing.slow.jpeg_scan_bomb`). The goal: the normal visitors' p95 check latency beside the
bombers within 2× of idle. ``--isolation off`` runs the same against the old set-up (uploads decoded in the
request's thread, no time limit, two check slots) for comparison. Output:
``benchmarks/results/concurrent_sessions_fairness[_off].json``.

    .venv/bin/python benchmarks/concurrent_sessions.py --scenario fairness [--normal 2] [--bombers 2] [--calls 6]
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import resource
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from headshot_lab.testing.client import free_loopback_port, server_paths

from _common import write_result  # type: ignore[import-not-found]

REPO = Path(__file__).resolve().parents[1]
PHOTOS = ("obama", "obama2", "obama3")
FLOW = ("check_photos", "retouch", "select", "export")
PERCENTILES = (50, 90, 95, 99)


@dataclass
class Call:
    """One timed request: which session (``-1``: the probe), which endpoint, how long, and whether it worked."""

    session: int
    endpoint: str
    seconds: float
    ok: bool
    error: str = ""


@dataclass
class SessionRun:
    """What one simulated visitor did and got back."""

    index: int
    tag: str
    photos: list[str]
    calls: list[Call] = field(default_factory=list)
    returned_paths: list[str] = field(default_factory=list)
    picks: list[str] = field(default_factory=list)
    zip_names: list[str] = field(default_factory=list)
    finished: bool = False
    client: Any = None


class OffsetClock:
    """``time.time() + offset``: the session store's clock, moved forward to expire every session at once."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    """``{"n", "p50", "p90", "p95", "p99", "max", "mean"}`` in seconds (``numpy.percentile``, linear)."""
    if not values:
        return {"n": 0, **{f"p{q}": None for q in PERCENTILES}, "max": None, "mean": None}
    array = np.asarray(values, dtype=float)
    stats: dict[str, float | int | None] = {"n": int(array.size)}
    stats.update({f"p{q}": round(float(np.percentile(array, q)), 4) for q in PERCENTILES})
    stats.update(max=round(float(array.max()), 4), mean=round(float(array.mean()), 4))
    return stats


def launch_app(
    root: Path, clock: OffsetClock, ttl_hours: float, purge_interval_s: float, decoder: Any = None
) -> tuple[str, Any, Any]:
    """Launch ``app.py`` in this process on 127.0.0.1, sessions and Gradio's cache under ``root``.

    Returns ``(url, backend, demo)``. The purge loop runs every ``purge_interval_s`` seconds; ``decoder`` is the
    backend's :class:`~headshot_lab.ui.decode.DecodePool` (default: the app's).
    """
    os.environ["HEADSHOT_LAB_DATA_DIR"] = str(root / "data")
    os.environ["GRADIO_TEMP_DIR"] = str(root / "data" / "gradio")
    os.environ.pop("HEADSHOT_LAB_BASE_MODEL", None)  # the flow a visitor without a GPU runs
    # The bombs stand for any file slow to decode that the loader's budgets let through: lift the scan cap so that
    # the fairness scenario measures the decode workers' isolation, not the loader's early refusal.
    os.environ["HEADSHOT_LAB_MAX_JPEG_SCANS"] = "100000"
    sys.path.insert(0, str(REPO))
    app = importlib.import_module("app")
    from headshot_lab.privacy import SessionStore
    from headshot_lab.ui import AppBackend

    backend = AppBackend(SessionStore(root / "data", ttl_hours=ttl_hours, clock=clock), decoder=decoder)
    demo = app.build_demo(backend)
    backend.start(interval_s=purge_interval_s)  # launch() finds it running and keeps it
    _, url, _ = app.launch(
        demo,
        prevent_thread_lock=True,
        server_name="127.0.0.1",
        server_port=free_loopback_port(),
        quiet=True,
        ssr_mode=False,
    )
    return url, backend, demo


def make_photos(folder: Path, index: int, count: int, side: int) -> list[Path]:
    """``count`` JPEGs for session ``index``: real test photos (longest side ``side``), bytes and names unique.

    One pixel carries the session index, so no two sessions upload the same bytes (Gradio stores an
    upload under a hash of its content), and each name starts with ``s{index:02d}_``.
    """
    from PIL import Image

    from headshot_lab.testing.photos import real_photos

    sources = real_photos(list(PHOTOS))
    paths = []
    for number in range(count):
        name = PHOTOS[number % len(PHOTOS)]
        with Image.open(sources[name]) as opened:
            image = opened.convert("RGB")
        image.thumbnail((side, side))
        image.putpixel((0, 0), (index % 256, number % 256, 7))
        path = folder / f"s{index:02d}_{name}{number // len(PHOTOS) or ''}.jpg"
        image.save(path, "JPEG", quality=92)
        paths.append(path)
    return paths


def failed(result: Any) -> str:
    """The error message of an action's result (its status starts with ``⚠️ **``), else ``""``."""
    first = result[0] if isinstance(result, list | tuple) and result else result
    if isinstance(first, str) and first.startswith("⚠️ **"):
        return first.splitlines()[0][:200]
    return ""


def timed_call(
    client: Any, session: int, endpoint: str, args: tuple, deadline: float, calls: list[Call]
) -> tuple[Any, bool]:
    """Call ``endpoint`` (``client.submit(...).result`` with what is left of the deadline); record a :class:`Call`."""
    start = time.perf_counter()
    try:
        result = client.submit(*args, api_name=f"/{endpoint}").result(timeout=max(deadline - time.monotonic(), 1.0))
        error = failed(result)
    except Exception as exc:  # a refused call, a timeout: recorded, never fatal
        result, error = None, f"{type(exc).__name__}: {exc}"[:200]
    calls.append(Call(session, endpoint, time.perf_counter() - start, not error, error))
    return result, not error


def new_client(url: str) -> Any:
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False, analytics_enabled=False)


def run_session(run: SessionRun, url: str, start: threading.Barrier, deadline: float) -> None:
    """One visitor: connect, upload and check, retouch, select, export (stops at the first failure)."""
    from gradio_client import handle_file

    start.wait()
    begin = time.perf_counter()
    try:
        run.client = new_client(url)
    except Exception as exc:
        run.calls.append(Call(run.index, "connect", time.perf_counter() - begin, False, repr(exc)[:200]))
        return
    run.calls.append(Call(run.index, "connect", time.perf_counter() - begin, True))
    steps: list[tuple[str, Callable[[], tuple]]] = [
        ("check_photos", lambda: ([handle_file(p) for p in run.photos], True)),
        ("retouch", lambda: ("corporate", 0.4)),
        ("select", lambda: (5,)),
        ("export", lambda: (run.picks, ["square", "circle"], "jpeg", False)),
    ]
    for endpoint, arguments in steps:
        if time.monotonic() > deadline:
            return
        result, ok = timed_call(run.client, run.index, endpoint, arguments(), deadline, run.calls)
        if not ok:
            return
        run.returned_paths += list(server_paths(result))
        if endpoint == "select":
            picks = result[-1]
            run.picks = list(picks["value"] if isinstance(picks, dict) else picks)
    run.zip_names = download_zip(run, result[1])
    run.finished = bool(run.zip_names)


def download_zip(run: SessionRun, archive: Any) -> list[str]:
    """Download the export zip the way a browser does (its ``/gradio_api/file=`` URL); its members, timed."""
    import httpx

    start = time.perf_counter()
    try:
        response = httpx.get(archive["url"], timeout=120)
        response.raise_for_status()
        with zipfile.ZipFile(io.BytesIO(response.content)) as bundle:
            names = bundle.namelist()
    except Exception as exc:  # recorded as a failed download
        run.calls.append(Call(run.index, "download_zip", time.perf_counter() - start, False, repr(exc)[:200]))
        return []
    run.calls.append(Call(run.index, "download_zip", time.perf_counter() - start, True))
    return names


class Probe(threading.Thread):
    """Every ``interval`` s until stopped: a queued call (``/delete_my_data`` of an empty page) and GET ``/config``.

    The queued call must answer "Nothing to delete" (the probe's page never uploaded anything).
    """

    EXPECTED = "Nothing to delete"

    def __init__(self, url: str, interval: float, limit: int) -> None:
        super().__init__(name="probe", daemon=True)
        import httpx

        self.url, self.interval, self.limit = url, interval, limit
        self.client = new_client(url)
        self.http = httpx.Client(timeout=60)
        self.queue_calls: list[Call] = []
        self.http_calls: list[Call] = []
        self.stop_event = threading.Event()

    def once(self) -> None:
        result, ok = timed_call(self.client, -1, "delete_my_data", (), time.monotonic() + 120, self.queue_calls)
        if ok and self.EXPECTED not in str(result):
            self.queue_calls[-1].ok, self.queue_calls[-1].error = False, f"unexpected answer: {result!r}"[:200]
        start = time.perf_counter()
        try:
            ok = self.http.get(f"{self.url}config").status_code == 200
        except Exception:  # recorded as a failed probe
            ok = False
        self.http_calls.append(Call(-1, "GET /config", time.perf_counter() - start, ok))

    def run(self) -> None:
        while not self.stop_event.is_set() and len(self.queue_calls) < self.limit:
            self.once()
            self.stop_event.wait(self.interval)

    def close(self) -> None:
        self.stop_event.set()
        if self.is_alive():
            self.join(timeout=130)
        self.client.close()
        self.http.close()


class RssSampler(threading.Thread):
    """Peak resident memory of this process (psutil), sampled every ``interval`` s while the load runs."""

    def __init__(self, interval: float = 0.25) -> None:
        super().__init__(name="rss", daemon=True)
        import psutil

        self.process, self.interval = psutil.Process(), interval
        self.peak = self.process.memory_info().rss
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.wait(self.interval):
            self.peak = max(self.peak, self.process.memory_info().rss)


def session_folders(backend: Any) -> dict[str, str]:
    """``{tag: session id}`` from the server's own folders: whose photos (``s07_…``) each session holds.

    A folder holding the photos of more than one tag maps to ``"mixed"``.
    """
    found: dict[str, str] = {}
    for session in backend.store.list_sessions():
        tags = {name.split("_", 1)[0] for name in os.listdir(session.uploads)}
        found[tags.pop() if len(tags) == 1 else "mixed"] = session.id
    return found


def inside(path: str | Path, folder: Path) -> bool:
    resolved, root = Path(path).resolve(), folder.resolve()
    return root in resolved.parents


def check_isolation(runs: list[SessionRun], backend: Any, url: str) -> dict[str, Any]:
    """Isolation on the server's folders: one folder per session, own paths only, refusals across sessions."""
    import httpx

    owners = session_folders(backend)
    mine = [run for run in runs if run.tag in owners]  # sessions whose photos reached the server
    own_paths = foreign_paths = 0
    for run in mine:
        folder = backend.publish_dir(owners[run.tag])
        for path in run.returned_paths:
            mixed = any(f"{other.tag}_" in Path(path).name for other in runs if other is not run)
            own = inside(path, folder) and not mixed
            own_paths += own
            foreign_paths += not own
    zips_own_only = sum(1 for run in mine if run.zip_names and all(f"_{run.tag}_" in name for name in run.zip_names))
    # Another session's headshots named in /export: refused, and that session's files stay as they were.
    exported = [run for run in mine if run.finished and run.picks and run.client is not None]
    pairs = [(run, other) for run, other in zip(exported, exported[1:] + exported[:1], strict=True) if run is not other]
    refused = 0
    for run, other in pairs:
        victim = backend.store.get_session(owners[other.tag]).root
        before = sorted((p, p.stat().st_size) for p in victim.rglob("*") if p.is_file())
        _, ok = timed_call(
            run.client, run.index, "export", (other.picks, ["square"], "jpeg", False), time.monotonic() + 60, []
        )
        after = sorted((p, p.stat().st_size) for p in victim.rglob("*") if p.is_file())
        refused += int(not ok and before == after)
    # Gradio never serves a session folder, whoever asks: every file of every session, by its full path.
    served = requested = 0
    with httpx.Client(timeout=30) as http:
        for run in mine:
            for path in (p for p in backend.store.get_session(owners[run.tag]).root.rglob("*") if p.is_file()):
                requested += 1
                served += http.get(f"{url}gradio_api/file={path}").status_code == 200
    return {
        "sessions_on_server": len(backend.store.list_sessions()),
        "sessions_with_own_folder": len(mine),
        "distinct_session_ids": len({owners[run.tag] for run in mine}),
        "folders_with_mixed_photos": int("mixed" in owners),
        "returned_paths_in_own_folder": own_paths,
        "returned_paths_foreign": foreign_paths,
        "zips_with_only_own_files": zips_own_only,
        "cross_session_exports_refused": f"{refused}/{len(pairs)}",
        "session_files_requested_by_url": requested,
        "session_files_served_by_url": served,
    }


def delete_now(runs: list[SessionRun], backend: Any) -> dict[str, Any]:
    """Session 0 presses "Delete my data now": its folder and published copies go, the others stay."""
    owners = session_folders(backend)
    first = runs[0]
    target = owners.get(first.tag)
    others = {owners[r.tag] for r in runs[1:] if r.tag in owners}
    if first.client is None:
        return {"answer_ok": False, "deleted_session_gone": False, "other_sessions_intact": "not run"}
    result, ok = timed_call(first.client, 0, "delete_my_data", (), time.monotonic() + 60, [])
    remaining = {session.id for session in backend.store.list_sessions()}
    return {
        "answer_ok": ok and "Deleted" in str(result),
        "deleted_session_gone": target is not None
        and target not in remaining
        and not backend.publish_dir(target).exists(),
        "other_sessions_intact": f"{len(others & remaining)}/{len(others)}",
    }


def ttl_purge(runs: list[SessionRun], backend: Any, clock: OffsetClock, wait_s: float) -> dict[str, Any]:
    """Move the store's clock past the retention time; wait for the running purge loop to remove everything."""
    live = len(backend.store.list_sessions())
    clock.offset += backend.store.ttl_seconds + 1
    start = time.perf_counter()
    deadline = time.monotonic() + wait_s

    def published() -> list[Path]:
        root = backend.publish_root
        return [entry for entry in root.iterdir() if entry.is_dir()] if root.is_dir() else []

    while (backend.store.list_sessions() or published()) and time.monotonic() < deadline:
        time.sleep(0.1)
    seconds = time.perf_counter() - start
    tags = tuple(run.tag + "_" for run in runs)
    gradio_dir = Path(os.environ["GRADIO_TEMP_DIR"])
    leftovers = [p for p in gradio_dir.rglob("*") if p.is_file() and p.name.startswith(tags)]
    log = backend.store.read_deletion_log()
    return {
        "sessions_before": live,
        "sessions_after": len(backend.store.list_sessions()),
        "published_folders_after": len(published()),
        "files_of_sessions_left_in_gradio_cache": len(leftovers),
        "ttl_deletions_logged": sum(1 for entry in log if entry["reason"] == "ttl"),
        "seconds_until_all_gone": round(seconds, 2),
    }


def endpoint_latency(calls: list[Call]) -> dict[str, dict[str, Any]]:
    """Per endpoint: latency percentiles of the calls that worked, and how many failed."""
    out = {}
    for endpoint in ("connect", *FLOW, "download_zip"):
        mine = [c for c in calls if c.endpoint == endpoint]
        out[endpoint] = {**percentiles([c.seconds for c in mine if c.ok]), "errors": sum(not c.ok for c in mine)}
    return out


def probe_summary(idle: Probe, loaded: Probe) -> dict[str, Any]:
    """Probe latency idle vs under load, and the ratios of their medians and p95s."""
    summary: dict[str, Any] = {}
    for kind, attr in (("queued_call", "queue_calls"), ("http_config", "http_calls")):
        base = percentiles([c.seconds for c in getattr(idle, attr) if c.ok])
        load = percentiles([c.seconds for c in getattr(loaded, attr) if c.ok])
        summary[kind] = {
            "idle": base,
            "under_load": load,
            "ratio_p50": round(load["p50"] / base["p50"], 2) if base["p50"] and load["p50"] else None,
            "ratio_p95": round(load["p95"] / base["p95"], 2) if base["p95"] and load["p95"] else None,
            "errors": sum(not c.ok for c in getattr(loaded, attr)),
        }
    return summary


def warm_up(url: str, photo: Path) -> dict[str, float]:
    """One visitor before the load (models load on first use, as after a restart); its latencies, then deleted."""
    from gradio_client import handle_file

    client, calls = new_client(url), []
    timed_call(client, -1, "check_photos", ([handle_file(str(photo))], True), time.monotonic() + 300, calls)
    timed_call(client, -1, "retouch", ("corporate", 0.4), time.monotonic() + 300, calls)
    timed_call(client, -1, "delete_my_data", (), time.monotonic() + 60, calls)
    client.close()
    return {c.endpoint: round(c.seconds, 3) for c in calls if c.ok}


# ================================================================================== fairness scenario
def photo_variants(folder: Path, tag: str, count: int, side: int) -> list[Path]:
    """``count`` distinct one-person JPEGs (one pixel differs), so each check decodes a new upload."""
    from PIL import Image

    from headshot_lab.testing.photos import real_photos

    with Image.open(real_photos(["obama"])["obama"]) as opened:
        base = opened.convert("RGB")
    base.thumbnail((side, side))
    paths = []
    for number in range(count):
        image = base.copy()
        image.putpixel((0, 0), (number % 256, len(tag) % 256, 11))
        path = folder / f"{tag}_{number:02d}.jpg"
        image.save(path, "JPEG", quality=92)
        paths.append(path)
    return paths


def bomb_variants(folder: Path, tag: str, count: int, side: int, scans: int) -> list[Path]:
    """``count`` distinct slow-to-decode JPEGs (grey levels differ: distinct bytes, distinct uploads)."""
    from headshot_lab.testing.slow import jpeg_scan_bomb

    paths = []
    for number in range(count):
        path = folder / f"{tag}_bomb{number:02d}.jpg"
        path.write_bytes(jpeg_scan_bomb(side, scans, grey=40 + (7 * number + 13 * len(tag)) % 200))
        paths.append(path)
    return paths


def normal_visitor(url: str, photos: list[Path], calls: list[Call], index: int, start: threading.Barrier) -> None:
    """Check one new photo at a time, ``len(photos)`` times, as one page; then delete the page's data."""
    from gradio_client import handle_file

    client = new_client(url)
    start.wait()
    for photo in photos:
        timed_call(client, index, "check_photos", ([handle_file(str(photo))], True), time.monotonic() + 600, calls)
    timed_call(client, index, "delete_my_data", (), time.monotonic() + 60, [])
    client.close()


def bomber(url: str, batches: list[list[Path]], calls: list[Call], index: int, stop: threading.Event) -> None:
    """Upload a batch of slow files, again and again (a new batch each time), until told to stop."""
    from gradio_client import handle_file

    client = new_client(url)
    number = 0
    while not stop.is_set():
        batch = batches[number % len(batches)]
        number += 1
        timed_call(
            client, index, "check_photos", ([handle_file(str(p)) for p in batch], True), time.monotonic() + 900, calls
        )
    client.close()


def normal_phase(url: str, photo_sets: list[list[Path]], bomb_sets: list[list[list[Path]]]) -> dict[str, Any]:
    """The normal visitors' checks, with the given bombers (none: the idle baseline) running beside them."""
    normal_calls: list[Call] = []
    bomb_calls: list[Call] = []
    stop = threading.Event()
    barrier = threading.Barrier(len(photo_sets) + 1)
    bombers = [
        threading.Thread(target=bomber, args=(url, batches, bomb_calls, 100 + i, stop), daemon=True)
        for i, batches in enumerate(bomb_sets)
    ]
    for thread in bombers:
        thread.start()
    if bombers:
        time.sleep(3.0)  # the bombers' first uploads are decoding when the normal visitors arrive
    normals = [
        threading.Thread(target=normal_visitor, args=(url, photos, normal_calls, i, barrier), daemon=True)
        for i, photos in enumerate(photo_sets)
    ]
    for thread in normals:
        thread.start()
    started = time.perf_counter()
    barrier.wait()
    for thread in normals:
        thread.join()
    wall = time.perf_counter() - started
    stop.set()
    for thread in bombers:
        thread.join(timeout=900)
    ok = [c.seconds for c in normal_calls if c.ok]
    return {
        "wall_s": round(wall, 2),
        "normal_check_s": percentiles(ok),
        "normal_errors": sum(not c.ok for c in normal_calls),
        "normal_error_samples": sorted({c.error for c in normal_calls if not c.ok})[:5],
        "bomb_check_s": percentiles([c.seconds for c in bomb_calls]),
        "bomb_requests": len(bomb_calls),
        "bomb_answers": sorted({(c.error or "ok")[:120] for c in bomb_calls})[:5],
    }


def fairness(args: argparse.Namespace) -> None:
    """Normal visitors' check latency alone vs beside bomb-uploading visitors (same run, same server)."""
    from headshot_lab.ui.decode import DEFAULT_WORKERS, DecodePool

    isolated = args.isolation == "on"
    decoder = DecodePool(DEFAULT_WORKERS) if isolated else DecodePool(2, in_process=True)
    with tempfile.TemporaryDirectory(prefix="fairness-") as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        url, backend, demo = launch_app(root / "server", OffsetClock(), 24.0, 60.0, decoder=decoder)
        launch_s = time.perf_counter() - started
        try:
            (root / "photos").mkdir()
            photo_sets = [
                photo_variants(root / "photos", f"n{i}{phase}", args.calls, args.side)
                for phase in ("idle", "load")
                for i in range(args.normal)
            ]
            bomb_sets = [
                [bomb_variants(root / "photos", f"b{i}r{r}", args.bomb_files, args.bomb_side, args.bomb_scans)
                 for r in range(3)]
                for i in range(args.bombers)
            ]  # fmt: skip
            from headshot_lab.io import load_photo

            probe = time.perf_counter()
            try:
                load_photo(bomb_sets[0][0][0].read_bytes(), min_side=0)
                bomb_decode = {"decode_s_in_process": round(time.perf_counter() - probe, 2), "refused_by": None}
            except Exception as exc:  # the loader's own budget may refuse it (then the worker is not needed)
                bomb_decode = {"decode_s_in_process": round(time.perf_counter() - probe, 2), "refused_by": repr(exc)}
            warm = warm_up(url, photo_sets[0][0])
            print(f"app on {url} in {launch_s:.1f} s; warm-up {warm}; one slow file {bomb_decode}", flush=True)
            idle = normal_phase(url, photo_sets[: args.normal], [])
            print(f"idle: {idle['normal_check_s']}", flush=True)
            loaded = normal_phase(url, photo_sets[args.normal :], bomb_sets)
            print(f"beside bombers: {loaded['normal_check_s']}; bombs {loaded['bomb_check_s']}", flush=True)
        finally:
            demo.close()
            backend.stop()
            decoder.close()
    p95_idle, p95_load = idle["normal_check_s"]["p95"], loaded["normal_check_s"]["p95"]
    ratio = round(p95_load / p95_idle, 2) if p95_idle and p95_load else None
    write_result(
        "concurrent_sessions_fairness" + ("" if isolated else "_off"),
        {
            "scenario": "fairness",
            "isolation": args.isolation,
            "set_up": {
                "decode": "worker processes; past 1 CPU-s a decode drops to idle priority (nice 19, SCHED_IDLE); CPU-time limit per file"
                if isolated
                else "in the request",
                "decode_workers": decoder.workers,
                "decode_cpu_limit_s": decoder.timeout_s if isolated else None,
                "decode_wall_backstop_s": decoder.wall_limit_s if isolated else None,
                "check_concurrency_limit": decoder.workers,
                "one_action_at_a_time_per_page": True,
            },
            "normal_visitors": args.normal,
            "calls_each": args.calls,
            "photo_side_px": args.side,
            "bombers": args.bombers,
            "bomb_files_per_request": args.bomb_files,
            "bomb": {"side_px": args.bomb_side, "scans": args.bomb_scans, **bomb_decode},
            "launch_s": round(launch_s, 2),
            "warm_up_s": warm,
            "idle": idle,
            "beside_bombers": loaded,
            "p95_ratio": ratio,
            "goal": "p95 beside bombers ≤ 2 × idle p95",
            "goal_met": ratio is not None and ratio <= 2.0 and not loaded["normal_errors"],
            "decode_stats": dict(decoder.stats),
        },
        args.out,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=("flow", "fairness"), default="flow", help="what to measure")
    parser.add_argument("--normal", type=int, default=2, help="fairness: normal visitors (default 2)")
    parser.add_argument("--calls", type=int, default=6, help="fairness: checks per normal visitor (default 6)")
    parser.add_argument("--bombers", type=int, default=2, help="fairness: bomb-uploading visitors (default 2)")
    parser.add_argument("--bomb-files", type=int, default=3, help="fairness: slow files per request (default 3)")
    parser.add_argument("--bomb-side", type=int, default=2048, help="fairness: slow file's side, px (default 2048)")
    parser.add_argument("--bomb-scans", type=int, default=4000, help="fairness: repeated scans (default 4000)")
    parser.add_argument("--isolation", choices=("on", "off"), default="on", help="fairness: the app's (on) or old")
    parser.add_argument("--sessions", type=int, default=20, help="simultaneous visitors (default 20)")
    parser.add_argument("--photos", type=int, default=2, help="photos each visitor uploads (default 2)")
    parser.add_argument("--side", type=int, default=1024, help="longest side of those photos, px (default 1024)")
    parser.add_argument("--probe-interval", type=float, default=0.5, help="seconds between probes (default 0.5)")
    parser.add_argument("--idle-probes", type=int, default=10, help="probes before the load (default 10)")
    parser.add_argument("--timeout", type=float, default=600.0, help="deadline for the whole load, s (default 600)")
    parser.add_argument("--ttl-hours", type=float, default=24.0, help="retention time of the store (default 24)")
    parser.add_argument("--purge-interval", type=float, default=1.0, help="purge loop interval, s (default 1)")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    if args.scenario == "fairness":
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
        fairness(args)
        return
    if args.sessions < 1 or args.photos < 1:
        parser.error("--sessions and --photos must be at least 1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

    with tempfile.TemporaryDirectory(prefix="concurrent-sessions-") as tmp:
        root = Path(tmp)
        clock = OffsetClock()
        started = time.perf_counter()
        url, backend, demo = launch_app(root / "server", clock, args.ttl_hours, args.purge_interval)
        launch_s = time.perf_counter() - started
        import psutil

        rss_idle = psutil.Process().memory_info().rss
        runs: list[SessionRun] = []
        try:
            (root / "photos").mkdir()
            for index in range(args.sessions):
                folder = root / "photos" / f"{index:02d}"
                folder.mkdir()
                paths = make_photos(folder, index, args.photos, args.side)
                runs.append(SessionRun(index, f"s{index:02d}", [str(p) for p in paths]))
            warm = warm_up(url, Path(runs[0].photos[0]))
            print(f"app on {url} in {launch_s:.1f} s; warm-up {warm}", flush=True)

            idle = Probe(url, 0.2, args.idle_probes)
            for _ in range(args.idle_probes):
                idle.once()
                time.sleep(0.2)
            idle.close()

            deadline = time.monotonic() + args.timeout
            barrier = threading.Barrier(args.sessions + 1)
            threads = [
                threading.Thread(target=run_session, args=(run, url, barrier, deadline), name=f"session-{run.index}")
                for run in runs
            ]
            for thread in threads:
                thread.daemon = True
                thread.start()
            probe = Probe(url, args.probe_interval, limit=int(args.timeout / max(args.probe_interval, 0.05)) + 1)
            rss = RssSampler()
            rss.start()
            barrier.wait()
            load_start = time.perf_counter()
            probe.start()
            last_print = 0.0
            while any(t.is_alive() for t in threads) and time.monotonic() < deadline + 5:
                time.sleep(0.2)
                elapsed = time.perf_counter() - load_start
                if elapsed - last_print >= 5:
                    last_print = elapsed
                    calls = [c for run in runs for c in run.calls]
                    print(
                        f"[{elapsed:6.1f} s] flows done {sum(r.finished for r in runs)}/{len(runs)}, "
                        f"calls {len(calls)}, errors {sum(not c.ok for c in calls)}, probes {len(probe.queue_calls)}",
                        flush=True,
                    )
            load_s = time.perf_counter() - load_start
            probe.close()
            rss.stop_event.set()
            rss.join()
            timed_out = any(t.is_alive() for t in threads)

            calls = [c for run in runs for c in run.calls]
            flow_calls = [c for c in calls if c.endpoint in FLOW]
            print("isolation checks (Gradio logs the refused cross-session exports below: expected)", flush=True)
            isolation = check_isolation(runs, backend, url)
            isolation["delete_now"] = delete_now(runs, backend)
            isolation["ttl_purge"] = ttl_purge(runs, backend, clock, wait_s=max(30.0, 10 * args.purge_interval))
        finally:
            for run in runs:
                if run.client is not None:
                    run.client.close()
            demo.close()
            backend.stop()

    errors = [c for c in calls if not c.ok]
    write_result(
        "concurrent_sessions",
        {
            "sessions": args.sessions,
            "photos_per_session": args.photos,
            "photo_side_px": args.side,
            "flow": list(FLOW),
            "queue": {"default_concurrency_limit": 2, "note": "each endpoint has its own queue slot pair"},
            "launch_s": round(launch_s, 2),
            "warm_up_s": warm,
            "load_wall_s": round(load_s, 2),
            "timed_out": timed_out,
            "flows_completed": sum(run.finished for run in runs),
            "throughput": {
                "flows_per_min": round(60 * sum(run.finished for run in runs) / load_s, 2),
                "calls_per_s": round(len(flow_calls) / load_s, 3),
            },
            "latency_s": endpoint_latency(calls),
            "flow_latency_s": percentiles(
                [sum(c.seconds for c in run.calls if c.endpoint in FLOW) for run in runs if run.finished]
            ),
            "probe": probe_summary(idle, probe),
            "errors": len(errors),
            "error_samples": sorted({f"{c.endpoint}: {c.error}" for c in errors})[:10],
            "rss_mb": {
                "after_launch_before_models": round(rss_idle / 2**20, 1),
                "peak_during_load": round(rss.peak / 2**20, 1),
                "peak_process": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            },
            "isolation": isolation,
            "calls": [asdict(c) for c in calls] if len(calls) <= 400 else "omitted (more than 400)",
        },
        args.out,
    )


if __name__ == "__main__":
    main()
