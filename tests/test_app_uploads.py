"""Uploads in the app (headshot_lab.ui): refusals keep nothing, deletion only of one's own uploads, fairness.

Each refusal branch (too many photos, no consent, unreadable files, an exception mid-batch) must leave no copy in
Gradio's upload folder nor in the session folder, so that "Delete my data now" truly has nothing left to delete;
a request can delete only uploads its own page handed over, never a shared swatch, a published copy or another
cache file; a file that takes too long to decode is stopped and refused on its own.
"""

from __future__ import annotations

import copy
import io
import shutil
import struct
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from headshot_lab.errors import HeadshotLabError
from headshot_lab.privacy import SessionStore
from headshot_lab.testing.slow import jpeg_scan_bomb
from headshot_lab.ui import AppBackend, SessionState
from headshot_lab.ui.actions import RETRAINED_NOTE
from headshot_lab.ui.decode import DecodePool

SIDE = 1200


@pytest.fixture(scope="module")
def photos(load_real, tmp_path_factory) -> dict[str, Path]:
    """JPEGs (at most 1200 px) of two photos of one person."""
    folder = tmp_path_factory.mktemp("photos")
    out = {}
    for name in ("obama", "obama2"):
        image = Image.fromarray(load_real(name))
        image.thumbnail((SIDE, SIDE))
        image.save(folder / f"{name}.jpg", "JPEG", quality=90)
        out[name] = folder / f"{name}.jpg"
    return out


def make_backend(root: Path, **options) -> AppBackend:
    gradio = root / "gradio"
    gradio.mkdir(parents=True, exist_ok=True)
    store = SessionStore(root / "data", ttl_hours=24)
    return AppBackend(store, publish_root=gradio / "published", upload_root=gradio, upload_registry=set(), **options)


def upload(backend: AppBackend, source: Path | bytes, name: str, folder: str | None = None) -> str:
    """Store a file as Gradio's upload route does: ``<upload folder>/<folder>/<name>``, registered as an upload."""
    where = backend.upload_root / (folder or f"u{len(list(backend.upload_root.iterdir())):03d}")
    where.mkdir(exist_ok=True)
    target = where / name
    if isinstance(source, bytes):
        target.write_bytes(source)
    else:
        shutil.copyfile(source, target)
    backend.upload_registry.add(str(target))
    return str(target)


def cache_files(backend: AppBackend) -> list[Path]:
    """Files in Gradio's upload folder outside the app's published copies."""
    published = backend.publish_root.resolve()
    return [p for p in backend.upload_root.rglob("*") if p.is_file() and published not in p.resolve().parents]


def session_files(backend: AppBackend) -> list[Path]:
    root = backend.store.sessions_dir
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def assert_nothing_kept(backend: AppBackend, state: SessionState) -> None:
    assert cache_files(backend) == [], "Gradio's copies of refused uploads must be deleted at once"
    assert session_files(backend) == [], "nothing of a refused request may stay in a session folder"
    assert state.session_id is None and state.handed == []
    deleted = backend.delete_my_data(state)
    assert "Nothing to delete" in deleted.status


def exif_crasher(pixels: np.ndarray) -> bytes:
    """A JPEG with orientation 6 and ImageWidth stored as ASCII: ``exif_transpose`` raises ``struct.error``."""
    entries = [(0x0100, 2, 4, b"abc\0"), (0x0112, 3, 1, struct.pack(">H", 6))]
    body = struct.pack(">H", len(entries))
    for tag, kind, count, value in entries:
        body += struct.pack(">HHI", tag, kind, count) + value.ljust(4, b"\0")
    exif = b"Exif\0\0MM\0*" + struct.pack(">I", 8) + body + b"\0\0\0\0"
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


# -- 1. refusals keep nothing ---------------------------------------------------------------------------------
@pytest.mark.parametrize("count", [21, 200])
def test_too_many_photos_are_refused_and_every_copy_deleted(tmp_path, photos, count):
    backend = make_backend(tmp_path)
    paths = [upload(backend, photos["obama"], f"p{i:03d}.jpg", folder=f"h{i:03d}") for i in range(count)]
    result = backend.check_photos(SessionState(), paths, True)
    assert result.error["code"] == "photo_count" and f"you uploaded {count}" in result.status
    assert_nothing_kept(backend, result.state)


def test_no_consent_deletes_every_copy(tmp_path, photos):
    backend = make_backend(tmp_path)
    paths = [upload(backend, photos[name], f"{name}.jpg") for name in photos]
    result = backend.check_photos(SessionState(), paths, False)
    assert result.error["code"] == "consent_required"
    assert_nothing_kept(backend, result.state)


