"""Headshot generation: base model + identity LoRA (+ IP-Adapter-FaceID / FaceID-Plus, InstantID, ControlNet) →
images + manifest.

:class:`HeadshotGenerator` is built like a diffusers pipeline: its ``__call__`` reads as named steps,

1. ``check_inputs`` — style, counts, sizes;
2. ``load`` — base pipeline (ControlNet variant if asked), speed switches, few-step LoRA, IP-Adapter;
3. ``attach_identity`` — the person's LoRA at ``scale`` (family checked against the LoRA card);
4. ``prepare_face_embedding`` — ArcFace embedding for IP-Adapter-FaceID / InstantID (insightface backend), and
   ``prepare_face_clip`` — FaceID-Plus's CLIP features of the aligned face crop;
5. ``prepare_control`` — the ControlNet conditioning image (pose / face landmarks / depth / edges) or InstantID's
   5-point keypoint map;
6. ``render`` — one pipeline call per batch, each image with its own seeded CPU generator;
7. ``write_outputs`` — PNGs labelled AI-generated (IPTC ``trainedAlgorithmicMedia``) and one ``manifest.jsonl``
   line per image.

A manifest line holds everything needed to make its image again — seed, the batch's seeds, prompts,
style, base model id, LoRA path + SHA-256 + scale, adapters and their scales, ControlNet and its saved
conditioning image, the saved face embedding, sampler settings, speed switches — and
:func:`regenerate` does exactly that (bit-exact on CPU; on GPUs up to kernel non-determinism).

Identity engines (the ``engine`` of every manifest line, :attr:`HeadshotGenerator.engine`):

=================  =================================================  ======  ==========  ===========  ==========
engine             what carries the face                              photos  families    VRAM¹ SD1.5  VRAM¹ SDXL
=================  =================================================  ======  ==========  ===========  ==========
``lora``           DreamBooth-LoRA trained on the photos (``train``)  10–20   sd15, sdxl  2.2 GiB      8.6 GiB
``faceid``         IP-Adapter-FaceID: ArcFace embedding → 4 tokens    1+      sd15, sdxl  2.3 GiB      9.3 GiB
``faceid-plus``    + CLIP ViT-H features of the aligned face crop     1       sd15        3.5 GiB      —
``faceid-plusv2``  the same with the shortcut ``T + s·O``             1       sd15, sdxl  3.5 GiB      10.8 GiB
``instantid``      IdentityNet ControlNet + 16-token face adapter     1       sdxl        —            11.7 GiB
=================  =================================================  ======  ==========  ===========  ==========

¹ Estimates from the published architectures on the meta device (generation in bf16, batch 1 with guidance, native
size, no offload, CUDA context excluded: :func:`headshot_lab.testing.contracts.engine_vram_estimate`); not yet
measured on a GPU. Licences of the extra weights: ``h94/IP-Adapter-FaceID`` (all FaceID variants) non-commercial
research (model card); the CLIP ViT-H encoder MIT; InstantID code Apache-2.0 and its Hub card apache-2.0, but its
README calls the checkpoints research-only; every tuning-free engine needs insightface ArcFace packs (non-commercial
research; InstantID was trained with ``antelopev2``). FaceID variants: :class:`FaceIDOptions` (``variant``,
``clip_encoder``; :mod:`headshot_lab.faceid_plus`); InstantID: :class:`InstantIDOptions`
(:mod:`headshot_lab.instantid`).

Speed switches (:class:`SpeedOptions`): fp16/bf16 weights, SDPA attention, VAE slicing/tiling, model
or sequential CPU offload, a few-step path (LCM-LoRA + ``LCMScheduler``: ~4 steps, guidance ~1),
``torch.compile`` of the UNet, and the batch size.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from headshot_lab.atomic import append_line, atomic_write
from headshot_lab.errors import FaceNotFoundError, HeadshotLabError, ModelUnavailableError
from headshot_lab.instantid import INSTANTID_NOT_IN_MANIFEST, InstantIDOptions
from headshot_lab.records import config_record
from headshot_lab.styles import Style, load_style
from headshot_lab.upscale import UpscaleOptions

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.jsonl"
MANIFEST_SCHEMA = "headshot-lab/generate/1"
GENERATED_KIND = "generated"
"""The provenance kind of every image the generator writes (IPTC ``trainedAlgorithmicMedia``)."""
IDENTITY_ADAPTER = "identity"
FEW_STEP_ADAPTER = "few_step"
ATTENTION_MODES = ("sdpa", "eager")
OFFLOAD_MODES = ("none", "model", "sequential")
SIZE_MULTIPLE = 8  # diffusers' Stable Diffusion pipelines need width and height divisible by 8
#: IP-Adapter-FaceID weights per family in ``h94/IP-Adapter-FaceID``.
FACEID_WEIGHTS = {"sd15": "ip-adapter-faceid_sd15.bin", "sdxl": "ip-adapter-faceid_sdxl.bin"}
FACEID_REPO = "h94/IP-Adapter-FaceID"
#: FaceID-Plus weights per ``(variant, family)`` in ``h94/IP-Adapter-FaceID`` (there is no SDXL Plus v1).
FACEID_PLUS_WEIGHTS = {
    ("plus", "sd15"): "ip-adapter-faceid-plus_sd15.bin",
    ("plusv2", "sd15"): "ip-adapter-faceid-plusv2_sd15.bin",
    ("plusv2", "sdxl"): "ip-adapter-faceid-plusv2_sdxl.bin",
}
ENGINES = ("base", "lora", "faceid", "faceid-plus", "faceid-plusv2", "instantid")
#: LoRA rank every adapter is padded to when ``compile`` is on (``enable_lora_hotswap``): LCM-LoRAs are rank 64.
HOTSWAP_TARGET_RANK = 64
#: Published LCM-LoRAs for the few-step path.
LCM_LORAS = {"sd15": "latent-consistency/lcm-lora-sdv1-5", "sdxl": "latent-consistency/lcm-lora-sdxl"}


class LoraMismatchError(HeadshotLabError):
    """The identity LoRA was trained for another base-model family."""

    code = "lora_family_mismatch"


# ------------------------------------------------------------------------------------------- options
@dataclass
class Identity:
    """Who to draw.

    Attributes:
        lora: the identity LoRA (``.safetensors`` file or the training folder), or ``None`` for the
            tuning-free path (IP-Adapter-FaceID alone) or the plain base model.
        scale: LoRA strength (1.0 = as trained).
        token, class_noun: the subject in the prompt is ``"{token} {class_noun}"``; read from the LoRA
            card when not given (``sks`` / ``person`` for a LoRA without a card).
        selfie: a photo of the person: source of the FaceID / InstantID embedding, of FaceID-Plus's face crop (which
            needs it even when ``face_embedding`` is given) and, by default, of the ControlNet / InstantID keypoint map.
        face_embedding: a precomputed ArcFace embedding (512-D) instead of computing it from ``selfie``.
    """

    lora: Path | None = None
    scale: float = 1.0
    token: str | None = None
    class_noun: str | None = None
    selfie: Any = None
    face_embedding: np.ndarray | None = None
    card: dict[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def from_lora(cls, path: str | Path, scale: float = 1.0, **kwargs: Any) -> Identity:
        """An identity from a trained LoRA (its card supplies the token and class noun)."""
        from headshot_lab.train import LORA_WEIGHT_NAME, read_lora_card

        lora = Path(path).expanduser()
        if lora.is_dir():
            lora = lora / LORA_WEIGHT_NAME
        if not lora.is_file():
            raise HeadshotLabError(
                f"LoRA file {lora} does not exist.",
                fix="Pass the .safetensors file (or the folder) written by `headshot-lab train`.",
                code="lora_not_found",
            )
        card = read_lora_card(lora)
        return cls(lora=lora.resolve(), scale=scale, card=card, **kwargs)

    @property
    def subject(self) -> str:
        """The words for the person in the prompt: ``"sks person"`` with a LoRA, ``"a person"`` without."""
        card = self.card or {}
        noun = self.class_noun or card.get("class_noun") or "person"
        if self.lora is not None:
            return f"{self.token or card.get('token') or 'sks'} {noun}"
        return f"a {noun}"


@dataclass
class SpeedOptions:
    """Speed/memory switches; all recorded in the manifest.

    Attributes:
        precision: ``auto`` (fp16 on GPU, fp32 on CPU), ``fp32``, ``fp16``, ``bf16``.
        attention: ``sdpa`` (PyTorch scaled-dot-product attention) or ``eager`` (plain matmuls).
        vae_slicing: decode a batch one image at a time (less memory for batches).
        vae_tiling: decode in tiles (large images on small GPUs).
        cpu_offload: ``none``, ``model`` (whole models to GPU on use) or ``sequential`` (layer by layer).
        few_step_lora: LCM-LoRA id/path → ``LCMScheduler``, ``few_step_steps`` steps at ``few_step_guidance``.
        compile: ``torch.compile`` the UNet (first call slow; later ones faster on GPU).
        batch_size: images per pipeline call.
    """

    precision: str = "auto"
    attention: str = "sdpa"
    vae_slicing: bool = False
    vae_tiling: bool = False
    cpu_offload: str = "none"
    few_step_lora: str | None = None
    few_step_steps: int = 4
    few_step_guidance: float = 1.0
    compile: bool = False
    batch_size: int = 1

    def validate(self) -> None:
        from headshot_lab.models import PRECISIONS

        problems = [
            (self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}"),
            (self.attention in ATTENTION_MODES, f"attention must be one of {', '.join(ATTENTION_MODES)}"),
            (self.cpu_offload in OFFLOAD_MODES, f"cpu_offload must be one of {', '.join(OFFLOAD_MODES)}"),
            (self.batch_size >= 1, "batch_size must be at least 1"),
            (self.few_step_steps >= 1, "few_step_steps must be at least 1"),
        ]
        for ok, message in problems:
            if not ok:
                raise HeadshotLabError(f"Invalid speed option: {message}.", code="bad_speed_option")


@dataclass
class FaceIDOptions:
    """IP-Adapter-FaceID: condition on the person's ArcFace embedding (works without a trained LoRA).

    ``weights`` is a Hub id or folder; ``weight_name`` defaults to the family's file in
    ``h94/IP-Adapter-FaceID`` for the variant (:func:`faceid_weight_name`). The embedding comes from the
    ``insightface`` face backend.

    **Plus / PlusV2** (:mod:`headshot_lab.faceid_plus`) add CLIP ViT-H features of the aligned face crop of the
    selfie (so they need a selfie, not only an embedding). ``variant``: ``auto`` (from the loaded weights: their
    key layout says Plus, their name ``plusv2``), ``faceid``, ``plus`` or ``plusv2`` (the shortcut
    ``O = T + shortcut_scale·O``). ``clip_encoder``: the CLIP image encoder (Hub id or folder); ``None`` =
    ``HEADSHOT_LAB_CLIP_IMAGE_ENCODER``, else ``laion/CLIP-ViT-H-14-laion2B-s32B-b79K``.
    """

    weights: str = FACEID_REPO
    weight_name: str | None = None
    subfolder: str = ""
    scale: float = 0.7
    variant: str = "auto"
    clip_encoder: str | None = None
    shortcut_scale: float = 1.0


@dataclass
class ControlOptions:
    """ControlNet: ``model`` (Hub id / folder), the ``kind`` of map, the reference ``image`` (default: the
    identity's selfie) and the conditioning ``scale``."""

    model: str
    kind: str = "face"
    image: Any = None
    scale: float = 0.8
    annotators: str = "lllyasviel/Annotators"
    subfolder: str | None = None  # None: the base family's (CrucibleAI/ControlNetMediaPipeFace: diffusion_sd15)


@dataclass
class GenerationResult:
    """Files written by one :class:`HeadshotGenerator` call."""

    images: list[Path]
    manifest: Path
    records: list[dict[str, Any]]
    seconds: float


#: Manifest lines record every field of the option dataclasses (``asdict``) except these, and why.
IDENTITY_NOT_IN_MANIFEST = {
    "lora": "written as 'path' (a string), pinned by 'sha256'",
    "selfie": "a photo of the person never goes into a manifest; what it yields is saved beside it (faceid, control)",
    "face_embedding": "saved as its own .npy file, named under 'faceid'",
    "card": "lives in the LoRA file (pinned by 'sha256'); its training settings are copied under 'training'",
}
CONTROL_NOT_IN_MANIFEST = {"image": "saved as its own PNG, named under 'control' with its SHA-256"}


# ------------------------------------------------------------------------------------------- generator
class HeadshotGenerator:
    """Text-to-headshot generator (see the module docstring for the steps).

    Args:
        base: Hub id or local diffusers folder; ``None`` = ``HEADSHOT_LAB_BASE_MODEL``.
        speed: :class:`SpeedOptions`.
        faceid: :class:`FaceIDOptions` to enable IP-Adapter-FaceID (or FaceID-Plus / PlusV2).
        control: :class:`ControlOptions` to enable ControlNet.
        instantid: :class:`InstantIDOptions` to enable InstantID (SDXL only; not with ``faceid`` or ``control``).
        device: ``cpu``/``cuda``/``mps``; default ``HEADSHOT_LAB_DEVICE`` (``auto``).
        progress: tqdm bar over the images.

    Raises:
        ModelUnavailableError: no reachable base model (names ``HEADSHOT_LAB_BASE_MODEL``).
        InstantIDError: InstantID on a base that is not SDXL-class, or combined with FaceID or a ControlNet.
    """

    def __init__(
        self,
        base: str | None = None,
        *,
        speed: SpeedOptions | None = None,
        faceid: FaceIDOptions | None = None,
        control: ControlOptions | None = None,
        device: str | None = None,
        progress: bool = True,
        instantid: InstantIDOptions | None = None,
    ) -> None:
        from headshot_lab.models import locate_base

        self.base = locate_base(base)
        self.speed = speed or SpeedOptions()
        self.speed.validate()
        self.faceid = faceid
        self.control = control
        self.instantid = instantid
        if instantid is not None:
            self._check_instantid()
        self.faceid_variant: str | None = None  # resolved when the FaceID weights are loaded
        self._clip_hook: Any = None
        self._clip_source: str | None = None
        self._selfie_cache: tuple[Any, np.ndarray, Any] | None = None
        self.device_name = device
        self.progress = progress
        self.pipe: Any = None
        self.notes: list[str] = []
        self.load_seconds = 0.0
        self._identity_key: str | None = None
        self._identity_sha: str | None = None

    # -- step 1 ------------------------------------------------------------------------------------
    def check_inputs(self, style: Style, n: int, width: int, height: int, steps: int, guidance: float) -> None:
        """Reject impossible requests with a message a person can act on."""
        factor = self.size_multiple()
        problems = [
            (n >= 1, "the number of images (-n) must be at least 1"),
            (steps >= 1, "steps must be at least 1"),
            (guidance >= 0, "guidance scale must be ≥ 0"),
            (width % factor == 0 and height % factor == 0, f"width and height must be multiples of {factor}"),
            (min(width, height) >= factor, f"width and height must be at least {factor}"),
        ]
        for ok, message in problems:
            if not ok:
                raise HeadshotLabError(f"Cannot generate with style {style.name!r}: {message}.", code="bad_request")

    # -- step 2 ------------------------------------------------------------------------------------
    def load(self) -> Any:
        """Build the pipeline once: dtype/device, attention, VAE switches, few-step LoRA, IP-Adapter, offload."""
        if self.pipe is not None:
            return self.pipe
        from headshot_lab.models import choose_device, choose_dtype, load_pipeline, out_of_memory_guard

        started = time.perf_counter()
        device = choose_device(self.device_name)
        dtype = choose_dtype(device, self.speed.precision)
        if self.is_flux:
            dtype = self._check_flux_request(dtype, device)
        if self.faceid is not None:
            faceid_weight_name(self.faceid, self.base.family)  # an impossible variant is said before any loading
        controlnet = None
        if self.control is not None:
            from headshot_lab.control import load_controlnet

            self.check_controlnet()  # configs only: a family mismatch is said before any weights load
            controlnet = load_controlnet(
                self.control.model, dtype=dtype, family=self.base.family, subfolder=self.control.subfolder
            )
        elif self.instantid is not None:
            from headshot_lab.instantid import load_identitynet

            self.check_controlnet()
            controlnet = load_identitynet(self.instantid, dtype=dtype)
        pipe, _ = load_pipeline(self.base, dtype=dtype, controlnet=controlnet)
        if self.speed.compile:  # before the first LoRA: later identities hot-swap in without a recompile
            pipe.enable_lora_hotswap(target_rank=HOTSWAP_TARGET_RANK)
        if self.speed.attention == "eager" and self.is_flux:
            self.notes.append("attention=eager applies to SD1.5/SDXL UNets; FLUX keeps its own attention processors.")
        elif self.speed.attention == "eager":
            from diffusers.models.attention_processor import AttnProcessor

            pipe.unet.set_attn_processor(AttnProcessor())
            pipe.vae.set_attn_processor(AttnProcessor())
        if self.speed.vae_slicing:
            pipe.vae.enable_slicing()
        if self.speed.vae_tiling:
            pipe.vae.enable_tiling()
        if self.speed.few_step_lora:
            from diffusers import LCMScheduler

            self._load_lora(pipe, self.speed.few_step_lora, FEW_STEP_ADAPTER, what="few-step (LCM) LoRA")
            pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config)
        if self.faceid is not None:
            self._load_faceid(pipe)
        if self.instantid is not None:
            from headshot_lab.instantid import load_adapter

            load_adapter(pipe, self.instantid)
        offload = self.speed.cpu_offload
        if offload != "none" and device.type != "cuda":
            self.notes.append(f"cpu_offload={offload} needs a CUDA GPU; ignored on {device.type}.")
            offload = "none"
        with out_of_memory_guard("loading the base model onto the GPU"):
            if offload == "model":
                pipe.enable_model_cpu_offload(device=device)
            elif offload == "sequential":
                pipe.enable_sequential_cpu_offload(device=device)
            else:
                pipe.to(device)
        self._compile_pending = self.speed.compile  # compiled once the identity LoRA is attached
        self.pipe = pipe
        self.device = device
        self.dtype = dtype
        self.load_seconds = time.perf_counter() - started
        return pipe

    def check_controlnet(self) -> None:
        """Compare the ControlNet's config with the base UNet's (:func:`~headshot_lab.control.check_controlnet_fits`)
        from their ``config.json`` files alone, so a ControlNet of another family is refused before loading
        (InstantID's IdentityNet too)."""
        from diffusers import UNet2DConditionModel

        from headshot_lab.control import check_controlnet_fits, controlnet_config
        from headshot_lab.models import _from_pretrained

        if self.control is not None:
            config = controlnet_config(self.control.model, family=self.base.family, subfolder=self.control.subfolder)
            name = f"The ControlNet {self.control.model}"
            if self.is_flux:
                from diffusers import FluxTransformer2DModel

                transformer = _from_pretrained(FluxTransformer2DModel.load_config, self.base, subfolder="transformer")
                check_controlnet_fits(config, transformer, controlnet=name, base=self.base.source)
                return
        else:
            from headshot_lab.instantid import identitynet_config

            assert self.instantid is not None
            config = identitynet_config(self.instantid)
            name = f"The InstantID IdentityNet {self.instantid.source}/{self.instantid.controlnet_subfolder}"
        unet = _from_pretrained(UNet2DConditionModel.load_config, self.base, subfolder="unet")
        check_controlnet_fits(config, unet, controlnet=name, base=self.base.source)

    def _check_instantid(self) -> None:
        """InstantID needs an SDXL base and owns the ControlNet slot and the IP-Adapter slot."""
        from headshot_lab.instantid import InstantIDError, check_family

        check_family(self.base.family, self.base.source)
        for other, what in ((self.faceid, "IP-Adapter-FaceID"), (self.control, "a ControlNet")):
            if other is not None:
                raise InstantIDError(
                    f"InstantID cannot be combined with {what}: it brings its own IP-Adapter and ControlNet.",
                    fix="Choose one identity engine (InstantID, or FaceID / a ControlNet without it).",
                    code="instantid_combination",
                )

    @property
    def engine(self) -> str:
        """The identity engine of this setup (one of :data:`ENGINES`; ``lora`` also when no LoRA is attached yet
        and no tuning-free engine is on: the identity decides)."""
        if self.instantid is not None:
            return "instantid"
        if self.faceid is not None:
            variant = self.faceid_variant or self.faceid.variant
            return {"plus": "faceid-plus", "plusv2": "faceid-plusv2"}.get(variant, "faceid")
        return "lora"

    def _compile_once(self, pipe: Any) -> None:
        """``torch.compile`` the UNet after the identity LoRA is attached (compiling first and then adding a LoRA
        changes the graph: a recompile per identity); later identities hot-swap (``hotswap=True``)."""
        if getattr(self, "_compile_pending", False):
            _denoiser(pipe).compile(mode="reduce-overhead" if self.device.type == "cuda" else "default")
            self._compile_pending = False
            self._compiled = True

    def _vae_scale_factor(self) -> int:
        return int(getattr(self.pipe, "vae_scale_factor", 8))

    def _load_lora(self, pipe: Any, source: str | Path, adapter: str, *, what: str, hotswap: bool = False) -> None:
        """``pipe.load_lora_weights`` with clear errors (missing file, wrong family / shape); ``hotswap`` replaces
        the weights of the loaded adapter ``adapter`` in place (no recompile of a compiled UNet)."""
        from safetensors import SafetensorError

        from headshot_lab.models import is_hub_id, offline

        path = Path(str(source)).expanduser()
        kwargs: dict[str, Any] = {"adapter_name": adapter}
        if hotswap:
            kwargs["hotswap"] = True
        if path.is_file():
            location: str = str(path.parent)
            kwargs["weight_name"] = path.name
        elif path.is_dir() or not is_hub_id(str(source)):
            location = str(path)
        else:
            location = str(source)
            kwargs["local_files_only"] = offline()
        damaged = HeadshotLabError(
            f"The {what} {source} is damaged and cannot be read.",
            fix="Copy the LoRA again from where it was trained, or train it again.",
            code="lora_damaged",
        )
        try:
            with _quiet_diffusers():  # "No LoRA keys ... text_encoder": expected for UNet-only LoRAs
                pipe.load_lora_weights(location, **kwargs)
        except SafetensorError:
            raise damaged from None
        except (RuntimeError, ValueError) as exc:
            text = str(exc)
            if "size mismatch" in text or "shape" in text:
                raise LoraMismatchError(
                    f"The {what} {source} does not fit the base model {self.base.source} "
                    f"({self.base.family}): its layer shapes differ.",
                    fix="Use a LoRA trained for this base-model family, or the base it was trained on.",
                ) from None
            raise HeadshotLabError(f"The {what} {source} could not be loaded: {text}", code="lora_error") from None
        except OSError as exc:
            if path.is_file():
                raise damaged from None
            raise ModelUnavailableError(
                f"The {what} {source} could not be found or downloaded ({type(exc).__name__}).",
                fix="Pass an existing .safetensors file or folder, or a Hub id you can reach (HF_HUB_OFFLINE uses the cache).",
            ) from None

    def _load_faceid(self, pipe: Any) -> None:
        from headshot_lab.models import offline

        assert self.faceid is not None
        weight_name = faceid_weight_name(self.faceid, self.base.family)
        kwargs: dict[str, Any] = {"subfolder": self.faceid.subfolder, "weight_name": weight_name}
        if not Path(self.faceid.weights).is_dir():
            kwargs["local_files_only"] = offline()
        try:
            pipe.load_ip_adapter(self.faceid.weights, image_encoder_folder=None, **kwargs)
        except (OSError, ValueError) as exc:
            raise ModelUnavailableError(
                f"IP-Adapter-FaceID weights {self.faceid.weights}/{weight_name} could not be loaded "
                f"({type(exc).__name__}).",
                fix=f"Pass a folder holding {weight_name}, or a Hub id you can reach (default {FACEID_REPO}).",
            ) from None
        except RuntimeError as exc:
            raise LoraMismatchError(
                f"The IP-Adapter-FaceID weights {weight_name} do not fit {self.base.source} ({self.base.family}).",
                fix=f"Use the {self.base.family} FaceID weights ({FACEID_WEIGHTS[self.base.family]}).",
            ) from exc
        pipe.set_ip_adapter_scale(self.faceid.scale)
        self._setup_faceid_plus(pipe, weight_name)

    def _setup_faceid_plus(self, pipe: Any, weight_name: str) -> None:
        """Resolve the FaceID variant from the loaded projection; for Plus/PlusV2 load the CLIP image encoder
        (registered as the pipeline's ``image_encoder``, so device moves and offload include it) and hook the
        projection (:class:`~headshot_lab.faceid_plus.FaceClipHook`: ``clip_embeds`` per call, ``shortcut`` for v2)."""
        from headshot_lab.faceid_plus import (
            FaceClipHook,
            load_clip_image_encoder,
            resolve_clip_encoder,
            resolve_variant,
        )

        assert self.faceid is not None
        projection = pipe.unet.encoder_hid_proj.image_projection_layers[0]
        try:
            self.faceid_variant = resolve_variant(self.faceid.variant, weight_name, projection)
        except HeadshotLabError:
            pipe.unload_ip_adapter()
            raise
        if self.faceid_variant == "faceid":
            return
        self._clip_source = resolve_clip_encoder(self.faceid.clip_encoder)
        encoder = load_clip_image_encoder(self._clip_source, dtype=pipe.unet.dtype)
        pipe.register_modules(image_encoder=encoder)
        self._clip_hook = FaceClipHook(
            projection, shortcut=self.faceid_variant == "plusv2", shortcut_scale=self.faceid.shortcut_scale
        )

    # -- step 3 ------------------------------------------------------------------------------------
    def attach_identity(self, identity: Identity) -> None:
        """Load the identity LoRA (once per file) and set every adapter's weight.

        The LoRA card's family must match the base (a LoRA for the other family fails otherwise only
        with a shape mismatch). IP-Adapter-FaceID's own LoRA (``faceid_0``) and the few-step LoRA stay
        active next to it.
        """
        from headshot_lab.train import file_sha256

        pipe = self.load()
        key = _file_key(identity.lora) if identity.lora else None
        hotswap = False
        if key != self._identity_key and self._identity_key is not None:
            hotswap = key is not None and getattr(self, "_compiled", False)
            if not hotswap:
                pipe.delete_adapters(IDENTITY_ADAPTER)
            self._identity_key = self._identity_sha = None
        if identity.lora is not None and self._identity_key is None:
            card = identity.card or {}
            family = card.get("family")
            if family and family != self.base.family:
                raise LoraMismatchError(
                    f"This identity LoRA was trained for an {_family_label(family)} base "
                    f"({card.get('base_model', 'unknown')}), but {self.base.source} is {_family_label(self.base.family)}.",
                    fix=f"Generate with --base {card.get('base_model', 'the base it was trained on')}, "
                    "or train a new LoRA on this base.",
                )
            self._load_lora(pipe, identity.lora, IDENTITY_ADAPTER, what="identity LoRA", hotswap=hotswap)
            self._identity_key = key
            self._identity_sha = file_sha256(identity.lora)
        adapters = pipe.get_list_adapters() if hasattr(pipe, "get_list_adapters") else {}
        names = sorted({name for per_component in adapters.values() for name in per_component})
        if names:
            weights = [float(identity.scale) if name == IDENTITY_ADAPTER else 1.0 for name in names]
            pipe.set_adapters(names, adapter_weights=weights)
        self._compile_once(pipe)

    # -- step 4 ------------------------------------------------------------------------------------
    def prepare_face_embedding(self, identity: Identity) -> np.ndarray | None:
        """The ArcFace embedding for FaceID / InstantID: given, or from the selfie via the ``insightface`` backend."""
        if self.faceid is None and self.instantid is None:
            return None
        if identity.face_embedding is not None:
            return np.asarray(identity.face_embedding, dtype=np.float32).reshape(-1)
        what = "InstantID" if self.instantid is not None else "IP-Adapter-FaceID"
        if identity.selfie is None:
            raise HeadshotLabError(
                f"{what} needs a selfie (or a face embedding) of the person.",
                fix="Pass --selfie PHOTO, or choose another identity engine.",
                code="faceid_needs_selfie",
            )
        _pixels, face = self._selfie_face(identity)
        if face.embedding is None:
            raise FaceNotFoundError(f"No face was found in the selfie, so {what} has nothing to use.")
        return np.asarray(face.embedding, dtype=np.float32).reshape(-1)

    def _selfie_face(self, identity: Identity) -> tuple[np.ndarray, Any]:
        """``(pixels, largest face)`` of the selfie by the ``insightface`` backend (``analyze``: box, 5 landmarks,
        ArcFace embedding), analysed once per selfie object."""
        from headshot_lab.faces import get_backend, largest_face
        from headshot_lab.io import as_rgb_array, load_rgb

        cached = self._selfie_cache
        if cached is not None and cached[0] is identity.selfie:
            return cached[1], cached[2]
        pixels = (
            load_rgb(identity.selfie, min_side=0)
            if isinstance(identity.selfie, str | Path)
            else as_rgb_array(identity.selfie)
        )
        face = largest_face(get_backend("insightface").analyze(pixels))
        if face is None:
            raise FaceNotFoundError("No face was found in the selfie, so the identity engine has nothing to use.")
        self._selfie_cache = (identity.selfie, pixels, face)
        return pixels, face

    def prepare_face_clip(self, identity: Identity) -> np.ndarray | None:
        """FaceID-Plus: ``[C(0), C(crop)]`` CLIP features of the selfie's face aligned at 224 px
        (:func:`~headshot_lab.faceid_plus.clip_face_features`), or ``None`` for the other engines."""
        if self._clip_hook is None:
            return None
        from headshot_lab.faceid_plus import FaceIDPlusError, clip_face_features, face_crop

        if identity.selfie is None:
            raise FaceIDPlusError(
                "IP-Adapter-FaceID-Plus needs a selfie: the CLIP image encoder reads the aligned face crop.",
                fix="Pass --selfie PHOTO (a face embedding alone is not enough for Plus), or use plain FaceID.",
                code="faceid_plus_needs_selfie",
            )
        pixels, face = self._selfie_face(identity)
        return clip_face_features(self.pipe.image_encoder, face_crop(pixels, face.landmarks5))

    # -- step 5 ------------------------------------------------------------------------------------
    def prepare_control(self, identity: Identity, width: int, height: int) -> Any:
        """The ControlNet conditioning image (``PIL.Image``) at the output size, or ``None``; InstantID's is the
        keypoint map of the pose image's (default: the selfie's) face (:func:`~headshot_lab.instantid.keypoint_map`)."""
        if self.instantid is not None:
            return self._keypoint_map(identity, width, height)
        if self.control is None:
            return None
        from headshot_lab.control import conditioning_image

        reference = self.control.image if self.control.image is not None else identity.selfie
        if reference is None:
            raise HeadshotLabError(
                "ControlNet needs a reference image: a pose reference or the person's selfie.",
                fix="Pass --control-image PHOTO (or --selfie), or leave out --controlnet.",
                code="control_needs_image",
            )
        return conditioning_image(
            reference, self.control.kind, width=width, height=height, annotators=self.control.annotators
        ).image

    def _keypoint_map(self, identity: Identity, width: int, height: int) -> Any:
        from headshot_lab.instantid import InstantIDError, face_keypoints, keypoint_map

        assert self.instantid is not None
        if self.instantid.pose_image is not None:
            kps, size = face_keypoints(self.instantid.pose_image)
        elif identity.selfie is not None:
            pixels, face = self._selfie_face(identity)
            if face.landmarks5 is None:
                raise FaceNotFoundError("The selfie's face has no 5-point landmarks, which InstantID follows.")
            kps, size = np.asarray(face.landmarks5, np.float32), (int(pixels.shape[1]), int(pixels.shape[0]))
        else:
            raise InstantIDError(
                "InstantID needs a photo for its face keypoints: the selfie or a pose image.",
                fix="Pass --selfie PHOTO (or InstantIDOptions.pose_image).",
                code="instantid_needs_photo",
            )
        return keypoint_map(kps, size, width, height)

    # -- step 6 ------------------------------------------------------------------------------------
    def sampling(self, style: Style, steps: int | None, guidance_scale: float | None) -> tuple[int, float]:
        """Steps and guidance: explicit values, else the few-step path's, else the base's own (FLUX: schnell 4
        steps at 0, dev 28 at 3.5 — :func:`~headshot_lab.models.sampling_defaults`), else the style's."""
        family_defaults = self.family_sampling()
        if family_defaults is not None:
            return steps or family_defaults.steps, (
                guidance_scale if guidance_scale is not None else family_defaults.guidance_scale
            )
        if self.speed.few_step_lora:
            return steps or self.speed.few_step_steps, (
                guidance_scale if guidance_scale is not None else self.speed.few_step_guidance
            )
        return steps or style.steps, guidance_scale if guidance_scale is not None else style.guidance_scale

    def output_size(self, style: Style, width: int | None, height: int | None) -> tuple[int, int]:
        """``(width, height)``: explicit, else the style's aspect at the base's native size."""
        pipe = self.load()
        if self.is_flux:  # no UNet sample size: the VAE's (1024 for FLUX.1, the tiny model's own size in tests)
            native = int(pipe.vae.config.sample_size)
        else:
            native = int(pipe.unet.config.sample_size) * self._vae_scale_factor()
        auto_w, auto_h = style.size_for(native, multiple=self.size_multiple())
        return int(width or auto_w), int(height or auto_h)

    # -- FLUX-specific hooks --------------------------------------------------------------------------
    @property
    def is_flux(self) -> bool:
        """Whether the base is FLUX.1-class (a DiT: T5 prompts, no negative prompt, distilled guidance)."""
        return self.base.family == "flux"

    def size_multiple(self) -> int:
        """What width and height must be multiples of: 8 for SD; FLUX packs 2×2 latent patches, so
        ``lcm(8, 2 · vae_scale_factor)`` (16 for FLUX.1's 8× VAE)."""
        if self.is_flux and self.pipe is not None:
            return math.lcm(SIZE_MULTIPLE, 2 * self._vae_scale_factor())
        return SIZE_MULTIPLE

    def family_sampling(self) -> Any:
        """The base's own sampler defaults (:class:`~headshot_lab.models.SamplingDefaults`) or ``None`` (SD)."""
        from headshot_lab.models import sampling_defaults

        if not self.is_flux:
            return None
        pipe = self.load()
        return sampling_defaults(self.base.family, pipe.transformer.config)

    def _check_flux_request(self, dtype: Any, device: Any) -> Any:
        """Refuse what FLUX cannot do here before any weights load; fp16 → bf16 on CUDA (FLUX overflows fp16)."""
        from headshot_lab.models import family_dtype, licence_note

        unsupported = [
            (
                self.faceid is not None,
                "IP-Adapter-FaceID",
                "use an identity LoRA trained on this base, or an SD1.5/SDXL base for FaceID",
            ),
            (
                bool(self.speed.few_step_lora),
                "an LCM few-step LoRA",
                "FLUX.1-schnell is already a 4-step model: leave out the few-step LoRA",
            ),
        ]
        for refused, what, fix in unsupported:
            if refused:
                raise HeadshotLabError(
                    f"{what} is made for SD1.5/SDXL UNets; {self.base.source} is a FLUX.1-class base.",
                    fix=fix[0].upper() + fix[1:] + ".",
                    code="unsupported_for_family",
                )
        note = licence_note(self.base.source)
        if note and note not in self.notes:
            self.notes.append(note)
        chosen = family_dtype(self.base.family, dtype, device)
        if chosen != dtype:
            self.notes.append("FLUX runs in bf16 on the GPU (fp16 overflows in its transformer).")
        return chosen

    def render(
        self,
        prompt: str,
        negative_prompt: str | None,
        seeds: Sequence[int],
        *,
        steps: int,
        guidance_scale: float,
        width: int,
        height: int,
        control_image: Any = None,
        face_embedding: np.ndarray | None = None,
        face_clip: np.ndarray | None = None,
        prompt_2: str | None = None,
    ) -> tuple[list[Any], list[bool]]:
        """One pipeline call for ``len(seeds)`` images; image ``i`` starts from ``randn`` of ``seeds[i]``.

        ``face_clip``: FaceID-Plus's ``[C(0), C(crop)]`` CLIP features (:meth:`prepare_face_clip`). With InstantID
        the IdentityNet reads the face tokens of ``face_embedding`` (:func:`~headshot_lab.instantid.face_tokens`).
        ``prompt_2`` (FLUX): the T5 prompt (the style's long form); ``prompt`` then goes to CLIP only (≤ 77 tokens).

        Returns:
            ``(images, nsfw_flags)`` (flags are ``False`` when the base has no safety checker).
        """
        import torch

        from headshot_lab.models import out_of_memory_guard

        pipe = self.load()
        generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        kwargs: dict[str, Any] = {
            "prompt": prompt,
            "negative_prompt": negative_prompt if guidance_scale > 1 else None,
            "num_inference_steps": steps,
            "guidance_scale": guidance_scale,
            "height": height,
            "width": width,
            "num_images_per_prompt": len(seeds),
            "generator": generators,
        }
        if self.is_flux:  # no negative prompt; guidance_scale is the distilled-guidance embedding (dev)
            kwargs.update(self._flux_kwargs(prompt, prompt_2))
        if control_image is not None:
            kwargs["control_image" if self.is_flux else "image"] = control_image  # FluxControlNetPipeline's name
            kwargs["controlnet_conditioning_scale"] = self._control_scale()
        if face_embedding is not None:
            from headshot_lab.detail import ip_embeds_shape

            embeds = torch.from_numpy(np.asarray(face_embedding, dtype=np.float32)).reshape(ip_embeds_shape(pipe))
            if guidance_scale > 1:
                embeds = torch.cat([torch.zeros_like(embeds), embeds])
            kwargs["ip_adapter_image_embeds"] = [embeds.to(self.device, dtype=self.dtype)]
        if self._clip_hook is not None:
            if face_clip is None:
                raise HeadshotLabError("FaceID-Plus needs the CLIP features of the face.", code="faceid_plus_error")
            self._clip_hook.set(face_clip)
        with (
            out_of_memory_guard(f"generating {len(seeds)} image(s) at {width}×{height}"),
            torch.inference_mode(),
            self._identitynet_tokens(kwargs, len(seeds), guidance_scale),
        ):
            output = pipe(**kwargs)
        flags = getattr(output, "nsfw_content_detected", None) or [False] * len(output.images)
        return list(output.images), [bool(f) for f in flags]

    def _control_scale(self) -> float:
        if self.instantid is not None:
            return float(self.instantid.controlnet_scale)
        return float(self.control.scale if self.control else 1.0)

    def _identitynet_tokens(self, kwargs: dict[str, Any], num_images: int, guidance_scale: float) -> Any:
        """InstantID: route the face tokens into IdentityNet for this call (a no-op context otherwise)."""
        from contextlib import nullcontext

        if self.instantid is None:
            return nullcontext()
        from headshot_lab.instantid import InstantIDError, face_tokens

        embeds = kwargs.get("ip_adapter_image_embeds")
        if embeds is None:
            raise InstantIDError("InstantID needs the face embedding of the person.", code="instantid_needs_face")
        tokens = face_tokens(self.pipe, embeds, num_images=num_images, guidance=guidance_scale > 1)
        return self.pipe.controlnet.face_tokens(tokens)

    def _flux_kwargs(self, prompt: str, prompt_2: str | None) -> dict[str, Any]:
        """FluxPipeline's arguments that differ from SD's: ``prompt`` to CLIP (its pooled vector) and ``prompt_2`` to
        T5 (the sequence the transformer attends to), no ``negative_prompt`` (diffusers 0.42 has one only for
        "true CFG", ``true_cfg_scale > 1``, which doubles the cost and is not used here) and the base's
        ``max_sequence_length`` (T5 tokens: schnell 256, dev 512). ``guidance_scale`` is passed as given: an
        embedding input on dev; schnell's transformer has no guidance input and ignores it."""
        defaults = self.family_sampling()
        return {
            "prompt_2": prompt_2 or prompt,
            "negative_prompt": None,
            "max_sequence_length": int(defaults.max_sequence_length),
        }

    # -- step 7 + the whole call -------------------------------------------------------------------
    def __call__(
        self,
        identity: Identity | str | Path | None,
        style: str | Path | Style = "corporate",
        n: int = 4,
        seed: int | None = None,
        out_dir: str | Path = "headshots",
        *,
        steps: int | None = None,
        guidance_scale: float | None = None,
        width: int | None = None,
        height: int | None = None,
        detail: Any = None,
        hires: Any = None,
        upscaler: Any = None,
        upscale: UpscaleOptions | None = None,
    ) -> GenerationResult:
        """Generate ``n`` headshots of ``identity`` in ``style`` into ``out_dir`` (+ ``manifest.jsonl``).

        ``hires`` (:class:`headshot_lab.hires.HiresOptions`) runs the hires fix on each image (``upscaler``: the
        upscale hook, default Lanczos) and ``detail`` (:class:`headshot_lab.detail.DetailOptions`) the face-detail
        pass after it (:meth:`post_process`); both are recorded in the manifest and replayed by :func:`regenerate`.
        ``upscale``: then enlarge each image 2× or 4× before it is written (:class:`headshot_lab.upscale.UpscaleOptions`);
        the manifest line records how under ``"upscale"`` and :func:`regenerate` repeats it.
        """
        from tqdm.auto import tqdm

        started = time.perf_counter()
        identity = as_identity(identity)
        style = load_style(style)
        seed = _choose_seed(seed, style)
        self.load()
        steps, guidance = self.sampling(style, steps, guidance_scale)
        width, height = self.output_size(style, width, height)
        self.check_inputs(style, n, width, height, steps, guidance)
        self.attach_identity(identity)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self._selfie_cache = None
        face_embedding = self.prepare_face_embedding(identity)
        face_clip = self.prepare_face_clip(identity)
        control_image = self.prepare_control(identity, width, height)
        prompt = style.render_prompt(identity.subject)  # CLIP (≤ 77 tokens); FLUX's T5 reads prompt_2
        prompt_2 = style.render_prompt(identity.subject, self.base.family) if self.is_flux else None
        negative_prompt = style.negative_for(self.base.family)
        if self.is_flux and (hires is not None or detail is not None):
            raise HeadshotLabError(
                "The hires fix and the face-detail pass run SD1.5/SDXL img2img/inpaint pipelines; "
                f"{self.base.source} is a FLUX.1-class base.",
                fix="Leave out --hires/--detail for FLUX, or generate at the base's native size (1024 px) instead.",
                code="unsupported_for_family",
            )
        assets = self._save_assets(out, face_embedding, control_image, face_clip)
        manifest = out / MANIFEST_NAME
        first_index = _count_lines(manifest)
        seeds = [seed + i for i in range(n)]
        records: list[dict[str, Any]] = []
        images: list[Path] = []
        bar = tqdm(total=n, desc=f"Generating {style.name} headshots", disable=not self.progress)
        for start in range(0, n, self.speed.batch_size):
            batch = seeds[start : start + self.speed.batch_size]
            t0 = time.perf_counter()
            pictures, flags = self.render(
                prompt,
                negative_prompt,
                batch,
                steps=steps,
                guidance_scale=guidance,
                width=width,
                height=height,
                control_image=control_image,
                face_embedding=face_embedding,
                face_clip=face_clip,
                prompt_2=prompt_2,
            )
            batch_seconds = time.perf_counter() - t0
            for offset, (picture, flagged) in enumerate(zip(pictures, flags, strict=True)):
                index = first_index + start + offset
                picture, passes = self.post_process(
                    picture,
                    seed=batch[offset],
                    prompt=prompt,
                    negative_prompt=negative_prompt or "",
                    steps=steps,
                    guidance_scale=guidance,
                    face_embedding=face_embedding,
                    detail=detail,
                    hires=hires,
                    upscaler=upscaler,
                    detail_strength=getattr(style, "detail_strength", None),
                    references=[identity.selfie] if identity.selfie is not None else None,
                )
                record = self._record(
                    index=index,
                    seed=batch[offset],
                    batch_seeds=batch,
                    batch_index=offset,
                    style=style,
                    prompt=prompt,
                    identity=identity,
                    steps=steps,
                    guidance=guidance,
                    width=width,
                    height=height,
                    assets=assets,
                    timings={
                        "load_s": round(self.load_seconds, 4),
                        "batch_s": round(batch_seconds, 4),
                        "image_s": round(batch_seconds / len(batch), 4),
                    },
                    nsfw=flagged,
                )
                record.update(passes)
                if upscale is not None:
                    picture, record["upscale"] = upscale.apply(picture, device=self.device_name)
                images.append(self.write_outputs(out, record, picture))
                records.append(record)
                bar.update(1)
        bar.close()
        return GenerationResult(
            images=images, manifest=manifest, records=records, seconds=time.perf_counter() - started
        )

    def post_process(
        self,
        picture: Any,
        *,
        seed: int,
        prompt: str,
        negative_prompt: str,
        steps: int,
        guidance_scale: float,
        face_embedding: np.ndarray | None = None,
        detail: Any = None,
        hires: Any = None,
        upscaler: Any = None,
        detail_strength: float | None = None,
        references: Sequence[Any] | None = None,
        replay: dict[str, Any] | None = None,
    ) -> tuple[Any, dict[str, Any]]:
        """The realism passes after rendering: hires fix (:mod:`headshot_lab.hires`), then the face-detail pass
        (:mod:`headshot_lab.detail`), both seeded by the image's seed.

        Returns ``(image, {"hires": record or None, "detail": record or None})`` for the manifest line. With
        ``replay`` (a manifest line) the recorded settings, boxes and crops are used as they are (no detection).
        """
        passes: dict[str, Any] = {"hires": None, "detail": None}
        if hires is not None:
            from headshot_lab.hires import hires_fix

            result = hires_fix(
                picture,
                self,
                prompt=prompt,
                negative_prompt=negative_prompt,
                seed=seed,
                options=hires,
                steps=steps,
                guidance_scale=guidance_scale,
                face_embedding=face_embedding,
                upscaler=upscaler,
            )
            picture, passes["hires"] = result.image, result.record()
        if detail is not None:
            from headshot_lab.detail import detail_faces

            recorded = (replay or {}).get("detail") or {}
            before = picture
            strength = detail.strength if detail.strength is not None else detail_strength
            outcome = detail_faces(
                picture,
                self,
                prompt=prompt,
                negative_prompt=negative_prompt,
                strength=strength,
                seed=seed,
                identity=face_embedding,
                options=detail,
                steps=steps,
                guidance_scale=guidance_scale,
                faces=recorded.get("faces") if replay is not None else None,
            )
            picture = outcome.image
            passes["detail"] = outcome.record()
            if outcome.faces and replay is None:
                from headshot_lab.detail import measure_detail

                passes["detail"]["measures"] = measure_detail(before, picture, references=references)
        return picture, passes

    def _save_assets(
        self, out: Path, face_embedding: np.ndarray | None, control_image: Any, face_clip: np.ndarray | None = None
    ) -> dict[str, Any]:
        """Save the FaceID embedding (``.npy``), the conditioning image (``.png``: ControlNet map or InstantID
        keypoints) and FaceID-Plus's CLIP features (``.npy``), named by content hash."""
        from headshot_lab.control import pixels_sha256
        from headshot_lab.io import save_image

        assets: dict[str, Any] = {}
        if face_embedding is not None:
            digest = pixels_sha256(face_embedding)
            name = f"faceid-{digest[:12]}.npy"
            with atomic_write(out / name) as handle:
                np.save(handle, face_embedding.astype(np.float32))
            assets["faceid"] = {"embedding_file": name, "embedding_sha256": digest}
        if control_image is not None:
            digest = pixels_sha256(np.asarray(control_image))
            name = f"control-{digest[:12]}.png"
            save_image(control_image, out / name)
            assets["control"] = {"image_file": name, "image_sha256": digest}
        if face_clip is not None:
            digest = pixels_sha256(face_clip)
            name = f"faceclip-{digest[:12]}.npy"
            with atomic_write(out / name) as handle:
                np.save(handle, face_clip.astype(np.float32))
            assets["face_clip"] = {"clip_file": name, "clip_sha256": digest}
        return assets

    def _record(
        self,
        *,
        index: int,
        seed: int,
        batch_seeds: list[int],
        batch_index: int,
        style: Style,
        prompt: str,
        identity: Identity,
        steps: int,
        guidance: float,
        width: int,
        height: int,
        assets: dict[str, Any],
        timings: dict[str, float],
        nsfw: bool,
    ) -> dict[str, Any]:
        """One manifest line: this call's settings; every field of the option dataclasses (``speed``,
        ``faceid``, ``control``, the identity) via :func:`~headshot_lab.records.config_record`, so a new
        option reaches the line by itself (exclusions: :data:`IDENTITY_NOT_IN_MANIFEST`,
        :data:`CONTROL_NOT_IN_MANIFEST`); and the LoRA card's training settings under ``lora.training``."""
        from headshot_lab.models import dtype_name
        from headshot_lab.train import _versions, card_settings

        pipe = self.pipe
        lora = None
        if identity.lora is not None:
            card = identity.card or {}
            lora = {
                **config_record(identity, IDENTITY_NOT_IN_MANIFEST),  # scale, token, class_noun, any new field
                "path": str(identity.lora),
                "sha256": self._identity_sha,
                "family": card.get("family"),
                "token": card.get("token") or identity.token,
                "training": card_settings(card) if identity.card else None,  # the card's TrainConfig settings
            }
        faceid = None
        if self.faceid is not None:
            faceid = {
                "options": config_record(self.faceid),
                **assets.get("faceid", {}),
                "variant": self.faceid_variant,
                "weights": self.faceid.weights,
                "weight_name": faceid_weight_name(self.faceid, self.base.family),
                "clip_encoder": self._clip_source,
                **assets.get("face_clip", {}),
            }
        control = None
        if self.control is not None:
            control = {"options": config_record(self.control, CONTROL_NOT_IN_MANIFEST), **assets.get("control", {})}
        instantid = None
        if self.instantid is not None:
            instantid = {
                "options": config_record(self.instantid, INSTANTID_NOT_IN_MANIFEST),
                "weights": self.instantid.source,
                "keypoints_file": assets.get("control", {}).get("image_file"),
                "keypoints_sha256": assets.get("control", {}).get("image_sha256"),
                **assets.get("faceid", {}),
            }
        return {
            "schema": MANIFEST_SCHEMA,
            "file": f"headshot-{index:04d}.png",
            "index": index,
            "seed": seed,
            "batch_seeds": list(batch_seeds),
            "batch_index": batch_index,
            "style": style.name,
            "style_sha256": style.sha256,
            "subject": identity.subject,
            "prompt": prompt,
            "prompt_2": style.render_prompt(identity.subject, self.base.family) if self.is_flux else None,
            "negative_prompt": style.negative_for(self.base.family),  # None: the family has none (FLUX)
            "steps": steps,
            "guidance_scale": guidance,
            "width": width,
            "height": height,
            "base_model": self.base.source,
            "family": self.base.family,
            "max_sequence_length": self.family_sampling().max_sequence_length if self.is_flux else None,
            "pipeline": type(pipe).__name__,
            "scheduler": type(pipe.scheduler).__name__,
            "engine": self.engine if (self.faceid or self.instantid or identity.lora) else "base",
            "lora": lora,
            "faceid": faceid,
            "control": control,
            "instantid": instantid,
            "speed": config_record(self.speed),
            "device": self.device.type,
            "dtype": dtype_name(self.dtype),
            "notes": list(self.notes),
            "nsfw_flagged": nsfw,
            "timings": timings,
            "versions": _versions(),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }

    def write_outputs(self, out: Path, record: dict[str, Any], image: Any) -> Path:
        """Write the PNG, labelled as AI-generated, and append the manifest line, both all or nothing.

        Disclosure policy: every image the generator writes carries IPTC DigitalSourceType
        ``trainedAlgorithmicMedia`` and the disclosure sentence in XMP (plus a C2PA manifest when
        ``HEADSHOT_LAB_C2PA_CERT``/``KEY`` are set), written by :func:`headshot_lab.provenance.save_with_provenance`
        at the moment the file is made, so the app, ``headshot-lab generate`` and :func:`generate` all label
        alike. Only the pixels are kept (no other metadata); PNG is lossless, so the pixels are exactly the
        model's (``image_sha256`` in the manifest is their hash).

        The image goes first (atomically); when its manifest line cannot be written (e.g. a full disk) the
        image is removed again, so every image in ``out`` has its line and every line its image.
        """
        from headshot_lab.control import pixels_sha256
        from headshot_lab.provenance import save_with_provenance
        from headshot_lab.upscale import entry_history

        history = entry_history(record.get("upscale"))  # an upscale is named in the file too (lanczos or the model)
        path = save_with_provenance(image, out / record["file"], GENERATED_KIND, format="PNG", history=history)
        record["image_sha256"] = pixels_sha256(np.asarray(image))
        try:
            append_line(out / MANIFEST_NAME, json.dumps(record, ensure_ascii=False, sort_keys=True))
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path


