"""ControlNet: conditioning maps from real photos, and the map reaching a tiny ControlNet in generation."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from headshot_lab.control import conditioning_image, fit_to_aspect, load_controlnet
from headshot_lab.errors import FaceNotFoundError, HeadshotLabError, ModelUnavailableError
from headshot_lab.generate import ControlOptions, HeadshotGenerator, Identity, regenerate
from headshot_lab.testing.tiny import tiny_controlnet, tiny_pipeline

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("control")
    base = tiny_pipeline("sd15", root / "base")
    return base, tiny_controlnet(base, root / "controlnet")


def test_fit_to_aspect_crops_the_centre():
    image = np.arange(100 * 200).reshape(100, 200)
    cropped = fit_to_aspect(image, 4, 5)
    assert cropped.shape == (100, 80)
    assert cropped[0, 0] == image[0, 60]
    assert fit_to_aspect(image, 2, 1).shape == (100, 200)


def test_face_landmark_map_from_a_real_selfie(load_real):
    result = conditioning_image(load_real("obama"), "face", width=56, height=72)
    drawn = np.asarray(result.image)
    assert result.image.size == (56, 72)
    assert drawn.max() > 0 and (drawn > 0).mean() < 0.5  # lines on black, not a photo
    assert len(result.sha256) == 64


def test_edge_map_is_offline_and_sized(load_real):
    result = conditioning_image(load_real("biden"), "canny", width=64, height=64)
    assert result.image.size == (64, 64)
    assert np.asarray(result.image).max() > 0


def test_no_face_in_the_reference_is_said(load_real):
    with pytest.raises(FaceNotFoundError, match="ControlNet reference"):
        conditioning_image(np.full((300, 300, 3), 128, np.uint8), "face", width=64, height=64)


@pytest.mark.parametrize("kind", ["pose", "depth"])
def test_hub_detectors_fail_clearly_offline(load_real, monkeypatch, kind):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError) as info:
        conditioning_image(load_real("obama"), kind, width=64, height=64, annotators="headshot-lab-tests/no-annotators")
    assert "face or canny" in info.value.fix


def test_unknown_kind_and_missing_controlnet():
    with pytest.raises(HeadshotLabError) as info:
        conditioning_image(np.zeros((8, 8, 3), np.uint8), "scribble", width=8, height=8)
    assert info.value.code == "bad_control_kind" and "face, pose, depth, canny" in info.value.fix
    with pytest.raises(ModelUnavailableError):
        load_controlnet("/nonexistent/controlnet")


def test_conditioning_image_reaches_the_controlnet(tiny, load_real, tmp_path):
    import torch

    base, controlnet = tiny
    selfie = load_real("obama")
    options = ControlOptions(model=str(controlnet), kind="canny", scale=1.0)
    generator = HeadshotGenerator(str(base), control=options, progress=False)
    result = generator(Identity(selfie=selfie), "team", n=1, seed=0, out_dir=tmp_path, steps=2)
    record = result.records[0]
    assert record["pipeline"] == "StableDiffusionControlNetPipeline"
    assert record["control"]["options"]["kind"] == "canny"
    saved = np.asarray(Image.open(tmp_path / record["control"]["image_file"]).convert("RGB"))
    assert saved.shape == (64, 64, 3) and saved.max() > 0

    # A spy on the ControlNet: the conditioning it receives is our saved map (scaled to [0, 1]).
    seen: list[torch.Tensor] = []
    original = generator.pipe.controlnet.forward

    def spy(*args, **kwargs):
        seen.append(kwargs["controlnet_cond"].detach().clone())
        return original(*args, **kwargs)

    generator.pipe.controlnet.forward = spy
    common = {"steps": 2, "guidance_scale": 6.0, "width": 64, "height": 64}
    with_map, _ = generator.render("a person", "", [0], control_image=Image.fromarray(saved), **common)
    expected = torch.from_numpy(saved.copy()).permute(2, 0, 1).float() / 255.0
    assert seen and torch.allclose(seen[0][0], expected, atol=1e-6)
    blank, _ = generator.render("a person", "", [0], control_image=Image.new("RGB", (64, 64)), **common)
    assert not np.array_equal(np.asarray(with_map), np.asarray(blank))  # the map changes the image
    generator.pipe.controlnet.forward = original

    again = regenerate(record, root=tmp_path)
    np.testing.assert_array_equal(np.asarray(again), np.asarray(Image.open(result.images[0])))


def test_controlnet_needs_a_reference_image(tiny, tmp_path):
    base, controlnet = tiny
    generator = HeadshotGenerator(str(base), control=ControlOptions(model=str(controlnet)), progress=False)
    with pytest.raises(HeadshotLabError) as info:
        generator(Identity(), "corporate", n=1, seed=0, out_dir=tmp_path, steps=2)
    assert info.value.code == "control_needs_image"
