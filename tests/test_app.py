"""The app's logic without a server (headshot_lab.ui): sessions, the eight actions, privacy, the audit card.

Real photos are shrunk to 1200 px at most (quicker; faces stay above the checklist's 200-px minimum) and handed over the
way Gradio does: as files in Gradio's upload folder, which the app must delete once copied in.
"""

from __future__ import annotations

import copy
import json
import shutil
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from headshot_lab.errors import HeadshotLabError
from headshot_lab.privacy import SessionStore
from headshot_lab.ui import ACTIONS, AppBackend, SessionState, audit_batch, style_swatches
from headshot_lab.ui.state import without_path_keys

SIDE = 1200
TALL = ("obama3", "biden")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def shrink(pixels: np.ndarray, side: int = SIDE) -> np.ndarray:
    image = Image.fromarray(pixels)
    image.thumbnail((side, side))
    return np.asarray(image)


@pytest.fixture(scope="module")
def photo_files(load_real, tmp_path_factory) -> dict[str, Path]:
    """JPEGs (at most 1200 px; tall ones cropped to their top square) of three photos of one person and one of another; ``obama`` carries EXIF with GPS."""
    folder = tmp_path_factory.mktemp("photos")
    paths = {}
    for name in ("obama", "obama2", "obama3", "biden"):
        pixels = load_real(name)
        if name in TALL:  # full-length portraits: keep the top square (the face is there), then shrink
            pixels = pixels[: pixels.shape[1]]
        image = Image.fromarray(shrink(pixels))
        exif = Image.Exif()
        if name == "obama":
            exif[0x010F] = "PhoneMaker"  # Make
            exif[0x8825] = {1: "N", 2: (52.0, 31.0, 12.0)}  # GPS IFD: latitude
        image.save(folder / f"{name}.jpg", "JPEG", quality=92, exif=exif)
        paths[name] = folder / f"{name}.jpg"
    return paths


def make_backend(root: Path, clock=None) -> AppBackend:
    gradio = root / "gradio"
    gradio.mkdir(parents=True, exist_ok=True)
    store = SessionStore(root / "data", ttl_hours=24, clock=clock or FakeClock())
    return AppBackend(store, publish_root=gradio / "published", upload_root=gradio, upload_registry=set())


def upload(backend: AppBackend, path: Path, name: str | None = None, folder: str | None = None) -> str:
    """Put a file where Gradio puts uploads (its own sub-folder, ``folder`` or a new one); return that path.

    The path is registered as an upload, as Gradio's upload route does (``Blocks.upload_file_set``).
    """
    where = backend.upload_root / (folder or f"upload-{len(list(backend.upload_root.iterdir()))}")
    where.mkdir(exist_ok=True)
    target = where / (name or path.name)
    shutil.copyfile(path, target)
    backend.upload_registry.add(str(target))
    return str(target)


def session_files(backend: AppBackend) -> list[Path]:
    return [p for p in backend.store.sessions_dir.rglob("*") if p.is_file()]


@pytest.fixture(scope="module")
def retouched(tmp_path_factory, photo_files):
    """One session after check (2 photos of one person) and retouch: ``(backend, state)``."""
    backend = make_backend(tmp_path_factory.mktemp("app"))
    files = [upload(backend, photo_files[n]) for n in ("obama", "obama2")]
    checked = backend.check_photos(SessionState(), files, True)
    assert checked.ok, checked.status
    result = backend.retouch(checked.state, "corporate")
    assert result.ok, result.status
    return backend, result.state


# -- 1. upload & check ----------------------------------------------------------------------------------
def test_check_needs_consent_and_keeps_nothing_without_it(tmp_path, photo_files):
    backend = make_backend(tmp_path)
    path = upload(backend, photo_files["obama"])
    result = backend.check_photos(SessionState(), [path], False)
    assert result.error["code"] == "consent_required"
    assert "consent" in result.status.lower()
    assert result.state.session_id is None
    assert not backend.store.sessions_dir.exists() or not any(backend.store.sessions_dir.iterdir())
    assert not Path(path).exists(), "Gradio's copy of an upload without consent must be deleted"


@pytest.mark.parametrize("count", [0, 21])
def test_check_refuses_a_wrong_number_of_photos(tmp_path, photo_files, count):
    backend = make_backend(tmp_path)
    files = [str(photo_files["obama"])] * count
    result = backend.check_photos(SessionState(), files, True)
    assert result.error["code"] == "photo_count"
    assert f"you uploaded {count}" in result.status


