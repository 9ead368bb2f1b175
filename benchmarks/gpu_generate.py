"""GPU benchmark: generation, 40-headshot batch, LoRA training and offload memory of full-size SD1.5 / SDXL.

On a lent H100 (the device tool: at most 10 minutes a command, 30 minutes of device time a session, a
bare machine each call; its image has torch, transformers, peft and accelerate). Once, here, fetch the
wheels it lacks (see /work/.library/device/README.md)::

    mkdir -p .git/info && printf "/.whl/\\n/.photos/\\n" >> .git/info/exclude
    mkdir -p .photos && cp ~/.cache/headshot-lab/test-photos/obama{,2,3}.jpg .photos/   # after `make photos`
    python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \\
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \\
        -d .whl diffusers==0.42.1 controlnet_aux==0.0.10 dlib-bin==20.0.1.post1 ImageHash==4.3.2 PyWavelets \\
        importlib_metadata

then one command per run, ``carry=[".whl", ".photos"]``, each::

    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl &&
    export PYTHONPATH=/tmp/site:$PWD HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PIP_NO_INDEX=1 &&
    python3 benchmarks/gpu_generate.py ARGS

with ARGS the prepared issue-14 run — every goal, both families, one command, ends within 10 minutes (sections
that would start after 540 s are recorded as ``skipped``; SDXL runs first)::

    --preset issue14 --photos .photos --out $OUT/gpu-issue14.json

(``timeout_s=600``). It runs, per family: fp16 baseline, bf16 and the 4-step LCM path at 30 steps (2 timed
calls each); peak memory without and with model CPU offload; the 40-headshot batch with identity LoRA +
ControlNet (canny) + filter and rank; and one LoRA training call with prior preservation (4 class images drawn
*inside* the call, so its peak includes the class-image phase; 30 steps, extrapolated to the app's 800 steps and
100 class images). Longer, optional runs::

    --only generate --families sdxl --out $OUT/gpu-sdxl-switches.json --configs \
        batch4,fp32,eager_attention,vae_slicing_batch4,vae_tiling,compile,few_step,few_step_batch4
    --only train --families sd15,sdxl --train-steps 150 --train-class-images 10 --photos .photos \
        --out $OUT/gpu-train.json

``canny`` because mediapipe (the ``face`` map) is not on that machine; the dlib face models (126 MB) are
too large to carry, so there the ``profile`` stage of the batch records ``model_unavailable`` and the
training photos are centre-cropped (which does not change the speed of a step). Copy the results into
benchmarks/results/ here and the figures into benchmarks/README.md.

No weights are downloaded: the published architectures are built with random weights
(:mod:`_gpu_models`) and driven through the *same* code as users run. Sections (``--only``):

* ``generate`` (:mod:`_gpu_speed`) — per-image time at 1024² (512² SD1.5) for each speed switch;
  headline figures: SDXL 30 steps bf16 (goal ≤ 1.5 s) and SDXL 4-step bf16 (goal ≤ 0.25 s);
* ``offload`` (:mod:`_gpu_speed`) — peak ``max_memory_allocated`` / ``max_memory_reserved`` without,
  with model and with sequential CPU offload (goal, SDXL model offload: ≤ 12 GiB reserved);
* ``batch`` (:mod:`_gpu_batch`) — 40 headshots with identity LoRA + ControlNet, then filter and rank,
  per stage and in total (goal ≤ 90 s);
* ``train`` (:mod:`_gpu_train`) — identity LoRA on 15 photos with the product's defaults, full run or
  extrapolated from ``--train-steps`` (goals: SD1.5 ≤ 4 min, SDXL ≤ 8 min), its peak GPU memory including the
  class-image phase (goal, SDXL: ≤ 16 GB = 14.9 GiB reserved) beside the meta-device estimate.

A configuration that fails (CUDA out of memory included: recorded with headshot-lab's own message) is a
row with ``status: "error"``; the run goes on. Ratios are against the baseline of the same run. The
JSON (via ``_common.write_result``: machine, GPU, CUDA, driver and library versions) ends with a
``goals`` block (:mod:`_gpu_goals`).

Usage::

    python benchmarks/gpu_generate.py --preset issue14   # needs CUDA; every goal within 10 minutes
    python benchmarks/gpu_generate.py                    # needs CUDA; every config, full training (long)
    python benchmarks/gpu_generate.py --tiny --steps 2 --repeats 1 --batch-images 4 --train-steps 2 \\
        --train-class-images 2 --train-photos 3          # CPU dry run of every section and config
    python benchmarks/gpu_generate.py --tiny --families sd15 --configs bf16,few_step_bf16 --steps 2 \\
        --repeats 1 --batch-images 3 --train-steps 2 --train-class-images 2 --train-photos 3
                                                         # the same paths, fewer configs: under a minute

Without CUDA (and without ``--tiny``) it says so and exits with status 1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import write_result  # type: ignore[import-not-found]
from _gpu_batch import bench_batch
from _gpu_device import device_info, run_guarded
from _gpu_goals import evaluate
from _gpu_models import FULL_SD15, FULL_SDXL, build_base, build_lora
from _gpu_photos import PersonPhotos, person_photos
from _gpu_speed import CONFIGS, OFFLOAD_CONFIGS, generation_section, offload_section
from _gpu_train import product_defaults, training_section

os.environ.setdefault("HF_HUB_OFFLINE", "1")

__all__ = ["CONFIGS", "FULL_SD15", "FULL_SDXL", "SECTIONS", "main"]

#: ``--only`` name → the key of its block in each family's report.
SECTIONS = {"generate": "generation", "offload": "offload", "batch": "batch", "train": "training"}
FULL_SPECS = {"sd15": FULL_SD15, "sdxl": FULL_SDXL}
FEW_STEP_LORA_RANK = {"full": 64, "tiny": 4}


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


#: ``--preset NAME`` puts these arguments first (later arguments override them).
PRESETS: dict[str, list[str]] = {
    # Issue 14: every goal in one command that ends within 10 minutes on one GPU (SDXL first, then SD1.5; a
    # section that would start after --deadline-s is recorded as skipped).
    "issue14": [
        "--families", "sdxl,sd15",
        "--configs", "bf16,few_step_bf16",
        "--offload-configs", "no_offload,offload_model",
        "--steps", "30", "--few-steps", "4", "--repeats", "2",
        "--batch-images", "40", "--batch-size", "4", "--control-kind", "canny",
        "--train-steps", "30", "--train-class-images", "4", "--no-train-compare",
        "--deadline-s", "540",
    ],
}  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    import sys as _sys

    from headshot_lab.control import CONTROL_KINDS

    given = list(_sys.argv[1:] if argv is None else argv)
    first = argparse.ArgumentParser(add_help=False)
    first.add_argument("--preset", choices=sorted(PRESETS), default=None)
    known, _rest = first.parse_known_args(given)
    if known.preset:
        given = [*PRESETS[known.preset], *given]
    argv = given
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default=None, help="a prepared set of arguments")
    parser.add_argument(
        "--deadline-s", type=float, default=None, help="skip sections that would start after this many seconds"
    )
    parser.add_argument(
        "--offload-configs", default=",".join(OFFLOAD_CONFIGS), help="offload configs (no_offload always runs)"
    )
    parser.add_argument(
        "--no-train-compare", dest="train_compare", action="store_false", help="skip the no-checkpointing run"
    )
    parser.add_argument("--tiny", "--dry-run", dest="tiny", action="store_true", help="tiny models on the CPU")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma list of sections: {', '.join(SECTIONS)}")
    parser.add_argument("--families", default="sd15,sdxl")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="generation configs (baseline always runs)")
    parser.add_argument("--steps", type=_positive, default=30, help="sampler steps (generate, offload, batch)")
    parser.add_argument("--few-steps", type=_positive, default=4)
    parser.add_argument("--repeats", type=_positive, default=3, help="timed calls per generation config")
    parser.add_argument("--batch-images", type=_positive, default=40, help="headshots in the batch section")
    parser.add_argument("--batch-size", type=_positive, default=4, help="images per pipeline call in the batch")
    parser.add_argument("--control-kind", default="face", choices=CONTROL_KINDS)
    parser.add_argument("--train-steps", type=_positive, default=None, help="shorten training (default: full)")
    parser.add_argument("--train-class-images", type=_positive, default=None, help="default: the product's 100")
    parser.add_argument("--train-photos", type=_positive, default=15)
    parser.add_argument("--photos", default=None, help="folder of one person's photos (default: the test photos)")
    parser.add_argument("--workdir", default=None, help="where the random models go (default: a temp dir)")
    parser.add_argument("--out", default=None, help="a .json path or a folder (default benchmarks/results/)")
    return parser.parse_args(argv)


def _output(out: str | None, tiny: bool) -> tuple[Path, str]:
    """``(folder, name)`` for ``write_result``: ``--out x.json`` → ``(dirname, "x")``."""
    default_name = "gpu_generate_tiny" if tiny else "gpu_generate"
    if out is None:
        return Path(__file__).resolve().parent / "results", default_name
    path = Path(out)
    if path.suffix == ".json":
        return path.parent, path.stem
    return path, default_name


def bench_family(
    family: str,
    spec: dict,
    args: argparse.Namespace,
    sections: list[str],
    device: Any,
    workdir: Path,
    photos: PersonPhotos | None,
    deadline: float | None = None,
) -> dict[str, Any]:
    """Build one family and run the chosen sections on it; a section that would start after ``deadline``
    (a ``time.perf_counter()`` value) is recorded as skipped instead."""
    started = time.perf_counter()

    def skipped(section: str) -> Any:
        if deadline is None or time.perf_counter() < deadline:
            return None
        row = {"status": "skipped", "reason": f"time budget (--deadline-s) spent before the {section} section"}
        return [{"config": "skipped", **row}] if section in {"generate", "offload"} else row

    if deadline is not None and time.perf_counter() >= deadline:  # not even the build: every section skipped
        report_late: dict[str, Any] = {"build": {"status": "skipped"}}
        for section in sections:
            _late(report_late, section, skipped)
        return report_late
    built = run_guarded(f"building {family}", lambda: {"base": build_base(family, spec, workdir, device)})
    report: dict[str, Any] = {"build": {k: v for k, v in built.items() if k != "base"}}
    report["build"]["build_s"] = round(time.perf_counter() - started, 1)
    if built["status"] != "ok":
        return report
    base: Path = built["base"]
    mode = "tiny" if args.tiny else "full"
    if "generate" in sections and not _late(report, "generate", skipped):
        built_lora = run_guarded(
            f"building the few-step LoRA ({family})",
            lambda: {"path": build_lora(base, workdir / f"{family}-few-step-lora", rank=FEW_STEP_LORA_RANK[mode])},
        )
        few_step = built_lora.pop("path", None)
        report["few_step_lora"] = built_lora
        report["generation"] = generation_section(
            _names(args.configs),
            base,
            few_step,
            device,
            steps=args.steps,
            few_steps=args.few_steps,
            repeats=args.repeats,
        )
    if "offload" in sections and not _late(report, "offload", skipped):
        report["offload"] = offload_section(
            base, device, steps=args.steps, repeats=args.repeats, configs=_names(args.offload_configs)
        )
    if "batch" in sections and photos is not None and not _late(report, "batch", skipped):
        batch = run_guarded(
            f"the {args.batch_images}-headshot batch ({family})",
            lambda: bench_batch(
                base,
                device,
                workdir,
                photos=photos.distinct,
                n_images=args.batch_images,
                batch_size=args.batch_size,
                steps=args.steps,
                lora_rank=int(product_defaults()["rank"]),
                control_kind=args.control_kind,
                tiny=args.tiny,
            ),
        )
        baseline = next((r for r in report.get("generation", []) if r["config"] == "baseline"), {})
        per_image, reference = batch.get("generate_per_image_s"), baseline.get("per_image_s")
        batch["generate_per_image_ratio_vs_baseline"] = (
            round(per_image / reference, 3) if per_image and reference and baseline.get("steps") == args.steps else None
        )
        report["batch"] = batch
    if "train" in sections and photos is not None and not _late(report, "train", skipped):
        report["training"] = training_section(
            base,
            device,
            workdir,
            photos,
            count=args.train_photos,
            steps=args.train_steps,
            class_images=args.train_class_images,
            compare=args.train_compare,
            family=family,
        )
    report["total_s"] = round(time.perf_counter() - started, 1)
    return report


def _late(report: dict[str, Any], section: str, skipped: Any) -> bool:
    """Record ``section`` as skipped (and say so) when the time budget is spent."""
    late = skipped(section)
    if late is not None:
        report[SECTIONS[section]] = late
    return late is not None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    if not args.tiny and not torch.cuda.is_available():
        print(
            "gpu_generate: no CUDA GPU is visible, so there is nothing to benchmark. "
            "Run it on a machine with an NVIDIA GPU, or use --tiny for a CPU dry run of the same code.",
            file=sys.stderr,
        )
        return 1
    from headshot_lab.testing.tiny import TINY_SPECS

    device = torch.device("cuda" if torch.cuda.is_available() and not args.tiny else "cpu")
    specs = TINY_SPECS if args.tiny else FULL_SPECS
    sections, families, configs = _names(args.only), _names(args.families), _names(args.configs)
    unknown = (
        [s for s in sections if s not in SECTIONS]
        + [f for f in families if f not in specs]
        + [c for c in configs if c not in CONFIGS]
        + [c for c in _names(args.offload_configs) if c not in OFFLOAD_CONFIGS]
    )
    if unknown or not sections or not families:
        print(f"gpu_generate: unknown (or no) section/family/config: {', '.join(unknown) or '-'}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    own_workdir = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="headshot-bench-")) if own_workdir else Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    if args.tiny:
        torch.set_num_threads(1)  # tiny models run faster on one thread (no thread start-up per tiny op)
    try:
        photos = person_photos(args.photos, workdir) if {"batch", "train"} & set(sections) else None
        deadline = None if args.deadline_s is None else started + args.deadline_s
        report_families = {
            family: bench_family(family, specs[family], args, sections, device, workdir, photos, deadline)
            for family in families
        }
    finally:
        torch.set_num_threads(threads)
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    payload = {
        "benchmark": "gpu_generate",
        "mode": "tiny" if args.tiny else "full",
        "device": {**device_info(device), "torch_threads": 1 if args.tiny else torch.get_num_threads()},
        "settings": {k: v for k, v in vars(args).items() if k not in {"out", "workdir"}},
        "sections": sections,
        "photos": photos.to_dict(len(photos.distinct)) if photos else None,
        "families": report_families,
        "goals": evaluate(report_families, comparable=device.type == "cuda" and not args.tiny),
        "wall_s": round(time.perf_counter() - started, 1),
    }
    folder, name = _output(args.out, args.tiny)
    path = write_result(name, payload, folder)
    print(f"gpu_generate: wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
