"""Full-size contracts on the meta device: the published SD1.5 / SDXL architectures, no weights, no GPU.

The configs are facts kept in ``headshot_lab/testing/configs/`` (each names its source); every model here is built
with meta tensors (shapes only), so each test takes a second or a few.
"""

from __future__ import annotations

import re

import pytest

from headshot_lab.testing import contracts as c

PUBLISHED = c.published_config("parameter_counts")


@pytest.fixture(scope="module")
def unets():
    return {family: c.meta_unet(family) for family in ("sd15", "sdxl")}


def test_every_config_names_its_source():
    for path in sorted(c.CONFIG_DIR.glob("*.json")):
        source = c.published_config(path.stem).get("_source", "")
        assert source.strip(), f"{path.name} has no _source"


@pytest.mark.parametrize(
    ("build", "published"),
    [
        (lambda: c.meta_text_encoder("clip_l"), "clip_l_text"),
        (lambda: c.meta_text_encoder("clip_bigg"), "clip_bigg_text_projection"),
    ],
)
def test_text_encoders_have_the_published_sizes(build, published):
    assert c.parameter_count(build()) == PUBLISHED[published]


def test_unets_have_the_published_parameter_counts(unets):
    """A wrong config value (a head count, a block type) changes the count: 859,520,964 and 2,567,463,684."""
    assert c.parameter_count(unets["sd15"]) == PUBLISHED["sd15_unet"]
    assert c.parameter_count(unets["sdxl"]) == PUBLISHED["sdxl_unet"]
    assert all(p.device.type == "meta" for p in unets["sdxl"].parameters())


# ------------------------------------------------------------------------------------------- LoRA layout
@pytest.fixture(scope="module")
def loras():
    """A rank-16 identity LoRA (the product's targets) on a fresh meta UNet of each family: (model, PEFT state)."""
    from peft import LoraConfig, get_peft_model_state_dict

    from headshot_lab.train import UNET_LORA_TARGETS

    out = {}
    for family in ("sd15", "sdxl"):
        model = c.meta_unet(family)
        config = LoraConfig(r=16, lora_alpha=16, init_lora_weights=False, target_modules=list(UNET_LORA_TARGETS))
        model.add_adapter(config)
        out[family] = (model, get_peft_model_state_dict(model))
    return out


# transformer blocks × {attn1, attn2} × {to_q, to_k, to_v, to_out.0}: SD1.5 16 blocks; SDXL 4 + 20 + 10 (mid) + 30 + 6
@pytest.mark.parametrize(("family", "modules"), [("sd15", 16 * 2 * 4), ("sdxl", 70 * 2 * 4)])
def test_identity_lora_targets_every_attention_projection(loras, family, modules):
    _, state = loras[family]
    assert len(state) == 2 * modules
    for key, tensor in state.items():
        assert re.fullmatch(
            r"(down_blocks\.\d\.|up_blocks\.\d\.|mid_block\.)attentions\.\d\.transformer_blocks\.\d+\."
            r"attn[12]\.(to_q|to_k|to_v|to_out\.0)\.lora_[AB]\.weight",
            key,
        ), key
        assert 16 in tensor.shape


def test_cross_attention_lora_reads_the_text_width(loras):
    """attn2.to_k/to_v read the text embeddings: lora_A is [16, 768] on SD1.5, [16, 2048] on SDXL."""
    for family, width in (("sd15", 768), ("sdxl", 2048)):
        _, state = loras[family]
        shapes = {tuple(v.shape) for k, v in state.items() if "attn2.to_k.lora_A" in k}
        assert shapes == {(16, width)}, (family, shapes)


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_kohya_keys_have_the_a1111_layout_and_map_back(loras, family):
    """convert_state_dict_to_kohya gives lora_unet_<module>.lora_down/lora_up/alpha, and diffusers' own reader of
    kohya files maps every one back to a diffusers module of the real UNet."""
    from diffusers.loaders.lora_conversion_utils import _convert_non_diffusers_lora_to_diffusers
    from diffusers.utils import convert_unet_state_dict_to_peft

    from headshot_lab.train import kohya_state_dict

    model, state = loras[family]
    kohya = kohya_state_dict({"unet": model}, alpha=16)
    modules = {key.split(".")[0] for key in kohya}
    assert len(kohya) == 3 * len(modules) == 3 * len(state) // 2
    assert all(re.fullmatch(r"lora_unet_[a-z0-9_]+\.(lora_down\.weight|lora_up\.weight|alpha)", k) for k in kohya)
    back, _alphas = _convert_non_diffusers_lora_to_diffusers(dict(kohya))
    peft = convert_unet_state_dict_to_peft({k.removeprefix("unet."): v for k, v in back.items()})
    assert set(peft) == set(state), "the kohya file does not load back into the same LoRA matrices"
    names = {name for name, _ in model.named_modules()}
    targets = {k.rsplit(".lora_", 1)[0] for k in peft}
    assert targets and targets <= names, sorted(targets - names)[:5]
    assert len(targets) == len(modules)