# ------------------------------------------------------------------------------------------- helpers
def faceid_weight_name(faceid: FaceIDOptions, family: str) -> str:
    """The FaceID weights file: ``weight_name``, else the family's file of the variant in ``h94/IP-Adapter-FaceID``
    (``faceid``/``auto``: :data:`FACEID_WEIGHTS`; ``plus``/``plusv2``: :data:`FACEID_PLUS_WEIGHTS`).

    Raises:
        HeadshotLabError: an unknown variant, or a variant the family has no published file of (SDXL Plus v1).
    """
    from headshot_lab.faceid_plus import FACEID_VARIANTS

    if faceid.variant not in FACEID_VARIANTS:
        raise HeadshotLabError(
            f"Unknown FaceID variant {faceid.variant!r}.",
            fix=f"Use one of {', '.join(FACEID_VARIANTS)}.",
            code="bad_option",
        )
    if faceid.weight_name:
        return faceid.weight_name
    if faceid.variant in ("auto", "faceid"):
        return FACEID_WEIGHTS[family]
    name = FACEID_PLUS_WEIGHTS.get((faceid.variant, family))
    if name is None:
        raise HeadshotLabError(
            f"{FACEID_REPO} has no FaceID-{faceid.variant} weights for {_family_label(family)} bases.",
            fix="Use variant plusv2 (ip-adapter-faceid-plusv2_sdxl.bin) for SDXL, or pass --faceid-weight-name.",
            code="faceid_variant_unavailable",
        )
    return name


