"""The service layer (headshot_lab.workflow): the app and the command line do the same thing for one action.

* Disclosure is written where images are made: ``headshot-lab generate`` (a real subprocess on a tiny model built
  with ``headshot-lab tiny-model``), ``generate()`` and the app all write IPTC ``trainedAlgorithmicMedia``.
* The app's Generate button and ``headshot-lab generate`` make the same pixels with the same label for one request.
* ``delete-session`` and "Delete my data now" remove the same things: the session folder and its published copies.
* Team export and the FaceID identity have a library function and a command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from headshot_lab import workflow
from headshot_lab.errors import HeadshotLabError
from headshot_lab.privacy import SessionStore
from headshot_lab.provenance import DIGITAL_SOURCE_TYPES, read_provenance

ROOT = Path(__file__).resolve().parents[1]
TRAINED = DIGITAL_SOURCE_TYPES["generated"]
COMPOSITE = DIGITAL_SOURCE_TYPES["retouched"]
STEPS = "2"


def command(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m headshot_lab ARGS`` in a fresh process importing *this* tree (PYTHONPATH), offline."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HEADSHOT_LAB_C2PA")}
    environment.update(
        PYTHONPATH=os.pathsep.join([str(ROOT), environment.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS="1",
        **(env or {}),
    )
    return subprocess.run(
        [sys.executable, "-m", "headshot_lab", *args], capture_output=True, text=True, env=environment, timeout=600
    )


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A tiny random SD1.5 base, written by the ``headshot-lab tiny-model`` command."""
    out = tmp_path_factory.mktemp("tiny") / "sd15"
    done = command("tiny-model", str(out), "--arch", "sd15")
    assert done.returncode == 0, done.stderr
    assert Path(json.loads(done.stdout)["path"]) == out
    return out


@pytest.fixture(scope="module")
def lora(tiny, tmp_path_factory) -> Path:
    from headshot_lab.testing.tiny import tiny_lora

    return tiny_lora(tiny, tmp_path_factory.mktemp("lora"))


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


