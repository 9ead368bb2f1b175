"""Load the face models in the background when the app starts, so a visitor's first click is not the slow one.

Measured (``benchmarks/app_startup.py``, 2 cores): the first ``check_photos`` after a cold start took
3.5 s against 0.67 s warm — 2.8 s of imports and model loading (dlib's detector, landmark and
ResNet models; mediapipe's face mesh, which also imports matplotlib). :func:`start_warm_up` does that
work in a daemon thread while the server starts and the visitor reads the page. The models are
process-wide and guarded by locks (``faces.dlib_backend``, ``faces.mesh``), so a request that arrives
mid-warm-up waits for the same load instead of doing it twice.

A model that cannot be loaded (weights missing, an import failing) is logged and skipped: the action
that needs it reports the clear error to the visitor, as without the warm-up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping

import numpy as np

logger = logging.getLogger(__name__)

#: The blank image each model is run on once (large enough for every model's minimum size).
_BLANK = np.full((256, 256, 3), 128, dtype=np.uint8)


def _face_models() -> None:
    from headshot_lab.faces import detect_faces

    detect_faces(_BLANK)  # loads the default backend's detector, landmark and identity models


def _face_mesh() -> None:
    from headshot_lab.faces.mesh import face_mesh

    face_mesh(_BLANK)


def _person_mask() -> None:
    from headshot_lab.faces.mesh import selfie_mask

    selfie_mask(_BLANK)


WARM_UP_STEPS: dict[str, Callable[[], None]] = {
    "face_models": _face_models,
    "face_mesh": _face_mesh,
    "person_mask": _person_mask,
}


def warm_up(extra: Mapping[str, Callable[[], object]] | None = None) -> dict[str, float | str]:
    """Run each step of :data:`WARM_UP_STEPS`, then each of ``extra`` (e.g. the app's generator on a dedicated GPU:
    ``{"generator": backend.preload}``), once: ``{step: seconds}``, or ``{step: "error: …"}`` if it failed."""
    timings: dict[str, float | str] = {}
    for name, step in {**WARM_UP_STEPS, **(extra or {})}.items():
        start = time.perf_counter()
        try:
            step()
        except Exception as exc:  # a warm-up never takes the app down; the action that needs it reports it
            logger.warning("warm-up step %s failed: %s", name, exc)
            timings[name] = f"error: {exc}"
        else:
            timings[name] = round(time.perf_counter() - start, 3)
    logger.info("models warmed up: %s", timings)
    return timings


def start_warm_up(extra: Mapping[str, Callable[[], object]] | None = None) -> threading.Thread:
    """Start :func:`warm_up` (with the ``extra`` steps) in a daemon thread and return it (``join()`` it to wait).

    Not for ZeroGPU's pipelines: ``spaces`` records ``.to("cuda")`` only on the thread that imported it, so those
    are built at import (``AppBackend.preload`` in ``app.py``)."""
    thread = threading.Thread(target=warm_up, args=(extra,), name="headshot-lab-warm-up", daemon=True)
    thread.start()
    return thread
