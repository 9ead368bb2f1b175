"""ArcFace identity embeddings through onnxruntime, from a local insightface model pack.

The pack is a folder of ``.onnx`` files, e.g. insightface's ``buffalo_l``
(``det_10g.onnx`` SCRFD detector + ``w600k_r50.onnx`` ArcFace R50, 512-D). Its location is the
``model_dir`` option or ``HEADSHOT_LAB_INSIGHTFACE_DIR``. Nothing is ever downloaded: insightface's
``FaceAnalysis`` fetches packs from GitHub, so it is not used; each file is opened with
``insightface.model_zoo.get_model(path)``, which picks the model type from the ONNX input/output
shapes (a square input ≥ 112 px divisible by 16 with one output → ``ArcFaceONNX``; ≥ 5 outputs →
``SCRFD``).

Pipeline: detect faces and 5 landmarks with the pack's detector — or, **if the pack has no
detector, with the dlib backend** (its 68 landmarks reduced to 5 points) — align each face to the
ArcFace template (:func:`~headshot_lab.faces.align.align_face`) and embed the crop:
``e = f(crop) / ‖f(crop)‖₂`` (512-D for the buffalo packs; whatever the ONNX outputs otherwise).

insightface models expect BGR pixels (they were trained on ``cv2.imread`` images); this module
takes RGB like the rest of headshot-lab and converts at the boundary.

onnxruntime runs on the CPU provider unless the CUDA provider is available and
``HEADSHOT_LAB_DEVICE`` is not ``cpu``.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

import numpy as np

from headshot_lab.errors import HeadshotLabError, ModelUnavailableError
from headshot_lab.faces.align import align_face, clip_box
from headshot_lab.faces.base import Face, l2_normalize, register_backend
from headshot_lab.faces.dlib_backend import to_pixels

ENV_VAR = "HEADSHOT_LAB_INSIGHTFACE_DIR"
PACK_HINT = (
    f"Set {ENV_VAR} to a folder holding an insightface model pack: an ArcFace recognition model "
    "(.onnx, e.g. w600k_r50.onnx) and optionally a face detector (e.g. det_10g.onnx) — "
    "the buffalo_l pack has both. Download it once on a machine with internet access and copy the folder over."
)
# Known file names tried first so that big packs do not load every model just to find two.
_PREFERRED = ("w600k_r50.onnx", "glintr100.onnx", "w600k_mbf.onnx", "det_10g.onnx", "det_2.5g.onnx", "det_500m.onnx")


def _providers(device: str) -> list[Any]:
    """``["CUDAExecutionProvider", "CPUExecutionProvider"]`` when CUDA is usable and wanted, else CPU only;
    ``cuda:N`` picks GPU ``N`` (``("CUDAExecutionProvider", {"device_id": N})``)."""
    import onnxruntime

    available = onnxruntime.get_available_providers()
    if device != "cpu" and "CUDAExecutionProvider" in available:
        index = device.partition(":")[2]
        cuda: Any = ("CUDAExecutionProvider", {"device_id": int(index)}) if index.isdigit() else "CUDAExecutionProvider"
        return [cuda, "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _pack_error(message: str) -> ModelUnavailableError:
    return ModelUnavailableError(message, fix=PACK_HINT)


@register_backend("insightface")
class InsightFaceBackend:
    """ArcFace embeddings (onnxruntime) from a local model pack; see the module docstring.

    Args:
        model_dir: the pack folder; defaults to ``Settings.insightface_dir`` (``HEADSHOT_LAB_INSIGHTFACE_DIR``).
        det_size: square input size of the detector (insightface's default 640).
        det_thresh: minimum detector score.
        device: ``"cpu"`` forces the CPU provider; default from ``Settings.device``.

    Raises:
        ModelUnavailableError: no pack folder is set, it does not exist, or holds no ArcFace model.
    """

    name = "insightface"

    def __init__(
        self,
        model_dir: str | Path | None = None,
        det_size: int = 640,
        det_thresh: float = 0.5,
        device: str | None = None,
    ) -> None:
        from headshot_lab.config import get_settings

        settings = get_settings()
        self.model_dir = self._resolve_dir(model_dir if model_dir is not None else settings.insightface_dir)
        self.det_size = int(det_size)
        self.det_thresh = float(det_thresh)
        self.providers = _providers(device or settings.device)
        self._lock = threading.RLock()
        self.recognizer, self.detector = self._load_models()
        self.input_size = int(self.recognizer.input_size[0])
        self.embedding_dim = int(self._forward(np.zeros((self.input_size, self.input_size, 3), np.uint8)).size)
        self.encoder = f"insightface ArcFace ({Path(self.recognizer.model_file).name}, {self.embedding_dim}-D)"

    def __repr__(self) -> str:
        return f"InsightFaceBackend(model_dir={str(self.model_dir)!r}, encoder={self.encoder!r})"

    # -- loading -------------------------------------------------------------------------------

    @staticmethod
    def _resolve_dir(model_dir: str | Path | None) -> Path:
        if model_dir is None or str(model_dir) == "":
            raise _pack_error(f"The insightface backend needs a model pack, and {ENV_VAR} is not set.")
        path = Path(model_dir).expanduser()
        if not path.is_dir():
            raise _pack_error(f"The insightface model pack folder {str(path)!r} ({ENV_VAR}) does not exist.")
        if not any(path.glob("*.onnx")):
            raise _pack_error(f"The insightface model pack folder {str(path)!r} ({ENV_VAR}) holds no .onnx files.")
        return path

    def _load_models(self) -> tuple[Any, Any | None]:
        """Route the pack's ``.onnx`` files through ``model_zoo.get_model``; keep one recogniser and one detector."""
        try:
            from insightface.model_zoo import get_model
        except ImportError:
            raise ModelUnavailableError(
                "The insightface backend needs the 'insightface' and 'onnxruntime' packages.",
                fix="pip install insightface onnxruntime",
            ) from None
        files = sorted(self.model_dir.glob("*.onnx"), key=lambda p: (p.name not in _PREFERRED, p.name))
        recognizer = detector = None
        for path in files:
            try:
                model = get_model(str(path.resolve()), providers=self.providers)
            except Exception as exc:  # onnxruntime raises its own types for damaged files
                raise _pack_error(f"{path.name} in the insightface model pack could not be loaded: {exc}") from None
            task = getattr(model, "taskname", None)
            if task == "recognition" and recognizer is None:
                recognizer = model
            elif task == "detection" and detector is None:
                model.prepare(0, input_size=(self.det_size, self.det_size), det_thresh=self.det_thresh)
                detector = model
            if recognizer is not None and detector is not None:
                break
        if recognizer is None:
            raise _pack_error(
                f"None of the .onnx files in {str(self.model_dir)!r} ({ENV_VAR}) is an ArcFace recognition model "
                "(one input of shape 1×3×S×S with S ≥ 112 divisible by 16, one output)."
            )
        return recognizer, detector

    # -- inference -----------------------------------------------------------------------------

    def _forward(self, aligned_rgb: np.ndarray) -> np.ndarray:
        """Raw recogniser output for one aligned RGB crop (converted to the BGR the model expects)."""
        with self._lock:
            return np.asarray(self.recognizer.get_feat(np.ascontiguousarray(aligned_rgb[..., ::-1]))).ravel()

    def detect(self, image: np.ndarray) -> list[Face]:
        """Faces with ``landmarks5``, largest first: the pack's detector, or dlib's when the pack has none."""
        pixels = to_pixels(image)
        if self.detector is None:
            from headshot_lab.faces.base import get_backend

            faces = get_backend("dlib").detect(pixels)
            return [
                dataclasses.replace(f, backend=self.name, extra={**f.extra, "detector": "dlib (pack has no detector)"})
                for f in faces
            ]
        height, width = pixels.shape[:2]
        with self._lock:
            boxes, kpss = self.detector.detect(np.ascontiguousarray(pixels[..., ::-1]), max_num=0)
        faces = []
        for i, row in enumerate(np.asarray(boxes)):
            box = clip_box(tuple(row[:4]), width, height)
            if box[2] - box[0] < 2 or box[3] - box[1] < 2:
                continue
            landmarks5 = None if kpss is None else np.asarray(kpss[i], dtype=np.float32).reshape(5, 2)
            faces.append(
                Face(
                    box=box,
                    score=float(row[4]),
                    landmarks5=landmarks5,
                    backend=self.name,
                    extra={"detector": Path(self.detector.model_file).name},
                )
            )
        faces.sort(key=lambda f: f.area, reverse=True)
        return faces

    def embed(self, image: np.ndarray, faces: list[Face]) -> list[Face]:
        """Copies of ``faces`` with an L2-normalised ArcFace ``embedding`` and the ``aligned`` crop it was computed on."""
        pixels = to_pixels(image)
        out = []
        for face in faces:
            if face.landmarks5 is None:
                raise HeadshotLabError(
                    "This face has no 5-point landmarks, which ArcFace needs for alignment.",
                    fix="Detect faces with the same backend (backend.detect or backend.analyze) before embedding.",
                    code="no_landmarks",
                )
            aligned = align_face(pixels, face.landmarks5, size=self.input_size)
            out.append(
                dataclasses.replace(
                    face,
                    embedding=l2_normalize(self._forward(aligned)),
                    aligned=aligned,
                    backend=self.name,
                    extra={**face.extra, "encoder": self.encoder},
                )
            )
        return out

    def analyze(self, image: np.ndarray) -> list[Face]:
        """:meth:`detect` then :meth:`embed`."""
        pixels = to_pixels(image)
        return self.embed(pixels, self.detect(pixels))
