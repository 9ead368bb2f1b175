"""Super-resolution: a trained upscaler (Real-ESRGAN, SwinIR, HAT, … via ``spandrel``) or a labelled Lanczos.

What a model is
---------------
``spandrel`` (what ComfyUI and chaiNNer use) recognises a super-resolution architecture from the key layout of a
checkpoint (``.pth``/``.safetensors``) and builds it: :func:`load_model` hands it a **local file** or a **Hub
file** (``owner/name:file.pth`` or ``owner/name/file.pth``, fetched with ``hf_hub_download``; the local cache only
when ``HF_HUB_OFFLINE`` is set). Without ``model`` the setting ``HEADSHOT_LAB_UPSCALE_MODEL`` is used.

No model configured, or its weights missing → **one clear message and a Lanczos fallback**, labelled
``method="lanczos"`` in the result, in the file's XMP (``photoshop:History`` + the disclosure line, see
:func:`history_line`) and in any manifest that records the result (:meth:`UpscaleResult.to_dict`). Lanczos
interpolates: it adds pixels, not detail. A file that exists but is no super-resolution model is an error
(:class:`UpscaleError`), never a silent fallback.

Reaching the factor
-------------------
Factors are 2 or 4 (:data:`FACTORS`). With a model of scale ``s``: ``k = ⌈log_s(factor)⌉`` passes of the model,
then, when ``s^k ≠ factor``, one Lanczos resize to exactly ``factor ×`` the input (a ×4 model asked for ×2 runs once
and is reduced by ½; a ×2 model asked for ×4 runs twice). :attr:`UpscaleResult.passes` says which.

Tiling
------
The model sees tiles of ``tile`` input pixels with ``overlap`` pixels of context on every side (clipped at the
image border); only each tile's own ``s·tile`` centre is kept, so memory is bounded by one tile and the result does
not depend on where the seams fall beyond the model's receptive field of ``overlap`` pixels. Inputs: any Pillow mode
through the project's decode (:func:`headshot_lab.io.as_rgb_array`: 16-bit and greyscale rescaled, CMYK/ICC to
sRGB); an alpha channel is kept and upscaled with Lanczos beside the colour.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from headshot_lab.config import ENV_PREFIX
from headshot_lab.errors import HeadshotLabError
from headshot_lab.io import as_rgb_array

ENV_UPSCALE_MODEL = ENV_PREFIX + "UPSCALE_MODEL"
FACTORS = (2, 4)
MODEL_EXTENSIONS = (".pth", ".safetensors", ".pt", ".ckpt")
DEFAULT_TILE = 256
DEFAULT_OVERLAP = 16
LANCZOS = "lanczos"
#: An example of a real checkpoint on the Hub (Real-ESRGAN ×4, BSD-3): what the messages suggest.
EXAMPLE_MODEL = "ai-forever/Real-ESRGAN:RealESRGAN_x4.pth"

NO_MODEL_NOTE = (
    "No super-resolution model is set up, so the image was enlarged with Lanczos interpolation: "
    "it has more pixels but no more detail."
)


class UpscaleError(HeadshotLabError):
    code = "upscale_error"


@dataclass(frozen=True)
class UpscaleResult:
    """One upscaled image and how it was made.

    Attributes:
        image: the result, exactly ``factor ×`` the input in both sides (RGB, or RGBA when the input had alpha).
        factor: 2 or 4.
        method: ``"spandrel:<architecture id>"`` (e.g. ``spandrel:ESRGAN``) or ``"lanczos"``.
        model: the model as given (a Hub ``owner/name:file`` or an absolute path); ``None`` for Lanczos.
        note: one plain sentence for people (why Lanczos, or which model and how the factor was reached).
        source_size: ``(width, height)`` of the input: the real detail behind the result.
        model_scale: the model's own scale (``None`` for Lanczos).
        passes: how the factor was reached, e.g. ``("model ×4",)``, ``("model ×2", "model ×2")``,
            ``("model ×4", "lanczos ×0.5")`` or ``("lanczos ×2",)``.
        fallback: Lanczos was used because the model was missing (or none was set).
    """

    image: Image.Image
    factor: int
    method: str
    model: str | None
    note: str
    source_size: tuple[int, int] = (0, 0)
    model_scale: int | None = None
    passes: tuple[str, ...] = ()
    fallback: bool = False
    dtype: str = "float32"
    tiles: int = 0
    model_sha256: str | None = None

    @property
    def by_model(self) -> bool:
        """Whether a trained model made the new pixels (its detail is synthesised, not photographed)."""
        return self.method != LANCZOS

    def to_dict(self) -> dict[str, Any]:
        """The manifest form (no pixels)."""
        return {
            "factor": self.factor,
            "method": self.method,
            "model": self.model,
            "model_scale": self.model_scale,
            "passes": list(self.passes),
            "source_size": list(self.source_size),
            "size": list(self.image.size),
            "fallback": self.fallback,
            "dtype": self.dtype,
            "model_sha256": self.model_sha256,
            "note": self.note,
        }

    def history(self) -> str:
        """The line written into the file's XMP (:func:`history_line`)."""
        return history_line(self.factor, self.method, self.source_size, self.model)


