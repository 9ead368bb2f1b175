"""GPU benchmark helpers: synchronise, read peak memory, describe the device, and survive an OOM.

Peak memory is read with ``torch.cuda.max_memory_allocated`` (what tensors used) and
``torch.cuda.max_memory_reserved`` (what PyTorch's caching allocator held from the driver: the figure
a smaller card must have, plus the CUDA context) after ``reset_peak_memory_stats``.
"""

from __future__ import annotations

import gc
import importlib.metadata
import subprocess
import sys
import traceback
from collections.abc import Callable
from typing import Any

GIB = 2**30
LIBRARIES = ("torch", "diffusers", "transformers", "peft", "accelerate")


def sync(device: Any) -> None:
    """Wait for queued CUDA work (timings are otherwise only launch times)."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: Any) -> None:
    """Free what the last configuration left and start a new peak-memory window (CUDA only)."""
    import torch

    if device.type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory(device: Any) -> dict[str, float | None]:
    """``peak_vram_gib`` (max allocated) and ``peak_vram_reserved_gib`` (max reserved); ``None`` off CUDA."""
    import torch

    if device.type != "cuda":
        return {"peak_vram_gib": None, "peak_vram_reserved_gib": None}
    return {
        "peak_vram_gib": round(torch.cuda.max_memory_allocated(device) / GIB, 3),
        "peak_vram_reserved_gib": round(torch.cuda.max_memory_reserved(device) / GIB, 3),
    }


def driver_version() -> str | None:
    """The NVIDIA driver version from ``nvidia-smi`` (else NVML), or ``None`` when neither answers."""
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        )
        first = done.stdout.strip().splitlines()
        if first:
            return first[0].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
        return version.decode() if isinstance(version, bytes) else str(version)
    except Exception:  # no NVML library, no driver: the report says None
        return None


def device_info(device: Any) -> dict[str, Any]:
    """Where the figures were measured: device, GPU name and memory, CUDA / cuDNN / driver, library versions."""
    import torch

    info: dict[str, Any] = {"device": str(device)}
    for name in LIBRARIES:
        try:
            info[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            info[name] = None
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            gpu=props.name,
            gpu_memory_gib=round(props.total_memory / GIB, 1),
            compute_capability=f"{props.major}.{props.minor}",
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
            driver=driver_version(),
            bf16_supported=torch.cuda.is_bf16_supported(),
        )
    return info


def error_result(exc: BaseException) -> dict[str, Any]:
    """``{"status": "error", "error": {code, message, fix}}`` for a recorded failure."""
    from headshot_lab.errors import HeadshotLabError

    if isinstance(exc, HeadshotLabError):
        return {"status": "error", "error": exc.to_dict()}
    return {"status": "error", "error": {"code": "unexpected", "message": f"{type(exc).__name__}: {exc}", "fix": ""}}


def run_guarded(what: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one configuration; a failure becomes its result instead of ending the whole benchmark.

    A CUDA out-of-memory error is turned into headshot-lab's own ``out_of_memory`` error (the message
    users see, from :func:`headshot_lab.models.out_of_memory_guard`); any other error is recorded with
    its type and message (and its traceback printed to stderr). The GPU cache is freed either way, so
    the next configuration starts clean.
    """
    from headshot_lab.models import out_of_memory_guard

    print(f"gpu_generate: {what} …", file=sys.stderr, flush=True)
    try:
        with out_of_memory_guard(what):
            return {"status": "ok", **fn()}
    except Exception as exc:
        from headshot_lab.errors import HeadshotLabError

        if not isinstance(exc, HeadshotLabError):
            traceback.print_exc(file=sys.stderr)
        result = error_result(exc)
        print(f"gpu_generate: {what}: {result['error']['code']}: {result['error']['message']}", file=sys.stderr)
        return result
    finally:
        free_memory()


def free_memory() -> None:
    """Collect garbage and return cached CUDA blocks to the driver (nothing to do without CUDA).

    ``gc.collect`` takes seconds with diffusers loaded, so it only runs where GPU memory is at stake.
    """
    import torch

    if torch.cuda.is_available():
        gc.collect()
        torch.cuda.empty_cache()
