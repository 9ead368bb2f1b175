"""DreamBooth-LoRA training on the tiny models, with real face photos.

The photos are 256-px thumbnails (small enough to be quick, large enough for the face detector);
training runs at the tiny models' 64 px.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import numpy as np
import pytest
from PIL import Image

from headshot_lab.control import pixels_sha256
from headshot_lab.errors import HeadshotLabError, ModelUnavailableError
from headshot_lab.train import (
    LORA_WEIGHT_NAME,
    TrainConfig,
    centre_crop_box,
    face_crop_box,
    photo_set_sha256,
    prepare_photos,
    read_lora_card,
    train_identity_lora,
)

PEOPLE = ("obama", "obama2", "obama3")


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def bases(tiny_bases):
    return tiny_bases


def thumbnail(pixels: np.ndarray, side: int = 256) -> np.ndarray:
    image = Image.fromarray(pixels)
    image.thumbnail((side, side))
    return np.asarray(image)


@pytest.fixture(scope="module")
def photos(load_real):
    return [thumbnail(load_real(name)) for name in PEOPLE]


def quick(**changes) -> TrainConfig:
    """Tiny-model settings: a few steps, a learning rate high enough to move random weights visibly."""
    values = {
        "steps": 3,
        "rank": 4,
        "learning_rate": 1e-3,
        "prior_preservation": False,
        "checkpoint_every": 100,
        "seed": 0,
    }
    return TrainConfig(**(values | changes))


def render(pipe, seed: int = 0) -> np.ndarray:
    import torch

    return pipe(
        "a photo of sks person",
        num_inference_steps=3,
        height=64,
        width=64,
        generator=torch.Generator().manual_seed(seed),
        output_type="np",
    ).images[0]


# ------------------------------------------------------------------------------------------- preprocessing
def test_face_crop_box_is_a_square_inside_the_image():
    box = face_crop_box((400, 300), (100, 150, 180, 250), scale=2.2)
    left, top, right, bottom = box
    assert right - left == bottom - top == 220
    assert left >= 0 and top >= 0 and right <= 300 and bottom <= 400
    assert left < 140 < right  # the face centre stays inside
    huge = face_crop_box((100, 80), (0, 0, 80, 100), scale=3.0)
    assert huge[2] - huge[0] == 80  # clipped to the image's short side
    assert centre_crop_box((100, 60)) == (0, 20, 60, 80)


def test_photos_are_cropped_around_the_face(load_real):
    pixels = thumbnail(load_real("obama"), 320)
    blank = np.full((200, 200, 3), 127, np.uint8)
    face, flat = prepare_photos([pixels, blank], 64)
    assert face.crop == "face" and face.note is None
    assert flat.crop == "centre" and flat.note == "no face found"
    assert face.pixels.shape == flat.pixels.shape == (64, 64, 3)
    left, top, right, bottom = face.box
    assert right - left == bottom - top
    assert face.box != centre_crop_box(pixels.shape)


def test_photo_set_hash_ignores_order_and_sees_changes():
    a, b, c = (pixels_sha256(np.full((4, 4, 3), v, np.uint8)) for v in (1, 2, 3))
    assert photo_set_sha256([a, b]) == photo_set_sha256([b, a])
    assert photo_set_sha256([a, b]) != photo_set_sha256([a, c])


# ------------------------------------------------------------------------------------------- training
@pytest.mark.parametrize("arch", ["sd15", "sdxl"])
def test_training_writes_a_lora_that_changes_the_image(bases, photos, tmp_path, arch):
    from diffusers import DiffusionPipeline
    from safetensors import safe_open

    blank = np.full((256, 256, 3), 127, np.uint8)
    config = quick(
        prior_preservation=arch == "sdxl",
        num_class_images=2,
        class_image_steps=2,
        train_text_encoder=arch == "sdxl",
    )
    result = train_identity_lora([*photos, blank], str(bases[arch]), tmp_path / "out", config, progress=False)

    assert result.lora_path == tmp_path / "out" / LORA_WEIGHT_NAME and result.lora_path.is_file()
    assert len(result.losses) == 3 and all(np.isfinite(result.losses))
    card = json.loads(result.card_path.read_text())
    assert card == result.card
    assert read_lora_card(result.lora_path)["family"] == arch  # also stored inside the .safetensors
    assert card["family"] == arch and card["base_model"] == str(bases[arch])
    assert (card["steps"], card["rank"], card["learning_rate"]) == (3, 4, 1e-3)
    assert {f.name for f in dataclasses.fields(TrainConfig)} <= set(card)  # every setting, none hand-listed
    assert (card["resolution"], card["alpha"], card["mixed_precision"]) == (64, 4, "no")  # as resolved on CPU
    assert card["photos"]["count"] == 4
    assert card["photos"]["sha256"] == photo_set_sha256([pixels_sha256(p) for p in [*photos, blank]])
    assert card["photos"]["centre_crops"] == [{"index": 3, "reason": "no face found"}]
    assert any("centre-cropped" in note for note in card["notes"])
    assert card["optimizer"] == "AdamW (torch)"
    assert any("AdamW" in note for note in card["notes"])  # the 8-bit Adam fallback is said
    assert "obama" not in result.card_path.read_text()  # never names or pixels of the photos
    with safe_open(str(result.lora_path), framework="pt") as handle:
        keys = list(handle.keys())
    assert any(k.startswith("unet.") and "lora" in k for k in keys)
    if arch == "sdxl":
        assert any(k.startswith("text_encoder_2.") for k in keys)
        assert len(list((tmp_path / "out" / "class_images").glob("*.png"))) == 2
        assert card["prior_preservation"] and card["class_prompt"] == "a photo of a person"

    pipe = DiffusionPipeline.from_pretrained(str(bases[arch]))
    pipe.set_progress_bar_config(disable=True)
    before = render(pipe)
    pipe.load_lora_weights(str(tmp_path / "out"))  # the stock diffusers call
    with_lora = render(pipe)
    assert np.abs(with_lora - before).max() > 1e-4
    np.testing.assert_array_equal(render(pipe), with_lora)  # same seed, same pixels
    pipe.unload_lora_weights()
    np.testing.assert_array_equal(render(pipe), before)


def _tensors(path):
    from safetensors.torch import load_file

    return load_file(str(path))


class Interrupted(Exception):
    pass


def test_interrupted_training_resumes_to_the_same_lora(bases, photos, tmp_path):
    import torch

    config = quick(steps=5, checkpoint_every=2)
    base = str(bases["sd15"])
    straight = train_identity_lora(photos, base, tmp_path / "straight", config, progress=False)

    def stop_after_three(step: int, loss: float) -> None:
        if step == 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        train_identity_lora(photos, base, tmp_path / "resumed", config, progress=False, callback=stop_after_three)
    checkpoints = sorted(p.name for p in (tmp_path / "resumed" / "checkpoints").iterdir())
    assert checkpoints == ["step-000002"]  # step 3 was done but never saved: a real crash loses it
    assert not (tmp_path / "resumed" / LORA_WEIGHT_NAME).exists()

    resumed = train_identity_lora(photos, base, tmp_path / "resumed", config, progress=False)
    assert resumed.resumed_from == 2 and resumed.steps == 5
    assert resumed.card["resumed_from_step"] == 2
    assert resumed.losses == straight.losses  # steps 1–2 from the checkpoint, 3–5 recomputed identically
    a, b = _tensors(straight.lora_path), _tensors(resumed.lora_path)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)  # bit-exact on CPU: per-step seeded randomness

    with pytest.raises(HeadshotLabError) as info:
        train_identity_lora(photos, base, tmp_path / "resumed", quick(steps=5, learning_rate=5e-4), progress=False)
    assert info.value.code == "checkpoint_mismatch"
    assert "learning_rate" in info.value.message


def test_simulated_out_of_memory_in_training(bases, photos, tmp_path, monkeypatch):
    import torch
    from diffusers import UNet2DConditionModel

    def explode(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(UNet2DConditionModel, "forward", explode)
    with pytest.raises(HeadshotLabError) as info:
        train_identity_lora(photos, str(bases["sd15"]), tmp_path / "o", quick(), progress=False)
    assert info.value.code == "out_of_memory"
    assert "training" in info.value.message
    assert "batch size" in info.value.fix


def test_training_without_a_base_names_the_setting(photos, tmp_path, monkeypatch):
    monkeypatch.delenv("HEADSHOT_LAB_BASE_MODEL", raising=False)
    with pytest.raises(ModelUnavailableError) as info:
        train_identity_lora(photos, None, tmp_path / "o", quick(), progress=False)
    assert "HEADSHOT_LAB_BASE_MODEL" in info.value.message + info.value.fix


@pytest.mark.parametrize(
    "changes", [{"steps": 0}, {"rank": 0}, {"token": "two words"}, {"learning_rate": -1.0}, {"resolution": 60}]
)
def test_bad_settings_are_refused(changes):
    with pytest.raises(HeadshotLabError) as info:
        quick(**changes).validate()
    assert info.value.code == "bad_train_config"


def test_an_empty_photo_folder_is_refused(bases, tmp_path):
    (tmp_path / "photos").mkdir()
    with pytest.raises(HeadshotLabError) as info:
        train_identity_lora(tmp_path / "photos", str(bases["sd15"]), tmp_path / "o", quick(), progress=False)
    assert info.value.code == "no_photos"


def test_train_command(bases, photos, tmp_path, capsys, monkeypatch):
    from headshot_lab.cli import generate as commands

    monkeypatch.setenv("HEADSHOT_LAB_MIN_SIDE", "64")
    folder = tmp_path / "photos"
    folder.mkdir()
    for index, pixels in enumerate(photos):
        Image.fromarray(pixels).save(folder / f"me-{index}.png")
    (folder / "me-0.txt").write_text("wearing glasses", encoding="utf-8")  # a caption file
    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(
        [
            *("train", "--photos", str(folder), "--base", str(bases["sd15"]), "--out", str(tmp_path / "lora")),
            *("--steps", "2", "--rank", "2", "--no-prior", "--seed", "1"),
        ]
    )
    assert args.handler(args) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["steps"] == 2 and payload["resumed_from"] is None
    card = read_lora_card(payload["lora"])
    assert card["rank"] == 2 and card["seed"] == 1 and card["photos"]["count"] == 3
    assert card["prior_preservation"] is False


def test_class_images_are_shared_by_settings_and_reused(bases, photos, tmp_path):
    """Two runs with the same base and class settings share one cached set; a change of size gets its own."""
    from headshot_lab.models import locate_base
    from headshot_lab.train import class_image_folder

    cache = tmp_path / "shared"
    config = quick(prior_preservation=True, num_class_images=2, class_image_steps=2)
    train_identity_lora(photos, str(bases["sd15"]), tmp_path / "a", config, class_image_cache=cache, progress=False)
    base = locate_base(str(bases["sd15"]))
    folder = class_image_folder(cache, base, "a photo of a person", resolution=64, seed=config.seed, steps=2)
    made = sorted(folder.glob("*.png"))
    assert len(made) == 2 and not (tmp_path / "a" / "class_images").exists()
    stamps = [p.stat().st_mtime_ns for p in made]
    train_identity_lora(photos, str(bases["sd15"]), tmp_path / "b", config, class_image_cache=cache, progress=False)
    assert [p.stat().st_mtime_ns for p in sorted(folder.glob("*.png"))] == stamps, "the second run regenerated them"
    other = class_image_folder(cache, base, "a photo of a person", resolution=128, seed=config.seed, steps=2)
    assert other != folder and other.parent == folder.parent
