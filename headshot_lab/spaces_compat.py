"""ZeroGPU support that costs nothing elsewhere.

On a Hugging Face Space with *ZeroGPU* hardware a GPU is attached only while a function decorated
with ``spaces.GPU`` runs. :func:`gpu` applies that decorator when — and only when — the ``spaces``
package is importable **and** the Space runs on ZeroGPU (the ``SPACES_ZERO_GPU`` variable the Space
runtime sets). Everywhere else (a laptop, CI, a Space with a dedicated GPU, a CPU Space) it returns
the function unchanged, so the app never depends on ``spaces`` being installed.

Both forms work::

    @gpu
    def generate(...): ...

    @gpu(duration=lambda plan: plan.gpu_seconds)   # seconds asked for, computed per call from the work
    def render(plan): ...

ZeroGPU's rules, as the ``spaces`` package 0.51.3 implements them (``spaces/zero/wrappers.py``, ``client.py``):

* ``duration`` is an ``int`` (seconds), a ``timedelta`` or a callable taking **the same arguments** as the
  function (``static_duration(duration, *args, **kwargs)``); the default is 60 s
  (``DEFAULT_SCHEDULE_DURATION``). It is sent to the scheduler *before* the function runs, multiplied by
  the node's ``duration_factor`` (1.0 on H200 nodes, 1.5 on RTX PRO 6000 nodes, ``zero/configs.json``); a
  request above the per-call maximum is refused with "The requested GPU duration (…s) is larger than the
  maximum allowed" and the function never runs. The maximum is 300 s (five minutes: the ZeroGPU team's
  answer in zero-gpu-explorers/README discussions 7 and 98). Lower requests get a better place in the queue.
* the function runs in a forked worker; its arguments and its result are pickled across (so they must be
  plain data), and side effects on the parent's objects made inside the call do not come back.
* CUDA: at ``import spaces`` torch is patched (``torch.cuda.is_available()`` is True, ``.to("cuda")`` records
  the tensor, ``zero/torch/patching.py``); when the worker starts the recorded tensors are moved onto the real
  GPU. So a pipeline must be built and ``.to("cuda")``-ed **at import, on the main thread** (the patch's
  ``TorchFunctionMode`` is entered on the importing thread only), never inside the GPU call.
"""

from __future__ import annotations

import importlib
import math
import os
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any, TypeVar, overload

F = TypeVar("F", bound=Callable[..., Any])

#: Environment variable set by the Hugging Face Spaces runtime on ZeroGPU hardware.
ZERO_GPU_ENV = "SPACES_ZERO_GPU"
#: The most seconds one ZeroGPU call may ask for (a request above it is refused before the function runs).
ZERO_GPU_MAX_DURATION_S = 300
#: What ZeroGPU reserves when no duration is given.
ZERO_GPU_DEFAULT_DURATION_S = 60
#: The largest ``duration_factor`` among ZeroGPU's node types (``spaces/zero/configs.json``): the scheduler
#: multiplies the request by it, so a request must stay under ``MAX / factor`` to be accepted on every node.
ZERO_GPU_DURATION_FACTOR = 1.5
#: The most this app ever asks for in one call: accepted on every ZeroGPU node type.
SAFE_MAX_DURATION_S = int(ZERO_GPU_MAX_DURATION_S // ZERO_GPU_DURATION_FACTOR)

Duration = int | float | timedelta | Callable[..., Any] | None


def on_zero_gpu() -> bool:
    """Whether this process runs on a ZeroGPU Space (``SPACES_ZERO_GPU`` is a true value)."""
    return os.environ.get(ZERO_GPU_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def import_spaces_first() -> bool:
    """On ZeroGPU, ``import spaces`` now: it must come before anything initialises CUDA (its own check raises
    "CUDA has been initialized before importing the `spaces` package" otherwise). Returns whether it did."""
    if not on_zero_gpu():
        return False
    return _spaces_gpu() is not None


def _spaces_gpu() -> Callable[..., Any] | None:
    """``spaces.GPU`` when the ``spaces`` package is installed, else ``None``."""
    try:
        module = importlib.import_module("spaces")
    except ImportError:
        return None
    return getattr(module, "GPU", None)


def clamp_duration(seconds: float | timedelta | None, *, limit: int = SAFE_MAX_DURATION_S) -> int:
    """``ceil(seconds)`` clamped to ``[1, limit]``; ``None`` → ZeroGPU's default (60 s, itself clamped)."""
    if seconds is None:
        seconds = ZERO_GPU_DEFAULT_DURATION_S
    if isinstance(seconds, timedelta):
        seconds = seconds.total_seconds()
    return int(min(max(math.ceil(float(seconds)), 1), limit))


def clamped(duration: Duration, *, limit: int = SAFE_MAX_DURATION_S) -> int | Callable[..., int] | None:
    """``duration`` as ZeroGPU gets it from this app: never above ``limit``.

    A callable stays a callable of the same arguments whose result is clamped; ``None`` stays ``None``
    (ZeroGPU's 60 s default, under every limit).
    """
    if duration is None:
        return None
    if callable(duration):
        function = duration

        @wraps(function)
        def per_call(*args: Any, **kwargs: Any) -> int:
            return clamp_duration(function(*args, **kwargs), limit=limit)

        return per_call
    return clamp_duration(duration, limit=limit)


@overload
def gpu(fn: F) -> F: ...


@overload
def gpu(fn: None = None, *, duration: Duration = None) -> Callable[[F], F]: ...


def gpu(fn: F | None = None, *, duration: Duration = None) -> F | Callable[[F], F]:
    """Decorate ``fn`` with ``spaces.GPU`` on ZeroGPU; return it unchanged everywhere else.

    Args:
        fn: the function (when used as a bare ``@gpu``).
        duration: seconds of GPU time to ask for per call — a number, or a callable of the function's own
            arguments (computed per call from the work). Clamped to :data:`SAFE_MAX_DURATION_S`, so no
            request is ever above ZeroGPU's per-call maximum on any node type.

    Returns:
        The decorated function, or a decorator when called with keyword arguments only.
    """

    def decorate(function: F) -> F:
        decorator = _spaces_gpu() if on_zero_gpu() else None
        if decorator is None:
            return function
        asked = clamped(duration)
        wrapped = decorator(duration=asked)(function) if asked is not None else decorator(function)
        return wrapped  # type: ignore[no-any-return]

    if fn is not None:
        return decorate(fn)
    return decorate


__all__ = [
    "SAFE_MAX_DURATION_S",
    "ZERO_GPU_DEFAULT_DURATION_S",
    "ZERO_GPU_DURATION_FACTOR",
    "ZERO_GPU_ENV",
    "ZERO_GPU_MAX_DURATION_S",
    "clamp_duration",
    "clamped",
    "gpu",
    "import_spaces_first",
    "on_zero_gpu",
]
