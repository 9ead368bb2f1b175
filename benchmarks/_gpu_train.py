"""GPU benchmark, section ``train``: a DreamBooth-LoRA run on the person's photos with the product's defaults.

Settings are the app's (``AppBackend.train_identity``: 800 steps, rank 16, prior preservation), the rest
:class:`~headshot_lab.train.TrainConfig`'s (100 class images at 25 sampler steps, native resolution,
gradient checkpointing, bf16/fp16 mixed precision on CUDA, face crops, a checkpoint every 250 steps).
Two timed calls, exactly those :func:`~headshot_lab.train.train_identity_lora` makes:

One timed call, exactly the one the product makes: :func:`~headshot_lab.train.train_identity_lora` on an
empty class-image folder, so it first draws the class images for prior preservation (and frees that pipeline),
then loads the training models. The peak-memory window (``peak_vram_gib`` / ``peak_vram_reserved_gib``,
``torch.cuda.max_memory_*``) covers both phases (``peak_includes_class_image_phase``). ``class_images_s`` is
the time to the last class image (its file time), ``class_image_s`` the median interval between them; the
``callback`` stamps every step: ``setup_and_first_step_s`` (loading, face crops, VAE encoding, the first step,
less the class images), ``step_s`` (median of steps 2…N), ``export_s`` (saving both LoRA files and the card).
``vram_estimate`` is the meta-device estimate of the published architecture
(:func:`headshot_lab.testing.contracts.training_vram_estimate`), to set beside the measured peak.

``--train-steps`` / ``--train-class-images`` shorten the run; then the full run is extrapolated
(``full_run_source: "extrapolated"``), with ``class_image_s`` the median interval between the class
images' file times (so the pipeline load is not counted per image)::

    full_run_s = class_images_s + class_image_s · (C_full − C)
                 + setup_and_first_step_s + step_s · (S_full − 1) + export_s

The CLI's default (``TrainConfig.steps``, 1000) is extrapolated the same way
(``full_run_s_at_cli_default_steps``). A short second run without gradient checkpointing gives the speed that switch costs
(``step_s_ratio_checkpointing_off``).
"""

from __future__ import annotations

import inspect
import itertools
import shutil
import statistics
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from _gpu_device import peak_memory, reset_peak, run_guarded
from _gpu_photos import PersonPhotos

#: Steps of the short run without gradient checkpointing (at least 3, so two step times are measured).
COMPARE_STEPS = 20


def product_defaults() -> dict[str, Any]:
    """Steps, rank and prior preservation of the app's *Learn identity* button (TrainConfig's if unavailable)."""
    from headshot_lab.train import TrainConfig

    try:
        from headshot_lab.ui.actions import AppBackend

        params = inspect.signature(AppBackend.train_identity).parameters
        values = {k: params[k].default for k in ("steps", "rank", "prior_preservation")}
        source = "app: headshot_lab.ui.actions.AppBackend.train_identity"
    except ImportError as exc:
        config = TrainConfig()
        values = {"steps": config.steps, "rank": config.rank, "prior_preservation": config.prior_preservation}
        source = f"headshot_lab.train.TrainConfig (the app could not be imported: {exc})"
    return {**values, "num_class_images": TrainConfig().num_class_images, "source": source}


def _weight_dtype(device: Any) -> Any:
    """The dtype :func:`train_identity_lora` draws class images in (its mixed precision on CUDA, fp32 else)."""
    import torch

    from headshot_lab.train import _mixed_precision

    if device.type != "cuda":
        return torch.float32
    mixed = _mixed_precision("auto", device.type, device)
    return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(mixed, torch.float32)


def _per_file_interval(folder: Path, since: float) -> float:
    """Median interval between the modification times of the images written to ``folder`` after ``since``.

    ``since`` is a wall-clock time (``time.time()``); one image: its age at writing; none: ``0.0``.
    """
    stamps = sorted(m for p in folder.iterdir() if p.is_file() and (m := p.stat().st_mtime) >= since)
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    if gaps:
        return statistics.median(gaps)
    return stamps[0] - since if stamps else 0.0


