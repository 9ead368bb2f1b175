"""Issue 14's generation defects on the tiny models: ControlNet family (subfolder + fit check before loading),
FaceID-Plus without published weights for the family refused before loading (Plus itself works:
tests/test_identity_engines.py), torch.compile after the identity LoRA (later identities hot-swap),
and the OpenPose hint naming all three of its files."""

from __future__ import annotations

import pytest

import headshot_lab.models as models
from headshot_lab.control import ControlNetMismatchError, load_controlnet
from headshot_lab.generate import (
    ControlOptions,
    FaceIDOptions,
    HeadshotGenerator,
    Identity,
)

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def sdxl_controlnet(tiny_bases, tmp_path_factory):
    from headshot_lab.testing.tiny import tiny_controlnet

    return tiny_controlnet(tiny_bases["sdxl"], tmp_path_factory.mktemp("cn") / "sdxl")


def _no_pipeline(monkeypatch):
    loaded: list[str] = []

    def refuse(*args, **kwargs):
        loaded.append("pipeline")
        raise AssertionError("the base pipeline was loaded before the check")

    monkeypatch.setattr(models, "load_pipeline", refuse)
    return loaded


def test_a_controlnet_of_another_family_is_refused_before_loading(tiny_bases, sdxl_controlnet, monkeypatch):
    loaded = _no_pipeline(monkeypatch)
    generator = HeadshotGenerator(
        str(tiny_bases["sd15"]), control=ControlOptions(model=str(sdxl_controlnet), kind="canny"), progress=False
    )
    with pytest.raises(ControlNetMismatchError, match="cross_attention_dim 64 vs 32") as info:
        generator.load()
    assert "made for another kind of base model" in info.value.message and not loaded


def test_the_default_face_controlnet_loads_the_family_subfolder(monkeypatch):
    from diffusers import ControlNetModel

    seen: list[dict] = []
    monkeypatch.setattr(ControlNetModel, "from_pretrained", classmethod(lambda cls, source, **kw: seen.append(kw)))
    load_controlnet("CrucibleAI/ControlNetMediaPipeFace", family="sd15")
    load_controlnet("CrucibleAI/ControlNetMediaPipeFace", family="sd15", subfolder="other")
    load_controlnet("lllyasviel/control_v11p_sd15_canny", family="sd15")
    assert [kw.get("subfolder") for kw in seen] == ["diffusion_sd15", "other", None]


def test_a_faceid_variant_without_published_weights_is_refused_before_any_weights_load(tiny_bases, monkeypatch):
    """h94/IP-Adapter-FaceID has no SDXL Plus v1: said before the base loads, pointing to PlusV2."""
    from headshot_lab.errors import HeadshotLabError

    loaded = _no_pipeline(monkeypatch)
    generator = HeadshotGenerator(str(tiny_bases["sdxl"]), faceid=FaceIDOptions(variant="plus"), progress=False)
    with pytest.raises(HeadshotLabError, match="no FaceID-plus weights") as info:
        generator.load()
    assert "ip-adapter-faceid-plusv2_sdxl.bin" in info.value.fix and not loaded


def test_compile_waits_for_the_identity_and_later_identities_hot_swap(tiny_bases, tmp_path, monkeypatch):
    """Compiling before the LoRA is attached recompiles per identity: the UNet is compiled once, after the first
    identity; the second identity is loaded with hotswap=True into the same adapter."""
    from headshot_lab.generate import SpeedOptions
    from headshot_lab.testing.tiny import tiny_lora

    first = tiny_lora(tiny_bases["sd15"], tmp_path / "a", seed=1)
    second = tiny_lora(tiny_bases["sd15"], tmp_path / "b", seed=2)
    generator = HeadshotGenerator(
        str(tiny_bases["sd15"]), speed=SpeedOptions(compile=True), device="cpu", progress=False
    )
    pipe = generator.load()
    events: list[str] = []
    monkeypatch.setattr(pipe.unet, "compile", lambda **kw: events.append("compile"))
    real_load = pipe.load_lora_weights

    def load_lora_weights(*args, **kwargs):
        events.append(f"load hotswap={kwargs.get('hotswap', False)}")
        return real_load(*args, **kwargs)

    monkeypatch.setattr(pipe, "load_lora_weights", load_lora_weights)
    assert events == []  # nothing compiled at load time
    generator.attach_identity(Identity.from_lora(first))
    generator.attach_identity(Identity.from_lora(second))
    assert events == ["load hotswap=False", "compile", "load hotswap=True"]


def test_the_openpose_hint_names_all_three_files(load_real, monkeypatch, tmp_path):
    from headshot_lab.control import conditioning_image
    from headshot_lab.errors import ModelUnavailableError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError) as info:
        conditioning_image(load_real("obama"), "pose", width=64, height=64, annotators=str(tmp_path))
    for name in ("body_pose_model.pth", "hand_pose_model.pth", "facenet.pth"):
        assert name in info.value.fix
