"""Export: crops placed from face landmarks, written with AI-disclosure metadata, zipped; team mode.

Placement
---------
Every crop is framed from the face, not from the photo. From the 5-point landmarks we take

* the **eye midpoint** ``e = (left_eye + right_eye) / 2``;
* the **face axis** ``c_x`` = mean ``x`` of the five points;
* the **face size** ``F = 112 / s``, where ``s`` is the scale of the least-squares similarity
  transform (Umeyama) from the five points to the 112-px ArcFace template
  (:func:`headshot_lab.faces.align.similarity_transform`): the side of the canonical face crop in
  photo pixels. It uses all five points, so it is steadier than a detector box and does not depend
  on the backend. Without landmarks: ``F = 1.1 · box height``, eyes at ``0.3 · box height`` (both
  measured on the dlib boxes of the test photos).

A :class:`CropSpec` asks for the output size ``(W, H)``, the eye line ``y_e`` and the face size
``f`` as fractions of ``H``, and the face axis position ``x_c`` as a fraction of ``W``. The source
rectangle is then

``h = F / f``, ``w = h · W / H``, ``left = c_x − x_c · w``, ``top = e_y − y_e · h``,

resampled to ``W × H`` with Lanczos (one uniform scale ``H / h``: nothing is ever stretched).
When the rectangle pokes out of the photo, the frame may zoom in by up to ``max_zoom`` and slide
by up to ``max_shift`` of its size; what is still outside is filled by extending the backdrop
(the photo's edge carried outward and blurred along the edge more the farther it goes, so the far
backdrop is a smooth gradient of its own colours with no streaks; :func:`extend_backdrop`) and the result says how much was extended. The LinkedIn banner (1584×396) relies on this: the person sits
right of centre (the profile photo covers the lower left) and the backdrop is extended sideways.

Every file goes through :func:`headshot_lab.provenance.save_with_provenance` (pixels only, plus
the disclosure XMP), so nothing of the upload's metadata (EXIF, GPS) reaches an output.

Sources smaller than the target are upscaled with Lanczos *only up to the target* and flagged
(``upscaled``, ``upscale_factor``). When no face is found the crop falls back to the largest
centred rectangle of the right shape, and the result says so.

Team mode
---------
A :class:`StyleGuide` (one crop geometry with no per-photo zoom or slide, one colour grade, one
backdrop colour) is applied to everyone; :func:`team_consistency` then *measures* the outputs:
backdrop colour difference (CIEDE2000 of the median CIELAB of the top corners), spread of face
size ``F / H`` and of eye line ``e_y / H``, each turned into a score ``exp(−x / tol)`` and averaged.
"""

from __future__ import annotations

import math
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance

from headshot_lab.atomic import atomic_write
from headshot_lab.errors import HeadshotLabError
from headshot_lab.faces.base import Face, largest_face
from headshot_lab.io import Photo, as_rgb_array, load_photo
from headshot_lab.provenance import (
    FORMATS,
    C2PACredentials,
    digital_source_type,
    image_format,
    save_with_provenance,
)

# Without landmarks, from a detector box (dlib HOG, measured on the test photos).
BOX_TO_FACE = 1.1
BOX_EYE_LINE = 0.30
TEMPLATE_SIZE = 112.0
EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}


class ExportError(HeadshotLabError):
    code = "export_error"


@dataclass(frozen=True)
class CropSpec:
    """Geometry of one output.

    Attributes:
        name: ``square``, ``circle``, ``bio``, ``banner``, ``hires`` or your own.
        size: output ``(width, height)``; ``None`` = the whole photo at its own resolution.
        eye_line: eye midpoint height, as a fraction of the output height from the top.
        face_height: face size ``F`` (see the module docstring) as a fraction of the output height.
        center_x: where the face axis sits, as a fraction of the output width.
        circle: the output is shown in a circle (a transparent outside; written as PNG when JPEG is asked).
        max_shift: how far the frame may slide (fraction of its size) to stay inside the photo.
        max_zoom: how much closer than asked the frame may zoom to stay inside the photo.
        min_side: below this many source pixels across the crop, a warning is added.
        dpi: print density written into the file (JPEG JFIF density, PNG ``pHYs``, WebP EXIF); a crop with a
            ``dpi`` is a print crop and gets the real-detail check (:func:`print_detail`).
    """

    name: str
    size: tuple[int, int] | None
    eye_line: float = 0.40
    face_height: float = 0.40
    center_x: float = 0.5
    circle: bool = False
    max_shift: float = 0.06
    max_zoom: float = 1.25
    min_side: int = 400
    dpi: int | None = None

    @property
    def inches(self) -> tuple[float, float] | None:
        """The print size in inches (``size / dpi``) of a print crop, else ``None``."""
        if self.dpi is None or self.size is None:
            return None
        return self.size[0] / self.dpi, self.size[1] / self.dpi

    def __post_init__(self) -> None:
        if self.size is not None and (len(self.size) != 2 or min(self.size) < 16):
            raise ValueError(f"size must be (width, height) of at least 16 px, got {self.size}")
        if not (0 < self.face_height < 1.5 and 0 <= self.eye_line <= 1 and 0 <= self.center_x <= 1):
            raise ValueError("face_height must be in (0, 1.5); eye_line and center_x in [0, 1]")
        if self.max_shift < 0 or self.max_zoom < 1:
            raise ValueError("max_shift must be ≥ 0 and max_zoom ≥ 1")
        if self.dpi is not None and not 72 <= self.dpi <= 1200:
            raise ValueError(f"dpi must be in 72…1200, got {self.dpi}")


CROPS: dict[str, CropSpec] = {
    # LinkedIn / profile: 1:1, ≥ 400 px; head and shoulders, eyes a little above the middle.
    "square": CropSpec("square", (1080, 1080), eye_line=0.40, face_height=0.40),
    # Circle-safe: the face box centred, head well inside the inscribed circle.
    "circle": CropSpec("circle", (1080, 1080), eye_line=0.46, face_height=0.36, circle=True),
    # Website bio, 4:5 portrait: more shoulders.
    "bio": CropSpec("bio", (1080, 1350), eye_line=0.36, face_height=0.30),
    # LinkedIn banner: 1584×396, person right of centre, backdrop extended sideways.
    "banner": CropSpec("banner", (1584, 396), eye_line=0.42, face_height=0.42, center_x=0.72, max_zoom=1.0, min_side=0),
    # Hi-res original: the whole image, native resolution, re-encoded with disclosure.
    "hires": CropSpec("hires", None),
    # Print: 4×5 in at 300 dpi (1200×1500), framed like the bio crop; DPI in the file; real-detail check.
    "print": CropSpec("print", (1200, 1500), eye_line=0.36, face_height=0.32, min_side=0, dpi=300),
}
#: The crop names, in order: the one list (``headshot-lab export --formats``, the app's crop boxes).
CROP_NAMES = tuple(CROPS)
#: Export file formats by their canonical names (jpeg, png, webp): the one list. Aliases
#: (``jpg``, ``JPEG``, ``.jpg``) are accepted by :func:`format_name`, and by every ``format=`` argument.
FORMAT_CHOICES = tuple(name.lower() for name in FORMATS)


