"""Full-size contracts without weights or a GPU: the published architectures built on the ``meta`` device.

Tiny models prove the wiring at toy shapes; these facts check it at the **real** shapes. The published configs
are kept as small JSON files in ``headshot_lab/testing/configs/`` (each with a ``_source``: the Hub ``config.json``
or the upstream code it was copied from); :func:`meta_unet`, :func:`meta_controlnet` and
:func:`meta_faceid_projection` build them under ``torch.device("meta")`` — shapes and dtypes only, no memory, a
second or two for the SDXL UNet — so tests can check, with no download:

* LoRA target modules and state-dict keys against the real layouts (diffusers/PEFT and kohya ``lora_unet_*``);
* ControlNet / base compatibility (``cross_attention_dim`` …) — :func:`headshot_lab.control.check_controlnet_fits`;
* IP-Adapter-FaceID projection shapes, and the single-photo engines at real size (:func:`convert_ip_adapter`: the
  published FaceID-Plus and InstantID key layouts through diffusers' own converters, strict; :func:`meta_identitynet`,
  :func:`meta_clip_vision`);
* one UNet forward at the real latent size (meta tensors in, meta tensors out);
* a VRAM estimate per configuration (:func:`vram_estimate`, :func:`generation_vram_estimate`,
  :func:`training_vram_estimate`, :func:`engine_vram_estimate` per identity engine).

FLUX.1 (``flux_transformer``, ``flux_vae``, ``flux_text_encoders``): :func:`meta_flux_transformer` (schnell or dev),
:func:`flux_meta_inputs` (one transformer call at the real packed-latent shapes: a 1024² image is a 128² latent
of 16 channels, packed into 64² = 4096 tokens of 2·2·16 = 64 features), :func:`flux_generation_vram_estimate` and
:func:`flux_training_vram_estimate`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any

CONFIG_DIR = Path(__file__).with_name("configs")
#: Latent side at the native resolution (image side / 8).
NATIVE_LATENT = {"sd15": 64, "sdxl": 128, "flux": 128}
TEXT_TOKENS = 77
BYTES = {"fp32": 4, "fp16": 2, "bf16": 2}
GIB = 1024**3


@cache
def _read(name: str) -> dict[str, Any]:
    return json.loads((CONFIG_DIR / f"{name}.json").read_text(encoding="utf-8"))


def published_config(name: str) -> dict[str, Any]:
    """A published config from :data:`CONFIG_DIR` (``sd15_unet``, ``sdxl_unet``, ``controlnet_sd15``,
    ``controlnet_sd21_mediapipe_face``, ``controlnet_sdxl``, ``text_encoders``, ``ip_adapter_faceid``,
    ``parameter_counts``), with its ``_source`` and other ``_`` notes."""
    return json.loads(json.dumps(_read(name)))


def model_kwargs(config: Mapping[str, Any]) -> dict[str, Any]:
    """The constructor arguments of a config: every key but the ``_``-prefixed notes."""
    return {k: v for k, v in config.items() if not k.startswith("_")}


def meta_unet(family: str) -> Any:
    """The published ``family`` UNet (``sd15`` / ``sdxl``) with meta tensors."""
    import torch
    from diffusers import UNet2DConditionModel

    with torch.device("meta"):
        return UNet2DConditionModel(**model_kwargs(_read(f"{family}_unet")))


def meta_vae() -> Any:
    """The published SD/SDXL VAE (``AutoencoderKL``) with meta tensors."""
    import torch
    from diffusers import AutoencoderKL

    with torch.device("meta"):
        return AutoencoderKL(**model_kwargs(_read("sd_vae")))


def vae_decode_bytes(family: str, *, batch: int = 1, dtype_bytes: int = 2, vae: Any = None) -> int:
    """Activation memory of decoding ``batch`` latents at the native size: ``b · max_m 2·o_m`` over the decoder's
    modules (a hooked meta forward, as :func:`activation_bytes` for inference). SDXL's VAE has ``force_upcast``:
    diffusers decodes it in fp32 (pass ``dtype_bytes=4``)."""
    import torch

    vae = vae if vae is not None else meta_vae()
    side = NATIVE_LATENT[family]
    channels = int(vae.config.latent_channels)
    sizes: list[int] = []
    hooks = [
        module.register_forward_hook(
            lambda mod, args, out: sizes.append(int(out.numel())) if isinstance(out, torch.Tensor) else None
        )
        for module in vae.decoder.modules()
        if not list(module.children())
    ]
    try:
        with torch.no_grad():
            vae.decode(torch.empty(batch, channels, side, side, device="meta"))
    finally:
        for hook in hooks:
            hook.remove()
    return dtype_bytes * 2 * max(sizes)


def meta_controlnet(name: str) -> Any:
    """A published ControlNet config (``controlnet_sd15`` …) as a ``ControlNetModel`` with meta tensors."""
    import torch
    from diffusers import ControlNetModel

    with torch.device("meta"):
        return ControlNetModel(**model_kwargs(_read(name)))


def meta_text_encoder(name: str) -> Any:
    """``clip_l`` (``CLIPTextModel``) or ``clip_bigg`` (``CLIPTextModelWithProjection``) with meta tensors."""
    import torch
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(**_read("text_encoders")[name])
    cls = CLIPTextModelWithProjection if name == "clip_bigg" else CLIPTextModel
    with torch.device("meta"):
        return cls(config)


def meta_faceid_projection(family: str, *, plus: bool = False) -> Any:
    """diffusers' FaceID image projection for ``family`` at the published sizes (meta tensors):
    ``IPAdapterFaceIDImageProjection`` or, with ``plus``, ``IPAdapterFaceIDPlusImageProjection``."""
    import torch
    from diffusers.models.embeddings import IPAdapterFaceIDImageProjection, IPAdapterFaceIDPlusImageProjection

    facts = _read("ip_adapter_faceid")
    cross = int(facts["cross_attention_dim"][family])
    with torch.device("meta"):
        if not plus:
            return IPAdapterFaceIDImageProjection(
                cross_attention_dim=cross,
                image_embed_dim=facts["id_embeddings_dim"],
                mult=facts["mult"],
                num_tokens=facts["num_tokens"],
            )
        extra = facts["plus"]
        return IPAdapterFaceIDPlusImageProjection(
            embed_dims=cross,
            output_dims=cross,
            hidden_dims=extra["clip_embeddings_dim"],
            id_embeddings_dim=facts["id_embeddings_dim"],
            depth=extra["depth"],
            dim_head=extra["dim_head"],
            heads=cross // extra["dim_head"],
            num_tokens=facts["num_tokens"],
            ffproj_ratio=facts["mult"],
        )


def faceid_checkpoint_shapes(family: str, unet: Any) -> dict[str, tuple[int, ...]]:
    """The tensor shapes of the published ``ip-adapter-faceid_{family}.bin`` (IP-Adapter's own key names).

    ``image_proj.proj.0`` ``[2·512, 512]``, ``proj.2`` ``[4·D, 2·512]``, ``norm`` ``[D]``; and for every
    cross-attention processor ``k`` (1, 3, 5, … in ``unet.attn_processors`` order) ``ip_adapter.{k}.to_k_ip`` /
    ``to_v_ip`` ``[hidden, D]``, where ``hidden`` is that block's width and ``D`` the UNet's
    ``cross_attention_dim``.
    """
    facts = _read("ip_adapter_faceid")
    idd, mult, tokens = facts["id_embeddings_dim"], facts["mult"], facts["num_tokens"]
    cross = int(unet.config.cross_attention_dim)
    shapes: dict[str, tuple[int, ...]] = {
        "image_proj.proj.0.weight": (idd * mult, idd),
        "image_proj.proj.0.bias": (idd * mult,),
        "image_proj.proj.2.weight": (cross * tokens, idd * mult),
        "image_proj.proj.2.bias": (cross * tokens,),
        "image_proj.norm.weight": (cross,),
        "image_proj.norm.bias": (cross,),
    }
    key_id = 1
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        hidden = int(unet.get_submodule(name.removesuffix(".processor")).to_k.out_features)
        shapes[f"ip_adapter.{key_id}.to_k_ip.weight"] = (hidden, cross)
        shapes[f"ip_adapter.{key_id}.to_v_ip.weight"] = (hidden, cross)
        key_id += 2
    return shapes


def faceid_plus_key_layout(family: str, unet: Any) -> dict[str, tuple[int, ...]]:
    """Shapes of a published FaceID-**Plus** file (``ProjPlusModel``: the FaceID proj + a FacePerceiverResampler
    under ``image_proj.perceiver_resampler.*``: :func:`~headshot_lab.testing.ip_layouts.faceid_plus_layout` at the
    published sizes); same ``ip_adapter`` keys as FaceID."""
    from headshot_lab.testing.ip_layouts import faceid_plus_layout, ip_attention_layout

    facts = _read("ip_adapter_faceid")
    extra = facts["plus"]
    layout = faceid_plus_layout(
        cross=int(unet.config.cross_attention_dim),
        clip_dim=extra["clip_embeddings_dim"],
        id_dim=facts["id_embeddings_dim"],
        mult=facts["mult"],
        tokens=facts["num_tokens"],
        depth=extra["depth"],
        dim_head=extra["dim_head"],
        ff_mult=extra["ff_mult"],
    )
    return {**layout, **ip_attention_layout(unet)}


def instantid_key_layout(unet: Any) -> dict[str, tuple[int, ...]]:
    """Shapes of InstantID's ``ip-adapter.bin`` (``image_proj`` = the Resampler of ``configs/instantid.json``,
    ``ip_adapter`` = one ``to_k_ip``/``to_v_ip`` pair per cross-attention of ``unet``)."""
    from headshot_lab.testing.ip_layouts import ip_attention_layout, resampler_layout

    return {**resampler_layout(**_read("instantid")["resampler"]), **ip_attention_layout(unet)}


def convert_ip_adapter(unet: Any, layout: Mapping[str, Sequence[int]]) -> tuple[Any, dict[str, Any]]:
    """A published IP-Adapter key layout through diffusers' own converters on meta tensors:
    ``(image projection, attention processors)`` from ``unet._convert_ip_adapter_image_proj_to_diffusers`` and
    ``_convert_ip_adapter_attn_to_diffusers`` (what ``load_ip_adapter`` runs; both load with ``strict=True``, so a
    missing, extra or mis-shaped key raises)."""
    import torch

    from headshot_lab.testing.ip_layouts import nested

    state = nested({key: torch.empty(*shape, device="meta") for key, shape in layout.items()})
    with torch.device("meta"):
        projection = unet._convert_ip_adapter_image_proj_to_diffusers(state["image_proj"], low_cpu_mem_usage=False)
        processors = unet._convert_ip_adapter_attn_to_diffusers([state], low_cpu_mem_usage=False)
    return projection, processors


def meta_identitynet() -> Any:
    """InstantID's IdentityNet at its published architecture (an SDXL ``ControlNetModel``, meta tensors)."""
    return meta_controlnet(_read("instantid")["identitynet_config"])


