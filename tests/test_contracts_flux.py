"""Full-size FLUX.1 contracts on the meta device: the published schnell/dev transformer, VAE and T5 configs, the
recipe's LoRA targets and key layout at real size, one transformer call at the real packed-latent shapes, VRAM."""

from __future__ import annotations

import inspect
import re

import pytest

from headshot_lab.testing import contracts as c

CLIP_L_WIDTH = 768


@pytest.fixture(scope="module")
def schnell():
    return c.meta_flux_transformer("schnell")


def test_the_published_config_is_diffusers_default_and_wires_up():
    """The FLUX.1 config equals FluxTransformer2DModel's defaults; its widths fit the VAE, RoPE and encoders."""
    from diffusers import FluxTransformer2DModel

    config = c.flux_transformer_config("schnell")
    defaults = {
        k: (list(v.default) if isinstance(v.default, tuple) else v.default)
        for k, v in inspect.signature(FluxTransformer2DModel.__init__).parameters.items()
        if k in config
    }
    assert config == defaults
    assert c.flux_transformer_config("dev") == {**config, "guidance_embeds": True}
    vae = c.model_kwargs(c.published_config("flux_vae"))
    t5 = c.published_config("flux_text_encoders")["t5_xxl"]
    assert config["in_channels"] == 4 * vae["latent_channels"]  # 2×2 patches of 16 channels per token
    assert sum(config["axes_dims_rope"]) == config["attention_head_dim"]  # RoPE over (index, row, col)
    assert config["joint_attention_dim"] == t5["d_model"] and config["pooled_projection_dim"] == CLIP_L_WIDTH
    assert c.published_config("text_encoders")["clip_l"]["hidden_size"] == CLIP_L_WIDTH


def test_the_tiny_flux_follows_the_same_rules():
    from headshot_lab.testing.tiny import TINY_FLUX

    spec = TINY_FLUX["transformer"]
    assert spec["in_channels"] == 4 * TINY_FLUX["vae"]["latent_channels"]
    assert sum(spec["axes_dims_rope"]) == spec["attention_head_dim"]
    assert spec["joint_attention_dim"] == TINY_FLUX["text_encoder_2"]["d_model"]
    assert spec["pooled_projection_dim"] == TINY_FLUX["text_encoder"]["hidden_size"]


def test_sizes_and_the_dev_guidance_embedder():
    """dev = schnell + the guidance embedder (Linear 256→3072 and 3072→3072): checked on 0-block copies."""
    import torch
    from diffusers import FluxTransformer2DModel

    def stem(variant: str) -> int:
        with torch.device("meta"):
            model = FluxTransformer2DModel(
                **{**c.flux_transformer_config(variant), "num_layers": 0, "num_single_layers": 0}
            )
        return c.parameter_count(model)

    inner = 24 * 128
    assert stem("dev") - stem("schnell") == (256 * inner + inner) + (inner * inner + inner) == 10_229_760
    assert 4.7e9 < c.parameter_count(c.meta_t5_encoder()) < 4.8e9  # T5-XXL encoder, ~4.76 B
    vae = c.meta_flux_vae()
    assert vae.config.latent_channels == 16 and 83e6 < c.parameter_count(vae) < 84e6


def test_full_size_count(schnell):
    """~11.9 billion parameters (schnell 11,891,178,560; dev adds 10,229,760)."""
    assert c.parameter_count(schnell) == 11_891_178_560
    assert all(p.device.type == "meta" for p in schnell.parameters())


def test_lora_targets_exist_and_the_saved_key_layout(schnell):
    """The recipe's 12 targets in each of the 19 double blocks and to_q/k/v in each of the 38 single blocks (they
    have no to_out: their attention output is fused into proj_out), saved under ``transformer.``."""
    from diffusers import FluxPipeline
    from peft import LoraConfig, get_peft_model_state_dict

    from headshot_lab.train_flux import FLUX_LORA_TARGETS

    names = {name for name, _ in schnell.named_modules()}
    for target in FLUX_LORA_TARGETS:
        assert f"transformer_blocks.18.{target}" in names, target
    assert {f"single_transformer_blocks.37.attn.{p}" for p in ("to_q", "to_k", "to_v")} <= names
    assert "single_transformer_blocks.0.attn.to_out.0" not in names
    schnell.add_adapter(
        LoraConfig(r=16, lora_alpha=16, init_lora_weights=False, target_modules=list(FLUX_LORA_TARGETS))
    )
    try:
        state = get_peft_model_state_dict(schnell)
        assert len(state) == 2 * (19 * 12 + 38 * 3)
        pattern = r"(transformer_blocks\.\d+\.(attn\.(to_[qkv]|to_out\.0|add_[qkv]_proj|to_add_out)|ff(_context)?\.net\.(0\.proj|2))|single_transformer_blocks\.\d+\.attn\.to_[qkv])\.lora_[AB]\.weight"
        assert all(re.fullmatch(pattern, k) for k in state), [k for k in state if not re.fullmatch(pattern, k)][:3]
        shapes = {tuple(v.shape) for k, v in state.items() if k.endswith("attn.add_k_proj.lora_A.weight")}
        assert shapes == {(16, 3072)}
        ff = {tuple(v.shape) for k, v in state.items() if k.endswith("ff.net.2.lora_A.weight")}
        assert ff == {(16, 4 * 3072)}  # the feed-forward's inner width
        packed = FluxPipeline.pack_weights(state, "transformer")
        assert all(k.startswith("transformer.") for k in packed)
    finally:
        schnell.delete_adapters("default")


