"""A stand-in for ZeroGPU's ``spaces.GPU`` that enforces its rules, for tests of the app's real code paths.

What it emulates (``spaces`` 0.51.3, ``spaces/zero/wrappers.py`` and ``client.py``):

* **the per-call maximum**: the requested ``duration`` (an ``int``, a ``timedelta``, or a callable of the call's
  own arguments; 60 s when none) is computed *before* the function runs, multiplied by the node's
  ``duration_factor`` (1.5 by default: the RTX PRO 6000 nodes, the strictest), and a request above
  ``max_duration_s`` (300) is refused with ZeroGPU's message; the function never runs;
* **the worker process**: the arguments and the result are pickled across, as they are to and from the forked
  worker (an argument or result that cannot be pickled fails as it would there; changes made inside to the
  arguments do not come back);
* **what runs inside**: every weight load — ``from_pretrained`` of diffusers pipelines and models and of
  transformers models, ``hf_hub_download`` / ``snapshot_download``, ``torch.load``, ``safetensors`` ``load_file`` /
  ``safe_open`` — is recorded with the call it happened in (or ``None``: outside any GPU call).

Not emulated: CUDA (tests run on the CPU with ``HEADSHOT_LAB_DEVICE=cpu``; on ZeroGPU ``spaces`` patches
``torch.cuda.is_available()`` to True and records ``.to("cuda")`` at import), quotas and the queue.

Usage::

    fake = FakeZeroGPU()
    with fake.installed():            # sys.modules["spaces"], SPACES_ZERO_GPU=true, the loaders recorded
        app = import_app()            # decorators applied now, pipelines preloaded at import
        ...
    fake.assert_rules()               # no request above the maximum, no weights loaded inside a GPU call
"""

from __future__ import annotations

import functools
import os
import pickle
import sys
import types
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

#: ZeroGPU's per-call maximum, in seconds (after the node's duration factor).
MAX_DURATION_S = 300
#: What ZeroGPU reserves when the decorator names no duration.
DEFAULT_DURATION_S = 60
#: The strictest node's factor (``spaces/zero/configs.json``: 1.0 on H200, 1.5 on RTX PRO 6000).
DURATION_FACTOR = 1.5


class ZeroGPUError(RuntimeError):
    """What the fake raises where ZeroGPU refuses a call (it raises a ``gradio.Error`` there)."""


@dataclass
class Load:
    """One weight load: what was called, on what, and in which GPU call (``None``: outside any)."""

    what: str
    target: str
    call: str | None


@dataclass
class GPUCall:
    """One call of a decorated function: the seconds it asked for and what happened."""

    function: str
    requested_s: float
    charged_s: float
    ran: bool = False
    refused: str | None = None
    loads: list[Load] = field(default_factory=list)


def _seconds(duration: Any) -> float:
    if duration is None:
        return float(DEFAULT_DURATION_S)
    if isinstance(duration, timedelta):
        return duration.total_seconds()
    return float(duration)


