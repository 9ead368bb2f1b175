"""The engine chooser end to end on the tiny models: ``generate --engine``, the service layer's request, the app's
"How to learn your likeness" choices (dedicated GPU and ZeroGPU) and Learn identity for each tuning-free engine.

The ArcFace backend is the stand-in of ``tests/test_identity_engines.py`` (no insightface pack offline); InstantID
and FaceID-Plus run on random weights in their published key layouts.
"""

# ruff: noqa: F811  (the fixtures imported from tests/test_identity_engines.py are named as parameters)
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from headshot_lab import workflow
from headshot_lab.cli import main
from headshot_lab.errors import HeadshotLabError
from headshot_lab.generate import read_manifest
from headshot_lab.ui import SessionState
from tests.test_app_gpu_paths import make_backend
from tests.test_identity_engines import (  # noqa: F401  (fixtures)
    fake_arcface,
    instantid_weights,
    plus_weights,
    selfie,
)

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture()
def selfie_file(tmp_path) -> Path:
    path = tmp_path / "me.png"
    Image.fromarray(selfie(0)).save(path)
    return path


def test_request_infers_the_engine_and_builds_its_options():
    assert workflow.GenerateRequest(lora="x.safetensors").chosen_engine == "lora"
    assert workflow.GenerateRequest(face_embedding="me.npy").chosen_engine == "faceid"
    assert workflow.GenerateRequest().chosen_engine == "lora" and workflow.GenerateRequest().faceid_options() is None
    plus = workflow.GenerateRequest(engine="faceid-plus", face_embedding="me.npy", clip_encoder=" enc ")
    options = plus.faceid_options()
    assert options is not None and options.variant == "plusv2" and options.clip_encoder == "enc"
    assert plus.instantid_options() is None
    instant = workflow.GenerateRequest.for_identity({"mode": "instantid", "path": "me.npy"}, selfie="me.png")
    assert instant.chosen_engine == "instantid" and instant.face_embedding == "me.npy"
    assert instant.faceid_options() is None and instant.instantid_options() is not None and instant.has_identity
    with pytest.raises(HeadshotLabError) as info:
        _ = workflow.GenerateRequest(engine="photomaker").chosen_engine
    assert info.value.code == "bad_engine"