# -- the history line in the file ----------------------------------------------------------------------------

_HISTORY = re.compile(r"upscaled (\d+)× by (\S+) from (\d+)×(\d+) px")


def history_line(factor: int, method: str, source_size: tuple[int, int], model: str | None = None) -> str:
    """``"upscaled 4× by spandrel:ESRGAN from 512×512 px (model …)"``: machine-readable (:func:`parse_history`)
    and plain enough for a person reading the file's metadata."""
    width, height = source_size
    tail = f" (model {Path(model).name if Path(model).is_absolute() else model})" if model else ""
    return f"upscaled {factor}× by {method} from {width}×{height} px{tail}"


@dataclass(frozen=True)
class UpscaleStep:
    """One upscale recorded in a file: ``factor``, ``method`` and the input size."""

    factor: int
    method: str
    source_size: tuple[int, int]

    @property
    def by_model(self) -> bool:
        return self.method != LANCZOS


def parse_history(text: str | None) -> list[UpscaleStep]:
    """Every :func:`history_line` in ``text`` (an XMP ``photoshop:History`` value), oldest first."""
    return [
        UpscaleStep(int(m.group(1)), m.group(2), (int(m.group(3)), int(m.group(4))))
        for m in _HISTORY.finditer(text or "")
    ]


# -- finding and loading a model -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSource:
    """Where a model's weights are: ``path`` (local, resolved) and what the user gave (``given``)."""

    given: str
    path: Path


def configured_model(model: str | os.PathLike[str] | None = None) -> str | None:
    """``model``, else ``HEADSHOT_LAB_UPSCALE_MODEL``, else ``None`` (``"lanczos"`` means none, on purpose)."""
    value = str(model) if model not in (None, "") else os.environ.get(ENV_UPSCALE_MODEL, "").strip()
    return value or None


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def split_hub_file(value: str) -> tuple[str, str] | None:
    """``"owner/name:file.pth"`` or ``"owner/name/sub/file.pth"`` → ``(repo, filename)``; else ``None``."""
    if ":" in value and "/" in value.split(":", 1)[0]:
        repo, filename = value.split(":", 1)
    else:
        parts = value.split("/")
        if len(parts) < 3:
            return None
        repo, filename = "/".join(parts[:2]), "/".join(parts[2:])
    if not re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", repo) or ".." in value or not filename:
        return None
    return repo, filename


class ModelMissing(Exception):
    """The weights are not here (no such file, not in the Hub cache offline, download failed): fall back."""


