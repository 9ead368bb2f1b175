"""The face contract: a :class:`Face` dataclass, the :class:`FaceBackend` protocol, a registry.

Backends work like peft methods: each lives in its own module and registers a factory under a
name; ``get_backend("dlib")`` builds it once per process and caches it.

Coordinates are image pixels, ``x`` to the right and ``y`` down. "Left"/"right" in landmark names
are the *image's* left and right (``left_eye`` has the smaller ``x``), as in insightface's 5-point order:
``[left_eye, right_eye, nose_tip, mouth_left, mouth_right]``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from headshot_lab.errors import HeadshotLabError

LANDMARK5_NAMES = ("left_eye", "right_eye", "nose_tip", "mouth_left", "mouth_right")


@dataclass
class Face:
    """One detected face.

    Attributes:
        box: ``(left, top, right, bottom)`` in pixels of the analysed image.
        score: detector confidence (backend-specific scale; higher is more certain).
        landmarks5: ``(5, 2)`` float array in :data:`LANDMARK5_NAMES` order, or ``None``.
        landmarks: dense landmarks ``(N, 2)`` (68 for dlib, 478 for the mesh), or ``None``.
        embedding: L2-normalised identity vector, or ``None`` until embedded.
        aligned: aligned face crop ``(S, S, 3)`` ``uint8`` (canonical 5-point template), or ``None``.
        backend: name of the backend that produced it; embeddings of different backends never mix.
    """

    box: tuple[int, int, int, int]
    score: float = 1.0
    landmarks5: np.ndarray | None = None
    landmarks: np.ndarray | None = None
    embedding: np.ndarray | None = None
    aligned: np.ndarray | None = None
    backend: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def width(self) -> int:
        return int(self.box[2] - self.box[0])

    @property
    def height(self) -> int:
        return int(self.box[3] - self.box[1])

    @property
    def area(self) -> int:
        return max(self.width, 0) * max(self.height, 0)

    @property
    def center(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2.0, (self.box[1] + self.box[3]) / 2.0)

    def to_dict(self) -> dict[str, object]:
        """JSON-friendly summary (no pixels, no embedding)."""
        return {
            "box": [int(v) for v in self.box],
            "score": round(float(self.score), 4),
            "backend": self.backend,
        }


@runtime_checkable
class FaceBackend(Protocol):
    """What every face backend provides.

    ``detect`` finds faces with landmarks; ``embed`` fills ``Face.embedding`` (L2-normalised,
    ``embedding_dim`` long) and ``Face.aligned``; ``analyze`` does both.
    """

    name: str
    embedding_dim: int
    encoder: str  # human-readable encoder name written into every report

    def detect(self, image: np.ndarray) -> list[Face]: ...

    def embed(self, image: np.ndarray, faces: list[Face]) -> list[Face]: ...

    def analyze(self, image: np.ndarray) -> list[Face]: ...


BackendFactory = Callable[..., FaceBackend]
_FACTORIES: dict[str, BackendFactory] = {}
_INSTANCES: dict[tuple[str, tuple[tuple[str, object], ...]], FaceBackend] = {}
_LOCK = threading.Lock()


def register_backend(name: str) -> Callable[[BackendFactory], BackendFactory]:
    """Decorator: ``@register_backend("dlib")`` on a class or factory function."""

    def decorator(factory: BackendFactory) -> BackendFactory:
        _FACTORIES[name] = factory
        return factory

    return decorator


def available_backends() -> list[str]:
    _import_builtin_backends()
    return sorted(_FACTORIES)


def get_backend(name: str | None = None, **options: object) -> FaceBackend:
    """Return the (process-cached) backend ``name`` built with ``options``.

    ``name`` defaults to ``Settings.face_backend`` (``dlib``).
    """
    from headshot_lab.config import get_settings

    name = name or get_settings().face_backend
    _import_builtin_backends()
    if name not in _FACTORIES:
        raise HeadshotLabError(
            f"Unknown face backend {name!r}; choose one of {', '.join(sorted(_FACTORIES))}.",
            code="unknown_backend",
        )
    key = (name, tuple(sorted(options.items())))
    with _LOCK:
        if key not in _INSTANCES:
            _INSTANCES[key] = _FACTORIES[name](**options)
        return _INSTANCES[key]


def _import_builtin_backends() -> None:
    # Importing registers them; the heavy libraries inside load lazily on first use.
    from headshot_lab.faces import dlib_backend, insightface_backend  # noqa: F401


def l2_normalize(vector: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """``v / max(‖v‖₂, eps)`` as ``float32``."""
    vector = np.asarray(vector, dtype=np.float32)
    return vector / max(float(np.linalg.norm(vector)), eps)


def similarity(a: np.ndarray | Face, b: np.ndarray | Face) -> float:
    """Cosine similarity ``a·b / (‖a‖‖b‖)`` of two embeddings (or two embedded faces), in [-1, 1]."""
    va = a.embedding if isinstance(a, Face) else a
    vb = b.embedding if isinstance(b, Face) else b
    if va is None or vb is None:
        raise ValueError("both faces need an embedding; call backend.embed() first")
    if isinstance(a, Face) and isinstance(b, Face) and a.backend != b.backend:
        raise ValueError(f"cannot compare {a.backend} and {b.backend} embeddings")
    # Clipped: the float32 dot product of two unit vectors can land an ulp outside [-1, 1].
    return float(np.clip(np.dot(l2_normalize(va), l2_normalize(vb)), -1.0, 1.0))


def largest_face(faces: list[Face]) -> Face | None:
    """The face with the largest box area, or ``None``."""
    return max(faces, key=lambda f: f.area) if faces else None
