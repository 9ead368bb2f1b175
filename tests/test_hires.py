"""Hires fix on the tiny models, and both realism passes through generate → manifest → regenerate (bit-exact)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from headshot_lab.detail import DetailOptions
from headshot_lab.errors import HeadshotLabError
from headshot_lab.generate import HeadshotGenerator, generate, read_manifest, regenerate
from headshot_lab.hires import HiresOptions, hires_fix, target_size

pytestmark = pytest.mark.usefixtures("torch_one_thread")
STEPS = 4


@pytest.fixture(scope="module")
def sd15(tiny_sd15_pipe):
    return tiny_sd15_pipe


def base_image(seed: int = 0, size: int = 64) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8))


def test_target_size_rounds_to_multiples_of_8():
    assert target_size(64, 80, 1.5) == (96, 120)
    assert target_size(512, 640, 2.0) == (1024, 1280)
    assert target_size(100, 100, 1.5) == (152, 152)  # 150 → nearest multiple of 8


@pytest.mark.parametrize("scale", [1.5, 2.0])
def test_hires_fix_scales_and_is_seeded(sd15, scale):
    options = HiresOptions(scale=scale, strength=0.35, steps=STEPS)
    result = hires_fix(base_image(), sd15, prompt="photo of a person", seed=3, options=options)
    assert result.image.size == target_size(64, 64, scale) == result.size
    assert result.record()["upscaler"] == "lanczos" and result.record()["options"]["scale"] == scale
    again = hires_fix(base_image(), sd15, prompt="photo of a person", seed=3, options=options)
    assert np.array_equal(np.asarray(again.image), np.asarray(result.image))
    other = hires_fix(base_image(), sd15, prompt="photo of a person", seed=4, options=options)
    assert not np.array_equal(np.asarray(other.image), np.asarray(result.image))


def test_upscaler_hook_is_used_named_and_its_size_corrected(sd15):
    calls = []

    class Result:  # the shape of headshot_lab.upscale.UpscaleResult: .image and a note
        def __init__(self, image):
            self.image, self.note = image, "labelled fallback"

    def nearest_x3(image, factor):
        calls.append(factor)
        return Result(image.resize((image.width * 3, image.height * 3), Image.Resampling.NEAREST))

    options = HiresOptions(scale=2.0, strength=0.35, steps=STEPS)
    result = hires_fix(base_image(), sd15, prompt="p", seed=0, options=options, upscaler=nearest_x3)
    assert calls == [2.0] and result.upscaler == "nearest_x3" and result.image.size == (128, 128)
    assert result.notes[0] == "labelled fallback" and "resized to 128×128" in result.notes[1]
    from functools import partial

    from headshot_lab.hires import upscaler_name

    assert upscaler_name(partial(nearest_x3, model="x4")) == "nearest_x3(model='x4')"
    lanczos = hires_fix(base_image(), sd15, prompt="p", seed=0, options=options)
    assert not np.array_equal(np.asarray(lanczos.image), np.asarray(result.image))  # the hook's output was refined


def test_bad_hires_options_are_refused_in_plain_words(sd15):
    with pytest.raises(HeadshotLabError, match="scale must be above 1"):
        hires_fix(base_image(), sd15, prompt="p", options=HiresOptions(scale=1.0))
    with pytest.raises(HeadshotLabError, match="no denoising step"):
        hires_fix(base_image(), sd15, prompt="p", options=HiresOptions(strength=0.1, steps=5))


# ------------------------------------------------------------------------------------------- through the manifest
def test_generate_records_hires_and_regenerate_reproduces_it(tiny_bases, tmp_path):
    out = tmp_path / "shots"
    hires = HiresOptions(scale=1.5, strength=0.4)
    result = generate(
        None, "corporate", n=2, seed=7, out_dir=out, base=str(tiny_bases["sd15"]), steps=STEPS,
        width=64, height=64, hires=hires, detail=DetailOptions(), progress=False,
    )  # fmt: skip
    records = read_manifest(out)
    assert [Image.open(p).size for p in result.images] == [(96, 96), (96, 96)]
    line = records[0]
    assert line["hires"]["size"] == [96, 96] and line["hires"]["seed"] == 7
    assert line["hires"]["options"]["strength"] == 0.4
    assert line["detail"]["faces"] == [] and "No face" in line["detail"]["notes"][0]  # random pixels: no face
    generator = HeadshotGenerator(str(tiny_bases["sd15"]), progress=False)
    for path, record in zip(result.images, records, strict=True):
        again = regenerate(record, root=out, generator=generator)
        assert np.array_equal(np.asarray(again), np.asarray(Image.open(path).convert("RGB")))
    with pytest.raises(HeadshotLabError, match="upscaler") as caught:
        regenerate(records[0], root=out, generator=generator, upscaler=lambda image, factor: image)
    assert caught.value.code == "upscaler_mismatch"


def test_detail_pass_through_generate_and_regenerate_is_bit_exact(tiny_bases, load_real, tmp_path, monkeypatch):
    """The tiny model draws no face, so its render is replaced by a real photo (the same one every time):
    what is tested is that the manifest's detail record (boxes, crops, seeds, strength) replays exactly."""
    photo = Image.fromarray(load_real("obama")).resize((256, 320), Image.Resampling.LANCZOS)

    def render(self, prompt, negative_prompt, seeds, **kwargs):
        return [photo.copy() for _ in seeds], [False] * len(seeds)

    monkeypatch.setattr(HeadshotGenerator, "render", render)
    out = tmp_path / "detailed"
    result = generate(
        None, "corporate", n=1, seed=21, out_dir=out, base=str(tiny_bases["sd15"]), steps=STEPS,
        width=256, height=320, detail=DetailOptions(), progress=False,
    )  # fmt: skip
    record = read_manifest(out)[0]
    detail = record["detail"]
    assert len(detail["faces"]) == 1 and detail["faces"][0]["seed"] == 21
    assert detail["options"]["strength"] == 0.35  # the corporate style's detail_strength
    measures = detail["measures"]  # before/after measured; a tiny random model redraws the face as noise, so
    assert measures["faces_before"] == 1 and measures["ita_before"] is not None  # the "after" side may be None
    written = np.asarray(Image.open(result.images[0]).convert("RGB"))
    assert not np.array_equal(written, np.asarray(photo))
    again = regenerate(record, root=out, generator=HeadshotGenerator(str(tiny_bases["sd15"]), progress=False))
    assert np.array_equal(np.asarray(again), written)