def locate_model(value: str) -> ModelSource:
    """The local file for ``value`` (a path, or a Hub file downloaded/cached with ``hf_hub_download``).

    Raises:
        ModelMissing: the weights are not available (the caller falls back to Lanczos and says why).
        UpscaleError: ``value`` names a folder or a Hub repository without a file (a usage problem).
    """
    path = Path(value).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in MODEL_EXTENSIONS)
        if len(files) != 1:
            raise UpscaleError(
                f"{path} is a folder with {len(files)} model files; say which one to use.",
                fix=f"Pass the checkpoint file itself ({', '.join(MODEL_EXTENSIONS)}).",
                code="upscale_model_folder",
            )
        path = files[0]
    if path.is_file():
        return ModelSource(value, path.resolve())
    hub = split_hub_file(value)
    if hub is None:
        if re.fullmatch(r"[A-Za-z0-9][\w.-]*/[\w.-]+", value) and not path.suffix:
            raise UpscaleError(
                f"{value} looks like a Hub repository, but a super-resolution model is one file in it.",
                fix=f"Name the file too, e.g. {EXAMPLE_MODEL}.",
                code="upscale_model_no_file",
            )
        raise ModelMissing(f"there is no file {path}")
    return ModelSource(value, _hub_file(*hub))


def _hub_file(repo: str, filename: str) -> Path:
    """``hf_hub_download(repo, filename)``: the cache first, the network only when ``HF_HUB_OFFLINE`` is unset."""
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(repo, filename, local_files_only=True))
    except Exception:
        if _offline():
            raise ModelMissing(f"HF_HUB_OFFLINE is set and {repo}:{filename} is not in the local Hub cache") from None
    try:
        return Path(hf_hub_download(repo, filename))
    except Exception as exc:
        raise ModelMissing(f"{repo}:{filename} could not be downloaded ({type(exc).__name__})") from None


def _torch_device(device: str | None) -> Any:
    from headshot_lab.models import choose_device

    return choose_device(device)


@functools.lru_cache(maxsize=4)
def _load_descriptor(path: str, mtime_ns: int, size: int, device: str) -> Any:
    """spandrel's :class:`ImageModelDescriptor` for ``path`` on ``device`` (cached by file identity)."""
    import spandrel
    import torch

    try:
        descriptor = spandrel.ModelLoader(device=torch.device(device)).load_from_file(path)
    except spandrel.UnsupportedModelError:
        raise UpscaleError(
            f"{Path(path).name} is not a super-resolution model this version of spandrel recognises.",
            fix=f"Use a Real-ESRGAN, SwinIR, HAT, … checkpoint (.pth or .safetensors), e.g. {EXAMPLE_MODEL}.",
            code="upscale_model_unsupported",
        ) from None
    except Exception as exc:
        raise UpscaleError(
            f"{Path(path).name} could not be read as a model ({type(exc).__name__}: {str(exc)[:160]}).",
            fix="Download the checkpoint again, or pass another one with --model.",
            code="upscale_model_unreadable",
        ) from None
    if not isinstance(descriptor, spandrel.ImageModelDescriptor):
        raise UpscaleError(
            f"{Path(path).name} is an inpainting model, not a super-resolution model.",
            fix=f"Use a super-resolution checkpoint, e.g. {EXAMPLE_MODEL}.",
            code="upscale_model_not_sr",
        )
    if descriptor.scale < 2:
        raise UpscaleError(
            f"{Path(path).name} is a {descriptor.architecture.name} restoration model (scale 1): it does not enlarge.",
            fix=f"Use a ×2 or ×4 super-resolution checkpoint, e.g. {EXAMPLE_MODEL}.",
            code="upscale_model_not_sr",
        )
    if descriptor.input_channels not in (1, 3) or descriptor.output_channels != descriptor.input_channels:
        raise UpscaleError(
            f"{Path(path).name} maps {descriptor.input_channels} to {descriptor.output_channels} channels; "
            "headshot-lab upscales RGB or greyscale images.",
            code="upscale_model_channels",
        )
    return descriptor.eval()