def format_name(format: str) -> str:
    """The canonical name (:data:`FORMAT_CHOICES`) of an export format or an alias: ``"jpg"`` → ``"jpeg"``.

    Raises:
        ProvenanceError: not a format headshot-lab can write with disclosure metadata.
    """
    return image_format("", format.strip().removeprefix(".")).lower()


#: The note on a circle crop asked for in a format without transparency (written as PNG instead).
CIRCLE_AS_PNG = (
    "Saved as PNG with a see-through outside: {format} cannot be see-through, so a round cut would be a square."
)


def circle_format(fmt: str) -> str:
    """The file format of a transparent circle crop asked for in ``fmt``: ``fmt`` when it has an alpha
    channel (PNG, WebP), else ``PNG`` (a JPEG circle would silently be a square)."""
    return fmt if fmt in {"PNG", "WEBP"} else "PNG"


#: The note on a print crop asked for as WebP: the format cannot say its dpi.
WEBP_NO_DPI = (
    "WebP files cannot store a print size, so a print shop may not know this is meant for {dpi} dpi: "
    "export the print as JPEG or PNG."
)
PRINT_DPI = 300
PRINT_INCHES = (4.0, 5.0)


def print_crop(width_in: float = PRINT_INCHES[0], height_in: float = PRINT_INCHES[1], dpi: int = PRINT_DPI) -> CropSpec:
    """A print crop of ``width_in × height_in`` inches at ``dpi``: ``round(inches · dpi)`` pixels a side.

    The default is :data:`CROPS` ``["print"]`` (4×5 in, 300 dpi → 1200×1500 px); any other size keeps its framing
    (eye line, face size) and is named ``print`` too, so the file is ``<stem>_print.<ext>``.

    Raises:
        ExportError: a size under 0.5 in or over 40 in, or a dpi outside 72…1200.
    """
    if not (0.5 <= width_in <= 40 and 0.5 <= height_in <= 40) or not 72 <= dpi <= 1200:
        raise ExportError(
            f"A print of {width_in:g}×{height_in:g} in at {dpi} dpi is not offered.",
            fix="Use 0.5–40 in a side and 72–1200 dpi (e.g. 4×5 in at 300 dpi).",
            code="bad_print_size",
        )
    return replace(CROPS["print"], size=(round(width_in * dpi), round(height_in * dpi)), dpi=int(dpi))


def get_crop(crop: str | CropSpec) -> CropSpec:
    """A :class:`CropSpec` by name (or the spec itself)."""
    if isinstance(crop, CropSpec):
        return crop
    try:
        return CROPS[crop]
    except KeyError:
        raise ExportError(
            f"Unknown crop {crop!r}.", fix=f"Choose from: {', '.join(CROP_NAMES)}.", code="unknown_crop"
        ) from None


# -- geometry ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FaceGeometry:
    """Where a face is, in photo pixels (see the module docstring for ``size``)."""

    eyes: tuple[float, float]
    center_x: float
    size: float
    roll: float  # degrees, positive = the image-right eye is lower
    from_landmarks: bool

    @classmethod
    def from_face(cls, face: Face) -> FaceGeometry:
        points = None if face.landmarks5 is None else np.asarray(face.landmarks5, dtype=np.float64)
        if points is not None and points.shape == (5, 2) and np.all(np.isfinite(points)):
            from headshot_lab.faces.align import arcface_template, similarity_transform

            try:
                matrix = similarity_transform(points, arcface_template(int(TEMPLATE_SIZE)))
                scale = math.sqrt(abs(np.linalg.det(matrix[:, :2])))
            except HeadshotLabError:
                scale = 0.0
            if scale > 0:
                left, right = points[0], points[1]
                eyes = (left + right) / 2.0
                roll = math.degrees(math.atan2(right[1] - left[1], right[0] - left[0]))
                return cls(
                    eyes=(float(eyes[0]), float(eyes[1])),
                    center_x=float(points[:, 0].mean()),
                    size=TEMPLATE_SIZE / scale,
                    roll=roll,
                    from_landmarks=True,
                )
        left, top, right, bottom = (float(v) for v in face.box)
        height = bottom - top
        return cls(
            eyes=((left + right) / 2.0, top + BOX_EYE_LINE * height),
            center_x=(left + right) / 2.0,
            size=BOX_TO_FACE * height,
            roll=0.0,
            from_landmarks=False,
        )


@dataclass(frozen=True)
class CropPlan:
    """Where one crop comes from in the photo and how it will be scaled.

    Attributes:
        rect: ``(left, top, right, bottom)`` in photo pixels (may extend past the photo).
        out_size: ``(width, height)`` of the output.
        scale: output pixels per photo pixel (one number: never stretched).
        face_found: a face was found (``False`` for every crop when none was).
        fallback: no face was found, so this crop is the centred fallback.
        eye_line / center_x: where the eyes / face axis land, as fractions of the output.
        face_height: ``F`` as a fraction of the output height.
        extended: fraction of the output area filled by backdrop extension.
        notes: what a person should know (fallback, upscaling, extension, zoom).
    """

    rect: tuple[float, float, float, float]
    out_size: tuple[int, int]
    scale: float
    face_found: bool
    eye_line: float | None
    center_x: float | None
    face_height: float | None
    extended: float
    notes: tuple[str, ...] = ()
    fallback: bool = False

    @property
    def upscaled(self) -> bool:
        return self.scale > 1.0 + 1e-6

    @property
    def source_pixels(self) -> tuple[int, int]:
        """Size of the photo area behind the crop, in photo pixels."""
        left, top, right, bottom = self.rect
        return round(right - left), round(bottom - top)


