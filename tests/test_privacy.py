"""Session store: private folders, TTL purge with an injected clock, delete-now, logs without ids."""

from __future__ import annotations

import json
import os
import stat
import time

import pytest

from headshot_lab.privacy import (
    CONSENT_VERSION,
    SESSION_ID_PATTERN,
    SUBFOLDERS,
    InvalidSessionIdError,
    InvalidTTLError,
    SessionError,
    SessionNotFoundError,
    SessionStore,
    validate_ttl_hours,
)

HOUR = 3600.0


class FakeClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, hours: float) -> None:
        self.now += hours * HOUR


@pytest.fixture()
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture()
def store(tmp_path, clock) -> SessionStore:
    return SessionStore(tmp_path / "data", ttl_hours=24, clock=clock)


def _fill(session) -> list[str]:
    """Put personal-looking files in every subfolder; return their names."""
    names = []
    for sub in SUBFOLDERS:
        name = f"jane_doe_{sub}_selfie.jpg"
        session.path(sub, name).write_bytes(b"\xff\xd8 private pixels " + sub.encode())
        names.append(name)
    nested = session.path("lora", "checkpoint-1")
    nested.mkdir()
    (nested / "adapter_model.safetensors").write_bytes(b"weights")
    return names


def _all_files(root) -> list[str]:
    return [os.path.join(d, n) for d, _, names in os.walk(root) for n in names]


def test_session_folders_are_private_and_ids_unguessable(store):
    a, b = store.create_session(), store.create_session()
    assert a.id != b.id
    assert SESSION_ID_PATTERN.fullmatch(a.id)
    for folder in [a.root, *(a.root / sub for sub in SUBFOLDERS), store.sessions_dir, store.logs_dir]:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert stat.S_IMODE((a.root / "session.json").stat().st_mode) == 0o600
    assert a.root.parent == store.sessions_dir


def test_private_modes_hold_under_a_permissive_umask(tmp_path, clock):
    old = os.umask(0)
    try:
        session = SessionStore(tmp_path / "d", ttl_hours=1, clock=clock).create_session()
    finally:
        os.umask(old)
    assert stat.S_IMODE(session.root.stat().st_mode) == 0o700
    assert stat.S_IMODE(session.uploads.stat().st_mode) == 0o700


def test_consent_record_written_on_creation_without_personal_data(store, clock):
    session = store.create_session()
    meta = json.loads((session.root / "session.json").read_text())
    assert meta["consent"]["version"] == CONSENT_VERSION
    assert meta["consent"]["timestamp"].startswith(time.strftime("%Y", time.gmtime(clock.now)))
    (line,) = store.consent_log.read_text().splitlines()
    record = json.loads(line)
    assert set(record) == {"timestamp", "event", "consent_version", "session"}
    assert session.id not in store.consent_log.read_text()


def test_ttl_purge_removes_every_file_of_expired_sessions_only(store, clock):
    old = store.create_session()
    names = _fill(old)
    clock.advance(20)
    young = store.create_session()
    _fill(young)

    clock.advance(3.9)  # old is 23.9 h old
    assert store.purge_expired() == 0
    assert all((old.root / sub / name).exists() for sub, name in zip(SUBFOLDERS, names, strict=True))

    clock.advance(0.1)  # old is exactly 24 h old
    assert store.purge_expired() == 1
    assert not old.root.exists()
    leftovers = _all_files(store.data_dir)
    assert not [f for f in leftovers if old.id in f or ("jane_doe" in f and young.id not in f)]
    assert young.root.exists() and store.get_session(young.id).id == young.id
    with pytest.raises(SessionNotFoundError):
        store.get_session(old.id)

    clock.advance(24)
    assert store.purge_expired() == 1
    assert store.list_sessions() == []
    assert [p for p in store.sessions_dir.iterdir()] == []