def meta_clip_vision() -> Any:
    """``laion/CLIP-ViT-H-14-laion2B-s32B-b79K``'s ``CLIPVisionModelWithProjection`` with meta tensors."""
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    with torch.device("meta"):
        return CLIPVisionModelWithProjection(CLIPVisionConfig(**model_kwargs(_read("clip_vit_h"))))


def unet_meta_inputs(family: str, *, batch: int = 2, latent: int | None = None) -> dict[str, Any]:
    """Meta inputs of one UNet call at the real latent size (batch 2 = classifier-free guidance)."""
    import torch

    side = latent or NATIVE_LATENT[family]
    config = _read(f"{family}_unet")
    meta = torch.device("meta")
    inputs: dict[str, Any] = {
        "sample": torch.empty(batch, config["in_channels"], side, side, device=meta),
        "timestep": torch.tensor([10] * batch, device=meta),
        "encoder_hidden_states": torch.empty(batch, TEXT_TOKENS, config["cross_attention_dim"], device=meta),
    }
    if family == "sdxl":
        pooled = config["projection_class_embeddings_input_dim"] - 6 * config["addition_time_embed_dim"]
        inputs["added_cond_kwargs"] = {
            "text_embeds": torch.empty(batch, pooled, device=meta),
            "time_ids": torch.empty(batch, 6, device=meta),
        }
    return inputs