def _slide(low: float, high: float, limit: float, allowed: float) -> float:
    """Offset that brings ``[low, high]`` inside ``[0, limit]``, capped at ``±allowed``."""
    if high - low > limit:  # wider than the photo: both sides overflow, sliding cannot help
        return 0.0
    offset = -low if low < 0 else (limit - high if high > limit else 0.0)
    return float(np.clip(offset, -allowed, allowed))


def plan_crop(image_shape: Sequence[int], crop: str | CropSpec, face: Face | FaceGeometry | None) -> CropPlan:
    """Frame ``crop`` on a photo of ``image_shape`` from ``face`` (``None``, or a face under one pixel → centred crop)."""
    spec = get_crop(crop)
    height, width = int(image_shape[0]), int(image_shape[1])
    if spec.size is None:
        return CropPlan(
            rect=(0.0, 0.0, float(width), float(height)),
            out_size=(width, height),
            scale=1.0,
            face_found=face is not None,
            eye_line=None,
            center_x=None,
            face_height=None,
            extended=0.0,
        )
    out_w, out_h = spec.size
    aspect = out_w / out_h
    notes: list[str] = []
    geometry = FaceGeometry.from_face(face) if isinstance(face, Face) else face
    if geometry is not None and not (
        geometry.size >= 1.0 and all(map(math.isfinite, (*geometry.eyes, geometry.center_x, geometry.size)))
    ):
        geometry = None  # an empty (zero-area) or sub-pixel face box gives nothing to frame by: centred crop
    if geometry is None:
        crop_h = min(float(height), width / aspect)
        crop_w = crop_h * aspect
        left, top = (width - crop_w) / 2.0, (height - crop_h) / 2.0
        notes.append("No face was found, so this is a centred crop; check the framing.")
    else:
        crop_h = geometry.size / spec.face_height
        crop_w = crop_h * aspect
        fit = min(width / crop_w, height / crop_h)
        if fit < 1.0 and spec.max_zoom > 1.0:
            zoom = min(1.0 / fit, spec.max_zoom)
            crop_w, crop_h = crop_w / zoom, crop_h / zoom
            notes.append(f"Zoomed in {zoom:.2f}× to stay inside the photo.")
        left = geometry.center_x - spec.center_x * crop_w
        top = geometry.eyes[1] - spec.eye_line * crop_h
        left += _slide(left, left + crop_w, width, spec.max_shift * crop_w)
        top += _slide(top, top + crop_h, height, spec.max_shift * crop_h)
    rect = (left, top, left + crop_w, top + crop_h)
    inside_w = max(0.0, min(rect[2], width) - max(rect[0], 0.0))
    inside_h = max(0.0, min(rect[3], height) - max(rect[1], 0.0))
    extended = 1.0 - (inside_w * inside_h) / (crop_w * crop_h)
    if extended > 0.005:
        notes.append(f"The backdrop was extended to fill {extended:.0%} of the frame (the photo ends there).")
    scale = out_h / crop_h
    if scale > 1.0 + 1e-6:
        notes.append(
            f"The photo is smaller than the target: {round(crop_w)}×{round(crop_h)} px were upscaled "
            f"×{scale:.2f} to {out_w}×{out_h}."
        )
        if spec.min_side and min(crop_w, crop_h) < spec.min_side:
            notes.append(f"Low resolution: under {spec.min_side} px of the photo behind this crop; it may look soft.")
    return CropPlan(
        rect=rect,
        out_size=(out_w, out_h),
        scale=scale,
        face_found=geometry is not None,
        eye_line=None if geometry is None else (geometry.eyes[1] - top) / crop_h,
        center_x=None if geometry is None else (geometry.center_x - left) / crop_w,
        face_height=None if geometry is None else geometry.size / crop_h,
        extended=max(0.0, extended),
        notes=tuple(notes),
        fallback=geometry is None,
    )


# -- print: is there enough real detail? ---------------------------------------------------------

#: A print is "short" when its photographed detail is below this share of the pixels it needs (2 % slack, so a
#: rounding pixel never warns).
PRINT_SLACK = 0.98


@dataclass(frozen=True)
class PrintDetail:
    """How much real detail stands behind a print crop (see :func:`print_detail`).

    Attributes:
        needed: output pixels along the long (height) side: ``inches · dpi``.
        pixels: source pixels behind the crop's height that lie inside the photo (extended backdrop excluded).
        photographed: ``pixels / (L · M)``: what the camera (or the generator) recorded, with ``L`` the product of
            earlier Lanczos enlargements and ``M`` that of super-resolution models (from the file's history).
        model_made: ``pixels / L``: photographed detail plus what a super-resolution model added.
        model_gain: ``M`` (1 = no model upscale).
        short_by: ``needed / photographed`` (> 1: too little real detail).
    """

    needed: int
    pixels: float
    photographed: float
    model_made: float
    model_gain: float
    short_by: float
    inches: tuple[float, float]
    dpi: int
    methods: tuple[str, ...] = ()

    @property
    def short(self) -> bool:
        """Too little photographed detail and no model upscale making up for it."""
        return self.model_made < PRINT_SLACK * self.needed

    @property
    def model_detail(self) -> bool:
        """Enough pixels only because a super-resolution model made some of them."""
        return not self.short and self.photographed < PRINT_SLACK * self.needed

    def largest_sharp_print(self) -> tuple[float, float]:
        """The largest print (inches) this crop's photographed detail fills at ``dpi``: ``inches / short_by``."""
        scale = min(1.0, 1.0 / self.short_by) if self.short_by > 0 else 1.0
        return self.inches[0] * scale, self.inches[1] * scale

    def notes(self) -> list[str]:
        """Plain sentences for a person (empty when the detail is enough); the last one is for the operator."""
        size = f"{self.inches[0]:g}×{self.inches[1]:g} in at {self.dpi} dpi"
        made = ""
        if self.model_gain > 1:
            made = (
                f" ({round(self.model_made)} px counting what a super-resolution model added: "
                f"{self.model_gain:g}× by {', '.join(self.methods)}; that detail was made, not photographed)"
            )
        if self.short:
            width, height = self.largest_sharp_print()
            factor = next((f for f in (2, 4) if f * self.photographed >= PRINT_SLACK * self.needed), None)
            advice = (
                f"Enlarge it {factor}× with a super-resolution model first, or print it smaller"
                if factor
                else "Even a 4× enlargement would not be enough: print it smaller"
            )
            return [
                f"Too little detail for a sharp print at {size}: the photo has {round(self.photographed)} px of real "
                f"detail behind this crop{made}; the print needs {self.needed} px: {self.short_by:.1f}× short. "
                f"{advice} (up to {width:.1f}×{height:.1f} in is sharp).",
                "For the operator: `headshot-lab upscale PHOTO --factor "
                f"{factor or 4} --model CHECKPOINT` (a Real-ESRGAN/SwinIR/HAT file), then export the result.",
            ]
        if self.model_detail:
            return [
                f"Enough pixels for a print at {size}, but only {round(self.photographed)} of the {self.needed} px "
                f"are real detail: the rest was made by a super-resolution model ({', '.join(self.methods)}, "
                f"{self.model_gain:g}×). Look at the face at full size before printing."
            ]
        return []

    def to_dict(self) -> dict[str, Any]:
        return {
            "needed_px": self.needed,
            "photographed_px": round(self.photographed, 1),
            "with_model_px": round(self.model_made, 1),
            "model_gain": self.model_gain,
            "short_by": round(self.short_by, 3),
            "short": self.short,
            "model_detail": self.model_detail,
            "inches": list(self.inches),
            "dpi": self.dpi,
        }


