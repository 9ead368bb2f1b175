"""Base diffusion models: find them, name their family, load them, choose device and precision.

A *base model* is a diffusers folder (``model_index.json`` + one subfolder per component) given by a
Hugging Face Hub id (``stable-diffusion-v1-5/stable-diffusion-v1-5``,
``stabilityai/stable-diffusion-xl-base-1.0``) or a local path. It comes from ``--base`` or, by
default, the ``HEADSHOT_LAB_BASE_MODEL`` environment variable. Nothing is downloaded at import time;
a Hub model already in the local cache is used without a network round trip, and with
``HF_HUB_OFFLINE=1`` only the local Hub cache is used. When no base model can be reached, every
entry point raises the same :class:`~headshot_lab.errors.ModelUnavailableError`, which names
``HEADSHOT_LAB_BASE_MODEL`` and what to set it to.

Three families are supported; the family decides the pipeline class and which LoRAs fit:

=========  ================================  =======================================================
family     pipeline                          recognised by
=========  ================================  =======================================================
``sd15``   ``StableDiffusionPipeline``       ``model_index.json`` ``_class_name`` without ``XL``
``sdxl``   ``StableDiffusionXLPipeline``     ``_class_name`` with ``XL`` or a CLIP ``text_encoder_2``
``flux``   ``FluxPipeline``                  ``_class_name`` starting ``Flux`` or a ``transformer`` entry
=========  ================================  =======================================================

FLUX.1 (a DiT-class "rectified flow" transformer, two text encoders: CLIP for a pooled vector, T5 for the
sequence) comes in two published forms, told apart by the transformer config alone
(:func:`sampling_defaults`): **schnell** (``black-forest-labs/FLUX.1-schnell``, Apache-2.0) is timestep-distilled —
about 4 steps, no guidance input (``guidance_embeds: false``), T5 prompts up to 256 tokens; **dev**
(``black-forest-labs/FLUX.1-dev``, under the *FLUX.1 [dev] Non-Commercial License*: the model may be used for
non-commercial, non-production purposes only — a headshot service or any business use of the model needs a licence
from Black Forest Labs; what it allows for the images themselves changed between licence versions, so read the
version you accept) is guidance-distilled — ~28 steps, the guidance
value (3.5) is an *embedding* input, not classifier-free guidance, prompts up to 512 tokens. Neither takes a
negative prompt. Both repos are gated on the Hub (accept the terms there, then ``HF_TOKEN``) and publish bf16
weights with no ``fp16`` variant, so half precision loads the main files (:func:`weights_variant`).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from headshot_lab.config import get_settings
from headshot_lab.errors import HeadshotLabError, ModelUnavailableError

logger = logging.getLogger(__name__)
_T = TypeVar("_T")

FAMILIES = ("sd15", "sdxl", "flux")
ENV_BASE_MODEL = "HEADSHOT_LAB_BASE_MODEL"
EXAMPLE_BASES = {
    "sd15": "stable-diffusion-v1-5/stable-diffusion-v1-5",
    "sdxl": "stabilityai/stable-diffusion-xl-base-1.0",
    "flux": "black-forest-labs/FLUX.1-schnell",
}
#: FLUX.1 checkpoints by name, with their licence (say it where the user picks one).
FLUX_BASES = {
    "schnell": ("black-forest-labs/FLUX.1-schnell", "Apache-2.0"),
    "dev": (
        "black-forest-labs/FLUX.1-dev",
        "FLUX.1 [dev] Non-Commercial License (non-commercial, non-production use of the model)",
    ),
}
#: What to tell a user who picks a base by one of these ids (its licence limits what they may do with the images).
BASE_LICENCE_NOTES = {
    "black-forest-labs/FLUX.1-dev": (
        "FLUX.1-dev is under the FLUX.1 [dev] Non-Commercial License: the model may be run for non-commercial, "
        "non-production purposes only (a headshot service or business use needs a licence from Black Forest Labs; "
        "read the licence version you accept for what it allows for the images). "
        "FLUX.1-schnell (Apache-2.0) has no such limit."
    ),
}
#: Native training/generation resolution per family (the size the published weights were trained at).
NATIVE_RESOLUTION = {"sd15": 512, "sdxl": 1024, "flux": 1024}
PRECISIONS = ("auto", "fp32", "fp16", "bf16")
#: Families whose weights are published in bf16 (no ``fp16`` variant; fp16 activations overflow in FLUX).
BF16_FAMILIES = frozenset({"flux"})

_PIPELINE_CLASSES = {
    ("sd15", False): "StableDiffusionPipeline",
    ("sd15", True): "StableDiffusionControlNetPipeline",
    ("sdxl", False): "StableDiffusionXLPipeline",
    ("sdxl", True): "StableDiffusionXLControlNetPipeline",
    ("flux", False): "FluxPipeline",
    ("flux", True): "FluxControlNetPipeline",
}


@dataclass(frozen=True)
class SamplingDefaults:
    """A base's own sampler defaults, where the family decides them (FLUX) rather than the style preset.

    Attributes:
        steps: denoising steps.
        guidance_scale: for FLUX the distilled-guidance *embedding* value (schnell ignores it: 0.0).
        max_sequence_length: T5 prompt tokens.
    """

    steps: int
    guidance_scale: float
    max_sequence_length: int


#: FLUX.1-schnell (timestep-distilled, no guidance embedding) and FLUX.1-dev (guidance-distilled), as in the model
#: cards and diffusers' FluxPipeline docs: schnell 4 steps, guidance 0, 256 tokens; dev 28 steps, 3.5, 512 tokens.
FLUX_SCHNELL_SAMPLING = SamplingDefaults(steps=4, guidance_scale=0.0, max_sequence_length=256)
FLUX_DEV_SAMPLING = SamplingDefaults(steps=28, guidance_scale=3.5, max_sequence_length=512)


def sampling_defaults(family: str, transformer_config: Any = None) -> SamplingDefaults | None:
    """The base's sampler defaults, or ``None`` where the style preset decides (SD1.5 / SDXL).

    For FLUX the transformer config tells the two forms apart: ``guidance_embeds`` true → dev-like (guidance
    distilled), false → schnell-like.
    """
    if family != "flux":
        return None
    embeds = bool(_get(transformer_config, "guidance_embeds", False))
    return FLUX_DEV_SAMPLING if embeds else FLUX_SCHNELL_SAMPLING


def _get(config: Any, key: str, default: Any = None) -> Any:
    """``config[key]`` of a dict or ``config.key`` of a diffusers ``FrozenDict`` / config object."""
    if config is None:
        return default
    if isinstance(config, dict):
        return config.get(key, default)
    return getattr(config, key, default)


def licence_note(source: str) -> str | None:
    """A sentence on the base's licence limits (:data:`BASE_LICENCE_NOTES`), or ``None``."""
    return BASE_LICENCE_NOTES.get(str(source).rstrip("/"))