def parameter_count(module: Any) -> int:
    return int(sum(p.numel() for p in module.parameters()))


# ------------------------------------------------------------------------------------------- VRAM
@dataclass(frozen=True)
class VramEstimate:
    """A VRAM estimate (bytes) of one configuration; see :func:`vram_estimate` for the formula."""

    name: str
    weights: int
    trainable: int
    activations: int
    total: int

    @property
    def total_gib(self) -> float:
        return self.total / GIB

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total_gib": round(self.total_gib, 2)}


def activation_bytes(
    unet: Any, inputs: Mapping[str, Any], *, dtype_bytes: int, training: bool, checkpointing: bool = True
) -> int:
    """Activation memory of one UNet call, from the output sizes of its modules on a meta forward.

    Every leaf module's output size ``o_m`` (elements) is recorded with a forward hook, grouped by the block that
    holds it (each ``resnets.i`` / ``attentions.i`` / up- and down-samplers: diffusers' gradient-checkpointing
    units). With ``b`` bytes per element:

    * inference: ``b · (Σ skip residuals + max_m 2·o_m)`` — the down blocks' outputs stay alive for the up blocks;
      otherwise a module's input and output are alive at once (SDPA: no ``N²`` attention matrix);
    * training without checkpointing: ``b · Σ_m o_m`` — autograd keeps every output for the backward pass;
    * training with checkpointing: ``b · (Σ_blocks o_block_in + max_block Σ_{m ∈ block} o_m)`` — only block inputs
      are kept; one block is recomputed at a time.
    """
    import torch

    records: list[tuple[str, int]] = []
    block_inputs: dict[str, int] = {}

    def block_of(name: str) -> str:
        parts = name.split(".")
        for i, part in enumerate(parts):
            if part in _CHECKPOINT_UNITS and i + 1 < len(parts):
                return ".".join(parts[: i + 2])
        return parts[0]

    hooks = []
    for name, module in unet.named_modules():
        if not name:
            continue
        if not list(module.children()):

            def leaf_hook(mod: Any, args: Any, out: Any, name: str = name) -> None:
                tensor = out[0] if isinstance(out, tuple) else out
                if isinstance(tensor, torch.Tensor):
                    records.append((block_of(name), int(tensor.numel())))

            hooks.append(module.register_forward_hook(leaf_hook))
        if block_of(name) == name:

            def block_hook(mod: Any, args: Any, kwargs: Any, name: str = name) -> None:
                first = args[0] if args else None
                if isinstance(first, torch.Tensor):
                    block_inputs[name] = int(first.numel())
                elif not args:  # FLUX blocks are called with keywords: image and text streams are both kept
                    sizes = [v.numel() for k, v in kwargs.items() if k.endswith("hidden_states") and v is not None]
                    if sizes:
                        block_inputs[name] = int(sum(sizes))

            hooks.append(module.register_forward_pre_hook(block_hook, with_kwargs=True))
    try:
        with torch.no_grad():
            unet(**inputs)
    finally:
        for hook in hooks:
            hook.remove()
    per_block: dict[str, int] = {}
    for block, size in records:
        per_block[block] = per_block.get(block, 0) + size
    if not training:
        skips = sum(size for name, size in block_inputs.items() if name.startswith("down_blocks"))
        return dtype_bytes * (skips + 2 * max(size for _b, size in records))
    if not checkpointing:
        return dtype_bytes * sum(size for _b, size in records)
    return dtype_bytes * (sum(block_inputs.values()) + max(per_block.values()))