def test_one_transformer_call_at_the_real_packed_shapes(schnell):
    import torch

    for resolution, tokens in ((1024, 4096), (768, 2304)):
        inputs = c.flux_meta_inputs("schnell", batch=2, resolution=resolution)
        assert inputs["hidden_states"].shape == (2, tokens, 64) and inputs["guidance"] is None
        with torch.no_grad():
            out = schnell(**inputs)[0]
        assert out.shape == (2, tokens, 64) and out.device.type == "meta"
    assert c.flux_meta_inputs("dev")["encoder_hidden_states"].shape == (1, 512, 4096)


def test_flux_vram_estimates(schnell):
    """bf16 weights alone are ~31 GiB (12 B transformer + 4.8 B T5): more than a 24 GB card; gradient
    checkpointing keeps the LoRA training activations to a fraction of the uncheckpointed ones."""
    generate = c.flux_generation_vram_estimate("schnell", transformer=schnell)
    assert generate.weights > 31 * c.GIB and generate.total_gib > 24
    train = c.flux_training_vram_estimate("schnell", transformer=schnell)
    assert train.trainable > 0 and train.total > generate.total
    full = c.flux_training_vram_estimate("schnell", transformer=schnell, checkpointing=False)
    assert full.activations > 5 * train.activations


def test_the_kohya_flux_file_reads_back_exactly_at_full_size(schnell):
    """diffusers' kohya FLUX reader (full-size widths hard-coded) restores every trained LoRA of the real FLUX.1
    from the file's fused BFL projections: checked on random rank-2 matrices of the published shapes, by
    ``B'·(A'·x) = (α/r)·B·(A·x)`` for a random probe ``x`` per module (no 3072×12288 products)."""
    import torch
    from diffusers.loaders.lora_conversion_utils import _convert_kohya_flux_lora_to_diffusers
    from peft import LoraConfig, get_peft_model_state_dict

    from headshot_lab.train_flux import FLUX_LORA_TARGETS, flux_kohya_state_dict

    rank, alpha = 2, 4.0
    schnell.add_adapter(
        LoraConfig(r=rank, lora_alpha=alpha, init_lora_weights=False, target_modules=list(FLUX_LORA_TARGETS))
    )
    try:
        g = torch.Generator().manual_seed(0)
        for module in schnell.modules():
            for attr in ("lora_A", "lora_B"):
                layers = getattr(module, attr, None)
                if isinstance(layers, torch.nn.ModuleDict) and "default" in layers:  # real CPU tensors, LoRA only
                    layer = layers["default"]
                    layer.weight = torch.nn.Parameter(
                        torch.randn(layer.weight.shape, generator=g) / 10, requires_grad=False
                    )
        state = get_peft_model_state_dict(schnell)
        kohya = flux_kohya_state_dict(schnell, alpha=alpha)
        assert all(k.startswith(("lora_unet_double_blocks_", "lora_unet_single_blocks_")) for k in kohya)
        back = _convert_kohya_flux_lora_to_diffusers(dict(kohya))
        checked = 0
        for key, a in state.items():
            if not key.endswith("lora_A.weight"):
                continue
            module = key.removesuffix(".lora_A.weight")
            probe = torch.randn(a.shape[1], 1, generator=g)
            want = (alpha / rank) * state[f"{module}.lora_B.weight"] @ (a @ probe)
            got = back[f"transformer.{module}.lora_B.weight"] @ (back[f"transformer.{module}.lora_A.weight"] @ probe)
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)  # float32 summation order
            checked += 1
        assert checked == 19 * 12 + 38 * 3
        assert (
            int(back["transformer.transformer_blocks.0.attn.to_q.lora_A.weight"].shape[0]) == rank
        )  # qkv: rank r again
    finally:
        schnell.delete_adapters("default")
