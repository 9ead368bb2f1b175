"""The source-photo checklist: is each selfie usable for training, and is the set good as a whole?

``check_photos(photos)`` decodes every photo once, finds the faces on one downscaled copy, crops
the face from the full-resolution pixels only to measure sharpness, and returns a
:class:`CaptureReport`: one :class:`PhotoReport` per photo (problems with a stable ``code``, a
``message`` and a concrete ``fix``, plus the measurements behind them) and a :class:`SetReport`
(count, near-duplicates, pose and lighting variety, a different person among the photos). A file
that cannot be read becomes an entry with its :class:`~headshot_lab.errors.ImageError` code; the
other photos are still checked.

Two severities. **Blocking** (``error``: the photo is left out of training and retouch): the file can't be read,
no face, several people, the face hidden (eyes covered, blown out or lost in shadow) or cut off, far too small or
blurred to make out, or not the same person as the rest of the set. **Advisory** (``warning``: shown with its
fix, never blocks training): a bit soft, grainy, small (with the real cause: the photo's resolution or the
distance), a colour cast, no colour, eyes closed, head turned, an extreme expression. The sharpness, noise and
colour-cast limits are calibrated on a labelled set (:mod:`headshot_lab.testing.checklist_calibration`, README "The capture checklist").

Per-photo codes:

=================  ========  ==============================================================
code               severity  measured as
=================  ========  ==============================================================
*ImageError code*  error     :func:`headshot_lab.io.load_photo` refused the file
                             (``truncated_image``, ``not_an_image``, …); ``unreadable`` for
                             an array or object that is not an image
``no_face``        error     the face backend found no face
``multiple_faces`` error     another face at least ``companion_face_ratio`` × as wide
``face_too_small`` warning   face box width < ``min_face_px`` original pixels (the fix names the cause:
                             a low-resolution photo when the face already fills ≥ 25 % of the frame,
                             else the distance); ``error`` below ``min_face_px_blocking``
``face_cut_off``   error     the face box grown by ``cutoff_margin`` (or a landmark) leaves
                             the frame
``soft``           warning   :func:`face_sharpness` (fine/coarse detail ratio of the face at
                             the fixed ``sharpness_size``) < ``min_sharpness``
``blurry``         error     :func:`face_sharpness` < ``min_sharpness_blocking``
``grainy``         warning   :func:`face_noise` (wavelet σ of the face at ``sharpness_size``) >
                             ``max_face_noise``
``overexposed``    error     fraction of face pixels with a channel ≥ ``clip_high``
``underexposed``   error     99th percentile of the photo's luma, or face shadow clipping
``color_cast``     warning   chroma of the white patch (brightest unclipped pixels)
``heavy_filter``   warning   no colour anywhere (99th percentile chroma): black-and-white; the
                             skin tone can't be checked in it (the set is blocked only when no
                             usable photo has colour: ``no_colour``)
``eyes_covered``   error     an eye region dark *and* flat compared with the cheeks
``eyes_closed``    warning   mean eye aspect ratio of the face mesh
``head_turned``    warning   ``|yaw|``, ``|pitch|`` or ``|roll|`` of the face mesh too large
``expression``     warning   mouth aspect ratio of the face mesh (wide-open mouth)
``analysis_failed`` error    an unexpected failure while analysing this one photo
``animated``       warning   the file holds several frames or pages (GIF/WebP/PNG animation,
                             multi-page TIFF); only the first is checked and used
=================  ========  ==============================================================

Per-set codes: ``too_few_photos`` (no usable photo: error; fewer than 15: warning),
``too_many_photos``, ``near_duplicate`` (perceptual hash, :mod:`imagehash`), ``low_pose_variety``,
``low_lighting_variety``, ``no_colour`` (error: no usable photo has colour, so the skin tone would be
guessed), ``different_person`` (identity clustering, :func:`_identity_outliers`: with a majority
identity the other photos get a per-photo ``different_person`` error and are left out, a warning names
them; with no majority every photo gets the error and the set is blocked).

Not checked, on purpose (no guess is shipped where a measurement could not be validated):

* glasses worn in some photos but not others, and a beard that comes and goes: none of the real
  test photos shows one person both with and without glasses or a beard, so a detector (edge
  energy on the nose bridge; dark low-chroma texture on the chin) could not be validated;
* skin-smoothing ("beauty") filters: high-pass texture on the cheeks measured 5.4–8.9 on real
  faces but 1.9–8.1 after a strong bilateral filter — the ranges overlap (the blur check still
  catches real blur);
* over-saturation filters: the 99th-percentile chroma of real photos (47–75) overlaps that of
  photos saturated ×1.8 (74–91).

Fairness: no check compares the face's *absolute* brightness or colour with a fixed value, because
that would flag darker skin as "under-exposed" or "low contrast". Exposure uses clipping and the
brightest part of the *whole* photo; sharpness is the ratio of the face's own fine to coarse detail
at one fixed face size (a darker or lower-contrast face scores the same); noise is an absolute grain
level, which a darker face (less texture) can only lower; eye checks compare the eyes with the same
person's cheeks.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from headshot_lab.analysis import (
    AnalysisOptions,
    FaceFinder,
    PhotoAnalysis,
    colour_stats,
    decode_image,
    downscale,
    eye_region_stats,
    face_exposure_stats,
    face_mesh_near,
    face_sharpness,
    image_exposure_stats,
    luma,
    measure_faces,
    prepare_photo,
    significant_faces,
)
from headshot_lab.config import resolve_options
from headshot_lab.errors import ImageError, ModelUnavailableError

if TYPE_CHECKING:
    from headshot_lab.faces.base import FaceBackend
    from headshot_lab.skin import SkinTone

logger = logging.getLogger(__name__)

Severity = Literal["error", "warning"]
ProgressCallback = Callable[[int, int], None]


# ================================================================================================
# Thresholds: the one place every limit lives.
#
# Defaults were set by measuring the real test photos (headshot_lab.testing.photos: obama, obama2,
# obama3, obama_partial, biden, astronaut, group) and altered copies of them with the dlib backend
# and the mediapipe mesh (2026-11-23). "real" = the unaltered photos of one person in frame.
# ================================================================================================


@dataclass(frozen=True)
class CaptureThresholds:
    """Every limit of the checklist, with its unit and the measurement behind its default.

    Override any field: ``check_photos(photos, thresholds=CaptureThresholds(min_face_px=300))`` or
    ``thresholds={"min_face_px": 300}``.
    """

    # --- analysis ------------------------------------------------------------------------------
    # px; longer side of the one downscaled copy all face work runs on (~0.1 s of dlib HOG). The fast
    # pass finds faces ≥ 80 px there (≥ 8 % of the longer side); photos where it finds none get a
    # second, upsampled pass (faces ≥ 5 % of the longer side, e.g. 200 px of a 4000 px photo).
    analysis_side: int = 1024

    # --- framing -------------------------------------------------------------------------------
    # px of the ORIGINAL photo, face-box width (dlib box ≈ brow-to-chin, ~0.7× the head width).
    # Advisory "small" below this: SD1.5 trains at 512 px with the head ~55 % of the crop ≈ a 200 px
    # box, so a face under 128 px is upscaled more than 1.6× and trains soft. Real photos: 207–325 px;
    # the same photos at 640 px: 79–162; a 640 × 360 video still with the face at 45 % of its height:
    # 162 (obama); astronaut 88.
    min_face_px: int = 128
    # px; blocking below this: too few pixels to see the eyes or to measure anything on the face
    # (the face mesh and the landmarks stop being reliable; the sharpness crop is upsampled).
    min_face_px_blocking: int = 64
    # ratio; a second face counts as "another person" when its box is at least this × the width of
    # the main face. Background detections seen: 52 px next to a 287 px face (0.18); a pasted-in
    # second person 198 vs 240 px (0.83); the group photo's faces 0.69–1.0.
    companion_face_ratio: float = 0.4
    # × face-box width; the box grown by this on every side must stay inside the photo (room for
    # the chin and brows). obama_partial: box at x = 0 and jaw landmarks at x = −6 px → cut off.
    cutoff_margin: float = 0.05

    # --- sharpness -----------------------------------------------------------------------------
    # px; the fixed face size the sharpness is measured at (see face_sharpness): every face at least
    # this wide (box + 10 %) is area-averaged down to it, so the score does not depend on how many
    # pixels the face has.
    sharpness_size: int = 96
    # unitless (face_sharpness). Below: the advisory "soft". Calibrated by
    # headshot_lab.testing.checklist_calibration (README "The capture checklist"): the real photos and
    # their realistic variants (72, soft studio light included) score 127–345; Gaussian blur σ = 1 % of the face width 51–78, a
    # 6 % motion blur 30–55 (chosen 99.3; TPR 1.0, FPR 0 on that set).
    min_sharpness: float = 100.0
    # unitless. Below: blocking "blurry" (the face can't be made out). Gaussian σ = 2.5 %: 13–27;
    # motion 15 %: 21–39; nothing of advisory severity (≥ 29.6) is blocked (chosen 29.1).
    min_sharpness_blocking: float = 29.0
    # grey levels (0–255), face_noise: the wavelet noise σ of the face at the fixed sharpness_size.
    # Above: the advisory "grainy". The real photos and their variants 1.1–2.8; Gaussian noise
    # σ = 20 on the photo 3.8–6.3 (chosen 3.2; σ = 10 reads 2.6–3.6 and is left alone).
    max_face_noise: float = 3.2

    # --- exposure ------------------------------------------------------------------------------
    # 8-bit value; a pixel with any channel ≥ this is a clipped highlight.
    clip_high: int = 250
    # 8-bit value; a pixel with every channel ≤ this is a clipped shadow.
    clip_low: int = 8
    # fraction of face pixels with a clipped highlight. Real: ≤ 0.006; brightened ×1.6: 0.23–0.76,
    # ×2: 0.64–0.88.
    max_face_highlight_clip: float = 0.10
    # fraction of face pixels with clipped shadows. Real: ≤ 0.004; darkened ×0.25: ≤ 0.006. This
    # only catches crushed blacks on the face (e.g. a strong backlight); the p99 rule catches dark photos.
    max_face_shadow_clip: float = 0.20
    # 8-bit luma; if even the brightest 1 % of the photo is darker than this, the photo is
    # under-exposed. Real: 224–255; darkened ×0.5: 117–127 (one stop: passes); ×0.3: 70–76; ×0.25:
    # 59–63. Deliberately NOT the face's median, which is low for dark skin in perfect light (the
    # Monk 10 swatch has luma ≈ 36).
    min_image_p99_luma: float = 100.0

    # --- colour --------------------------------------------------------------------------------
    # percentile of L* above which unclipped pixels form the "white patch" (what should be neutral).
    white_patch_percentile: float = 95.0
    # CIELAB chroma √(a*² + b*²) of the white patch's mean. Calibrated (README "The capture
    # checklist"): the real photos and their variants, including a mild white-balance error (5000 K,
    # 7500 K) and video-still crops, 0.7–16.0; uncorrected tungsten (3200 K) 31–46; green / magenta
    # tint (×0.7) 18–24; deep shade (15000 K) 9–21.5 (chosen 16.8; TPR 0.96, FPR 0). A scene without
    # anything white or grey (a yellow wall in sun) can read as a cast: advisory only.
    max_cast_chroma: float = 16.5
    # CIELAB chroma; if the 99th percentile of the photo's chroma is below this there is no colour
    # at all (black-and-white). Real: 47–75; greyscale: 0. Kept low because dark skin has little
    # chroma (the Monk 10 swatch: 3.8).
    min_colour_p99_chroma: float = 4.0

    # --- eyes, expression, pose -------------------------------------------------------------------
    # ratio; an eye is covered when its region's median luma is below this × the cheeks' median…
    # Real eyes: 0.58–0.90 (0.42 on a photo rotated by 30°); painted sunglasses: 0.10–0.19.
    max_eye_darkness: float = 0.45
    # …and its (p95 − p5) luma range is below this × the cheeks' median (flat, no eye white).
    # Real eyes: 0.66–1.20; painted sunglasses: 0.0. Requiring both keeps deep-set or shadowed eyes
    # (dark but with a bright sclera) from being called covered.
    max_eye_contrast: float = 0.35
    # mean eye aspect ratio of the two eyes (mesh, Soukupová & Čech). Real: 0.20–0.35 per eye (mean
    # 0.20 lowest, obama); eyes painted shut: 0.03–0.12. Narrow open eyes sit near 0.2 (people differ
    # by eye shape), hence the margin and the warning severity.
    min_eye_openness: float = 0.14
    # mouth aspect ratio (mesh inner-lip gap / mouth width). Real: 0.00–0.43 (obama2, mid-speech,
    # 0.43); jaw dropped by 0.35 eye-distances: 0.24–0.67. Only a shout or a yawn goes above.
    max_mouth_openness: float = 0.55
    # degrees, mesh head pose. Real (and mirrored): yaw −15…+16, pitch −12…+16, roll −12…+13.
    max_yaw: float = 30.0
    max_pitch: float = 25.0
    # obama rotated by 25° / 30° reads 25.7° / 30.8° (dlib's HOG still finds faces up to ~30°).
    max_roll: float = 20.0

    # --- the set -------------------------------------------------------------------------------
    # usable photos; fewer than this is an error (nothing to train on).
    min_photos: int = 1
    # usable photos; fewer is a warning ("15–20 recommended" for a DreamBooth-LoRA of one person).
    recommended_photos: int = 15
    # usable photos; more is a warning (more near-identical shots slow training, add nothing).
    max_photos: int = 20
    # bits of 64 (pHash Hamming distance). Same shot re-encoded / resized / ±20 % brightness: 0–4;
    # 2 % crop: 4–6; 3° rotation: 4–10; 5 % crop: 8–14; distinct real photos: 20–38 (all 21 pairs).
    max_duplicate_distance: int = 10
    # usable photos; pose and lighting variety are judged only from this many on.
    variety_min_photos: int = 5
    # degrees; √(var(yaw) + var(pitch)) over the usable photos. obama/obama2/obama3: 14.0 (16.1
    # with two of them mirrored); five crops of one photo: 0.5.
    min_pose_spread: float = 4.0
    # CIELAB L*; standard deviation of the face's median L* over the usable photos. obama/obama2/
    # obama3: 7.5; five crops of one photo: 0.02. (One person's skin is constant, so the spread is
    # the light.)
    min_lighting_spread: float = 2.0
    # cosine; a photo whose median cosine to the other photos' embeddings is below this shows a
    # different person. ``None``: the encoder's measured default (:data:`SAME_PERSON_MIN_COSINE`);
    # an encoder without one skips the check (and says so in the set metrics).
    same_person_min_cosine: float | None = None

    def with_overrides(self, **changes: Any) -> CaptureThresholds:
        """A copy with ``changes`` applied (unknown names raise ``TypeError``)."""
        return dataclasses.replace(self, **changes)


#: Measured same-person cut-offs (median cosine of L2-normalised embeddings), per face backend.
#: dlib (ResNet-34, 128-D), measured on the analysis copies: same person 0.954–0.996 (four obama
#: photos and their mirror images), different people 0.79–0.85 (biden, astronaut vs. obama and each
#: other; 0.89 for the astronaut vs. the group photo's largest face). dlib's raw descriptors have a
#: norm of ≈ 1.4, so its usual same-person rule (raw L2 < 0.6) is ≈ 0.90 in this cosine.
SAME_PERSON_MIN_COSINE: dict[str, float] = {"dlib": 0.90}


def resolve_thresholds(thresholds: CaptureThresholds | Mapping[str, Any] | None) -> CaptureThresholds:
    """``None`` → defaults; a mapping → defaults with those fields replaced (unknown names: ``bad_option``)."""
    return resolve_options(CaptureThresholds, thresholds, what="capture threshold")


# ================================================================================================
# Results
# ================================================================================================


#: The measurements in every photo's JSON entry (``None`` when not measured): size, perceptual hash,
#: exposure, colour, face size and framing, sharpness, eyes, pose, mouth, identity similarity.
PHOTO_METRIC_KEYS: tuple[str, ...] = (
    "width",
    "height",
    "hash",
    "image_luma_p99",
    "image_luma_median",
    "colour_p99_chroma",
    "cast_a",
    "cast_b",
    "cast_chroma",
    "face_px",
    "face_fraction",
    "face_score",
    "cut_off_edges",
    "sharpness",
    "noise",
    "face_luma_median",
    "face_highlight_clip",
    "face_shadow_clip",
    "face_lightness",
    "eye_darkness",
    "eye_contrast",
    "yaw",
    "pitch",
    "roll",
    "eye_openness",
    "mouth_openness",
    "identity_similarity",
)


@dataclass(frozen=True)
class Problem:
    """One thing to fix: a stable ``code`` for programs, a ``message`` and a ``fix`` for people."""

    code: str
    message: str
    fix: str
    severity: Severity = "error"

    def to_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message, "fix": self.fix, "severity": self.severity}


def animation_warning(name: str, frames: int, image_format: str | None) -> Problem | None:
    """The ``animated`` warning for a file of several frames or pages (only the first is used), else ``None``.

    An MPO (a camera's multi-picture JPEG) is exempt: its extra frames are the camera's other views.
    """
    if frames <= 1 or image_format == "MPO":
        return None
    return Problem(
        "animated",
        f"{Path(name).name}: the file holds {frames} frames (an animation or several pages); "
        "only the first one is checked and used.",
        "If the first frame is not the photo you meant, save that photo as a still JPEG or PNG.",
        "warning",
    )


@dataclass
class PhotoReport:
    """The checklist result for one photo.

    Attributes:
        path: the path as given, the :class:`~headshot_lab.io.Photo` name, or ``photo-<n>``.
        ok: no ``error`` problem (warnings allowed): the photo can be used for training.
        faces: faces counted (detections at least ``companion_face_ratio`` × the main face's width).
        problems: what to fix, errors first.
        metrics: the measurements (``face_px``, ``sharpness``, ``yaw`` …); JSON-safe, ``None`` when
            not measurable.
        box: the main face ``(left, top, right, bottom)`` in original pixels, or ``None``.
        embedding: the main face's identity embedding (not serialised).
        skin: the main face's skin tone, measured only by ``check_photos(..., skin=True)`` (then
            serialised as ``"skin"``); ``None`` otherwise or when too little coloured skin shows.
    """

    path: str
    ok: bool
    faces: int = 0
    problems: list[Problem] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    box: tuple[int, int, int, int] | None = None
    embedding: np.ndarray | None = field(default=None, repr=False, compare=False)
    skin: SkinTone | None = field(default=None, repr=False, compare=False)

    @property
    def codes(self) -> list[str]:
        return [p.code for p in self.problems]

    def add(self, problem: Problem) -> None:
        """Add a problem (keeping errors before warnings) and update ``ok``."""
        self.problems.append(problem)
        self.problems.sort(key=lambda p: p.severity != "error")
        self.ok = not any(p.severity == "error" for p in self.problems)

    def discard(self, code: str) -> None:
        """Remove every problem with ``code`` and update ``ok``."""
        self.problems = [p for p in self.problems if p.code != code]
        self.ok = not any(p.severity == "error" for p in self.problems)

    def to_dict(self) -> dict[str, Any]:
        """``{"path", "ok", "faces", "problems": [{"code", "message", "fix", "severity"}], "box", ...metrics}``.

        Every key of :data:`PHOTO_METRIC_KEYS` is present (``None`` when not measured), so the JSON
        has the same shape for every photo.
        """
        return {
            "path": self.path,
            "ok": self.ok,
            "faces": self.faces,
            "problems": [p.to_dict() for p in self.problems],
            "box": list(self.box) if self.box is not None else None,
            **dict.fromkeys(PHOTO_METRIC_KEYS),
            **self.metrics,
            **({"skin": self.skin.to_dict()} if self.skin is not None else {}),
        }


@dataclass
class SetReport:
    """The checklist result for the set as a whole (``ok``: no ``error`` problem)."""

    ok: bool
    problems: list[Problem] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def codes(self) -> list[str]:
        return [p.code for p in self.problems]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "problems": [p.to_dict() for p in self.problems], **self.metrics}


@dataclass
class CaptureReport:
    """Per-photo reports plus the set report. ``ok``: every photo and the set are free of errors."""

    photos: list[PhotoReport]
    set: SetReport

    @property
    def ok(self) -> bool:
        return self.set.ok and all(photo.ok for photo in self.photos)

    @property
    def usable(self) -> list[PhotoReport]:
        """The photos that can be used for training."""
        return [photo for photo in self.photos if photo.ok]

    def to_dict(self) -> dict[str, Any]:
        """The CLI/JSON contract: ``{"photos": [{"path", "ok", "faces", "problems", ...}], "set": {"ok", "problems", ...}}``."""
        return {"photos": [photo.to_dict() for photo in self.photos], "set": self.set.to_dict()}


# ================================================================================================
# Measurements (pure functions on pixels and landmarks)
# ================================================================================================


# dlib / iBUG 68-point indices.
def _cast_name(a_star: float, b_star: float) -> str:
    """Plain name of a CIELAB hue angle ``h = atan2(b*, a*)``."""
    hue = float(np.degrees(np.arctan2(b_star, a_star))) % 360.0
    for upper, name in ((30, "pink-magenta"), (70, "orange"), (110, "yellow"), (200, "green"), (300, "blue")):
        if hue < upper:
            return name
    return "pink-magenta"


# ================================================================================================
# Per-photo analysis
# ================================================================================================


@dataclass
class _Prepared:
    """One photo decoded, downscaled and measured as a whole (or the problem that stopped it)."""

    name: str
    photo: PhotoAnalysis | None = None
    problem: Problem | None = None
    notes: list[Problem] = field(default_factory=list)


def _name_of(item: Any, index: int) -> str:
    from headshot_lab.io import Photo

    if isinstance(item, str | Path):
        return str(item)
    if isinstance(item, Photo):
        return item.name
    return f"photo-{index + 1}"


def _decode_problem(exc: BaseException, name: str) -> Problem:
    """The problem that says why a photo could not be decoded."""
    if isinstance(exc, ImageError):
        return Problem(exc.code, exc.message, exc.fix, "error")
    return Problem(
        "unreadable",
        f"{Path(name).name}: this is not a usable image ({exc}).",
        "Upload a JPEG, PNG, WebP or HEIC photo straight from your camera or phone.",
    )


def _prepare(item: Any, name: str, limits: CaptureThresholds) -> _Prepared:
    """Decode once, downscale once, and measure what needs no face (hash, colour, exposure).

    Runs in the prefetch thread; everything here is numpy/OpenCV/Pillow work that mostly releases
    the GIL, so it overlaps with the face work on the previous photo.
    """
    try:
        pixels, frames, image_format = decode_image(item, name, min_side=None)
    except (ImageError, ValueError, TypeError, OSError) as exc:
        return _Prepared(name, problem=_decode_problem(exc, name))
    animated = animation_warning(name, frames, image_format)
    try:
        photo = prepare_photo(pixels, name, AnalysisOptions.from_limits(limits))
    except Exception as exc:  # an odd image must not stop the other photos
        logger.exception("capture preparation failed for %s", name)
        return _Prepared(name, problem=_analysis_failed(exc))
    return _Prepared(name, photo, notes=[animated] if animated is not None else [])


def _analysis_failed(exc: BaseException) -> Problem:
    return Problem(
        "analysis_failed",
        f"This photo could not be analysed ({type(exc).__name__}: {exc}).",
        "Re-export the photo as a standard JPEG and upload it again; if it keeps failing, leave it out.",
    )


def cut_off_edges(
    box: Sequence[float], landmarks: np.ndarray | None, width: int, height: int, margin: float
) -> list[str]:
    """Which frame edges the face (box grown by ``margin`` × its width, or any landmark) crosses."""
    left, top, right, bottom = (float(v) for v in box)
    grow = margin * (right - left)
    low = np.array([left - grow, top - grow])
    high = np.array([right + grow, bottom + grow])
    if landmarks is not None and len(landmarks):
        low = np.minimum(low, landmarks.min(axis=0))
        high = np.maximum(high, landmarks.max(axis=0))
    edges = []
    if low[0] < 0:
        edges.append("left")
    if high[0] > width:
        edges.append("right")
    if low[1] < 0:
        edges.append("top")
    if high[1] > height:
        edges.append("bottom")
    return edges


def analyze_photo(
    item: Any,
    *,
    name: str | None = None,
    backend: FaceBackend | str | None = None,
    thresholds: CaptureThresholds | Mapping[str, Any] | None = None,
    skin: bool = False,
) -> PhotoReport:
    """Check one photo (path, bytes, :class:`~headshot_lab.io.Photo`, array or PIL image).

    Never raises for a bad photo: an unreadable file or a failure inside the analysis becomes a
    problem in the report. Raises only when the tools themselves are missing
    (:class:`~headshot_lab.errors.ModelUnavailableError`).
    """
    limits = resolve_thresholds(thresholds)
    prepared = _prepare(item, name or _name_of(item, 0), limits)
    return _analyze_prepared(prepared, FaceFinder(backend, limits.analysis_side), limits, skin=skin)


def _analyze_prepared(
    prepared: _Prepared, finder: FaceFinder, limits: CaptureThresholds, *, skin: bool = False
) -> PhotoReport:
    photo = prepared.photo
    report = PhotoReport(path=prepared.name, ok=True, metrics={} if photo is None else dict(photo.metrics))
    if prepared.problem is not None or photo is None:
        report.add(prepared.problem or Problem("unreadable", f"{prepared.name}: no pixels.", "Upload the photo again."))
        return report
    try:
        measure_faces(photo, finder, AnalysisOptions.from_limits(limits, skin=skin))
        judge_record(photo, limits, report)
    except ModelUnavailableError:
        raise
    except Exception as exc:  # one odd photo must not stop the other 19
        logger.exception("capture analysis failed for %s", prepared.name)
        report.add(_analysis_failed(exc))
        return report
    for problem in [*photo_problems(report.metrics, limits, report.faces), *prepared.notes]:
        report.add(problem)
    return report


def judge_record(photo: PhotoAnalysis, limits: CaptureThresholds, report: PhotoReport) -> None:
    """Fill ``report``'s face fields from the record: ``faces``, ``box``, face metrics, ``embedding``, ``skin``."""
    report.faces = photo.face_count
    face = photo.primary
    if face is None:
        return
    width, height = photo.width, photo.height
    box = tuple(round(v) for v in photo.box_original(face))
    report.box = (min(box[0], width), min(box[1], height), min(box[2], width), min(box[3], height))
    # the record's per-face numbers that the checklist reports (the selection's own extras stay out of its JSON)
    report.metrics.update({key: value for key, value in face.metrics.items() if key in PHOTO_METRIC_KEYS})
    landmarks = None if face.landmarks68 is None else face.landmarks68 / photo.scale
    report.metrics["cut_off_edges"] = cut_off_edges(
        photo.box_original(face), landmarks, width, height, limits.cutoff_margin
    )
    report.embedding = face.embedding
    report.skin = face.tone


#: A rule of the checklist: ``check(metrics, limits, faces) -> Problem | None`` (pure: no pixels).
Check = Callable[[Mapping[str, Any], CaptureThresholds, int], Problem | None]


def _underexposed(m: Mapping[str, Any], limits: CaptureThresholds, faces: int) -> Problem | None:
    if m.get("image_luma_p99") is not None and m["image_luma_p99"] < limits.min_image_p99_luma:
        return Problem(
            "underexposed",
            f"The photo is too dark: even its brightest parts reach only {m['image_luma_p99']:.0f} of 255.",
            "Retake facing a window in daylight, or switch on more lights in front of you.",
        )
    if m.get("face_shadow_clip") is not None and m["face_shadow_clip"] > limits.max_face_shadow_clip:
        return Problem(
            "underexposed",
            f"{m['face_shadow_clip']:.0%} of your face is lost in black shadow.",
            "Retake facing a window in daylight, or with a light in front of you rather than behind.",
        )
    return None


def _colour(m: Mapping[str, Any], limits: CaptureThresholds, faces: int) -> Problem | None:
    if m.get("colour_p99_chroma") is not None and m["colour_p99_chroma"] < limits.min_colour_p99_chroma:
        return Problem(
            "heavy_filter",
            "The photo has no colour (black-and-white or a monochrome filter), so your skin tone can't be "
            "checked in it; it is still used for your face's shape.",
            "If you have it, use the original colour photo, without filters.",
            "warning",
        )
    if m.get("cast_chroma") is not None and m["cast_chroma"] > limits.max_cast_chroma:
        hue = _cast_name(m["cast_a"], m["cast_b"])
        return Problem(
            "color_cast",
            f"The photo has a strong {hue} colour cast (white-patch chroma {m['cast_chroma']:.0f}; "
            f"above {limits.max_cast_chroma:.0f} counts as strong): your skin tone may be learned a little off. "
            "The photo can still be used.",
            "If you can, retake it in daylight (coloured or warm bulbs off) and without colour filters.",
            "warning",
        )
    return None


def _multiple_faces(m: Mapping[str, Any], limits: CaptureThresholds, faces: int) -> Problem | None:
    if faces <= 1:
        return None
    return Problem(
        "multiple_faces",
        f"{faces} faces were found; the photo must show only you.",
        "Pick a photo where you are alone, or crop the other people out.",
    )


#: Share of the photo's shorter side above which a small face is the photo's resolution, not the distance.
_FILLS_FRAME = 0.25


def _face_too_small(m: Mapping[str, Any], limits: CaptureThresholds, faces: int) -> Problem | None:
    """``face_too_small``: advisory below ``min_face_px``, blocking below ``min_face_px_blocking``.

    The fix names the cause: when the face already fills ≥ 25 % of the frame's shorter side the photo itself
    has too few pixels (a video still, a screenshot, a thumbnail); otherwise the person stood too far away.
    """
    px = m["face_px"]
    if px >= limits.min_face_px:
        return None
    blocking = px < limits.min_face_px_blocking
    share = m.get("face_fraction") or 0.0
    size = f"{m['width']}×{m['height']}" if m.get("width") and m.get("height") else "small"
    if share >= _FILLS_FRAME:
        cause = (
            f"Your face already fills {share:.0%} of the frame, but the photo itself is only {size} pixels, "
            f"so your face is {px} px wide"
        )
        fix = (
            "Moving closer won't help: upload the original photo from your camera or phone at full resolution, "
            "not a video still, a screenshot or a thumbnail."
        )
    else:
        cause = f"You are far from the camera: your face is {px} px wide, only {share:.0%} of the frame"
        fix = "Move closer, so that your face fills about a third of the frame (or use the full-resolution original)."
    need = limits.min_face_px_blocking if blocking else limits.min_face_px
    effect = "too few pixels to see your face" if blocking else "training will learn a soft face"
    return Problem(
        "face_too_small",
        f"{cause} ({effect}; at least {need} px is {'needed' if blocking else 'recommended'}).",
        fix,
        "error" if blocking else "warning",
    )


def _face_cut_off(m: Mapping[str, Any], limits: CaptureThresholds, faces: int) -> Problem | None:
    if not m.get("cut_off_edges"):
        return None
    return Problem(
        "face_cut_off",
        f"Part of your face is outside the photo ({' and '.join(m['cut_off_edges'])} edge).",
        "Retake with your whole head inside the frame and a little space around it.",
    )


def _blurry(m: Mapping[str, Any], limits: CaptureThresholds, faces: int) -> Problem | None:
    """``blurry`` (blocking) below ``min_sharpness_blocking``, ``soft`` (advisory) below ``min_sharpness``.

    Not judged for a face narrower than the sharpness crop (it would be upsampled, which reads as blur): the
    ``face_too_small`` problem already names the real cause.
    """
    score = m.get("sharpness")
    if score is None or 1.2 * m["face_px"] < limits.sharpness_size or score >= limits.min_sharpness:
        return None
    if score < limits.min_sharpness_blocking:
        return Problem(
            "blurry",
            f"Your face is too blurred to make out (sharpness {score:.0f}; at least "
            f"{limits.min_sharpness_blocking:.0f} is needed, sharp photos score {limits.min_sharpness:.0f} or more).",
            "Retake with the phone held steady (or leaned on something), tap your face to focus, and use more light.",
        )
    return Problem(
        "soft",
        f"Your face is a bit soft (sharpness {score:.0f}; sharp photos score {limits.min_sharpness:.0f} or more). "
        "The photo can still be used.",
        "If you can, retake it with the phone held steady, focused on your face, in good light.",
        "warning",
    )


def _grainy(m: Mapping[str, Any], limits: CaptureThresholds, faces: int) -> Problem | None:
    """``grainy`` (advisory): the face is noisy at the size training sees it (usually too little light)."""
    noise = m.get("noise")
    if noise is None or noise <= limits.max_face_noise:
        return None
    return Problem(
        "grainy",
        f"Your face looks grainy (noise {noise:.1f}; clean photos stay under {limits.max_face_noise:.1f}), "
        "usually from too little light. The photo can still be used.",
        "If you can, retake it in brighter light (daylight from a window is best).",
        "warning",
    )


def _overexposed(m: Mapping[str, Any], limits: CaptureThresholds, faces: int) -> Problem | None:
    if m.get("face_highlight_clip") is None or m["face_highlight_clip"] <= limits.max_face_highlight_clip:
        return None
    return Problem(
        "overexposed",
        f"{m['face_highlight_clip']:.0%} of your face is blown out to pure white.",
        "Retake out of direct sun and without flash; soft daylight from a window is best.",
    )


def _eyes_covered(m: Mapping[str, Any], limits: CaptureThresholds, faces: int) -> Problem | None:
    covered = _covered_eyes(m, limits)
    if not covered:
        return None
    which = "Both eyes look" if len(covered) == 2 else "One eye looks"
    return Problem(
        "eyes_covered",
        f"{which} covered (sunglasses, hair or a hand).",
        "Take off sunglasses and keep hair and hands away from your eyes.",
    )


def _eyes_closed(m: Mapping[str, Any], limits: CaptureThresholds, faces: int) -> Problem | None:
    openness = m.get("eye_openness")
    if _covered_eyes(m, limits) or openness is None or float(np.mean(openness)) >= limits.min_eye_openness:
        return None  # covered eyes are reported as covered, not closed
    return Problem(
        "eyes_closed",
        f"Your eyes look closed (openness {float(np.mean(openness)):.2f}; open eyes are about 0.2–0.35).",
        "Retake with your eyes open, looking at the camera.",
        "warning",
    )


def _head_turned(m: Mapping[str, Any], limits: CaptureThresholds, faces: int) -> Problem | None:
    turned = [
        f"{what} {abs(m[key]):.0f}° (limit {limit:.0f}°)"
        for key, limit, what in (
            ("yaw", limits.max_yaw, "turned sideways"),
            ("pitch", limits.max_pitch, "tilted up or down"),
            ("roll", limits.max_roll, "tilted towards a shoulder"),
        )
        if m.get(key) is not None and abs(m[key]) > limit
    ]
    if not turned:
        return None
    return Problem(
        "head_turned",
        f"Your head is {'; '.join(turned)}.",
        "Face the camera more directly: small turns are welcome, strong ones are not.",
        "warning",
    )


def _expression(m: Mapping[str, Any], limits: CaptureThresholds, faces: int) -> Problem | None:
    if m.get("mouth_openness") is None or m["mouth_openness"] <= limits.max_mouth_openness:
        return None
    return Problem(
        "expression",
        f"Your mouth is wide open (openness {m['mouth_openness']:.2f}; limit {limits.max_mouth_openness:.2f}).",
        "Use photos with a relaxed face or a natural smile.",
        "warning",
    )


#: The rules for the whole photo, judged with or without a face (a dark photo often has "no face").
PHOTO_CHECKS: tuple[Check, ...] = (_underexposed, _colour)
#: The rules for the main face, in the order the checklist lists them.
FACE_CHECKS: tuple[Check, ...] = (
    _multiple_faces,
    _face_too_small,
    _face_cut_off,
    _blurry,
    _grainy,
    _overexposed,
    _eyes_covered,
    _eyes_closed,
    _head_turned,
    _expression,
)


def photo_problems(metrics: Mapping[str, Any], limits: CaptureThresholds, faces: int = 1) -> list[Problem]:
    """Judge one photo's ``metrics`` (and its ``faces`` count) against ``limits`` (pure: no pixels needed).

    The rules are :data:`PHOTO_CHECKS` then, when a face was found, :data:`FACE_CHECKS`; without a face
    the ``no_face`` error comes first and the face rules are skipped.
    """
    problems = [p for check in PHOTO_CHECKS if (p := check(metrics, limits, faces)) is not None]
    if metrics.get("face_px") is None:
        no_face = Problem(
            "no_face",
            "No face was found in this photo.",
            "Use a photo of your face, facing the camera in good light, filling about a third of the frame.",
        )
        return [no_face, *problems]
    return problems + [p for check in FACE_CHECKS if (p := check(metrics, limits, faces)) is not None]


def _covered_eyes(m: Mapping[str, Any], limits: CaptureThresholds) -> list[int]:
    darkness, contrast = m.get("eye_darkness"), m.get("eye_contrast")
    if darkness is None or contrast is None:
        return []
    return [
        i
        for i, (dark, flat) in enumerate(zip(darkness, contrast, strict=True))
        if dark < limits.max_eye_darkness and flat < limits.max_eye_contrast
    ]


# ================================================================================================
# The set
# ================================================================================================


def check_set(
    photos: Sequence[PhotoReport],
    thresholds: CaptureThresholds | Mapping[str, Any] | None = None,
    *,
    encoder: str | None = None,
) -> SetReport:
    """Judge the set: count, near-duplicates, pose/lighting variety, a different person.

    Adds a ``different_person`` error to each outlier photo (mutating it) and returns the
    :class:`SetReport`. ``encoder`` is the face backend's name (selects the identity threshold).
    """
    limits = resolve_thresholds(thresholds)
    problems: list[Problem] = []
    metrics: dict[str, Any] = {"count": len(photos)}

    for photo in photos:  # idempotent: a re-check replaces the previous verdict
        photo.discard("different_person")
        photo.metrics.pop("identity_similarity", None)
    outliers, identity = _identity_outliers(photos, limits, encoder)
    metrics.update(identity)
    majority = len(identity.get("identity_majority", []))
    for index in outliers:
        photos[index].add(
            Problem(
                "different_person",
                f"{_label(photos, index)} looks like a different person from the other {majority} photo"
                f"{'s' if majority != 1 else ''} (identity similarity "
                f"{photos[index].metrics['identity_similarity']:.2f}; the same person scores "
                f"{identity['identity_threshold']:.2f} or more), so it is left out of training and retouch.",
                "Use only photos of yourself; remove this one.",
            )
        )
    ambiguous = identity.get("identity_ambiguous", False)
    if ambiguous:
        for photo in photos:
            if photo.embedding is not None:
                photo.add(
                    Problem(
                        "different_person",
                        "Your photos show different people and none of them is in most of the photos, so we "
                        "can't tell which one is you; nothing is trained until that is fixed.",
                        "Upload photos of one person only: you.",
                    )
                )
    if outliers:
        names = ", ".join(_label(photos, i) for i in outliers)
        problems.append(
            Problem(
                "different_person",
                f"{names} {'look' if len(outliers) > 1 else 'looks'} like a different person from the other "
                f"{majority} photo{'s' if majority != 1 else ''}, so {'they are' if len(outliers) > 1 else 'it is'} "
                "left out of training and retouch.",
                "Use only photos of yourself.",
                "warning",
            )
        )
    elif ambiguous:
        problems.append(
            Problem(
                "different_person",
                "These photos show more than one person, and no one is in most of them, so we can't tell "
                "which one is you.",
                "Upload photos of one person only: you.",
            )
        )

    usable = [p for p in photos if p.ok]
    metrics["usable"] = len(usable)
    coloured = [p for p in usable if "heavy_filter" not in p.codes]
    if usable and not coloured:
        problems.append(
            Problem(
                "no_colour",
                "None of your usable photos has colour, so your skin tone would be guessed and could not be "
                "checked afterwards.",
                "Add at least one colour photo of yourself (the original, without a black-and-white filter).",
            )
        )
    if len(usable) < limits.min_photos:
        problems.append(
            Problem(
                "too_few_photos",
                "There is no usable photo yet." if not usable else f"Only {len(usable)} usable photos.",
                f"Add {limits.recommended_photos}–{limits.max_photos} clear photos of yourself "
                "(fix the problems listed for each photo).",
            )
        )
    elif len(usable) < limits.recommended_photos:
        problems.append(
            Problem(
                "too_few_photos",
                f"{len(usable)} usable photo{'s' if len(usable) != 1 else ''}; "
                f"{limits.recommended_photos}–{limits.max_photos} recommended.",
                f"Add {limits.recommended_photos - len(usable)} or more photos with different outfits, "
                "backgrounds, light and head angles.",
                "warning",
            )
        )
    elif len(usable) > limits.max_photos:
        problems.append(
            Problem(
                "too_many_photos",
                f"{len(usable)} usable photos; {limits.recommended_photos}–{limits.max_photos} are enough.",
                f"Keep the {limits.max_photos} most varied ones; more photos slow training without improving it.",
                "warning",
            )
        )

    duplicates = _near_duplicates(photos, limits)
    metrics["near_duplicates"] = [[photos[i].path, photos[j].path, d] for i, j, d in duplicates]
    if duplicates:
        pairs = "; ".join(f"{Path(photos[i].path).name} ≈ {Path(photos[j].path).name}" for i, j, _ in duplicates)
        problems.append(
            Problem(
                "near_duplicate",
                f"Near-identical photos: {pairs}.",
                "Keep one of each pair and add photos with a different pose, outfit, background or light.",
                "warning",
            )
        )

    yaw = [p.metrics["yaw"] for p in usable if p.metrics.get("yaw") is not None]
    pitch = [p.metrics["pitch"] for p in usable if p.metrics.get("pitch") is not None]
    lightness = [p.metrics["face_lightness"] for p in usable if p.metrics.get("face_lightness") is not None]
    pose_spread = float(np.sqrt(np.var(yaw) + np.var(pitch))) if len(yaw) >= 2 else None
    lighting_spread = float(np.std(lightness)) if len(lightness) >= 2 else None
    metrics["pose_spread"] = None if pose_spread is None else round(pose_spread, 2)
    metrics["lighting_spread"] = None if lighting_spread is None else round(lighting_spread, 2)
    if len(yaw) >= limits.variety_min_photos and pose_spread is not None and pose_spread < limits.min_pose_spread:
        problems.append(
            Problem(
                "low_pose_variety",
                f"Your head is at the same angle in every photo (spread {pose_spread:.1f}°).",
                "Add photos turned slightly left and right, and with the chin a little up or down.",
                "warning",
            )
        )
    if (
        len(lightness) >= limits.variety_min_photos
        and lighting_spread is not None
        and lighting_spread < limits.min_lighting_spread
    ):
        problems.append(
            Problem(
                "low_lighting_variety",
                f"Every photo has the same light (face lightness spread {lighting_spread:.1f} L*).",
                "Add photos in other places and light: by a window, outdoors in shade, indoors in the evening.",
                "warning",
            )
        )

    problems.sort(key=lambda p: p.severity != "error")
    return SetReport(ok=not any(p.severity == "error" for p in problems), problems=problems, metrics=metrics)


def _identity_outliers(
    photos: Sequence[PhotoReport], limits: CaptureThresholds, encoder: str | None
) -> tuple[list[int], dict[str, Any]]:
    """Photos that show someone other than the majority identity of the set.

    With ``C`` the cosine matrix of the embedded photos' L2-normalised embeddings and ``t`` the
    same-person cut-off:

    1. the *anchor* is the photo with the most same-person neighbours (``C_ij ≥ t``; ties → the
       higher mean cosine), and its group ``G = {j : C_anchor,j ≥ t}``;
    2. if ``|G| > n / 2`` the set has a majority identity; photo ``i`` is an outlier when
       ``median_{j ∈ G, j ≠ i} C_ij < t`` (the median is also reported as ``identity_similarity``);
    3. otherwise (e.g. two photos of two people, or three people) no one can tell which person is
       "you": nothing is flagged per photo and ``identity_ambiguous`` is set.
    """
    threshold = limits.same_person_min_cosine
    if threshold is None:
        threshold = SAME_PERSON_MIN_COSINE.get(encoder or "")
    info: dict[str, Any] = {"identity_threshold": threshold, "identity_encoder": encoder}
    if threshold is None:
        info["identity_check"] = f"skipped: no measured same-person threshold for encoder {encoder!r}"
        return [], info
    embedded = [i for i, p in enumerate(photos) if p.embedding is not None]
    info.update(identity_outliers=[], identity_ambiguous=False, identity_majority=[])
    if len(embedded) < 2:
        return [], info
    vectors = np.stack([photos[i].embedding for i in embedded]).astype(np.float64)  # type: ignore[misc]
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    cosine = vectors @ vectors.T
    same = cosine >= threshold
    anchor = max(range(len(embedded)), key=lambda r: (int(same[r].sum()), float(cosine[r].mean())))
    group = np.flatnonzero(same[anchor])
    if 2 * len(group) <= len(embedded):
        info["identity_ambiguous"] = True
        return [], info
    flagged = []
    for row, index in enumerate(embedded):
        others = [c for c in group if c != row]
        similarity = float(np.median(cosine[row, others]))
        photos[index].metrics["identity_similarity"] = round(similarity, 4)
        if similarity < threshold:
            flagged.append(index)
    info["identity_outliers"] = [photos[i].path for i in flagged]
    info["identity_majority"] = [photos[embedded[c]].path for c in group]
    return flagged, info


def _label(photos: Sequence[PhotoReport], index: int) -> str:
    """How a message names a photo: its file name, or "photo N" (1-based) for an unnamed one."""
    name = Path(photos[index].path).name
    return f"photo {index + 1}" if not name or name.startswith("photo-") else name


def _near_duplicates(photos: Sequence[PhotoReport], limits: CaptureThresholds) -> list[tuple[int, int, int]]:
    """``(i, j, distance)`` for every pair whose perceptual hashes differ in ≤ ``max_duplicate_distance`` bits."""
    import imagehash

    hashes = [(i, imagehash.hex_to_hash(p.metrics["hash"])) for i, p in enumerate(photos) if p.metrics.get("hash")]
    pairs = []
    for a in range(len(hashes)):
        for b in range(a + 1, len(hashes)):
            distance = int(hashes[a][1] - hashes[b][1])
            if distance <= limits.max_duplicate_distance:
                pairs.append((hashes[a][0], hashes[b][0], distance))
    return pairs


# ================================================================================================
# Entry point
# ================================================================================================


def _items(photos: Iterable[Any] | Mapping[str, Any]) -> list[tuple[str, Any]]:
    """``[(name, source)]`` from a list of sources, ``(name, source)`` pairs, or a ``{name: source}`` mapping."""
    if isinstance(photos, Mapping):
        return [(str(name), source) for name, source in photos.items()]
    from PIL import Image

    from headshot_lab.io import Photo

    if isinstance(photos, str | Path | bytes | bytearray | np.ndarray | Photo | Image.Image):
        photos = [photos]
    items = []
    for index, entry in enumerate(photos):
        if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str):
            items.append((entry[0], entry[1]))
        else:
            items.append((_name_of(entry, index), entry))
    return items


