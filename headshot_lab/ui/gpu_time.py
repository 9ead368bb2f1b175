"""How many seconds of graphics-card time an action needs: the per-call ``duration`` ZeroGPU is asked for.

ZeroGPU charges a visitor's quota and places the call in its queue by the *requested* duration, checks it
before the function runs, and refuses a request above its per-call maximum
(:data:`~headshot_lab.spaces_compat.ZERO_GPU_MAX_DURATION_S`, 300 s, times a node's ``duration_factor`` of up to
1.5: this app never asks for more than :data:`~headshot_lab.spaces_compat.SAFE_MAX_DURATION_S` = 200 s). So the
request is computed per call from the work::

    estimate = overhead + n · (steps · step_s · cfg · control + decode_s)
    request  = clamp(ceil(MARGIN · estimate), MIN_REQUEST_S, SAFE_MAX_DURATION_S)

with ``step_s`` the seconds of one denoising step of one image at the family's native size in fp16 with
classifier-free guidance (two UNet passes), ``cfg = 1/2`` when guidance ≤ 1 (the few-step path: one pass),
``control = 1.4`` with a ControlNet, ``decode_s`` the VAE decode of one image and ``overhead`` what a call costs
besides (ZeroGPU: attaching the GPU and moving the packed weights onto it). A request whose estimate with
the margin is above the limit is refused *before* any call, naming how many images would fit.

The table :data:`STEP_SECONDS` holds **estimates**, not measurements of this code: public per-step figures of
diffusers SD1.5 (512²) / SDXL (1024²) fp16 for each GPU class, rounded up; ``zerogpu`` is the H200 MIG
``3g.71gb`` slice ``spaces`` reports (60 of the H200's 132 SMs, so about half an H100). ``benchmarks/gpu_generate.py``
measures the real figures on a lent GPU; put them here when it has run (``benchmarks/README.md``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from headshot_lab.errors import HeadshotLabError
from headshot_lab.spaces_compat import SAFE_MAX_DURATION_S, ZERO_GPU_MAX_DURATION_S, on_zero_gpu

#: The GPU classes of the tables (``cpu``: a CPU Space, for the time shown to the visitor only).
HARDWARE = ("zerogpu", "h100", "a100", "l4", "a10g", "t4", "cpu")
#: Seconds per denoising step per image, CFG included, fp16, native size (estimates: see the module docstring).
STEP_SECONDS: dict[str, dict[str, float]] = {
    "sd15": {"zerogpu": 0.03, "h100": 0.015, "a100": 0.025, "l4": 0.08, "a10g": 0.06, "t4": 0.15, "cpu": 3.0},
    "sdxl": {"zerogpu": 0.09, "h100": 0.045, "a100": 0.075, "l4": 0.30, "a10g": 0.22, "t4": 0.60, "cpu": 12.0},
}
#: Seconds of the VAE decode of one image.
DECODE_SECONDS: dict[str, dict[str, float]] = {
    "sd15": {"zerogpu": 0.05, "h100": 0.03, "a100": 0.04, "l4": 0.12, "a10g": 0.1, "t4": 0.25, "cpu": 4.0},
    "sdxl": {"zerogpu": 0.4, "h100": 0.2, "a100": 0.3, "l4": 1.0, "a10g": 0.8, "t4": 2.0, "cpu": 30.0},
}
#: Seconds of one LoRA training step (batch 1 + 1 class image, gradient checkpointing, native size).
TRAIN_STEP_SECONDS: dict[str, dict[str, float]] = {
    "sd15": {"zerogpu": 0.35, "h100": 0.2, "a100": 0.3, "l4": 0.9, "a10g": 0.8, "t4": 1.6, "cpu": 30.0},
    "sdxl": {"zerogpu": 0.9, "h100": 0.45, "a100": 0.7, "l4": 2.5, "a10g": 2.2, "t4": 5.0, "cpu": 120.0},
}
#: Seconds a call costs besides the steps (ZeroGPU: the GPU is attached and the weights moved onto it).
CALL_OVERHEAD_S = {"zerogpu": 10.0}
DEFAULT_OVERHEAD_S = 2.0
#: Seconds to load the training models onto the GPU, once per training run.
TRAIN_SETUP_S = 40.0
MARGIN = 1.5
"""Requested = estimate × MARGIN: a call slower than estimated by up to half still finishes in its window."""
MIN_REQUEST_S = 10
CONTROLNET_FACTOR = 1.4
NO_CFG_FACTOR = 0.5


def hardware() -> str:
    """The GPU class this process runs on: ``zerogpu`` on ZeroGPU, else the CUDA device's name, else ``cpu``."""
    if on_zero_gpu():
        return "zerogpu"
    try:
        import torch

        if not torch.cuda.is_available():
            return "cpu"
        name = torch.cuda.get_device_name().lower()
    except Exception:  # no torch, no driver: the time shown is a CPU's
        return "cpu"
    for key in ("h100", "h200", "a100", "l4", "a10g", "t4"):
        if key in name:
            return "h100" if key == "h200" else key
    return "t4"  # an unknown GPU: the slowest of the table, so the time shown is not too short


