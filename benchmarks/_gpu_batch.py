"""GPU benchmark, section ``batch``: 40 headshots of one person end to end, timed per stage.

The product's flow, with the users' code:

1. ``load`` — :class:`~headshot_lab.generate.HeadshotGenerator` with a ControlNet (``--control-kind``,
   ``face`` by default: the product's default map, drawn from the person's selfie) at the product's
   default precision (``auto``: fp16 on CUDA), ``--batch-size`` images per pipeline call;
2. ``generate`` — the call for ``n`` images of the ``corporate`` style with the person's identity LoRA
   (random, at the product's default rank): LoRA attach, conditioning map, rendering, PNG + manifest
   writing;
3. ``profile`` — :meth:`~headshot_lab.select.ReferenceProfile.from_images` of the person's photos;
4. ``filter_rank`` — :func:`~headshot_lab.select.select_candidates` over the ``n`` images, keeping the
   app's default ``top_k`` (8).

Random weights draw no faces, so the filter rejects everything at its first check (``no_face``) and
is faster than it would be on real headshots. To bound that, the same call is timed on the person's
own photos fit to the output size (faces present: every check runs), and
``filter_rank_all_faces_est_s = n × that time per image``. The goal figure is the conservative
``total_est_s = load + generate + profile + max(filter_rank, filter_rank_all_faces_est)``.
"""

from __future__ import annotations

import collections
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from _gpu_device import error_result, peak_memory, reset_peak
from _gpu_models import build_controlnet, build_lora

#: The app keeps at most this many headshots by default (``AppBackend.select(top_k=8)``).
DEFAULT_TOP_K = 8
#: Calibration images are at least this many pixels on their shorter side, so faces are found in them.
CALIBRATION_MIN_SIDE = 512


def bench_batch(
    base: Path,
    device: Any,
    workdir: Path,
    *,
    photos: list[Path],
    n_images: int,
    batch_size: int,
    steps: int,
    lora_rank: int,
    control_kind: str,
    tiny: bool,
    top_k: int = DEFAULT_TOP_K,
) -> dict[str, Any]:
    """Run and time the flow (module docstring); a failing stage is recorded and ends the flow there."""
    from headshot_lab.generate import ControlOptions, HeadshotGenerator, Identity, SpeedOptions
    from headshot_lab.models import out_of_memory_guard
    from headshot_lab.select import ReferenceProfile, select_candidates

    timings: dict[str, float] = {}
    report: dict[str, Any] = {
        "images_requested": n_images,
        "batch_size": batch_size,
        "steps": steps,
        "control_kind": control_kind,
        "identity_lora_rank": lora_rank,
        "top_k": top_k,
        "timings": timings,
    }
    current = ["build"]

    @contextmanager
    def stage(name: str) -> Iterator[None]:
        current[0] = name
        started = time.perf_counter()
        yield
        timings[f"{name}_s"] = round(time.perf_counter() - started, 3)

    out = Path(tempfile.mkdtemp(dir=workdir, prefix=f"batch-{base.name}-"))
    try:
        with out_of_memory_guard(f"the {n_images}-headshot batch"):
            lora = build_lora(base, workdir / f"{base.name}-identity-lora-r{lora_rank}", rank=lora_rank, seed=1)
            controlnet = build_controlnet(base, workdir / f"{base.name}-controlnet", device, tiny=tiny)
            reset_peak(device)
            with stage("load"):
                generator = HeadshotGenerator(
                    str(base),
                    speed=SpeedOptions(batch_size=batch_size),
                    control=ControlOptions(model=str(controlnet), kind=control_kind),
                    device=str(device),
                    progress=False,
                )
                generator.load()
            report["dtype"] = str(generator.dtype).removeprefix("torch.")
            with stage("generate"):
                identity = Identity.from_lora(lora, selfie=photos[0])
                result = generator(identity, "corporate", n_images, seed=0, out_dir=out, steps=steps)
            width, height = result.records[0]["width"], result.records[0]["height"]
            report.update(images_generated=len(result.images), width=width, height=height, **peak_memory(device))
            report["generate_per_image_s"] = round(timings["generate_s"] / len(result.images), 4)
            del generator
            with stage("profile"):
                profile = ReferenceProfile.from_images({p.name: p for p in dict.fromkeys(photos)})
            with stage("filter_rank"):
                selection = select_candidates(result.images, profile, top_k=top_k)
            report.update(_counts(selection))
            calibration = _calibration_images(photos, width, height)
            with stage("filter_rank_calibration"):
                checked = select_candidates(calibration, profile, top_k=top_k)
            per_face = timings["filter_rank_calibration_s"] / len(calibration)
            report["calibration"] = {
                "images": len(calibration),
                "with_a_face": sum(1 for c in checked.candidates if c.scores.get("faces", 0) > 0),
                "per_image_s": round(per_face, 4),
            }
            timings["filter_rank_all_faces_est_s"] = round(per_face * len(result.images), 3)
    except Exception as exc:
        from headshot_lab.errors import HeadshotLabError

        if not isinstance(exc, HeadshotLabError):
            traceback.print_exc(file=sys.stderr)
        report.update(error_result(exc), failed_stage=current[0])
    finally:
        shutil.rmtree(out, ignore_errors=True)
    measured = [timings.get(f"{name}_s") for name in ("load", "generate", "profile", "filter_rank")]
    if all(value is not None for value in measured):
        report["total_s"] = round(sum(measured), 3)  # type: ignore[arg-type]
        worst_filter = max(timings["filter_rank_s"], timings.get("filter_rank_all_faces_est_s", 0.0))
        report["total_est_s"] = round(report["total_s"] - timings["filter_rank_s"] + worst_filter, 3)
    report.setdefault("status", "ok")
    return report


def _counts(selection: Any) -> dict[str, Any]:
    """How many images had a face, were kept and were rejected (and why)."""
    reasons = collections.Counter(reason.code for c in selection.candidates for reason in c.reasons)
    return {
        "candidates": len(selection.candidates),
        "with_a_face": sum(1 for c in selection.candidates if c.scores.get("faces", 0) > 0),
        "kept": len(selection.kept),
        "rejected": len(selection.rejected),
        "reject_reasons": dict(sorted(reasons.items())),
    }


def _calibration_images(photos: list[Path], width: int, height: int) -> dict[str, Any]:
    """The person's distinct photos, centre-cropped to the output aspect, at the output size (≥ 512 px)."""
    import numpy as np
    from PIL import Image

    from headshot_lab.control import fit_to_aspect
    from headshot_lab.io import load_rgb

    scale = max(1.0, CALIBRATION_MIN_SIDE / min(width, height))
    size = (round(width * scale), round(height * scale))
    images = {}
    for path in dict.fromkeys(photos):
        cropped = fit_to_aspect(load_rgb(path, min_side=0), width, height)
        images[f"calibration-{path.name}"] = np.asarray(Image.fromarray(cropped).resize(size, Image.Resampling.LANCZOS))
    return images
