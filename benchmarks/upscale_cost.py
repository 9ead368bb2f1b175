"""Benchmark: per-image cost of super-resolution (tiny spandrel models, or a real checkpoint) vs Lanczos.

Each (method, factor) runs in a fresh child process (``ru_maxrss`` is a high-water mark, so one process per
measurement): it builds a 512×512 crop of a real test photo, calls :func:`headshot_lab.upscale.upscale_image`
once to warm up (model load, first-call allocations), then ``--repeats`` times, and reports the median wall and
CPU seconds per image and the child's peak RSS (and the RSS after the warm-up, the baseline). Lanczos is measured
in the same run, and every method's ``ratio_vs_lanczos`` (wall and CPU) is against that run's Lanczos.

    .venv/bin/python benchmarks/upscale_cost.py [--factors 2,4] [--repeats 3] [--tiny compact,esrgan]
        [--model PATH_OR_HUB_FILE] [--device cpu|cuda] [--tile 256] [--out benchmarks/results] [--label cpu]

``--model`` adds a real checkpoint (e.g. a Real-ESRGAN ×4 ``.pth``) for a GPU machine; with ``--device cuda`` the
child synchronises CUDA around each call and also reports ``torch.cuda.max_memory_allocated``.
Writes ``OUT/upscale_cost[_LABEL].json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from _common import write_result  # type: ignore[import-not-found]

CHILD = textwrap.dedent(
    """
    import json, os, resource, statistics, sys, time
    import numpy as np
    from PIL import Image
    method, factor, repeats, device, tile, side = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
    import torch
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", torch.get_num_threads())))
    from headshot_lab.testing.photos import real_photos
    from headshot_lab.upscale import upscale_image
    photo = Image.open(real_photos(["obama"])["obama"]).convert("RGB")
    short = min(photo.size)
    photo = photo.crop((0, 0, short, short)).resize((side, side), Image.Resampling.LANCZOS)
    cuda = device.startswith("cuda")
    def call():
        if cuda:
            torch.cuda.synchronize()
        t0, c0 = time.perf_counter(), os.times()
        result = upscale_image(photo, factor, model=method, device=device, tile=tile)
        if cuda:
            torch.cuda.synchronize()
        c1 = os.times()
        return result, time.perf_counter() - t0, (c1.user + c1.system) - (c0.user + c0.system)
    result, warm_s, _ = call()
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    walls, cpus = [], []
    for _ in range(repeats):
        result, wall, cpu = call()
        walls.append(wall); cpus.append(cpu)
    out = {
        "method": result.method, "model": result.model, "factor": factor, "input": [side, side],
        "output": list(result.image.size), "passes": list(result.passes), "tiles": result.tiles,
        "dtype": result.dtype, "fallback": result.fallback,
        "first_call_s": round(warm_s, 4),
        "wall_s_per_image": round(statistics.median(walls), 4), "cpu_s_per_image": round(statistics.median(cpus), 4),
        "baseline_rss_mb": round(baseline, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "torch_threads": torch.get_num_threads(),
    }
    if cuda:
        out["cuda_peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        out["gpu"] = torch.cuda.get_device_name()
    print("RESULT " + json.dumps(out))
    """
)


def measure(method: str, factor: int, args: argparse.Namespace) -> dict:
    """One child process: the JSON line it prints (or the error it died with)."""
    command = [sys.executable, "-c", CHILD, method, str(factor), str(args.repeats), args.device, str(args.tile)]
    command.append(str(args.side))
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line.removeprefix("RESULT "))
    return {"method": method, "factor": factor, "error": done.stderr.strip().splitlines()[-1:] or ["no output"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factors", default="2,4")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tiny", default="compact,esrgan", help="tiny random spandrel models to time ('' = none)")
    parser.add_argument("--model", default=None, help="a real checkpoint (path or Hub file) to time as well")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--side", type=int, default=512, help="input side in px (default 512)")
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--label", default="")
    args = parser.parse_args(argv)
    from headshot_lab.testing.tiny import tiny_sr_model

    factors = [int(f) for f in args.factors.split(",") if f]
    folder = Path(tempfile.mkdtemp(prefix="upscale-cost-"))
    methods = {"lanczos": "lanczos"}
    for arch in filter(None, args.tiny.split(",")):
        methods[f"tiny-{arch}"] = str(tiny_sr_model(folder / f"tiny_{arch}_x4.pth", arch, scale=4))
    if args.model:
        methods["model"] = args.model
    rows = []
    for factor in factors:
        lanczos = measure("lanczos", factor, args)
        rows.append({"name": "lanczos", **lanczos})
        for name, model in methods.items():
            if name == "lanczos":
                continue
            row = {"name": name, **measure(model, factor, args)}
            if "error" not in row and "error" not in lanczos:
                row["ratio_vs_lanczos"] = {
                    "wall": round(row["wall_s_per_image"] / max(lanczos["wall_s_per_image"], 1e-9), 1),
                    "cpu": round(row["cpu_s_per_image"] / max(lanczos["cpu_s_per_image"], 1e-9), 1),
                }
            rows.append(row)
    name = "upscale_cost" + (f"_{args.label}" if args.label else "")
    write_result(
        name,
        {
            "device": args.device,
            "repeats": args.repeats,
            "tile": args.tile,
            "note": "tiny models are random-weight wiring checks (8 features); a real Real-ESRGAN x4 has 64 "
            "features and 23 RRDB blocks, so its cost is far higher: time it with --model on a GPU.",
            "results": rows,
        },
        args.out,
    )
    return 0 if all("error" not in row for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