def print_detail(
    plan: CropPlan, image_shape: Sequence[int], spec: CropSpec, history: str | None = None
) -> PrintDetail | None:
    """The real-detail check of a print crop (``None`` for a crop without ``dpi``).

    ``pixels`` = the crop rectangle's height clipped to the photo; ``photographed = pixels / (L · M)`` and
    ``model_made = pixels / L``, where ``L`` and ``M`` multiply the factors of the Lanczos and model upscales in
    ``history`` (the file's ``photoshop:History``, :func:`headshot_lab.upscale.parse_history`): interpolation adds
    pixels but no detail, a model adds detail it made up. ``short_by = needed / photographed``.
    """
    from headshot_lab.upscale import parse_history

    if spec.dpi is None or spec.size is None:
        return None
    height = float(image_shape[0])
    inside = max(0.0, min(plan.rect[3], height) - max(plan.rect[1], 0.0))
    steps = parse_history(history)
    lanczos_gain = math.prod(step.factor for step in steps if not step.by_model)
    model_gain = math.prod(step.factor for step in steps if step.by_model)
    needed = int(spec.size[1])
    photographed = inside / (lanczos_gain * model_gain)
    return PrintDetail(
        needed=needed,
        pixels=inside,
        photographed=photographed,
        model_made=inside / lanczos_gain,
        model_gain=float(model_gain),
        short_by=needed / photographed if photographed > 0 else math.inf,
        inches=spec.inches or (0.0, 0.0),
        dpi=int(spec.dpi),
        methods=tuple(dict.fromkeys(step.method for step in steps if step.by_model)),
    )


# -- rendering -----------------------------------------------------------------------------------


def diffused_profile(profile: np.ndarray, distances: np.ndarray, *, sigma0: float, growth: float) -> np.ndarray:
    """``profile`` (``n × c``, the photo's edge line) carried ``distances`` (``m``) pixels away, smoothed more the
    farther it goes: row ``i`` of the result is the profile Gaussian-blurred with ``σ = sigma0 + growth · d_i``
    (``m × n × c``). Near the photo the edge goes on as it is; far away only its broad gradient is left, so
    stripes of the edge (a flag, a curtain) fade out instead of running on as streaks.
    """
    from scipy.ndimage import gaussian_filter1d

    if not len(distances):
        return np.zeros((0, *profile.shape), np.float32)
    sigmas = sigma0 + growth * np.asarray(distances, np.float64)
    levels = np.geomspace(max(sigmas.min(), 0.5), max(sigmas.max(), 0.5) + 1e-6, num=12)
    stack = np.stack([gaussian_filter1d(profile, level, axis=0, mode="reflect") for level in levels])
    position = np.interp(np.log(np.maximum(sigmas, 0.5)), np.log(levels), np.arange(len(levels)))
    low = np.floor(position).astype(int).clip(0, len(levels) - 1)
    high = (low + 1).clip(0, len(levels) - 1)
    t = (position - low)[:, None, None]
    return ((1.0 - t) * stack[low] + t * stack[high]).astype(np.float32)


def _edge_line(padded: np.ndarray, index: int, step: int, depth: int, axis: int) -> np.ndarray:
    """The median of ``depth`` lines of ``padded`` from line ``index`` inward (``step`` ±1) along ``axis``."""
    lines = [np.take(padded, index + step * k, axis=axis) for k in range(depth)]
    return np.median(np.stack(lines), axis=0)


def extend_backdrop(region: np.ndarray, pad: tuple[int, int, int, int], *, sigma: float | None = None) -> np.ndarray:
    """Grow ``region`` by ``pad = (top, bottom, left, right)`` pixels without stretching it.

    Each pad carries the photo's edge line outward (the median of its outer ``max(1, 1 %)`` lines: robust to a
    stray pixel), blurred along the edge with ``σ = σ₀ + d / 2`` at distance ``d`` (:func:`diffused_profile`;
    ``σ₀ = sigma``, default half a pixel: the seam carries the edge on as it is). A backdrop's gradient goes on; a flag's stripes
    fade into it within a few stripe widths instead of running on as streaks, and a shirt at the lower edge
    fades out instead of leaving a dark block. Where a side pad meets an end pad (the corners) the two are
    mixed by depth ``share = d_side / (d_side + d_end)``. The photo's own pixels are returned unchanged.
    """
    import cv2

    top, bottom, left, right = (max(0, int(p)) for p in pad)
    if not any((top, bottom, left, right)):
        return region.copy()
    inner_h, inner_w = region.shape[:2]
    padded = cv2.copyMakeBorder(region, top, bottom, left, right, cv2.BORDER_REPLICATE).astype(np.float32)
    height, width = padded.shape[:2]
    sigma0 = sigma or 0.5
    depth_x, depth_y = max(1, round(0.01 * inner_w)), max(1, round(0.01 * inner_h))
    side = padded.copy()  # left/right pads: the edge column carried sideways
    if left:
        line = _edge_line(padded, left, 1, depth_x, axis=1)
        side[:, :left] = diffused_profile(line, np.arange(left, 0, -1), sigma0=sigma0, growth=0.5).transpose(1, 0, 2)
    if right:
        line = _edge_line(padded, left + inner_w - 1, -1, depth_x, axis=1)
        carried = diffused_profile(line, np.arange(1, right + 1), sigma0=sigma0, growth=0.5)
        side[:, left + inner_w :] = carried.transpose(1, 0, 2)
    ends = padded.copy()  # top/bottom pads: the edge row carried up or down
    if top:
        line = _edge_line(side, top, 1, depth_y, axis=0)
        ends[:top] = diffused_profile(line, np.arange(top, 0, -1), sigma0=sigma0, growth=0.5)
    if bottom:
        line = _edge_line(side, top + inner_h - 1, -1, depth_y, axis=0)
        ends[top + inner_h :] = diffused_profile(line, np.arange(1, bottom + 1), sigma0=sigma0, growth=0.5)
    rows = np.arange(height, dtype=np.float32)[:, None]
    cols = np.arange(width, dtype=np.float32)[None, :]
    side_depth = np.maximum(left - cols, cols - (left + inner_w - 1)).clip(0)
    end_depth = np.maximum(top - rows, rows - (top + inner_h - 1)).clip(0)
    share = (side_depth / np.maximum(side_depth + end_depth, 1e-6))[..., None]  # 1 = beside, 0 = above/below
    mixed = share * side + (1.0 - share) * ends
    out = np.clip(np.round(mixed), 0, 255).astype(np.uint8)
    out[top : top + inner_h, left : left + inner_w] = region
    return out


