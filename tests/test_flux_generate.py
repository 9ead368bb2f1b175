"""FLUX.1-class bases on the tiny random FLUX: family, style prompts (T5 form, no negative), sampler defaults,
identity LoRA, exact regeneration, and clear refusals of what FLUX does not take."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from headshot_lab.errors import HeadshotLabError
from headshot_lab.generate import (
    FaceIDOptions,
    HeadshotGenerator,
    Identity,
    SpeedOptions,
    generate,
    read_manifest,
    regenerate,
)
from headshot_lab.styles import list_styles, load_style

pytestmark = pytest.mark.usefixtures("torch_one_thread")
STEPS = 2


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture()
def calls(monkeypatch):
    """Every FluxPipeline call's keyword arguments."""
    from diffusers import FluxPipeline

    seen: list[dict] = []
    real = FluxPipeline.__call__

    def spy(self, *args, **kwargs):
        seen.append(dict(kwargs))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(FluxPipeline, "__call__", spy)
    return seen


@pytest.mark.parametrize("arch", ["flux", "flux-dev"])
def test_tiny_flux_is_a_flux_base(tiny_flux_bases, arch):
    from headshot_lab.models import load_pipeline, locate_base

    located = locate_base(tiny_flux_bases[arch])
    assert located.family == "flux" and located.pipeline_class == "FluxPipeline"
    pipe, _ = load_pipeline(located)
    assert type(pipe).__name__ == "FluxPipeline"


def test_style_presets_render_on_flux_without_a_negative_prompt(tiny_flux_bases, calls, tmp_path):
    base = str(tiny_flux_bases["flux"])
    generator = HeadshotGenerator(base, device="cpu", progress=False)
    for name in list_styles():
        result = generator(None, name, n=1, seed=5, out_dir=tmp_path / name, steps=STEPS)
        record = result.records[0]
        style = load_style(name)
        kwargs = calls[-1]
        assert kwargs["negative_prompt"] is None  # FLUX has no negative prompt
        assert kwargs["prompt"] == style.render_prompt("a person")  # CLIP: the short tag prompt
        assert kwargs["prompt_2"] == style.render_prompt("a person", "flux") != kwargs["prompt"]  # T5: sentences
        assert kwargs["max_sequence_length"] == 256  # schnell-like
        assert record["negative_prompt"] is None and record["family"] == "flux"
        assert record["prompt_2"] == kwargs["prompt_2"] and record["max_sequence_length"] == 256
        assert (record["width"], record["height"]) == style.size_for(64, multiple=8)
        assert pixels(result.images[0]).std() > 0


def test_flux_takes_the_bases_sampler_defaults_not_the_styles(tiny_flux_bases, calls, tmp_path):
    corporate = load_style("corporate")
    schnell = HeadshotGenerator(str(tiny_flux_bases["flux"]), device="cpu", progress=False)
    assert schnell.sampling(corporate, None, None) == (4, 0.0)
    dev = HeadshotGenerator(str(tiny_flux_bases["flux-dev"]), device="cpu", progress=False)
    assert dev.sampling(corporate, None, None) == (28, 3.5)
    assert dev.sampling(corporate, 3, 2.0) == (3, 2.0)  # explicit values win
    result = dev(None, "corporate", n=1, seed=1, out_dir=tmp_path, steps=STEPS)
    assert calls[-1]["guidance_scale"] == 3.5 and calls[-1]["max_sequence_length"] == 512
    assert result.records[0]["guidance_scale"] == 3.5


@pytest.mark.parametrize("arch", ["flux", "flux-dev"])
def test_flux_regenerates_bit_exactly(tiny_flux_bases, tmp_path, arch):
    out = tmp_path / "shots"
    result = generate(
        None, "office", n=3, seed=21, out_dir=out, base=str(tiny_flux_bases[arch]), steps=STEPS,
        speed=SpeedOptions(batch_size=2), device="cpu", progress=False,
    )  # fmt: skip
    records = read_manifest(out)
    shots = [pixels(p) for p in result.images]
    assert not np.array_equal(shots[0], shots[1])
    for index in (1, 2):  # the second image of a batch of two, and a batch of one
        np.testing.assert_array_equal(np.asarray(regenerate(records[index], root=out, device="cpu")), shots[index])


def test_flux_identity_lora_changes_the_image_and_reloads(tiny_flux_bases, tmp_path):
    from headshot_lab.testing.tiny import tiny_lora

    base = str(tiny_flux_bases["flux-dev"])
    lora = tiny_lora(base, tmp_path / "lora", seed=1)
    plain = generate(None, "corporate", n=1, seed=3, out_dir=tmp_path / "a", base=base, steps=STEPS, progress=False)
    first = generate(lora, "corporate", n=1, seed=3, out_dir=tmp_path / "b", base=base, steps=STEPS, progress=False)
    half = generate(
        Identity.from_lora(lora, scale=0.5), "corporate", n=1, seed=3, out_dir=tmp_path / "c", base=base,
        steps=STEPS, progress=False,
    )  # fmt: skip
    a, b, c = (pixels(r.images[0]) for r in (plain, first, half))
    assert np.abs(a.astype(int) - b).max() > 0 and not np.array_equal(b, c)
    record = first.records[0]
    assert record["lora"]["path"] == str(lora.resolve()) and "sks person" in record["prompt_2"]
    np.testing.assert_array_equal(np.asarray(regenerate(record, root=tmp_path / "b", device="cpu")), b)


