"""Twenty simultaneous visitors through gradio_client: isolation, deletion, purge at the TTL, a live queue.

One app for the module (the ``app_server`` fixture: 127.0.0.1, a free port, data in a temp dir). Its
session store gets a clock this module moves forward, so "the retention time has passed" needs no
waiting. The tests share one crowd of 20 sessions (started together; each uploads its own photo —
distinct bytes, named ``s07_obama.jpg`` — then checks and retouches it) and run in file order: the last
one lets the purge loop remove them all.

Calls that must name a *server* path (another session's file) go through Gradio's REST API
(``/gradio_api/call/<api_name>``): gradio_client would upload the file's bytes from this machine instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from headshot_lab.testing.client import server_paths

pytestmark = pytest.mark.timeout(900)  # a hang fails the module instead of blocking the suite

SESSIONS = 20
SIDE = 512  # px: enough for the checklist to find the face and for retouch; small enough for 20 at once
REPO = Path(__file__).resolve().parents[1]


class OffsetClock:
    """``time.time() + offset``: moving ``offset`` forward expires every session at once."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@dataclass
class Visitor:
    """One simulated page: its photo, its client, and what it got back."""

    index: int
    photo: Path
    client: Any = None
    check: Any = None
    retouch: Any = None
    errors: list[str] = field(default_factory=list)

    @property
    def tag(self) -> str:
        return f"s{self.index:02d}"


@dataclass
class Crowd:
    url: str
    backend: Any
    clock: OffsetClock
    visitors: list[Visitor]
    owners: dict[str, str]  # tag -> session id, read from the server's own folders
    probe: dict[str, Any]


def new_client(url: str) -> Any:
    from gradio_client import Client

    return Client(url, verbose=False, download_files=False, analytics_enabled=False)


def file_data(path: str | Path) -> dict[str, Any]:
    return {"path": str(path), "meta": {"_type": "gradio.FileData"}}


def rest_call(url: str, api_name: str, data: list[Any]) -> tuple[str, Any]:
    """Call an endpoint through Gradio's REST API (a fresh page each time): ``("complete", outputs)`` or ``("error", message)``."""
    with httpx.Client(timeout=300) as http:
        event = http.post(f"{url}gradio_api/call/{api_name}", json={"data": data}).json()["event_id"]
        text = http.get(f"{url}gradio_api/call/{api_name}/{event}").text
    kind = data_line = None
    for line in text.splitlines():
        if line.startswith("event: "):
            kind = line.removeprefix("event: ").strip()
        elif line.startswith("data: ") and kind in ("complete", "error"):
            data_line = line.removeprefix("data: ")
            break
    payload = json.loads(data_line) if data_line and data_line != "null" else None
    if kind == "error":
        return "error", (payload or {}).get("error", "") if isinstance(payload, dict) else str(payload)
    return str(kind), payload


def upload(url: str, name: str, content: bytes) -> str:
    """Upload one file the way the browser's uploader does; return Gradio's server path for it."""
    response = httpx.post(f"{url}gradio_api/upload", files={"files": (name, content)}, timeout=60)
    response.raise_for_status()
    (path,) = response.json()
    return path


def session_owners(backend: Any) -> dict[str, str]:
    """``{tag: session id}``: whose photos each session folder holds (``"mixed"`` if more than one tag)."""
    owners: dict[str, str] = {}
    for session in backend.store.list_sessions():
        tags = {name.split("_", 1)[0] for name in os.listdir(session.uploads)}
        if tags:
            owners[tags.pop() if len(tags) == 1 else "mixed"] = session.id
    return owners


def files_of(folder: Path) -> dict[Path, int]:
    return {p: p.stat().st_size for p in folder.rglob("*") if p.is_file()} if folder.exists() else {}


# -- fixtures -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server(app_server):
    """``(url, backend, clock)``: the module's app, its store on a clock the tests can move forward."""
    url, backend = app_server
    clock = OffsetClock()
    backend.store.clock = clock
    try:
        yield url, backend, clock
    finally:
        backend.stop()
        backend.store.clock = time.time