def time_training(
    base: Path,
    device: Any,
    out: Path,
    photos: list[Path],
    *,
    steps: int,
    class_images: int,
    gradient_checkpointing: bool = True,
) -> dict[str, Any]:
    """Time class-image generation and one :func:`train_identity_lora` call (module docstring)."""
    from headshot_lab.train import TrainConfig, train_identity_lora

    defaults = product_defaults()
    config = TrainConfig(
        steps=steps,
        rank=defaults["rank"],
        prior_preservation=defaults["prior_preservation"],
        num_class_images=class_images,
        gradient_checkpointing=gradient_checkpointing,
    )
    reset_peak(device)
    folder = out / "class_images"
    folder.mkdir(parents=True, exist_ok=True)
    fresh = not any(folder.iterdir())
    # One call, as the product makes it: train_identity_lora draws the missing class images itself (and frees
    # that pipeline) before it loads the training models, so the peak window covers both phases.
    wall_t0 = time.time()
    stamps = [time.perf_counter()]
    result = train_identity_lora(
        [str(p) for p in photos],
        str(base),
        out / "lora",
        config,
        class_images=folder,
        resume=False,
        progress=False,
        device=str(device),
        callback=lambda step, loss: stamps.append(time.perf_counter()),
    )
    made = [p.stat().st_mtime for p in folder.iterdir() if p.is_file()] if config.prior_preservation and fresh else []
    class_s = max(0.0, max(made) - wall_t0) if made else 0.0
    class_image_s = _per_file_interval(folder, wall_t0 - 0.01) if made else 0.0
    end = time.perf_counter()
    step_times = [b - a for a, b in itertools.pairwise(stamps[1:])]
    card = result.card
    return {
        "config": {k: v for k, v in asdict(config).items() if k not in {"instance_prompt", "class_prompt"}},
        "resolution": card["resolution"],
        "mixed_precision": card["mixed_precision"],
        "optimizer": card["optimizer"],
        "photos_face_cropped": card["photos"]["face_crops"],
        "card_notes": card["notes"],
        "steps": steps,
        "class_images": class_images if config.prior_preservation else 0,
        "class_images_s": round(class_s, 3),
        "class_image_s": round(class_image_s, 4),
        "train_call_s": round(end - stamps[0], 3),
        "setup_and_first_step_s": round(max(stamps[1] - stamps[0] - class_s, 0.0), 3),
        "step_s": round(statistics.median(step_times), 4) if step_times else None,
        "export_s": round(end - stamps[-1], 3),
        "total_s": round(end - stamps[0], 3),
        "final_loss": card.get("final_loss"),
        "peak_includes_class_image_phase": bool(made),
        **peak_memory(device),
    }


def training_section(
    base: Path,
    device: Any,
    workdir: Path,
    photos: PersonPhotos,
    *,
    count: int,
    steps: int | None,
    class_images: int | None,
    compare: bool = True,
    family: str | None = None,
) -> dict[str, Any]:
    """The full-settings run (shortened when asked, then extrapolated), the no-checkpointing comparison (unless
    ``compare`` is off) and the meta-device VRAM estimate of the published ``family`` architecture."""
    from headshot_lab.train import TrainConfig

    defaults = product_defaults()
    full_steps, full_class = int(defaults["steps"]), int(defaults["num_class_images"])
    cli_steps = TrainConfig().steps
    steps = steps or full_steps
    class_images = class_images or full_class
    training_set = photos.training_set(count)
    out = Path(tempfile.mkdtemp(dir=workdir, prefix=f"train-{base.name}-"))
    report: dict[str, Any] = {"product_defaults": defaults, "photos": photos.to_dict(count)}
    try:
        run = run_guarded(
            f"training {base.name}",
            lambda: time_training(base, device, out, training_set, steps=steps, class_images=class_images),
        )
        report["run"] = run
        if run["status"] != "ok":
            report.update(error=run["error"], failed_stage="training run")
        if run["status"] == "ok" and run["step_s"] is not None:
            shortened = steps < full_steps or class_images < full_class
            extra_class = full_class - class_images if defaults["prior_preservation"] else 0
            estimate = (
                run["class_images_s"]
                + run["class_image_s"] * extra_class
                + run["setup_and_first_step_s"]
                + run["step_s"] * (full_steps - 1)
                + run["export_s"]
            )
            report.update(
                full_run_steps=full_steps,
                full_run_class_images=full_class,
                full_run_source="extrapolated" if shortened else "measured",
                full_run_s=round(estimate if shortened else run["total_s"], 2),
                steps_per_s=round(1.0 / run["step_s"], 3),
                cli_default_steps=cli_steps,
                full_run_s_at_cli_default_steps=round(estimate + run["step_s"] * (cli_steps - full_steps), 2),
            )
        report["peak_vram_gib"] = run.get("peak_vram_gib")
        report["peak_vram_reserved_gib"] = run.get("peak_vram_reserved_gib")
        if family is not None:
            report["vram_estimate"] = run_guarded(f"VRAM estimate ({family})", lambda: _estimate(family, defaults))
        if not compare:
            return report
        compare_steps = max(3, min(steps, COMPARE_STEPS))
        off = run_guarded(
            f"training {base.name} without gradient checkpointing",
            lambda: time_training(
                base,
                device,
                out,  # the class images of the first run are reused (not timed again)
                training_set,
                steps=compare_steps,
                class_images=class_images,
                gradient_checkpointing=False,
            ),
        )
        report["checkpointing_off"] = off
        on_step, off_step = run.get("step_s"), off.get("step_s")
        report["step_s_ratio_checkpointing_off"] = round(off_step / on_step, 3) if on_step and off_step else None
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return report


def _estimate(family: str, defaults: dict[str, Any]) -> dict[str, Any]:
    """:func:`headshot_lab.testing.contracts.training_vram_estimate` of the published architecture (meta device)."""
    from headshot_lab.testing.contracts import training_vram_estimate

    estimate = training_vram_estimate(
        family, rank=int(defaults["rank"]), prior_preservation=bool(defaults["prior_preservation"])
    )
    return {"architecture": f"published {family}", **estimate.to_dict()}