# ------------------------------------------------------------------------------------------- ControlNet
def test_controlnets_match_their_base_and_refuse_the_other(unets):
    from headshot_lab.control import ControlNetMismatchError, check_controlnet_fits

    pairs = {"sd15": "controlnet_sd15", "sdxl": "controlnet_sdxl"}
    for family, name in pairs.items():
        check_controlnet_fits(c.published_config(name), unets[family].config)
    with pytest.raises(ControlNetMismatchError, match="cross_attention_dim 1024 vs 768"):
        check_controlnet_fits(c.published_config("controlnet_sd21_mediapipe_face"), unets["sd15"].config)
    with pytest.raises(ControlNetMismatchError, match="cross_attention_dim 768 vs 2048"):
        check_controlnet_fits(c.published_config("controlnet_sd15"), unets["sdxl"].config)


def test_published_controlnets_are_the_encoder_half_of_their_unet(unets):
    """ControlNetModel.from_unet(the published UNet) has exactly the published ControlNet's parameter count."""
    import torch
    from diffusers import ControlNetModel

    for family, name in (("sd15", "controlnet_sd15"), ("sdxl", "controlnet_sdxl")):
        with torch.device("meta"):
            derived = ControlNetModel.from_unet(unets[family], load_weights_from_unet=False)
        assert c.parameter_count(derived) == c.parameter_count(c.meta_controlnet(name))


def test_the_default_face_controlnet_is_read_from_the_family_subfolder():
    from headshot_lab.control import DEFAULT_CONTROLNETS, controlnet_subfolder

    face = DEFAULT_CONTROLNETS["face"]
    assert controlnet_subfolder(face, "sd15") == "diffusion_sd15"
    assert controlnet_subfolder(face, "sdxl") is None  # no SDXL weights there: the fit check refuses the root
    assert controlnet_subfolder("lllyasviel/control_v11p_sd15_canny", "sd15") is None


# ------------------------------------------------------------------------------------------- IP-Adapter
@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_faceid_projection_and_adapter_shapes(unets, family):
    """diffusers' FaceID projection at the published sizes has the checkpoint's shapes; one to_k_ip/to_v_ip pair
    per cross-attention processor (SD1.5 16, SDXL 70)."""
    import torch

    projection = c.meta_faceid_projection(family)
    shapes = c.faceid_checkpoint_shapes(family, unets[family])
    assert tuple(projection.ff.net[0].proj.weight.shape) == shapes["image_proj.proj.0.weight"]
    assert tuple(projection.ff.net[2].weight.shape) == shapes["image_proj.proj.2.weight"]
    out = projection(torch.empty(1, 512, device="meta"))
    assert tuple(out.shape) == (1, 4, int(unets[family].config.cross_attention_dim))
    adapters = [k for k in shapes if k.startswith("ip_adapter.") and k.endswith("to_k_ip.weight")]
    assert len(adapters) == {"sd15": 16, "sdxl": 70}[family]