@pytest.fixture(scope="module")
def crowd(server, real_photos, tmp_path_factory) -> Iterator[Crowd]:
    """20 visitors started together (check → retouch), and a probe of the queue while they run."""
    from gradio_client import handle_file

    url, backend, clock = server
    folder = tmp_path_factory.mktemp("crowd")
    with Image.open(real_photos["obama"]) as opened:
        base = opened.convert("RGB")
    base.thumbnail((SIDE, SIDE))
    visitors = []
    for index in range(SESSIONS):
        image = base.copy()
        image.putpixel((0, 0), (index, 0, 7))  # distinct bytes: Gradio stores uploads by content
        path = folder / f"s{index:02d}_obama.jpg"
        image.save(path, "JPEG", quality=92)
        visitors.append(Visitor(index, path))

    barrier = threading.Barrier(SESSIONS)
    checked, finished = threading.Event(), threading.Semaphore(0)

    def visit(visitor: Visitor) -> None:
        try:
            barrier.wait(timeout=120)
            visitor.client = new_client(url)
            visitor.check = visitor.client.submit(
                [handle_file(str(visitor.photo))], True, api_name="/check_photos"
            ).result(timeout=600)
            checked.set()
            visitor.retouch = visitor.client.submit("corporate", 0.4, api_name="/retouch").result(timeout=600)
        except Exception as exc:  # reported by the tests, never swallowed
            visitor.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            checked.set()
            finished.release()

    probe: dict[str, Any] = {}
    running = [SESSIONS]

    def probe_queue() -> None:
        """Once the first session is through its check (the load is on), a page with no data asks to delete it."""
        checked.wait(timeout=600)
        probe["pending_at_start"] = running[0]
        try:
            client = new_client(url)
            probe["delete_answer"] = client.predict(api_name="/delete_my_data")
            client.close()
            probe["config"] = httpx.get(f"{url}config", timeout=120).json()
        except Exception as exc:
            probe["error"] = f"{type(exc).__name__}: {exc}"

    threads = [threading.Thread(target=visit, args=(v,), daemon=True) for v in visitors]
    prober = threading.Thread(target=probe_queue, daemon=True)
    for thread in threads:
        thread.start()
    prober.start()
    for _ in threads:
        finished.acquire(timeout=900)
        running[0] -= 1
    prober.join(timeout=300)
    yield Crowd(url, backend, clock, visitors, session_owners(backend), probe)
    for visitor in visitors:
        if visitor.client is not None:
            visitor.client.close()


# -- the crowd --------------------------------------------------------------------------------------------
def test_twenty_simultaneous_sessions_each_get_only_their_own_results(crowd):
    backend = crowd.backend
    assert [v.errors for v in crowd.visitors] == [[] for _ in crowd.visitors]
    for visitor in crowd.visitors:
        status, gallery, report = visitor.check
        assert [photo["name"] for photo in report["photos"]] == [visitor.photo.name], status
        assert [entry["caption"].split(" ", 1)[1].split(" —")[0] for entry in gallery] == [visitor.photo.name]
        retouch_status, retouched = visitor.retouch
        assert "1 photo(s) retouched" in retouch_status, (retouch_status, status)
        assert [entry["caption"].split(" ·")[0] for entry in retouched] == [
            f"retouched/{visitor.tag}_obama_corporate.png"
        ]

    # One private folder per visitor, holding that visitor's photo and nobody else's.
    assert "mixed" not in crowd.owners
    assert sorted(crowd.owners) == sorted(v.tag for v in crowd.visitors)
    assert len(set(crowd.owners.values())) == SESSIONS
    for visitor in crowd.visitors:
        session = backend.store.get_session(crowd.owners[visitor.tag])
        assert sorted(os.listdir(session.uploads)) == [f"{visitor.tag}_obama.png"]
        # Every file a visitor got back lies in its own published folder and is named after its own photo.
        own = backend.publish_dir(session.id).resolve()
        paths = list(server_paths([visitor.check, visitor.retouch]))
        assert len(paths) == 2
        for path in paths:
            assert own in Path(path).resolve().parents, path
            assert Path(path).name.startswith(f"{visitor.tag}_"), path
    # Gradio's copies of the 20 uploads are gone once copied into the sessions.
    gradio_dir = Path(os.environ["GRADIO_TEMP_DIR"])
    assert [p for p in gradio_dir.rglob("s[0-9][0-9]_obama.jpg")] == []


def test_the_queue_answers_a_probe_while_the_sessions_run(crowd):
    probe = crowd.probe
    assert "error" not in probe, probe.get("error")
    assert probe["pending_at_start"] > 0, "the probe was meant to run while sessions were still working"
    assert probe["delete_answer"].startswith("Nothing to delete")  # a page with no data, answered through the queue
    assert probe["config"]["title"] == "headshot-lab"


