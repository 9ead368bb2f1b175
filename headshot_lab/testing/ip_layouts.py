"""Key layouts (tensor names → shapes) of the published IP-Adapter files, in their *own* key names.

Shared by the tiny random weights (:mod:`headshot_lab.testing.tiny`, toy sizes) and the full-size contracts
(:mod:`headshot_lab.testing.contracts`, published sizes), so both follow one description of each file:

* :func:`faceid_plus_layout` — ``ip-adapter-faceid-plus(v2)_*.bin`` (tencent-ailab ``ProjPlusModel``: the FaceID
  MLP ``proj.0``/``proj.2`` + ``norm``, and ``perceiver_resampler.*``, a ``FacePerceiverResampler``);
* :func:`resampler_layout` — the IP-Adapter-Plus ``Resampler`` (``latents``, ``proj_in``, ``proj_out``,
  ``norm_out``, ``layers.{i}.0`` = PerceiverAttention, ``layers.{i}.1`` = FeedForward), which InstantID's
  ``ip-adapter.bin`` uses under ``image_proj`` (dim 1280, depth 4, 20 heads of 64, 16 queries, 512 → 2048);
* :func:`ip_attention_layout` — ``ip_adapter.{k}.to_k_ip/to_v_ip`` ``[hidden, D]`` for every cross-attention
  processor, ``k = 1, 3, 5, …`` in ``unet.attn_processors`` order (self-attention processors have no weights but
  take an index: the reference saves ``ModuleList(unet.attn_processors.values())``).
"""

from __future__ import annotations

from typing import Any

Layout = dict[str, tuple[int, ...]]


def _perceiver_layers(prefix: str, *, dim: int, depth: int, inner: int, ff_mult: int) -> Layout:
    """``layers.{i}.0`` PerceiverAttention (``norm1``, ``norm2``, ``to_q``, ``to_kv``, ``to_out``; no biases on the
    linears) and ``layers.{i}.1`` FeedForward (``0`` LayerNorm, ``1`` Linear ``dim→mult·dim``, ``3`` back; no bias)."""
    shapes: Layout = {}
    for i in range(depth):
        base = f"{prefix}layers.{i}"
        shapes.update(
            {
                f"{base}.0.norm1.weight": (dim,),
                f"{base}.0.norm1.bias": (dim,),
                f"{base}.0.norm2.weight": (dim,),
                f"{base}.0.norm2.bias": (dim,),
                f"{base}.0.to_q.weight": (inner, dim),
                f"{base}.0.to_kv.weight": (2 * inner, dim),
                f"{base}.0.to_out.weight": (dim, inner),
                f"{base}.1.0.weight": (dim,),
                f"{base}.1.0.bias": (dim,),
                f"{base}.1.1.weight": (dim * ff_mult, dim),
                f"{base}.1.3.weight": (dim, dim * ff_mult),
            }
        )
    return shapes