def test_faceid_plus_needs_clip_embeds_and_is_refused_by_layout(unets, tmp_path):
    """The Plus projection reads clip_embeds (never set by the generator): a file of the Plus key layout under a
    neutral name is refused before any loading."""
    import torch
    from safetensors.torch import save_file

    from headshot_lab.generate import FaceIDOptions, FaceIDPlusUnsupportedError, check_faceid_weights

    plus = c.meta_faceid_projection("sd15", plus=True)
    with pytest.raises(AttributeError):  # clip_embeds is None: the crash the refusal prevents
        plus(torch.empty(1, 512, device="meta"))
    layout = c.faceid_plus_key_layout("sd15", unets["sd15"])
    save_file(
        {k: torch.zeros(*(min(s, 2) for s in shape)) for k, shape in layout.items()}, str(tmp_path / "f.safetensors")
    )
    with pytest.raises(FaceIDPlusUnsupportedError, match="Plus"):
        check_faceid_weights(FaceIDOptions(weights=str(tmp_path), weight_name="f.safetensors"), "sd15")
    with pytest.raises(FaceIDPlusUnsupportedError):
        check_faceid_weights(FaceIDOptions(weight_name="ip-adapter-faceid-plusv2_sdxl.bin"), "sdxl")
    plain = c.faceid_checkpoint_shapes("sd15", unets["sd15"])
    save_file(
        {k: torch.zeros(*(min(s, 2) for s in shape)) for k, shape in plain.items()}, str(tmp_path / "p.safetensors")
    )
    check_faceid_weights(FaceIDOptions(weights=str(tmp_path), weight_name="p.safetensors"), "sd15")  # plain: fine


# ------------------------------------------------------------------------------------------- forward + VRAM
@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_one_unet_forward_at_the_real_latent_size(unets, family):
    side = c.NATIVE_LATENT[family]
    out = unets[family](**c.unet_meta_inputs(family, batch=2)).sample
    assert tuple(out.shape) == (2, 4, side, side) and out.device.type == "meta"


@pytest.fixture(scope="module")
def estimates(unets):
    """VRAM per configuration: generation bf16 batch 1 with CFG, and LoRA training with prior preservation
    (batch 2: one instance + one class image), gradient checkpointing and AdamW."""
    return {
        family: {
            "generate": c.generation_vram_estimate(family, unet=unet),
            "train": c.training_vram_estimate(family, unet=unet),
        }
        for family, unet in unets.items()
    }


def test_vram_estimates_per_configuration(estimates, unets):
    sd15, sdxl = estimates["sd15"], estimates["sdxl"]
    # weights alone: SD1.5 UNet in bf16 is 859,520,964 × 2 bytes
    assert sd15["generate"].weights >= PUBLISHED["sd15_unet"] * 2
    assert sdxl["generate"].total > sd15["generate"].total
    assert sdxl["train"].total > sdxl["generate"].total
    # the goals: SDXL training fits a 16 GB card, generation (even without offload) is under 12 GiB
    assert sdxl["train"].total_gib < 16, sdxl["train"].to_dict()
    assert sdxl["generate"].total_gib < 12, sdxl["generate"].to_dict()
    # rank-16 LoRA on the SD1.5 attention projections: ~3.2 M parameters (a few MB file)
    from headshot_lab.train import UNET_LORA_TARGETS

    assert 2e6 < c.lora_parameter_count(unets["sd15"], 16, UNET_LORA_TARGETS) < 5e6


def test_checkpointing_lowers_the_activation_estimate(unets):
    inputs = c.unet_meta_inputs("sd15")
    on = c.activation_bytes(unets["sd15"], inputs, dtype_bytes=2, training=True, checkpointing=True)
    off = c.activation_bytes(unets["sd15"], inputs, dtype_bytes=2, training=True, checkpointing=False)
    inference = c.activation_bytes(unets["sd15"], inputs, dtype_bytes=2, training=False)
    assert inference < on < off


def test_the_vae_has_the_published_size_and_its_decode_scales_with_the_batch():
    """SDXL's VAE decodes in fp32 (force_upcast): at 1024² its decode, not the UNet, is generation's activation
    peak, and it grows with the batch (what VAE slicing avoids)."""
    vae = c.meta_vae()
    assert c.parameter_count(vae) == PUBLISHED["sd_vae"]
    one = c.vae_decode_bytes("sdxl", batch=1, dtype_bytes=4, vae=vae)
    assert c.vae_decode_bytes("sdxl", batch=4, dtype_bytes=4, vae=vae) == 4 * one
    # the largest decoder tensor: 256 channels at 1024² (the third up block's upsampler output, before the last
    # block narrows to 128), its input and output alive at once, fp32: 2 · 4 bytes each
    assert one == 2 * 4 * 256 * 1024 * 1024
