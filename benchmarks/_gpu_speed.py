"""GPU benchmark, sections ``generate`` and ``offload``: per-image generation time and peak memory.

Each configuration loads a fresh :class:`headshot_lab.generate.HeadshotGenerator` (the users' code) and
renders the ``corporate`` prompt at the base's native square size (512² SD1.5, 1024² SDXL): one warm-up
call, then ``repeats`` timed calls; the figure is the median call time divided by the batch size.

* ``generate``: the speed switches of :class:`~headshot_lab.generate.SpeedOptions` — precision (fp16
  baseline, bf16, fp32), eager attention, batch 4, VAE slicing / tiling, ``torch.compile``, and the
  few-step path (``LCMScheduler`` + a random rank-64 LoRA standing in for an LCM-LoRA, ``few_steps``
  steps, guidance 1). Ratios ``per_image_s / baseline per_image_s`` against the fp16 30-step baseline
  of the same run (it is always measured; for the few-step rows the ratio is the few-step speed-up).
* ``offload``: peak GPU memory without offload, with model CPU offload (whole models moved to the GPU
  when used) and with sequential CPU offload (layer by layer; slow, so timed at ``min(steps, 4)``
  steps and one call — its peak memory does not depend on the step count). Ratios against the
  no-offload row of the same run (no time ratio for a row at another step count).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from _gpu_device import peak_memory, reset_peak, run_guarded, sync
from _gpu_models import native_resolution

#: name → (SpeedOptions fields, batch size, few-step?); goal configurations first.
CONFIGS: dict[str, tuple[dict[str, Any], int, bool]] = {
    "baseline": ({"precision": "fp16"}, 1, False),
    "bf16": ({"precision": "bf16"}, 1, False),
    "few_step_bf16": ({"precision": "bf16"}, 1, True),
    "few_step": ({"precision": "fp16"}, 1, True),
    "few_step_batch4": ({"precision": "fp16"}, 4, True),
    "batch4": ({"precision": "fp16"}, 4, False),
    "fp32": ({"precision": "fp32"}, 1, False),
    "eager_attention": ({"precision": "fp16", "attention": "eager"}, 1, False),
    "vae_slicing_batch4": ({"precision": "fp16", "vae_slicing": True}, 4, False),
    "vae_tiling": ({"precision": "fp16", "vae_tiling": True}, 1, False),
    "compile": ({"precision": "fp16", "compile": True}, 1, False),
}
#: name → (SpeedOptions fields, at most this many steps or None, timed calls or None for ``repeats``).
OFFLOAD_CONFIGS: dict[str, tuple[dict[str, Any], int | None, int | None]] = {
    "no_offload": ({"precision": "fp16"}, None, None),
    "offload_model": ({"precision": "fp16", "cpu_offload": "model"}, None, None),
    "offload_sequential": ({"precision": "fp16", "cpu_offload": "sequential"}, 4, 1),
}
#: On the CPU (``--tiny``) half precision proves nothing and bf16 convolutions are ~50× slower than fp32
#: there: those configurations run in fp32 (``precision_requested`` keeps what was asked).
CPU_PRECISION = {"fp16": "fp32", "bf16": "fp32"}


def time_generation(
    fields: dict[str, Any],
    batch: int,
    base: Path,
    device: Any,
    *,
    steps: int,
    repeats: int,
    few_step_lora: Path | None = None,
    few_steps: int = 4,
) -> dict[str, Any]:
    """Load a generator with ``fields`` and time ``repeats`` calls of ``batch`` images (after a warm-up)."""
    from headshot_lab.generate import HeadshotGenerator, SpeedOptions
    from headshot_lab.styles import load_style

    fields = dict(fields)
    requested = fields.get("precision", "auto")
    if device.type != "cuda":
        fields["precision"] = CPU_PRECISION.get(requested, requested)
    speed = SpeedOptions(
        **fields,
        batch_size=batch,
        few_step_lora=str(few_step_lora) if few_step_lora else None,
        few_step_steps=few_steps,
    )
    reset_peak(device)
    t0 = time.perf_counter()
    generator = HeadshotGenerator(str(base), speed=speed, device=str(device), progress=False)
    generator.load()
    load_s = time.perf_counter() - t0
    style = load_style("corporate")
    n_steps, guidance = generator.sampling(style, few_steps if few_step_lora else steps, None)
    side = native_resolution(base)
    prompt = style.render_prompt("sks person")

    def call() -> float:
        sync(device)
        start = time.perf_counter()
        generator.render(
            prompt,
            style.negative_prompt,
            list(range(batch)),
            steps=n_steps,
            guidance_scale=guidance,
            width=side,
            height=side,
        )
        sync(device)
        return time.perf_counter() - start

    warmup = call()
    times = [call() for _ in range(repeats)]
    return {
        "speed": asdict(speed),
        "precision_requested": requested,
        "batch_size": batch,
        "steps": n_steps,
        "guidance_scale": guidance,
        "width": side,
        "height": side,
        "dtype": str(generator.dtype).removeprefix("torch."),
        "load_s": round(load_s, 3),
        "warmup_s": round(warmup, 3),
        "call_s": [round(t, 4) for t in times],
        "per_image_s": round(statistics.median(times) / batch, 4),
        **peak_memory(device),
        "notes": list(generator.notes),
    }


def generation_section(
    configs: list[str],
    base: Path,
    few_step_lora: Path | None,
    device: Any,
    *,
    steps: int,
    few_steps: int,
    repeats: int,
) -> list[dict[str, Any]]:
    """One row per configuration (the baseline always first); failures are rows with ``status: error``.

    ``few_step_lora`` is ``None`` when it could not be built: the few-step rows then say so.
    """
    rows: list[dict[str, Any]] = []
    for name in ["baseline", *[c for c in configs if c != "baseline"]]:
        fields, batch, few = CONFIGS[name]
        if few and few_step_lora is None:
            missing = {"code": "setup_failed", "message": "the few-step LoRA could not be built", "fix": ""}
            rows.append({"config": name, "status": "error", "error": missing})
            continue
        rows.append(
            {
                "config": name,
                **run_guarded(
                    f"generation config {name} ({base.name})",
                    lambda fields=fields, batch=batch, few=few: time_generation(
                        fields,
                        batch,
                        base,
                        device,
                        steps=steps,
                        repeats=repeats,
                        few_step_lora=few_step_lora if few else None,
                        few_steps=few_steps,
                    ),
                ),
            }
        )
    add_ratios(rows, "baseline", ("per_image_s",))
    return rows


def offload_section(
    base: Path, device: Any, *, steps: int, repeats: int, configs: list[str] | None = None
) -> list[dict[str, Any]]:
    """Peak GPU memory (and time) without, with model and with sequential CPU offload (``configs``: a subset;
    ``no_offload``, the reference, always runs)."""
    rows = []
    chosen = set(configs or OFFLOAD_CONFIGS) | {"no_offload"}
    for name, (fields, max_steps, calls) in OFFLOAD_CONFIGS.items():
        if name not in chosen:
            continue
        n_steps = min(steps, max_steps) if max_steps else steps
        rows.append(
            {
                "config": name,
                **run_guarded(
                    f"offload config {name} ({base.name})",
                    lambda fields=fields, n_steps=n_steps, calls=calls: time_generation(
                        fields, 1, base, device, steps=n_steps, repeats=calls or repeats
                    ),
                ),
            }
        )
    add_ratios(rows, "no_offload", ("per_image_s", "peak_vram_gib", "peak_vram_reserved_gib"), same_steps=True)
    return rows


def add_ratios(rows: list[dict[str, Any]], reference: str, keys: tuple[str, ...], *, same_steps: bool = False) -> None:
    """``<key>_ratio = row[key] / reference row[key]``.

    ``None`` when either value is missing or zero, and, with ``same_steps``, for the times (``*_s``) of
    rows run at another step count than the reference.
    """
    ref = next((r for r in rows if r["config"] == reference and r.get("status") == "ok"), None) or {}
    for row in rows:
        for key in keys:
            value, base_value = row.get(key), ref.get(key)
            ok = isinstance(value, int | float) and isinstance(base_value, int | float) and base_value > 0
            if same_steps and key.endswith("_s") and row.get("steps") != ref.get("steps"):
                ok = False
            row[f"{key}_ratio"] = round(value / base_value, 3) if ok else None
