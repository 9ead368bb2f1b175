"""Tiny random diffusers models: the whole pipeline, offline, in seconds.

No Stable-Diffusion-class weights can be downloaded in CI (or on a laptop without a token), so tests,
notebooks and install smoke tests use *tiny random* models built in code — the diffusers
``get_dummy_components()`` pattern. They prove the wiring (a LoRA trains, saves, reloads and changes
the output; a ControlNet image reaches the UNet; seeds reproduce), never image quality.

``tiny_pipeline("sd15", out)`` writes a folder that ``from_pretrained`` — and therefore every
``--base`` in headshot-lab — accepts as a base model:

* **sd15**: UNet ``block_out_channels=(32, 64)``, one layer per block, ``cross_attention_dim=32``; a
  2-level VAE (factor 2: 64 px images ↔ 32 px latents); one CLIP text encoder (hidden 32, 2 layers);
  DDIM with ``steps_offset=1``; no safety checker.
* **sdxl**: the same UNet shape with ``addition_embed_type="text_time"``, two text encoders
  (the second ``CLIPTextModelWithProjection``), ``cross_attention_dim = 32 + 32`` and
  ``projection_class_embeddings_input_dim = 6·addition_time_embed_dim + projection_dim = 6·8 + 32``.

* **flux** / **flux-dev**: a ``FluxTransformer2DModel`` (one double-stream and one single-stream block, 2 heads
  of 16, RoPE axes (4, 4, 8)), a 2-level VAE with 4 latent channels (``in_channels = 4·4``: FLUX packs 2×2
  latent patches into one token, so images are multiples of ``2·2 = 4`` px), the CLIP text encoder above (its
  pooled output) and a T5 encoder (width 32 = ``joint_attention_dim``) with a T5 Unigram tokenizer written here
  (:func:`write_t5_tokenizer`); ``flux-dev`` adds the guidance embedding (``guidance_embeds=True``) and FLUX.1-dev's
  dynamic-shift scheduler.

The tokenizer is a real CLIP byte-level BPE tokenizer whose files are written here: the 256 byte
symbols, the same with the end-of-word mark ``</w>``, BPE merges learned on the rare token ``sks`` and on
the words of the bundled style prompts (``s k``, ``sk s</w>``, …: each becomes one token, as in CLIP, so
a style prompt fits in 77 tokens) and the start/end tokens last (as in CLIP, so ``argmax(input_ids)``
finds the end token).

Everything is seeded (``seed``) and deterministic: the same call writes the same weights.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

ARCHES = ("sd15", "sdxl", "flux", "flux-dev")
RARE_TOKEN = "sks"
TOKENIZER_MAX_LENGTH = 77

#: Tiny SD1.5-class architecture (also the shape of the published SD1.5 config, scaled down).
TINY_SD15: dict[str, dict[str, Any]] = {
    "unet": {
        "block_out_channels": (32, 64),
        "layers_per_block": 1,
        "sample_size": 32,
        "in_channels": 4,
        "out_channels": 4,
        "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
        "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
        "cross_attention_dim": 32,
        "attention_head_dim": (2, 4),
        "norm_num_groups": 32,
    },
    "vae": {
        "block_out_channels": (32, 64),
        "in_channels": 3,
        "out_channels": 3,
        "down_block_types": ("DownEncoderBlock2D", "DownEncoderBlock2D"),
        "up_block_types": ("UpDecoderBlock2D", "UpDecoderBlock2D"),
        "latent_channels": 4,
        "sample_size": 64,
        "norm_num_groups": 32,
    },
    "text_encoder": {
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_attention_heads": 4,
        "num_hidden_layers": 2,
        "projection_dim": 32,
        "max_position_embeddings": TOKENIZER_MAX_LENGTH,
        "hidden_act": "gelu",
    },
    "scheduler": {
        "_class_name": "DDIMScheduler",
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "clip_sample": False,
        "set_alpha_to_one": False,
        "steps_offset": 1,
    },
}

#: Tiny SDXL-class architecture: two text encoders, ``text_time`` added conditioning.
# The published SDXL-base scheduler config (also used by benchmarks/gpu_generate.py).
SDXL_SCHEDULER: dict[str, object] = {
    "_class_name": "EulerDiscreteScheduler",
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "timestep_spacing": "leading",
    "steps_offset": 1,
}
TINY_SDXL: dict[str, dict[str, Any]] = {
    "unet": {
        **TINY_SD15["unet"],
        "cross_attention_dim": 64,  # te1.hidden + te2.hidden
        "transformer_layers_per_block": (1, 2),
        "addition_embed_type": "text_time",
        "addition_time_embed_dim": 8,
        "projection_class_embeddings_input_dim": 80,  # 6 * 8 + te2.projection_dim
        "use_linear_projection": True,
    },
    "vae": dict(TINY_SD15["vae"]),
    "text_encoder": dict(TINY_SD15["text_encoder"]),
    "text_encoder_2": dict(TINY_SD15["text_encoder"]),
    "scheduler": SDXL_SCHEDULER,
}

#: Tiny FLUX.1-class architecture (diffusers' ``tests/pipelines/flux`` dummy components, with a 2-level VAE):
#: ``in_channels = 4 · latent_channels`` (2×2 latent patches are packed into one token, ``patch_size=1``),
#: ``sum(axes_dims_rope) = attention_head_dim`` (RoPE over the (text/index, row, column) ids),
#: ``joint_attention_dim`` = the T5 width, ``pooled_projection_dim`` = the CLIP width. ``flux`` is schnell-like
#: (no guidance embedding, static shift 1), ``flux-dev`` dev-like (``guidance_embeds``, dynamic shifting).
TINY_FLUX: dict[str, dict[str, Any]] = {
    "transformer": {
        "patch_size": 1,
        "in_channels": 16,
        "num_layers": 1,
        "num_single_layers": 1,
        "attention_head_dim": 16,
        "num_attention_heads": 2,
        "joint_attention_dim": 32,
        "pooled_projection_dim": 32,
        "axes_dims_rope": (4, 4, 8),
        "guidance_embeds": False,
    },
    "vae": {
        **TINY_SD15["vae"],
        "use_quant_conv": False,
        "use_post_quant_conv": False,
        "shift_factor": 0.1159,  # FLUX.1's VAE: z = (x − shift)·scale
        "scaling_factor": 0.3611,
    },
    "text_encoder": dict(TINY_SD15["text_encoder"]),
    "text_encoder_2": {  # T5EncoderModel; d_model = the transformer's joint_attention_dim
        "d_model": 32,
        "d_kv": 8,
        "d_ff": 37,
        "num_layers": 2,
        "num_heads": 4,
        "relative_attention_num_buckets": 8,
        "feed_forward_proj": "gated-gelu",
        "dropout_rate": 0.0,
    },
    "scheduler": {  # FLUX.1-schnell's scheduler config
        "_class_name": "FlowMatchEulerDiscreteScheduler",
        "base_image_seq_len": 256,
        "base_shift": 0.5,
        "max_image_seq_len": 4096,
        "max_shift": 1.15,
        "num_train_timesteps": 1000,
        "shift": 1.0,
        "use_dynamic_shifting": False,
    },
}
TINY_FLUX_DEV: dict[str, dict[str, Any]] = {
    **TINY_FLUX,
    "transformer": {**TINY_FLUX["transformer"], "guidance_embeds": True},
    "scheduler": {**TINY_FLUX["scheduler"], "shift": 3.0, "use_dynamic_shifting": True},  # FLUX.1-dev's
}

TINY_SPECS: dict[str, dict[str, dict[str, Any]]] = {
    "sd15": TINY_SD15,
    "sdxl": TINY_SDXL,
    "flux": TINY_FLUX,
    "flux-dev": TINY_FLUX_DEV,
}


# ----------------------------------------------------------------------------------------- tokenizer
def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible byte → printable-unicode table (256 symbols)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, codes), strict=True))


def learn_merges(words: Iterable[str]) -> list[tuple[str, str]]:
    """BPE merges learned the way a BPE trainer does, until every word is one token.

    Each word is a sequence of characters with ``</w>`` on the last; repeatedly the most frequent adjacent
    pair (ties: alphabetical) is merged everywhere. Replaying the merges in this order (which is what the
    tokenizer does) rebuilds each word as a single token, e.g. ``s k`` then ``sk s</w>`` for ``sks``.
    """
    from collections import Counter
    from itertools import pairwise

    pieces = [[*w[:-1], w[-1] + "</w>"] for w in sorted({w.lower() for w in words if w})]
    merges: list[tuple[str, str]] = []
    while True:
        counts: Counter[tuple[str, str]] = Counter()
        for word in pieces:
            counts.update(pairwise(word))
        if not counts:
            return merges
        best = min(counts, key=lambda pair: (-counts[pair], pair))
        merges.append(best)
        joined = "".join(best)
        for index, word in enumerate(pieces):
            out: list[str] = []
            i = 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(joined)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            pieces[index] = out


def prompt_words() -> list[str]:
    """The rare token plus every word of the bundled style prompts, CLIP and T5 forms (sorted): one token each.

    With them, the tiny tokenizer splits a style prompt about as CLIP does (one token per common word),
    so prompts fit in 77 tokens instead of being cut after ~70 bytes.
    """
    from headshot_lab.styles import list_styles, load_style

    words = {RARE_TOKEN, "a", "photo", "of", "person", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d"}
    for name in list_styles():
        style = load_style(name)
        text = " ".join([style.render_prompt(""), style.render_prompt("", family="flux"), style.negative_prompt])
        text = text.lower()
        words.update(re.findall(r"[a-z]+", text))
    return sorted(words)


def write_clip_tokenizer(folder: str | Path, words: Iterable[str] | None = None) -> Path:
    """Write a minimal CLIP BPE tokenizer (``vocab.json``, ``merges.txt``, ``tokenizer_config.json``).

    Args:
        folder: where to write the three files (created).
        words: lower-case words that must be single tokens (default: :func:`prompt_words`).

    Returns:
        ``folder`` as a :class:`~pathlib.Path`; load it with ``CLIPTokenizer.from_pretrained(folder)``.
    """
    folder = _write_bpe_files(folder, words)
    config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": TOKENIZER_MAX_LENGTH,
        "bos_token": "<|startoftext|>",
        "eos_token": "<|endoftext|>",
        "pad_token": "<|endoftext|>",
        "unk_token": "<|endoftext|>",
        "do_lower_case": True,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
    return folder


def _write_bpe_files(folder: str | Path, words: Iterable[str] | None = None) -> Path:
    """``vocab.json`` + ``merges.txt`` of the minimal CLIP BPE vocabulary (see the module docstring)."""
    words = prompt_words() if words is None else list(words)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    symbols = list(_bytes_to_unicode().values())
    merges = learn_merges(words)
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: index for index, token in enumerate(dict.fromkeys(tokens))}
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text(
        "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges),
        encoding="utf-8",
    )
    return folder


#: T5's special tokens (ids 0, 1, 2 as in ``google/t5-v1_1-xxl``); FLUX pads the T5 prompt with ``<pad>``.
T5_SPECIAL = ("<pad>", "</s>", "<unk>")
#: The T5 prompt length the tiny FLUX pipelines accept (FLUX.1-dev's; schnell uses 256).
T5_MAX_LENGTH = 512
_T5_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789,.;:'-()!?/&%+\""


def write_t5_tokenizer(folder: str | Path, words: Iterable[str] | None = None) -> Path:
    """Write a minimal T5 tokenizer (a SentencePiece-style Unigram model, ``tokenizer.json``) to ``folder``.

    Built by transformers' own ``T5Tokenizer(vocab=...)`` (the tokenizers-backed class ``FluxPipeline`` takes as
    ``tokenizer_2``; ``T5TokenizerFast`` is the same class in transformers 5): ``<pad>`` (0), ``</s>`` (1),
    ``<unk>`` (2), then one piece ``▁word`` per word (default :func:`prompt_words`, so a style prompt is one piece
    per word, the rare token included), the word-start mark ``▁`` and the single characters, so any other text
    still splits (into letters); ``</s>`` ends every sequence; no sentinel ``<extra_id_*>`` tokens. Unigram picks
    the segmentation with the largest ``Σ log p(piece)``: whole words score −1, characters −5, so a known word is
    always one piece.

    Returns:
        ``folder``; load it with :func:`load_t5_tokenizer`.
    """
    from transformers import T5Tokenizer

    words = prompt_words() if words is None else sorted({w.lower() for w in words if w})
    pieces: list[tuple[str, float]] = [(token, 0.0) for token in T5_SPECIAL]
    pieces += [("▁" + word, -1.0) for word in words]
    pieces += [("▁", -2.0)] + [(char, -5.0) for char in _T5_CHARS + _T5_CHARS.upper()]
    vocab = list({piece: (piece, score) for piece, score in pieces}.values())
    tokenizer = T5Tokenizer(vocab=vocab, extra_ids=0, model_max_length=T5_MAX_LENGTH)
    folder = Path(folder)
    tokenizer.save_pretrained(str(folder))
    return folder


def load_t5_tokenizer(folder: str | Path) -> Any:
    """``T5Tokenizer.from_pretrained(folder)`` of :func:`write_t5_tokenizer`."""
    from transformers import T5Tokenizer

    return T5Tokenizer.from_pretrained(str(folder), model_max_length=T5_MAX_LENGTH)


def load_clip_tokenizer(folder: str | Path) -> Any:
    """``CLIPTokenizer.from_pretrained(folder, model_max_length=77)`` (the max length must be passed)."""
    from transformers import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(str(folder), model_max_length=TOKENIZER_MAX_LENGTH)


# ----------------------------------------------------------------------------------------- components
def build_components(
    spec: Mapping[str, Mapping[str, Any]],
    tokenizer_dir: str | Path,
    *,
    seed: int = 0,
    device: Any = None,
) -> dict[str, Any]:
    """Random-weight pipeline components from an architecture ``spec`` (``TINY_SD15``-shaped dict).

    Shared by the tiny test models and the full-size GPU benchmark (which passes the published
    SD1.5 / SDXL configs). ``spec`` keys: ``unet``, ``vae``, ``text_encoder``, optional
    ``text_encoder_2`` (makes it SDXL-class), ``scheduler`` (with ``_class_name``).

    Args:
        spec: the architecture.
        tokenizer_dir: a CLIP tokenizer folder (see :func:`write_clip_tokenizer`).
        seed: weights are drawn from ``torch.manual_seed(seed)`` (global RNG state is restored).
        device: build the modules directly on this device (e.g. ``"cuda"`` for full-size models).
    """
    import diffusers
    import torch
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    if "transformer" in spec:
        return build_flux_components(spec, tokenizer_dir, seed=seed, device=device)
    tokenizer = load_clip_tokenizer(tokenizer_dir)
    token_ids = {
        "vocab_size": max(len(tokenizer), 1000),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    build_device = torch.device(device) if device is not None else torch.device("cpu")
    devices = [build_device] if build_device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), build_device:
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(**spec["unet"])
        torch.manual_seed(seed + 1)
        vae = AutoencoderKL(**spec["vae"])
        torch.manual_seed(seed + 2)
        te_config = {**token_ids, **spec["text_encoder"]}
        text_encoder = CLIPTextModel(CLIPTextConfig(**te_config))
        components: dict[str, Any] = {"unet": unet, "vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer}
        if "text_encoder_2" in spec:
            torch.manual_seed(seed + 3)
            te2_config = {**token_ids, **spec["text_encoder_2"]}
            components["text_encoder_2"] = CLIPTextModelWithProjection(CLIPTextConfig(**te2_config))
            components["tokenizer_2"] = load_clip_tokenizer(tokenizer_dir)
    scheduler_config = dict(spec["scheduler"])
    scheduler_cls = getattr(diffusers, scheduler_config.pop("_class_name"))
    components["scheduler"] = scheduler_cls(**scheduler_config)
    for name in ("unet", "vae", "text_encoder", "text_encoder_2"):
        if name in components:
            components[name].eval()
    return components


def build_flux_components(
    spec: Mapping[str, Mapping[str, Any]],
    tokenizer_dir: str | Path,
    *,
    t5_tokenizer_dir: str | Path | None = None,
    seed: int = 0,
    device: Any = None,
) -> dict[str, Any]:
    """Random-weight FLUX.1-class components from a ``TINY_FLUX``-shaped ``spec`` (or the published configs).

    ``FluxTransformer2DModel`` (``transformer``), ``AutoencoderKL`` (``vae``), ``CLIPTextModel`` + the CLIP tokenizer
    in ``tokenizer_dir`` (``text_encoder`` / ``tokenizer``: FLUX reads its pooled output), ``T5EncoderModel`` + the
    T5 tokenizer in ``t5_tokenizer_dir`` (default: written next to ``tokenizer_dir`` as ``tokenizer_2``), and the
    scheduler (``FlowMatchEulerDiscreteScheduler``). Seeds: transformer ``seed``, VAE ``seed+1``, CLIP ``seed+2``,
    T5 ``seed+3``.
    """
    import diffusers
    import torch
    from diffusers import AutoencoderKL, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    tokenizer = load_clip_tokenizer(tokenizer_dir)
    t5_dir = Path(t5_tokenizer_dir) if t5_tokenizer_dir is not None else Path(tokenizer_dir).parent / "tokenizer_2"
    if not (t5_dir / "tokenizer.json").is_file():
        write_t5_tokenizer(t5_dir)
    tokenizer_2 = load_t5_tokenizer(t5_dir)
    clip_ids = {
        "vocab_size": max(len(tokenizer), 1000),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    t5_ids = {
        "vocab_size": len(tokenizer_2),
        "pad_token_id": tokenizer_2.pad_token_id,
        "eos_token_id": tokenizer_2.eos_token_id,
        "decoder_start_token_id": tokenizer_2.pad_token_id,
    }
    build_device = torch.device(device) if device is not None else torch.device("cpu")
    devices = [build_device] if build_device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), build_device:
        torch.manual_seed(seed)
        transformer = FluxTransformer2DModel(**spec["transformer"])
        torch.manual_seed(seed + 1)
        vae = AutoencoderKL(**spec["vae"])
        torch.manual_seed(seed + 2)
        text_encoder = CLIPTextModel(CLIPTextConfig(**{**clip_ids, **spec["text_encoder"]}))
        torch.manual_seed(seed + 3)
        text_encoder_2 = T5EncoderModel(T5Config(**{**t5_ids, **spec["text_encoder_2"]}))
    scheduler_config = dict(spec["scheduler"])
    scheduler_cls = getattr(diffusers, scheduler_config.pop("_class_name"))
    components: dict[str, Any] = {
        "transformer": transformer,
        "vae": vae,
        "text_encoder": text_encoder,
        "tokenizer": tokenizer,
        "text_encoder_2": text_encoder_2,
        "tokenizer_2": tokenizer_2,
        "scheduler": scheduler_cls(**scheduler_config),
    }
    for name in ("transformer", "vae", "text_encoder", "text_encoder_2"):
        components[name].eval()
    return components


def pipeline_from_components(components: Mapping[str, Any]) -> Any:
    """``StableDiffusionPipeline``, ``StableDiffusionXLPipeline`` (when ``text_encoder_2`` is present) or
    ``FluxPipeline`` (when a ``transformer`` is)."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    if "transformer" in components:
        from diffusers import FluxPipeline

        return FluxPipeline(**components, image_encoder=None, feature_extractor=None)
    if "text_encoder_2" in components:
        return StableDiffusionXLPipeline(
            **components, image_encoder=None, feature_extractor=None, force_zeros_for_empty_prompt=True
        )
    return StableDiffusionPipeline(
        **components,
        safety_checker=None,
        feature_extractor=None,
        image_encoder=None,
        requires_safety_checker=False,
    )


