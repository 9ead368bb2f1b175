"""The source-photo checklist: is each selfie usable for training, and is the set good as a whole?

``check_photos(photos)`` decodes every photo once, finds the faces on one downscaled copy, crops
the face from the full-resolution pixels only to measure sharpness, and returns a
:class:`CaptureReport`: one :class:`PhotoReport` per photo (problems with a stable ``code``, a
``message`` and a concrete ``fix``, plus the measurements behind them) and a :class:`SetReport`
(count, near-duplicates, pose and lighting variety, a different person among the photos). A file
that cannot be read becomes an entry with its :class:`~headshot_lab.errors.ImageError` code; the
other photos are still checked.

Per-photo codes (severity ``error`` makes the photo unusable, ``warning`` only advises):

=================  ========  ==============================================================
code               severity  measured as
=================  ========  ==============================================================
*ImageError code*  error     :func:`headshot_lab.io.load_photo` refused the file
                             (``truncated_image``, ``not_an_image``, …); ``unreadable`` for
                             an array or object that is not an image
``no_face``        error     the face backend found no face
``multiple_faces`` error     another face at least ``companion_face_ratio`` × as wide
``face_too_small`` error     face box width < ``min_face_px`` original pixels
``face_cut_off``   error     the face box grown by ``cutoff_margin`` (or a landmark) leaves
                             the frame
``blurry``         error     contrast-normalised variance of the Laplacian of the face
                             crop resized to ``sharpness_size`` px (see :func:`face_sharpness`)
``overexposed``    error     fraction of face pixels with a channel ≥ ``clip_high``
``underexposed``   error     99th percentile of the photo's luma, or face shadow clipping
``color_cast``     warning   chroma of the white patch (brightest unclipped pixels)
``heavy_filter``   warning   no colour anywhere (99th percentile chroma): black-and-white
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
``low_lighting_variety``, ``different_person`` (identity-embedding outlier; the outlier photos
also get a per-photo ``different_person`` error).

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
brightest part of the *whole* photo; sharpness is normalised by the face's own median brightness;
eye checks compare the eyes with the same person's cheeks.
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

from headshot_lab.config import resolve_options
from headshot_lab.errors import ImageError, ModelUnavailableError

if TYPE_CHECKING:
    from headshot_lab.faces.base import Face, FaceBackend
    from headshot_lab.faces.mesh import FaceMesh
    from headshot_lab.io import Photo
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
    # SD1.5 trains at 512 px with the head ~55 % of the crop ≈ 280 px ≈ a 200 px box, so smaller
    # faces get upscaled. Real photos: 240–325 px (obama 240); astronaut 88, group 110 (too small).
    min_face_px: int = 200
    # ratio; a second face counts as "another person" when its box is at least this × the width of
    # the main face. Background detections seen: 52 px next to a 287 px face (0.18); a pasted-in
    # second person 198 vs 240 px (0.83); the group photo's faces 0.69–1.0.
    companion_face_ratio: float = 0.4
    # × face-box width; the box grown by this on every side must stay inside the photo (room for
    # the chin and brows). obama_partial: box at x = 0 and jaw landmarks at x = −6 px → cut off.
    cutoff_margin: float = 0.05

    # --- sharpness -----------------------------------------------------------------------------
    # px; the face crop (box + 10 %) is resized to this square before the Laplacian, so the score
    # does not depend on the photo's resolution.
    sharpness_size: int = 256
    # unitless (see face_sharpness). Real faces (207–325 px wide): 217–339; Gaussian blur σ = 1 px:
    # 20–77, σ = 1.5 px: 8–37, σ = 3 px: 2–9; darkening ×0.3 leaves it within 7 % (normalised).
    min_sharpness: float = 60.0

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
    # CIELAB chroma √(a*² + b*²) of the white patch's mean. Real: 1.4–6.0; channel gains on obama,
    # obama3, biden, astronaut — mild warm (1, .9, .75): 17–21; tungsten-like (1, .85, .6): 31–35;
    # blue (.7, .85, 1): 18–23; green (.8, 1, .8): 28–32; magenta (1, .8, 1): 26–31; sepia: ≈ 43.
    # A scene without anything white or grey (a yellow wall in sun) can read as a cast: warning only.
    max_cast_chroma: float = 12.0
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
_JAW_AND_BROWS = slice(0, 27)
_EYE_68 = (slice(36, 42), slice(42, 48))  # image-left eye, image-right eye
_MOUTH_CORNERS_68 = (48, 54)


def luma(rgb: np.ndarray) -> np.ndarray:
    """Rec. 709 luma of gamma-encoded 8-bit RGB: ``Y′ = 0.2126 R′ + 0.7152 G′ + 0.0722 B′`` (0–255)."""
    rgb = np.asarray(rgb, dtype=np.float32)
    return rgb[..., 0] * 0.2126 + rgb[..., 1] * 0.7152 + rgb[..., 2] * 0.0722


def downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """``(copy whose longer side ≤ max_side, scale s)`` with ``s = min(1, max_side / max(H, W))`` (area filter)."""
    import cv2

    height, width = image.shape[:2]
    scale = min(1.0, max_side / float(max(height, width)))
    if scale >= 1.0:
        return image, 1.0
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.ascontiguousarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA)), scale


def face_sharpness(image: np.ndarray, box: Sequence[float], size: int = 256) -> float:
    """Scale- and exposure-normalised sharpness of the face in ``box`` (original pixels).

    The box grown by 10 % is cropped from the full-resolution image, converted to grey ``G`` and
    resized to ``size × size`` (area filter when shrinking, bilinear when enlarging), then

        S = Var(∇²(G · 128 / m))

    where ``∇²`` is the 3×3 Laplacian and ``m`` the median of the crop's central half (the face).
    The fixed size makes ``S`` independent of the photo's resolution; the ``128 / m`` factor makes
    it independent of exposure and of how light or dark the skin is (a texture's Laplacian scales
    with its brightness). Sharp faces score in the hundreds; blur drives it towards 0.
    """
    import cv2

    height, width = image.shape[:2]
    left, top, right, bottom = (float(v) for v in box)
    margin = 0.1 * max(right - left, 1.0)
    x0, y0 = max(0, int(left - margin)), max(0, int(top - margin))
    x1, y1 = min(width, int(np.ceil(right + margin))), min(height, int(np.ceil(bottom + margin)))
    if x1 - x0 < 4 or y1 - y0 < 4:
        return 0.0
    grey = cv2.cvtColor(np.ascontiguousarray(image[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY).astype(np.float32)
    interpolation = cv2.INTER_AREA if (x1 - x0) >= size else cv2.INTER_LINEAR
    grey = cv2.resize(grey, (size, size), interpolation=interpolation)
    quarter = size // 4
    median = float(np.median(grey[quarter : size - quarter, quarter : size - quarter]))
    laplacian = cv2.Laplacian(grey * (128.0 / max(median, 1.0)), cv2.CV_32F, ksize=1)
    return float(laplacian.var())


def _face_hull_mask(shape: tuple[int, int], landmarks68: np.ndarray) -> np.ndarray:
    """Boolean mask of the convex hull of the jaw line and brows (the face, eyes and mouth included)."""
    import cv2

    mask = np.zeros(shape, dtype=np.uint8)
    hull = cv2.convexHull(np.round(landmarks68[_JAW_AND_BROWS]).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1)
    return mask.astype(bool)


def image_exposure_stats(image: np.ndarray) -> dict[str, Any]:
    """``image_luma_p99`` and ``image_luma_median``: luma percentiles of the whole photo (≤ 512 px copy)."""
    p99, median = np.percentile(luma(downscale(image, 512)[0]), [99.0, 50.0])
    return {"image_luma_p99": round(float(p99), 1), "image_luma_median": round(float(median), 1)}


def face_exposure_stats(image: np.ndarray, landmarks68: np.ndarray, thresholds: CaptureThresholds) -> dict[str, Any]:
    """Clipping and brightness of the face: the convex hull of the 68-point jaw line and brows.

    * ``face_highlight_clip``: fraction of face pixels with any channel ≥ ``clip_high`` (blown out);
    * ``face_shadow_clip``: fraction with every channel ≤ ``clip_low`` (crushed to black);
    * ``face_luma_median`` (0–255) and ``face_lightness`` (median CIELAB L*, D65), reported and
      used only to compare one person's photos with each other (lighting variety), never against a
      fixed value.
    """
    from skimage.color import rgb2lab

    pixels = image[_face_hull_mask(image.shape[:2], landmarks68)]
    if pixels.size == 0:
        return {}
    brightest = pixels.max(axis=1)
    lightness = rgb2lab(pixels[None].astype(np.float64) / 255.0)[0, :, 0]
    return {
        "face_luma_median": round(float(np.median(luma(pixels))), 1),
        "face_highlight_clip": round(float((brightest >= thresholds.clip_high).mean()), 4),
        "face_shadow_clip": round(float((brightest <= thresholds.clip_low).mean()), 4),
        "face_lightness": round(float(np.median(lightness)), 2),
    }


def colour_stats(image: np.ndarray, thresholds: CaptureThresholds) -> dict[str, Any]:
    """White-patch colour cast and overall colourfulness, on a ≤ 256 px thumbnail in CIELAB (D65).

    * ``cast_a``, ``cast_b``, ``cast_chroma``: mean ``(a*, b*)`` of the white patch — unclipped
      pixels (every channel < ``clip_high``, 15 < L* < 97) at or above the
      ``white_patch_percentile`` of L* — and its chroma ``√(a*² + b*²)``. Bright surfaces are
      near-neutral in a balanced photo (white-patch / max-RGB assumption), so their tint is the cast.
    * ``colour_p99_chroma``: 99th percentile of every pixel's chroma (≈ 0 in black-and-white).
    """
    from skimage.color import rgb2lab

    thumb, _ = downscale(image, 256)
    lab = rgb2lab(thumb.astype(np.float64) / 255.0).reshape(-1, 3)
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    stats: dict[str, Any] = {"colour_p99_chroma": round(float(np.percentile(chroma, 99.0)), 2)}
    usable = (thumb.reshape(-1, 3).max(axis=1) < thresholds.clip_high) & (lab[:, 0] > 15.0) & (lab[:, 0] < 97.0)
    if usable.sum() < 50:
        stats.update(cast_a=None, cast_b=None, cast_chroma=None)
        return stats
    cutoff = np.percentile(lab[usable, 0], thresholds.white_patch_percentile)
    patch = lab[usable & (lab[:, 0] >= cutoff)]
    a_star, b_star = float(patch[:, 1].mean()), float(patch[:, 2].mean())
    stats.update(
        cast_a=round(a_star, 2), cast_b=round(b_star, 2), cast_chroma=round(float(np.hypot(a_star, b_star)), 2)
    )
    return stats


def eye_region_stats(image: np.ndarray, landmarks68: np.ndarray) -> dict[str, Any]:
    """How dark and how flat each eye region is compared with the cheeks (sunglasses, hair, a hand).

    With ``d`` the distance between the eye centres (means of the 68-point eye contours):

    * eye region: ``0.6d × 0.3d`` around each eye centre; cheek: ``0.3d`` squares halfway between
      each eye centre and the mouth corner below it, ``0.1d`` lower;
    * ``eye_darkness`` = median luma(eye) / median luma(cheeks);
    * ``eye_contrast`` = (p95 − p5 of luma(eye)) / median luma(cheeks).

    Both are ratios against the same person's skin, so they do not depend on skin tone or exposure.
    An open eye has a bright sclera and a dark iris/lashes (contrast ≈ 0.6–1.1); sunglasses are dark
    and flat. Values are ``[image-left eye, image-right eye]``.
    """
    grey = luma(image)
    height, width = grey.shape
    points = np.asarray(landmarks68, dtype=np.float64)
    centres = [points[eye].mean(axis=0) for eye in _EYE_68]
    distance = float(np.hypot(*(centres[1] - centres[0])))

    def patch(centre: np.ndarray, half_w: float, half_h: float) -> np.ndarray:
        x0, x1 = int(max(0, centre[0] - half_w)), int(min(width, centre[0] + half_w + 1))
        y0, y1 = int(max(0, centre[1] - half_h)), int(min(height, centre[1] + half_h + 1))
        return grey[y0:y1, x0:x1].ravel()

    cheeks = np.concatenate(
        [
            patch((centre + points[corner]) / 2.0 + [0.0, 0.1 * distance], 0.15 * distance, 0.15 * distance)
            for centre, corner in zip(centres, _MOUTH_CORNERS_68, strict=True)
        ]
    )
    if distance < 4 or cheeks.size < 4:
        return {"eye_darkness": None, "eye_contrast": None}
    cheek = max(float(np.median(cheeks)), 1.0)
    darkness, contrast = [], []
    for centre in centres:
        eye = patch(centre, 0.3 * distance, 0.15 * distance)
        if eye.size < 4:
            return {"eye_darkness": None, "eye_contrast": None}
        p5, p95 = np.percentile(eye, [5.0, 95.0])
        darkness.append(round(float(np.median(eye)) / cheek, 3))
        contrast.append(round(float(p95 - p5) / cheek, 3))
    return {"eye_darkness": darkness, "eye_contrast": contrast}


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
    """One photo decoded and downscaled, with its whole-image metrics (or the problem that stopped it)."""

    name: str
    pixels: np.ndarray | None = None
    small: np.ndarray | None = None
    scale: float = 1.0
    metrics: dict[str, Any] = field(default_factory=dict)
    problem: Problem | None = None
    notes: list[Problem] = field(default_factory=list)


def _name_of(item: Any, index: int) -> str:
    from headshot_lab.io import Photo

    if isinstance(item, str | Path):
        return str(item)
    if isinstance(item, Photo):
        return item.name
    return f"photo-{index + 1}"


def _decode(item: Any, name: str) -> Photo | np.ndarray | Problem:
    """The decoded input, or the problem that says why there is none. Never raises for bad input."""
    from PIL import Image

    from headshot_lab.io import Photo, as_rgb_array, load_photo

    try:
        if isinstance(item, Photo):
            return item
        if isinstance(item, np.ndarray | Image.Image):
            pixels = as_rgb_array(item)
            if pixels.shape[0] < 2 or pixels.shape[1] < 2:
                raise ValueError(f"the image is {pixels.shape[1]}×{pixels.shape[0]} pixels")
            return pixels
        return load_photo(item, name=Path(name).name)
    except ImageError as exc:
        return Problem(exc.code, exc.message, exc.fix, "error")
    except (ValueError, TypeError, OSError) as exc:
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
    import imagehash
    from PIL import Image

    from headshot_lab.io import Photo

    decoded = _decode(item, name)
    if isinstance(decoded, Problem):
        return _Prepared(name, problem=decoded)
    notes: list[Problem] = []
    if isinstance(decoded, Photo):
        animated = animation_warning(name, decoded.frames, decoded.format)
        if animated is not None:
            notes.append(animated)
        decoded = decoded.pixels
    try:
        small, scale = downscale(decoded, limits.analysis_side)
        metrics: dict[str, Any] = {"width": int(decoded.shape[1]), "height": int(decoded.shape[0])}
        metrics["hash"] = str(imagehash.phash(Image.fromarray(downscale(small, 512)[0])))
        metrics.update(image_exposure_stats(small))
        metrics.update(colour_stats(small, limits))
    except Exception as exc:  # an odd image must not stop the other photos
        logger.exception("capture preparation failed for %s", name)
        return _Prepared(name, problem=_analysis_failed(exc))
    return _Prepared(name, decoded, small, scale, metrics, notes=notes)


def _analysis_failed(exc: BaseException) -> Problem:
    return Problem(
        "analysis_failed",
        f"This photo could not be analysed ({type(exc).__name__}: {exc}).",
        "Re-export the photo as a standard JPEG and upload it again; if it keeps failing, leave it out.",
    )


def face_mesh_near(small: np.ndarray, box: Sequence[float]) -> FaceMesh | None:
    """The 478-point mesh of the face in ``box`` (analysis pixels), run on a crop around it.

    Cropping to the box grown by 60 % guarantees the mesh describes *this* face (not another person)
    and that it fills the frame, which mediapipe's short-range detector needs. Points are shifted
    back to ``small``'s coordinates.
    """
    from headshot_lab.faces.mesh import FaceMesh, face_mesh

    height, width = small.shape[:2]
    left, top, right, bottom = box
    grow = 0.6 * max(right - left, bottom - top)
    x0, y0 = int(max(0, left - grow)), int(max(0, top - grow))
    x1, y1 = int(min(width, right + grow)), int(min(height, bottom + grow))
    try:
        meshes = face_mesh(np.ascontiguousarray(small[y0:y1, x0:x1]), max_faces=1)
    except ModelUnavailableError as exc:
        logger.warning("face mesh unavailable, pose/eye/mouth checks skipped: %s", exc.message)
        return None
    if not meshes:
        return None
    mesh = meshes[0]
    offset = np.array([x0, y0], dtype=np.float64)
    points3d = mesh.points3d.copy()
    points3d[:, :2] += offset
    mesh_box = (mesh.box[0] + x0, mesh.box[1] + y0, mesh.box[2] + x0, mesh.box[3] + y0)
    return FaceMesh(points=mesh.points + offset, points3d=points3d, box=mesh_box, image_shape=(height, width))


def _mesh_stats(mesh: FaceMesh | None) -> dict[str, Any]:
    from headshot_lab.faces.mesh import eye_openness, head_pose, mouth_openness

    if mesh is None:
        return {"yaw": None, "pitch": None, "roll": None, "eye_openness": None, "mouth_openness": None}
    pose = head_pose(mesh)
    left, right = eye_openness(mesh)
    return {
        "yaw": round(pose.yaw, 2),
        "pitch": round(pose.pitch, 2),
        "roll": round(pose.roll, 2),
        "eye_openness": [round(left, 3), round(right, 3)],
        "mouth_openness": round(mouth_openness(mesh), 3),
    }


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


def significant_faces(faces: list[Face], ratio: float) -> list[Face]:
    """Faces at least ``ratio`` × as wide as the largest, largest first (background faces and false hits dropped)."""
    if not faces:
        return []
    ordered = sorted(faces, key=lambda face: face.area, reverse=True)
    return [face for face in ordered if face.width >= ratio * ordered[0].width]


class _Detector:
    """The face backend, plus a slower, more sensitive pass only for photos where it finds nothing.

    For the default dlib backend the first pass runs HOG without upsampling on the analysis copy
    (``analysis_side`` px; finds faces ≥ 80 px there, e.g. ≥ 8 % of the longer side at 1024 px,
    ~0.1 s); a photo with no face found gets the backend's default pass (upsampled once on an
    800 px copy: faces ≥ 40 px there, ~3× slower). Both use the same landmark and embedding models.
    A backend passed as an instance is used as it is.
    """

    def __init__(self, backend: FaceBackend | str | None, limits: CaptureThresholds) -> None:
        from headshot_lab.config import get_settings
        from headshot_lab.faces import get_backend

        self._fallback_name: str | None = None
        if backend is not None and not isinstance(backend, str):
            self.primary: FaceBackend = backend
            return
        name = backend or get_settings().face_backend
        if name == "dlib":
            self.primary = get_backend("dlib", upsample=0, max_side=limits.analysis_side)
            self._fallback_name = "dlib"
        else:
            self.primary = get_backend(name)

    @property
    def name(self) -> str:
        return str(getattr(self.primary, "name", ""))

    def detect(self, image: np.ndarray) -> list[Face]:
        from headshot_lab.faces import get_backend

        faces = self.primary.detect(image)
        if not faces and self._fallback_name is not None:
            faces = get_backend(self._fallback_name).detect(image)
        return faces

    def embed(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        return self.primary.embed(image, faces)


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
    return _analyze_prepared(prepared, _Detector(backend, limits), limits, skin=skin)


def _analyze_prepared(
    prepared: _Prepared, backend: _Detector, limits: CaptureThresholds, *, skin: bool = False
) -> PhotoReport:
    report = PhotoReport(path=prepared.name, ok=True, metrics=dict(prepared.metrics))
    if prepared.problem is not None or prepared.pixels is None or prepared.small is None:
        report.add(prepared.problem or Problem("unreadable", f"{prepared.name}: no pixels.", "Upload the photo again."))
        return report
    try:
        _measure_face(prepared.pixels, prepared.small, prepared.scale, backend, limits, report, skin=skin)
    except ModelUnavailableError:
        raise
    except Exception as exc:  # one odd photo must not stop the other 19
        logger.exception("capture analysis failed for %s", prepared.name)
        report.add(_analysis_failed(exc))
        return report
    for problem in [*photo_problems(report.metrics, limits, report.faces), *prepared.notes]:
        report.add(problem)
    return report


def _measure_face(
    pixels: np.ndarray,
    small: np.ndarray,
    scale: float,
    backend: _Detector,
    limits: CaptureThresholds,
    report: PhotoReport,
    *,
    skin: bool = False,
) -> None:
    """Find the faces and fill the face metrics, ``faces``, ``box``, ``embedding`` and ``skin`` (no judgement here).

    Detection, landmarks, exposure, eyes, mesh and embedding run on ``small`` (the analysis copy,
    ``scale`` × the original); only the sharpness crop is taken from the full-resolution ``pixels``.
    """
    height, width = pixels.shape[:2]
    metrics = report.metrics
    faces = significant_faces(backend.detect(small), limits.companion_face_ratio)
    report.faces = len(faces)
    if not faces:
        return
    face = faces[0]
    landmarks = None if face.landmarks is None else np.asarray(face.landmarks, dtype=np.float64)
    if landmarks is not None and landmarks.shape != (68, 2):
        landmarks = None  # the region checks need the 68-point layout

    box = tuple(round(float(v) / scale) for v in face.box)
    report.box = (min(box[0], width), min(box[1], height), min(box[2], width), min(box[3], height))
    face_px = (face.box[2] - face.box[0]) / scale
    metrics["face_px"] = round(face_px)
    metrics["face_fraction"] = round(face_px / min(width, height), 4)
    metrics["face_score"] = round(float(face.score), 3)
    original_box = [float(v) / scale for v in face.box]
    metrics["cut_off_edges"] = cut_off_edges(
        original_box, None if landmarks is None else landmarks / scale, width, height, limits.cutoff_margin
    )
    metrics["sharpness"] = round(face_sharpness(pixels, original_box, limits.sharpness_size), 1)
    if landmarks is not None:
        metrics.update(face_exposure_stats(small, landmarks, limits))
        metrics.update(eye_region_stats(small, landmarks))
    else:
        metrics.update(eye_darkness=None, eye_contrast=None)
    mesh = face_mesh_near(small, face.box)
    metrics.update(_mesh_stats(mesh))
    if skin and mesh is not None:
        report.skin = _skin_tone(small, mesh)
    embedded = backend.embed(small, [face])
    if embedded and embedded[0].embedding is not None:
        report.embedding = np.asarray(embedded[0].embedding, dtype=np.float32)


def _skin_tone(small: np.ndarray, mesh: FaceMesh) -> SkinTone | None:
    """The skin tone on the analysis copy with the face's mesh (as :mod:`headshot_lab.select` measures it)."""
    from headshot_lab.skin import NoColourError, NoSkinError, measure_skin

    try:
        return measure_skin(small, mesh=mesh)
    except (NoSkinError, NoColourError):  # too little (coloured) skin to measure: no tone, not a problem
        return None