def model_sha256(path: Path) -> str:
    """SHA-256 of a checkpoint file (cached by path, size and modification time): what a manifest records."""
    stat = path.stat()
    return _sha256(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _sha256(path: str, mtime_ns: int, size: int) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_model(source: ModelSource, device: str | None = None) -> Any:
    """Load (once per file and device) the spandrel model at ``source``; on CUDA in fp16 when it supports half."""
    import torch

    torch_device = _torch_device(device)
    stat = source.path.stat()
    descriptor = _load_descriptor(str(source.path), stat.st_mtime_ns, stat.st_size, str(torch_device))
    if torch_device.type == "cuda" and descriptor.supports_half and descriptor.dtype != torch.float16:
        descriptor.half()
    return descriptor


# -- running it ----------------------------------------------------------------------------------------------


def tile_boxes(size: int, tile: int, overlap: int) -> Iterator[tuple[int, int, int, int]]:
    """Along one side of ``size`` px: ``(start, stop, ctx_start, ctx_stop)`` for each tile of ``tile`` px and its
    context ``overlap`` px either side, clipped to ``[0, size]``."""
    for start in range(0, size, tile):
        stop = min(size, start + tile)
        yield start, stop, max(0, start - overlap), min(size, stop + overlap)


def run_model(
    descriptor: Any, pixels: np.ndarray, *, tile: int = DEFAULT_TILE, overlap: int = DEFAULT_OVERLAP
) -> tuple[np.ndarray, int]:
    """One pass of ``descriptor`` over ``pixels`` (``(H, W, C)`` uint8) by tiles; ``((sH, sW, C) uint8, tiles)``.

    Each tile is ``x ∈ [0, 1]`` (``pixel / 255``) in the model's dtype; the output is ``round(255 · y)``.
    """
    import torch

    scale = int(descriptor.scale)
    height, width, channels = pixels.shape
    out = np.empty((height * scale, width * scale, channels), dtype=np.uint8)
    count = 0
    with torch.inference_mode():
        for y0, y1, cy0, cy1 in tile_boxes(height, tile, overlap):
            for x0, x1, cx0, cx1 in tile_boxes(width, tile, overlap):
                patch = torch.from_numpy(np.array(pixels[cy0:cy1, cx0:cx1], copy=True)).permute(2, 0, 1)[None]
                patch = patch.to(device=descriptor.device, dtype=descriptor.dtype) / 255.0
                result = descriptor(patch)[0].float().clamp_(0, 1).mul_(255.0).round_()
                result = result.permute(1, 2, 0).to("cpu", torch.uint8).numpy()
                top, left = (y0 - cy0) * scale, (x0 - cx0) * scale
                out[y0 * scale : y1 * scale, x0 * scale : x1 * scale] = result[
                    top : top + (y1 - y0) * scale, left : left + (x1 - x0) * scale
                ]
                count += 1
    return out, count


def passes_for(scale: int, factor: int) -> tuple[int, float | None]:
    """``(k, r)``: ``k = ⌈log_scale(factor)⌉`` model passes, then a Lanczos resize by ``r = factor / scale^k``
    (``None`` when ``scale^k == factor``)."""
    k = max(1, math.ceil(math.log(factor) / math.log(scale) - 1e-9))
    reached = scale**k
    return k, None if reached == factor else factor / reached


def _split_alpha(image: Image.Image) -> tuple[np.ndarray, Image.Image | None]:
    """Colour pixels (the project's decode) and the alpha channel, if any."""
    if image.mode in {"RGBA", "LA", "PA", "RGBa", "La"} or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        return np.asarray(rgba)[..., :3].copy(), rgba.getchannel("A")
    return as_rgb_array(image), None


def _check_factor(factor: int) -> int:
    if factor not in FACTORS:
        raise UpscaleError(
            f"Upscale factor {factor} is not offered.",
            fix=f"Use {' or '.join(map(str, FACTORS))}.",
            code="upscale_factor",
        )
    return int(factor)


def lanczos(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Pillow's Lanczos (a = 3) resampling to ``size``."""
    return image.resize(size, Image.Resampling.LANCZOS)


def upscale_image(
    image: Image.Image,
    factor: int,
    *,
    model: str | None = None,
    device: str | None = None,
    tile: int = DEFAULT_TILE,
    overlap: int = DEFAULT_OVERLAP,
    allow_fallback: bool = True,
) -> UpscaleResult:
    """Enlarge ``image`` exactly ``factor ×`` (2 or 4) with a super-resolution model, or Lanczos (labelled).

    Args:
        image: any Pillow image (16-bit, greyscale, CMYK, palette, with or without alpha).
        factor: 2 or 4.
        model: a checkpoint path, a Hub file (``owner/name:file.pth``) or ``"lanczos"``; default
            ``HEADSHOT_LAB_UPSCALE_MODEL``; none → Lanczos with :data:`NO_MODEL_NOTE`.
        device: ``cpu``, ``cuda`` … (default: ``HEADSHOT_LAB_DEVICE`` or auto).
        tile / overlap: input pixels per tile and the context around each (see the module docstring).
        allow_fallback: ``False`` raises :class:`UpscaleError` instead of falling back when weights are missing.

    Raises:
        UpscaleError: a bad factor, a file that is not a super-resolution model, or missing weights with
            ``allow_fallback=False``.
    """
    factor = _check_factor(factor)
    if tile < 16 or overlap < 0:
        raise UpscaleError("tile must be at least 16 px and overlap at least 0.", code="upscale_tiling")
    colour, alpha = _split_alpha(image)
    height, width = colour.shape[:2]
    target = (width * factor, height * factor)
    given = configured_model(model)
    reason: str | None = None
    source: ModelSource | None = None
    if given is None:
        reason = NO_MODEL_NOTE
    elif given.lower() != LANCZOS:
        try:
            source = locate_model(given)
        except ModelMissing as exc:
            reason = (
                f"The super-resolution model {given} is not available ({exc}), so the image was enlarged with "
                "Lanczos interpolation: more pixels, no more detail."
            )
    if source is None and reason is not None and not allow_fallback:
        raise UpscaleError(reason, fix=model_fix(), code="upscale_model_missing")
    alpha_up = None if alpha is None else lanczos(alpha, target)
    if source is None:
        result = lanczos(Image.fromarray(colour, "RGB"), target)
        return UpscaleResult(
            image=_with_alpha(result, alpha_up),
            factor=factor,
            method=LANCZOS,
            model=None,
            note=reason or f"Enlarged {factor}× with Lanczos interpolation, as asked (no detail is added).",
            source_size=(width, height),
            passes=(f"lanczos ×{factor}",),
            fallback=reason is not None,
        )
    descriptor = load_model(source, device)
    pixels = colour if descriptor.input_channels == 3 else np.asarray(Image.fromarray(colour).convert("L"))[..., None]
    count, ratio = passes_for(int(descriptor.scale), factor)
    passes: list[str] = []
    tiles = 0
    for _ in range(count):
        pixels, used = run_model(descriptor, pixels, tile=tile, overlap=overlap)
        tiles += used
        passes.append(f"model ×{descriptor.scale}")
    out = Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels).convert("RGB")
    if ratio is not None:
        out = lanczos(out, target)
        passes.append(f"lanczos ×{ratio:g}")
    method = f"spandrel:{descriptor.architecture.id}"
    how = " then ".join(passes)
    return UpscaleResult(
        image=_with_alpha(out, alpha_up),
        factor=factor,
        method=method,
        model=str(source.path) if Path(source.given).expanduser().exists() else source.given,
        note=(
            f"Enlarged {factor}× by the super-resolution model {Path(source.path).name} "
            f"({descriptor.architecture.name}, ×{descriptor.scale}; {how}). The added detail is made by the model, "
            "not photographed."
        ),
        source_size=(width, height),
        model_scale=int(descriptor.scale),
        passes=tuple(passes),
        dtype=str(descriptor.dtype).removeprefix("torch."),
        tiles=tiles,
        model_sha256=model_sha256(source.path),
    )


def _with_alpha(image: Image.Image, alpha: Image.Image | None) -> Image.Image:
    if alpha is None:
        return image
    rgba = image.convert("RGBA")
    rgba.putalpha(alpha)
    return rgba


def model_fix() -> str:
    return (
        f"Pass --model (a .pth/.safetensors file or a Hub file such as {EXAMPLE_MODEL}) or set {ENV_UPSCALE_MODEL}; "
        "with HF_HUB_OFFLINE set, the Hub file must already be in the local cache."
    )


# -- files ---------------------------------------------------------------------------------------------------


@dataclass
class UpscaledFile:
    """One file written by :func:`upscale_file`."""

    source: str
    path: Path
    result: UpscaleResult
    digital_source_type: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "path": str(self.path),
            "width": self.result.image.size[0],
            "height": self.result.image.size[1],
            "digital_source_type": self.digital_source_type,
            **{k: v for k, v in self.result.to_dict().items() if k not in {"size"}},
        }


