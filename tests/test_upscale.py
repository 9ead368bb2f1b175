"""Super-resolution: tiny random spandrel models (real key layouts), the labelled Lanczos fallback, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from headshot_lab.cli import main
from headshot_lab.provenance import DIGITAL_SOURCE_TYPES, read_history, read_provenance, save_with_provenance
from headshot_lab.testing.tiny import tiny_sr_model
from headshot_lab.upscale import (
    ENV_UPSCALE_MODEL,
    NO_MODEL_NOTE,
    UpscaleError,
    parse_history,
    passes_for,
    split_hub_file,
    upscale_file,
    upscale_image,
)

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("sr")
    return {
        "compact4": tiny_sr_model(root / "compact_x4.pth", "compact", scale=4),
        "compact2": tiny_sr_model(root / "compact_x2.safetensors", "compact", scale=2),
        "esrgan4": tiny_sr_model(root / "esrgan_x4.pth", "esrgan", scale=4),
    }


@pytest.fixture()
def face(load_real):
    return Image.fromarray(load_real("obama")[:96, :80])


@pytest.fixture(autouse=True)
def _no_env_model(monkeypatch):
    monkeypatch.delenv(ENV_UPSCALE_MODEL, raising=False)


@pytest.mark.parametrize(
    ("name", "factor", "arch", "passes"),
    [
        ("compact4", 4, "Compact", ("model ×4",)),
        ("compact4", 2, "Compact", ("model ×4", "lanczos ×0.5")),
        ("compact2", 4, "Compact", ("model ×2", "model ×2")),
        ("esrgan4", 4, "ESRGAN", ("model ×4",)),
    ],
)
def test_model_output_is_exactly_n_times_and_named(models, face, name, factor, arch, passes):
    result = upscale_image(face, factor, model=str(models[name]), device="cpu", tile=48, overlap=8)
    assert result.image.size == (face.width * factor, face.height * factor)
    assert result.method == f"spandrel:{arch}" and result.passes == passes and not result.fallback
    assert result.model == str(models[name].resolve())
    # The random model is not an interpolator: its output is not Lanczos'.
    reference = np.asarray(face.resize(result.image.size, Image.Resampling.LANCZOS), dtype=int)
    assert np.abs(np.asarray(result.image, dtype=int) - reference).mean() > 1.0


def test_repeat_is_bit_exact_on_cpu_and_tiles_do_not_show(models, face):
    first = upscale_image(face, 4, model=str(models["esrgan4"]), device="cpu", tile=32, overlap=16)
    again = upscale_image(face, 4, model=str(models["esrgan4"]), device="cpu", tile=32, overlap=16)
    assert first.tiles == 3 * 3 and np.array_equal(np.asarray(first.image), np.asarray(again.image))
    whole = upscale_image(face, 4, model=str(models["esrgan4"]), device="cpu", tile=512)
    assert whole.tiles == 1
    # 16 px of context covers this RRDB's receptive field: tiling changes at most the float rounding (±1 level).
    assert np.abs(np.asarray(first.image, dtype=int) - np.asarray(whole.image, dtype=int)).max() <= 1


def test_no_model_configured_falls_back_to_labelled_lanczos(face):
    result = upscale_image(face, 2)
    assert result.method == "lanczos" and result.fallback and result.note == NO_MODEL_NOTE
    assert result.image.size == (face.width * 2, face.height * 2)
    assert np.array_equal(np.asarray(result.image), np.asarray(face.resize(result.image.size, Image.LANCZOS)))
    assert result.to_dict()["method"] == "lanczos"


def test_missing_weights_fall_back_with_one_message_or_fail_when_asked(tmp_path, face):
    result = upscale_image(face, 2, model=str(tmp_path / "nope.pth"))
    assert result.method == "lanczos" and result.fallback and "nope.pth" in result.note and "Lanczos" in result.note
    hub = upscale_image(face, 2, model="no-such-owner/no-such-repo:x4.pth")  # HF_HUB_OFFLINE=1: not cached
    assert hub.fallback and "HF_HUB_OFFLINE" in hub.note
    with pytest.raises(UpscaleError) as info:
        upscale_image(face, 2, model=str(tmp_path / "nope.pth"), allow_fallback=False)
    assert info.value.code == "upscale_model_missing" and "--model" in info.value.fix


def test_bad_model_file_is_a_clear_error_not_a_fallback(tmp_path, face):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"this is not a checkpoint")
    with pytest.raises(UpscaleError) as info:
        upscale_image(face, 2, model=str(junk))
    assert info.value.code == "upscale_model_unreadable" and "junk.pth" in info.value.message
    import torch

    other = tmp_path / "other.pth"
    torch.save({"encoder.weight": torch.zeros(3, 3)}, other)
    with pytest.raises(UpscaleError) as info:
        upscale_image(face, 2, model=str(other))
    assert info.value.code == "upscale_model_unsupported"
    with pytest.raises(UpscaleError):
        upscale_image(face, 3)
    with pytest.raises(UpscaleError) as info:
        upscale_image(face, 2, model="owner/repo")
    assert info.value.code == "upscale_model_no_file"


def test_modes_rgba_greyscale_16_bit(models):
    model = str(models["compact2"])
    rgba = Image.new("RGBA", (20, 12), (200, 100, 50, 0))
    rgba.paste((10, 20, 30, 255), (5, 3, 15, 9))
    out = upscale_image(rgba, 2, model=model, device="cpu")
    assert out.image.mode == "RGBA" and out.image.size == (40, 24)
    alpha = np.asarray(out.image.getchannel("A"))
    assert alpha[0, 0] == 0 and alpha[12, 20] == 255  # transparency is kept where it was
    grey16 = Image.fromarray((np.arange(20 * 12).reshape(12, 20) * 200).astype(np.uint16))
    out16 = upscale_image(grey16, 2, model=model, device="cpu")
    assert out16.image.mode == "RGB" and out16.image.size == (40, 24)
    lanczos16 = upscale_image(grey16, 2)
    top = np.asarray(lanczos16.image)[..., 0]
    assert top.max() > 150  # rescaled by 65535 → 255, not clipped to white nor cut to black
    assert upscale_image(Image.new("L", (9, 7), 128), 4, model=model, device="cpu").image.size == (36, 28)


def test_passes_and_hub_names():
    assert passes_for(4, 4) == (1, None) and passes_for(4, 2) == (1, 0.5) and passes_for(2, 4) == (2, None)
    assert passes_for(3, 4) == (2, 4 / 9) and passes_for(8, 2) == (1, 0.25)
    assert split_hub_file("ai-forever/Real-ESRGAN:RealESRGAN_x4.pth") == ("ai-forever/Real-ESRGAN", "RealESRGAN_x4.pth")
    assert split_hub_file("owner/repo/sub/model.safetensors") == ("owner/repo", "sub/model.safetensors")
    assert split_hub_file("owner/repo") is None and split_hub_file("../x/y") is None


def test_file_keeps_the_label_names_the_method_and_history(tmp_path, models, load_real):
    generated = save_with_provenance(load_real("obama")[:64, :48], tmp_path / "gen.png", "generated")
    lanczos = upscale_file(generated, tmp_path / "out", 2)
    info = read_provenance(lanczos.path, c2pa=False)
    assert info["digital_source_type"] == DIGITAL_SOURCE_TYPES["generated"]  # retouched never weakens it
    assert "lanczos" in info["disclosure"] and "lanczos" in (read_history(lanczos.path) or "")
    with Image.open(lanczos.path) as image:
        assert image.size == (96, 128) and image.info.get("icc_profile")
    again = upscale_file(lanczos.path, tmp_path / "out2", 2, model=str(models["compact2"]), device="cpu")
    steps = parse_history(read_history(again.path))
    assert [(s.factor, s.method, s.source_size) for s in steps] == [
        (2, "lanczos", (48, 64)),
        (2, "spandrel:Compact", (96, 128)),
    ]
    assert read_provenance(again.path, c2pa=False)["kind"] == "generated"


def test_cli_upscale_json_and_errors(tmp_path, models, load_real, capsys):
    photo = save_with_provenance(load_real("obama")[:40, :30], tmp_path / "a.jpg", "retouched")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff not really")
    code = main(["upscale", str(photo), str(broken), "--factor", "4", "--model", str(models["compact4"]),
                 "--out", str(tmp_path / "o"), "--json", "--device", "cpu"])  # fmt: skip
    payload = json.loads(capsys.readouterr().out)
    assert code == 1 and payload["method"] == "spandrel:Compact" and len(payload["images"]) == 1
    assert (payload["images"][0]["width"], payload["images"][0]["height"]) == (120, 160)
    assert payload["skipped"][0]["source"] == str(broken)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 16)
    code = main(["upscale", str(photo), "--factor", "2", "--model", str(junk), "--out", str(tmp_path / "p")])
    err = capsys.readouterr().err
    assert code == 1 and "junk.safetensors" in err and "fix:" in err and not (tmp_path / "p" / "a_x2.jpg").exists()
    code = main(["upscale", str(photo), "--factor", "2", "--out", str(tmp_path / "q")])
    out = capsys.readouterr().out
    assert code == 0 and "Lanczos" in out and "lanczos" in out


@pytest.fixture(scope="module")
def sd15(tmp_path_factory):
    from headshot_lab.testing import tiny_pipeline

    return tiny_pipeline("sd15", tmp_path_factory.mktemp("base") / "sd15")


@pytest.mark.parametrize("model", ["compact2", None])
def test_generate_upscale_is_in_the_manifest_and_regenerates_bit_exactly(sd15, models, tmp_path, capsys, model):
    from headshot_lab.generate import read_manifest, regenerate

    out = tmp_path / "gen"
    extra = ["--upscale-model", str(models[model])] if model else []
    code = main(["generate", "--base", str(sd15), "--style", "team", "-n", "1", "--seed", "3", "--steps", "2",
                 "--out", str(out), "--upscale", "2", "--device", "cpu", *extra])  # fmt: skip
    payload = json.loads(capsys.readouterr().out)
    record = read_manifest(out)[0]
    entry = record["upscale"]
    assert code == 0 and entry["factor"] == 2 and entry["source_size"] == [record["width"], record["height"]]
    assert entry["method"] == ("spandrel:Compact" if model else "lanczos") and entry["fallback"] is (model is None)
    written = np.asarray(Image.open(payload["images"][0]).convert("RGB"))
    assert written.shape == (2 * record["height"], 2 * record["width"], 3)
    assert np.array_equal(np.asarray(regenerate(record, root=out, device="cpu")), written)
    assert read_provenance(payload["images"][0], c2pa=False)["kind"] == "generated"
    assert parse_history(read_history(payload["images"][0]))[0].method == entry["method"]
    if model:
        from headshot_lab.upscale import UpscaleError

        assert entry["model_sha256"] and len(entry["model_sha256"]) == 64
        tiny_sr_model(models[model], "compact", scale=2, seed=1)  # the checkpoint is replaced by another one
        with pytest.raises(UpscaleError) as info:
            regenerate(record, root=out, device="cpu")
        assert info.value.code == "upscale_model_changed"
        tiny_sr_model(models[model], "compact", scale=2)  # restored for the other tests


def test_cli_keeps_two_photos_with_one_name_and_shortens_long_names(tmp_path, load_real, capsys):
    pixels = load_real("obama")[:24, :20]
    first, second = tmp_path / "a" / "me.png", tmp_path / "b" / "me.png"
    long_name = tmp_path / ("p" * 230 + ".png")
    for path in (first, second, long_name):
        path.parent.mkdir(exist_ok=True)
        save_with_provenance(pixels, path, "retouched")
    code = main(["upscale", str(first), str(second), str(long_name), "--factor", "2", "--out", str(tmp_path / "o"),
                 "--json"])  # fmt: skip
    names = sorted(Path(item["path"]).name for item in json.loads(capsys.readouterr().out)["images"])
    assert code == 0 and names[:2] == ["me-2_x2.png", "me_x2.png"] and len(names[2].encode()) < 200