def circle_alpha(size: tuple[int, int], *, supersample: int = 4) -> np.ndarray:
    """Anti-aliased alpha (``uint8``) of the circle inscribed in ``size = (width, height)``: drawn at
    ``supersample``× and box-averaged, so each pixel's alpha is the share of it inside the circle."""
    width, height = size
    diameter = min(width, height)
    big = Image.new("L", (width * supersample, height * supersample), 0)
    x0 = (width - diameter) / 2 * supersample
    y0 = (height - diameter) / 2 * supersample
    ImageDraw.Draw(big).ellipse((x0, y0, x0 + diameter * supersample - 1, y0 + diameter * supersample - 1), fill=255)
    return np.asarray(big.resize((width, height), Image.Resampling.BOX))  # area coverage: no ringing


def render_crop(image: np.ndarray, plan: CropPlan, *, transparent_circle: bool = False) -> np.ndarray:
    """Cut, scale (Lanczos, uniform) and extend ``image`` as ``plan`` says; RGB, or RGBA for a circle."""
    pixels = as_rgb_array(image)
    height, width = pixels.shape[:2]
    out_w, out_h = plan.out_size
    left, top, right, bottom = plan.rect
    if plan.rect == (0.0, 0.0, float(width), float(height)) and plan.out_size == (width, height):
        result = pixels.copy()
    else:
        box = (max(left, 0.0), max(top, 0.0), min(right, float(width)), min(bottom, float(height)))
        # At least one photo pixel must be behind the frame, or all of it when the frame itself is under a
        # pixel (the centred frame of a photo a few pixels wide, e.g. a banner of a 3×3 image).
        if box[2] - box[0] < min(1.0, right - left) or box[3] - box[1] < min(1.0, bottom - top):
            raise ExportError("The crop lies outside the photo.", code="bad_crop")
        x0 = min(out_w - 1, max(0, round((box[0] - left) * plan.scale)))
        y0 = min(out_h - 1, max(0, round((box[1] - top) * plan.scale)))
        x1 = max(x0 + 1, min(out_w, round((box[2] - left) * plan.scale)))
        y1 = max(y0 + 1, min(out_h, round((box[3] - top) * plan.scale)))
        region = np.asarray(
            Image.fromarray(pixels).resize((x1 - x0, y1 - y0), Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)
        )
        result = extend_backdrop(region, (y0, out_h - y1, x0, out_w - x1))
    if transparent_circle:
        result = np.dstack([result, circle_alpha((result.shape[1], result.shape[0]))])
    return result


@dataclass(frozen=True)
class Cropped:
    """One rendered crop in memory."""

    crop: str
    pixels: np.ndarray  # (H, W, 3) RGB or (H, W, 4) RGBA
    plan: CropPlan


def find_face(image: np.ndarray, backend: str | None = None) -> Face | None:
    """The largest face found by ``backend`` (default: settings), or ``None``."""
    from headshot_lab.faces import get_backend

    return largest_face(get_backend(backend).detect(as_rgb_array(image)))


_AUTO: Literal["auto"] = "auto"


def crop_image(
    image: np.ndarray | Image.Image | Photo,
    crop: str | CropSpec,
    *,
    face: Face | FaceGeometry | Literal["auto"] | None = _AUTO,
    backend: str | None = None,
    transparent_circle: bool = False,
) -> Cropped:
    """Frame and render one crop. ``face="auto"`` detects it; ``None`` forces the centred fallback."""
    pixels = as_rgb_array(image)
    spec = get_crop(crop)
    found = find_face(pixels, backend) if isinstance(face, str) else face
    plan = plan_crop(pixels.shape, spec, found)
    rendered = render_crop(pixels, plan, transparent_circle=transparent_circle and spec.circle)
    return Cropped(spec.name, rendered, plan)


# -- writing -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportedImage:
    """One written file and what a person should know about it."""

    crop: str
    path: Path
    format: str
    size: tuple[int, int]
    face_found: bool
    upscaled: bool
    upscale_factor: float
    extended: float
    eye_line: float | None
    center_x: float | None
    digital_source_type: str
    source: str = ""
    notes: tuple[str, ...] = ()
    fallback: bool = False  # no face found: a centred crop was used
    dpi: int | None = None  # print crops: the density written into the file
    print_detail: PrintDetail | None = None  # print crops: the real-detail check

    @classmethod
    def from_plan(
        cls,
        plan: CropPlan,
        pixels: np.ndarray,
        path: Path,
        *,
        crop: str,
        format: str,
        kind: str,
        source: str,
        notes: Sequence[str],
    ) -> ExportedImage:
        """Describe ``pixels`` written to ``path`` from ``plan`` (face placement, upscaling, extension)."""
        return cls(
            crop=crop,
            path=path,
            format=format,
            size=(pixels.shape[1], pixels.shape[0]),
            face_found=plan.face_found,
            upscaled=plan.upscaled,
            upscale_factor=max(1.0, plan.scale),
            extended=plan.extended,
            eye_line=plan.eye_line,
            center_x=plan.center_x,
            digital_source_type=digital_source_type(kind),
            source=source,
            notes=tuple(notes),
            fallback=plan.fallback,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "crop": self.crop,
            "source": self.source,
            "format": self.format.lower(),
            "width": self.size[0],
            "height": self.size[1],
            "face_found": self.face_found,
            "fallback": self.fallback,
            "upscaled": self.upscaled,
            "upscale_factor": round(self.upscale_factor, 3),
            "extended": round(self.extended, 3),
            "eye_line": None if self.eye_line is None else round(self.eye_line, 3),
            "center_x": None if self.center_x is None else round(self.center_x, 3),
            "digital_source_type": self.digital_source_type,
            "notes": list(self.notes),
            **({} if self.dpi is None else {"dpi": self.dpi}),
            **({} if self.print_detail is None else {"print_detail": self.print_detail.to_dict()}),
        }