def photo_problems(metrics: Mapping[str, Any], limits: CaptureThresholds, faces: int = 1) -> list[Problem]:
    """Judge one photo's ``metrics`` (and its ``faces`` count) against ``limits`` (pure: no pixels needed)."""
    problems: list[Problem] = []
    m = metrics

    # -- the whole photo (judged with or without a face: a dark photo often has "no face") --------
    if m.get("image_luma_p99") is not None and m["image_luma_p99"] < limits.min_image_p99_luma:
        problems.append(
            Problem(
                "underexposed",
                f"The photo is too dark: even its brightest parts reach only {m['image_luma_p99']:.0f} of 255.",
                "Retake facing a window in daylight, or switch on more lights in front of you.",
            )
        )
    elif m.get("face_shadow_clip") is not None and m["face_shadow_clip"] > limits.max_face_shadow_clip:
        problems.append(
            Problem(
                "underexposed",
                f"{m['face_shadow_clip']:.0%} of your face is lost in black shadow.",
                "Retake facing a window in daylight, or with a light in front of you rather than behind.",
            )
        )
    if m.get("colour_p99_chroma") is not None and m["colour_p99_chroma"] < limits.min_colour_p99_chroma:
        problems.append(
            Problem(
                "heavy_filter",
                "The photo has no colour (black-and-white or a monochrome filter).",
                "Use the original colour photo, without filters.",
                "warning",
            )
        )
    elif m.get("cast_chroma") is not None and m["cast_chroma"] > limits.max_cast_chroma:
        hue = _cast_name(m["cast_a"], m["cast_b"])
        problems.append(
            Problem(
                "color_cast",
                f"The photo has a strong {hue} colour cast (white-patch chroma {m['cast_chroma']:.0f}, "
                f"limit {limits.max_cast_chroma:.0f}): skin tones will be learned wrong.",
                "Retake in daylight (turn off coloured or warm bulbs) and don't apply colour filters.",
                "warning",
            )
        )

    if m.get("face_px") is None:
        problems.insert(
            0,
            Problem(
                "no_face",
                "No face was found in this photo.",
                "Use a photo of your face, facing the camera in good light, filling about a third of the frame.",
            ),
        )
        return problems

    # -- framing ------------------------------------------------------------------------------
    if faces > 1:
        problems.append(
            Problem(
                "multiple_faces",
                f"{faces} faces were found; the photo must show only you.",
                "Pick a photo where you are alone, or crop the other people out.",
            )
        )
    if m["face_px"] < limits.min_face_px:
        problems.append(
            Problem(
                "face_too_small",
                f"Your face is only {m['face_px']} px wide ({m['face_fraction']:.0%} of the photo's shorter side); "
                f"at least {limits.min_face_px} px is needed.",
                "Move closer (your face should fill about a third of the frame) and upload the original photo, "
                "not a thumbnail or a screenshot.",
            )
        )
    if m.get("cut_off_edges"):
        problems.append(
            Problem(
                "face_cut_off",
                f"Part of your face is outside the photo ({' and '.join(m['cut_off_edges'])} edge).",
                "Retake with your whole head inside the frame and a little space around it.",
            )
        )
    if m["face_px"] >= limits.min_face_px and m.get("sharpness") is not None and m["sharpness"] < limits.min_sharpness:
        problems.append(
            Problem(
                "blurry",
                f"Your face is blurry (sharpness {m['sharpness']:.0f}; at least {limits.min_sharpness:.0f} is needed).",
                "Hold the phone steady or lean it on something, tap your face to focus, and use more light.",
            )
        )

    # -- exposure on the face -------------------------------------------------------------------
    if m.get("face_highlight_clip") is not None and m["face_highlight_clip"] > limits.max_face_highlight_clip:
        problems.append(
            Problem(
                "overexposed",
                f"{m['face_highlight_clip']:.0%} of your face is blown out to pure white.",
                "Retake out of direct sun and without flash; soft daylight from a window is best.",
            )
        )

    # -- eyes, expression, pose -------------------------------------------------------------------
    covered = _covered_eyes(m, limits)
    if covered:
        which = "Both eyes look" if len(covered) == 2 else "One eye looks"
        problems.append(
            Problem(
                "eyes_covered",
                f"{which} covered (sunglasses, hair or a hand).",
                "Take off sunglasses and keep hair and hands away from your eyes.",
            )
        )
    openness = m.get("eye_openness")
    if not covered and openness is not None and float(np.mean(openness)) < limits.min_eye_openness:
        problems.append(
            Problem(
                "eyes_closed",
                f"Your eyes look closed (openness {float(np.mean(openness)):.2f}; open eyes are about 0.2–0.35).",
                "Retake with your eyes open, looking at the camera.",
                "warning",
            )
        )
    turned = []
    for key, limit, what in (
        ("yaw", limits.max_yaw, "turned sideways"),
        ("pitch", limits.max_pitch, "tilted up or down"),
        ("roll", limits.max_roll, "tilted towards a shoulder"),
    ):
        if m.get(key) is not None and abs(m[key]) > limit:
            turned.append(f"{what} {abs(m[key]):.0f}° (limit {limit:.0f}°)")
    if turned:
        problems.append(
            Problem(
                "head_turned",
                f"Your head is {'; '.join(turned)}.",
                "Face the camera more directly: small turns are welcome, strong ones are not.",
                "warning",
            )
        )
    if m.get("mouth_openness") is not None and m["mouth_openness"] > limits.max_mouth_openness:
        problems.append(
            Problem(
                "expression",
                f"Your mouth is wide open (openness {m['mouth_openness']:.2f}; limit {limits.max_mouth_openness:.2f}).",
                "Use photos with a relaxed face or a natural smile.",
                "warning",
            )
        )
    return problems


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
    for index in outliers:
        photos[index].add(
            Problem(
                "different_person",
                "This looks like a different person from the rest of the set "
                f"(identity similarity {photos[index].metrics['identity_similarity']:.2f}, "
                f"same person ≥ {identity['identity_threshold']:.2f}).",
                "Use only photos of yourself; remove this one.",
            )
        )
    if outliers:
        names = ", ".join(Path(photos[i].path).name for i in outliers)
        problems.append(
            Problem(
                "different_person",
                f"{names} {'look' if len(outliers) > 1 else 'looks'} like a different person from the other "
                "photos and will be left out.",
                "Use only photos of yourself.",
                "warning",
            )
        )
    elif identity.get("identity_ambiguous"):
        problems.append(
            Problem(
                "different_person",
                "These photos seem to show more than one person, with no clear majority.",
                "Upload photos of one person only: you.",
            )
        )

    usable = [p for p in photos if p.ok]
    metrics["usable"] = len(usable)
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
    info.update(identity_outliers=[], identity_ambiguous=False)
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
    return flagged, info


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
    model = _Detector(backend, limits)
    items = _items(photos)
    update, close = _progress_reporter(progress, len(items))
    reports: list[PhotoReport] = []
    try:
        update(0, len(items))
        for prepared in _prepared_stream(items, limits):
            reports.append(_analyze_prepared(prepared, model, limits, skin=skin))
            prepared.pixels = prepared.small = None  # free the pixels before the next photo
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
    "eye_region_stats",
    "face_exposure_stats",
    "face_sharpness",
    "image_exposure_stats",
    "photo_problems",
]