@contextmanager
def _quiet_diffusers() -> Iterator[None]:
    """Silence diffusers' and peft's notes about expected things while loading LoRAs (level ERROR inside)."""
    from diffusers.utils import logging as diffusers_logging

    before = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            # peft: "Already found a `peft_config` attribute" — several adapters side by side is the point.
            warnings.filterwarnings("ignore", message="Already found a `peft_config`", category=UserWarning)
            yield
    finally:
        diffusers_logging.set_verbosity(before)


def _file_key(path: Path) -> str:
    """Path + size + modification time: a retrained LoRA at the same path is loaded again."""
    stat = Path(path).stat()
    return f"{path}:{stat.st_size}:{stat.st_mtime_ns}"


def _family_label(family: str) -> str:
    return {"sd15": "SD1.5-class", "sdxl": "SDXL-class", "flux": "FLUX.1-class"}.get(family, family)


def _denoiser(pipe: Any) -> Any:
    """The pipeline's denoising network: the UNet (SD1.5/SDXL) or the transformer (FLUX)."""
    return pipe.unet if getattr(pipe, "unet", None) is not None else pipe.transformer


def _choose_seed(seed: int | None, style: Style) -> int:
    if seed is not None:
        return int(seed)
    if style.default_seed is not None:
        return style.default_seed
    return secrets.randbelow(2**31)