@dataclass
class ExportResult:
    """Everything one export call wrote."""

    images: list[ExportedImage] = field(default_factory=list)
    zip_path: Path | None = None
    face: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def paths(self) -> list[Path]:
        return [image.path for image in self.images]

    def by_crop(self) -> dict[str, ExportedImage]:
        return {image.crop: image for image in self.images}

    def to_dict(self) -> dict[str, Any]:
        return {
            "images": [image.to_dict() for image in self.images],
            "zip": None if self.zip_path is None else str(self.zip_path),
            "face": self.face,
            "notes": self.notes,
        }


def _load(source: Any) -> tuple[np.ndarray, str]:
    """Pixels (metadata-free) and a file stem for a path, bytes, Photo, PIL image or array."""
    if isinstance(source, Photo):
        return source.pixels, Path(source.name).stem or "headshot"
    if isinstance(source, np.ndarray | Image.Image):
        return as_rgb_array(source), "headshot"
    photo = load_photo(source, min_side=0)  # EXIF/GPS/XMP of the upload are dropped here
    stem = Path(photo.name).stem if isinstance(source, str | Path) else "headshot"
    return photo.pixels, stem or "headshot"


def _safe_stem(stem: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in stem).strip("._")
    return cleaned[:80] or "headshot"


def export_headshots(
    source: Any,
    out_dir: str | Path,
    crops: Iterable[str | CropSpec] = CROP_NAMES,
    *,
    format: str = "jpeg",
    kind: str = "generated",
    face: Face | FaceGeometry | Literal["auto"] | None = _AUTO,
    backend: str | None = None,
    stem: str | None = None,
    transparent_circle: bool = True,
    quality: int = 95,
    zip_name: str | None = None,
    c2pa: C2PACredentials | bool | None = None,
    history: str | None = None,
    refuse_short_print: bool = False,
) -> ExportResult:
    """Write the requested crops of one image, each with disclosure XMP (and C2PA when configured).

    Args:
        source: path, bytes, :class:`~headshot_lab.io.Photo`, PIL image or RGB array. Only pixels
            are used: the upload's EXIF (GPS included), XMP and ICC never reach an output.
        out_dir: folder to write into (created).
        crops: names from :data:`CROPS` or :class:`CropSpec` objects.
        format: ``jpeg``, ``png`` or ``webp`` (:data:`FORMAT_CHOICES`; ``jpg`` is an alias of ``jpeg``).
        kind: ``generated`` or ``retouched`` (the IPTC digital source type written).
        face: ``"auto"`` detects the largest face; a :class:`Face` skips detection; ``None`` = centred.
        stem: file-name stem (default: the source file name, else ``headshot``).
        transparent_circle: the circle crop gets a transparent outside (PNG/WebP as asked; PNG instead of JPEG,
            with a note: :func:`circle_format`).
        zip_name: also write ``out_dir/zip_name`` holding every file written.
        history: the source's upscale history (``photoshop:History``); read from the file when ``source`` is a
            path. It is carried into every output (so a later print check still knows) and used by the print check.
        refuse_short_print: a print crop with too little real detail (:func:`print_detail`) raises
            :class:`ExportError` (``print_detail_short``) instead of being written with a warning.

    Every file is tagged sRGB (an embedded ICC profile, :func:`headshot_lab.io.srgb_icc_profile`); print crops
    also carry their dpi.

    Returns:
        :class:`ExportResult` (paths, per-file placement facts and notes, the zip).
    """
    fmt = image_format("", format)
    digital_source_type(kind)  # refuse an unknown kind before any work
    specs = [get_crop(c) for c in crops]
    if not specs:
        raise ExportError("No crops were requested.", fix=f"Choose from: {', '.join(CROP_NAMES)}.", code="no_crops")
    if history is None and isinstance(source, str | Path):
        from headshot_lab.provenance import read_history

        history = read_history(source)
    source = load_photo(source, min_side=0) if isinstance(source, str | Path) else source
    label = source.digital_source_type if isinstance(source, Photo) else None  # an input's label never weakens
    pixels, default_stem = _load(source)
    stem = _safe_stem(stem or default_stem)
    result = ExportResult()
    needs_face = any(spec.size is not None for spec in specs)
    if isinstance(face, str) and needs_face:
        from headshot_lab.faces import get_backend

        detected = get_backend(backend).detect(pixels)
        found = largest_face(detected)
        if len(detected) > 1:
            result.notes.append(f"{len(detected)} faces were found; the crops frame the largest one.")
    else:
        found = None if isinstance(face, str) else face  # type: ignore[assignment]  # narrowed just below
    if isinstance(found, Face):
        result.face = found.to_dict()
    elif found is None and needs_face:
        result.notes.append("No face was found: crops are centred. Use a photo with the face clearly visible.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for spec in specs:
        plan = plan_crop(pixels.shape, spec, found)
        alpha = spec.circle and transparent_circle
        file_format = circle_format(fmt) if alpha else fmt
        notes = list(plan.notes)
        if file_format != fmt:
            notes.append(CIRCLE_AS_PNG.format(format=fmt))
        detail = print_detail(plan, pixels.shape, spec, history)
        if detail is not None:
            notes = [n for n in notes if not n.startswith("The photo is smaller than the target")] + detail.notes()
            if refuse_short_print and detail.short:
                raise ExportError(detail.notes()[0], fix=detail.notes()[1], code="print_detail_short")
            if file_format == "WEBP":
                notes.append(WEBP_NO_DPI.format(dpi=spec.dpi))
        rendered = render_crop(pixels, plan, transparent_circle=alpha)
        path = out / f"{stem}_{spec.name}{EXTENSIONS[file_format]}"
        dpi = None if spec.dpi is None else (spec.dpi, spec.dpi)
        save_with_provenance(
            rendered, path, kind, format=file_format, quality=quality, c2pa=c2pa, source_type=label,
            history=history, dpi=dpi,
        )  # fmt: skip
        image = ExportedImage.from_plan(
            plan, rendered, path, crop=spec.name, format=file_format, kind=kind, source=stem, notes=notes
        )
        result.images.append(replace(image, dpi=spec.dpi, print_detail=detail))
    if zip_name:
        result.zip_path = zip_exports(result.paths, out / zip_name)
    return result


def zip_exports(paths: Iterable[str | Path], zip_path: str | Path) -> Path:
    """Zip ``paths`` byte for byte (stored, not recompressed: the XMP/C2PA inside stay intact), atomically.

    Entries are the bare file names; a repeated name gets ``-2``, ``-3`` … before its extension.
    """
    zip_path = Path(zip_path)
    used: set[str] = set()
    with atomic_write(zip_path) as handle, zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED) as archive:
        for item in paths:
            path = Path(item)
            name, count = path.name, 1
            while name in used:
                count += 1
                name = f"{path.stem}-{count}{path.suffix}"
            used.add(name)
            archive.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), path.read_bytes())
    return zip_path


