"""CPU benchmark: the capture checklist on 20 photos of ~12 MP.

Compares ``check_photos`` (decode once, downscale once, prefetch the next photo, fast detector pass)
with a naive per-photo loop of the same library calls (``load_rgb`` → dlib ``analyze`` → ``face_mesh``
→ ``measure_skin`` on the full-resolution image), measured in the same run. Goal: ≤ 10 s on 2 cores.

    .venv/bin/python benchmarks/cpu_check.py [--photos 20] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from _common import write_result  # type: ignore[import-not-found]

SIZE_12MP = (3000, 4000)  # width, height


def make_photos(out: Path, count: int) -> list[Path]:
    """``count`` 12 MP JPEGs made from the real test photos (upscaled, flipped, re-lit)."""
    from headshot_lab.testing.photos import real_photos

    sources = list(real_photos(["obama", "obama2", "obama3", "biden"]).values())
    paths = []
    for i in range(count):
        image = Image.open(sources[i % len(sources)]).convert("RGB")
        image = ImageOps.fit(image, (SIZE_12MP[0] // 4, SIZE_12MP[1] // 4), centering=(0.5, 0.1)).resize(
            SIZE_12MP, Image.Resampling.BICUBIC
        )
        if i % 2:
            image = ImageOps.mirror(image)
        image = ImageEnhance.Brightness(image).enhance(0.85 + 0.03 * (i % 10))
        path = out / f"photo_{i:02d}.jpg"
        image.save(path, quality=92)
        paths.append(path)
    return paths


def naive_loop(paths: list[Path]) -> None:
    from headshot_lab.errors import HeadshotLabError
    from headshot_lab.faces import get_backend
    from headshot_lab.faces.mesh import face_mesh
    from headshot_lab.io import load_rgb
    from headshot_lab.skin import measure_skin

    backend = get_backend("dlib")
    for path in paths:
        pixels = load_rgb(path)
        backend.analyze(pixels)
        meshes = face_mesh(pixels)
        with contextlib.suppress(HeadshotLabError):
            measure_skin(pixels, mesh=meshes[0] if meshes else None)


def timed(fn, *args) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=20)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()

    from headshot_lab.capture import check_photos

    with tempfile.TemporaryDirectory() as tmp:
        paths = make_photos(Path(tmp), args.photos)
        check_photos(paths[:2])  # warm-up: load the models once, as a running app would have
        naive_loop(paths[:1])
        check_wall, check_cpu = timed(check_photos, paths)
        naive_wall, naive_cpu = timed(naive_loop, paths)
        report = check_photos(paths[:4]).to_dict()
    write_result(
        "cpu_check",
        {
            "photos": args.photos,
            "megapixels": SIZE_12MP[0] * SIZE_12MP[1] / 1e6,
            "check_photos": {"wall_s": round(check_wall, 2), "cpu_s": round(check_cpu, 2)},
            "naive_loop": {"wall_s": round(naive_wall, 2), "cpu_s": round(naive_cpu, 2)},
            "speedup_vs_naive": round(naive_wall / check_wall, 2),
            "goal_wall_s": 10.0,
            "goal_met": check_wall <= 10.0,
            "faces_found_in_first_4": [p["faces"] for p in report["photos"]],  # sanity: 1 each
            "seconds_per_photo": round(check_wall / args.photos, 3),
            "sanity": bool(np.all([p["faces"] == 1 for p in report["photos"]])),
        },
        args.out,
    )


if __name__ == "__main__":
    main()