def test_cli_refuses_instantid_on_sd15_and_plus_without_a_photo_before_loading(tiny_bases, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["generate", "--base", str(tiny_bases["sd15"]), "--engine", "instantid", "-n", "1", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and "does not work with this base model (sd15)" in err and "faceid-plus" in err
    code = main(
        ["generate", "--base", str(tiny_bases["sd15"]), "--engine", "faceid-plus", "-n", "1", "--out", str(out)]
    )
    assert code == 1 and "needs a photo of the person" in capsys.readouterr().err
    assert not out.exists()  # refused before anything was written


def test_cli_generate_engine_instantid_on_sdxl(
    tiny_bases, instantid_weights, fake_arcface, selfie_file, tmp_path, capsys
):
    out = tmp_path / "instantid"
    code = main(["generate", "--base", str(tiny_bases["sdxl"]), "--engine", "instantid", "--selfie", str(selfie_file),
                 "--instantid-weights", str(instantid_weights), "-n", "1", "--seed", "4", "--steps", "2",
                 "--device", "cpu", "--out", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    payload = json.loads(capsys.readouterr().out)
    (record,) = read_manifest(out)
    assert record["engine"] == "instantid" and Path(payload["images"][0]).is_file()


def test_cli_generate_engine_faceid_plus(tiny_bases, plus_weights, fake_arcface, selfie_file, tmp_path, capsys):
    weights = plus_weights["sd15"]
    out = tmp_path / "plus"
    code = main(["generate", "--base", str(tiny_bases["sd15"]), "--engine", "faceid-plus", "--selfie", str(selfie_file),
                 "--faceid", str(weights.parent), "--faceid-weight-name", weights.name,
                 "--clip-image-encoder", str(plus_weights["clip"]), "-n", "1", "--seed", "4", "--steps", "2",
                 "--device", "cpu", "--out", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    (record,) = read_manifest(out)
    assert record["engine"].startswith("faceid-plus")


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_app_offers_the_engines_of_the_base_family(family, tiny_bases, tmp_path, monkeypatch):
    monkeypatch.setenv("HEADSHOT_LAB_BASE_MODEL", str(tiny_bases[family]))
    backend = make_backend(tmp_path)
    try:
        expected = ["lora", "faceid", "faceid-plus"] + (["instantid"] if family == "sdxl" else [])
        assert backend.identity_engines() == expected
        backend.zero_gpu = True  # only what is built at start-up runs there; training is shown, and refused
        assert backend.identity_engines() == ["faceid", "lora"]
        monkeypatch.setenv("HEADSHOT_LAB_ZERO_GPU_ENGINES", "faceid,instantid")
        assert backend.identity_engines() == ["faceid", *(["instantid"] if family == "sdxl" else []), "lora"]
        assert list(backend.setups()) == [*backend.zero_gpu_engines(family), "preview"]
    finally:
        backend.stop()


def test_learn_identity_for_instantid_records_the_engine_and_refuses_sd15(
    tiny_bases,
    fake_arcface,
    real_photos,
    tmp_path,
    monkeypatch,
):
    monkeypatch.setenv("HEADSHOT_LAB_DEVICE", "cpu")
    backend = make_backend(tmp_path)
    try:
        folder = backend.upload_root / "upload-0"
        folder.mkdir()
        image = Image.open(real_photos["obama"]).convert("RGB")
        image.thumbnail((600, 600))
        image.save(folder / "obama.jpg", quality=92)
        backend.upload_registry.add(str(folder / "obama.jpg"))
        monkeypatch.setenv("HEADSHOT_LAB_BASE_MODEL", str(tiny_bases["sd15"]))
        checked = backend.check_photos(SessionState(), [str(folder / "obama.jpg")], True)
        assert checked.ok, checked.status
        refused = backend.train_identity(checked.state, "instantid")
        assert not refused.ok and "does not work with this base model" in refused.status
        monkeypatch.setenv("HEADSHOT_LAB_BASE_MODEL", str(tiny_bases["sdxl"]))
        learned = backend.train_identity(refused.state, "instantid")
        assert learned.ok, learned.status
        assert learned.state.identity["mode"] == "instantid" and learned.report["mode"] == "instantid"
        assert np.load(learned.state.identity["path"]).shape == (512,)
    finally:
        backend.stop()


def test_eval_pipeline_runs_each_engine_on_the_source_photo(
    tiny_bases, instantid_weights, plus_weights, fake_arcface, tmp_path
):
    """``pipeline:instantid`` / ``pipeline:faceid-plus``: the engine is an axis of the results, the source photo is
    the identity, and each generator's manifest says which engine made the image."""
    from eval.generators import GenerationContext, SourceView, build_generator

    weights = plus_weights["sdxl"]
    options = {"base": str(tiny_bases["sdxl"]), "steps": 2, "width": 64, "height": 64, "device": "cpu",
               "instantid_weights": str(instantid_weights), "faceid_weights": str(weights.parent),
               "faceid_weight_name": weights.name, "clip_encoder": str(plus_weights["clip"])}  # fmt: skip
    source = SourceView(id="me.png", image=selfie(0), identity="me")
    for engine in ("instantid", "faceid-plus"):
        generator = build_generator(f"pipeline:{engine}", **options, out_dir=str(tmp_path / engine))
        assert generator.axes["engine"] == engine and generator.options["base"] == str(tiny_bases["sdxl"])
        image = generator(source, GenerationContext())
        assert image.shape == (64, 64, 3)
        (record,) = read_manifest(tmp_path / engine / "me")
        assert record["engine"].startswith(engine)
    assert build_generator("pipeline:some/base").options["base"] == "some/base"  # not an engine: the base