def _target(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    for value in (*args, *kwargs.values()):
        if isinstance(value, str | os.PathLike):
            return os.fspath(value)
    return ""


class FakeZeroGPU:
    """A ``spaces`` module whose ``GPU`` enforces ZeroGPU's rules and records what runs inside each call."""

    def __init__(self, max_duration_s: float = MAX_DURATION_S, duration_factor: float = DURATION_FACTOR) -> None:
        self.max_duration_s = float(max_duration_s)
        self.duration_factor = float(duration_factor)
        self.calls: list[GPUCall] = []
        self.loads: list[Load] = []
        self._current: GPUCall | None = None

    # -- the decorator ---------------------------------------------------------------------------------
    def GPU(
        self, task: Callable[..., Any] | None = None, *, duration: Any = None, size: str | None = None, **_: Any
    ) -> Any:
        """``spaces.GPU``: ``@GPU``, ``@GPU(duration=…)`` (an int, a timedelta or a callable of the arguments)."""
        if task is None:
            return functools.partial(self.GPU, duration=duration, size=size)
        return self._wrap(task, duration)

    def _wrap(self, task: Callable[..., Any], duration: Any) -> Callable[..., Any]:
        @functools.wraps(task)
        def handler(*args: Any, **kwargs: Any) -> Any:
            asked = duration(*args, **kwargs) if callable(duration) else duration
            requested = _seconds(asked)
            call = GPUCall(task.__qualname__, requested, requested * self.duration_factor)
            self.calls.append(call)
            if call.charged_s > self.max_duration_s:
                call.refused = (
                    f"The requested GPU duration ({round(call.charged_s)}s) is larger than the maximum allowed"
                )
                raise ZeroGPUError(call.refused)
            args, kwargs = pickle.loads(pickle.dumps((args, kwargs)))  # into the worker process
            self._current = call
            try:
                result = task(*args, **kwargs)
            finally:
                self._current = None
            call.ran = True
            return pickle.loads(pickle.dumps(result))  # and back

        handler.zerogpu = None  # type: ignore[attr-defined]  # spaces marks its wrappers so
        return handler

    def module(self) -> types.ModuleType:
        """A module to put in ``sys.modules["spaces"]``."""
        module = types.ModuleType("spaces")
        module.GPU = self.GPU  # type: ignore[attr-defined]
        module.__version__ = "0.51.3+fake"  # type: ignore[attr-defined]
        module.fake = self  # type: ignore[attr-defined]
        return module

    # -- the recorder ----------------------------------------------------------------------------------
    def record(self, what: str, target: str) -> None:
        """Note a weight load (in the current GPU call, if any)."""
        load = Load(what, target, self._current.function if self._current else None)
        self.loads.append(load)
        if self._current is not None:
            self._current.loads.append(load)

    def _recording(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def recorded(*args: Any, **kwargs: Any) -> Any:
            self.record(name, _target(args, kwargs))
            return function(*args, **kwargs)

        return recorded

    def _recording_classmethod(self, owner: type, name: str) -> Any:
        function = owner.__dict__[name].__func__
        fake = self

        def recorded(cls: type, *args: Any, **kwargs: Any) -> Any:
            fake.record(f"{cls.__name__}.{name}", _target(args, kwargs))
            return function(cls, *args, **kwargs)

        return classmethod(functools.wraps(function)(recorded))

    def _patch_loaders(self, stack: ExitStack) -> None:
        from unittest import mock

        import diffusers
        import huggingface_hub
        import safetensors
        import safetensors.torch
        import torch
        import transformers

        for owner in (diffusers.DiffusionPipeline, diffusers.ModelMixin, transformers.PreTrainedModel):
            stack.enter_context(
                mock.patch.object(owner, "from_pretrained", self._recording_classmethod(owner, "from_pretrained"))
            )
        for module, name in (
            (huggingface_hub, "hf_hub_download"),
            (huggingface_hub, "snapshot_download"),
            (torch, "load"),
            (safetensors.torch, "load_file"),
            (safetensors, "safe_open"),
        ):
            original = getattr(module, name)
            label = f"{module.__name__}.{name}"
            stack.enter_context(mock.patch.object(module, name, self._recording(label, original)))

    @contextmanager
    def installed(self) -> Iterator[FakeZeroGPU]:
        """``spaces`` is this fake, ``SPACES_ZERO_GPU=true``, and every weight load is recorded, until exit."""
        from unittest import mock

        with ExitStack() as stack:
            self._patch_loaders(stack)  # imports diffusers & co. first: they stay imported afterwards
            stack.enter_context(mock.patch.dict(os.environ, {"SPACES_ZERO_GPU": "true"}))
            # Only the "spaces" entry is swapped (patch.dict on sys.modules would also drop every module imported
            # meanwhile, and importing torch's modules twice fails).
            previous = sys.modules.get("spaces")
            sys.modules["spaces"] = self.module()
            stack.callback(
                lambda: sys.modules.pop("spaces", None) if previous is None else sys.modules.update(spaces=previous)
            )
            yield self

    # -- the rules -------------------------------------------------------------------------------------
    def inside_loads(self) -> list[Load]:
        """Every weight load that happened inside a GPU call."""
        return [load for load in self.loads if load.call is not None]

    def assert_rules(self) -> None:
        """No call asked for more than the maximum, and no weights were loaded inside a GPU call."""
        refused = [call for call in self.calls if call.refused]
        assert not refused, f"GPU requests above ZeroGPU's maximum: {[(c.function, c.requested_s) for c in refused]}"
        inside = self.inside_loads()
        assert not inside, f"weights loaded inside a GPU call: {inside}"


__all__ = ["DEFAULT_DURATION_S", "DURATION_FACTOR", "MAX_DURATION_S", "FakeZeroGPU", "GPUCall", "Load", "ZeroGPUError"]