def save_random_pipeline(
    spec: Mapping[str, Mapping[str, Any]],
    out_dir: str | Path,
    *,
    seed: int = 0,
    device: Any = None,
    dtype: Any = None,
    readme: str | None = None,
) -> Path:
    """Build a random-weight pipeline of architecture ``spec`` and save it as a diffusers folder.

    Used for the tiny test models and, with the published configs, by the GPU benchmark.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer_dir = write_clip_tokenizer(out / "tokenizer")
    pipe = pipeline_from_components(build_components(spec, tokenizer_dir, seed=seed, device=device))
    if dtype is not None:
        pipe.to(dtype=dtype)
    pipe.save_pretrained(out, safe_serialization=True)
    # save_pretrained writes each tokenizer as tokenizer.json; keep the plain BPE files next to it (CLIP ones only).
    for name in ("tokenizer", "tokenizer_2"):
        if (out / name).is_dir() and type(getattr(pipe, name, None)).__name__.startswith("CLIP"):
            _write_bpe_files(out / name)
    if readme:
        (out / "README.md").write_text(readme, encoding="utf-8")
    return out


def tiny_pipeline(arch: str = "sd15", out_dir: str | Path | None = None, *, seed: int = 0) -> Any:
    """Build the tiny random ``arch`` pipeline; with ``out_dir``, save it there and return the folder.

    Args:
        arch: ``"sd15"``, ``"sdxl"``, ``"flux"`` (schnell-like) or ``"flux-dev"`` (guidance-distilled, dev-like).
        out_dir: a folder to write (``model_index.json``, one subfolder per component, tokenizer
            files, a README saying what this is). ``None`` returns the in-memory pipeline instead.
        seed: weight seed; the same ``(arch, seed)`` gives the same weights.

    Returns:
        ``Path`` of the saved folder, or the pipeline object when ``out_dir`` is ``None``.
    """
    import tempfile

    if arch not in TINY_SPECS:
        raise ValueError(f"unknown tiny architecture {arch!r}; choose one of {', '.join(ARCHES)}")
    if out_dir is None:
        with tempfile.TemporaryDirectory() as tmp:
            tokenizer_dir = write_clip_tokenizer(Path(tmp) / "tokenizer")
            return pipeline_from_components(build_components(TINY_SPECS[arch], tokenizer_dir, seed=seed))
    readme = (
        f"# tiny random {arch} pipeline (headshot-lab)\n\n"
        "Random weights built by `headshot_lab.testing.tiny_pipeline` "
        f"(seed {seed}) for tests and smoke tests. It produces noise, not faces.\n"
    )
    return save_random_pipeline(TINY_SPECS[arch], out_dir, seed=seed, readme=readme)


# ----------------------------------------------------------------------------------------- add-ons
def _load_unet(base: str | Path) -> Any:
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel.from_pretrained(str(base), subfolder="unet")


def tiny_controlnet(base: str | Path, out_dir: str | Path, *, seed: int = 0) -> Path:
    """A random ``ControlNetModel`` matching the tiny base at ``base``, saved to ``out_dir``.

    Built with ``ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(16, 32))``: the
    default 4-level conditioning embedding downsamples by 8, the tiny VAE only by 2. The
    conditioning weights are randomised (``from_unet`` zero-initialises the last conv and the
    zero-convs, which would make the control image invisible in a test).
    """
    import torch
    from diffusers import ControlNetModel

    unet = _load_unet(base)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        controlnet = ControlNetModel.from_unet(unet, conditioning_embedding_out_channels=(16, 32))
        with torch.no_grad():
            for name, param in controlnet.named_parameters():
                if (
                    "zero_conv" in name
                    or "controlnet_cond_embedding.conv_out" in name
                    or "controlnet_mid_block" in name
                ):
                    param.normal_(0.0, 0.05)
    out = Path(out_dir)
    controlnet.save_pretrained(out, safe_serialization=True)
    return out


def tiny_flux_controlnet(base: str | Path, out_dir: str | Path, *, seed: int = 0) -> Path:
    """A random ``FluxControlNetModel`` for the tiny FLUX base at ``base`` (InstantX-style: the control image is
    VAE-encoded and packed like the latents), saved to ``out_dir``.

    ``FluxControlNetModel.from_transformer(transformer, num_layers=1, num_single_layers=1, …)`` copies the
    transformer's embedders and blocks; its output projections (``controlnet_blocks``, ``controlnet_single_blocks``)
    and ``controlnet_x_embedder`` start at zero, which would make the control image invisible in a test, so they are
    randomised.
    """
    import torch
    from diffusers import FluxControlNetModel, FluxTransformer2DModel

    transformer = FluxTransformer2DModel.from_pretrained(str(base), subfolder="transformer")
    config = transformer.config
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        controlnet = FluxControlNetModel.from_transformer(
            transformer,
            num_layers=1,
            num_single_layers=1,
            attention_head_dim=int(config.attention_head_dim),
            num_attention_heads=int(config.num_attention_heads),
        )
        with torch.no_grad():
            for name, param in controlnet.named_parameters():
                if name.startswith(("controlnet_blocks", "controlnet_single_blocks", "controlnet_x_embedder")):
                    param.normal_(0.0, 0.2)
    out = Path(out_dir)
    controlnet.save_pretrained(out, safe_serialization=True)
    return out


def tiny_ip_adapter_faceid(
    base: str | Path, out_dir: str | Path, *, id_dim: int = 512, seed: int = 0, weight_name: str | None = None
) -> Path:
    """Random IP-Adapter-FaceID weights for the tiny base at ``base``; returns the weights file.

    Key layout (what ``pipe.load_ip_adapter`` expects of FaceID, non-plus):

    * ``image_proj.proj.0`` ``[id_dim·m, id_dim]``, ``image_proj.proj.2`` ``[4·D, id_dim·m]`` (4 tokens of the
      UNet's cross-attention width ``D``; ``m = 1`` here), ``image_proj.norm`` ``[D]`` (its presence selects
      the FaceID projection);
    * ``ip_adapter.{k}.to_k_ip`` / ``to_v_ip`` ``[hidden, D]`` for every cross-attention processor, with
      ``k = 1, 3, 5, …`` in ``unet.attn_processors`` order.
    """
    import torch
    from safetensors.torch import save_file

    unet = _load_unet(base)
    cross = int(unet.config.cross_attention_dim)
    tokens = 4
    generator = torch.Generator().manual_seed(seed)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * 0.05

    tensors = {
        "image_proj.proj.0.weight": rand(id_dim, id_dim),
        "image_proj.proj.0.bias": rand(id_dim),
        "image_proj.proj.2.weight": rand(tokens * cross, id_dim),
        "image_proj.proj.2.bias": rand(tokens * cross),
        "image_proj.norm.weight": torch.ones(cross),
        "image_proj.norm.bias": torch.zeros(cross),
    }
    key_id = 1
    for name, processor in unet.attn_processors.items():
        if name.endswith("attn1.processor"):
            continue
        module = unet.get_submodule(name.removesuffix(".processor"))
        hidden = module.to_k.out_features
        del processor
        tensors[f"ip_adapter.{key_id}.to_k_ip.weight"] = rand(hidden, cross) * 20
        tensors[f"ip_adapter.{key_id}.to_v_ip.weight"] = rand(hidden, cross) * 20
        key_id += 2
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / (weight_name or "ip-adapter-faceid_tiny.safetensors")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))
    return path


def tiny_lora(base: str | Path, out_dir: str | Path, *, rank: int = 4, seed: int = 0, std: float = 0.2) -> Path:
    """A random UNet LoRA for the tiny base at ``base`` (e.g. to stand in for an LCM-LoRA); returns the file.

    Both LoRA matrices are random (a freshly initialised LoRA has ``B = 0`` and would do nothing). For a FLUX base
    the LoRA is on the transformer (the FLUX recipe's targets), saved by ``FluxPipeline.save_lora_weights``.
    """
    import torch
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft import LoraConfig, get_peft_model_state_dict

    if (Path(base) / "transformer").is_dir():
        return _tiny_flux_lora(base, out_dir, rank=rank, seed=seed, std=std)
    unet = _load_unet(base)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=LORA_TARGETS))
        with torch.no_grad():
            for name, param in unet.named_parameters():
                if "lora_" in name:
                    param.normal_(0.0, std)
    layers = convert_state_dict_to_diffusers(get_peft_model_state_dict(unet))
    out = Path(out_dir)
    StableDiffusionPipeline.save_lora_weights(
        out, unet_lora_layers=layers, weight_name="pytorch_lora_weights.safetensors"
    )
    return out / "pytorch_lora_weights.safetensors"


LORA_TARGETS = ["to_k", "to_q", "to_v", "to_out.0"]


def _tiny_flux_lora(base: str | Path, out_dir: str | Path, *, rank: int, seed: int, std: float) -> Path:
    """:func:`tiny_lora` for a FLUX base: random ``A`` and ``B`` on the recipe's LoRA targets of the transformer
    (:data:`headshot_lab.train_flux.FLUX_LORA_TARGETS`)."""
    import torch
    from diffusers import FluxPipeline, FluxTransformer2DModel
    from peft import LoraConfig, get_peft_model_state_dict

    from headshot_lab.train_flux import FLUX_LORA_TARGETS

    transformer = FluxTransformer2DModel.from_pretrained(str(base), subfolder="transformer")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        transformer.add_adapter(
            LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=list(FLUX_LORA_TARGETS))
        )
        with torch.no_grad():
            for name, param in transformer.named_parameters():
                if "lora_" in name:
                    param.normal_(0.0, std)
    out = Path(out_dir)
    FluxPipeline.save_lora_weights(
        out,
        transformer_lora_layers=get_peft_model_state_dict(transformer),
        weight_name="pytorch_lora_weights.safetensors",
    )
    return out / "pytorch_lora_weights.safetensors"


# -- tiny super-resolution models (spandrel) -------------------------------------------------------------------

#: Tiny SR architectures: ``compact`` = Real-ESRGAN's SRVGGNetCompact (keys ``body.N.weight``, as in
#: ``realesr-general-x4v3.pth``), ``esrgan`` = the RRDBNet of ESRGAN/Real-ESRGAN (old-arch keys ``model.0.weight``,
#: ``model.1.sub.0.RDB1.conv1.0.weight`` …, as in ``RealESRGAN_x4plus.pth`` after spandrel's conversion).
SR_ARCHES = ("compact", "esrgan")


def tiny_sr_state_dict(arch: str = "compact", *, scale: int = 4, seed: int = 0) -> dict[str, Any]:
    """A random-weight state dict with the real key layout spandrel detects, a few kB in size.

    ``compact``: ``num_feat=8, num_conv=2`` (PReLU); ``esrgan``: ``num_filters=8, num_blocks=1`` (growth 32 → the
    arch's fixed ``gc``); both keep the output near the bilinear-looking identity-free random map (wiring, not quality).
    """
    import torch

    if arch not in SR_ARCHES:
        raise ValueError(f"arch must be one of {SR_ARCHES}, got {arch!r}")
    torch.manual_seed(seed)
    if arch == "compact":
        from spandrel.architectures.Compact import Compact

        model: Any = Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=scale)
    else:
        from spandrel.architectures.ESRGAN import ESRGAN

        model = ESRGAN(in_nc=3, out_nc=3, num_filters=8, num_blocks=1, scale=scale)
    return {key: value.detach().clone().contiguous() for key, value in model.state_dict().items()}


def tiny_sr_model(
    out: str | Path, arch: str = "compact", *, scale: int = 4, seed: int = 0, fmt: str | None = None
) -> Path:
    """Write :func:`tiny_sr_state_dict` to ``out`` (``.pth`` by ``torch.save``, ``.safetensors`` by safetensors).

    ``out`` may be a folder (the file is ``tiny_<arch>_x<scale>.<fmt>``, default ``pth``). Deterministic: the same
    call writes the same weights.
    """
    import torch

    path = Path(out)
    if path.suffix not in {".pth", ".safetensors"}:
        path = path / f"tiny_{arch}_x{scale}.{fmt or 'pth'}"
    path.parent.mkdir(parents=True, exist_ok=True)
    state = tiny_sr_state_dict(arch, scale=scale, seed=seed)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path


# -- tiny single-photo identity engines (FaceID-Plus / PlusV2, InstantID) ----------------------------------------

#: Tiny CLIP ViT image encoder standing in for ``laion/CLIP-ViT-H-14-laion2B-s32B-b79K`` (hidden 1280, 32 layers,
#: patch 14 at 224 px: 257 tokens): hidden 32, 2 layers, patch 8 at 32 px (17 tokens).
TINY_CLIP_VISION: dict[str, Any] = {
    "hidden_size": 32,
    "intermediate_size": 37,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "image_size": 32,
    "patch_size": 8,
    "projection_dim": 32,
    "hidden_act": "gelu",
}


def tiny_clip_image_encoder(out_dir: str | Path, *, seed: int = 0) -> Path:
    """A random ``CLIPVisionModelWithProjection`` (:data:`TINY_CLIP_VISION`) saved to ``out_dir`` (the folder that
    ``FaceIDOptions.clip_encoder`` / ``HEADSHOT_LAB_CLIP_IMAGE_ENCODER`` accept in place of CLIP ViT-H)."""
    import torch
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = CLIPVisionModelWithProjection(CLIPVisionConfig(**TINY_CLIP_VISION)).eval()
    out = Path(out_dir)
    model.save_pretrained(out, safe_serialization=True)
    return out


def tiny_ip_adapter_faceid_plus(
    base: str | Path,
    out_dir: str | Path,
    *,
    clip_dim: int = TINY_CLIP_VISION["hidden_size"],
    id_dim: int = 512,
    seed: int = 0,
    weight_name: str = "ip-adapter-faceid-plusv2_tiny.safetensors",
) -> Path:
    """Random IP-Adapter-FaceID-**Plus** weights for the tiny base at ``base``, in the published key layout
    (:func:`~headshot_lab.testing.ip_layouts.faceid_plus_layout`: ``image_proj.proj.*``, ``norm``,
    ``perceiver_resampler.*`` with one 64-wide head, ``clip_dim`` = the tiny CLIP encoder's hidden size; and
    ``ip_adapter.{k}.to_k_ip/to_v_ip``). The name says ``plusv2`` by default (the layout of v1 and v2 is the same);
    returns the file."""
    from safetensors.torch import save_file

    from headshot_lab.testing.ip_layouts import faceid_plus_layout, ip_attention_layout, random_state

    unet = _load_unet(base)
    cross = int(unet.config.cross_attention_dim)
    layout = {**faceid_plus_layout(cross=cross, clip_dim=clip_dim, id_dim=id_dim, heads=1), **ip_attention_layout(unet)}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / weight_name
    save_file(random_state(layout, seed=seed), str(path))
    return path


def tiny_instantid(base: str | Path, out_dir: str | Path, *, id_dim: int = 512, seed: int = 0) -> Path:
    """Random InstantID weights for the tiny SDXL base at ``base``, laid out like ``InstantX/InstantID``:

    * ``ControlNetModel/`` — IdentityNet, a ControlNet of the tiny UNet (as :func:`tiny_controlnet`: 2-level
      conditioning embedding, randomised zero-convs so the keypoint map is visible);
    * ``ip-adapter.bin`` — ``torch.save({"image_proj": Resampler, "ip_adapter": attention})``, the published nested
      layout (:func:`~headshot_lab.testing.ip_layouts.resampler_layout` with dim 64 = one head of 64, depth 4,
      16 queries, ``id_dim → D``; ``{k}.to_k_ip/to_v_ip``).

    Returns ``out_dir`` (pass it as ``InstantIDOptions.weights``).
    """
    import torch

    from headshot_lab.testing.ip_layouts import ip_attention_layout, nested, random_state, resampler_layout

    out = Path(out_dir)
    tiny_controlnet(base, out / "ControlNetModel", seed=seed)
    unet = _load_unet(base)
    layout = {
        **resampler_layout(
            dim=64, heads=1, num_queries=16, embedding_dim=id_dim, output_dim=int(unet.config.cross_attention_dim)
        ),
        **ip_attention_layout(unet),
    }
    torch.save(nested(random_state(layout, seed=seed + 1)), out / "ip-adapter.bin")
    return out