# -- team mode -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColourGrade:
    """One look for everyone: ``brightness``/``contrast``/``saturation`` are PIL ``ImageEnhance`` factors
    (1 = unchanged); ``warmth`` in ``[−1, 1]`` scales red by ``1 + 0.1·warmth`` and blue by ``1 − 0.1·warmth``."""

    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0
    warmth: float = 0.0

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        image = Image.fromarray(as_rgb_array(rgb))
        for enhancer, factor in (
            (ImageEnhance.Brightness, self.brightness),
            (ImageEnhance.Contrast, self.contrast),
            (ImageEnhance.Color, self.saturation),
        ):
            if factor != 1.0:
                image = enhancer(image).enhance(factor)
        out = np.asarray(image)
        if self.warmth:
            gains = np.array([1 + 0.1 * self.warmth, 1.0, 1 - 0.1 * self.warmth], dtype=np.float32)
            out = np.clip(np.round(out.astype(np.float32) * gains), 0, 255).astype(np.uint8)
        return out


@dataclass(frozen=True)
class StyleGuide:
    """One style for a whole team: the same geometry, colour grade and backdrop for every person.

    The crop's ``max_shift``/``max_zoom`` are turned off, so every face lands exactly on the same
    eye line at the same size (the backdrop is extended where a photo ends).
    """

    crop: str | CropSpec = "square"
    backdrop: tuple[int, int, int] | None = (200, 203, 208)
    grade: ColourGrade = ColourGrade()
    name: str = "team"

    @property
    def spec(self) -> CropSpec:
        return replace(get_crop(self.crop), max_shift=0.0, max_zoom=1.0)


def replace_backdrop(rgb: np.ndarray, colour: tuple[int, int, int], mask: np.ndarray | None = None) -> np.ndarray:
    """``out = m · rgb + (1 − m) · colour`` with the soft person mask ``m`` (mediapipe selfie segmentation)."""
    if mask is None:
        from headshot_lab.faces.mesh import selfie_mask

        mask = selfie_mask(rgb)
    weight = np.clip(np.asarray(mask, dtype=np.float32), 0, 1)[..., None]
    backdrop = np.asarray(colour, dtype=np.float32).reshape(1, 1, 3)
    return np.clip(np.round(weight * rgb.astype(np.float32) + (1 - weight) * backdrop), 0, 255).astype(np.uint8)


def apply_style(
    image: Any,
    guide: StyleGuide,
    *,
    face: Face | FaceGeometry | Literal["auto"] | None = _AUTO,
    backend: str | None = None,
) -> Cropped:
    """Crop with the guide's geometry, grade, then put the person on the guide's backdrop."""
    pixels, _ = _load(image)
    cropped = crop_image(pixels, guide.spec, face=face, backend=backend)
    styled = guide.grade.apply(cropped.pixels)
    if guide.backdrop is not None:
        styled = replace_backdrop(styled, guide.backdrop)
    return Cropped(cropped.crop, styled, cropped.plan)


@dataclass(frozen=True)
class PortraitMeasure:
    """What :func:`team_consistency` measured on one output."""

    name: str
    face_found: bool
    eye_line: float | None
    face_height: float | None
    center_x: float | None
    backdrop_lab: tuple[float, float, float]

    def to_dict(self) -> dict[str, Any]:
        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 4)

        return {
            "name": self.name,
            "face_found": self.face_found,
            "eye_line": r(self.eye_line),
            "face_height": r(self.face_height),
            "center_x": r(self.center_x),
            "backdrop_lab": [round(v, 2) for v in self.backdrop_lab],
        }


TEAM_TOLERANCES = {"backdrop": 5.0, "face_scale": 0.10, "eye_line": 0.03}
"""``tol`` of each sub-score ``exp(−x / tol)``: ΔE2000 5 (clearly visible side by side), 10 %
face size, 3 % of the height for the eye line."""


@dataclass(frozen=True)
class TeamConsistency:
    """How alike a set of portraits look. ``score`` in ``[0, 1]`` (1 = identical framing and backdrop).

    Attributes:
        backdrop_delta_e: largest pairwise CIEDE2000 between backdrop colours.
        face_scale_spread: ``max(F/H) / min(F/H) − 1``.
        eye_line_spread: ``max(e_y/H) − min(e_y/H)``.
        components: the three sub-scores ``exp(−x / tol)`` (:data:`TEAM_TOLERANCES`); a portrait
            with no detectable face makes both geometry sub-scores 0.
    """

    score: float
    backdrop_delta_e: float
    face_scale_spread: float | None
    eye_line_spread: float | None
    components: dict[str, float]
    people: list[PortraitMeasure]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": round(self.score, 4),
            "backdrop_delta_e": round(self.backdrop_delta_e, 3),
            "face_scale_spread": None if self.face_scale_spread is None else round(self.face_scale_spread, 4),
            "eye_line_spread": None if self.eye_line_spread is None else round(self.eye_line_spread, 4),
            "components": {k: round(v, 4) for k, v in self.components.items()},
            "tolerances": TEAM_TOLERANCES,
            "people": [p.to_dict() for p in self.people],
            "notes": self.notes,
        }