def _count_lines(path: Path) -> int:
    if not path.is_file():
        return 0
    with open(path, encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())


def as_identity(identity: Identity | str | Path | None) -> Identity:
    """Accept an :class:`Identity`, a LoRA path, or ``None`` (no LoRA)."""
    if identity is None:
        return Identity()
    if isinstance(identity, Identity):
        if identity.lora is not None and identity.card is None:
            loaded = Identity.from_lora(identity.lora, identity.scale)
            identity.lora, identity.card = loaded.lora, loaded.card
        return identity
    return Identity.from_lora(identity)


def generate(
    identity: Identity | str | Path | None,
    style: str | Path | Style = "corporate",
    n: int = 4,
    seed: int | None = None,
    out_dir: str | Path = "headshots",
    *,
    base: str | None = None,
    speed: SpeedOptions | None = None,
    faceid: FaceIDOptions | None = None,
    control: ControlOptions | None = None,
    instantid: InstantIDOptions | None = None,
    device: str | None = None,
    steps: int | None = None,
    guidance_scale: float | None = None,
    width: int | None = None,
    height: int | None = None,
    progress: bool = True,
    detail: Any = None,
    hires: Any = None,
    upscaler: Any = None,
) -> GenerationResult:
    """Generate ``n`` headshots and a ``manifest.jsonl`` (one-call form of :class:`HeadshotGenerator`).

    Every PNG is labelled AI-generated (IPTC ``trainedAlgorithmicMedia``) as it is written (:meth:`~HeadshotGenerator.write_outputs`).
    """
    generator = HeadshotGenerator(
        base, speed=speed, faceid=faceid, control=control, device=device, progress=progress, instantid=instantid
    )
    return generator(
        identity,
        style,
        n,
        seed,
        out_dir,
        steps=steps,
        guidance_scale=guidance_scale,
        width=width,
        height=height,
        detail=detail,
        hires=hires,
        upscaler=upscaler,
    )