#: diffusers' gradient-checkpointing units: UNet resnets/attentions/samplers, FLUX's double and single blocks.
_CHECKPOINT_UNITS = frozenset(
    {"resnets", "attentions", "downsamplers", "upsamplers", "transformer_blocks", "single_transformer_blocks"}
)


def lora_parameter_count(unet: Any, rank: int, targets: Sequence[str]) -> int:
    """``Σ r·(in + out)`` over the UNet's ``nn.Linear`` modules whose name ends with a target (PEFT's matching)."""
    import torch

    total = 0
    for full_name, module in unet.named_modules():
        name = full_name.removesuffix(".base_layer")  # a model that had a PEFT adapter keeps its wrappers
        if isinstance(module, torch.nn.Linear) and any(name == t or name.endswith(f".{t}") for t in targets):
            total += rank * (module.in_features + module.out_features)
    return total


def vram_estimate(
    name: str,
    components: Mapping[str, tuple[int, str]],
    *,
    activations: int,
    trainable_params: int = 0,
    optimizer_bytes_per_param: int = 8,
) -> VramEstimate:
    """``total = Σ_c params_c · bytes(dtype_c) + trainable · (4 + 4 + optimizer) + activations``.

    ``components`` maps a name to ``(parameter count, dtype)``; trainable (LoRA) parameters are fp32 with an fp32
    gradient and the optimizer's state (AdamW: two fp32 moments, 8 bytes; 8-bit AdamW: 2 bytes). The CUDA
    context (~0.3–0.5 GiB) and the allocator's fragmentation are not included: the real peak is higher by
    those (the GPU benchmark measures it).
    """
    weights = sum(count * BYTES[dtype] for count, dtype in components.values())
    trainable = trainable_params * (4 + 4 + optimizer_bytes_per_param)
    return VramEstimate(
        name=name,
        weights=weights,
        trainable=trainable,
        activations=activations,
        total=weights + trainable + activations,
    )