def _row(table: dict[str, dict[str, float]], family: str, where: str) -> float:
    return table.get(family, table["sdxl"]).get(where, table["sdxl"]["t4"])


@dataclass(frozen=True)
class GenerateWork:
    """One generation call's work: ``n`` images of ``steps`` steps of a ``family`` base on ``where``."""

    family: str
    n: int
    steps: int
    guidance: float = 5.0
    control: bool = False
    where: str = "zerogpu"

    def estimate_s(self) -> float:
        """``overhead + n · (steps · step_s · cfg · control + decode_s)`` in seconds (see the module docstring)."""
        step = _row(STEP_SECONDS, self.family, self.where)
        step *= NO_CFG_FACTOR if self.guidance <= 1 else 1.0
        step *= CONTROLNET_FACTOR if self.control else 1.0
        per_image = self.steps * step + _row(DECODE_SECONDS, self.family, self.where)
        return CALL_OVERHEAD_S.get(self.where, DEFAULT_OVERHEAD_S) + self.n * per_image

    def request_s(self) -> int:
        """The duration to ask for: ``ceil(MARGIN · estimate)`` within ``[MIN_REQUEST_S, SAFE_MAX_DURATION_S]``."""
        return int(min(max(math.ceil(MARGIN * self.estimate_s()), MIN_REQUEST_S), SAFE_MAX_DURATION_S))

    def fits(self) -> bool:
        """Whether the work, with the margin, fits in one call."""
        return MARGIN * self.estimate_s() <= SAFE_MAX_DURATION_S

    def most_images(self) -> int:
        """The most images of these settings that fit in one call (0 when not even one does)."""
        one = GenerateWork(self.family, 1, self.steps, self.guidance, self.control, self.where)
        overhead = CALL_OVERHEAD_S.get(self.where, DEFAULT_OVERHEAD_S)
        per_image = one.estimate_s() - overhead
        return max(int((SAFE_MAX_DURATION_S / MARGIN - overhead) // per_image), 0)

    def require_fits(self) -> None:
        """Refuse work that one ZeroGPU call cannot hold, before anything runs (with what would fit)."""
        if self.fits():
            return
        most = self.most_images()
        fewer = f"Ask for at most {most} at a time" if most >= 1 else "Lower the sampler steps"
        raise HeadshotLabError(
            f"{self.n} headshots are more work than one turn on the shared graphics card allows "
            f"(about {round(MARGIN * self.estimate_s())} s; the most one turn may take is {SAFE_MAX_DURATION_S} s).",
            fix=f"{fewer}, and run it again for more.",
            code="gpu_time_limit",
        )


def training_estimate_s(
    family: str,
    steps: int,
    *,
    prior: bool = True,
    class_images: int = 100,
    class_steps: int = 30,
    where: str = "zerogpu",
) -> float:
    """Seconds of GPU time one LoRA training needs: ``setup + steps · train_step_s`` plus, with prior
    preservation and no cached class images, ``class_images · (class_steps · step_s + decode_s)``."""
    seconds = TRAIN_SETUP_S + steps * _row(TRAIN_STEP_SECONDS, family, where)
    if prior:
        seconds += class_images * (
            class_steps * _row(STEP_SECONDS, family, where) + _row(DECODE_SECONDS, family, where)
        )
    return seconds


def minutes_words(seconds: float) -> str:
    """``"about 7 minutes"`` (rounded up to whole minutes; ``"under a minute"`` below 60 s)."""
    if seconds < 60:
        return "under a minute"
    minutes = math.ceil(seconds / 60)
    return f"about {minutes} minute{'s' if minutes != 1 else ''}"


def training_refusal(family: str, steps: int, *, prior: bool = True) -> HeadshotLabError:
    """Why "Train on my photos" is not offered on ZeroGPU, in plain words, with the work it would take.

    The choice (refuse rather than train in resumable slices): one training needs several minutes of GPU time in
    one piece (:func:`training_estimate_s`), each slice would have to load the training models inside its GPU
    call (they are not the pipeline built at start-up), and a free visitor's daily ZeroGPU quota is a few minutes:
    slices would stop half-way, leaving a half-trained likeness that was paid for and cannot be used.
    """
    seconds = training_estimate_s(family, steps, prior=prior)
    return HeadshotLabError(
        f"Training on your photos needs {minutes_words(seconds)} of graphics-card time in one piece. On this free "
        f"shared graphics card one turn may last about {SAFE_MAX_DURATION_S // 60} minutes at most "
        "and a visitor gets only a few minutes a day, so training is not offered here.",
        fix="Choose “Quick, no training” (ready in seconds) and use “Quick preview”, or use a copy of this app "
        "that runs on its own graphics card, where training works.",
        code="training_needs_dedicated_gpu",
    )


__all__ = [
    "DECODE_SECONDS",
    "HARDWARE",
    "MARGIN",
    "STEP_SECONDS",
    "TRAIN_STEP_SECONDS",
    "ZERO_GPU_MAX_DURATION_S",
    "GenerateWork",
    "hardware",
    "minutes_words",
    "training_estimate_s",
    "training_refusal",
]