def test_check_copies_pixels_only_reports_bad_files_and_deletes_gradio_copies(tmp_path, photo_files):
    backend = make_backend(tmp_path)
    text = tmp_path / "holiday.jpg"
    text.write_text("not a photo at all, just words")
    files = [upload(backend, photo_files["obama"]), upload(backend, photo_files["obama2"]), upload(backend, text)]
    result = backend.check_photos(SessionState(), files, True)
    assert result.ok, result.status
    state = result.state
    assert state.session_id and [item.name for item in state.uploads] == ["obama.jpg", "obama2.jpg", "holiday.jpg"]
    assert [item.ok for item in state.uploads] == [True, True, False], result.status
    # The bad file: the checklist's own message and fix, in the table and next to its thumbnail.
    bad = next(p for p in result.report["photos"] if p["name"] == "holiday.jpg")
    problem = bad["problems"][0]
    assert problem["code"] == "not_an_image" and "text file" in problem["message"]
    assert problem["message"] in result.status and problem["fix"] in result.status
    assert problem["message"] in result.gallery[2][1]
    assert result.gallery[0][1].startswith("✓")
    # Gradio's upload copies are gone; the session copies carry no EXIF (no GPS) and the same pixels.
    assert not any(Path(f).exists() for f in files)
    session = backend.store.get_session(state.session_id)
    copy_path = Path(state.uploads[0].path)
    assert copy_path.parent == session.uploads
    with Image.open(copy_path) as copied, Image.open(photo_files["obama"]) as original:
        assert original.getexif().get(0x8825) is not None
        assert not copied.getexif() and "exif" not in copied.info
        assert np.array_equal(np.asarray(copied.convert("RGB")), np.asarray(original.convert("RGB")))
    # Thumbnails are published copies inside the publish folder, never session paths; nothing of the refused
    # file is kept (it is shown as the shared "refused" tile).
    for path, _caption in result.gallery[:2]:
        assert Path(path).is_relative_to(backend.publish_dir(state.session_id))
    assert Path(result.gallery[2][0]) == Path(backend.refused_tile())
    assert not any("holiday" in p.name for p in session_files(backend)), "a refused file must leave no copy"
    # JSON for gradio_client: no "path" keys (it would try to download them), no server paths.
    assert "path" not in json.dumps(result.report) and str(tmp_path) not in json.dumps(result.report)


def test_an_animated_upload_keeps_its_first_frame_and_says_so(tmp_path, photo_files):
    backend = make_backend(tmp_path)
    first = Image.open(photo_files["obama"]).convert("RGB")
    animation = tmp_path / "wave.gif"
    first.save(animation, save_all=True, append_images=[first.rotate(10), first.rotate(20)], duration=100, loop=0)
    files = [upload(backend, animation), upload(backend, photo_files["obama2"])]
    result = backend.check_photos(SessionState(), files, True)
    assert result.ok, result.status
    photo = next(p for p in result.report["photos"] if p["name"] == "wave.gif")
    codes = [problem["code"] for problem in photo["problems"]]
    assert codes.count("animated") == 1 and "3 frames" in photo["problems"][codes.index("animated")]["message"]
    assert photo["ok"] and result.state.uploads[0].ok  # a warning: the first frame is still usable
    assert Image.open(result.state.uploads[0].path).format == "PNG"  # the session keeps one still frame
    other = next(p for p in result.report["photos"] if p["name"] == "obama2.jpg")
    assert "animated" not in [problem["code"] for problem in other["problems"]]
    assert "3 frames" in result.status


def test_resubmitting_the_same_uploads_reuses_them_and_removed_ones_leave(tmp_path, photo_files):
    backend = make_backend(tmp_path)
    files = [upload(backend, photo_files["obama"]), upload(backend, photo_files["obama2"])]
    first = backend.check_photos(SessionState(), files, True)
    kept = Path(first.state.uploads[0].path)
    dropped = Path(first.state.uploads[1].path)
    second = backend.check_photos(first.state, files[:1], True)  # the second photo was removed in the uploader
    assert second.ok, second.status
    assert [item.name for item in second.state.uploads] == ["obama.jpg"]
    assert kept.is_file() and not dropped.exists()


def test_photos_with_the_same_stem_stay_apart(tmp_path, photo_files):
    backend = make_backend(tmp_path)
    png = tmp_path / "obama.png"
    Image.open(photo_files["obama2"]).save(png)
    result = backend.check_photos(SessionState(), [upload(backend, photo_files["obama"]), upload(backend, png)], True)
    assert [item.name for item in result.state.uploads] == ["obama.jpg", "obama-2.png"]
    copies = {Path(item.path) for item in result.state.uploads}
    assert len(copies) == 2 and all(path.is_file() for path in copies)
    assert len({path for path, _ in result.gallery}) == 2