@dataclass(frozen=True)
class BaseModel:
    """A located base model.

    Attributes:
        source: what the user gave (Hub id or path), written into cards and manifests.
        family: ``"sd15"``, ``"sdxl"`` or ``"flux"``.
        local_dir: the folder holding ``model_index.json`` (a local path or the Hub cache snapshot).
        pipeline_class: the diffusers class named in ``model_index.json``.
    """

    source: str
    family: str
    local_dir: Path
    pipeline_class: str

    def to_dict(self) -> dict[str, str]:
        return {"source": self.source, "family": self.family, "pipeline_class": self.pipeline_class}


def offline() -> bool:
    """Whether ``HF_HUB_OFFLINE`` asks for the local cache only."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def unavailable(reason: str, *, base: str | None = None) -> ModelUnavailableError:
    """The one error for "no base model": says what failed and what to set."""
    where = f" ({_origin(base)})" if base else ""
    return ModelUnavailableError(
        f"No base diffusion model is available{where}: {reason}",
        fix=(
            f"Set {ENV_BASE_MODEL} (or pass --base) to a Hugging Face Hub id such as "
            f"{EXAMPLE_BASES['sd15']}, {EXAMPLE_BASES['sdxl']} or {EXAMPLE_BASES['flux']} (downloaded once, needs the network or "
            "a filled Hub cache), or to a local diffusers folder with a model_index.json. "
            "For a smoke test without any download, run `headshot-lab tiny-model DIR` and use DIR."
        ),
    )


def _origin(base: str) -> str:
    """``HEADSHOT_LAB_BASE_MODEL=<base>`` when ``base`` is that variable's value (so the message says what to change)."""
    setting = os.environ.get(ENV_BASE_MODEL) or ""
    if setting == base:
        return f"{ENV_BASE_MODEL}={base}"
    try:
        same = bool(setting) and Path(setting).expanduser().resolve() == Path(base).expanduser().resolve()
    except (OSError, ValueError):
        same = False
    return f"{ENV_BASE_MODEL}={setting} → {base}" if same else base