def previous_history(path: str | Path) -> str | None:
    """The ``photoshop:History`` of a file headshot-lab wrote (earlier upscales), else ``None``."""
    from headshot_lab.provenance import read_history

    try:
        return read_history(path)
    except (OSError, HeadshotLabError):  # unreadable metadata is no history; the pixels are checked on load
        return None


def upscale_file(
    source: str | Path,
    out_dir: str | Path,
    factor: int,
    *,
    model: str | None = None,
    device: str | None = None,
    kind: str = "retouched",
    format: str | None = None,
    allow_fallback: bool = True,
    stem: str | None = None,
) -> UpscaledFile:
    """Upscale the photo at ``source`` into ``out_dir/<stem>_x<factor>.<ext>`` with disclosure metadata.

    The file declares the stronger of ``kind``'s digital source type and the input's (labels never weaken) and
    keeps the input's upscale history plus this step's :func:`history_line` in ``photoshop:History`` (the
    method — ``lanczos`` or ``spandrel:<arch>`` — is named there and in the disclosure line). ``stem``: the output
    name's stem (default: the source's, shortened past :data:`MAX_STEM_BYTES` with a hash of the name).
    """
    from headshot_lab.io import load_photo
    from headshot_lab.provenance import digital_source_type as dst
    from headshot_lab.provenance import image_format, save_with_provenance, strongest_source_type

    photo = load_photo(source, min_side=0)  # 16-bit, greyscale, CMYK, ICC → sRGB; alpha flattened on white
    result = upscale_image(photo.to_pil(), factor, model=model, device=device, allow_fallback=allow_fallback)
    src = Path(source)
    fmt = image_format(src, format) if format or src.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"} else "PNG"
    out = Path(out_dir) / f"{stem or short_stem(src.stem or 'photo')}_x{factor}{_EXTENSIONS[fmt]}"
    history = "; ".join(filter(None, [previous_history(src), result.history()]))
    label = strongest_source_type(dst(kind), photo.digital_source_type)
    save_with_provenance(
        result.image,
        out,
        kind,
        format=fmt,
        source_type=photo.digital_source_type,
        history=history,
    )
    return UpscaledFile(str(source), out, result, label, [result.note])