def _text_components(family: str, dtype: str) -> dict[str, tuple[int, str]]:
    counts = _read("parameter_counts")
    out = {"text_encoder": (int(counts["clip_l_text"]), dtype)}
    if family == "sdxl":
        out["text_encoder_2"] = (int(counts["clip_bigg_text_projection"]), dtype)
    return out


def generation_vram_estimate(family: str, *, dtype: str = "bf16", batch: int = 1, unet: Any = None) -> VramEstimate:
    """Generation at the native size: UNet + VAE + text encoder(s) in ``dtype``; activations the larger of one UNet
    call of ``2·batch`` (classifier-free guidance, :func:`activation_bytes`) and the VAE decode of ``batch``
    images (:func:`vae_decode_bytes`; SDXL's VAE decodes in fp32, ``force_upcast``) — they never overlap."""
    unet = unet if unet is not None else meta_unet(family)
    counts = _read("parameter_counts")
    vae_dtype = "fp32" if family == "sdxl" else dtype
    components = {"unet": (parameter_count(unet), dtype), "vae": (int(counts["sd_vae"]), vae_dtype)}
    activations = max(
        activation_bytes(unet, unet_meta_inputs(family, batch=2 * batch), dtype_bytes=BYTES[dtype], training=False),
        vae_decode_bytes(family, batch=batch, dtype_bytes=BYTES[vae_dtype]),
    )
    return vram_estimate(
        f"{family} generate {dtype} batch {batch}",
        {**components, **_text_components(family, dtype)},
        activations=activations,
    )