def test_flux_compile_waits_for_the_identity_and_hot_swaps(tiny_flux_bases, tmp_path, monkeypatch):
    from headshot_lab.testing.tiny import tiny_lora

    base = tiny_flux_bases["flux"]
    first, second = tiny_lora(base, tmp_path / "a", seed=1), tiny_lora(base, tmp_path / "b", seed=2)
    generator = HeadshotGenerator(str(base), speed=SpeedOptions(compile=True), device="cpu", progress=False)
    pipe = generator.load()
    events: list[str] = []
    monkeypatch.setattr(pipe.transformer, "compile", lambda **kw: events.append("compile"))
    real_load = pipe.load_lora_weights

    def load_lora_weights(*args, **kwargs):
        events.append(f"load hotswap={kwargs.get('hotswap', False)}")
        return real_load(*args, **kwargs)

    monkeypatch.setattr(pipe, "load_lora_weights", load_lora_weights)
    generator.attach_identity(Identity.from_lora(first))
    generator.attach_identity(Identity.from_lora(second))
    assert events == ["load hotswap=False", "compile", "load hotswap=True"]


def test_what_flux_does_not_take_is_refused_clearly(tiny_flux_bases, tmp_path):
    from headshot_lab.hires import HiresOptions

    base = str(tiny_flux_bases["flux"])
    with pytest.raises(HeadshotLabError, match="IP-Adapter-FaceID") as info:
        HeadshotGenerator(base, faceid=FaceIDOptions(), device="cpu", progress=False).load()
    assert info.value.code == "unsupported_for_family"
    with pytest.raises(HeadshotLabError, match="LCM") as info:
        HeadshotGenerator(base, speed=SpeedOptions(few_step_lora="x/y"), device="cpu", progress=False).load()
    with pytest.raises(HeadshotLabError, match="hires") as info:
        generate(None, "corporate", n=1, out_dir=tmp_path, base=base, steps=1, hires=HiresOptions(), progress=False)
    assert info.value.code == "unsupported_for_family"
    with pytest.raises(HeadshotLabError, match="multiples of 8"):
        generate(None, "corporate", n=1, out_dir=tmp_path, base=base, steps=1, width=60, height=64, progress=False)


def test_a_sd_lora_on_a_flux_base_is_a_clear_error(tiny_flux_bases, tmp_path):
    from headshot_lab.generate import LoraMismatchError

    lora = tmp_path / "lora.safetensors"
    import json

    import torch
    from safetensors.torch import save_file

    card = {"family": "sd15", "base_model": "some/sd15", "token": "sks"}
    save_file({"unet.x.lora_A.weight": torch.zeros(1, 1)}, str(lora), metadata={"headshot_lab_card": json.dumps(card)})
    with pytest.raises(LoraMismatchError, match=r"FLUX\.1-class"):
        generate(
            lora, "corporate", n=1, out_dir=tmp_path / "o", base=str(tiny_flux_bases["flux"]), steps=1, progress=False
        )


@pytest.fixture(scope="module")
def flux_controlnet(tiny_flux_bases, tmp_path_factory):
    from headshot_lab.testing.tiny import tiny_flux_controlnet

    return tiny_flux_controlnet(tiny_flux_bases["flux"], tmp_path_factory.mktemp("flux-cn") / "controlnet")


def test_a_flux_controlnet_steers_the_image_and_regenerates(tiny_flux_bases, flux_controlnet, tmp_path):
    from headshot_lab.generate import ControlOptions

    yy, xx = np.mgrid[0:64, 0:64]
    reference = np.where(((yy - 32) ** 2 + (xx - 30) ** 2 < 300)[..., None], 230, 20).astype(np.uint8).repeat(3, -1)
    options = ControlOptions(model=str(flux_controlnet), kind="canny", image=reference, scale=1.0)
    generator = HeadshotGenerator(str(tiny_flux_bases["flux"]), control=options, device="cpu", progress=False)
    result = generator(None, "team", n=1, seed=0, out_dir=tmp_path, steps=STEPS)
    record = result.records[0]
    assert record["pipeline"] == "FluxControlNetPipeline" and record["control"]["options"]["kind"] == "canny"
    saved = Image.open(tmp_path / record["control"]["image_file"]).convert("RGB")
    assert np.asarray(saved).max() > 0  # the canny map of the disc has its edge
    common = {"steps": STEPS, "guidance_scale": 0.0, "width": 64, "height": 64, "prompt_2": record["prompt_2"]}
    with_map, _ = generator.render(record["prompt"], None, [0], control_image=saved, **common)
    blank, _ = generator.render(record["prompt"], None, [0], control_image=Image.new("RGB", (64, 64)), **common)
    assert not np.array_equal(np.asarray(with_map), np.asarray(blank))  # the map reaches the transformer
    np.testing.assert_array_equal(np.asarray(regenerate(record, root=tmp_path, device="cpu")), pixels(result.images[0]))


def test_controlnets_of_the_other_family_are_refused_before_loading(
    tiny_flux_bases, tiny_bases, flux_controlnet, tmp_path
):
    from headshot_lab.control import ControlNetMismatchError
    from headshot_lab.generate import ControlOptions
    from headshot_lab.testing.tiny import tiny_controlnet

    sd_controlnet = tiny_controlnet(tiny_bases["sd15"], tmp_path / "sd-cn")
    with pytest.raises(ControlNetMismatchError, match="joint_attention_dim"):
        HeadshotGenerator(
            str(tiny_flux_bases["flux"]), control=ControlOptions(model=str(sd_controlnet)), device="cpu", progress=False
        ).load()
    with pytest.raises(ControlNetMismatchError):
        HeadshotGenerator(
            str(tiny_bases["sd15"]), control=ControlOptions(model=str(flux_controlnet)), device="cpu", progress=False
        ).load()
