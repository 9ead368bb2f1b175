"""Benchmark: peak RSS and CPU of retouching one large photo (goal, issue 19: a 40 MP photo ≤ 1.5 GB).

Each measurement runs in a fresh child process (``ru_maxrss`` is a high-water mark, so one process per
size), which builds a photo of the requested size from a real test photo (upscaled, JPEG, written to a
temp file), then times ``workflow.retouch_photos({photo: path}, "corporate", out)`` — load, retouch and
the labelled PNG write, what ``headshot-lab studio`` and the app do. Reported per size: peak RSS of the
child, the RSS after imports and loading the photo (the baseline the retouch adds to), CPU seconds and
wall seconds of the retouch, and the output's ΔITA.

    .venv/bin/python benchmarks/retouch_memory.py [--megapixels 40,12] [--out benchmarks/results] [--label after]

Writes ``OUT/retouch_memory_LABEL.json``. To compare with another version of the package, run it with
``PYTHONPATH`` pointing at that version (as ``hostile_check.py`` explains).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap

from _common import write_result  # type: ignore[import-not-found]

GOAL_MB = 1536.0

CHILD = textwrap.dedent(
    """
    import json, os, resource, sys, tempfile, time
    from pathlib import Path
    from PIL import Image
    megapixels = float(sys.argv[1])
    from headshot_lab import workflow
    from headshot_lab.testing.photos import real_photos
    from headshot_lab.io import load_photo
    source = Image.open(real_photos(["obama"])["obama"]).convert("RGB")
    width = int((megapixels * 1e6 * source.width / source.height) ** 0.5)
    height = int(megapixels * 1e6 / width)  # width × height ≤ the requested size (40 MP is the loader's cap)
    folder = Path(tempfile.mkdtemp(prefix="retouch-mem-"))
    path = folder / "big.jpg"
    source.resize((width, height), Image.Resampling.BICUBIC).save(path, quality=90)
    del source
    load_photo(path)  # the decode, once, so that the baseline includes the loader's own peak
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times = os.times()
    wall = time.perf_counter()
    batch = workflow.retouch_photos({"big.jpg": path}, "corporate", folder / "out")
    wall = time.perf_counter() - wall
    after = os.times()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    output = batch.outputs[0] if batch.outputs else None
    print(json.dumps({
        "megapixels": round(width * height / 1e6, 2), "size": [width, height],
        "baseline_rss_mb": round(baseline, 1), "peak_rss_mb": round(peak, 1),
        "cpu_s": round(after.user + after.system - times.user - times.system, 2), "wall_s": round(wall, 2),
        "delta_ita": output.delta_ita if output else None,
        "analysis_size": (output.facts.get("steps", {}).get("analysis_size") if output else None),
        "failures": [f.error for f in batch.failures],
    }))
    """
)


def measure(megapixels: float) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(megapixels)],
        capture_output=True,
        text=True,
        timeout=1800,
        cwd=tempfile.gettempdir(),  # not the repository: ``-c`` puts the working directory first on sys.path
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {"megapixels": megapixels, "error": done.stderr[-2000:]}
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--megapixels", default="40,12")
    parser.add_argument("--label", default="after")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args(argv)
    runs = [measure(float(mp)) for mp in args.megapixels.split(",")]
    peaks = [float(r["peak_rss_mb"]) for r in runs if "peak_rss_mb" in r]  # type: ignore[arg-type]
    payload = {
        "label": args.label,
        "goal_peak_rss_mb": GOAL_MB,
        "runs": runs,
        "goal_met": bool(peaks) and max(peaks) <= GOAL_MB and len(peaks) == len(runs),
    }
    write_result(f"retouch_memory_{args.label}", payload, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