# -- disclosure where images are made ----------------------------------------------------------------------------
def test_generate_command_output_reads_trained_algorithmic_media(tiny, tmp_path):
    out = tmp_path / "gen"
    done = command("generate", "--base", str(tiny), "--style", "office", "-n", "2", "--seed", "1",
                   "--steps", STEPS, "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    images = [Path(p) for p in json.loads(done.stdout)["images"]]
    assert len(images) == 2
    read = command("provenance", str(images[0]), "--json")  # the command a person would run on the file
    assert read.returncode == 0, read.stderr
    info = json.loads(read.stdout)
    assert info["digital_source_type"] == TRAINED and info["kind"] == "generated"
    assert "AI-generated" in info["disclosure"]
    assert read_provenance(images[1], c2pa=False) == {**info, "c2pa": None}  # every file, not just the first
    # The manifest's hash is of the model's pixels: labelling changed the file, not the image (PNG is lossless).
    from headshot_lab.control import pixels_sha256
    from headshot_lab.generate import read_manifest

    for record, image in zip(read_manifest(out), images, strict=True):
        assert record["image_sha256"] == pixels_sha256(pixels(image))
    # The control: a plain re-save (what a social network does) drops the label, and the reader says so.
    Image.open(images[0]).save(tmp_path / "resaved.png")
    assert read_provenance(tmp_path / "resaved.png", c2pa=False)["digital_source_type"] is None


def test_python_generate_labels_every_file_it_writes(tiny, tmp_path, torch_one_thread):
    from headshot_lab.generate import generate

    result = generate(None, "corporate", n=2, seed=3, out_dir=tmp_path, base=str(tiny), steps=2, progress=False)
    assert len(result.images) == 2
    for path in result.images:
        info = read_provenance(path, c2pa=False)
        assert info["digital_source_type"] == TRAINED and info["software"].startswith("headshot-lab")
    assert {p.name for p in tmp_path.glob("*.png")} == {p.name for p in result.images}  # no unlabelled extras


def test_app_and_command_line_generate_the_same_labelled_image(tiny, lora, tmp_path, monkeypatch, torch_one_thread):
    """One request, two doors: the app's Generate button and ``headshot-lab generate`` → same pixels, same label."""
    from headshot_lab.cli import main
    from headshot_lab.ui import AppBackend, SessionState

    monkeypatch.setenv("HEADSHOT_LAB_BASE_MODEL", str(tiny))
    gradio = tmp_path / "gradio"
    app = AppBackend(
        SessionStore(tmp_path / "data", ttl_hours=1), publish_root=gradio / "published", upload_root=gradio
    )
    try:
        state = SessionState()
        app.open_session(state, create=True)
        state.identity = {"mode": "lora", "path": str(lora)}
        shown = app.generate(state, "corporate", 1, 5, "none", "", "", 2)
        assert shown.ok, shown.status
        (item,) = shown.state.outputs
        assert main(["generate", "--lora", str(lora), "--style", "corporate", "-n", "1", "--seed", "5",
                     "--steps", "2", "--out", str(tmp_path / "cli")]) == 0  # fmt: skip
    finally:
        app.stop()
    cli_image = tmp_path / "cli" / "headshot-0000.png"
    np.testing.assert_array_equal(pixels(Path(item.path)), pixels(cli_image))
    app_label, cli_label = (read_provenance(p, c2pa=False) for p in (item.path, cli_image))
    assert app_label["digital_source_type"] == cli_label["digital_source_type"] == TRAINED
    assert app_label["disclosure"] == cli_label["disclosure"]
    published = Path(shown.gallery[0][0])  # the copy the page shows is byte for byte the labelled file
    assert published.read_bytes() == Path(item.path).read_bytes()


def test_generate_refuses_before_any_model_loads(tmp_path):
    request = workflow.GenerateRequest(n=9)
    with pytest.raises(HeadshotLabError) as info:
        workflow.generate_headshots(request, tmp_path, base="not/loaded", max_images=workflow.MAX_IMAGES_PER_RUN)
    assert info.value.code == "bad_option"
    with pytest.raises(HeadshotLabError) as info:
        workflow.generate_headshots(workflow.GenerateRequest(n=1), tmp_path, base="not/loaded", require_identity=True)
    assert info.value.code == "no_identity"
    pose = workflow.GenerateRequest(n=1, lora="x.safetensors", pose="pose")
    with pytest.raises(HeadshotLabError) as info:
        workflow.generate_headshots(pose, tmp_path, base="not/loaded")
    assert info.value.code == "controlnet_missing"
    with pytest.raises(HeadshotLabError) as info:
        workflow.generate_headshots(workflow.GenerateRequest(style="no-such-style"), tmp_path, base="not/loaded")
    assert not list(tmp_path.iterdir())  # nothing written by any refusal


def test_request_for_a_learned_identity():
    lora = workflow.GenerateRequest.for_identity({"mode": "lora", "path": "/x/lora.safetensors"}, n=2)
    assert lora.lora == "/x/lora.safetensors" and lora.face_embedding is None and lora.faceid_options() is None
    face = workflow.GenerateRequest.for_identity({"mode": "faceid", "path": "/x/e.npy"})
    assert face.face_embedding == "/x/e.npy" and face.faceid_options().weights == "h94/IP-Adapter-FaceID"
    legacy = workflow.GenerateRequest.for_identity({"mode": "faceid", "embedding": "/x/old.npy"})
    assert legacy.face_embedding == "/x/old.npy"
    assert not workflow.GenerateRequest.for_identity(None).has_identity


# -- FaceID identity: a library function and a command -----------------------------------------------------------
@pytest.fixture()
def fake_arcface(monkeypatch):
    """The insightface backend replaced by one that 'sees' a known embedding per photo (none in a dark photo)."""
    import headshot_lab.faces as faces
    from headshot_lab.faces import Face

    rng = np.random.default_rng(0)
    table = {value: rng.standard_normal(512).astype(np.float32) for value in (60, 120, 180)}

    class FakeArcFace:
        encoder = "fake-arcface"

        def analyze(self, image):
            value = int(image[0, 0, 0])
            if value not in table:
                return []
            return [Face(box=(0, 0, 10, 10), embedding=table[value], backend="insightface")]

    monkeypatch.setattr(faces, "get_backend", lambda name=None, **options: FakeArcFace())
    return table


def test_faceid_identity_is_the_normalised_mean_embedding(fake_arcface, tmp_path, capsys):
    from headshot_lab.cli import main

    photos = {}
    for value in (60, 120, 10):  # 10: no face
        photos[f"p{value}.png"] = tmp_path / f"p{value}.png"
        Image.fromarray(np.full((32, 32, 3), value, np.uint8)).save(photos[f"p{value}.png"])
    mean = (fake_arcface[60] + fake_arcface[120]) / 2
    expected = mean / np.linalg.norm(mean)

    result = workflow.faceid_identity(photos, tmp_path / "lib")
    assert result.mode == "faceid" and result.photos == 2 and result.skipped == ["p10.png"]
    assert result.path == tmp_path / "lib" / workflow.FACEID_EMBEDDING_NAME
    np.testing.assert_allclose(np.load(result.path), expected, rtol=1e-6)
    assert result.ref == {"mode": "faceid", "path": str(result.path)}

    assert main(["faceid", *(str(p) for p in photos.values()), "--out", str(tmp_path / "me.npy")]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["photos"] == 2 and payload["encoder"] == "fake-arcface" and len(payload["skipped"]) == 1
    np.testing.assert_array_equal(np.load(tmp_path / "me.npy"), np.load(result.path))  # CLI == library

    dark = {"dark.png": photos["p10.png"]}
    with pytest.raises(HeadshotLabError) as info:
        workflow.faceid_identity(dark, tmp_path / "none.npy")
    assert info.value.code == "no_face" and not (tmp_path / "none.npy").exists()


def test_generate_command_takes_a_faceid_embedding(tiny, tmp_path, capsys, torch_one_thread):
    from headshot_lab.cli import main
    from headshot_lab.generate import read_manifest
    from headshot_lab.testing.tiny import tiny_ip_adapter_faceid

    weights = tiny_ip_adapter_faceid(tiny, tmp_path / "faceid")
    embedding = np.random.default_rng(1).standard_normal(512).astype(np.float32)
    np.save(tmp_path / "me.npy", embedding / np.linalg.norm(embedding))
    code = main(["generate", "--base", str(tiny), "--face-embedding", str(tmp_path / "me.npy"),
                 "--faceid", str(weights.parent), "--faceid-weight-name", weights.name,
                 "-n", "1", "--seed", "2", "--steps", "2", "--out", str(tmp_path / "o")])  # fmt: skip
    assert code == 0
    (image,) = json.loads(capsys.readouterr().out)["images"]
    (record,) = read_manifest(tmp_path / "o")
    np.testing.assert_array_equal(
        np.load(tmp_path / "o" / record["faceid"]["embedding_file"]), np.load(tmp_path / "me.npy")
    )
    assert read_provenance(image, c2pa=False)["digital_source_type"] == TRAINED


# -- team export: a library function and a command ---------------------------------------------------------------
@pytest.fixture(scope="module")
def two_people(load_real, tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("team")
    paths = []
    for name in ("obama", "biden"):
        image = Image.fromarray(load_real(name))
        if image.height > image.width:  # full-length portrait: the face is in the top square
            image = image.crop((0, 0, image.width, image.width))
        image.thumbnail((600, 600))
        image.save(folder / f"{name}.jpg", quality=92)
        paths.append(folder / f"{name}.jpg")
    return paths


def test_team_export_command_one_style_for_everyone(two_people, tmp_path, capsys):
    from headshot_lab.cli import main

    out = tmp_path / "team"
    code = main(["team-export", *map(str, two_people), "--out", str(out), "--kind", "retouched", "--zip", "--json"])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    files = [r for r in payload["images"] if r["crop"] != "zip"]
    assert len(files) == 2 and {r["crop"] for r in files} == {"square"}
    assert all(Image.open(r["path"]).size == Image.open(files[0]["path"]).size for r in files)  # one geometry
    for record in files:
        assert read_provenance(record["path"], c2pa=False)["digital_source_type"] == COMPOSITE
    (entry,) = payload["team_consistency"]
    assert entry["kind"] == "retouched" and 0.0 <= entry["score"] <= 1.0
    zipped = next(r for r in payload["images"] if r["crop"] == "zip")
    with zipfile.ZipFile(zipped["path"]) as archive:
        assert sorted(archive.namelist()) == sorted(Path(r["path"]).name for r in files)


def test_team_export_never_mixes_kinds(two_people, tmp_path):
    """A generated and a retouched headshot are labelled apart: no shared guide, no consistency score across them."""
    items = [workflow.ExportItem(two_people[0], kind="generated"), workflow.ExportItem(two_people[1], kind="retouched")]
    outcome = workflow.export_team(items, tmp_path, "square", format="png")
    assert outcome.consistency == [] and len(outcome.images) == 2
    kinds = sorted(row["kind"] for row in outcome.disclosures)
    assert kinds == ["generated", "retouched"]
    with pytest.raises(HeadshotLabError) as info:
        workflow.export_team(items, tmp_path, "poster")
    assert info.value.code == "unknown_crop"


def test_export_single_goes_on_past_a_bad_file(two_people, tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    items = [workflow.ExportItem(bad), workflow.ExportItem(two_people[0]), workflow.ExportItem(two_people[0])]
    outcome = workflow.export_single(items, tmp_path / "o", ["square"], format="png", zip_name="all.zip")
    assert [f.source for f in outcome.failures] == ["notes.png"]
    assert sorted(p.name for p in outcome.paths) == ["obama-2_square.png", "obama_square.png"]  # same name: both kept
    assert all(row["kind"] == "generated" for row in outcome.disclosures)
    assert outcome.zip_path == tmp_path / "o" / "all.zip"
    only_bad = workflow.export_single([workflow.ExportItem(bad)], tmp_path / "p", ["square"])
    with pytest.raises(HeadshotLabError):
        only_bad.require_any()


# -- delete & purge: the app and the command line remove the same things ----------------------------------------
def a_session_with_published_copies(app):
    from headshot_lab.ui import SessionState

    state = SessionState()
    session = app.open_session(state, create=True)
    photo = session.uploads / "me.png"
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(photo)
    shown = Path(app.publish(session, photo))
    assert shown.is_file() and shown.is_relative_to(app.publish_dir(session.id))
    return state, session


def test_delete_session_command_and_the_app_remove_the_same_things(tmp_path, capsys):
    from headshot_lab.cli import main
    from headshot_lab.ui import AppBackend

    gradio = tmp_path / "gradio"
    app = AppBackend(
        SessionStore(tmp_path / "data", ttl_hours=1), publish_root=gradio / "published", upload_root=gradio
    )
    try:
        by_app, app_session = a_session_with_published_copies(app)
        _, cli_session = a_session_with_published_copies(app)
        deleted = app.delete_my_data(by_app)
        assert deleted.ok, deleted.status
        argv = ["delete-session", cli_session.id, "--data-dir", str(tmp_path / "data"), "--json"]
        assert main([*argv, "--publish-root", str(gradio / "published")]) == 0
    finally:
        app.stop()
    payload = json.loads(capsys.readouterr().out)
    for session in (app_session, cli_session):
        assert not session.root.exists() and not app.publish_dir(session.id).exists()
    assert payload["files"] == deleted.report["files"] and payload["published_files"] == 1
    log = app.store.read_deletion_log()
    assert [r["reason"] for r in log] == ["user", "user"] and log[0]["files"] == log[1]["files"]
    assert cli_session.id not in json.dumps(log) + json.dumps(payload)


def test_delete_session_removes_published_copies_even_when_the_folder_is_gone(tmp_path):
    store = SessionStore(tmp_path / "data", ttl_hours=1)
    session = store.create_session()
    copies = workflow.published_dir(tmp_path / "published", session.id)
    copies.mkdir(parents=True)
    (copies / "shown.png").write_bytes(b"x")
    store.delete_session(session.id)  # the folder went first (e.g. an interrupted deletion)
    deletion = workflow.delete_session(session.id, store=store, publish_root=tmp_path / "published", missing_ok=True)
    assert deletion.record is None and deletion.published_files == 1 and not copies.exists()
    with pytest.raises(HeadshotLabError) as info:
        workflow.delete_session("../../etc", store=store, publish_root=tmp_path / "published")
    assert info.value.code == "invalid_session_id"


def test_purge_removes_expired_sessions_and_their_published_copies(tmp_path):
    now = [1_800_000_000.0]
    store = SessionStore(tmp_path / "data", ttl_hours=1, clock=lambda: now[0])
    old, fresh = store.create_session(), None
    now[0] += 2 * 3600
    fresh = store.create_session()
    root = tmp_path / "published"
    for session in (old, fresh):
        folder = workflow.published_dir(root, session.id)
        folder.mkdir(parents=True)
        (folder / "a.png").write_bytes(b"x")
    report = workflow.purge_expired(store=store, publish_root=root)
    assert report.to_dict() == {"purged": 1, "remaining": 1, "published_removed": 1}
    assert not workflow.published_dir(root, old.id).exists() and workflow.published_dir(root, fresh.id).exists()
    assert old.id not in json.dumps(report.to_dict())


def test_default_publish_root_is_the_apps(tmp_path, monkeypatch):
    from headshot_lab.ui.files import SessionFiles

    store = SessionStore(tmp_path / "data", ttl_hours=1)
    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)
    assert (
        workflow.default_publish_root(store) == SessionFiles(store).publish_root == tmp_path / "data/gradio/published"
    )
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "g"))
    assert workflow.default_publish_root(store) == SessionFiles(store).publish_root == tmp_path / "g/published"


# -- the other policies ------------------------------------------------------------------------------------------
def test_admit_photos_and_selection_limits():
    for count, consent, code in [(2, False, "consent_required"), (0, True, "photo_count"), (21, True, "photo_count")]:
        with pytest.raises(HeadshotLabError) as info:
            workflow.admit_photos(count, consent=consent)
        assert info.value.code == code
    workflow.admit_photos(1, consent=True)
    workflow.admit_photos(20, consent=True)
    with pytest.raises(HeadshotLabError) as info:
        workflow.check_selection(0, 5, max_keep=15)
    assert info.value.code == "no_outputs"
    with pytest.raises(HeadshotLabError) as info:
        workflow.check_selection(3, 16, max_keep=15)
    assert info.value.code == "bad_option"
    workflow.check_selection(3, None)  # the command line: no limit


def test_pair_by_stem_takes_the_longest_matching_reference():
    pairs = workflow.pair_by_stem(["obama2_studio.png", "obama_studio.png", "x.png"], ["obama.png", "obama2.png"])
    assert pairs == {"obama2_studio.png": "obama2.png", "obama_studio.png": "obama.png"}


def test_retouch_labels_every_file_written_crops_included(load_real, tmp_path):
    photo = Image.fromarray(load_real("obama"))
    photo.thumbnail((600, 600))
    pixels_in = np.asarray(photo)
    batch = workflow.retouch_photos({"me.jpg": pixels_in, "blank.png": np.zeros((300, 300, 3), np.uint8)},
                                    "corporate", tmp_path, crops=["square"])  # fmt: skip
    (output,) = batch.outputs
    assert [f.source for f in batch.failures] == ["blank.png"]
    assert [p.name for p in output.paths] == ["me-corporate-retouched.png", "me-corporate-retouched-square.png"]
    for path in output.paths:
        assert read_provenance(path, c2pa=False)["digital_source_type"] == COMPOSITE
    assert batch.to_dict()["errors"][0]["photo"] == "blank.png"
    with pytest.raises(HeadshotLabError) as info:
        workflow.RetouchBatch(style="corporate", failures=batch.failures).require_any()
    assert info.value.code == "no_person" and "blank.png" in info.value.message


# -- the layering this module promises ----------------------------------------------------------------------------
PIPELINE = ("capture", "control", "export", "faces", "generate", "models", "provenance", "retouch", "select", "train")


def imported_modules(path: Path, *, top_level_only: bool = False) -> set[str]:
    """Every ``headshot_lab…`` module a file imports (``from headshot_lab import x`` counts as ``headshot_lab.x``)."""
    import ast

    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "headshot_lab":
                found |= {f"headshot_lab.{alias.name}" for alias in node.names}
            else:
                found.add(node.module)
    return {name for name in found if name.startswith("headshot_lab.")}


def test_the_ui_actions_call_the_service_layer_not_the_pipeline():
    modules = imported_modules(ROOT / "headshot_lab" / "ui" / "actions.py")
    assert "headshot_lab.workflow" in modules
    assert not {m for m in modules if m.split(".")[1] in PIPELINE}, modules


def test_the_service_layer_never_imports_the_ui_or_the_cli_at_import_time(tmp_path):
    modules = imported_modules(ROOT / "headshot_lab" / "workflow.py", top_level_only=True)
    assert not {m for m in modules if m.startswith(("headshot_lab.ui", "headshot_lab.cli"))}, modules
    # The planted control: the checker does see a forbidden import when there is one.
    planted = tmp_path / "workflow.py"
    source = (ROOT / "headshot_lab" / "workflow.py").read_text(encoding="utf-8")
    planted.write_text(source + "\nfrom headshot_lab.ui.state import SessionState\n", encoding="utf-8")
    assert "headshot_lab.ui.state" in imported_modules(planted, top_level_only=True)


def test_the_cli_commands_of_the_app_actions_call_the_service_layer():
    for name in ("generate.py", "ship.py", "studio.py"):
        assert "headshot_lab.workflow" in imported_modules(ROOT / "headshot_lab" / "cli" / name), name
    ui_cli = imported_modules(ROOT / "headshot_lab" / "ui" / "cli.py")
    assert "headshot_lab.workflow" in ui_cli and "headshot_lab.ui.files" not in ui_cli