_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}
MAX_STEM_BYTES = 150
"""Longest output stem (UTF-8 bytes): room for ``_x4``, an extension and the atomic writer's temp name in 255."""


def short_stem(stem: str) -> str:
    """``stem``, or its start plus ``-{sha256(stem)[:8]}`` when longer than :data:`MAX_STEM_BYTES` bytes."""
    import hashlib

    if len(stem.encode()) <= MAX_STEM_BYTES:
        return stem
    tail = "-" + hashlib.sha256(os.fsencode(stem)).hexdigest()[:8]
    head = stem
    while len((head + tail).encode()) > MAX_STEM_BYTES:
        head = head[:-1]
    return head + tail


def manifest_entry(result: UpscaleResult | None) -> Mapping[str, Any] | None:
    """What a generation manifest line records of an upscale (``None`` = none)."""
    return None if result is None else {k: v for k, v in result.to_dict().items() if k != "size"}


@dataclass(frozen=True)
class UpscaleOptions:
    """``generate --upscale 2|4 [--upscale-model M]``: upscale each generated image before it is written.

    The manifest line records :meth:`UpscaleResult.to_dict` under ``"upscale"`` (factor, method — ``lanczos`` or
    ``spandrel:<arch>`` —, model, passes), so :func:`replay` makes the same pixels again.
    """

    factor: int
    model: str | None = None

    def __post_init__(self) -> None:
        _check_factor(self.factor)

    def apply(self, image: Image.Image, *, device: str | None = None) -> tuple[Image.Image, dict[str, Any]]:
        """The upscaled image and its manifest entry."""
        result = upscale_image(image, self.factor, model=self.model, device=device)
        return result.image, dict(manifest_entry(result) or {})


