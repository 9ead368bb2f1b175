"""Face alignment to the canonical 5-point ArcFace template.

Every identity model used here (dlib's ResNet aside, which aligns internally) expects a face
crop in which the eyes, nose tip and mouth corners sit at fixed positions. The template is
insightface's ``arcface_dst`` for a 112×112 crop, in the image-left-first order of
:data:`headshot_lab.faces.base.LANDMARK5_NAMES`. For other sizes it is scaled the way
insightface's ``estimate_norm`` does it:

* ``size % 112 == 0``: ``dst = arcface_dst · size/112``;
* otherwise: ``dst = arcface_dst · r`` with ``r = size/128`` and ``x += 8r`` (the 128-px
  variant, which pads 8 px of ``r`` on each side).

The warp is the least-squares similarity transform (rotation, uniform scale, translation;
Umeyama 1991) from the detected points to the template:

``T = argmin_{s,R,t} Σ_i ‖s·R·p_i + t − q_i‖²``

estimated with :class:`skimage.transform.SimilarityTransform` and applied with
:func:`cv2.warpAffine` (bilinear, black border).
"""

from __future__ import annotations

import numpy as np

from headshot_lab.errors import HeadshotLabError

#: insightface's ``arcface_dst``: ``[left_eye, right_eye, nose_tip, mouth_left, mouth_right]`` in a 112×112 crop.
ARCFACE_TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)

# dlib / iBUG 300-W 68-point indices (0-based). The subject's right eye (36–41) is on the image's left.
_LEFT_EYE_68 = slice(36, 42)
_RIGHT_EYE_68 = slice(42, 48)
_NOSE_TIP_68 = 30
_MOUTH_LEFT_68 = 48
_MOUTH_RIGHT_68 = 54


def arcface_template(size: int = 112) -> np.ndarray:
    """The ``(5, 2)`` ArcFace template for a ``size``×``size`` crop (see the module docstring for the scaling)."""
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    if size % 112 == 0:
        return ARCFACE_TEMPLATE_112 * (size / 112.0)
    ratio = size / 128.0
    dst = ARCFACE_TEMPLATE_112 * ratio
    dst[:, 0] += 8.0 * ratio
    return dst


def _as_points(points: np.ndarray, name: str, count: int | None = None) -> np.ndarray:
    array = np.asarray(points, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] != 2 or (count is not None and array.shape[0] != count):
        expected = f"({count}, 2)" if count is not None else "(N, 2)"
        raise ValueError(f"{name} must be an {expected} array of (x, y) points, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite coordinates")
    return array


def similarity_transform(src5: np.ndarray, dst5: np.ndarray) -> np.ndarray:
    """The ``2×3`` affine matrix of the least-squares similarity transform mapping ``src5`` onto ``dst5``.

    ``[x', y']ᵀ = M · [x, y, 1]ᵀ`` with ``M = [[s·cosθ, −s·sinθ, tx], [s·sinθ, s·cosθ, ty]]``.

    Raises:
        HeadshotLabError: the points are degenerate (e.g. all equal), so no transform exists.
    """
    from skimage.transform import SimilarityTransform

    src = _as_points(src5, "src5")
    dst = _as_points(dst5, "dst5", count=src.shape[0])
    with np.errstate(divide="ignore", invalid="ignore"):  # degenerate points: refused below, not a warning
        tform = SimilarityTransform.from_estimate(src, dst)
    if not tform or not np.all(np.isfinite(tform.params)) or abs(np.linalg.det(tform.params[:2, :2])) < 1e-12:
        raise HeadshotLabError(
            "The face landmarks are degenerate (they collapse to a point), so the face cannot be aligned.",
            fix="Use a photo where the whole face is visible and in focus.",
            code="alignment_failed",
        )
    return np.asarray(tform.params[:2, :], dtype=np.float64)


def align_face(image: np.ndarray, landmarks5: np.ndarray, size: int = 112) -> np.ndarray:
    """Warp ``image`` so that ``landmarks5`` land on :func:`arcface_template` ``(size)``.

    Args:
        image: ``(H, W, 3)`` ``uint8`` image (any channel order; it is kept).
        landmarks5: ``(5, 2)`` points in :data:`~headshot_lab.faces.base.LANDMARK5_NAMES` order.
        size: side of the square output crop.

    Returns:
        ``(size, size, 3)`` ``uint8`` aligned crop; pixels outside the image are black.
    """
    import cv2

    pixels = np.ascontiguousarray(image)
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) image, got shape {pixels.shape}")
    if pixels.dtype != np.uint8:
        pixels = np.clip(pixels, 0, 255).astype(np.uint8)
    matrix = similarity_transform(_as_points(landmarks5, "landmarks5", count=5), arcface_template(size))
    return cv2.warpAffine(pixels, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Apply a ``2×3`` affine ``matrix`` to ``(N, 2)`` points: ``p' = M[:, :2]·p + M[:, 2]``."""
    pts = _as_points(points, "points")
    m = np.asarray(matrix, dtype=np.float64)
    return pts @ m[:, :2].T + m[:, 2]


def clip_box(box: tuple[float, float, float, float], width: int, height: int) -> tuple[int, int, int, int]:
    """Round ``(left, top, right, bottom)`` to ints and clip it to ``[0, width] × [0, height]``."""
    left, top, right, bottom = (round(float(v)) for v in box)
    return (
        min(max(left, 0), width),
        min(max(top, 0), height),
        min(max(right, 0), width),
        min(max(bottom, 0), height),
    )


def landmarks5_from_68(points68: np.ndarray) -> np.ndarray:
    """Reduce iBUG/dlib 68 landmarks to the 5-point ArcFace order.

    ``left_eye = mean(p36..p41)``, ``right_eye = mean(p42..p47)``, ``nose_tip = p30``,
    ``mouth_left = p48``, ``mouth_right = p54`` (0-based). For an upright face the subject's right
    eye (36–41) is on the image's left, which gives the image-left-first order of
    :data:`~headshot_lab.faces.base.LANDMARK5_NAMES`.
    """
    pts = _as_points(points68, "points68", count=68)
    return np.stack(
        [
            pts[_LEFT_EYE_68].mean(axis=0),
            pts[_RIGHT_EYE_68].mean(axis=0),
            pts[_NOSE_TIP_68],
            pts[_MOUTH_LEFT_68],
            pts[_MOUTH_RIGHT_68],
        ]
    ).astype(np.float32)
