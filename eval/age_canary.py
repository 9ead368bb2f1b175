"""The age canary: ``age_younger[:S]`` makes faces look younger to the age network, by a known recipe.

A "beauty filter" de-ageing, in two steps of strength ``S ∈ [0, 1]`` (default 1), on the face's 68 dlib
landmarks (``SourceView.landmarks``; no mesh needed):

1. **Neotenic warp** (:func:`neotenic_warp`): each eye is magnified about its centre ``c``,
   ``p_src = c + (p − c)·(1 − a·exp(−‖p − c‖²/2r²))`` with ``a = 0.25·S`` and ``r = 0.9 ×`` the eye's
   corner-to-corner width; the lower face is shortened by sampling from further down,
   ``y_src = y + m·b·H·t·(1 − t/2)`` with ``t = clip((y − y_eyes)/H, 0, 1.3)``, ``H = y_chin − y_eyes``,
   ``b = 0.12·S`` and ``m`` the face hull feathered by 15 % of the face width (bigger eyes and a shorter
   lower face read as younger).
2. **Wrinkle removal** (:func:`remove_skin_detail`): on the face hull *without* the eyes, brows and lips
   (dilated by 6 % of the face width, feathered by 3 %), ``out = low + (1 − S)·(I − low)`` with ``low`` an
   edge-preserving bilateral filter (range σ 60 of 255, spatial σ 4 % of the face width): the fine and
   middle detail (wrinkles, pores, eye bags) goes, the shading and every feature edge stay.

**Measured** (13 real faces of the registry photos downscaled to ≤ 800 px, the face found again on the
output; see :mod:`headshot_lab.audit.age`): ``Δage`` at ``S = 1`` mean −8.2 years, median −4.0, from −28.7
(biden, 70.5 → 41.8) to +2.2; −8.4 when the output is then re-encoded (JPEG q 90 after a 5 % downscale). At
``S = 0.5``: mean −3.9. Older faces move most; the group photo's faces (26–35) move +2.2 … −5.6, i.e. about as
much as the realistic null moves them (2.0 years RMS): the network has little room below the mid-twenties
for adults, so the canary is caught on a batch's mean, not on each young face. Plain skin smoothing reads as
younger too: the ``smooth`` canary moves the single faces by −4.9 on average.

The warp moves the nose and the chin a little, so ``preserves_geometry`` is ``False``: the runner finds
the face again on the output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from eval.generators import GenerationContext, Generator, GeneratorSkip, SourceView, _number, register_generator

#: Strength of the eye magnification and of the lower-face shortening at ``S = 1``.
EYE_GAIN = 0.25
CHIN_GAIN = 0.12
#: The bilateral filter whose output replaces the skin's detail (range σ, spatial σ as a share of the face width).
SIGMA_COLOR = 60.0
SIGMA_SPACE = 0.04

# iBUG 68-point regions (0-based) that keep their detail: the eyes, the lips, the brows.
_EYES = (slice(36, 42), slice(42, 48))
_FEATURES = (*_EYES, slice(48, 60), slice(17, 22), slice(22, 27))
_CHIN = 8


def _face_width(source: SourceView) -> float:
    if source.box is not None:
        return float(source.box[2] - source.box[0])
    points = np.asarray(source.landmarks, dtype=np.float64)
    return float(np.ptp(points[:, 0]))


def _hull(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    import cv2

    mask = np.zeros(shape, np.float32)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(points).astype(np.int32)), 1.0)
    return mask


def neotenic_warp(image: np.ndarray, landmarks: np.ndarray, face_width: float, strength: float = 1.0) -> np.ndarray:
    """Bigger eyes and a shorter lower face (step 1 of the module docstring), by :func:`cv2.remap`."""
    import cv2

    height, width = image.shape[:2]
    points = np.asarray(landmarks, dtype=np.float64)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    map_x, map_y = xx.copy(), yy.copy()
    for eye in _EYES:
        centre = points[eye].mean(axis=0)
        radius = 0.9 * float(np.linalg.norm(points[eye.start] - points[eye.start + 3]))
        dx, dy = xx - centre[0], yy - centre[1]
        gain = EYE_GAIN * strength * np.exp(-(dx * dx + dy * dy) / (2.0 * max(radius, 1.0) ** 2))
        map_x -= dx * gain
        map_y -= dy * gain
    eye_y = float(points[36:48, 1].mean())
    span = max(float(points[_CHIN, 1]) - eye_y, 1.0)
    hull = cv2.GaussianBlur(_hull((height, width), points), (0, 0), max(1.0, 0.15 * face_width))
    t = np.clip((yy - eye_y) / span, 0.0, 1.3)
    map_y += hull * CHIN_GAIN * strength * span * t * (1.0 - 0.5 * t)
    return cv2.remap(
        image, map_x.astype(np.float32), map_y.astype(np.float32), cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )


def skin_weights(shape: tuple[int, int], landmarks: np.ndarray, face_width: float) -> np.ndarray:
    """The face hull minus the dilated eyes, brows and lips, feathered: where detail is removed (in [0, 1])."""
    import cv2

    points = np.asarray(landmarks, dtype=np.float64)
    mask = _hull(shape, points)
    features = np.zeros(shape, np.uint8)
    for region in _FEATURES:
        cv2.fillConvexPoly(features, cv2.convexHull(np.round(points[region]).astype(np.int32)), 1)
    side = max(3, int(0.06 * face_width)) | 1
    grown = cv2.dilate(features, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (side, side)))
    mask[grown > 0] = 0.0
    return cv2.GaussianBlur(mask, (0, 0), max(1.0, 0.03 * face_width))


def remove_skin_detail(
    image: np.ndarray, landmarks: np.ndarray, face_width: float, strength: float = 1.0
) -> np.ndarray:
    """``out = I + w·S·(low − I)``, i.e. ``low + (1 − S)·(I − low)`` on the skin weights ``w`` (step 2)."""
    import cv2

    low = cv2.bilateralFilter(image, d=0, sigmaColor=SIGMA_COLOR, sigmaSpace=max(2.0, SIGMA_SPACE * face_width))
    weights = (skin_weights(image.shape[:2], landmarks, face_width) * float(strength))[..., None]
    out = image.astype(np.float64) + weights * (low.astype(np.float64) - image.astype(np.float64))
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def make_younger(image: np.ndarray, landmarks: np.ndarray, face_width: float, strength: float = 1.0) -> np.ndarray:
    """:func:`neotenic_warp` then :func:`remove_skin_detail` (on the warped face's landmarks, unchanged outside)."""
    warped = neotenic_warp(image, landmarks, face_width, strength)
    return remove_skin_detail(warped, landmarks, face_width, strength)


@dataclass
class AgeYounger:
    """Canary: :func:`make_younger` with strength ``strength`` (see the module docstring)."""

    strength: float = 1.0
    spec: str = ""
    preserves_geometry: bool = False
    axes: dict[str, Any] = field(default_factory=dict)

    def __call__(self, source: SourceView, context: GenerationContext) -> np.ndarray:
        if source.landmarks is None or np.asarray(source.landmarks).shape != (68, 2):
            raise GeneratorSkip(
                f"{source.id}: no 68 face landmarks, so the face cannot be made younger.", code="no_face"
            )
        return make_younger(source.image, source.landmarks, _face_width(source), float(self.strength))


@register_generator("age_younger")
def _age_younger(arg: str | None = None, **_: Any) -> Generator:
    value = _number(arg, "age_younger", 1.0, low=0.0, high=1.0)
    return AgeYounger(strength=value, axes={"strength": value})