# -- 2-3. identity and generation -----------------------------------------------------------------------
def test_generate_without_a_base_model_says_so_and_offers_retouch(retouched, monkeypatch):
    backend, state = retouched
    monkeypatch.delenv("HEADSHOT_LAB_BASE_MODEL", raising=False)
    result = backend.generate(copy.deepcopy(state), "corporate", 2)
    assert result.error["code"] == "model_unavailable"
    assert "HEADSHOT_LAB_BASE_MODEL" in result.status and "retouch" in result.status.lower()
    trained = backend.train_identity(copy.deepcopy(state), "lora", 2)
    assert trained.error["code"] == "model_unavailable" and "HEADSHOT_LAB_BASE_MODEL" in trained.status


def test_tuning_free_mode_without_the_insightface_pack_names_the_setting(retouched, monkeypatch):
    backend, state = retouched
    monkeypatch.delenv("HEADSHOT_LAB_INSIGHTFACE_DIR", raising=False)
    result = backend.train_identity(copy.deepcopy(state), "faceid")
    assert result.error["code"] == "model_unavailable"
    assert "HEADSHOT_LAB_INSIGHTFACE_DIR" in result.status


def test_train_and_generate_on_the_tiny_model(tmp_path, photo_files, monkeypatch):
    import torch

    from headshot_lab.provenance import read_provenance
    from headshot_lab.testing.tiny import tiny_pipeline

    monkeypatch.setenv("HEADSHOT_LAB_BASE_MODEL", str(tiny_pipeline("sd15", tmp_path / "tiny")))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        backend = make_backend(tmp_path)
        state = backend.check_photos(SessionState(), [upload(backend, photo_files["obama"])], True).state
        before = backend.generate(copy.deepcopy(state), "corporate", 1)
        assert before.error["code"] == "no_identity"
        trained = backend.train_identity(state, "lora", 2, 4, False, 0)
        assert trained.ok, trained.status
        lora = Path(trained.state.identity["path"])
        assert lora.is_file() and lora.is_relative_to(backend.store.sessions_dir)
        result = backend.generate(trained.state, "corporate", 2, 7, "none", "", "", 2)
    finally:
        torch.set_num_threads(threads)
    assert result.ok, result.status
    generated = [item for item in result.state.outputs if item.kind == "generated"]
    assert len(generated) == 2 and len(result.gallery) == 2
    assert [r["seed"] for r in result.report["records"]] == [7, 8]
    for item in generated:  # labelled in place, pixels untouched (PNG is lossless)
        assert read_provenance(item.path, c2pa=False)["kind"] == "generated"
    pose = backend.generate(result.state, "corporate", 1, 0, "pose", "", "", 2)
    assert pose.error["code"] == "controlnet_missing"
    from headshot_lab.ui.formatting import split_for_visitor

    for done in (trained, result):  # plain words and the next step; the technical details go to the operator
        visitor, operator = split_for_visitor(done.status, done.error)
        assert "**Next:**" in visitor and not [w for w in OPERATOR_WORDS if w in visitor], visitor
        assert operator
    assert "LoRA rank 4" in split_for_visitor(trained.status)[1]


# -- 3-4. retouch, select, export -------------------------------------------------------------------
def test_retouch_labels_each_output_and_remembers_its_source(retouched):
    from headshot_lab.provenance import read_provenance

    _backend, state = retouched
    outputs = [item for item in state.outputs if item.kind == "retouched"]
    assert [item.source for item in outputs] == ["obama.jpg", "obama2.jpg"]
    for item in outputs:
        assert read_provenance(item.path, c2pa=False)["kind"] == "retouched"


def test_select_then_export_writes_labelled_files_and_a_byte_exact_zip(retouched):
    from headshot_lab.provenance import read_provenance

    backend, state = retouched
    selected = backend.select(copy.deepcopy(state), 5)
    assert selected.ok, selected.status
    assert sorted(selected.choices) == sorted(item.name for item in state.outputs)
    assert selected.picks and set(selected.picks) <= set(selected.choices)
    assert len(selected.gallery) == len(state.outputs)
    # Best first: the gallery (and the choices, in its order) by rank, each caption saying whether it is picked.
    ranks = [int(caption.split("#")[1].split()[0]) for _, caption in selected.gallery if "#" in caption]
    assert ranks == sorted(ranks) and ranks[:1] == [1]
    for name, (_, caption) in zip(selected.choices, selected.gallery, strict=False):
        assert caption.startswith("✓ picked · " if name in selected.picks else "click to pick · ")
        assert "#" in caption or "✗" in caption

    exported = backend.export(selected.state, selected.picks[:2], ["square", "banner"], "png", False)
    assert exported.ok, exported.status
    assert len(exported.files) == 4
    session = backend.store.get_session(state.session_id)
    zip_in_session = next(session.outputs.rglob("headshots.zip"))
    assert Path(exported.download).read_bytes() == zip_in_session.read_bytes()  # served as written
    with zipfile.ZipFile(exported.download) as archive:
        assert sorted(archive.namelist()) == sorted(Path(f).name for f in exported.files)
        for name in archive.namelist():
            extracted = session.cache / "unzipped" / name
            extracted.parent.mkdir(parents=True, exist_ok=True)
            extracted.write_bytes(archive.read(name))
            provenance = read_provenance(extracted, c2pa=False)
            assert provenance["kind"] == "retouched" and "AI-edited" in provenance["disclosure"]