def test_delete_now_leaves_nothing_and_logs_without_ids_or_file_names(store, clock):
    session = store.create_session()
    names = _fill(session)
    record = store.delete_session(session.id)
    assert record is not None and record.reason == "user"
    assert record.files == len(names) + 2  # + session.json + the nested checkpoint file
    assert record.bytes > 0
    assert not session.root.exists()
    assert not any(session.id in f for f in _all_files(store.data_dir))
    with pytest.raises(SessionNotFoundError):
        store.get_session(session.id)
    with pytest.raises(SessionNotFoundError):
        store.delete_session(session.id)
    assert store.delete_session(session.id, missing_ok=True) is None

    log_text = store.deletion_log.read_text()
    assert session.id not in log_text
    for name in [*names, "jane", "selfie", "checkpoint", str(store.data_dir)]:
        assert name not in log_text
    (entry,) = store.read_deletion_log()
    assert set(entry) == {"timestamp", "reason", "session", "files", "bytes"}
    # The digest pairs creation and deletion without revealing the id.
    (consent,) = [json.loads(x) for x in store.consent_log.read_text().splitlines()]
    assert consent["session"] == entry["session"]


def test_log_digests_differ_between_stores(tmp_path, clock):
    """The salt is per data dir: the same id does not map to the same digest elsewhere."""
    one = SessionStore(tmp_path / "a", ttl_hours=1, clock=clock)
    two = SessionStore(tmp_path / "b", ttl_hours=1, clock=clock)
    assert one._digest("x" * 32) != two._digest("x" * 32)


def test_ttl_reasons_in_log(store, clock):
    store.create_session()
    clock.advance(25)
    store.purge_expired()
    assert [e["reason"] for e in store.read_deletion_log()] == ["ttl"]


def test_expired_session_is_refused_and_deleted_on_access(store, clock):
    session = store.create_session()
    _fill(session)
    clock.advance(24.5)
    with pytest.raises(SessionNotFoundError, match="expired"):
        store.get_session(session.id)
    assert not session.root.exists()


def test_shorter_ttl_applies_to_existing_sessions(tmp_path, clock):
    long_lived = SessionStore(tmp_path / "d", ttl_hours=72, clock=clock).create_session()
    clock.advance(2)
    strict = SessionStore(tmp_path / "d", ttl_hours=1, clock=clock)
    assert strict.purge_expired() == 1
    assert not long_lived.root.exists()


def test_zero_ttl_keeps_nothing_past_the_next_purge(tmp_path, clock):
    store = SessionStore(tmp_path / "d", ttl_hours=0, clock=clock)
    store.create_session()
    assert store.purge_expired() == 1


def test_unreadable_metadata_still_expires_by_folder_age(store, clock):
    session = store.create_session()
    (session.root / "session.json").write_text("{not json")
    old = clock.now - 48 * HOUR
    os.utime(session.root, (old, old))
    assert store.purge_expired() == 1


@pytest.mark.parametrize("bad", [-1, 720.5, 10_000, "abc", float("nan"), None])
def test_invalid_ttl_refused_with_a_clear_message(tmp_path, bad):
    with pytest.raises(InvalidTTLError) as info:
        SessionStore(tmp_path, ttl_hours=bad if bad is not None else "", clock=time.time)
    assert "hours" in info.value.message and info.value.fix


@pytest.mark.parametrize("good", [0, 0.5, 24, "48", 720])
def test_valid_ttl_range(good):
    assert validate_ttl_hours(good) == float(good)


def test_defaults_come_from_settings(data_dir, monkeypatch):
    monkeypatch.setenv("HEADSHOT_LAB_TTL_HOURS", "6")
    store = SessionStore()
    assert store.data_dir == data_dir and store.ttl_hours == 6
    assert store.create_session().root.is_relative_to(data_dir)
    monkeypatch.setenv("HEADSHOT_LAB_TTL_HOURS", "999")
    with pytest.raises(InvalidTTLError):
        SessionStore()
    monkeypatch.setenv("HEADSHOT_LAB_TTL_HOURS", "soon")
    with pytest.raises(InvalidTTLError):
        SessionStore()


@pytest.mark.parametrize(
    "bad_id",
    ["", "..", "../../etc/passwd", "/etc", "a/b", "A" * 31, "A" * 33, "A" * 31 + ".", "A" * 30 + "/.", None, 42],
)
def test_traversal_and_malformed_ids_refused(store, bad_id):
    store.create_session()
    for call in (store.get_session, store.delete_session):
        with pytest.raises(InvalidSessionIdError) as info:
            call(bad_id)
        assert str(bad_id) not in info.value.message or bad_id in ("", None)
    assert len(store.list_sessions()) == 1


