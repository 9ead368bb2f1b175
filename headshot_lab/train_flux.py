"""The FLUX.1 pieces of DreamBooth-LoRA: text encoding, the flow-matching step, LoRA targets, the saved layers.

:func:`headshot_lab.train.train_identity_lora` runs one loop for every family (data, class images, resume,
checkpoints, card); for a FLUX base it calls the functions here where a FLUX transformer differs from a UNet.
They follow diffusers' ``examples/dreambooth/train_dreambooth_lora_flux.py``:

* **LoRA targets** (:data:`FLUX_LORA_TARGETS`): the attention projections of both streams (``to_q/k/v``,
  ``to_out.0``; the text stream's ``add_q/k/v_proj``, ``to_add_out``) and both feed-forwards (``ff``,
  ``ff_context``), the recipe's default ``--lora_layers``.
* **Text**: CLIP's pooled output (``pooled_projections``) and T5's last hidden states (``encoder_hidden_states``)
  with all-zero text position ids ``txt_ids`` of shape ``(L, 3)``; only the CLIP encoder may get a LoRA (as in the
  recipe); T5 stays frozen.
* **Rectified flow** (Esser et al. 2024, "Scaling Rectified Flow Transformers"): with latents
  ``x₀ = (z − shift)·scale`` (the VAE's ``shift_factor`` / ``scaling_factor``), noise ``ε`` and ``σ`` drawn by
  ``compute_density_for_timestep_sampling`` (``u ~ U(0, 1)`` for ``none``; ``sigmoid(N(m, s))`` for
  ``logit_normal``; the ``mode`` density), ``t = timesteps[⌊u·T⌋]``, ``σ = sigmas[⌊u·T⌋]`` of the
  ``FlowMatchEulerDiscreteScheduler``, the model sees ``x_σ = (1 − σ)·x₀ + σ·ε`` packed into 2×2 patches
  (``FluxPipeline._pack_latents``, position ids ``_prepare_latent_image_ids``) at ``timestep = t/1000`` and is
  trained to predict the velocity ``v = ε − x₀``:

  ``L = E[ w(σ)·‖v_θ(x_σ, σ, c) − (ε − x₀)‖² ]``,  ``w`` from ``compute_loss_weighting_for_sd3`` (1 for ``none``,
  ``σ⁻²`` for ``sigma_sqrt``, ``2/(π(1 − 2σ + 2σ²))`` for ``cosmap``).
* **Guidance**: a guidance-distilled transformer (``guidance_embeds``, FLUX.1-dev) gets the guidance value as an
  input while training too (the recipe's ``--guidance_scale 3.5``); schnell has no guidance input.

Every random draw of a step comes from the caller's generator, so a resumed run is bit-exact on CPU like the
UNet families.
"""

from __future__ import annotations

from typing import Any

#: The transformer modules diffusers' ``train_dreambooth_lora_flux.py`` puts LoRA on (its default ``--lora_layers``).
FLUX_LORA_TARGETS = (
    "attn.to_k",
    "attn.to_q",
    "attn.to_v",
    "attn.to_out.0",
    "attn.add_k_proj",
    "attn.add_q_proj",
    "attn.add_v_proj",
    "attn.to_add_out",
    "ff.net.0.proj",
    "ff.net.2",
    "ff_context.net.0.proj",
    "ff_context.net.2",
)
#: ``weighting_scheme`` values of the recipe (``compute_density_for_timestep_sampling`` / ``..._loss_weighting_...``).
WEIGHTING_SCHEMES = ("none", "logit_normal", "mode", "sigma_sqrt", "cosmap")
#: CLIP's context: FLUX's CLIP prompt is always 77 tokens.
CLIP_TOKENS = 77


class FluxTextEncoding:
    """Prompt → ``(T5 hidden states (N, L, D), {"pooled_projections": CLIP pooled (N, P)})`` as FluxPipeline does.

    ``max_sequence_length`` is the T5 length (the base's: schnell 256, dev 512, unless the config sets one).
    """

    def __init__(self, parts: dict[str, Any], max_sequence_length: int) -> None:
        self.parts = parts
        self.max_sequence_length = int(max_sequence_length)

    def encode(self, texts: list[str], device: Any) -> tuple[Any, dict[str, Any]]:
        clip = self.parts["tokenizer"](
            texts, padding="max_length", max_length=CLIP_TOKENS, truncation=True, return_tensors="pt"
        ).input_ids
        t5 = self.parts["tokenizer_2"](
            texts, padding="max_length", max_length=self.max_sequence_length, truncation=True, return_tensors="pt"
        ).input_ids
        pooled = self.parts["text_encoder"](clip.to(device), output_hidden_states=False).pooler_output
        hidden = self.parts["text_encoder_2"](t5.to(device), output_hidden_states=False)[0]
        return hidden, {"pooled_projections": pooled}