def test_export_team_mode_scores_consistency(retouched):
    backend, state = retouched
    names = [item.name for item in state.outputs]
    result = backend.export(copy.deepcopy(state), names, ["square"], "jpeg", True)
    assert result.ok, result.status
    (entry,) = result.report["team_consistency"]
    assert 0.0 <= entry["score"] <= 1.0 and "Team consistency" in result.status
    assert len(result.files) == len(names)


def test_export_refuses_names_that_are_not_this_sessions(retouched, tmp_path, photo_files):
    backend, state = retouched
    other = make_backend(tmp_path)
    other_state = other.check_photos(SessionState(), [upload(other, photo_files["biden"])], True).state
    for pick in (state.outputs[0].name, state.outputs[0].path, "../" * 6 + "etc/passwd"):
        result = other.export(copy.deepcopy(other_state), [pick], ["square"], "jpeg", False)
        assert result.error["code"] in {"unknown_pick", "no_outputs"}
    mine = backend.export(copy.deepcopy(state), ["not-there.png"], ["square"], "jpeg", False)
    assert mine.error["code"] == "unknown_pick"
    crops = backend.export(copy.deepcopy(state), [state.outputs[0].name], ["poster"], "jpeg", False)
    assert crops.error["code"] == "unknown_crop" and "square" in crops.status


def test_publish_refuses_files_outside_the_session(retouched, tmp_path):
    backend, state = retouched
    session = backend.store.get_session(state.session_id)
    outside = tmp_path / "elsewhere.png"
    outside.write_bytes(b"x")
    with pytest.raises((HeadshotLabError, ValueError)):
        backend.publish(session, outside)
    with pytest.raises((HeadshotLabError, ValueError)):
        backend.publish(session, session.root / ".." / "elsewhere.png")


# -- 5. audit --------------------------------------------------------------------------------------------
def test_audit_of_the_session_batch(retouched):
    backend, state = retouched
    result = backend.audit(copy.deepcopy(state))
    assert result.ok, result.status
    card = result.report
    assert card["group"].startswith("ITA group") and "dlib" in card["encoder"]
    assert [row["source"] for row in card["images"]] == ["obama.jpg", "obama2.jpg"]
    assert all(row["face_found"] for row in card["images"])
    # The retouch locks skin tone: every ΔITA is small; the card states the flags and the group.
    assert all(abs(row["skin_delta_ita"]) < 1.5 for row in card["images"])
    assert "skin_lightening" not in card["flags"] and "skin_darkening" not in card["flags"]
    assert "## Audit card" in result.status and card["group"] in result.status
    assert result.gallery and all(Path(path).suffix == ".png" and Path(path).is_file() for path, _ in result.gallery)


def test_the_audit_reads_retouched_skin_as_photographed(tmp_path):
    """A retouch puts the photo on a new backdrop: on this face-filling real portrait the photo hash still calls
    it the same scene, and light-matching on the new backdrop read ΔITA ≈ +100° (ΔE00 0.16); retouched outputs
    are compared as photographed (tests/test_audit_new_scene.py)."""
    from headshot_lab.testing.team_roster import ordered_faces, portrait

    face = next(f for f in ordered_faces() if f.person == "feat_f15")
    backend = make_backend(tmp_path / "app")
    checked = backend.check_photos(SessionState(), [upload(backend, portrait(face, tmp_path / "me.jpg"))], True)
    retouched = backend.retouch(checked.state, "corporate")
    assert retouched.ok, retouched.status
    card = backend.audit(retouched.state).report
    assert [row["skin_measure"] for row in card["images"]] == ["as photographed"]
    assert abs(card["images"][0]["skin_delta_ita"]) < 3.0 and card["images"][0]["skin_delta_e2000"] < 1.0


@pytest.fixture(scope="module")
def faces(photo_files):
    """``{name: (pixels, skin mask)}`` of the three photos of one person, at most 640 px."""
    from headshot_lab.faces.mesh import face_mesh
    from headshot_lab.io import load_rgb
    from headshot_lab.skin import skin_mask

    found = {}
    for name in ("obama", "obama2", "obama3"):
        pixels = shrink(load_rgb(photo_files[name], min_side=0), 640)  # the audit needs no more
        found[name] = (pixels, skin_mask(pixels, face_mesh(pixels, max_faces=1)[0]))
    return found


