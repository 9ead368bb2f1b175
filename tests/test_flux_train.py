"""DreamBooth-LoRA of the FLUX transformer on the tiny random FLUX (flow matching, guidance input, prior
preservation, the CLIP-only text LoRA), its card, reloading, generation with it, and bit-exact resume."""

from __future__ import annotations

import numpy as np
import pytest

from headshot_lab.errors import HeadshotLabError
from headshot_lab.train import KOHYA_WEIGHT_NAME, LORA_WEIGHT_NAME, TrainConfig, read_lora_card, train_identity_lora
from headshot_lab.train_flux import FLUX_LORA_TARGETS

pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def photos():
    """Three 64-px pictures with structure (gradients + a disc), centre-cropped: no face detector needed."""
    yy, xx = np.mgrid[0:64, 0:64]
    out = []
    for k in range(3):
        disc = ((yy - 28 - 2 * k) ** 2 + (xx - 32) ** 2 < (14 + k) ** 2)[..., None]
        background = np.stack([xx * 3, yy * 3, np.full_like(xx, 60 * k)], axis=-1)
        out.append(np.where(disc, [200, 160, 140], background).clip(0, 255).astype(np.uint8))
    return out


def quick(**changes) -> TrainConfig:
    values = {
        "steps": 3, "rank": 4, "learning_rate": 1e-3, "prior_preservation": False, "face_crop": False,
        "checkpoint_every": 100, "seed": 0,
    }  # fmt: skip
    return TrainConfig(**(values | changes))


def render(pipe, seed: int = 0) -> np.ndarray:
    import torch

    return pipe(
        "a photo of sks person", num_inference_steps=2, height=64, width=64, max_sequence_length=32,
        generator=torch.Generator().manual_seed(seed), output_type="np",
    ).images[0]  # fmt: skip


def _keys(path) -> list[str]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return list(handle.keys())


def test_flux_lora_trains_saves_reloads_and_changes_the_image(tiny_flux_bases, photos, tmp_path):
    from diffusers import FluxPipeline

    base = tiny_flux_bases["flux-dev"]  # guidance-distilled: the guidance input is used while training
    config = quick(
        prior_preservation=True, num_class_images=2, class_image_steps=2, train_text_encoder=True,
        weighting_scheme="logit_normal",
    )  # fmt: skip
    result = train_identity_lora(photos, str(base), tmp_path / "out", config, progress=False)
    assert len(result.losses) == 3 and all(np.isfinite(result.losses))
    card = result.card
    assert card["family"] == "flux" and read_lora_card(result.lora_path)["family"] == "flux"
    assert card["pipeline_class"] == "FluxPipeline" and card["resolution"] == 64
    assert card["weighting_scheme"] == "logit_normal" and card["guidance_scale"] == 3.5
    assert card["max_sequence_length"] == 512  # the dev-like base's T5 length
    assert card["kohya_file"] == KOHYA_WEIGHT_NAME
    assert len(list((tmp_path / "out" / "class_images").glob("*.png"))) == 2
    keys = _keys(result.lora_path)
    assert keys and all(k.startswith(("transformer.", "text_encoder.")) for k in keys)
    assert any(k.startswith("text_encoder.") for k in keys)  # the CLIP LoRA; T5 is never tuned
    for target in FLUX_LORA_TARGETS:  # every recipe target of the double-stream block is trained
        assert any(f"transformer_blocks.0.{target}.lora_A" in k for k in keys), target

    _kohya_file_is_the_same_lora(tmp_path / "out", alpha=config.lora_alpha)

    pipe = FluxPipeline.from_pretrained(str(base))
    pipe.set_progress_bar_config(disable=True)
    before = render(pipe)
    pipe.load_lora_weights(str(tmp_path / "out"), weight_name=LORA_WEIGHT_NAME)  # the stock diffusers call
    with_lora = render(pipe)
    assert np.abs(with_lora - before).max() > 1e-4
    np.testing.assert_array_equal(render(pipe), with_lora)
    pipe.unload_lora_weights()
    np.testing.assert_array_equal(render(pipe), before)


