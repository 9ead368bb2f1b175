"""GPU benchmark models: the published SD1.5 / SDXL architectures with random weights, and their add-ons.

No weights are downloaded. The published configs (``config.json`` values of
``stable-diffusion-v1-5/stable-diffusion-v1-5`` and ``stabilityai/stable-diffusion-xl-base-1.0``, inline
below) are built with random weights and saved as diffusers folders; random weights compute exactly as
fast as trained ones. Add-ons are built the same way:

* a random LoRA on the UNet attention projections (the few-step LCM-LoRA stand-in, rank 64, and the
  person's identity LoRA at the product's default rank);
* a random ControlNet from the base UNet with ``ControlNetModel.from_unet`` — the construction of the
  published ControlNets (``lllyasviel/control_v11p_sd15_canny``, ``diffusers/controlnet-canny-sdxl-1.0``:
  the UNet's encoder half plus a 4-level conditioning embedding ``(16, 32, 96, 256)``). The tiny bases
  use :func:`headshot_lab.testing.tiny.tiny_controlnet` (a 2-level embedding for their factor-2 VAE).

Everything is cached in the work folder: a second run with the same ``--workdir`` reuses it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from headshot_lab.testing.tiny import SDXL_SCHEDULER

# --- published architectures (diffusers/transformers config.json values) -------------------------
SD15_UNET = {
    "act_fn": "silu",
    "attention_head_dim": 8,
    "block_out_channels": (320, 640, 1280, 1280),
    "center_input_sample": False,
    "cross_attention_dim": 768,
    "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-5,
    "norm_num_groups": 32,
    "out_channels": 4,
    "sample_size": 64,
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
}
SD_VAE = {
    "act_fn": "silu",
    "block_out_channels": (128, 256, 512, 512),
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "sample_size": 512,
}
CLIP_L = {  # openai/clip-vit-large-patch14 text tower (SD1.5 text encoder, SDXL text_encoder)
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "projection_dim": 768,
    "vocab_size": 49408,
}
CLIP_BIGG = {  # OpenCLIP ViT-bigG/14 text tower (SDXL text_encoder_2)
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "num_attention_heads": 20,
    "num_hidden_layers": 32,
    "max_position_embeddings": 77,
    "hidden_act": "gelu",
    "projection_dim": 1280,
    "vocab_size": 49408,
}
SDXL_UNET = {
    "act_fn": "silu",
    "addition_embed_type": "text_time",
    "addition_embed_type_num_heads": 64,
    "addition_time_embed_dim": 256,
    "attention_head_dim": (5, 10, 20),
    "block_out_channels": (320, 640, 1280),
    "cross_attention_dim": 2048,
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    "in_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "out_channels": 4,
    "projection_class_embeddings_input_dim": 2816,
    "sample_size": 128,
    "transformer_layers_per_block": (1, 2, 10),
    "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    "use_linear_projection": True,
}
FULL_SD15 = {
    "unet": SD15_UNET,
    "vae": SD_VAE,
    "text_encoder": CLIP_L,
    "scheduler": {
        "_class_name": "PNDMScheduler",
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "skip_prk_steps": True,
        "steps_offset": 1,
    },
}
FULL_SDXL = {
    "unet": SDXL_UNET,
    "vae": {**SD_VAE, "sample_size": 1024, "scaling_factor": 0.13025, "force_upcast": True},
    "text_encoder": CLIP_L,
    "text_encoder_2": CLIP_BIGG,
    "scheduler": SDXL_SCHEDULER,
}


def build_base(family: str, spec: dict, workdir: Path, device: Any) -> Path:
    """Save a random-weight base model of architecture ``spec`` (fp16 when built on CUDA); cached."""
    import torch

    from headshot_lab.testing.tiny import save_random_pipeline

    base = workdir / family
    if not (base / "model_index.json").is_file():
        on_gpu = device.type == "cuda"
        save_random_pipeline(
            spec, base, seed=0, device=device if on_gpu else None, dtype=torch.float16 if on_gpu else None
        )
    return base


def build_lora(base: Path, out_dir: Path, *, rank: int, seed: int = 0) -> Path:
    """A random rank-``rank`` LoRA on the UNet attention projections of ``base``; cached. Returns the file."""
    from headshot_lab.testing.tiny import tiny_lora

    weights = out_dir / "pytorch_lora_weights.safetensors"
    if weights.is_file():
        return weights
    return tiny_lora(base, out_dir, rank=rank, seed=seed, std=0.01)


def build_controlnet(base: Path, out_dir: Path, device: Any, *, tiny: bool) -> Path:
    """A random ControlNet matching ``base`` (see the module docstring); cached. Returns its folder."""
    if (out_dir / "config.json").is_file():
        return out_dir
    if tiny:
        from headshot_lab.testing.tiny import tiny_controlnet

        return tiny_controlnet(base, out_dir)
    import torch
    from diffusers import ControlNetModel, UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(str(base), subfolder="unet").to(device)
    with torch.device(device):
        controlnet = ControlNetModel.from_unet(unet)  # the published (16, 32, 96, 256) conditioning embedding
    del unet
    controlnet.to(dtype=torch.float16 if device.type == "cuda" else torch.float32)
    controlnet.save_pretrained(out_dir, safe_serialization=True)
    return out_dir


def native_resolution(base: Path) -> int:
    """The base's native image side: ``unet.sample_size · 2^(VAE levels − 1)`` (512 SD1.5, 1024 SDXL)."""
    unet = json.loads((base / "unet" / "config.json").read_text(encoding="utf-8"))
    vae = json.loads((base / "vae" / "config.json").read_text(encoding="utf-8"))
    return int(unet["sample_size"]) * 2 ** (len(vae["block_out_channels"]) - 1)