def _prepared_stream(items: list[tuple[str, Any]], limits: CaptureThresholds) -> Iterator[_Prepared]:
    """Prepare the photos in order, one ahead in a background thread (decode/resize release the GIL)."""
    if len(items) < 2:
        for name, source in items:
            yield _prepare(source, name, limits)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="capture-prepare") as pool:
        pending: Future[_Prepared] = pool.submit(_prepare, items[0][1], items[0][0], limits)
        for index in range(len(items)):
            current = pending.result()
            if index + 1 < len(items):
                pending = pool.submit(_prepare, items[index + 1][1], items[index + 1][0], limits)
            yield current


def _progress_reporter(
    progress: ProgressCallback | bool | None, total: int
) -> tuple[ProgressCallback, Callable[[], None]]:
    if progress is True:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="Checking photos", unit="photo")

        def update(done: int, _total: int) -> None:
            bar.n = done
            bar.refresh()

        return update, bar.close
    if callable(progress):
        return progress, lambda: None
    return (lambda done, total: None), lambda: None


def check_photos(
    photos: Iterable[Any] | Mapping[str, Any],
    *,
    backend: FaceBackend | str | None = None,
    thresholds: CaptureThresholds | Mapping[str, Any] | None = None,
    progress: ProgressCallback | bool | None = None,
    skin: bool = False,
) -> CaptureReport:
    """Run the capture checklist on a set of photos.

    Args:
        photos: paths, raw bytes, binary files, :class:`~headshot_lab.io.Photo`, ``(H, W, 3)``
            arrays or PIL images; or ``(name, source)`` pairs; or a ``{name: source}`` mapping.
            A single path/bytes/array is treated as a set of one.
        backend: face backend name or instance (default: the settings' backend, ``dlib``).
        thresholds: :class:`CaptureThresholds`, or a mapping of fields to override.
        progress: ``callback(done, total)`` after each photo, or ``True`` for a tqdm bar (which
            ``gr.Progress(track_tqdm=True)`` shows in the app).
        skin: also measure each face's skin tone (:func:`headshot_lab.skin.measure_skin`: ITA°, Monk)
            into :attr:`PhotoReport.skin`, on the same analysis copy and with the same face mesh as
            the checks (no second decode, detection or mesh; ~15 ms a photo).

    Returns:
        A :class:`CaptureReport`. Unreadable photos are entries with a problem; they never stop
        the others from being checked.
    """
    limits = resolve_thresholds(thresholds)
    model = FaceFinder(backend, limits.analysis_side)
    items = _items(photos)
    update, close = _progress_reporter(progress, len(items))
    reports: list[PhotoReport] = []
    try:
        update(0, len(items))
        for prepared in _prepared_stream(items, limits):
            reports.append(_analyze_prepared(prepared, model, limits, skin=skin))
            prepared.photo = None  # free the pixels before the next photo
            update(len(reports), len(items))
    finally:
        close()
    return CaptureReport(photos=reports, set=check_set(reports, limits, encoder=model.name))


__all__ = [
    "PHOTO_METRIC_KEYS",
    "SAME_PERSON_MIN_COSINE",
    "CaptureReport",
    "CaptureThresholds",
    "PhotoReport",
    "Problem",
    "SetReport",
    "analyze_photo",
    "check_photos",
    "check_set",
    "colour_stats",
    "downscale",
    "eye_region_stats",
    "face_exposure_stats",
    "face_mesh_near",
    "face_sharpness",
    "image_exposure_stats",
    "judge_record",
    "luma",
    "photo_problems",
    "significant_faces",
]