def training_vram_estimate(
    family: str,
    *,
    rank: int = 16,
    dtype: str = "bf16",
    prior_preservation: bool = True,
    checkpointing: bool = True,
    optimizer_bytes_per_param: int = 8,
    unet: Any = None,
) -> VramEstimate:
    """LoRA training as :func:`headshot_lab.train.train_identity_lora` runs it after the class images are drawn
    and their pipeline freed: UNet and text encoder(s) in ``dtype``, the VAE in fp32, rank-``rank`` LoRA on
    :data:`~headshot_lab.train.UNET_LORA_TARGETS` (fp32 + grad + optimizer state), a batch of 2 with prior
    preservation (instance + class image), else 1."""
    from headshot_lab.train import UNET_LORA_TARGETS

    unet = unet if unet is not None else meta_unet(family)
    counts = _read("parameter_counts")
    components = {"unet": (parameter_count(unet), dtype), "vae": (int(counts["sd_vae"]), "fp32")}
    batch = 2 if prior_preservation else 1
    activations = activation_bytes(
        unet,
        unet_meta_inputs(family, batch=batch),
        dtype_bytes=BYTES[dtype],
        training=True,
        checkpointing=checkpointing,
    )
    return vram_estimate(
        f"{family} LoRA training rank {rank}",
        {**components, **_text_components(family, dtype)},
        activations=activations,
        trainable_params=lora_parameter_count(unet, rank, UNET_LORA_TARGETS),
        optimizer_bytes_per_param=optimizer_bytes_per_param,
    )


# ------------------------------------------------------------------------------------------- identity engines
ENGINE_FAMILIES = {
    "faceid": ("sd15", "sdxl"),
    "faceid-plus": ("sd15",),
    "faceid-plusv2": ("sd15", "sdxl"),
    "instantid": ("sdxl",),
}


def controlnet_residual_bytes(controlnet: Any, inputs: Mapping[str, Any], *, dtype_bytes: int) -> int:
    """``b · Σ`` sizes of a ControlNet's down and mid residuals for one call (a meta forward): they are alive while
    the UNet runs, on top of its own activations."""
    import torch

    with torch.no_grad():
        down, mid = controlnet(**inputs, return_dict=False)
    return dtype_bytes * (sum(int(t.numel()) for t in down) + int(mid.numel()))


def identitynet_meta_inputs(*, batch: int = 2, tokens: int = 16) -> dict[str, Any]:
    """Meta inputs of one IdentityNet call at SDXL's native size: the face tokens as ``encoder_hidden_states``."""
    import torch

    inputs = unet_meta_inputs("sdxl", batch=batch)
    side = NATIVE_LATENT["sdxl"] * 8
    inputs["encoder_hidden_states"] = torch.empty(
        batch, tokens, inputs["encoder_hidden_states"].shape[-1], device="meta"
    )
    inputs["controlnet_cond"] = torch.empty(batch, 3, side, side, device="meta")
    return inputs


def engine_vram_estimate(
    engine: str,
    family: str,
    *,
    dtype: str = "bf16",
    batch: int = 1,
    unet: Any = None,
    base: VramEstimate | None = None,
) -> VramEstimate:
    """Generation with an identity engine: :func:`generation_vram_estimate` plus the engine's modules in ``dtype``:

    * ``faceid``: the ID projection and the ``to_k_ip``/``to_v_ip`` pairs;
    * ``faceid-plus`` / ``faceid-plusv2``: the Plus projection (with its resampler), those pairs and the CLIP ViT-H
      vision tower (it runs once per call on one 224² crop: its activations are far below the UNet's);
    * ``instantid``: the 16-token Resampler, the pairs and IdentityNet; activations
      ``max(UNet call + IdentityNet residuals, IdentityNet call, VAE decode)`` (IdentityNet runs first, its
      residuals stay alive during the UNet call).

    ``base``: the matching :func:`generation_vram_estimate`, when already computed (its meta forward is the slow part).
    """
    import torch

    if family not in ENGINE_FAMILIES.get(engine, ()):
        raise ValueError(f"engine {engine!r} has no published weights for {family}")
    unet = unet if unet is not None else meta_unet(family)
    base = base if base is not None else generation_vram_estimate(family, dtype=dtype, batch=batch, unet=unet)
    size = BYTES[dtype]
    if engine == "faceid":
        layout = faceid_checkpoint_shapes(family, unet)
    elif engine == "instantid":
        layout = instantid_key_layout(unet)
    else:
        layout = faceid_plus_key_layout(family, unet)
    extra = sum(int(torch.Size(shape).numel()) for shape in layout.values())
    if engine.startswith("faceid-plus"):
        extra += parameter_count(meta_clip_vision())
    activations = base.activations
    if engine == "instantid":
        net = meta_identitynet()
        extra += parameter_count(net)
        inputs = identitynet_meta_inputs(batch=2 * batch)
        residuals = controlnet_residual_bytes(net, inputs, dtype_bytes=size)
        unet_peak = activation_bytes(unet, unet_meta_inputs(family, batch=2 * batch), dtype_bytes=size, training=False)
        net_peak = activation_bytes(net, inputs, dtype_bytes=size, training=False)
        activations = max(unet_peak + residuals, net_peak, base.activations)
    return VramEstimate(
        name=f"{family} {engine} generate {dtype} batch {batch}",
        weights=base.weights + extra * size,
        trainable=0,
        activations=activations,
        total=base.weights + extra * size + activations,
    )