@pytest.fixture(scope="module")
def five_faces(faces):
    """Five source photos (the three real ones and two mirrored): enough clusters for a verdict (at least 4).

    Mirrored copies are not independent people; here they only give the paired design five sources.
    """
    found = dict(faces)
    for name in ("obama", "obama2"):
        pixels, mask = faces[name]
        found[f"{name}_mirrored"] = (np.ascontiguousarray(pixels[:, ::-1]), np.ascontiguousarray(mask[:, ::-1]))
    return found


def test_audit_batch_catches_planted_lightening_and_not_the_null(five_faces, tmp_path):
    from headshot_lab.skin import relight, shift_ita

    faces = five_faces
    references = {f"{n}.png": pixels for n, (pixels, _) in faces.items()}
    # +6° of the skin in the photo's own colours: the headline (same scene: light-matched) reads it at full size
    lightened = {f"{n}_out.png": shift_ita(pixels, mask, 6.0) for n, (pixels, mask) in faces.items()}
    identical = {f"{n}_out.png": pixels.copy() for n, (pixels, _) in faces.items()}
    sources = {f"{n}_out.png": f"{n}.png" for n in faces}

    planted = audit_batch(references, lightened, sources=sources, out_dir=tmp_path / "planted", n_resamples=300)
    shifts = [row["skin_delta_ita"] for row in planted.images]
    assert all(row["skin_measure"] == "light-matched" for row in planted.images)
    assert all(4.5 < shift < 7.5 for shift in shifts), shifts
    assert "skin_lightening" in planted.flags, (planted.verdicts, planted.results["runs"][0]["evidence"])
    # a pure light change (darker, warmer) of every photo is not a change of skin: no tone flag
    relit = {f"{n}_out.png": relight(pixels, 0.8, 4500) for n, (pixels, _) in faces.items()}
    light_only = audit_batch(references, relit, sources=sources, n_resamples=300)
    assert not {"skin_lightening", "skin_darkening"} & set(light_only.flags), light_only.verdicts["skin_delta_ita"]
    assert all(abs(row["skin_delta_ita"]) < 2.5 < abs(row["skin_delta_ita_photographed"]) for row in light_only.images)
    assert (tmp_path / "planted" / "report.md").read_text(encoding="utf-8") == planted.markdown
    assert json.loads((tmp_path / "planted" / "results.json").read_text())["runs"][0]["flags"] == planted.flags
    assert {p.name for p in planted.plots} >= {"delta_ita_by_group.png", "identity_by_group.png"}

    assert planted.verdicts["skin_delta_ita"]["status"] == "flag"
    assert planted.markdown.index("lighter") < planted.markdown.index("**Flags:**")  # plain words first

    null = audit_batch(references, identical, sources=sources, n_resamples=300)
    assert null.flags == []
    assert all(row["skin_delta_ita"] == 0.0 and row["identity_delta"] == 0.0 for row in null.images)
    assert null.plots == []

    # Two sources are too few to tell either way: no flag, and the card says so.
    two = {k: v for k, v in lightened.items() if k.startswith(("obama_out", "obama2_out"))}
    small = audit_batch(references, two, sources=sources, n_resamples=300)
    assert small.flags == []
    assert small.verdicts["skin_delta_ita"]["status"] == "not_enough_to_tell"
    assert "Not enough" in small.markdown


def test_audit_batch_needs_a_measurable_reference(faces):
    pixels = faces["obama"][0]
    blank = np.full_like(pixels, 128)
    with pytest.raises(HeadshotLabError) as info:
        audit_batch({"wall.png": blank}, {"out.png": pixels})
    assert info.value.code == "no_reference"
    with pytest.raises(HeadshotLabError) as info:
        audit_batch({"me.png": pixels}, {})
    assert info.value.code == "no_outputs"


# -- privacy ---------------------------------------------------------------------------------------------
def test_delete_my_data_removes_session_published_copies_and_pending_uploads(tmp_path, photo_files):
    backend = make_backend(tmp_path)
    retouched_state = backend.check_photos(SessionState(), [upload(backend, photo_files["obama"])], True).state
    session_id = retouched_state.session_id
    published = backend.publish_dir(session_id)
    assert published.is_dir() and session_files(backend)
    pending = upload(backend, photo_files["obama2"])  # uploaded but never checked
    result = backend.delete_my_data(retouched_state, [pending])
    assert result.ok and "Deleted" in result.status and result.report["files"] > 0
    assert result.state == SessionState()
    assert not session_files(backend) and not published.exists() and not Path(pending).exists()
    log = backend.store.read_deletion_log()
    assert log[-1]["reason"] == "user" and session_id not in json.dumps(log)
    again = backend.select(result.state)
    assert again.error["code"] == "no_session"


def test_closing_the_page_deletes_the_session(tmp_path, photo_files):
    backend = make_backend(tmp_path)
    state = backend.check_photos(SessionState(), [upload(backend, photo_files["obama"])], True).state
    backend.forget(state)  # what gr.State's delete_callback calls
    assert not session_files(backend) and not backend.publish_dir(state.session_id).exists()
    assert backend.store.read_deletion_log()[-1]["reason"] == "orphan"