def read_manifest(path: str | Path) -> list[dict[str, Any]]:
    """All records of a ``manifest.jsonl`` (a folder is taken to hold one)."""
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def regenerate(
    manifest_line: str | dict[str, Any],
    *,
    root: str | Path | None = None,
    device: str | None = None,
    generator: HeadshotGenerator | None = None,
    upscaler: Any = None,
) -> Any:
    """Make the image of one manifest line again and return it (``PIL.Image``).

    A line with ``hires`` / ``detail`` records replays those passes too (``upscaler``: the hook the hires fix
    used, when it was not the default Lanczos).

    Args:
        manifest_line: a line of ``manifest.jsonl`` (text or parsed).
        root: the folder the manifest is in (for the saved conditioning image and face embedding);
            default: the current directory.
        device: where to run; default ``HEADSHOT_LAB_DEVICE``.
        generator: reuse an already loaded generator with the same setup (faster for many lines).

    Raises:
        HeadshotLabError: the LoRA file changed since the image was made, or a saved asset is missing.
    """
    from PIL import Image

    from headshot_lab.train import file_sha256

    record = json.loads(manifest_line) if isinstance(manifest_line, str) else dict(manifest_line)
    if record.get("schema") != MANIFEST_SCHEMA:
        raise HeadshotLabError(
            f"Not a headshot-lab manifest line (schema {record.get('schema')!r}).", code="bad_manifest"
        )
    folder = Path(root) if root is not None else Path.cwd()
    identity = Identity()
    if record.get("lora"):
        lora = record["lora"]
        identity = Identity.from_lora(lora["path"], scale=float(lora["scale"]))
        if lora.get("sha256") and identity.lora is not None and file_sha256(identity.lora) != lora["sha256"]:
            raise HeadshotLabError(
                f"The LoRA {lora['path']} changed since this image was made (its SHA-256 differs).",
                fix="Use the original LoRA file to reproduce the image.",
                code="lora_changed",
            )
    faceid = control = instantid = None
    face_embedding = control_image = face_clip = None
    if record.get("faceid"):
        entry = record["faceid"]
        faceid = FaceIDOptions(**entry["options"])
        if entry.get("variant"):  # pin what was resolved: the same weights and encoder, whatever the env says now
            faceid.variant = entry["variant"]
        if faceid.clip_encoder is None and entry.get("clip_encoder"):
            faceid.clip_encoder = entry["clip_encoder"]
        face_embedding = np.load(_asset(folder, entry["embedding_file"]))
        if entry.get("clip_file"):
            face_clip = np.load(_asset(folder, entry["clip_file"]))
    if record.get("control"):
        control = ControlOptions(**record["control"]["options"])
        control_image = Image.open(_asset(folder, record["control"]["image_file"])).convert("RGB")
    if record.get("instantid"):
        entry = record["instantid"]
        instantid = InstantIDOptions(**entry["options"])
        instantid.weights = entry.get("weights") or instantid.weights
        face_embedding = np.load(_asset(folder, entry["embedding_file"]))
        control_image = Image.open(_asset(folder, entry["keypoints_file"])).convert("RGB")
    if generator is None:
        generator = HeadshotGenerator(
            record["base_model"],
            speed=SpeedOptions(**record["speed"]),
            faceid=faceid,
            control=control,
            device=device,
            progress=False,
            instantid=instantid,
        )
    generator.attach_identity(identity)
    images, _ = generator.render(
        record["prompt"],
        record["negative_prompt"],
        record["batch_seeds"],
        steps=int(record["steps"]),
        guidance_scale=float(record["guidance_scale"]),
        width=int(record["width"]),
        height=int(record["height"]),
        control_image=control_image,
        face_embedding=face_embedding,
        face_clip=face_clip,
        prompt_2=record.get("prompt_2"),
    )
    image = images[int(record["batch_index"])]
    if record.get("hires") or record.get("detail"):
        image = _replay_passes(generator, record, image, face_embedding, upscaler)
    if record.get("upscale"):
        from headshot_lab.upscale import replay

        image = replay(image, record["upscale"], device=device)
    return image