def _network_errors() -> tuple[type[BaseException], ...]:
    """What loading from the Hub raises when the network or a file fails: ``OSError`` (huggingface_hub's own
    errors, ``requests``), ``ValueError``, and httpx's errors (huggingface_hub ≥ 1 uses httpx; they are not
    subclasses of ``OSError``)."""
    try:
        import httpx
    except ImportError:  # pragma: no cover - a dependency of huggingface_hub
        return (OSError, ValueError)
    return (OSError, ValueError, httpx.HTTPError)


def resolve_base(base: str | os.PathLike[str] | None = None) -> str:
    """``base`` if given, else ``HEADSHOT_LAB_BASE_MODEL``; raises :class:`ModelUnavailableError` if neither."""
    value = str(base) if base not in (None, "") else get_settings().base_model
    if not value:
        raise unavailable(f"no model was given and {ENV_BASE_MODEL} is not set.")
    return value


_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def is_hub_id(value: str) -> bool:
    """Whether ``value`` has the shape of a Hub repository id (``owner/name``)."""
    return bool(_HUB_ID.match(value)) and ".." not in value


def _model_index_dir(source: str) -> Path:
    """The local folder with ``model_index.json`` for a path or Hub id (from the cache when offline)."""
    path = Path(source).expanduser()
    if path.exists():
        path = path.resolve()
        if path.is_file():
            raise unavailable(
                f"{path} is a single file; headshot-lab needs a diffusers folder (model_index.json + subfolders). "
                "Convert it once with diffusers' `from_single_file(...).save_pretrained(DIR)`.",
                base=source,
            )
        if not (path / "model_index.json").is_file():
            raise unavailable(f"{path} has no model_index.json, so it is not a diffusers model folder.", base=source)
        return path
    if not is_hub_id(source):
        raise unavailable(f"{source} is neither an existing folder nor a Hub id of the form owner/name.", base=source)
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError

    try:
        try:  # the cache first: no network round trip (nor huggingface_hub's ~25 s of retries without a network)
            index = hf_hub_download(source, "model_index.json", local_files_only=True)
        except _network_errors():
            if offline():
                raise
            index = hf_hub_download(source, "model_index.json")
    except (*_network_errors(), HfHubHTTPError) as exc:  # type: ignore[misc]  # a tuple of exception types
        mode = (
            "HF_HUB_OFFLINE is set and it is not in the local Hub cache"
            if offline()
            else "it could not be downloaded (is the network up, and is the id right?)"
        )
        raise unavailable(f"{source}: {mode} ({type(exc).__name__}).", base=source) from None
    return Path(index).parent


