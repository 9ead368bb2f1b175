"""ZeroGPU support that costs nothing elsewhere.

On a Hugging Face Space with *ZeroGPU* hardware a GPU is attached only while a function decorated
with ``spaces.GPU`` runs. :func:`gpu` applies that decorator when — and only when — the ``spaces``
package is importable **and** the Space runs on ZeroGPU (the ``SPACES_ZERO_GPU`` variable the Space
runtime sets). Everywhere else (a laptop, CI, a Space with a dedicated GPU, a CPU Space) it returns
the function unchanged, so the app never depends on ``spaces`` being installed.

Both forms work::

    @gpu
    def generate(...): ...

    @gpu(duration=300)          # seconds of GPU time ZeroGPU reserves per call
    def train(...): ...
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import Any, TypeVar, overload

F = TypeVar("F", bound=Callable[..., Any])

#: Environment variable set by the Hugging Face Spaces runtime on ZeroGPU hardware.
ZERO_GPU_ENV = "SPACES_ZERO_GPU"


def on_zero_gpu() -> bool:
    """Whether this process runs on a ZeroGPU Space (``SPACES_ZERO_GPU`` is a true value)."""
    return os.environ.get(ZERO_GPU_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def _spaces_gpu() -> Callable[..., Any] | None:
    """``spaces.GPU`` when the ``spaces`` package is installed, else ``None``."""
    try:
        module = importlib.import_module("spaces")
    except ImportError:
        return None
    return getattr(module, "GPU", None)


@overload
def gpu(fn: F) -> F: ...


@overload
def gpu(fn: None = None, *, duration: int | None = None) -> Callable[[F], F]: ...


def gpu(fn: F | None = None, *, duration: int | None = None) -> F | Callable[[F], F]:
    """Decorate ``fn`` with ``spaces.GPU`` on ZeroGPU; return it unchanged everywhere else.

    Args:
        fn: the function (when used as a bare ``@gpu``).
        duration: seconds of GPU time to reserve per call (ZeroGPU's default is 60).

    Returns:
        The decorated function, or a decorator when called with keyword arguments only.
    """

    def decorate(function: F) -> F:
        decorator = _spaces_gpu() if on_zero_gpu() else None
        if decorator is None:
            return function
        wrapped = decorator(duration=duration)(function) if duration is not None else decorator(function)
        return wrapped  # type: ignore[no-any-return]

    if fn is not None:
        return decorate(fn)
    return decorate


__all__ = ["ZERO_GPU_ENV", "gpu", "on_zero_gpu"]