def flux_loss(
    transformer: Any,
    latents: Any,
    noise: Any,
    generator: Any,
    hidden: Any,
    added: dict[str, Any],
    *,
    noise_scheduler: Any,
    config: Any,
    autocast: Any,
) -> Any:
    """The per-sample flow-matching loss ``(N,)`` of one batch (see the module docstring for the formula).

    Args:
        transformer: the (LoRA-wrapped) ``FluxTransformer2DModel``.
        latents: ``x₀ = (z − shift)·scale``, ``(N, C, h, w)`` on the training device.
        noise: ``ε``, same shape.
        generator: the step's CPU generator (``σ`` is drawn from it).
        hidden: T5 hidden states ``(N, L, D)``; ``added["pooled_projections"]``: CLIP pooled ``(N, P)``.
        noise_scheduler: the base's ``FlowMatchEulerDiscreteScheduler`` (its ``timesteps`` / ``sigmas``).
        config: the :class:`~headshot_lab.train.TrainConfig` (``weighting_scheme``, ``logit_mean``, ``logit_std``,
            ``mode_scale``, ``guidance_scale``).
        autocast: the accelerator's ``autocast`` context factory.
    """
    import torch
    from diffusers import FluxPipeline
    from diffusers.training_utils import compute_density_for_timestep_sampling, compute_loss_weighting_for_sd3

    device = latents.device
    batch, channels, rows, cols = latents.shape
    u = compute_density_for_timestep_sampling(
        weighting_scheme=config.weighting_scheme,
        batch_size=batch,
        logit_mean=config.logit_mean,
        logit_std=config.logit_std,
        mode_scale=config.mode_scale,
        generator=generator,
    )
    steps = int(noise_scheduler.config.num_train_timesteps)
    indices = (u * steps).long().clamp(0, len(noise_scheduler.timesteps) - 1)
    timesteps = noise_scheduler.timesteps[indices].to(device)
    sigmas = noise_scheduler.sigmas[indices].to(device=device, dtype=latents.dtype).reshape(batch, 1, 1, 1)
    noisy = (1.0 - sigmas) * latents + sigmas * noise
    packed = FluxPipeline._pack_latents(noisy, batch, channels, rows, cols)
    model = transformer.module if hasattr(transformer, "module") else transformer
    dtype = next(p for p in model.parameters() if not p.requires_grad).dtype
    img_ids = FluxPipeline._prepare_latent_image_ids(batch, rows // 2, cols // 2, device, dtype)
    txt_ids = torch.zeros(hidden.shape[1], 3, device=device, dtype=dtype)
    guidance = None
    if model.config.guidance_embeds:
        guidance = torch.full((batch,), float(config.guidance_scale), device=device, dtype=torch.float32)
    with autocast():
        pred = transformer(
            hidden_states=packed.to(dtype),
            timestep=(timesteps / 1000).to(dtype),
            guidance=guidance,
            pooled_projections=added["pooled_projections"],
            encoder_hidden_states=hidden,
            txt_ids=txt_ids,
            img_ids=img_ids,
            return_dict=False,
        )[0]
    # _unpack_latents takes the *pixel* size: h·f with the VAE factor f, here 2·(rows // 2)·f / f = rows
    pred = FluxPipeline._unpack_latents(pred, rows, cols, 1)
    weighting = compute_loss_weighting_for_sd3(weighting_scheme=config.weighting_scheme, sigmas=sigmas)
    target = noise - latents
    return (weighting.float() * (pred.float() - target.float()) ** 2).reshape(batch, -1).mean(dim=1)


def lora_layers(transformer: Any, text_encoder: Any = None) -> dict[str, Any]:
    """``FluxPipeline.save_lora_weights`` keyword arguments for the trained adapters (PEFT keys, no conversion:
    FLUX LoRAs are saved in PEFT layout, as the recipe does) with each adapter's ``LoraConfig`` as metadata."""
    from peft import get_peft_model_state_dict

    layers: dict[str, Any] = {
        "transformer_lora_layers": get_peft_model_state_dict(transformer),
        "transformer_lora_adapter_metadata": transformer.peft_config["default"].to_dict(),
    }
    if text_encoder is not None:
        layers["text_encoder_lora_layers"] = get_peft_model_state_dict(text_encoder, save_embedding_layers=False)
        layers["text_encoder_lora_adapter_metadata"] = text_encoder.peft_config["default"].to_dict()
    return layers


#: kohya-ss / ComfyUI (BFL module names) → the diffusers modules of one double-stream block ``i``; a tuple is one
#: fused BFL projection (``qkv``) standing for several diffusers ones. What diffusers' reader
#: (``lora_conversion_utils._convert_kohya_flux_lora_to_diffusers``) maps back.
KOHYA_DOUBLE_BLOCK = {
    "img_attn_qkv": ("attn.to_q", "attn.to_k", "attn.to_v"),
    "img_attn_proj": ("attn.to_out.0",),
    "img_mlp_0": ("ff.net.0.proj",),
    "img_mlp_2": ("ff.net.2",),
    "txt_attn_qkv": ("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"),
    "txt_attn_proj": ("attn.to_add_out",),
    "txt_mlp_0": ("ff_context.net.0.proj",),
    "txt_mlp_2": ("ff_context.net.2",),
}
#: Single-stream block ``i``: ``linear1`` fuses q, k, v and the MLP input (``proj_mlp``); ``linear2`` is ``proj_out``.
KOHYA_SINGLE_LINEAR1 = ("attn.to_q", "attn.to_k", "attn.to_v", "proj_mlp")


def flux_kohya_state_dict(transformer: Any, *, alpha: float) -> dict[str, Any]:
    """The transformer's PEFT LoRA in the kohya-ss FLUX layout (``lora_unet_double_blocks_{i}_img_attn_qkv`` …,
    ``lora_down`` / ``lora_up`` / ``alpha``), which ComfyUI, Forge and diffusers' kohya reader load.

    A fused BFL projection ``W = [W_1; …; W_k]`` (rows stacked) gets one LoRA of rank ``k·r`` that is exactly the
    ``k`` trained ones: ``down = [A_1; …; A_k]``, ``up = blockdiag(B_1, …, B_k)`` (zero rows for a part without a
    LoRA, e.g. ``proj_mlp`` in ``linear1``), so ``up·down = [B_1A_1; …; B_kA_k]``. kohya scales by
    ``alpha / rank``, so the file's alpha is ``k·α`` (the trained scale ``α / r``). diffusers' reader splits
    ``up`` back by rows (for ``qkv`` it recognises the block-diagonal and restores rank ``r``).
    """
    import torch
    from peft import get_peft_model_state_dict

    state = get_peft_model_state_dict(transformer)

    def pair(module: str) -> tuple[Any, Any] | None:
        a, b = state.get(f"{module}.lora_A.weight"), state.get(f"{module}.lora_B.weight")
        return None if a is None or b is None else (a, b)

    out: dict[str, Any] = {}

    def fused(name: str, block: str, parts: tuple[str, ...]) -> None:
        found = [pair(f"{block}.{part}") for part in parts]
        trained = [p for p in found if p is not None]
        if not trained:
            return
        rank = int(trained[0][0].shape[0])
        downs, ups = [], []
        for part, got in zip(parts, found, strict=True):
            if got is not None:
                downs.append(got[0])
                ups.append(got[1])
            else:  # no LoRA on this part of the fused layer: zero rows of its output width
                width = int(transformer.get_submodule(f"{block}.{part}").out_features)
                ups.append(trained[0][1].new_zeros(width, 0))
        down = torch.cat(downs, dim=0)
        up = _stack_blocks(ups, len(downs) * rank)
        out[f"lora_unet_{name}.lora_down.weight"] = down.detach().contiguous()
        out[f"lora_unet_{name}.lora_up.weight"] = up.detach().contiguous()
        out[f"lora_unet_{name}.alpha"] = torch.tensor(float(alpha) * len(downs))

    for i, _ in enumerate(transformer.transformer_blocks):
        for name, parts in KOHYA_DOUBLE_BLOCK.items():
            fused(f"double_blocks_{i}_{name}", f"transformer_blocks.{i}", parts)
    for i, _ in enumerate(transformer.single_transformer_blocks):
        fused(f"single_blocks_{i}_linear1", f"single_transformer_blocks.{i}", KOHYA_SINGLE_LINEAR1)
        fused(f"single_blocks_{i}_linear2", f"single_transformer_blocks.{i}", ("proj_out",))
    return out


def _stack_blocks(ups: list[Any], rank: int) -> Any:
    """``blockdiag(ups)`` with ``rank`` columns; an ``up`` with no columns (a part without a LoRA) gives zero rows."""
    rows = sum(int(u.shape[0]) for u in ups)
    out = ups[0].new_zeros(rows, rank)
    row = col = 0
    for up in ups:
        out[row : row + up.shape[0], col : col + up.shape[1]] = up
        row += int(up.shape[0])
        col += int(up.shape[1])
    return out