def family_of(model_index: dict[str, Any]) -> str:
    """``"flux"``, ``"sdxl"`` or ``"sd15"`` from a parsed ``model_index.json`` (see the module table)."""
    name = str(model_index.get("_class_name", ""))
    transformer = model_index.get("transformer")
    if name.startswith("Flux") or (
        isinstance(transformer, list | tuple) and len(transformer) == 2 and transformer[1] == "FluxTransformer2DModel"
    ):
        return "flux"
    if "transformer" not in model_index and ("text_encoder_2" in model_index or "XL" in name):
        return "sdxl"
    if name.startswith("StableDiffusion") and "transformer" not in model_index and "3" not in name:
        return "sd15"
    if "unet" in model_index and "text_encoder" in model_index:
        return "sd15"
    raise HeadshotLabError(
        f"{name or 'This model'} is not a Stable Diffusion 1.5-, SDXL- or FLUX.1-class pipeline.",
        fix=f"Use an SD1.5-class base (e.g. {EXAMPLE_BASES['sd15']}), an SDXL-class base (e.g. {EXAMPLE_BASES['sdxl']}) "
        f"or a FLUX.1 base (e.g. {EXAMPLE_BASES['flux']}, Apache-2.0).",
        code="unsupported_model_family",
    )


def locate_base(base: str | os.PathLike[str] | None = None) -> BaseModel:
    """Resolve ``base`` (or ``HEADSHOT_LAB_BASE_MODEL``), check it is reachable and name its family.

    Raises:
        ModelUnavailableError: nothing set, or the path / Hub id cannot be reached.
        HeadshotLabError: the model is of another family (SD3, PixArt, …).
    """
    source = resolve_base(base)
    folder = _model_index_dir(source)
    if Path(source).expanduser().exists():
        source = str(folder)  # local folders are recorded absolute, so cards and manifests work from anywhere
    try:
        index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise unavailable(f"model_index.json could not be read ({exc}).", base=source) from None
    return BaseModel(source=source, family=family_of(index), local_dir=folder, pipeline_class=str(index["_class_name"]))


def detect_family(base: str | os.PathLike[str] | None = None) -> str:
    """``"sd15"``, ``"sdxl"`` or ``"flux"`` for a base model (path or Hub id)."""
    return locate_base(base).family


# ------------------------------------------------------------------------------------------- device
def choose_device(device: str | None = None) -> Any:
    """A ``torch.device``: ``device`` or ``HEADSHOT_LAB_DEVICE``; ``auto`` picks CUDA, then MPS, then CPU."""
    import torch

    name = (device or get_settings().device or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise HeadshotLabError(
            f"HEADSHOT_LAB_DEVICE={name} but no CUDA GPU is visible.",
            fix="Set HEADSHOT_LAB_DEVICE=auto (or cpu), or check the GPU driver with nvidia-smi.",
            code="device_unavailable",
        )
    return torch.device(name)


def choose_dtype(device: Any, precision: str = "auto") -> Any:
    """Weights dtype: ``fp32|fp16|bf16``; ``auto`` → fp16 on CUDA/MPS, fp32 on CPU (fp16 matmuls are slow there)."""
    import torch

    if precision not in PRECISIONS:
        raise HeadshotLabError(
            f"Unknown precision {precision!r}.", fix=f"Use one of {', '.join(PRECISIONS)}.", code="bad_precision"
        )
    if precision == "auto":
        return torch.float16 if torch.device(device).type in {"cuda", "mps"} else torch.float32
    return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]


def dtype_name(dtype: Any) -> str:
    """``torch.float16`` → ``"float16"``."""
    return str(dtype).removeprefix("torch.")


# ------------------------------------------------------------------------------------------- loading
def _from_pretrained(load: Callable[..., _T], base: BaseModel, **kwargs: Any) -> _T:
    """``load(folder, **kwargs)`` for a base: its local folder — for a Hub model, the cache snapshot folder (no
    network round trip, so it is quick and works offline even without ``HF_HUB_OFFLINE``) — and, when files are
    missing there, the Hub model *by id*, which downloads them: :func:`locate_base` fetched only
    ``model_index.json``, so a first run's snapshot folder holds nothing else."""
    try:
        return load(str(base.local_dir), **kwargs)
    except _network_errors():
        if offline() or not is_hub_id(base.source) or Path(base.source).expanduser().exists():
            raise
    return load(base.source, **kwargs)