def test_a_batch_of_unreadable_files_keeps_nothing(tmp_path, photos):
    backend = make_backend(tmp_path)
    truncated = photos["obama"].read_bytes()[:2000]
    paths = [
        upload(backend, b"%PDF-1.4 not a photo", "scan.jpg"),
        upload(backend, truncated, "cut.jpg"),
        upload(backend, b"", "empty.png"),
    ]
    result = backend.check_photos(SessionState(), paths, True)
    assert result.ok, result.status
    codes = [p["problems"][0]["code"] for p in result.report["photos"]]
    assert codes == ["not_an_image", "truncated_image", "empty_file"]
    assert all(Path(path) == Path(backend.refused_tile()) for path, _ in result.gallery)
    assert_nothing_kept(backend, result.state)


def test_one_failing_photo_never_fails_the_batch_nor_orphans_the_others(tmp_path, photos, monkeypatch):
    backend = make_backend(tmp_path)
    real_decode = backend.decoder.decode

    def decode(data, name, target, **kwargs):
        if name == "boom.jpg":
            raise RuntimeError("a decoder bug")
        return real_decode(data, name, target, **kwargs)

    monkeypatch.setattr(backend.decoder, "decode", decode)
    paths = [
        upload(backend, photos["obama"], "obama.jpg"),
        upload(backend, photos["obama"], "boom.jpg", folder="boom"),
        upload(backend, photos["obama2"], "obama2.jpg"),
    ]
    result = backend.check_photos(SessionState(), paths, True)
    assert result.ok, result.status
    state = result.state
    assert [item.ok for item in state.uploads] == [True, False, True], result.status
    bad = result.report["photos"][1]["problems"][0]
    assert bad["code"] == "unreadable" and "RuntimeError" in bad["message"]
    assert cache_files(backend) == []
    session = backend.store.get_session(state.session_id)
    kept = sorted(p.name for p in session.uploads.iterdir())
    assert kept == ["obama.png", "obama2.png"], "every copied photo belongs to the state (no orphan)"
    deleted = backend.delete_my_data(state)
    assert "Deleted" in deleted.status and session_files(backend) == []


def test_a_photo_with_a_wrongly_typed_exif_tag_is_judged_alone(tmp_path, photos, load_real):
    backend = make_backend(tmp_path)
    pixels = np.asarray(Image.open(photos["obama2"]).convert("RGB"))
    paths = [upload(backend, photos["obama"], "obama.jpg"), upload(backend, exif_crasher(pixels), "tagged.jpg")]
    result = backend.check_photos(SessionState(), paths, True)
    assert result.ok, result.status
    assert result.state.uploads[0].ok
    tagged = result.report["photos"][1]
    # Refused on its own ("could not be read"), or read with its metadata ignored — then its orientation tag (6)
    # turns the upright pixels sideways, so no upright face is found: never the batch's failure.
    assert tagged["ok"] or tagged["problems"][0]["code"] in {"unreadable", "truncated_image", "no_face"}
    assert cache_files(backend) == []


# -- 2. deletion only of one's own uploads -------------------------------------------------------------------
def test_a_request_cannot_delete_shared_or_other_files(tmp_path, photos):
    backend = make_backend(tmp_path)
    swatch, _ = backend.shared_images([(np.full((20, 20, 3), 90, np.uint8), "corporate: grey")], "swatches")[0]
    published = backend.publish_root / ("0" * 32) / "thumb.webp"
    published.parent.mkdir(parents=True)
    published.write_bytes(b"shown to a page")
    stray = backend.upload_root / "example" / "example.png"  # a cache file no upload route stored
    stray.parent.mkdir()
    stray.write_bytes(b"an example")
    other_page = upload(backend, photos["obama"], "obama.jpg")  # another visitor's upload, handed over by its page
    owner = SessionState()
    backend.receive(owner, [other_page])
    hostile = [swatch, str(published), str(stray), other_page]
    for consent in (False, True):
        result = backend.check_photos(SessionState(), hostile, consent)
        assert all(Path(path).exists() for path in hostile), f"consent={consent}: a file that is not this page's went"
        backend.delete_my_data(result.state, hostile)
        assert all(Path(path).exists() for path in hostile)
    # The page that handed it over may delete it.
    assert backend.discard_upload(other_page, owner) and not Path(other_page).exists()


def test_the_swatches_live_outside_gradios_cache(tmp_path):
    backend = make_backend(tmp_path)
    from headshot_lab.ui import style_swatches

    shown = backend.shared_images(style_swatches(), "swatches")
    assert shown and all(Path(path).is_file() for path, _ in shown)
    assert all(backend.upload_root.resolve() not in Path(path).resolve().parents for path, _ in shown)
    assert not any(backend.is_upload(path) for path, _ in shown)


