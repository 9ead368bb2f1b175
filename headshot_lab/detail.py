"""Face-detail pass (the "realism layer"): re-render each face at the base model's native resolution.

A face that fills a fifth of a 512 px headshot is drawn by the model on a ~100 px patch of latents:
eyes, teeth and hairline come out soft or wrong. ADetailer-style detailers fix it with a second pass on
the face alone, and :func:`detail_faces` does the same, step by step:

1. **find** every face with the project's one face analysis (:func:`headshot_lab.analysis.analyse_photo`
   with :func:`~headshot_lab.analysis.judge_finder`: MediaPipe full-range ∪ dlib, background faces dropped),
   at most ``max_faces`` of them (largest first; the rest are named in a note);
2. **crop** a square around the face: side ``s = max(w, h) · (1 + 2·margin)`` centred on the face box,
   shifted inside the image (and no larger than its shorter side);
3. **resize** the crop to the base model's native resolution ``N = unet.sample_size · vae_scale_factor``
   (Lanczos), **re-render** it with img2img (or inpainting) built from the *same* components
   (``AutoPipelineFor*.from_pipe``: same UNet with the identity LoRA already on it, same IP-Adapter-FaceID
   layers, fed the same face embedding) at denoise ``strength`` (the style's ``detail_strength``, 0.3–0.5),
   seeded per face (``seed + i`` on a CPU ``torch.Generator``), and resize back to ``s × s``;
4. **colour-match** the re-rendered crop to the original inside the feather band: per CIELAB channel
   ``c′ = (c − μ_new) · clip(σ_orig / σ_new, ½, 2) + μ_orig`` with the means and deviations taken over the
   band's pixels (the same content on both sides), so a colour drift of the second pass does not show as
   a seam;
5. **blend** with a feathered elliptical mask ``w``: with ``ρ`` the normalised distance from the face
   centre (``ρ = 1`` on the face ellipse, semi-axes ``(w/2, h/2)·(1 + margin/2)``) and ``ρ₁ = 1 + feather·s /
   min(semi-axes)``,

       w = 1 (ρ ≤ 1),   w = S((ρ₁ − ρ) / (ρ₁ − 1)) (1 < ρ < ρ₁),   w = 0 (ρ ≥ ρ₁),   S(t) = 3t² − 2t³,

   ``out = round((1 − w)·orig + w·new)``; every pixel with ``w = 0`` — all of the image outside the
   ellipse ``ρ₁`` — is the input's pixel, bit for bit.

No face → the image is returned unchanged with a note. :meth:`DetailResult.record` is the manifest form
(settings, and per face the box, crop, seed and colour shift), and :func:`detail_faces` called with that
record's ``crops`` skips detection, so :func:`headshot_lab.generate.regenerate` reproduces the pass
bit-exactly on CPU.

:func:`measure_detail` reads the before and after images with the same judge as selection and the audit:
identity cosine (dlib, to the person's references when given, and after vs before) and the skin shift
``ΔITA`` (light-matched within one scene, positive = lighter; :func:`headshot_lab.analysis.skin_delta_ita`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from headshot_lab.errors import HeadshotLabError

logger = logging.getLogger(__name__)

DETAIL_SCHEMA = "headshot-lab/detail/1"
METHODS = ("img2img", "inpaint")
DEFAULT_STRENGTH = 0.4
#: px; a face narrower than this (in the image) has too few pixels to re-render meaningfully.
MIN_FACE_PX = 12
#: fewest feather-band pixels for the colour match (below it the crop is blended unmatched; colour_shift = None).
MIN_BAND_PIXELS = 64
#: the deviation ratio of the colour match is clipped to [1/RATIO_CLIP, RATIO_CLIP].
RATIO_CLIP = 2.0


# ------------------------------------------------------------------------------------------- options
@dataclass
class DetailOptions:
    """How the face-detail pass runs; every field goes into the manifest (``detail.options``).

    Attributes:
        strength: img2img denoise strength (0 < s ≤ 1); ``None`` = the style's ``detail_strength``.
        margin: the crop grows the face box by ``margin`` × its size on every side.
        feather: width of the blend's feather band, as a fraction of the crop side.
        steps: sampler steps of the pass (``None`` = the generation's); only ``⌊steps · strength⌋`` run.
        guidance_scale: ``None`` = the generation's.
        max_faces: detail at most this many faces (largest first); the rest are named in a note.
        method: ``img2img`` or ``inpaint`` (the mask is the feathered ellipse).
        colour_match: match Lab mean/std in the feather band.
    """

    strength: float | None = None
    margin: float = 0.35
    feather: float = 0.12
    steps: int | None = None
    guidance_scale: float | None = None
    max_faces: int = 4
    method: str = "img2img"
    colour_match: bool = True

    def validate(self) -> None:
        problems = [
            (self.strength is None or 0.0 < float(self.strength) <= 1.0, "strength must be in (0, 1]"),
            (0.0 <= self.margin <= 2.0, "margin must be between 0 and 2"),
            (0.0 < self.feather <= 0.5, "feather must be in (0, 0.5]"),
            (self.steps is None or self.steps >= 1, "steps must be at least 1"),
            (self.max_faces >= 1, "max_faces must be at least 1"),
            (self.method in METHODS, f"method must be one of {', '.join(METHODS)}"),
        ]
        for ok, message in problems:
            if not ok:
                raise HeadshotLabError(f"Invalid face-detail option: {message}.", code="bad_detail_option")


@dataclass
class FaceDetail:
    """One detailed face. Boxes are ``(left, top, right, bottom)`` in image pixels."""

    box: tuple[int, int, int, int]
    crop: tuple[int, int, int, int]
    seed: int
    render_size: int
    feather_px: float
    colour_shift: list[float] | None = None
    """``μ_orig − μ_new`` in the feather band (L*, a*, b*), or ``None`` when not matched."""


@dataclass
class DetailResult:
    """The detailed image, what was done per face, notes, and (optionally) the before/after measures."""

    image: Any
    faces: list[FaceDetail]
    notes: list[str]
    settings: dict[str, Any]
    measures: dict[str, Any] | None = None
    changed: bool = False

    def record(self) -> dict[str, Any]:
        """The manifest form (JSON-safe): ``{"schema", "options", "faces": [...], "notes", "measures"}``."""
        return {
            "schema": DETAIL_SCHEMA,
            "options": dict(self.settings),
            "faces": [asdict(face) for face in self.faces],
            "notes": list(self.notes),
            "measures": self.measures,
        }


# ------------------------------------------------------------------------------------------- rendering
@runtime_checkable
class CropRenderer(Protocol):
    """Anything that re-renders a square crop at ``native_size``: a pipeline wrapper, or a test double."""

    @property
    def native_size(self) -> int:
        """The square size (px) the crop is rendered at."""
        ...

    def render_crop(self, crop: Any, *, seed: int, mask: Any, strength: float) -> Any:
        """``crop`` and ``mask`` are ``native_size``² PIL images; returns the re-rendered PIL image."""
        ...


def native_size(pipe: Any) -> int:
    """The base model's native resolution ``N = unet.config.sample_size · vae_scale_factor`` (px)."""
    return int(pipe.unet.config.sample_size) * int(getattr(pipe, "vae_scale_factor", 8))


def _pipeline_from_components(components: Mapping[str, Any]) -> Any:
    """A text-to-image pipeline of the right family from a components mapping (``text_encoder_2`` → SDXL)."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    cls = StableDiffusionXLPipeline if components.get("text_encoder_2") is not None else StableDiffusionPipeline
    expected, optional = cls._get_signature_keys(cls)
    kwargs = {k: v for k, v in components.items() if k in expected or k in optional}
    if cls is StableDiffusionPipeline:
        kwargs.setdefault("safety_checker", None)
        kwargs.setdefault("feature_extractor", None)
        kwargs.setdefault("requires_safety_checker", False)
    return cls(**kwargs)


def task_pipeline(pipe: Any, method: str = "img2img") -> Any:
    """The img2img (or inpainting) pipeline that shares ``pipe``'s components (``from_pipe``: no reload).

    The UNet object is the same, so the identity LoRA and IP-Adapter-FaceID layers on it take part; a
    ControlNet pipeline gives its plain counterpart (the pass has no conditioning map for the crop). Cached
    on ``pipe``.
    """
    from diffusers import AutoPipelineForImage2Image, AutoPipelineForInpainting

    cache: dict[str, Any] = pipe.__dict__.setdefault("_headshot_task_pipes", {})
    if method not in cache:
        auto = AutoPipelineForImage2Image if method == "img2img" else AutoPipelineForInpainting
        # diffusers 0.42.1's AutoPipeline.from_pipe shares the modules as they are; DiffusionPipeline.from_pipe would
        # cast them to float32 unless told the dtype, so it is passed (a no-op here, a guard for other versions).
        kwargs: dict[str, Any] = {"torch_dtype": pipe.dtype}
        if "controlnet" in pipe.components:
            kwargs["controlnet"] = None
        from diffusers.utils import logging as diffusers_logging

        before = diffusers_logging.get_verbosity()
        diffusers_logging.set_verbosity_error()  # "modules that should be kept in float32: []": nothing to keep
        try:
            task = auto.from_pipe(pipe, **kwargs)
        finally:
            diffusers_logging.set_verbosity(before)
        task.set_progress_bar_config(disable=True)
        cache[method] = task
    return cache[method]


def ip_embeds_shape(pipe: Any) -> tuple[int, ...]:
    """The shape of one face embedding in ``ip_adapter_image_embeds``: ``(1, 1, -1)`` (one image of one vector) for
    the FaceID projections, ``(1, 1, 1, -1)`` for a Resampler projection (InstantID's ``IPAdapterPlusImageProjection``
    attends over a *sequence* of embeddings: one token here, as the reference's ``reshape([1, -1, 512])``)."""
    from diffusers.models.embeddings import IPAdapterPlusImageProjection

    hid = getattr(pipe.unet, "encoder_hid_proj", None)
    layers = getattr(hid, "image_projection_layers", None) or []
    return (1, 1, 1, -1) if layers and isinstance(layers[0], IPAdapterPlusImageProjection) else (1, 1, -1)


def ip_adapter_embeds(pipe: Any, face_embedding: np.ndarray | None, guidance_scale: float) -> list[Any] | None:
    """``ip_adapter_image_embeds`` for IP-Adapter-FaceID as :meth:`HeadshotGenerator.render` builds them
    (``[zeros, e]`` under classifier-free guidance), or ``None`` without an embedding or FaceID layers."""
    import torch

    if face_embedding is None or getattr(pipe.unet, "encoder_hid_proj", None) is None:
        return None
    embeds = torch.from_numpy(np.asarray(face_embedding, dtype=np.float32)).reshape(ip_embeds_shape(pipe))
    if guidance_scale > 1:
        embeds = torch.cat([torch.zeros_like(embeds), embeds])
    return [embeds.to(pipe.device, dtype=pipe.dtype)]


@dataclass
class PipelineRenderer:
    """Re-render crops with the task pipeline built from ``pipe`` (see :func:`task_pipeline`)."""

    pipe: Any
    prompt: str
    negative_prompt: str | None
    steps: int
    guidance_scale: float
    method: str = "img2img"
    face_embedding: np.ndarray | None = None

    @property
    def native_size(self) -> int:
        return native_size(self.pipe)

    def render_crop(self, crop: Any, *, seed: int, mask: Any, strength: float) -> Any:
        import torch

        check_steps(self.steps, strength, what="face-detail pass")
        task = task_pipeline(self.pipe, self.method)
        kwargs: dict[str, Any] = {
            "prompt": self.prompt,
            "negative_prompt": self.negative_prompt if self.guidance_scale > 1 else None,
            "image": crop,
            "strength": float(strength),
            "num_inference_steps": int(self.steps),
            "guidance_scale": float(self.guidance_scale),
            "generator": torch.Generator().manual_seed(int(seed)),
        }
        if self.method == "inpaint":
            kwargs.update(mask_image=mask, height=crop.height, width=crop.width)
        embeds = ip_adapter_embeds(self.pipe, self.face_embedding, self.guidance_scale)
        if embeds is not None:
            kwargs["ip_adapter_image_embeds"] = embeds
        with torch.inference_mode():
            return task(**kwargs).images[0]


def check_steps(steps: int, strength: float, *, what: str) -> None:
    """img2img runs ``⌊steps · strength⌋`` steps; refuse when that is 0 (diffusers' error is cryptic)."""
    if int(steps * strength) < 1:
        raise HeadshotLabError(
            f"The {what} would run no denoising step ({steps} steps × strength {strength} < 1).",
            fix=f"Use at least {int(np.ceil(1 / strength))} steps, or a higher strength.",
            code="bad_request",
        )


def as_pipeline(pipe_or_components: Any) -> Any:
    """A diffusers pipeline from a pipeline, a :class:`~headshot_lab.generate.HeadshotGenerator` (its
    loaded pipeline) or a components mapping."""
    if hasattr(pipe_or_components, "load") and hasattr(pipe_or_components, "render"):
        return pipe_or_components.load()
    if isinstance(pipe_or_components, Mapping):
        return _pipeline_from_components(pipe_or_components)
    if hasattr(pipe_or_components, "unet") and hasattr(pipe_or_components, "components"):
        return pipe_or_components
    raise HeadshotLabError(
        f"The face-detail pass needs a diffusers pipeline, got {type(pipe_or_components).__name__}.",
        code="bad_request",
    )


# ------------------------------------------------------------------------------------------- geometry
def crop_square(box: Sequence[float], image_size: tuple[int, int], margin: float) -> tuple[int, int, int, int]:
    """The square crop around ``box`` (see the module docstring, step 2), inside a ``(width, height)`` image."""
    width, height = image_size
    left, top, right, bottom = (float(v) for v in box)
    side = round(max(right - left, bottom - top) * (1.0 + 2.0 * margin))
    side = max(1, min(side, width, height))
    cx, cy = (left + right) / 2.0, (top + bottom) / 2.0
    x0 = round(min(max(cx - side / 2.0, 0.0), width - side))
    y0 = round(min(max(cy - side / 2.0, 0.0), height - side))
    return x0, y0, x0 + side, y0 + side


def feather_mask(
    box: Sequence[float], crop: Sequence[int], image_size: tuple[int, int], margin: float, feather: float
) -> tuple[np.ndarray, float]:
    """``(w, feather_px)``: the blend weights over the crop (float64, ``w ∈ [0, 1]``; module docstring, step 5).

    On a crop side that is not the image's edge the outermost pixel row/column gets ``w = 0`` as well, so the
    pass never leaves a step at the crop border.
    """
    x0, y0, x1, y1 = (int(v) for v in crop)
    side = x1 - x0
    left, top, right, bottom = (float(v) for v in box)
    cx, cy = (left + right) / 2.0 - x0, (top + bottom) / 2.0 - y0
    ax = max(1.0, (right - left) / 2.0 * (1.0 + margin / 2.0))
    ay = max(1.0, (bottom - top) / 2.0 * (1.0 + margin / 2.0))
    feather_px = max(1.0, feather * side)
    rho_out = 1.0 + feather_px / min(ax, ay)
    ys, xs = np.mgrid[0 : y1 - y0, 0:side].astype(np.float64)
    rho = np.sqrt(((xs + 0.5 - cx) / ax) ** 2 + ((ys + 0.5 - cy) / ay) ** 2)
    t = np.clip((rho_out - rho) / (rho_out - 1.0), 0.0, 1.0)
    weights = t * t * (3.0 - 2.0 * t)
    width, height = image_size
    if x0 > 0:
        weights[:, 0] = 0.0
    if x1 < width:
        weights[:, -1] = 0.0
    if y0 > 0:
        weights[0, :] = 0.0
    if y1 < height:
        weights[-1, :] = 0.0
    return weights, feather_px


def colour_match(original: np.ndarray, rendered: np.ndarray, band: np.ndarray) -> tuple[np.ndarray, list[float] | None]:
    """Match ``rendered``'s CIELAB mean/std to ``original``'s over the ``band`` pixels (step 4).

    Returns ``(matched uint8 RGB, μ_orig − μ_new per channel)``; unchanged (and ``None``) when the band has
    fewer than :data:`MIN_BAND_PIXELS` pixels.
    """
    from headshot_lab.skin import lab_to_rgb, rgb_to_lab

    if int(band.sum()) < MIN_BAND_PIXELS:
        return rendered, None
    lab_o, lab_n = rgb_to_lab(original), rgb_to_lab(rendered)
    mu_o, mu_n = lab_o[band].mean(axis=0), lab_n[band].mean(axis=0)
    sd_o, sd_n = lab_o[band].std(axis=0), lab_n[band].std(axis=0)
    ratio = np.clip(sd_o / np.maximum(sd_n, 1e-6), 1.0 / RATIO_CLIP, RATIO_CLIP)
    matched = (lab_n - mu_n) * ratio + mu_o
    return lab_to_rgb(matched), [round(float(v), 4) for v in mu_o - mu_n]


def blend(original: np.ndarray, rendered: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``round((1 − w)·orig + w·new)`` as ``uint8``; pixels with ``w = 0`` are ``orig`` exactly."""
    w = weights[..., None]
    mixed = np.rint(original.astype(np.float64) * (1.0 - w) + rendered.astype(np.float64) * w)
    out = np.clip(mixed, 0, 255).astype(np.uint8)
    return np.where(w > 0.0, out, original)


# ------------------------------------------------------------------------------------------- finding
def find_faces_for_detail(image: np.ndarray, *, embed: bool = False) -> Any:
    """The project's one face analysis of ``image`` (every counted face measured): a
    :class:`~headshot_lab.analysis.PhotoAnalysis` whose ``box_original`` gives image-pixel boxes."""
    from headshot_lab.analysis import AnalysisOptions, analyse_photo, judge_finder

    return analyse_photo(image, backend=judge_finder(), options=AnalysisOptions(faces="all", embed=embed))


def _detail_one(
    pixels: np.ndarray,
    box: Sequence[float],
    crop: tuple[int, int, int, int],
    renderer: CropRenderer,
    options: DetailOptions,
    strength: float,
    seed: int,
) -> tuple[np.ndarray, FaceDetail]:
    from PIL import Image

    height, width = pixels.shape[:2]
    x0, y0, x1, y1 = crop
    side = x1 - x0
    original = pixels[y0:y1, x0:x1]
    weights, feather_px = feather_mask(box, crop, (width, height), options.margin, options.feather)
    size = int(renderer.native_size)
    crop_in = Image.fromarray(np.ascontiguousarray(original)).resize((size, size), Image.Resampling.LANCZOS)
    mask = Image.fromarray(((weights > 0) * 255).astype(np.uint8)).resize((size, size), Image.Resampling.NEAREST)
    rendered = renderer.render_crop(crop_in, seed=seed, mask=mask, strength=strength)
    back = np.asarray(rendered.convert("RGB").resize((side, side), Image.Resampling.LANCZOS))
    shift = None
    if options.colour_match:
        back, shift = colour_match(original, back, (weights > 0.0) & (weights < 1.0))
    out = pixels.copy()
    out[y0:y1, x0:x1] = blend(original, back, weights)
    face = FaceDetail(
        box=tuple(round(v) for v in box),  # type: ignore[arg-type]
        crop=crop,
        seed=int(seed),
        render_size=size,
        feather_px=round(float(feather_px), 3),
        colour_shift=shift,
    )
    return out, face


def detail_faces(
    image: Any,
    pipe_or_components: Any,
    *,
    prompt: str = "",
    negative_prompt: str | None = None,
    strength: float | None = None,
    seed: int = 0,
    margin: float | None = None,
    identity: Any = None,
    options: DetailOptions | None = None,
    steps: int = 30,
    guidance_scale: float = 6.0,
    faces: Sequence[Mapping[str, Any]] | None = None,
    references: Sequence[Any] | None = None,
    measure: bool = False,
) -> DetailResult:
    """Re-render every face of ``image`` (the module docstring's five steps) and blend it back.

    Args:
        image: PIL image or ``(H, W, 3)`` uint8 array.
        pipe_or_components: a diffusers pipeline, a :class:`~headshot_lab.generate.HeadshotGenerator`,
            a components mapping, or a :class:`CropRenderer` (used as it is; e.g. a test double).
        prompt, negative_prompt: the generation's prompts (the crop is the same person in the same style).
        strength: denoise strength; default ``options.strength`` or :data:`DEFAULT_STRENGTH`.
        seed: face ``i`` (largest first) is rendered with seed ``seed + i``.
        margin: overrides ``options.margin``.
        identity: the FaceID embedding (array) the generation was conditioned on, or any object with a
            ``face_embedding`` attribute (:class:`~headshot_lab.generate.Identity`); ``None`` = none.
        options: :class:`DetailOptions`.
        steps, guidance_scale: used when ``options`` leaves them ``None``.
        faces: recorded faces (``DetailResult.record()["faces"]``): their boxes, crops and seeds are used
            as they are and detection is skipped (bit-exact replay).
        references: the person's photos (or embeddings) for :func:`measure_detail` (with ``measure``).
        measure: also measure identity and skin tone before/after (``result.measures``).

    Returns:
        :class:`DetailResult` (same size as the input; unchanged with a note when no face is found).
    """
    from PIL import Image

    from headshot_lab.io import as_rgb_array

    options = options or DetailOptions()
    if margin is not None:
        options = DetailOptions(**{**asdict(options), "margin": float(margin)})
    options.validate()
    strength = float(strength if strength is not None else options.strength or DEFAULT_STRENGTH)
    DetailOptions(strength=strength).validate()
    pixels = as_rgb_array(image)
    notes: list[str] = []
    run_steps = int(options.steps or steps)
    guidance = float(options.guidance_scale if options.guidance_scale is not None else guidance_scale)
    settings = {**asdict(options), "strength": strength, "steps": run_steps, "guidance_scale": guidance}
    height, width = pixels.shape[:2]

    plan: list[tuple[tuple[int, ...], tuple[int, ...], int]]
    if faces is not None:
        plan = [(tuple(int(v) for v in f["box"]), tuple(int(v) for v in f["crop"]), int(f["seed"])) for f in faces]
    else:
        plan, found_notes = _plan(pixels, options, seed)
        notes.extend(found_notes)
    if not plan:
        return DetailResult(image=Image.fromarray(pixels), faces=[], notes=notes, settings=settings)

    if isinstance(pipe_or_components, CropRenderer):
        renderer: CropRenderer = pipe_or_components
    else:
        embedding = getattr(identity, "face_embedding", identity)
        pipe = as_pipeline(pipe_or_components)
        check_steps(run_steps, strength, what="face-detail pass")
        renderer = PipelineRenderer(
            pipe,
            prompt,
            negative_prompt,
            run_steps,
            guidance,
            method=options.method,
            face_embedding=None if embedding is None else np.asarray(embedding, dtype=np.float32),
        )
    out = pixels
    done: list[FaceDetail] = []
    for box, crop, face_seed in plan:
        out, face = _detail_one(out, box, (crop[0], crop[1], crop[2], crop[3]), renderer, options, strength, face_seed)
        done.append(face)
    result = DetailResult(
        image=Image.fromarray(out), faces=done, notes=notes, settings=settings, changed=bool((out != pixels).any())
    )
    if measure:
        result.measures = measure_detail(pixels, out, references=references)
    logger.debug("detailed %d face(s) of a %dx%d image", len(done), width, height)
    return result


def _plan(
    pixels: np.ndarray, options: DetailOptions, seed: int
) -> tuple[list[tuple[tuple[int, ...], tuple[int, ...], int]], list[str]]:
    """``([(box, crop, seed)], notes)`` for the faces found, largest first."""
    height, width = pixels.shape[:2]
    notes: list[str] = []
    if min(height, width) < MIN_FACE_PX * 2:
        notes.append(f"The image is only {width}×{height} pixels: too small to find and redraw a face; left as it was.")
        return [], notes
    photo = find_faces_for_detail(pixels)
    boxes = [photo.box_original(face) for face in photo.faces]
    if not boxes:
        notes.append("No face was found, so the face-detail pass left the image as it was.")
        return [], notes
    if len(boxes) > options.max_faces:
        notes.append(f"{len(boxes)} faces were found; only the {options.max_faces} largest were redrawn (max_faces).")
        boxes = boxes[: options.max_faces]
    plan: list[tuple[tuple[int, ...], tuple[int, ...], int]] = []
    for index, box in enumerate(boxes):
        face_px = box[2] - box[0]
        if face_px < MIN_FACE_PX:
            notes.append(f"Face {index + 1} is only {face_px:.0f} pixels wide: too small to redraw; left as it was.")
            continue
        whole = tuple(round(v) for v in box)  # the manifest records integer boxes: use exactly those
        plan.append((whole, crop_square(whole, (width, height), options.margin), seed + index))
    return plan, notes


# ------------------------------------------------------------------------------------------- measuring
def _unit(vector: Any) -> np.ndarray | None:
    if vector is None:
        return None
    v = np.asarray(vector, dtype=np.float64).reshape(-1)
    norm = float(np.linalg.norm(v))
    return None if norm == 0 else v / norm


def _cos(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    return None if a is None or b is None else round(float(a @ b), 4)


def reference_embedding(references: Sequence[Any]) -> np.ndarray | None:
    """Unit centroid ``c = Σ ê_i / ‖Σ ê_i‖`` of the references' dlib embeddings (images or embeddings)."""
    from headshot_lab.analysis import AnalysisOptions, analyse_photo, judge_finder

    units = []
    finder = judge_finder()
    for item in references:
        if isinstance(item, np.ndarray) and item.ndim == 1:
            units.append(_unit(item))
            continue
        face = analyse_photo(item, backend=finder, options=AnalysisOptions(skin=False)).primary
        if face is not None and face.embedding is not None:
            units.append(_unit(face.embedding))
    found = [u for u in units if u is not None]
    return _unit(np.sum(found, axis=0)) if found else None


def measure_detail(
    before: Any,
    after: Any,
    *,
    references: Sequence[Any] | None = None,
    analyse: Callable[[Any], Any] | None = None,
) -> dict[str, Any]:
    """Identity and skin tone of the main face before and after the pass (the judges' own numbers).

    ``identity_before = cos(e_before, c)``, ``identity_after = cos(e_after, c)`` with ``c`` the
    references' centroid (:func:`reference_embedding`; ``None`` without references),
    ``identity_after_vs_before = cos(e_after, e_before)`` (dlib 128-D, unit vectors);
    ``ita_before``, ``ita_after`` (°) and ``delta_ita`` = :func:`~headshot_lab.analysis.skin_delta_ita`
    (light-matched within one scene, positive = lighter), ``delta_e2000`` of the median skin colours.
    """
    from headshot_lab.analysis import AnalysisOptions, analyse_photo, judge_finder, skin_delta_ita
    from headshot_lab.skin import delta_e2000

    finder = judge_finder()
    run = analyse or (lambda item: analyse_photo(item, backend=finder, options=AnalysisOptions()))
    photo_b, photo_a = run(before), run(after)
    face_b, face_a = photo_b.primary, photo_a.primary
    centroid = reference_embedding(references) if references else None
    e_b = _unit(face_b.embedding) if face_b is not None else None
    e_a = _unit(face_a.embedding) if face_a is not None else None
    tone_b = face_b.tone if face_b is not None else None
    tone_a = face_a.tone if face_a is not None else None
    delta = skin_delta_ita(photo_b, photo_a)
    return {
        "encoder": photo_b.encoder,
        "identity_before": _cos(e_b, centroid),
        "identity_after": _cos(e_a, centroid),
        "identity_after_vs_before": _cos(e_a, e_b),
        "ita_before": None if tone_b is None else round(float(tone_b.ita), 3),
        "ita_after": None if tone_a is None else round(float(tone_a.ita), 3),
        "delta_ita": None if delta is None else round(float(delta), 4),
        "delta_e2000": None
        if tone_b is None or tone_a is None
        else round(float(delta_e2000(tone_b.lab, tone_a.lab)), 4),
        "faces_before": photo_b.face_count,
        "faces_after": photo_a.face_count,
    }


#: The before/after numbers :func:`detail_scores` copies into a candidate's scores (prefixed ``detail_``).
SCORE_KEYS = (
    "identity_before",
    "identity_after",
    "identity_after_vs_before",
    "ita_before",
    "ita_after",
    "delta_ita",
    "delta_e2000",
)


def detail_scores(record: Mapping[str, Any] | None) -> dict[str, Any]:
    """``{"detail_faces", "detail_strength", "detail_<measure>"...}`` of a manifest line's ``detail`` record
    (or of :meth:`DetailResult.record`), for selection's scores; ``{}`` when no pass ran."""
    if not record:
        return {}
    measures = record.get("measures") or {}
    scores: dict[str, Any] = {
        "detail_faces": len(record.get("faces") or []),
        "detail_strength": (record.get("options") or {}).get("strength"),
    }
    scores.update({f"detail_{key}": measures.get(key) for key in SCORE_KEYS})
    return scores