def pipeline_class(family: str, *, controlnet: bool = False) -> Any:
    """The diffusers pipeline class for ``family`` (with or without ControlNet)."""
    import diffusers

    return getattr(diffusers, _PIPELINE_CLASSES[(family, controlnet)])


#: The Hub's name of the half-precision copy of a model's weights (``unet/diffusion_pytorch_model.fp16.safetensors``).
HALF_VARIANT = "fp16"


def weights_variant(dtype: Any, variant: str | None = "auto", family: str | None = None) -> str | None:
    """The ``variant`` to load for ``dtype``: ``"auto"`` → ``"fp16"`` for fp16/bf16 weights (half the download
    and the disk; bf16 is cast from it), ``None`` for fp32 and for the :data:`BF16_FAMILIES` (FLUX.1 repos publish
    their main files in bf16 and no ``fp16`` variant); any other value is used as given."""
    if variant != "auto":
        return variant
    import torch

    if family in BF16_FAMILIES:
        return None
    return HALF_VARIANT if dtype in (torch.float16, torch.bfloat16) else None


def family_dtype(family: str, dtype: Any, device: Any) -> Any:
    """``dtype`` for ``family`` on ``device``: FLUX in fp16 overflows (its activations exceed 65504; diffusers'
    FLUX docs run it in bf16), so fp16 becomes bf16 for FLUX on CUDA; other cases are unchanged."""
    import torch

    if family in BF16_FAMILIES and dtype == torch.float16 and torch.device(device).type == "cuda":
        return torch.bfloat16
    return dtype


def missing_variant(exc: BaseException) -> bool:
    """Whether diffusers refused a ``variant`` the model does not have ("… `variant=fp16`, but no such modeling
    files are available")."""
    text = str(exc)
    return "variant" in text and ("no such modeling files" in text or "not available" in text or "found" in text)


def load_pipeline(
    base: BaseModel | str | None = None,
    *,
    dtype: Any = None,
    controlnet: Any = None,
    variant: str | None = "auto",
    **kwargs: Any,
) -> tuple[Any, BaseModel]:
    """Load the text-to-image pipeline for ``base`` (not moved to a device).

    Args:
        base: a :class:`BaseModel`, a Hub id / path, or ``None`` for ``HEADSHOT_LAB_BASE_MODEL``.
        dtype: ``dtype`` for the weights (default fp32).
        controlnet: a loaded ``ControlNetModel`` → the family's ControlNet pipeline.
        variant: the weights variant (:func:`weights_variant`: ``"auto"`` loads the ``fp16`` files for half
            precision where the model has them, else the full ones — a base without the variant still loads).
        **kwargs: passed to ``from_pretrained``.

    Returns:
        ``(pipeline, base_model)``.
    """
    located = base if isinstance(base, BaseModel) else locate_base(base)
    cls = pipeline_class(located.family, controlnet=controlnet is not None)
    extra: dict[str, Any] = dict(kwargs)
    if controlnet is not None:
        extra["controlnet"] = controlnet
    if dtype is not None:
        extra["dtype"] = dtype
    chosen = weights_variant(dtype, variant, located.family)
    try:
        try:
            pipe = _from_pretrained(cls.from_pretrained, located, **extra, **({"variant": chosen} if chosen else {}))
        except _network_errors() as exc:
            if not (chosen and missing_variant(exc)):
                raise
            logger.info("%s has no %s weights; loading the full-precision files", located.source, chosen)
            pipe = _from_pretrained(cls.from_pretrained, located, **extra)
    except _network_errors() as exc:
        raise unavailable(f"loading failed: {exc}", base=located.source) from None
    pipe.set_progress_bar_config(disable=True)
    return pipe, located