# -- issue 15: re-uploads, duplicates, retraining ------------------------------------------------------------
def test_checking_a_reuploaded_photo_works(tmp_path, photos):
    backend = make_backend(tmp_path)
    first = backend.check_photos(SessionState(), [upload(backend, photos["obama"], "me.jpg", "a")], True)
    assert first.ok and first.state.uploads[0].ok
    # The visitor removes the photo and adds the same one again: a new copy (here: another folder) of one name.
    again = upload(backend, photos["obama"], "me.jpg", "b")
    second = backend.check_photos(first.state, [again], True)
    assert second.ok, second.status
    (item,) = second.state.uploads
    assert item.ok and Path(item.path).is_file()
    # Uploaded once more into the very same place (Gradio names the folder by the bytes): reused, copy deleted.
    same = upload(backend, photos["obama"], "me.jpg", "b")
    third = backend.check_photos(second.state, [same], True)
    assert third.ok and third.state.uploads[0] is item and Path(item.path).is_file()
    assert cache_files(backend) == []


def test_twenty_uploads_of_one_photo_give_one_message(tmp_path, photos):
    backend = make_backend(tmp_path)
    path = upload(backend, photos["obama"], "me.jpg")
    named = upload(backend, photos["obama"], "me-again.jpg", folder=Path(path).parent.name)  # same bytes, new name
    result = backend.check_photos(SessionState(), [path] * 19 + [named], True)
    assert result.ok, result.status
    (photo,) = result.report["photos"]
    codes = [problem["code"] for problem in photo["problems"]]
    assert "upload_gone" not in codes and codes.count("duplicate") == 1
    note = next(problem for problem in photo["problems"] if problem["code"] == "duplicate")
    assert note["message"].startswith("These 20 photos are the same photo")
    assert photo["ok"] and len(result.gallery) == 1
    assert cache_files(backend) == []


def test_retraining_after_changing_photos_replaces_the_old_run(tmp_path, photos, monkeypatch):
    from headshot_lab import workflow

    backend = make_backend(tmp_path)
    state = backend.check_photos(SessionState(), [upload(backend, photos["obama"], "me.jpg")], True).state
    calls = []

    def train(paths, out_dir, config, *, class_image_cache=None, resume=True, progress=True):
        calls.append(resume)
        assert not Path(class_image_cache).is_relative_to(backend.store.sessions_dir), "shared, not one page's"
        if resume:
            raise HeadshotLabError(
                f"{out_dir} holds a checkpoint of a different training run (photos changed).",
                fix="Use a new output folder, or start over with resume=False (--no-resume).",
                code="checkpoint_mismatch",
            )
        return workflow.IdentityResult(mode="lora", path=Path(out_dir) / "lora.safetensors", photos=1, steps=1)

    monkeypatch.setattr(workflow, "train_identity", train)
    result = backend.train_identity(state, "lora", steps=1)
    assert result.ok, result.status
    assert calls == [True, False]
    assert RETRAINED_NOTE in result.status
    assert "--no-resume" not in result.status and str(tmp_path) not in result.status


# -- 3. fairness -----------------------------------------------------------------------------------------------
def test_one_action_at_a_time_per_page(tmp_path, photos):
    backend = make_backend(tmp_path)
    initial = SessionState()  # gr.State deep-copies its initial value for every page: each still is its own page
    state, other = copy.deepcopy(initial), copy.deepcopy(initial)
    with backend.one_at_a_time(state):
        busy = backend.check_photos(state, [upload(backend, photos["obama"], "me.jpg")], True)
        assert busy.error["code"] == "busy" and "still running" in busy.status
        assert backend.check_photos(other, [upload(backend, photos["obama2"], "you.jpg")], True).ok
        assert backend.delete_my_data(state).ok  # deleting is never held up
    assert backend.check_photos(state, [upload(backend, photos["obama"], "me.jpg", "again")], True).ok


def test_a_file_that_decodes_too_slowly_is_stopped_and_refused_alone(tmp_path, photos, monkeypatch):
    monkeypatch.setenv("HEADSHOT_LAB_MAX_JPEG_SCANS", "100000")  # past the loader's scan budget: the pool must stop it
    pool = DecodePool(2, timeout_s=1.0)
    try:
        backend = make_backend(tmp_path, decoder=pool)
        bomb = jpeg_scan_bomb(2048, 4000)  # about 50 KB; tens of seconds to decode
        paths = [upload(backend, bomb, "slow.jpg"), upload(backend, photos["obama"], "me.jpg")]
        result = backend.check_photos(SessionState(), paths, True)
        assert result.ok, result.status
        slow, good = result.report["photos"]
        assert not slow["ok"] and slow["problems"][0]["code"] in {"decode_timeout", "truncated_image", "too_many_scans"}
        assert good["ok"] and result.state.uploads[1].ok
        assert pool.stats["decoded"] == 1 and pool.stats["refused"] == 1
        assert cache_files(backend) == []
        assert not any(p.name.startswith(".") for p in session_files(backend)), "a killed worker's temp file stays"
    finally:
        pool.close()


