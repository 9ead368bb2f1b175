"""Hires fix: generate at the base size, upscale, then img2img at low strength at the larger size.

Diffusion models draw best at their native resolution; asked for 2× directly they repeat faces and
limbs. The hires fix (A1111's name) keeps the composition of the native-size image and lets the model
add detail at the larger size:

1. the base image ``I₀`` (``W × H``, the model's native size), as rendered;
2. ``I₁ = up(I₀)`` at ``(W′, H′) = (⌊scale·W / 8⌉·8, ⌊scale·H / 8⌉·8)`` with the ``upscaler`` hook: default
   Pillow Lanczos; any ``callable(image, factor) -> PIL image`` (or a result with ``.image``, as
   ``headshot_lab.upscale.upscale_image`` returns) can be passed, e.g. a super-resolution model; its
   output is resized to exactly ``(W′, H′)`` when it differs;
3. ``I₂ = img2img(I₁, strength)`` with the same prompt, components (LoRA, FaceID) and a seeded CPU
   generator: only ``⌊steps·strength⌋`` denoising steps run, from noise level ``strength``.

:meth:`HiresResult.record` is the manifest form (scale, strength, steps, upscaler name, sizes, seed);
:func:`headshot_lab.generate.regenerate` replays it bit-exactly on CPU (the Lanczos hook is
deterministic; another hook must be passed again, and the record names it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from headshot_lab.detail import as_pipeline, check_steps, ip_adapter_embeds, task_pipeline
from headshot_lab.errors import HeadshotLabError

HIRES_SCHEMA = "headshot-lab/hires/1"
SCALES = (1.5, 2.0)
DEFAULT_STRENGTH = 0.35
LANCZOS = "lanczos"
SIZE_MULTIPLE = 8

Upscaler = Callable[[Any, float], Any]


@dataclass
class HiresOptions:
    """Hires-fix settings; every field goes into the manifest (``hires.options``).

    Attributes:
        scale: output size ÷ base size (1.5 or 2; any value in (1, 4] is accepted).
        strength: img2img denoise strength at the larger size (``None`` = the style's ``hires_strength``
            or :data:`DEFAULT_STRENGTH`); 0.25–0.45 keeps the composition.
        steps: sampler steps (``None`` = the generation's).
        guidance_scale: ``None`` = the generation's.
    """

    scale: float = 2.0
    strength: float | None = None
    steps: int | None = None
    guidance_scale: float | None = None

    def validate(self) -> None:
        problems = [
            (1.0 < float(self.scale) <= 4.0, "scale must be above 1 and at most 4 (e.g. 1.5 or 2)"),
            (self.strength is None or 0.0 < float(self.strength) <= 1.0, "strength must be in (0, 1]"),
            (self.steps is None or self.steps >= 1, "steps must be at least 1"),
        ]
        for ok, message in problems:
            if not ok:
                raise HeadshotLabError(f"Invalid hires-fix option: {message}.", code="bad_hires_option")


@dataclass
class HiresResult:
    """The upscaled, refined image and what was done."""

    image: Any
    settings: dict[str, Any]
    base_size: tuple[int, int]
    size: tuple[int, int]
    upscaler: str
    seed: int
    notes: list[str]

    def record(self) -> dict[str, Any]:
        """The manifest form (JSON-safe)."""
        return {
            "schema": HIRES_SCHEMA,
            "options": dict(self.settings),
            "base_size": list(self.base_size),
            "size": list(self.size),
            "upscaler": self.upscaler,
            "seed": self.seed,
            "notes": list(self.notes),
        }


def lanczos_upscale(image: Any, factor: float) -> Any:
    """Pillow Lanczos resize by ``factor`` (the default hook; deterministic)."""
    from PIL import Image

    width, height = image.size
    return image.resize((round(width * factor), round(height * factor)), Image.Resampling.LANCZOS)


lanczos_upscale.__name__ = LANCZOS


def target_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """``(⌊scale·W / 8⌉·8, ⌊scale·H / 8⌉·8)``: the pipelines need multiples of 8."""
    return (
        max(SIZE_MULTIPLE, round(width * scale / SIZE_MULTIPLE) * SIZE_MULTIPLE),
        max(SIZE_MULTIPLE, round(height * scale / SIZE_MULTIPLE) * SIZE_MULTIPLE),
    )


def upscaler_name(upscaler: Upscaler | None) -> str:
    """The name recorded in the manifest: ``lanczos`` for the default, else the hook's ``__name__``."""
    import functools

    if upscaler is None:
        return LANCZOS
    if isinstance(upscaler, functools.partial):  # e.g. partial(upscale_image, model="...")
        settings = ", ".join(f"{k}={v!r}" for k, v in sorted(upscaler.keywords.items()))
        return f"{upscaler_name(upscaler.func)}({settings})"
    return str(getattr(upscaler, "name", None) or getattr(upscaler, "__name__", type(upscaler).__name__))


def upscale_with(upscaler: Upscaler | None, image: Any, factor: float, size: tuple[int, int]) -> tuple[Any, list[str]]:
    """Run the hook and bring its output to exactly ``size`` (Lanczos), with a note when it had to."""
    from PIL import Image

    hook = upscaler or lanczos_upscale
    out = hook(image, factor)
    notes: list[str] = []
    note = getattr(out, "note", None)
    if note:
        notes.append(str(note))
    method = getattr(out, "method", None)  # an UpscaleResult says which method/model really ran
    if method:
        notes.append(f"upscaled with {method}" + (f" ({out.model})" if getattr(out, "model", None) else ""))
    out = getattr(out, "image", out)
    if not isinstance(out, Image.Image):
        out = Image.fromarray(np.asarray(out, dtype=np.uint8))
    out = out.convert("RGB")
    if out.size != size:
        notes.append(f"The upscaler gave {out.width}×{out.height}; resized to {size[0]}×{size[1]} (Lanczos).")
        out = out.resize(size, Image.Resampling.LANCZOS)
    return out, notes


def hires_fix(
    image: Any,
    pipe_or_components: Any,
    *,
    prompt: str,
    negative_prompt: str | None = None,
    seed: int = 0,
    options: HiresOptions | None = None,
    steps: int = 30,
    guidance_scale: float = 6.0,
    face_embedding: np.ndarray | None = None,
    upscaler: Upscaler | None = None,
) -> HiresResult:
    """Upscale ``image`` with the hook and refine it with img2img at low strength (module docstring).

    Args:
        image: the base-size PIL image (or array).
        pipe_or_components: a diffusers pipeline, a :class:`~headshot_lab.generate.HeadshotGenerator` or a
            components mapping; the img2img pipeline shares its components (``from_pipe``).
        prompt, negative_prompt: the generation's prompts.
        seed: the img2img noise seed (CPU ``torch.Generator``).
        options: :class:`HiresOptions`.
        steps, guidance_scale: used when ``options`` leaves them ``None``.
        face_embedding: the IP-Adapter-FaceID embedding the generation used, if any.
        upscaler: ``callable(image, factor)`` → PIL image (or an object with ``.image``); default Lanczos.
    """
    import torch
    from PIL import Image

    options = options or HiresOptions()
    options.validate()
    strength = float(options.strength if options.strength is not None else DEFAULT_STRENGTH)
    run_steps = int(options.steps or steps)
    guidance = float(options.guidance_scale if options.guidance_scale is not None else guidance_scale)
    check_steps(run_steps, strength, what="hires fix")
    base = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image, dtype=np.uint8))
    base = base.convert("RGB")
    size = target_size(base.width, base.height, float(options.scale))
    upscaled, notes = upscale_with(upscaler, base, float(options.scale), size)
    pipe = as_pipeline(pipe_or_components)
    task = task_pipeline(pipe, "img2img")
    kwargs: dict[str, Any] = {
        "prompt": prompt,
        "negative_prompt": negative_prompt if guidance > 1 else None,
        "image": upscaled,
        "strength": strength,
        "num_inference_steps": run_steps,
        "guidance_scale": guidance,
        "generator": torch.Generator().manual_seed(int(seed)),
    }
    embeds = ip_adapter_embeds(pipe, face_embedding, guidance)
    if embeds is not None:
        kwargs["ip_adapter_image_embeds"] = embeds
    with torch.inference_mode():
        refined = task(**kwargs).images[0]
    settings = {**asdict(options), "strength": strength, "steps": run_steps, "guidance_scale": guidance}
    return HiresResult(
        image=refined,
        settings=settings,
        base_size=(base.width, base.height),
        size=(refined.width, refined.height),
        upscaler=upscaler_name(upscaler),
        seed=int(seed),
        notes=notes,
    )