def test_cli_generate_flags_reach_the_manifest(tiny_bases, tmp_path, capsys):
    from headshot_lab.cli import main

    out = tmp_path / "cli"
    code = main(["generate", "--base", str(tiny_bases["sd15"]), "--style", "office", "-n", "1", "--seed", "2",
                 "--steps", str(STEPS), "--width", "64", "--height", "64", "--out", str(out),
                 "--hires-fix", "--hires-scale", "1.5", "--hires-strength", "0.5",
                 "--detail-face", "--detail-strength", "0.45"])  # fmt: skip
    assert code == 0, capsys.readouterr()
    (record,) = read_manifest(out)
    assert record["hires"]["options"]["scale"] == 1.5 and record["hires"]["options"]["strength"] == 0.5
    assert record["detail"]["options"]["strength"] == 0.45
    with pytest.raises(SystemExit):  # argparse: 3 is not one of the scales
        main(["generate", "--base", str(tiny_bases["sd15"]), "-n", "1", "--out", str(out), "--hires-scale", "3"])
    assert "invalid choice: 3.0" in capsys.readouterr().err


def test_hires_fix_with_a_super_resolution_model_is_recorded_and_replayed(tiny_bases, tmp_path, capsys):
    """``--hires-upscale-model``: the hires fix's upscale step runs the model (a tiny random ×2 SRVGG here, then
    Lanczos to 1.5×), the manifest names it, regenerate rebuilds it from that name; a missing model is an error,
    never a silent Lanczos."""
    from headshot_lab.cli import main
    from headshot_lab.testing.tiny import tiny_sr_model
    from headshot_lab.upscale import HiresUpscaler, UpscaleError

    model = tiny_sr_model(tmp_path / "sr" / "x2.pth", "compact", scale=2)
    out = tmp_path / "sr_gen"
    args = ["generate", "--base", str(tiny_bases["sd15"]), "--style", "office", "-n", "1", "--seed", "2",
            "--steps", str(STEPS), "--width", "64", "--height", "64", "--hires-fix", "--hires-scale", "1.5",
            "--device", "cpu"]  # fmt: skip
    assert main([*args, "--out", str(out), "--hires-upscale-model", str(model)]) == 0, capsys.readouterr()
    (record,) = read_manifest(out)
    assert record["hires"]["upscaler"] == f"super-resolution:{model}" and record["hires"]["size"] == [96, 96]
    assert any("spandrel:" in note for note in record["hires"]["notes"])  # the model really ran
    assert any("resized to 96×96" in note for note in record["hires"]["notes"])  # 128 px (×2) → 96 px (×1.5)
    written = np.asarray(Image.open(out / record["file"]).convert("RGB"))
    again = regenerate(record, root=out, generator=HeadshotGenerator(str(tiny_bases["sd15"]), progress=False))
    assert np.array_equal(np.asarray(again), written)
    capsys.readouterr()
    assert main([*args, "--out", str(tmp_path / "lanczos")]) == 0
    (plain,) = read_manifest(tmp_path / "lanczos")
    assert plain["hires"]["upscaler"] == "lanczos"
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "lanczos" / plain["file"]).convert("RGB")), written)
    assert HiresUpscaler.from_name("lanczos") is None
    with pytest.raises(UpscaleError):
        HiresUpscaler(str(tmp_path / "missing.pth"))(Image.new("RGB", (8, 8)), 2.0)


def test_eval_pipeline_generator_runs_the_realism_passes(tiny_bases, load_real, tmp_path):
    from eval.generators import GenerationContext, SourceView, build_generator

    generator = build_generator(
        "pipeline", base=str(tiny_bases["sd15"]), steps=STEPS, width=64, height=64, out_dir=str(tmp_path),
        detail_face=True, detail_strength=0.3, hires_fix=True, hires_scale=1.5,
    )  # fmt: skip
    assert generator.axes["detail_face"] is True and generator.axes["hires_scale"] == 1.5
    image = generator(SourceView(id="obama.jpg", image=load_real("obama"), identity="obama"), GenerationContext())
    assert image.shape == (96, 96, 3)
    (record,) = read_manifest(tmp_path / "obama")
    assert record["hires"]["size"] == [96, 96] and record["detail"]["options"]["strength"] == 0.3


@pytest.mark.slow
def test_detail_cost_benchmark_writes_its_json(tmp_path):
    """benchmarks/detail_cost.py end to end, two modes, one repeat (each mode is a fresh process: ~1 min)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    command = [sys.executable, str(root / "benchmarks" / "detail_cost.py"), "--modes", "plain,detail", "--repeats", "1",
               "--steps", "3", "--photo-size", "128", "--out", str(tmp_path)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(root), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=root, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads((tmp_path / "detail_cost.json").read_text())
    assert result["sanity"]["all_modes_ran"] and result["modes"]["plain"]["ratio_to_plain"] == 1.0
    detail = result["modes"]["detail"]
    assert detail["s_per_image"]["cpu_s"] > 0 and detail["peak_rss_mb"] > 100 and "find_face" in detail