def test_well_formed_but_unknown_id_is_not_found(store):
    with pytest.raises(SessionNotFoundError):
        store.get_session("a" * 32)


def test_session_ids_are_hex_and_never_look_like_an_option(store):
    # URL-safe base64 ids start with "-" one time in 64, which argparse reads as an option
    # (``headshot-lab delete-session -Xy…`` failed); hex ids cannot.
    ids = [store.create_session().id for _ in range(200)]
    assert all(SESSION_ID_PATTERN.fullmatch(i) and not i.startswith("-") for i in ids)
    assert len(set(ids)) == len(ids)


def test_session_paths_stay_inside(store, tmp_path):
    session = store.create_session()
    assert session.path("uploads", "a.jpg") == (session.uploads / "a.jpg").resolve()
    for parts in [("..", "x"), ("uploads", "..", "..", "x"), ("/etc/passwd",), ("uploads", "a\x00.jpg")]:
        with pytest.raises(SessionError):
            session.path(*parts)
    outside = tmp_path / "outside"
    outside.mkdir()
    (session.uploads / "link").symlink_to(outside)
    with pytest.raises(SessionError):
        session.path("uploads", "link", "x.jpg")


def test_delete_does_not_follow_symlinks_out_of_the_session(store, tmp_path):
    keep = tmp_path / "not-yours"
    keep.mkdir()
    (keep / "precious.txt").write_text("keep me")
    session = store.create_session()
    (session.cache / "link").symlink_to(keep)
    store.delete_session(session.id)
    assert (keep / "precious.txt").read_text() == "keep me"


def test_background_purge_loop_purges_and_stops(store, clock):
    session = store.create_session()
    clock.advance(30)
    loop = store.start_purge_loop(interval_s=0.02)
    try:
        assert loop.thread.daemon
        deadline = time.monotonic() + 5
        while loop.purged < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not session.root.exists()
        assert loop.purged == 1 and loop.running
    finally:
        loop.stop()
    assert not loop.running
    runs = loop.runs
    time.sleep(0.1)
    assert loop.runs == runs


def test_purge_loop_survives_errors(store, monkeypatch):
    errors: list[Exception] = []
    calls = {"n": 0}

    def flaky() -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("disk hiccup")
        return 0

    monkeypatch.setattr(store, "purge_expired", flaky)
    with store.start_purge_loop(interval_s=0.01, on_error=errors.append) as loop:
        deadline = time.monotonic() + 5
        while calls["n"] < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert calls["n"] >= 3 and len(errors) == 1 and not loop.running


def test_purge_loop_rejects_bad_interval(store):
    with pytest.raises(ValueError):
        store.start_purge_loop(0)


@pytest.fixture()
def main():
    """``headshot-lab`` main entry point."""
    from headshot_lab.cli import main

    return main


def test_cli_purge_counts_expired_sessions(tmp_path, capsys, main):
    data = tmp_path / "data"
    old_clock = FakeClock(time.time() - 48 * HOUR)
    SessionStore(data, ttl_hours=24, clock=old_clock).create_session()
    SessionStore(data, ttl_hours=24, clock=old_clock).create_session()
    fresh = SessionStore(data, ttl_hours=24).create_session()

    assert main(["purge", "--data-dir", str(data)]) == 0
    assert capsys.readouterr().out.strip() == "2"
    assert fresh.root.exists()
    assert main(["purge", "--data-dir", str(data), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"purged": 0, "remaining": 1}


def test_cli_purge_uses_env_data_dir_and_reports_bad_ttl(data_dir, monkeypatch, capsys, main):
    assert main(["purge"]) == 0
    assert capsys.readouterr().out.strip() == "0"
    monkeypatch.setenv("HEADSHOT_LAB_TTL_HOURS", "-5")
    assert main(["purge"]) == 1
    err = capsys.readouterr().err
    assert "error:" in err and "Traceback" not in err
