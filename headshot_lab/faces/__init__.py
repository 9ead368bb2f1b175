"""Face detection, landmarks, alignment and identity embeddings.

>>> from headshot_lab import faces
>>> backend = faces.get_backend("dlib")          # doctest: +SKIP
>>> found = backend.analyze(pixels)              # doctest: +SKIP
>>> faces.similarity(found[0], other[0])         # doctest: +SKIP
>>> every = faces.find_faces(pixels)             # doctest: +SKIP  (MediaPipe ∪ dlib HOG, largest first)
>>> embedded = backend.embed(pixels, every)      # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np

from headshot_lab.errors import FaceNotFoundError
from headshot_lab.faces.align import align_face, arcface_template, landmarks5_from_68
from headshot_lab.faces.base import (
    LANDMARK5_NAMES,
    Face,
    FaceBackend,
    available_backends,
    get_backend,
    l2_normalize,
    largest_face,
    register_backend,
    similarity,
)
from headshot_lab.faces.detect import box_iou, find_faces, is_grayscale

__all__ = [
    "LANDMARK5_NAMES",
    "Face",
    "FaceBackend",
    "align_face",
    "arcface_template",
    "available_backends",
    "box_iou",
    "detect_faces",
    "embed",
    "find_faces",
    "get_backend",
    "is_grayscale",
    "l2_normalize",
    "landmarks5_from_68",
    "largest_face",
    "register_backend",
    "similarity",
]


def detect_faces(image: np.ndarray, backend: str | None = None) -> list[Face]:
    """Detect faces (with landmarks, no embeddings) using ``backend`` (default: settings)."""
    return get_backend(backend).detect(image)


def embed(image: np.ndarray, backend: str | None = None) -> np.ndarray:
    """L2-normalised embedding of the largest face in ``image``.

    Raises:
        FaceNotFoundError: no face was found.
    """
    model = get_backend(backend)
    face = largest_face(model.detect(image))
    if face is None:
        raise FaceNotFoundError("No face was found in the photo.")
    (face,) = model.embed(image, [face])
    assert face.embedding is not None
    return face.embedding