def backdrop_lab(rgb: np.ndarray, *, corner_w: float = 0.12, corner_h: float = 0.25) -> tuple[float, float, float]:
    """Median CIELAB of the two top corners (``corner_w × corner_h`` of the frame each): backdrop, not person."""
    from headshot_lab.skin import rgb_to_lab

    pixels = as_rgb_array(rgb)
    height, width = pixels.shape[:2]
    cw, ch = max(1, round(width * corner_w)), max(1, round(height * corner_h))
    patch = np.concatenate([pixels[:ch, :cw].reshape(-1, 3), pixels[:ch, width - cw :].reshape(-1, 3)])
    lab = np.median(rgb_to_lab(patch), axis=0)
    return (float(lab[0]), float(lab[1]), float(lab[2]))


def measure_portrait(image: Any, name: str = "", *, backend: str | None = None) -> PortraitMeasure:
    """Detect the face in a finished portrait and measure eye line, face size and backdrop colour."""
    pixels, stem = _load(image)
    face = find_face(pixels, backend)
    height, width = pixels.shape[:2]
    geometry = None if face is None else FaceGeometry.from_face(face)
    return PortraitMeasure(
        name=name or stem,
        face_found=geometry is not None,
        eye_line=None if geometry is None else geometry.eyes[1] / height,
        face_height=None if geometry is None else geometry.size / height,
        center_x=None if geometry is None else geometry.center_x / width,
        backdrop_lab=backdrop_lab(pixels),
    )


def team_consistency(
    portraits: Mapping[str, Any] | Sequence[PortraitMeasure], *, backend: str | None = None
) -> TeamConsistency:
    """Score how consistently styled a set of portraits is (see the module docstring).

    Args:
        portraits: ``{name: image or path}`` or already measured :class:`PortraitMeasure` objects.
    """
    from headshot_lab.skin import delta_e2000

    if isinstance(portraits, Mapping):
        people = [measure_portrait(image, name, backend=backend) for name, image in portraits.items()]
    else:
        people = list(portraits)
    if len(people) < 2:
        raise ExportError("Team consistency needs at least two portraits.", code="team_too_small")
    labs = np.array([p.backdrop_lab for p in people])
    pairs = [(i, j) for i in range(len(people)) for j in range(i + 1, len(people))]
    delta_e = max(float(delta_e2000(labs[i], labs[j])) for i, j in pairs)
    notes: list[str] = []
    found = [p for p in people if p.face_found]
    missing = [p.name for p in people if not p.face_found]
    if missing:
        notes.append(f"No face found in: {', '.join(missing)}; framing cannot be checked for them.")
    scale_spread = eye_spread = None
    if len(found) >= 2:
        sizes = [p.face_height for p in found]
        eyes = [p.eye_line for p in found]
        scale_spread = max(sizes) / min(sizes) - 1.0  # type: ignore[type-var,operator]
        eye_spread = max(eyes) - min(eyes)  # type: ignore[type-var,operator]
    complete = not missing and scale_spread is not None
    components = {
        "backdrop": math.exp(-delta_e / TEAM_TOLERANCES["backdrop"]),
        "face_scale": math.exp(-scale_spread / TEAM_TOLERANCES["face_scale"]) if complete else 0.0,  # type: ignore[operator]
        "eye_line": math.exp(-eye_spread / TEAM_TOLERANCES["eye_line"]) if complete else 0.0,  # type: ignore[operator]
    }
    return TeamConsistency(
        score=float(np.mean(list(components.values()))),
        backdrop_delta_e=delta_e,
        face_scale_spread=scale_spread,
        eye_line_spread=eye_spread,
        components=components,
        people=people,
        notes=notes,
    )


@dataclass
class TeamExport:
    """Result of :func:`export_team`."""

    images: dict[str, ExportedImage]
    consistency: TeamConsistency
    zip_path: Path | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "images": {name: image.to_dict() for name, image in self.images.items()},
            "consistency": self.consistency.to_dict(),
            "zip": None if self.zip_path is None else str(self.zip_path),
        }


def export_team(
    people: Mapping[str, Any],
    out_dir: str | Path,
    guide: StyleGuide | None = None,
    *,
    format: str = "jpeg",
    kind: str = "retouched",
    backend: str | None = None,
    zip_name: str | None = None,
    quality: int = 95,
    c2pa: C2PACredentials | bool | None = None,
) -> TeamExport:
    """Apply one :class:`StyleGuide` to everyone, write the files with disclosure, score consistency."""
    guide = guide or StyleGuide()
    fmt = image_format("", format)
    out = Path(out_dir)
    images: dict[str, ExportedImage] = {}
    measures: list[PortraitMeasure] = []
    circle = guide.spec.circle  # a round team crop is cut round (transparent outside), as for one person
    file_format = circle_format(fmt) if circle else fmt
    for name, source in people.items():
        styled = apply_style(source, guide, backend=backend)
        written = styled.pixels
        notes = list(styled.plan.notes)
        if circle:
            written = np.dstack([written, circle_alpha((written.shape[1], written.shape[0]))])
            if file_format != fmt:
                notes.append(CIRCLE_AS_PNG.format(format=fmt))
        path = out / f"{_safe_stem(name)}_{guide.name}_{styled.crop}{EXTENSIONS[file_format]}"
        save_with_provenance(written, path, kind, format=file_format, quality=quality, c2pa=c2pa)
        images[name] = ExportedImage.from_plan(
            styled.plan,
            written,
            path,
            crop=styled.crop,
            format=file_format,
            kind=kind,
            source=name,
            notes=notes,
        )
        measures.append(measure_portrait(styled.pixels, name, backend=backend))
    result = TeamExport(images=images, consistency=team_consistency(measures))
    if zip_name:
        result.zip_path = zip_exports([image.path for image in images.values()], out / zip_name)
    return result


__all__ = [
    "CROPS",
    "CROP_NAMES",
    "FORMAT_CHOICES",
    "ColourGrade",
    "CropPlan",
    "CropSpec",
    "Cropped",
    "ExportError",
    "ExportResult",
    "ExportedImage",
    "FaceGeometry",
    "PortraitMeasure",
    "PrintDetail",
    "StyleGuide",
    "TeamConsistency",
    "TeamExport",
    "apply_style",
    "backdrop_lab",
    "circle_alpha",
    "crop_image",
    "export_headshots",
    "export_team",
    "extend_backdrop",
    "find_face",
    "format_name",
    "get_crop",
    "measure_portrait",
    "plan_crop",
    "print_crop",
    "print_detail",
    "render_crop",
    "replace_backdrop",
    "team_consistency",
    "zip_exports",
]