def test_an_expired_session_is_purged_and_said_so(tmp_path, photo_files):
    clock = FakeClock()
    backend = make_backend(tmp_path, clock)
    state = backend.check_photos(SessionState(), [upload(backend, photo_files["obama"])], True).state
    state_id = state.session_id
    assert backend.publish_dir(state_id).is_dir()
    clock.now += 25 * 3600
    result = backend.retouch(state, "corporate")
    assert result.error["code"] == "session_not_found"
    assert result.state.session_id is None and result.state.uploads == []
    assert not session_files(backend) and not backend.publish_dir(state_id).exists()


def test_purge_loop_starts_once_and_orphaned_copies_go(tmp_path):
    backend = make_backend(tmp_path)
    loop = backend.start(interval_s=3600)
    try:
        assert loop.running and backend.start(interval_s=3600) is loop
        orphan = backend.publish_root / ("0" * 32)
        orphan.mkdir(parents=True)
        (orphan / "x.png").write_bytes(b"x")
        import os

        os.utime(orphan, (0, 0))
        stray = backend.upload_root / "tmpab12cd"  # what gr.File leaves behind on every call: empty
        stray.touch()
        os.utime(stray, (0, 0))
        kept = backend.upload_root / "tmpnotempty"
        kept.write_bytes(b"x")
        os.utime(kept, (0, 0))
        assert backend.remove_orphaned_copies() == 1 and not orphan.exists()
        assert not stray.exists() and kept.exists()
    finally:
        backend.stop()
    assert not loop.running


def test_a_bug_becomes_a_status_not_a_crash(retouched, monkeypatch):
    import headshot_lab.select

    backend, state = retouched

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(headshot_lab.select, "select_candidates", broken)
    result = backend.select(copy.deepcopy(state), 5)
    assert result.error["code"] == "internal_error" and "RuntimeError" in result.status


# -- small pieces -----------------------------------------------------------------------------------------
def test_without_path_keys_renames_nested_keys_only():
    payload = {"path": "a.jpg", "photos": [{"path": "b.jpg", "box": [1, 2]}], "paths": 3}
    assert without_path_keys(payload) == {"name": "a.jpg", "photos": [{"name": "b.jpg", "box": [1, 2]}], "paths": 3}


def test_style_swatches_show_each_styles_backdrop():
    from headshot_lab.styles import list_styles, load_style

    swatches = style_swatches()
    assert [caption.split(":")[0] for _, caption in swatches] == list_styles()
    for (pixels, _), name in zip(swatches, list_styles(), strict=True):
        bottom = tuple(int(v) for v in pixels[-1, -1])
        style = load_style(name)
        assert bottom == tuple(style.backdrop.gradient_to or style.backdrop.color)


def test_action_names_are_the_api_names():
    assert ACTIONS == (
        "check_photos", "train_identity", "generate", "preview", "retouch", "select", "export", "audit",
        "delete_my_data",
    )  # fmt: skip
    for name in ACTIONS:
        assert callable(getattr(AppBackend, name))


def test_gpu_wrapper_is_a_no_op_off_zero_gpu(monkeypatch):
    from headshot_lab import spaces_compat

    def work(x):
        return x + 1

    monkeypatch.delenv(spaces_compat.ZERO_GPU_ENV, raising=False)
    assert spaces_compat.gpu(work) is work and spaces_compat.gpu(duration=60)(work) is work

    calls = []
    fake = types.ModuleType("spaces")

    def GPU(fn=None, duration=None):
        calls.append(duration)
        return (lambda f: f) if fn is None else fn

    fake.GPU = GPU
    monkeypatch.setitem(sys.modules, "spaces", fake)
    monkeypatch.setenv(spaces_compat.ZERO_GPU_ENV, "true")
    spaces_compat.gpu(work)
    spaces_compat.gpu(duration=120)(work)
    assert calls == [None, 120]
    monkeypatch.setitem(sys.modules, "spaces", None)  # not installed: still a no-op
    assert spaces_compat.gpu(work) is work


