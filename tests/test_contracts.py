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


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_faceid_plus_layout_converts_to_the_plus_projection_at_real_size(unets, family):
    """The published FaceID-Plus layout goes through diffusers' converters (strict) into
    IPAdapterFaceIDPlusImageProjection: ID MLP 512 → 4·D, resampler reading 1280-wide CLIP ViT-H hidden states,
    heads D/64, out D = the UNet's cross-attention width; with clip_embeds of the 257 ViT-H tokens it gives 4 tokens,
    and the v2 shortcut keeps the shape."""
    import torch
    from diffusers.models.embeddings import IPAdapterFaceIDPlusImageProjection

    unet = unets[family]
    cross = int(unet.config.cross_attention_dim)
    projection, processors = c.convert_ip_adapter(unet, c.faceid_plus_key_layout(family, unet))
    assert isinstance(projection, IPAdapterFaceIDPlusImageProjection)
    assert tuple(projection.proj_in.weight.shape) == (cross, 1280)
    assert projection.layers[0].attn.heads == cross // 64
    ip = [p for p in processors.values() if hasattr(p, "to_k_ip")]
    assert len(ip) == {"sd15": 16, "sdxl": 70}[family] and all(p.num_tokens == [4] for p in ip)
    with pytest.raises(AttributeError):  # diffusers leaves clip_embeds to the caller (None until set)
        projection(torch.empty(2, 512, device="meta"))
    projection.clip_embeds = torch.empty(2, 1, 257, 1280, device="meta")
    assert tuple(projection(torch.empty(2, 512, device="meta")).shape) == (2, 4, cross)
    projection.shortcut = True
    assert tuple(projection(torch.empty(2, 512, device="meta")).shape) == (2, 4, cross)


def test_the_clip_vit_h_encoder_gives_257_tokens_of_1280():
    encoder = c.meta_clip_vision()
    assert c.parameter_count(encoder) == PUBLISHED["clip_vit_h_vision_projection"]
    import torch

    hidden = encoder(torch.empty(1, 3, 224, 224, device="meta"), output_hidden_states=True).hidden_states[-2]
    assert tuple(hidden.shape) == (1, 257, c.published_config("ip_adapter_faceid")["plus"]["clip_embeddings_dim"])


def test_instantid_resampler_projects_512_to_16_tokens_of_2048(unets):
    """InstantID's ip-adapter.bin layout converts (strict) into IPAdapterPlusImageProjection: 16 latents of 1280,
    20 heads, 512 → 16 × 2048 (the SDXL UNet's cross-attention width), and 16-token IP processors on all 70
    cross-attentions; the same layout does not fit SD1.5's 768-wide attention."""
    import torch
    from diffusers.models.embeddings import IPAdapterPlusImageProjection

    projection, processors = c.convert_ip_adapter(unets["sdxl"], c.instantid_key_layout(unets["sdxl"]))
    assert isinstance(projection, IPAdapterPlusImageProjection)
    assert tuple(projection.latents.shape) == (1, 16, 1280) and projection.layers[0].attn.heads == 20
    tokens = projection(torch.empty(2, 1, 512, device="meta"))  # one ArcFace embedding as a 1-long sequence
    assert tuple(tokens.shape) == (2, 16, 2048) == (2, 16, unets["sdxl"].config.cross_attention_dim)
    ip = [p for p in processors.values() if hasattr(p, "to_k_ip")]
    assert len(ip) == 70 and all(p.num_tokens == [16] for p in ip)
    with pytest.raises(RuntimeError, match="size mismatch"):
        c.convert_ip_adapter(unets["sd15"], c.instantid_key_layout(unets["sdxl"]))


def test_identitynet_fits_sdxl_reads_face_tokens_and_refuses_sd15(unets):
    """IdentityNet (an SDXL ControlNet) fits the SDXL UNet; at 1024² it takes the 16 face tokens as its
    cross-attention input and returns residuals of the UNet's down/mid shapes; SD1.5 is refused by the fit check."""
    from headshot_lab.control import ControlNetMismatchError, check_controlnet_fits

    net = c.meta_identitynet()
    check_controlnet_fits(net.config, unets["sdxl"].config)
    with pytest.raises(ControlNetMismatchError, match="cross_attention_dim 2048 vs 768"):
        check_controlnet_fits(net.config, unets["sd15"].config)
    down, mid = net(**c.identitynet_meta_inputs(batch=2), return_dict=False)
    assert len(down) == 9 and tuple(down[0].shape) == (2, 320, 128, 128) and tuple(mid.shape) == (2, 1280, 32, 32)
    out = unets["sdxl"](
        **c.unet_meta_inputs("sdxl", batch=2), down_block_additional_residuals=down, mid_block_additional_residual=mid
    ).sample
    assert tuple(out.shape) == (2, 4, 128, 128)


@pytest.fixture(scope="module")
def base_estimates(unets):
    return {family: c.generation_vram_estimate(family, unet=unet) for family, unet in unets.items()}


def test_vram_estimate_per_faceid_engine(unets, base_estimates):
    """FaceID adds its projection and 70 to_k_ip/to_v_ip pairs on SDXL (~0.35 B parameters); Plus v2 adds the CLIP
    ViT-H tower (0.63 B) and its resampler on top; neither changes the activation peak (the encoder runs once on one
    224² crop). SDXL + PlusV2 in bf16 stays under 12 GiB, SD1.5 + Plus under 4 GiB."""
    base = base_estimates["sdxl"]
    faceid = c.engine_vram_estimate("faceid", "sdxl", unet=unets["sdxl"], base=base)
    plus = c.engine_vram_estimate("faceid-plusv2", "sdxl", unet=unets["sdxl"], base=base)
    assert base.total < faceid.total < plus.total and faceid.activations == plus.activations == base.activations
    assert 0.3e9 < (faceid.weights - base.weights) / 2 < 0.4e9
    assert plus.weights - faceid.weights > PUBLISHED["clip_vit_h_vision_projection"] * 2
    assert plus.total_gib < 12, plus.to_dict()
    sd15 = c.engine_vram_estimate("faceid-plus", "sd15", unet=unets["sd15"], base=base_estimates["sd15"])
    assert sd15.total_gib < 4, sd15.to_dict()
    with pytest.raises(ValueError, match="no published weights"):
        c.engine_vram_estimate("instantid", "sd15", unet=unets["sd15"])
    with pytest.raises(ValueError, match="no published weights"):
        c.engine_vram_estimate("faceid-plus", "sdxl", unet=unets["sdxl"])


@pytest.mark.slow
def test_vram_estimate_of_instantid(unets, base_estimates):
    """InstantID adds IdentityNet (1.25 B parameters, the SDXL ControlNet) + the Resampler and the 16-token pairs:
    ~3 GiB of bf16 weights over the base; its residuals (alive during the UNet call) are counted, and SDXL InstantID
    at 1024², batch 1 with guidance, stays under 16 GiB (a 16 GB card)."""
    base = base_estimates["sdxl"]
    instantid = c.engine_vram_estimate("instantid", "sdxl", unet=unets["sdxl"], base=base)
    net = c.meta_identitynet()
    assert c.parameter_count(net) > 1.2e9
    residuals = c.controlnet_residual_bytes(net, c.identitynet_meta_inputs(batch=2), dtype_bytes=2)
    assert residuals > 0 and instantid.activations >= base.activations
    assert 2.5 < (instantid.weights - base.weights) / c.GIB < 4.0
    assert instantid.total_gib < 16, instantid.to_dict()


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