def test_another_sessions_files_cannot_be_read_or_deleted_through_the_api(crowd):
    url, backend = crowd.url, crowd.backend
    first, second = crowd.visitors[0], crowd.visitors[1]
    session = backend.store.get_session(crowd.owners[first.tag])
    published = backend.publish_dir(session.id)
    private_before, published_before = files_of(session.root), files_of(published)
    upload_path = session.uploads / f"{first.tag}_obama.png"
    thumbnail = next(server_paths(first.check))
    assert upload_path.is_file() and Path(thumbnail).is_file()

    # Naming the first visitor's headshot in the second visitor's export is refused.
    with pytest.raises(Exception, match="not in the list of choices"):
        second.client.predict(
            [f"retouched/{first.tag}_obama_corporate.png"], ["square"], "jpeg", False, api_name="/export"
        )
    # A session file named as an upload is refused by Gradio (blocked path), with or without consent
    # (without consent, the app deletes what it was given).
    for consent in (True, False):
        kind, message = rest_call(url, "check_photos", [[file_data(upload_path)], consent])
        assert kind == "error" and "blocked_paths" in message, (kind, message)
    # A published copy (a thumbnail shown to the first visitor) is not taken as an upload, nor deleted.
    kind, outputs = rest_call(url, "check_photos", [[file_data(thumbnail)], False])
    assert kind == "complete" and "consent" in outputs[1].lower()
    before = {s.id for s in backend.store.list_sessions()}
    kind, outputs = rest_call(url, "check_photos", [[file_data(thumbnail)], True])
    assert kind == "complete"
    (photo,) = outputs[3]["photos"]
    assert photo["problems"][0]["code"] == "not_an_upload", photo
    assert "not one of your uploads" in outputs[1]
    # ... so the page that asked holds nothing at all: a request whose every file is refused keeps no session.
    assert {s.id for s in backend.store.list_sessions()} == before
    # Gradio never serves a session folder or the logs, whoever asks.
    for path in [*files_of(session.root), *files_of(backend.store.logs_dir)]:
        assert httpx.get(f"{url}gradio_api/file={path}").status_code == 403, path
    assert files_of(session.root) == private_before and files_of(published) == published_before


def test_identical_uploads_from_two_pages_get_a_clear_message_then_work(crowd):
    """Gradio keeps one copy per content: the first page's check deletes it under the second page's feet."""
    url = crowd.url
    content = crowd.visitors[2].photo.read_bytes() + b"same bytes, two pages"

    def checked(path: str) -> dict[str, Any]:
        kind, outputs = rest_call(url, "check_photos", [[file_data(path)], True])
        assert kind == "complete", outputs
        (photo,) = outputs[3]["photos"]
        return photo

    first_path, second_path = upload(url, "twin.jpg", content), upload(url, "twin.jpg", content)
    assert first_path == second_path
    first = checked(first_path)
    assert first["faces"] == 1 and "upload_gone" not in {p["code"] for p in first["problems"]}
    (problem,) = checked(second_path)["problems"]
    assert problem["code"] == "upload_gone" and "add it again" in problem["fix"]
    again = checked(upload(url, "twin.jpg", content))  # what "add it again" does
    assert again["faces"] == 1 and "upload_gone" not in {p["code"] for p in again["problems"]}


def test_delete_now_removes_that_session_and_leaves_the_others(crowd):
    backend = crowd.backend
    leaving = crowd.visitors[1]
    session_id = crowd.owners[leaving.tag]
    others = {crowd.owners[v.tag] for v in crowd.visitors if v is not leaving}
    status = leaving.client.predict(api_name="/delete_my_data")
    assert status.startswith("✓ Deleted")
    remaining = {s.id for s in backend.store.list_sessions()}
    assert session_id not in remaining and not backend.publish_dir(session_id).exists()
    assert others <= remaining
    status, _, _ = leaving.client.predict(5, api_name="/select")
    assert "no session" in status.lower()
    status, gallery, _ = crowd.visitors[0].client.predict(5, api_name="/select")
    assert "kept" in status and gallery, status  # the neighbour's session works as before