def faceid_plus_layout(
    *,
    cross: int,
    clip_dim: int = 1280,
    id_dim: int = 512,
    mult: int = 2,
    tokens: int = 4,
    depth: int = 4,
    dim_head: int = 64,
    heads: int | None = None,
    ff_mult: int = 4,
) -> Layout:
    """``image_proj.*`` of a FaceID-Plus file: ``proj.0`` ``[mult·id, id]``, ``proj.2`` ``[tokens·D, mult·id]``,
    ``norm`` ``[D]`` and ``perceiver_resampler`` (``dim = D``, ``heads = D // 64`` unless given, ``proj_in``
    ``[D, clip_dim]``, ``proj_out`` ``[D, D]``, ``norm_out`` ``[D]``)."""
    heads = heads if heads is not None else max(1, cross // dim_head)
    res = "image_proj.perceiver_resampler."
    shapes: Layout = {
        "image_proj.proj.0.weight": (id_dim * mult, id_dim),
        "image_proj.proj.0.bias": (id_dim * mult,),
        "image_proj.proj.2.weight": (cross * tokens, id_dim * mult),
        "image_proj.proj.2.bias": (cross * tokens,),
        "image_proj.norm.weight": (cross,),
        "image_proj.norm.bias": (cross,),
        f"{res}proj_in.weight": (cross, clip_dim),
        f"{res}proj_in.bias": (cross,),
        f"{res}proj_out.weight": (cross, cross),
        f"{res}proj_out.bias": (cross,),
        f"{res}norm_out.weight": (cross,),
        f"{res}norm_out.bias": (cross,),
    }
    shapes.update(_perceiver_layers(res, dim=cross, depth=depth, inner=heads * dim_head, ff_mult=ff_mult))
    return shapes


def resampler_layout(
    *,
    dim: int = 1280,
    depth: int = 4,
    dim_head: int = 64,
    heads: int = 20,
    num_queries: int = 16,
    embedding_dim: int = 512,
    output_dim: int = 2048,
    ff_mult: int = 4,
    prefix: str = "image_proj.",
) -> Layout:
    """The IP-Adapter-Plus / InstantID ``Resampler``: ``latents`` ``[1, queries, dim]``, ``proj_in``
    ``[dim, embedding_dim]``, ``proj_out`` ``[output_dim, dim]``, ``norm_out`` ``[output_dim]`` and the layers."""
    shapes: Layout = {
        f"{prefix}latents": (1, num_queries, dim),
        f"{prefix}proj_in.weight": (dim, embedding_dim),
        f"{prefix}proj_in.bias": (dim,),
        f"{prefix}proj_out.weight": (output_dim, dim),
        f"{prefix}proj_out.bias": (output_dim,),
        f"{prefix}norm_out.weight": (output_dim,),
        f"{prefix}norm_out.bias": (output_dim,),
    }
    shapes.update(_perceiver_layers(prefix, dim=dim, depth=depth, inner=heads * dim_head, ff_mult=ff_mult))
    return shapes


def ip_attention_layout(unet: Any) -> Layout:
    """``ip_adapter.{k}.to_k_ip.weight`` / ``to_v_ip.weight`` ``[hidden, D]`` per cross-attention processor."""
    cross = int(unet.config.cross_attention_dim)
    shapes: Layout = {}
    key_id = 1  # as diffusers' _convert_ip_adapter_attn_to_diffusers counts them
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            continue
        hidden = int(unet.get_submodule(name.removesuffix(".processor")).to_k.out_features)
        shapes[f"ip_adapter.{key_id}.to_k_ip.weight"] = (hidden, cross)
        shapes[f"ip_adapter.{key_id}.to_v_ip.weight"] = (hidden, cross)
        key_id += 2
    return shapes


def random_state(layout: Layout, *, seed: int = 0, std: float = 0.05, ip_gain: float = 20.0) -> dict[str, Any]:
    """Random tensors of ``layout``: LayerNorm-like ``[D]`` ``.weight`` of a ``norm`` → ones, their ``.bias`` and
    other biases small; ``latents`` ~ N(0, 1/dim); linears ~ N(0, std²), the ``to_k_ip``/``to_v_ip`` ones × ``ip_gain``
    (so the identity input visibly moves a tiny model's output)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    state: dict[str, Any] = {}
    for key, shape in layout.items():
        noise = torch.randn(*shape, generator=generator)
        norm_like = len(shape) == 1 and ("norm" in key or ".1.0." in key)
        if norm_like and key.endswith(".weight"):
            value = 1.0 + 0.1 * noise
        elif key.endswith("latents"):
            value = noise / shape[-1] ** 0.5
        elif "_ip." in key:
            value = noise * std * ip_gain
        else:
            value = noise * std
        state[key] = value.contiguous()
    return state


def nested(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{"image_proj": {...}, "ip_adapter": {...}}`` — the ``torch.save`` layout of the published ``.bin`` files."""
    out: dict[str, dict[str, Any]] = {"image_proj": {}, "ip_adapter": {}}
    for key, value in state.items():
        group, _, rest = key.partition(".")
        out[group][rest] = value
    return out