HIRES_UPSCALER_PREFIX = "super-resolution:"


@dataclass(frozen=True)
class HiresUpscaler:
    """The hires fix's upscale step done by a super-resolution model (a :data:`headshot_lab.hires.Upscaler` hook).

    Asked for a factor ``f`` (``1 < f ≤ 4``), it runs :func:`upscale_image` at ``s = 2`` when ``f ≤ 2`` else
    ``s = 4``; the hires fix then brings the ``s ×`` image to its target size (Lanczos, with a note when
    ``s ≠ f``). No fallback: a model asked for and missing is an :class:`UpscaleError`, never a silent Lanczos.
    :attr:`name` (``super-resolution:<model>``) is what the manifest records; :meth:`from_name` rebuilds the hook
    from it, so ``regenerate`` replays the same pass.
    """

    model: str
    device: str | None = None

    @property
    def name(self) -> str:
        return HIRES_UPSCALER_PREFIX + self.model

    def __call__(self, image: Image.Image, factor: float) -> UpscaleResult:
        scale = 2 if float(factor) <= 2 else 4
        return upscale_image(image, scale, model=self.model, device=self.device, allow_fallback=False)

    @classmethod
    def from_name(cls, name: str | None, *, device: str | None = None) -> HiresUpscaler | None:
        """The hook a recorded name stands for (``None``: not a super-resolution name, e.g. ``lanczos``)."""
        if not name or not name.startswith(HIRES_UPSCALER_PREFIX):
            return None
        return cls(name[len(HIRES_UPSCALER_PREFIX) :], device=device)


def entry_history(entry: Mapping[str, Any] | None) -> str | None:
    """The file's :func:`history_line` for a manifest ``"upscale"`` entry (``None`` = no upscale)."""
    if not entry:
        return None
    width, height = entry["source_size"]
    return history_line(int(entry["factor"]), str(entry["method"]), (int(width), int(height)), entry.get("model"))


def replay(image: Image.Image, entry: Mapping[str, Any], *, device: str | None = None) -> Image.Image:
    """Upscale ``image`` as a manifest's ``"upscale"`` entry says (Lanczos when it was Lanczos, else the same model,
    with no fallback: a regenerated image is either the same or an error).

    Raises:
        UpscaleError: the recorded model is no longer available, or its file changed (its SHA-256 differs).
    """
    model = LANCZOS if entry.get("method") == LANCZOS else entry.get("model")
    result = upscale_image(image, int(entry["factor"]), model=model, device=device, allow_fallback=False)
    recorded = entry.get("model_sha256")
    if recorded and result.model_sha256 != recorded:
        raise UpscaleError(
            f"The super-resolution model {model} changed since this image was made (its SHA-256 differs).",
            fix="Use the original checkpoint file to reproduce the image.",
            code="upscale_model_changed",
        )
    return result.image


__all__ = [
    "ENV_UPSCALE_MODEL",
    "FACTORS",
    "HIRES_UPSCALER_PREFIX",
    "LANCZOS",
    "NO_MODEL_NOTE",
    "HiresUpscaler",
    "UpscaleError",
    "UpscaleOptions",
    "UpscaleResult",
    "UpscaleStep",
    "UpscaledFile",
    "history_line",
    "load_model",
    "locate_model",
    "parse_history",
    "passes_for",
    "replay",
    "upscale_file",
    "upscale_image",
]