def _replay_passes(
    generator: HeadshotGenerator, record: dict[str, Any], image: Any, face_embedding: Any, upscaler: Any
) -> Any:
    """The recorded hires fix and face-detail pass of a manifest line, applied to its base image."""
    from headshot_lab.detail import DetailOptions
    from headshot_lab.hires import HiresOptions, upscaler_name

    hires = detail = None
    if record.get("hires"):
        hires = HiresOptions(
            **{k: record["hires"]["options"][k] for k in ("scale", "strength", "steps", "guidance_scale")}
        )
        if upscaler is None:  # a super-resolution hook is rebuilt from its recorded name
            from headshot_lab.upscale import HiresUpscaler

            upscaler = HiresUpscaler.from_name(record["hires"].get("upscaler"), device=generator.device_name)
        if record["hires"].get("upscaler") != upscaler_name(upscaler):
            raise HeadshotLabError(
                f"This image's hires fix used the upscaler {record['hires'].get('upscaler')!r}.",
                fix="Pass the same upscaler to regenerate(upscaler=...).",
                code="upscaler_mismatch",
            )
    if record.get("detail"):
        detail = DetailOptions(**record["detail"]["options"])
    picture, _ = generator.post_process(
        image,
        seed=int(record["seed"]),
        prompt=record["prompt"],
        negative_prompt=record["negative_prompt"],
        steps=int(record["steps"]),
        guidance_scale=float(record["guidance_scale"]),
        face_embedding=face_embedding,
        detail=detail,
        hires=hires,
        upscaler=upscaler,
        replay=record,
    )
    return picture


def _asset(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise HeadshotLabError(
            f"{name} (saved next to the manifest when the image was made) is missing from {folder}.",
            fix="Pass root= the folder that holds manifest.jsonl.",
            code="manifest_asset_missing",
        )
    return path
