"""Cost of the realism passes per image: face-detail pass and hires fix vs plain generation, same run.

Each mode runs in its own fresh process (so its peak RSS is its own), on the same base model:

* ``plain`` — one text-to-image call at the base's native size (``N × N``);
* ``hires`` — the same plus the hires fix (Lanczos ×``scale``, img2img at ``strength``): the whole cost of a
  hires-fixed image;
* ``plain_at_photo`` — one text-to-image call at the photo size ``P × P`` (what the detail pass works on);
* ``detail`` — :func:`headshot_lab.detail.detail_faces` on a real face photo at ``P × P`` (find the face with
  the project's analysis, re-render the crop at ``N``, colour-match and blend), also split into finding the face
  and the rest; ``detail_measured`` — the same with the identity/skin before-after measurement.

Without ``--base`` the tiny random SD1.5 (built in code) is used on CPU: that measures the pass's own
overhead (detection, resizes, colour match, one small img2img), not a real model's time. With
``--base runwayml/stable-diffusion-v1-5 --device cuda --size 512`` (or a local folder) it is a GPU run.

    .venv/bin/python benchmarks/detail_cost.py [--repeats 3] [--steps 20] [--photo-size 512]
        [--base ID_OR_PATH] [--device cpu|cuda] [--out benchmarks/results]

Writes ``OUT/detail_cost.json``: per mode ``s_per_image`` (median wall and CPU seconds), ``peak_rss_mb``, and
``ratio_to_plain`` (wall, against ``plain`` of the same run; ``detail`` also against ``plain_at_photo``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import median_timing, timed, write_result  # type: ignore[import-not-found]

MODES = ("plain", "hires", "plain_at_photo", "detail", "detail_measured")
PROMPT = "corporate headshot photo of a person, natural skin texture, sharp eyes"


def _load(base: str, device: str) -> Any:
    import torch
    from diffusers import AutoPipelineForText2Image

    dtype = torch.float16 if device == "cuda" else torch.float32
    pipe = AutoPipelineForText2Image.from_pretrained(base, torch_dtype=dtype, safety_checker=None)
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def _photo(size: int) -> Any:
    from PIL import Image, ImageOps

    from headshot_lab.testing.photos import real_photos

    path = real_photos(["obama"])["obama"]
    return ImageOps.fit(Image.open(path).convert("RGB"), (size, size), centering=(0.5, 0.3))


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """Run one mode ``repeats`` times (after one warm-up) and report its timings and peak RSS."""
    import torch

    from headshot_lab.detail import DetailOptions, detail_faces, native_size
    from headshot_lab.hires import HiresOptions, hires_fix

    if args.device == "cpu":
        torch.set_num_threads(args.threads)
    pipe = _load(args.base, args.device)
    native = native_size(pipe)
    photo = _photo(args.photo_size)
    extra: dict[str, Any] = {"native_size": native}

    def plain(size: int) -> Any:
        generator = torch.Generator().manual_seed(0)
        return pipe(PROMPT, num_inference_steps=args.steps, height=size, width=size, generator=generator).images[0]

    def run() -> Any:
        if args.mode == "plain":
            return plain(native)
        if args.mode == "plain_at_photo":
            return plain(args.photo_size)
        if args.mode == "hires":
            options = HiresOptions(scale=args.scale, strength=args.strength, steps=args.steps)
            return hires_fix(plain(native), pipe, prompt=PROMPT, seed=0, options=options).image
        options = DetailOptions(strength=args.strength, steps=args.steps)
        result = detail_faces(
            photo, pipe, prompt=PROMPT, seed=0, options=options, measure=args.mode == "detail_measured"
        )
        assert result.faces, "the benchmark photo must have a face"
        return result.image

    run()  # warm-up (first calls build the task pipeline, load the face models)
    timings = [timed(run)[1] for _ in range(args.repeats)]
    if args.mode == "detail":
        from headshot_lab.detail import find_faces_for_detail

        extra["find_face"] = median_timing(
            [timed(find_faces_for_detail, __import__("numpy").asarray(photo))[1] for _ in range(args.repeats)]
        ).to_dict()
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"s_per_image": median_timing(timings).to_dict(), "peak_rss_mb": round(peak_kb / 1024, 1), **extra}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=None, help="Hub id or folder of a real base (default: tiny random SD1.5)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--strength", type=float, default=0.35)
    parser.add_argument("--scale", type=float, default=2.0)
    parser.add_argument("--photo-size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per mode (default 1)")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--mode", default=None, help=argparse.SUPPRESS)  # internal: one mode in this process
    args = parser.parse_args(argv)
    if args.mode:
        print(json.dumps(worker(args)))
        return 0
    tiny = args.base is None
    with tempfile.TemporaryDirectory() as tmp:
        if tiny:
            from headshot_lab.testing import tiny_pipeline

            args.base = str(tiny_pipeline("sd15", Path(tmp) / "tiny-sd15"))
        results: dict[str, Any] = {}
        for mode in args.modes.split(","):
            command = [sys.executable, __file__, "--mode", mode, "--base", args.base, "--device", args.device,
                       "--steps", str(args.steps), "--strength", str(args.strength), "--scale", str(args.scale),
                       "--photo-size", str(args.photo_size), "--repeats", str(args.repeats),
                       "--threads", str(args.threads)]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
            if done.returncode != 0:
                results[mode] = {"error": done.stderr.strip().splitlines()[-1:]}
                continue
            results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    plain = results.get("plain", {}).get("s_per_image", {}).get("wall_s")
    at_photo = results.get("plain_at_photo", {}).get("s_per_image", {}).get("wall_s")
    for mode, entry in results.items():
        wall = entry.get("s_per_image", {}).get("wall_s")
        if wall and plain:
            entry["ratio_to_plain"] = round(wall / plain, 2)
        if wall and at_photo and mode.startswith("detail"):
            entry["ratio_to_plain_at_photo"] = round(wall / at_photo, 2)
    payload = {
        "base": "tiny random SD1.5 (built in code)" if tiny else args.base,
        "device": args.device,
        "settings": {k: getattr(args, k) for k in ("steps", "strength", "scale", "photo_size", "repeats", "threads")},
        "modes": results,
        "sanity": {"all_modes_ran": all("error" not in r for r in results.values())},
    }
    write_result("detail_cost", payload, args.out)
    return 0 if payload["sanity"]["all_modes_ran"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
