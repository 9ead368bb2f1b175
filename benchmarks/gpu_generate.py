"""GPU benchmark: generation and training speed / memory of full-size SD1.5 and SDXL architectures.

No weights are downloaded: the published SD1.5 and SDXL configs (below, inline) are built with random
weights, saved as diffusers folders in a work directory, and then driven through the *same* code as
users run — :class:`headshot_lab.generate.HeadshotGenerator` and
:func:`headshot_lab.train.train_identity_lora`. Random weights compute exactly as fast as trained ones.

Measured per family:

* per-image generation time at the native resolution (style ``corporate``): 30 steps and the few-step
  path (``LCMScheduler`` + a random rank-64 attention LoRA standing in for an LCM-LoRA, 4 steps),
  batch 1 and 4, and each speed switch (fp32, bf16, eager attention, VAE slicing, VAE tiling, model CPU
  offload, ``torch.compile``) — median of ``--repeats`` timed calls after one warm-up call;
* one DreamBooth-LoRA training step (prior preservation, batch 1+1), with and without gradient
  checkpointing (median over steps 2…N);
* peak GPU memory (``torch.cuda.max_memory_allocated``) of each.

Ratios are against the baseline measured in the same run (fp16, SDPA, batch 1, 30 steps).

Usage::

    python benchmarks/gpu_generate.py                      # needs CUDA; writes benchmarks/results/*.json
    python benchmarks/gpu_generate.py --tiny --steps 2     # CPU dry run of the same code on tiny models

Without CUDA (and without ``--tiny``) it says so and exits with status 1.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from headshot_lab.testing.tiny import SDXL_SCHEDULER

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# --- published architectures (diffusers/transformers config.json values) -------------------------
SD15_UNET = {
    "act_fn": "silu",
    "attention_head_dim": 8,
    "block_out_channels": (320, 640, 1280, 1280),
    "center_input_sample": False,
    "cross_attention_dim": 768,
    "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    "downsample_padding": 1,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 4,
    "layers_per_block": 2,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-5,
    "norm_num_groups": 32,
    "out_channels": 4,
    "sample_size": 64,
    "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
}
SD_VAE = {
    "act_fn": "silu",
    "block_out_channels": (128, 256, 512, 512),
    "down_block_types": ("DownEncoderBlock2D",) * 4,
    "up_block_types": ("UpDecoderBlock2D",) * 4,
    "in_channels": 3,
    "out_channels": 3,
    "latent_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "sample_size": 512,
}
CLIP_L = {  # openai/clip-vit-large-patch14 text tower (SD1.5 text encoder, SDXL text_encoder)
    "hidden_size": 768,
    "intermediate_size": 3072,
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "max_position_embeddings": 77,
    "hidden_act": "quick_gelu",
    "projection_dim": 768,
    "vocab_size": 49408,
}
CLIP_BIGG = {  # OpenCLIP ViT-bigG/14 text tower (SDXL text_encoder_2)
    "hidden_size": 1280,
    "intermediate_size": 5120,
    "num_attention_heads": 20,
    "num_hidden_layers": 32,
    "max_position_embeddings": 77,
    "hidden_act": "gelu",
    "projection_dim": 1280,
    "vocab_size": 49408,
}
SDXL_UNET = {
    "act_fn": "silu",
    "addition_embed_type": "text_time",
    "addition_embed_type_num_heads": 64,
    "addition_time_embed_dim": 256,
    "attention_head_dim": (5, 10, 20),
    "block_out_channels": (320, 640, 1280),
    "cross_attention_dim": 2048,
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
    "in_channels": 4,
    "layers_per_block": 2,
    "norm_num_groups": 32,
    "out_channels": 4,
    "projection_class_embeddings_input_dim": 2816,
    "sample_size": 128,
    "transformer_layers_per_block": (1, 2, 10),
    "up_block_types": ("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    "use_linear_projection": True,
}
FULL_SD15 = {
    "unet": SD15_UNET,
    "vae": SD_VAE,
    "text_encoder": CLIP_L,
    "scheduler": {
        "_class_name": "PNDMScheduler",
        "beta_start": 0.00085,
        "beta_end": 0.012,
        "beta_schedule": "scaled_linear",
        "skip_prk_steps": True,
        "steps_offset": 1,
    },
}
FULL_SDXL = {
    "unet": SDXL_UNET,
    "vae": {**SD_VAE, "sample_size": 1024, "scaling_factor": 0.13025, "force_upcast": True},
    "text_encoder": CLIP_L,
    "text_encoder_2": CLIP_BIGG,
    "scheduler": SDXL_SCHEDULER,
}

#: name → (SpeedOptions fields, batch size, few-step?)
CONFIGS: dict[str, tuple[dict[str, Any], int, bool]] = {
    "baseline": ({"precision": "fp16"}, 1, False),
    "batch4": ({"precision": "fp16"}, 4, False),
    "fp32": ({"precision": "fp32"}, 1, False),
    "bf16": ({"precision": "bf16"}, 1, False),
    "eager_attention": ({"precision": "fp16", "attention": "eager"}, 1, False),
    "vae_slicing_batch4": ({"precision": "fp16", "vae_slicing": True}, 4, False),
    "vae_tiling": ({"precision": "fp16", "vae_tiling": True}, 1, False),
    "cpu_offload_model": ({"precision": "fp16", "cpu_offload": "model"}, 1, False),
    "compile": ({"precision": "fp16", "compile": True}, 1, False),
    "few_step": ({"precision": "fp16"}, 1, True),
    "few_step_batch4": ({"precision": "fp16"}, 4, True),
}
#: On CPU (``--tiny``) fp16 is not meaningful: the baseline there is fp32.
CPU_PRECISION = {"fp16": "fp32"}


def machine_info(device: Any) -> dict[str, Any]:
    import diffusers
    import torch

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "device": str(device),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            gpu=props.name,
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
        )
    return info


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak(device: Any) -> None:
    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gib(device: Any) -> float | None:
    import torch

    return round(torch.cuda.max_memory_allocated(device) / 2**30, 3) if device.type == "cuda" else None


def build_family(family: str, spec: dict, workdir: Path, device: Any, *, lora_rank: int) -> tuple[Path, Path]:
    """Save a random-weight base model and a random few-step LoRA; returns their paths."""
    import torch

    from headshot_lab.testing.tiny import save_random_pipeline, tiny_lora

    base = workdir / family
    if not (base / "model_index.json").is_file():
        dtype = torch.float16 if device.type == "cuda" else None
        save_random_pipeline(spec, base, seed=0, device=device if device.type == "cuda" else None, dtype=dtype)
    lora = tiny_lora(base, workdir / f"{family}-few-step-lora", rank=lora_rank, std=0.01)
    return base, lora


def bench_generation(
    name: str, base: Path, lora: Path, device: Any, *, steps: int, few_steps: int, repeats: int
) -> dict[str, Any]:
    """Time one speed configuration (see :data:`CONFIGS`)."""
    from headshot_lab.generate import HeadshotGenerator, SpeedOptions
    from headshot_lab.styles import load_style

    fields, batch, few = CONFIGS[name]
    fields = dict(fields)
    if device.type != "cuda":
        fields["precision"] = CPU_PRECISION.get(fields.get("precision", "auto"), fields.get("precision", "auto"))
    speed = SpeedOptions(**fields, batch_size=batch, few_step_lora=str(lora) if few else None, few_step_steps=few_steps)
    _reset_peak(device)
    t0 = time.perf_counter()
    generator = HeadshotGenerator(str(base), speed=speed, device=str(device), progress=False)
    generator.load()
    load_s = time.perf_counter() - t0
    style = load_style("corporate")
    n_steps, guidance = generator.sampling(style, few_steps if few else steps, None)
    width, height = generator.output_size(style, None, None)
    prompt = style.render_prompt("sks person")

    def call() -> float:
        _sync(device)
        start = time.perf_counter()
        generator.render(
            prompt,
            style.negative_prompt,
            list(range(batch)),
            steps=n_steps,
            guidance_scale=guidance,
            width=width,
            height=height,
        )
        _sync(device)
        return time.perf_counter() - start

    warmup = call()
    times = [call() for _ in range(repeats)]
    median = statistics.median(times)
    result = {
        "config": name,
        "speed": asdict(speed),
        "batch_size": batch,
        "steps": n_steps,
        "guidance_scale": guidance,
        "width": width,
        "height": height,
        "load_s": round(load_s, 3),
        "warmup_s": round(warmup, 3),
        "call_s": [round(t, 4) for t in times],
        "per_image_s": round(median / batch, 4),
        "peak_vram_gib": _peak_gib(device),
        "notes": generator.notes,
    }
    return result


def bench_training(base: Path, device: Any, *, steps: int, checkpointing: bool, workdir: Path) -> dict[str, Any]:
    """Median time of a DreamBooth-LoRA step (prior preservation, batch 1 + 1 class image)."""
    import numpy as np

    from headshot_lab.train import TrainConfig, train_identity_lora

    rng = np.random.default_rng(0)
    photos = [(rng.random((256, 256, 3)) * 255).astype(np.uint8) for _ in range(4)]
    stamps: list[float] = []
    config = TrainConfig(
        steps=steps,
        rank=16,
        prior_preservation=True,
        num_class_images=1,
        class_image_steps=2,
        gradient_checkpointing=checkpointing,
        checkpoint_every=10**9,
        face_crop=False,
    )
    _reset_peak(device)
    out = Path(tempfile.mkdtemp(dir=workdir, prefix="train-"))
    t0 = time.perf_counter()
    stamps.append(t0)
    train_identity_lora(
        photos,
        str(base),
        out,
        config,
        resume=False,
        progress=False,
        device=str(device),
        callback=lambda step, loss: stamps.append(time.perf_counter()),
    )
    step_times = [b - a for a, b in itertools.pairwise(stamps[1:])]
    return {
        "config": f"train_prior_checkpointing_{'on' if checkpointing else 'off'}",
        "gradient_checkpointing": checkpointing,
        "steps": steps,
        "total_s": round(time.perf_counter() - t0, 3),
        "step_s": round(statistics.median(step_times), 4) if step_times else None,
        "peak_vram_gib": _peak_gib(device),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", "--dry-run", dest="tiny", action="store_true", help="tiny models, any device")
    parser.add_argument("--families", default="sd15,sdxl")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma list of generation configs")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--few-steps", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-steps", type=int, default=6)
    parser.add_argument("--workdir", default=None, help="where the random models go (default: a temp dir)")
    parser.add_argument("--out", default=None, help="JSON path (default benchmarks/results/gpu_generate-<time>.json)")
    return parser.parse_args(argv)


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
    specs = TINY_SPECS if args.tiny else {"sd15": FULL_SD15, "sdxl": FULL_SDXL}
    families = [f for f in args.families.split(",") if f]
    configs = [c for c in args.configs.split(",") if c]
    unknown = [c for c in configs if c not in CONFIGS] + [f for f in families if f not in specs]
    if unknown:
        print(f"gpu_generate: unknown config/family: {', '.join(unknown)}", file=sys.stderr)
        return 2
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="headshot-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {
        "benchmark": "gpu_generate",
        "mode": "tiny" if args.tiny else "full",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(device),
        "settings": {k: v for k, v in vars(args).items() if k not in {"out", "workdir"}},
        "families": {},
    }
    for family in families:
        started = time.perf_counter()
        base, lora = build_family(family, specs[family], workdir, device, lora_rank=4 if args.tiny else 64)
        generation = []
        for name in configs:
            print(f"[{family}] {name} …", file=sys.stderr, flush=True)
            generation.append(
                bench_generation(
                    name, base, lora, device, steps=args.steps, few_steps=args.few_steps, repeats=args.repeats
                )
            )
        training = [
            bench_training(base, device, steps=args.train_steps, checkpointing=flag, workdir=workdir)
            for flag in (True, False)
        ]
        baseline = next((r for r in generation if r["config"] == "baseline"), None)
        for row in generation:
            if baseline:
                row["ratio_vs_baseline"] = round(row["per_image_s"] / baseline["per_image_s"], 3)
                row["speedup_vs_baseline"] = round(baseline["per_image_s"] / row["per_image_s"], 3)
        report["families"][family] = {
            "build_s": round(time.perf_counter() - started, 1),
            "generation": generation,
            "training": training,
        }
    out = Path(args.out) if args.out else Path(__file__).parent / "results" / f"gpu_generate-{int(time.time())}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(str(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