def test_a_trained_flux_lora_generates_and_refuses_an_sd_base(tiny_flux_bases, tiny_bases, photos, tmp_path):
    from headshot_lab.generate import LoraMismatchError, generate, regenerate

    base = str(tiny_flux_bases["flux"])  # schnell-like: no guidance input
    result = train_identity_lora(photos, base, tmp_path / "lora", quick(steps=2), progress=False)
    assert result.card["max_sequence_length"] == 256
    shots = generate(result.lora_path, "corporate", n=1, seed=4, out_dir=tmp_path / "shots", base=base,
                     steps=2, progress=False)  # fmt: skip
    record = shots.records[0]
    assert record["lora"]["family"] == "flux" and "sks person" in record["prompt_2"]
    again = regenerate(record, root=tmp_path / "shots", device="cpu")
    from PIL import Image

    np.testing.assert_array_equal(np.asarray(again), np.asarray(Image.open(shots.images[0]).convert("RGB")))
    with pytest.raises(LoraMismatchError, match="FLUX"):
        generate(result.lora_path, "corporate", n=1, out_dir=tmp_path / "sd", base=str(tiny_bases["sd15"]),
                 steps=1, progress=False)  # fmt: skip


def _kohya_file_is_the_same_lora(out, *, alpha: float) -> None:
    """The kohya file (BFL names, fused projections) holds exactly the trained matrices: for a fused layer
    ``(alpha_file / rank_file)·up·down`` stacks ``(α/r)·B_i·A_i`` of its parts (zero for a part without a LoRA)."""
    import torch
    from safetensors.torch import load_file

    peft, kohya = load_file(str(out / LORA_WEIGHT_NAME)), load_file(str(out / KOHYA_WEIGHT_NAME))
    assert any(k.startswith("lora_te1_") for k in kohya)  # the CLIP LoRA
    names = {k.split(".")[0] for k in kohya if k.startswith("lora_unet_")}
    assert names == {
        *(f"lora_unet_double_blocks_0_{n}" for n in ("img_attn_qkv", "img_attn_proj", "img_mlp_0", "img_mlp_2",
                                                      "txt_attn_qkv", "txt_attn_proj", "txt_mlp_0", "txt_mlp_2")),
        "lora_unet_single_blocks_0_linear1",
    }  # fmt: skip
    parts = {
        "double_blocks_0_img_attn_qkv": [f"transformer_blocks.0.attn.to_{x}" for x in "qkv"],
        "double_blocks_0_txt_mlp_2": ["transformer_blocks.0.ff_context.net.2"],
        "single_blocks_0_linear1": [f"single_transformer_blocks.0.attn.to_{x}" for x in "qkv"] + [None],
    }
    for name, modules in parts.items():
        down, up = kohya[f"lora_unet_{name}.lora_down.weight"], kohya[f"lora_unet_{name}.lora_up.weight"]
        scale = float(kohya[f"lora_unet_{name}.alpha"]) / down.shape[0]
        merged, row = scale * up @ down, 0
        for module in modules:
            if module is None:  # proj_mlp has no LoRA: its rows are zero
                assert torch.count_nonzero(merged[row:]) == 0
                continue
            delta = (
                (alpha / 4) * peft[f"transformer.{module}.lora_B.weight"] @ peft[f"transformer.{module}.lora_A.weight"]
            )
            torch.testing.assert_close(merged[row : row + delta.shape[0]], delta, rtol=0, atol=1e-6)
            row += delta.shape[0]


class Interrupted(Exception):
    pass


def test_interrupted_flux_training_resumes_to_the_same_lora(tiny_flux_bases, photos, tmp_path):
    import torch
    from safetensors.torch import load_file

    base = str(tiny_flux_bases["flux-dev"])
    config = quick(steps=4, checkpoint_every=2)
    straight = train_identity_lora(photos, base, tmp_path / "straight", config, progress=False)

    def stop(step: int, loss: float) -> None:
        if step == 3:
            raise Interrupted

    with pytest.raises(Interrupted):
        train_identity_lora(photos, base, tmp_path / "resumed", config, progress=False, callback=stop)
    resumed = train_identity_lora(photos, base, tmp_path / "resumed", config, progress=False)
    assert resumed.resumed_from == 2 and resumed.losses == straight.losses
    a, b = load_file(str(straight.lora_path)), load_file(str(resumed.lora_path))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(HeadshotLabError) as info:
        train_identity_lora(photos, base, tmp_path / "resumed", quick(steps=4, weighting_scheme="mode"), progress=False)
    assert info.value.code == "checkpoint_mismatch" and "weighting_scheme" in info.value.message


def test_bad_flux_settings_are_refused():
    with pytest.raises(HeadshotLabError, match="weighting_scheme"):
        TrainConfig(weighting_scheme="uniform").validate()
    with pytest.raises(HeadshotLabError, match="max_sequence_length"):
        TrainConfig(max_sequence_length=1024).validate()