# ------------------------------------------------------------------------------------------- FLUX.1
FLUX_VARIANTS = ("schnell", "dev")
#: T5 tokens FluxPipeline pads the prompt to (``max_sequence_length``): schnell 256, dev 512.
FLUX_TEXT_TOKENS = {"schnell": 256, "dev": 512}


def flux_transformer_config(variant: str = "schnell") -> dict[str, Any]:
    """The published FLUX.1 transformer config of ``variant`` (``schnell``, or ``dev`` = ``guidance_embeds``)."""
    if variant not in FLUX_VARIANTS:
        raise ValueError(f"variant must be one of {FLUX_VARIANTS}, got {variant!r}")
    config = model_kwargs(_read("flux_transformer"))
    if variant == "dev":
        config.update(_read("flux_transformer")["_dev_changes"])
    return config


def meta_flux_transformer(variant: str = "schnell") -> Any:
    """The published ``FluxTransformer2DModel`` of ``variant`` with meta tensors."""
    import torch
    from diffusers import FluxTransformer2DModel

    with torch.device("meta"):
        return FluxTransformer2DModel(**flux_transformer_config(variant))


def meta_flux_vae() -> Any:
    """The published FLUX.1 VAE (16 latent channels) with meta tensors."""
    import torch
    from diffusers import AutoencoderKL

    with torch.device("meta"):
        return AutoencoderKL(**model_kwargs(_read("flux_vae")))


def meta_t5_encoder() -> Any:
    """FLUX.1's T5-XXL encoder (``T5EncoderModel``) with meta tensors."""
    import torch
    from transformers import T5Config, T5EncoderModel

    config = T5Config(**_read("flux_text_encoders")["t5_xxl"])
    with torch.device("meta"):
        return T5EncoderModel(config)


