"""Headshot generation on the tiny models: manifest, exact regeneration, adapters, speed switches, errors."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from PIL import Image

from headshot_lab.errors import HeadshotLabError, ModelUnavailableError
from headshot_lab.generate import (
    FaceIDOptions,
    HeadshotGenerator,
    Identity,
    LoraMismatchError,
    SpeedOptions,
    generate,
    read_manifest,
    regenerate,
)
from headshot_lab.testing.tiny import tiny_ip_adapter_faceid, tiny_lora
from headshot_lab.train import TrainConfig, file_sha256, train_identity_lora

STEPS = 3


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def bases(tiny_bases):
    return tiny_bases


@pytest.fixture(scope="module")
def loras(bases, load_real, tmp_path_factory):
    """An identity LoRA per family, trained for 2 steps on three real photos (64 px, centre crops)."""
    root = tmp_path_factory.mktemp("loras")
    photos = [np.asarray(Image.fromarray(load_real(n)).resize((64, 64))) for n in ("obama", "obama2", "obama3")]
    config = TrainConfig(steps=2, rank=4, learning_rate=1e-3, prior_preservation=False, face_crop=False)
    return {
        arch: train_identity_lora(photos, str(base), root / arch, config, progress=False).lora_path
        for arch, base in bases.items()
    }


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_generate_writes_images_and_a_reproducible_manifest(bases, loras, tmp_path):
    out = tmp_path / "shots"
    result = generate(
        loras["sd15"], "corporate", n=3, seed=11, out_dir=out, base=str(bases["sd15"]),
        steps=STEPS, speed=SpeedOptions(batch_size=2), progress=False,
    )  # fmt: skip
    assert [p.name for p in result.images] == ["headshot-0000.png", "headshot-0001.png", "headshot-0002.png"]
    records = read_manifest(out)
    assert len(records) == 3 and records == result.records
    first = records[0]
    assert [r["seed"] for r in records] == [11, 12, 13]
    assert first["batch_seeds"] == [11, 12] and records[2]["batch_seeds"] == [13]
    assert "sks person" in first["prompt"] and "plastic skin" in first["negative_prompt"]
    assert first["style"] == "corporate" and first["base_model"] == str(bases["sd15"])
    assert first["lora"]["sha256"] == file_sha256(loras["sd15"]) and first["lora"]["scale"] == 1.0
    assert (first["width"], first["height"]) == (56, 72)  # the style's 4:5 at the tiny model's 64 px
    assert first["steps"] == STEPS and first["guidance_scale"] == 6.0
    assert {"load_s", "image_s", "batch_s"} <= set(first["timings"])
    shots = [pixels(p) for p in result.images]
    assert shots[0].shape == (72, 56, 3)
    assert not np.array_equal(shots[0], shots[1])  # different seeds, different images

    again = regenerate(records[1], root=out)  # second image of a batch of two
    np.testing.assert_array_equal(np.asarray(again), shots[1])
    line = (out / "manifest.jsonl").read_text().splitlines()[2]
    np.testing.assert_array_equal(np.asarray(regenerate(line, root=out)), shots[2])

    more = generate(loras["sd15"], "corporate", n=1, seed=11, out_dir=out, base=str(bases["sd15"]), steps=STEPS,
                    progress=False)  # fmt: skip
    assert more.images[0].name == "headshot-0003.png"  # appended, never overwritten
    # The same seed alone (batch 1) instead of in a batch of 2 differs only by float rounding of batched
    # kernels — which is why the manifest stores the whole batch and regenerate() re-runs it.
    alone = pixels(more.images[0]).astype(int)
    assert np.abs(alone - shots[0]).max() <= 2
    assert np.abs(alone - shots[1]).mean() > 10 * np.abs(alone - shots[0]).mean()


def test_lora_scale_and_identity_change_the_image(bases, loras, tmp_path):
    generator = HeadshotGenerator(str(bases["sd15"]), progress=False)
    kwargs = {"style": "office", "n": 1, "seed": 3, "steps": STEPS}
    plain = generator(None, out_dir=tmp_path / "a", **kwargs)
    full = generator(Identity.from_lora(loras["sd15"], 1.0), out_dir=tmp_path / "b", **kwargs)
    half = generator(Identity.from_lora(loras["sd15"], 0.5), out_dir=tmp_path / "c", **kwargs)
    assert plain.records[0]["subject"] == "a person" and plain.records[0]["lora"] is None
    images = [pixels(r.images[0]) for r in (plain, full, half)]
    assert not np.array_equal(images[0], images[1])
    assert not np.array_equal(images[1], images[2])
    # Removing the identity again restores the base model exactly.
    back = generator(None, out_dir=tmp_path / "d", **kwargs)
    np.testing.assert_array_equal(pixels(back.images[0]), images[0])


def test_regenerate_refuses_a_changed_lora(bases, loras, tmp_path):
    import shutil

    copy = tmp_path / "lora" / "pytorch_lora_weights.safetensors"
    copy.parent.mkdir()
    shutil.copy(loras["sd15"], copy)
    result = generate(copy, "team", n=1, seed=1, out_dir=tmp_path / "o", base=str(bases["sd15"]), steps=2,
                      progress=False)  # fmt: skip
    assert result.records[0]["seed"] == 1
    with open(copy, "ab") as handle:
        handle.write(b" ")
    with pytest.raises(HeadshotLabError) as info:
        regenerate(result.records[0], root=tmp_path / "o")
    assert info.value.code == "lora_changed"


def test_lora_for_the_wrong_family_is_a_clear_error(bases, loras, tmp_path):
    with pytest.raises(LoraMismatchError) as info:
        generate(loras["sd15"], "corporate", n=1, seed=0, out_dir=tmp_path, base=str(bases["sdxl"]), progress=False)
    assert "SD1.5-class" in info.value.message and "SDXL-class" in info.value.message
    assert str(bases["sd15"]) in info.value.fix
    # Without a card the shape mismatch is caught and explained the same way.
    bare = tiny_lora(bases["sdxl"], tmp_path / "bare")
    with pytest.raises(LoraMismatchError, match="does not fit"):
        generate(bare, "corporate", n=1, seed=0, out_dir=tmp_path / "x", base=str(bases["sd15"]), progress=False)


def test_sdxl_generation_and_regeneration(bases, loras, tmp_path):
    result = generate(loras["sdxl"], "outdoor", n=2, seed=5, out_dir=tmp_path, base=str(bases["sdxl"]), steps=STEPS,
                      progress=False)  # fmt: skip
    assert result.records[0]["family"] == "sdxl"
    assert result.records[0]["pipeline"] == "StableDiffusionXLPipeline"
    np.testing.assert_array_equal(np.asarray(regenerate(result.records[1], root=tmp_path)), pixels(result.images[1]))


def test_missing_base_model_names_the_setting(monkeypatch):
    monkeypatch.delenv("HEADSHOT_LAB_BASE_MODEL", raising=False)
    with pytest.raises(ModelUnavailableError) as info:
        HeadshotGenerator(None)
    text = info.value.message + info.value.fix
    assert "HEADSHOT_LAB_BASE_MODEL" in text and "tiny-model" in text


def test_missing_base_model_from_the_command_line(monkeypatch, tmp_path, capsys):
    import headshot_lab.cli as cli

    monkeypatch.delenv("HEADSHOT_LAB_BASE_MODEL", raising=False)
    if "headshot_lab.cli.generate" not in cli.COMMAND_MODULES:
        monkeypatch.setattr(cli, "COMMAND_MODULES", (*cli.COMMAND_MODULES, "headshot_lab.cli.generate"))
    assert cli.main(["generate", "--style", "corporate", "-n", "1", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "HEADSHOT_LAB_BASE_MODEL" in err and "Traceback" not in err


def test_simulated_out_of_memory_in_generation(bases, tmp_path):
    import torch

    generator = HeadshotGenerator(str(bases["sd15"]), progress=False)
    pipe = generator.load()

    def explode(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB")

    pipe.unet.forward = explode
    with pytest.raises(HeadshotLabError) as info:
        generator(None, "corporate", n=1, seed=0, out_dir=tmp_path, steps=2)
    assert info.value.code == "out_of_memory"
    assert "offload" in info.value.fix and "batch size" in info.value.fix


def test_ip_adapter_faceid_embedding_steers_the_image(bases, loras, tmp_path):
    weights = tiny_ip_adapter_faceid(bases["sd15"], tmp_path / "faceid")
    options = FaceIDOptions(weights=str(weights.parent), weight_name=weights.name, scale=1.0)
    generator = HeadshotGenerator(str(bases["sd15"]), faceid=options, progress=False)
    rng = np.random.default_rng(0)
    one, two = (rng.standard_normal(512).astype(np.float32) for _ in range(2))
    one, two = one / np.linalg.norm(one), two / np.linalg.norm(two)

    def shot(embedding, folder):
        identity = Identity.from_lora(loras["sd15"], face_embedding=embedding)
        return generator(identity, "corporate", n=1, seed=9, out_dir=tmp_path / folder, steps=STEPS)

    a, b, a2 = shot(one, "a"), shot(two, "b"), shot(one, "c")
    assert not np.array_equal(pixels(a.images[0]), pixels(b.images[0]))
    np.testing.assert_array_equal(pixels(a.images[0]), pixels(a2.images[0]))
    # The DreamBooth LoRA stays active next to the IP-Adapter.
    assert "identity" in generator.pipe.get_active_adapters()
    record = a.records[0]
    assert record["faceid"]["options"]["scale"] == 1.0
    np.testing.assert_array_equal(np.load(tmp_path / "a" / record["faceid"]["embedding_file"]), one)
    np.testing.assert_array_equal(np.asarray(regenerate(record, root=tmp_path / "a")), pixels(a.images[0]))


def test_faceid_embedding_comes_from_the_insightface_backend(bases, tmp_path, monkeypatch, load_real):
    import headshot_lab.faces as faces
    from headshot_lab.faces import Face

    weights = tiny_ip_adapter_faceid(bases["sd15"], tmp_path / "faceid")
    embedding = np.full(512, 1 / np.sqrt(512), np.float32)
    asked: list[str] = []

    class FakeArcFace:
        def analyze(self, image):
            assert image.ndim == 3
            return [Face(box=(0, 0, 10, 10), embedding=embedding, backend="insightface")]

    def fake_get_backend(name=None, **options):
        asked.append(name)
        return FakeArcFace()

    monkeypatch.setattr(faces, "get_backend", fake_get_backend)
    generator = HeadshotGenerator(
        str(bases["sd15"]), faceid=FaceIDOptions(str(weights.parent), weights.name), progress=False
    )
    assert np.array_equal(generator.prepare_face_embedding(Identity(selfie=load_real("obama"))), embedding)
    assert asked == ["insightface"]
    with pytest.raises(HeadshotLabError, match="selfie"):
        generator.prepare_face_embedding(Identity())


def test_few_step_path_uses_lcm_scheduler(bases, loras, tmp_path):
    few = tiny_lora(bases["sd15"], tmp_path / "lcm", seed=1)
    speed = SpeedOptions(few_step_lora=str(few), few_step_steps=2)
    result = generate(loras["sd15"], "creative", n=1, seed=2, out_dir=tmp_path / "o", base=str(bases["sd15"]),
                      speed=speed, progress=False)  # fmt: skip
    record = result.records[0]
    assert record["scheduler"] == "LCMScheduler"
    assert record["steps"] == 2 and record["guidance_scale"] == 1.0
    assert record["speed"]["few_step_lora"] == str(few)
    np.testing.assert_array_equal(np.asarray(regenerate(record, root=tmp_path / "o")), pixels(result.images[0]))


def test_speed_switches_run_and_are_recorded(bases, tmp_path):
    speed = SpeedOptions(attention="eager", vae_slicing=True, vae_tiling=True, cpu_offload="model", batch_size=2)
    result = generate(None, "academic", n=2, seed=0, out_dir=tmp_path, base=str(bases["sd15"]), speed=speed, steps=2,
                      device="cpu", progress=False)  # fmt: skip
    record = result.records[0]
    assert record["speed"]["attention"] == "eager" and record["speed"]["vae_tiling"] is True
    assert any("cpu_offload" in note for note in record["notes"])  # offload needs CUDA: said, not silent
    assert record["dtype"] == "float32" and record["device"] == "cpu"
    with pytest.raises(HeadshotLabError):
        SpeedOptions(attention="flash").validate()


def test_bad_requests_are_refused(bases, tmp_path):
    generator = HeadshotGenerator(str(bases["sd15"]), progress=False)
    with pytest.raises(HeadshotLabError, match="at least 1"):
        generator(None, "corporate", n=0, seed=0, out_dir=tmp_path)
    with pytest.raises(HeadshotLabError, match="multiples of 8"):
        generator(None, "corporate", n=1, seed=0, out_dir=tmp_path, width=60, height=64)


def test_generate_command(bases, loras, tmp_path, capsys):
    from headshot_lab.cli import generate as commands

    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            *("generate", "--base", str(bases["sd15"]), "--lora", str(loras["sd15"].parent), "--style", "team"),
            *("-n", "2", "--seed", "4", "--steps", "2", "--out", str(tmp_path / "o")),
        ]
    )
    assert args.handler(args) == 0
    payload = json.loads(capsys.readouterr().out)
    assert len(payload["images"]) == 2 and all(Image.open(p).size == (64, 64) for p in payload["images"])
    assert read_manifest(payload["manifest"])[0]["style"] == "team"


def test_a_damaged_lora_is_a_clear_error(bases, loras, tmp_path):
    damaged = tmp_path / "pytorch_lora_weights.safetensors"
    damaged.write_bytes(loras["sd15"].read_bytes()[:-100])
    with pytest.raises(HeadshotLabError) as info:
        generate(damaged, "corporate", n=1, seed=0, out_dir=tmp_path / "o", base=str(bases["sd15"]), progress=False)
    assert info.value.code == "lora_damaged"