def test_every_session_is_purged_once_the_retention_time_has_passed(crowd):
    """Last: the clock moves past the TTL and the running purge loop removes every session and its copies."""
    backend, clock = crowd.backend, crowd.clock
    live = len(backend.store.list_sessions())
    assert live >= SESSIONS - 1
    ttl_before = sum(1 for entry in backend.store.read_deletion_log() if entry["reason"] == "ttl")
    backend.stop()
    backend.start(interval_s=0.2)  # the loop the app runs, every 0.2 s instead of 10 min
    clock.offset += backend.store.ttl_seconds + 1

    def published() -> list[Path]:
        root = backend.publish_root
        return [entry for entry in root.iterdir() if entry.is_dir()] if root.is_dir() else []

    deadline = time.monotonic() + 60
    while (backend.store.list_sessions() or published()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert backend.store.list_sessions() == []
    assert [p for p in backend.store.sessions_dir.iterdir()] == []
    assert published() == [], "the published copies go with their sessions"
    gradio_dir = Path(os.environ["GRADIO_TEMP_DIR"])
    tags = tuple(f"{v.tag}_" for v in crowd.visitors)
    assert [p for p in gradio_dir.rglob("*") if p.is_file() and p.name.startswith(tags)] == []
    log = backend.store.read_deletion_log()
    assert sum(1 for entry in log if entry["reason"] == "ttl") - ttl_before == live
    assert not any(session_id in json.dumps(log) for session_id in crowd.owners.values())
    # A page whose session was purged is told so; it gets nothing back.
    status, gallery = crowd.visitors[3].client.predict("corporate", 0.4, api_name="/retouch")
    assert "does not exist" in status and gallery == []


# -- deletion while an action of the same page runs (the backend alone, no server) ---------------------------
@pytest.fixture()
def checked_page(tmp_path, real_photos):
    """``(backend, state)``: a backend in ``tmp_path`` and one page whose photo has been checked."""
    import shutil

    from headshot_lab.privacy import SessionStore
    from headshot_lab.ui import AppBackend, SessionState

    gradio = tmp_path / "gradio"
    (gradio / "upload-0").mkdir(parents=True)
    backend = AppBackend(
        SessionStore(tmp_path / "data", ttl_hours=24), publish_root=gradio / "published", upload_root=gradio
    )
    with Image.open(real_photos["obama"]) as opened:
        image = opened.convert("RGB")
    image.thumbnail((SIDE, SIDE))
    image.save(gradio / "upload-0" / "me.jpg", "JPEG")
    result = backend.check_photos(SessionState(), [str(gradio / "upload-0" / "me.jpg")], True)
    assert result.ok, result.status
    yield backend, result.state
    backend.stop()
    shutil.rmtree(gradio, ignore_errors=True)


@pytest.mark.parametrize("how", ["delete_now", "ttl_purge"])
def test_a_session_deleted_while_an_action_runs_does_not_come_back(checked_page, monkeypatch, how):
    """ "Delete my data now" (or the TTL purge) lands while retouch works; retouch then writes its output.

    That write would re-create the deleted session folder (and its published copy) as a live session; the
    action instead removes what it wrote and says nothing was kept.
    """
    import headshot_lab.retouch
    from headshot_lab.ui import SessionState

    backend, state = checked_page
    session_id = state.session_id
    real_retouch = headshot_lab.retouch.retouch
    deleted: list[Any] = []

    def retouch_meanwhile_deleted(*args: Any, **kwargs: Any) -> Any:
        if how == "delete_now":
            deleted.append(backend.delete_my_data(state))  # the other button, pressed on the same page
        else:
            backend.store.clock = lambda: time.time() + backend.store.ttl_seconds + 1
            deleted.append(backend.purge_expired())  # what the purge loop runs
        return real_retouch(*args, **kwargs)

    monkeypatch.setattr(headshot_lab.retouch, "retouch", retouch_meanwhile_deleted)
    result = backend.retouch(state, "corporate")
    assert deleted and (deleted[0] == 1 if how == "ttl_purge" else deleted[0].ok)
    assert result.error["code"] == "session_deleted" and "nothing it made was kept" in result.status
    assert result.state == SessionState() and result.gallery == []
    assert backend.store.list_sessions() == []
    assert [p for p in backend.store.sessions_dir.rglob("*")] == []
    assert not backend.publish_dir(session_id).exists()
    reasons = [entry["reason"] for entry in backend.store.read_deletion_log()]
    assert reasons == ["user" if how == "delete_now" else "ttl", "orphan"]


def test_an_action_on_a_live_session_is_not_disturbed_by_other_deletions(checked_page):
    """Only the deleted session's actions are settled: another page's deletion leaves this one working."""
    from headshot_lab.ui import SessionState

    backend, state = checked_page
    backend.delete_my_data(SessionState(session_id="0" * 32))  # some other page, long gone
    result = backend.retouch(state, "corporate")
    assert result.ok, result.status
    assert result.state.session_id == state.session_id and len(result.gallery) == 1


def test_listing_sessions_while_another_thread_deletes_one(tmp_path, monkeypatch):
    """The purge loop, a new visitor's orphan sweep and "Delete my data now" run on different threads.

    A session folder renamed away between ``is_dir()`` and reading its ``session.json`` is simply not
    listed (it used to raise FileNotFoundError out of ``list_sessions``).
    """
    from headshot_lab.privacy import SessionStore

    store = SessionStore(tmp_path / "data", ttl_hours=24)
    doomed, kept = store.create_session(), store.create_session()
    real_read_text = Path.read_text

    def read_text(self: Path, *args: Any, **kwargs: Any) -> str:
        if self.parent.name == doomed.id and self.parent.is_dir():
            store.delete_session(doomed.id)  # the other thread gets there first
        return real_read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", read_text)
    assert [session.id for session in store.list_sessions()] == [kept.id]
    assert store.purge_expired() == 0 and not doomed.root.exists()


def test_sessions_made_and_deleted_on_many_threads_while_the_purge_sweeps(tmp_path):
    """Four pages open, publish and delete sessions over and over while the purge and orphan sweeps run."""
    from headshot_lab.privacy import SessionStore
    from headshot_lab.ui import AppBackend, SessionState

    gradio = tmp_path / "gradio"
    gradio.mkdir()
    backend = AppBackend(
        SessionStore(tmp_path / "data", ttl_hours=24), publish_root=gradio / "published", upload_root=gradio
    )
    failures: list[str] = []
    stop = threading.Event()

    def page() -> None:
        try:
            for _ in range(25):
                state = SessionState()
                session = backend.open_session(state, create=True)
                (session.outputs / "x.png").write_bytes(b"x" * 64)
                backend.publish(session, session.outputs / "x.png")
                result = backend.delete_my_data(state)
                if not result.ok:
                    failures.append(result.status)
        except Exception as exc:
            failures.append(f"page: {type(exc).__name__}: {exc}")

    def sweeper() -> None:
        while not stop.is_set():
            try:
                backend.purge_expired()
                backend.store.list_sessions()
            except Exception as exc:
                failures.append(f"sweep: {type(exc).__name__}: {exc}")

    pages = [threading.Thread(target=page) for _ in range(4)]
    sweep = threading.Thread(target=sweeper)
    try:
        sweep.start()
        for thread in pages:
            thread.start()
        for thread in pages:
            thread.join(timeout=120)
    finally:
        stop.set()
        sweep.join(timeout=30)
        backend.stop()
    assert failures == []
    assert backend.store.list_sessions() == [] and list(backend.publish_root.iterdir()) == []
    assert [entry["reason"] for entry in backend.store.read_deletion_log()] == ["user"] * 100


# -- the benchmark ------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_concurrency_benchmark_runs_and_reports(tmp_path):
    """``benchmarks/concurrent_sessions.py`` on 2 sessions: the JSON has latencies, probes and clean isolation."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("GRADIO_TEMP_DIR", None)
    env.pop("HEADSHOT_LAB_DATA_DIR", None)
    command = [
        sys.executable,
        "benchmarks/concurrent_sessions.py",
        "--sessions", "2", "--photos", "1", "--side", "1024", "--idle-probes", "2", "--timeout", "300",
        "--out", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((tmp_path / "concurrent_sessions.json").read_text())
    assert result["machine"]["cpu_count"] and result["flows_completed"] == 2 and result["errors"] == 0
    for endpoint in ("check_photos", "retouch", "select", "export"):
        stats = result["latency_s"][endpoint]
        assert stats["n"] == 2 and 0 < stats["p50"] <= stats["p95"] <= stats["max"]
    probe = result["probe"]["queued_call"]
    assert probe["idle"]["n"] == 2 and probe["under_load"]["n"] >= 1 and probe["ratio_p50"] > 0
    isolation = result["isolation"]
    assert isolation["distinct_session_ids"] == 2 and isolation["returned_paths_foreign"] == 0
    assert isolation["session_files_served_by_url"] == 0 and isolation["cross_session_exports_refused"] == "2/2"
    assert isolation["delete_now"] == {"answer_ok": True, "deleted_session_gone": True, "other_sessions_intact": "1/1"}
    ttl = isolation["ttl_purge"]
    assert ttl["sessions_after"] == 0 and ttl["published_folders_after"] == 0
    assert ttl["files_of_sessions_left_in_gradio_cache"] == 0
    assert result["rss_mb"]["peak_process"] >= result["rss_mb"]["after_launch_before_models"] > 0