def test_cli_audit_batch_and_delete_session(faces, tmp_path, capsys):
    from headshot_lab.skin import shift_ita
    from headshot_lab.ui.cli import main

    refs, outs = tmp_path / "refs", tmp_path / "outs"
    refs.mkdir()
    outs.mkdir()
    for name in ("obama", "obama2"):
        pixels, mask = faces[name]
        Image.fromarray(pixels).save(refs / f"{name}.png")
        Image.fromarray(shift_ita(pixels, mask, -6.0)).save(outs / f"{name}_studio.png")
    code = main(
        ["audit-batch", str(outs), "--reference", str(refs), "--paired", "--out", str(tmp_path / "card"), "--json"]
    )
    assert code == 0
    card = json.loads(capsys.readouterr().out)
    assert card["flags"] == []  # two photos: not enough to tell, and the card says so
    assert card["verdicts"]["skin_delta_ita"]["status"] == "not_enough_to_tell"
    assert {row["name"]: row["source"] for row in card["images"]} == {
        "obama_studio.png": "obama.png",
        "obama2_studio.png": "obama2.png",
    }

    store = SessionStore(tmp_path / "data", ttl_hours=1)
    session = store.create_session()
    (session.uploads / "me.png").write_bytes(b"pixels")
    assert main(["delete-session", session.id, "--data-dir", str(tmp_path / "data"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["files"] >= 2 and not session.root.exists()
    assert main(["delete-session", "../../etc", "--data-dir", str(tmp_path / "data")]) == 1
    assert "not a valid session id" in capsys.readouterr().err


def test_uploaded_bytes_are_never_echoed_as_paths(retouched):
    backend, state = retouched
    result = backend.select(copy.deepcopy(state), 5)
    text = json.dumps(result.report) + result.status + "".join(caption for _, caption in result.gallery)
    assert str(backend.store.data_dir) not in text and state.session_id not in text


# -- words for visitors, a page that guides --------------------------------------------------------------
OPERATOR_WORDS = ("HEADSHOT_LAB_", "tiny-model", "8-bit Adam", "IPTC", "ArcFace", "--", "python -m", "encoder")


def test_a_model_error_reads_plainly_and_keeps_its_details_for_the_operator(retouched, monkeypatch):
    from headshot_lab.ui.formatting import split_for_visitor

    monkeypatch.delenv("HEADSHOT_LAB_BASE_MODEL", raising=False)
    backend, state = retouched
    result = backend.generate(copy.deepcopy(state), "corporate", 1)
    visitor, operator = split_for_visitor(result.status, result.error)
    assert not [word for word in OPERATOR_WORDS if word in visitor], visitor
    assert "retouch" in visitor.lower() and "not set up" in visitor
    assert "HEADSHOT_LAB_BASE_MODEL" in operator and "tiny-model" in operator


def test_split_moves_only_lines_that_name_settings_commands_or_libraries():
    from headshot_lab.ui.formatting import OPERATOR_MARK, split_for_visitor

    status = (
        "✓ Your likeness is learned.\n- 8-bit Adam needs a CUDA GPU; used torch AdamW instead.\n"
        "| photo | result |\n|---|---|\n| me.jpg | ok |" + OPERATOR_MARK + "- LoRA rank 16"
    )
    visitor, operator = split_for_visitor(status)
    assert visitor == "✓ Your likeness is learned.\n| photo | result |\n|---|---|\n| me.jpg | ok |"
    assert "8-bit Adam" in operator and "LoRA rank 16" in operator
    plain = "⚠ **Your photo is blurry.**\n\nHold the phone steady."
    assert split_for_visitor(plain, {"code": "blurry"}) == (plain, "")  # nothing to move: unchanged
    only_settings = "⚠️ **Set HEADSHOT_LAB_C2PA_CERT.**"
    visitor, operator = split_for_visitor(only_settings, {"code": "other"})
    assert "HEADSHOT_LAB" not in visitor and "For the operator" in visitor and "HEADSHOT_LAB_C2PA_CERT" in operator


def test_every_step_of_the_flow_says_what_to_do_next_in_plain_words(retouched):
    from headshot_lab.ui.formatting import split_for_visitor

    backend, state = retouched
    state = copy.deepcopy(state)
    selected = backend.select(state, 5)
    exported = backend.export(selected.state, selected.picks[:1], ["square", "circle"], "jpeg", False)
    audited = backend.audit(exported.state)
    for result in (selected, exported, audited):
        assert result.ok, result.status
        visitor, _ = split_for_visitor(result.status, result.error)
        assert "**Next:**" in visitor
        lines = [line for line in visitor.split("\n") if not line.startswith("|") and "data:image" not in line]
        assert not [w for w in OPERATOR_WORDS if any(w in line for line in lines)], visitor[:2000]


def test_export_notes_sit_next_to_each_file_and_the_circle_is_a_png(retouched):
    backend, state = retouched
    name = state.outputs[0].name
    result = backend.export(copy.deepcopy(state), [name], ["square", "circle"], "jpeg", False)
    assert result.ok, result.status
    circle = next(path for path in result.files if "circle" in Path(path).name)
    assert Path(circle).suffix == ".png"
    with Image.open(circle) as image:
        assert image.mode == "RGBA" and image.getchannel("A").getextrema() == (0, 255)
    captions = dict((Path(path).name, caption) for path, caption in result.gallery)
    assert "saved as PNG: round" in captions[Path(circle).name]
    assert "JPEG cannot be see-through" in result.status
    assert Path(circle).name in result.status and "Saved as PNG" in result.status  # the table row holds the note
    assert result.report["file_notes"][Path(circle).name]


def test_audit_card_embeds_its_plots_and_names_them_plainly(retouched):
    backend, state = retouched
    result = backend.audit(copy.deepcopy(state))
    assert result.ok, result.status
    assert "](delta_ita_by_group.png)" not in result.status  # no link to a file the page does not serve
    assert result.status.count("data:image/png;base64,") == len(result.gallery) > 0
    captions = [caption for _, caption in result.gallery]
    assert "Skin tone change (+ = lighter), with its 95 % range" in captions
    assert not [c for c in captions if "_" in c]
    from headshot_lab.audit.plots import GROUP_METRICS, PLOT_TITLES

    assert {metric for metric, *_ in GROUP_METRICS} <= set(PLOT_TITLES)  # the titles inside the plots, too
    assert not [title for title in PLOT_TITLES.values() if "_" in title]


def test_capture_examples_are_drawn_distinct_and_captioned():
    from headshot_lab.ui.formatting import CAPTURE_EXAMPLES, CAPTURE_GUIDANCE, capture_examples

    examples = capture_examples((60, 72))
    assert len(examples) == len(CAPTURE_EXAMPLES) == 7
    for (pixels, caption), (_, expected) in zip(examples, CAPTURE_EXAMPLES, strict=True):
        assert pixels.shape == (72, 60, 3) and pixels.dtype == np.uint8 and caption == expected
    arrays = [pixels.astype(int) for pixels, _ in examples]
    for i, a in enumerate(arrays):  # each drawing shows something different
        for b in arrays[i + 1 :]:
            assert np.abs(a - b).mean() > 2
    assert sum(caption.startswith("✓") for _, caption in examples) == 2
    for words in ("15–20 recent photos", "angles", "sunglasses", "No filters", "neutral expression"):
        assert words in CAPTURE_GUIDANCE


def test_next_step_after_the_checklist_depends_on_what_passed():
    from headshot_lab.ui.formatting import NEXT_STEPS, next_step

    assert next_step("check", usable=3, total=3, model=True) == NEXT_STEPS["check_ready"]
    assert next_step("check", usable=3, total=3, model=False) == NEXT_STEPS["check_retouch"]
    assert next_step("check", usable=2, total=3, model=True) == NEXT_STEPS["check_retouch"]
    assert next_step("check", usable=0, total=3, model=True) == NEXT_STEPS["check_fix"]


@pytest.fixture()
def app_module(tmp_path, monkeypatch):
    """``app`` imported with its data and Gradio's cache in a temp dir (the import builds the default page)."""
    import importlib

    monkeypatch.setenv("HEADSHOT_LAB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "data" / "gradio"))
    return importlib.import_module("app")


def test_a_click_on_a_headshot_toggles_its_pick_and_caption(app_module):
    app = app_module
    shown = ["a.png", "b.png"]
    gallery = [("/x/a.png", "✓ picked · #1 · likeness 0.90"), ("/x/b.png", "click to pick · #2 · likeness 0.80")]

    def click(index, picks):
        event = types.SimpleNamespace(index=index)
        chosen, items = app.toggle_pick(shown, picks, gallery, event)
        return chosen, [caption for _, caption in items]

    picks, captions = click(1, ["a.png"])
    assert picks == ["a.png", "b.png"] and captions[1].startswith("✓ picked · #2")
    picks, captions = click(0, ["a.png"])
    assert picks == [] and captions[0] == "click to pick · #1 · likeness 0.90"


def test_without_a_model_learn_and_generate_are_off_with_a_reason(app_module, monkeypatch, tmp_path):
    app = app_module

    monkeypatch.delenv("HEADSHOT_LAB_BASE_MODEL", raising=False)
    demo = app.build_demo(make_backend(tmp_path))
    by_id = {getattr(block, "elem_id", None): block for block in demo.blocks.values()}
    assert by_id["train"].interactive is False and by_id["generate"].interactive is False
    assert by_id["retouch"].interactive is not False
    reason = by_id["train-off"].value
    assert "studio retouch" in reason and "HEADSHOT_LAB" not in reason
    assert "HEADSHOT_LAB_BASE_MODEL" in by_id["operator-setup"].value  # the setting, for the operator


def test_with_a_model_learn_and_generate_are_on(app_module, monkeypatch, tmp_path):
    import headshot_lab.models

    app = app_module

    monkeypatch.setattr(headshot_lab.models, "resolve_base", lambda *a, **k: "some/model")
    demo = app.build_demo(make_backend(tmp_path))
    by_id = {getattr(block, "elem_id", None): block for block in demo.blocks.values()}
    assert by_id["train"].interactive is not False and by_id["generate"].interactive is not False
    assert "train-off" not in by_id