def flux_meta_inputs(
    variant: str = "schnell", *, batch: int = 1, resolution: int = 1024, text_tokens: int | None = None
) -> dict[str, Any]:
    """Meta inputs of one FLUX transformer call at the real shapes (no classifier-free guidance: batch as given).

    A ``R×R`` image is an ``(R/8)²`` latent of 16 channels; ``FluxPipeline._pack_latents`` turns 2×2 patches into
    one token, so ``hidden_states`` is ``(B, (R/16)², 64)``, with position ids ``img_ids`` ``((R/16)², 3)``; the
    text is ``encoder_hidden_states`` ``(B, L, 4096)`` (T5, ``L`` = 256 schnell / 512 dev) with all-zero
    ``txt_ids`` ``(L, 3)``; ``pooled_projections`` ``(B, 768)`` (CLIP); ``guidance`` ``(B,)`` only for dev.
    """
    import torch

    config = flux_transformer_config(variant)
    tokens = (resolution // 16) ** 2
    length = text_tokens or FLUX_TEXT_TOKENS[variant]
    meta = torch.device("meta")
    return {
        "hidden_states": torch.empty(batch, tokens, config["in_channels"], device=meta),
        "encoder_hidden_states": torch.empty(batch, length, config["joint_attention_dim"], device=meta),
        "pooled_projections": torch.empty(batch, config["pooled_projection_dim"], device=meta),
        "timestep": torch.empty(batch, device=meta),
        "img_ids": torch.empty(tokens, 3, device=meta),
        "txt_ids": torch.empty(length, 3, device=meta),
        "guidance": torch.empty(batch, device=meta) if config["guidance_embeds"] else None,
        "return_dict": False,
    }


def _flux_components(variant: str, dtype: str, transformer: Any, *, vae_dtype: str) -> dict[str, tuple[int, str]]:
    counts = _read("parameter_counts")
    return {
        "transformer": (parameter_count(transformer), dtype),
        "text_encoder_2": (parameter_count(meta_t5_encoder()), dtype),
        "text_encoder": (int(counts["clip_l_text"]), dtype),
        "vae": (parameter_count(meta_flux_vae()), vae_dtype),
    }


def flux_generation_vram_estimate(
    variant: str = "schnell", *, dtype: str = "bf16", batch: int = 1, transformer: Any = None
) -> VramEstimate:
    """FLUX.1 generation at 1024²: transformer + T5-XXL + CLIP-L + VAE in ``dtype``, activations the larger of one
    transformer call of ``batch`` (guidance-distilled: no doubled batch) and the VAE decode of ``batch`` images.
    With every part on the GPU at once (``--cpu-offload none``); model offload keeps one part there at a time."""
    transformer = transformer if transformer is not None else meta_flux_transformer(variant)
    vae = meta_flux_vae()
    activations = max(
        activation_bytes(transformer, flux_meta_inputs(variant, batch=batch), dtype_bytes=BYTES[dtype], training=False),
        vae_decode_bytes("flux", batch=batch, dtype_bytes=BYTES[dtype], vae=vae),
    )
    return vram_estimate(
        f"flux-{variant} generate {dtype} batch {batch}",
        _flux_components(variant, dtype, transformer, vae_dtype=dtype),
        activations=activations,
    )


def flux_training_vram_estimate(
    variant: str = "dev",
    *,
    rank: int = 16,
    dtype: str = "bf16",
    prior_preservation: bool = True,
    checkpointing: bool = True,
    optimizer_bytes_per_param: int = 8,
    resolution: int = 1024,
    transformer: Any = None,
) -> VramEstimate:
    """FLUX DreamBooth-LoRA as :func:`headshot_lab.train.train_identity_lora` runs it: the transformer and the text
    encoders in ``dtype``, the VAE in fp32, rank-``rank`` LoRA on :data:`~headshot_lab.train_flux.FLUX_LORA_TARGETS`,
    a batch of 2 with prior preservation. The loop itself needs the text encoders' and the VAE's share less (they
    leave the GPU once the latents and prompt embeddings are cached); they are counted because they are on the GPU
    together with the transformer while the caches are made."""
    from headshot_lab.train_flux import FLUX_LORA_TARGETS

    transformer = transformer if transformer is not None else meta_flux_transformer(variant)
    batch = 2 if prior_preservation else 1
    activations = activation_bytes(
        transformer,
        flux_meta_inputs(variant, batch=batch, resolution=resolution),
        dtype_bytes=BYTES[dtype],
        training=True,
        checkpointing=checkpointing,
    )
    return vram_estimate(
        f"flux-{variant} LoRA training rank {rank}",
        _flux_components(variant, dtype, transformer, vae_dtype="fp32"),
        activations=activations,
        trainable_params=lora_parameter_count(transformer, rank, FLUX_LORA_TARGETS),
        optimizer_bytes_per_param=optimizer_bytes_per_param,
    )