def test_a_request_of_many_slow_files_is_bounded_by_its_decode_budget(tmp_path, photos, monkeypatch):
    monkeypatch.setenv("HEADSHOT_LAB_MAX_JPEG_SCANS", "100000")  # slow files the loader lets through
    pool = DecodePool(1, timeout_s=1.0)
    try:
        backend = make_backend(tmp_path, decoder=pool)
        backend.request_budget_s = 1.5
        paths = [upload(backend, jpeg_scan_bomb(2048, 4000, grey=60 + i), f"slow{i}.jpg") for i in range(4)]
        result = backend.check_photos(SessionState(), paths, True)
        assert result.ok, result.status
        codes = [p["problems"][0]["code"] for p in result.report["photos"]]
        if codes[0] != "decode_timeout":
            pytest.skip(f"the loader refuses this slow file before decoding it ({codes[0]})")
        assert codes[-1] == "decode_budget" and "on its own" in result.report["photos"][-1]["problems"][0]["fix"]
        assert pool.stats["decoded"] + pool.stats["refused"] <= 2, "past the budget nothing more is decoded"
        assert cache_files(backend) == [] and result.state.session_id is None
    finally:
        pool.close()


def test_the_decode_pool_survives_a_killed_worker_and_runs_decodes_side_by_side(tmp_path, photos, monkeypatch):
    monkeypatch.setenv("HEADSHOT_LAB_MAX_JPEG_SCANS", "100000")  # a slow file the loader lets through
    pool = DecodePool(2, timeout_s=1.0)
    try:
        pool.warm()
        data = photos["obama"].read_bytes()
        with pytest.raises(HeadshotLabError) as info:
            pool.decode(jpeg_scan_bomb(2048, 4000), "slow.jpg", tmp_path / "slow.png")
        if info.value.code == "decode_timeout":
            assert pool.stats["timeouts"] == 1 and pool.stats["restarts"] == 1
        results: list = []
        threads = [
            threading.Thread(target=lambda i=i: results.append(pool.decode(data, "me.jpg", tmp_path / f"{i}.png")))
            for i in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert len(results) == 4 and all(r.path.is_file() and r.format == "JPEG" for r in results)
        with Image.open(results[0].path) as copy, Image.open(photos["obama"]) as original:
            assert np.array_equal(np.asarray(copy.convert("RGB")), np.asarray(original.convert("RGB")))
    finally:
        pool.close()


def test_a_decode_past_its_grace_drops_to_idle_priority_and_its_worker_is_retired(tmp_path, monkeypatch):
    from headshot_lab.ui.decode import GRACE_CPU_S

    monkeypatch.setenv("HEADSHOT_LAB_MAX_JPEG_SCANS", "100000")  # a slow file the loader lets through

    pool = DecodePool(1, timeout_s=60.0)
    try:
        pool.warm()
        decoded = pool.decode(jpeg_scan_bomb(1024, 4000), "slowish.jpg", tmp_path / "slowish.png")
        assert decoded.path.is_file() and decoded.cpu_s > 0
        if decoded.cpu_s < GRACE_CPU_S + 0.3:
            pytest.skip(f"this file decoded in {decoded.cpu_s:.2f} CPU-s here: too quick to cross the grace")
        assert pool.stats["restarts"] == 1 and pool._idle == [], "a demoted worker must not serve the next file"
        quick = pool.decode(jpeg_scan_bomb(256, 2), "quick.jpg", tmp_path / "quick.png")
        assert quick.cpu_s < GRACE_CPU_S and pool.stats["restarts"] == 1 and len(pool._idle) == 1
    finally:
        pool.close()


def test_quick_decodes_in_a_row_are_all_answered(tmp_path):
    """Each decode answers twice ("decoded", then the result); both may arrive at once and neither may be lost."""
    pool = DecodePool(1, timeout_s=5.0, wall_limit_s=5.0)
    try:
        small = io.BytesIO()
        Image.new("RGB", (8, 8), (120, 90, 80)).save(small, "PNG")
        results = [pool.decode(small.getvalue(), f"{i}.png", tmp_path / f"{i}.png") for i in range(40)]
        assert all(r.width == 8 for r in results) and pool.stats["timeouts"] == 0
    finally:
        pool.close()