def load_training_components(base: BaseModel, *, dtype: Any = None) -> dict[str, Any]:
    """Tokenizer(s), text encoder(s), VAE, UNet and a ``DDPMScheduler`` (the training noise schedule); for FLUX the
    CLIP + T5 encoders, the VAE, the ``transformer`` and the base's ``FlowMatchEulerDiscreteScheduler``.

    ``dtype`` (FLUX only): load the transformer and the T5 encoder directly in it (a 12B transformer and a 4.7B T5
    in fp32 would need ~67 GB of host memory on the way to bf16)."""
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import AutoTokenizer, CLIPTextModel, CLIPTextModelWithProjection

    def build_flux(folder: str, **hub: Any) -> dict[str, Any]:
        from diffusers import FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel
        from transformers import T5EncoderModel

        big = {"dtype": dtype} if dtype is not None else {}
        return {
            "tokenizer": AutoTokenizer.from_pretrained(folder, subfolder="tokenizer", model_max_length=77, **hub),
            "text_encoder": CLIPTextModel.from_pretrained(folder, subfolder="text_encoder", **hub),
            "tokenizer_2": AutoTokenizer.from_pretrained(folder, subfolder="tokenizer_2", **hub),
            "text_encoder_2": T5EncoderModel.from_pretrained(folder, subfolder="text_encoder_2", **big, **hub),
            "vae": AutoencoderKL.from_pretrained(folder, subfolder="vae", **hub),
            "transformer": FluxTransformer2DModel.from_pretrained(folder, subfolder="transformer", **big, **hub),
            "noise_scheduler": FlowMatchEulerDiscreteScheduler.from_pretrained(folder, subfolder="scheduler", **hub),
        }

    def build(folder: str, **hub: Any) -> dict[str, Any]:
        if base.family == "flux":
            return build_flux(folder, **hub)
        parts: dict[str, Any] = {
            "tokenizer": AutoTokenizer.from_pretrained(folder, subfolder="tokenizer", model_max_length=77, **hub),
            "text_encoder": CLIPTextModel.from_pretrained(folder, subfolder="text_encoder", **hub),
            "vae": AutoencoderKL.from_pretrained(folder, subfolder="vae", **hub),
            "unet": UNet2DConditionModel.from_pretrained(folder, subfolder="unet", **hub),
            "noise_scheduler": DDPMScheduler.from_pretrained(folder, subfolder="scheduler", **hub),
        }
        if base.family == "sdxl":
            parts["tokenizer_2"] = AutoTokenizer.from_pretrained(
                folder, subfolder="tokenizer_2", model_max_length=77, **hub
            )
            parts["text_encoder_2"] = CLIPTextModelWithProjection.from_pretrained(
                folder, subfolder="text_encoder_2", **hub
            )
        return parts

    try:
        return _from_pretrained(build, base)
    except _network_errors() as exc:
        raise unavailable(f"loading the components failed: {exc}", base=base.source) from None


# ------------------------------------------------------------------------------------------- errors
def is_out_of_memory(exc: BaseException) -> bool:
    """``torch.OutOfMemoryError`` (CUDA) or a backend's "out of memory" ``RuntimeError`` (MPS, XPU)."""
    import torch

    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


@contextmanager
def out_of_memory_guard(action: str, *, fix: str | None = None) -> Iterator[None]:
    """Turn a GPU out-of-memory error raised inside the block into a clear :class:`HeadshotLabError`.

    Frees the CUDA cache first so the process can go on (e.g. retry with smaller settings).
    """
    try:
        yield
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        raise HeadshotLabError(
            f"Ran out of GPU memory while {action}.",
            fix=fix
            or (
                "Lower the batch size or the resolution, enable CPU offload (--cpu-offload) and VAE slicing, "
                "use fp16/bf16, or close other programs using the GPU."
            ),
            code="out_of_memory",
        ) from exc
