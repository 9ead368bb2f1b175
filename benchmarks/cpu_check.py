"""CPU benchmark: check + embed + skin on 20 photos of 12 MP (goal: ≤ 10 s on 2 cores).

The measured path is what the product does with a set of selfies: ``check_photos(photos, skin=True)``
— the capture checklist (decode once, downscale once, prefetch the next photo, fast detector pass),
the identity embedding of each face (the set's different-person check) and each face's skin tone
(ITA°, Monk) measured on the same analysis copy with the same face mesh.

Baseline, measured in the same run: a naive per-photo loop of the same library calls at full
resolution (``load_rgb`` → dlib ``analyze`` (detect + embed) → ``face_mesh`` → ``measure_skin``).
Also timed: ``check_photos`` without the skin tone, to show what the tone adds.

    .venv/bin/python benchmarks/cpu_check.py [--photos 20] [--repeats 1] [--out benchmarks/results] [--profile]

Writes ``OUT/cpu_check.json`` (keys in benchmarks/README.md); ``--profile`` also writes a pyinstrument
profile of one measured run to ``OUT/cpu_check.profile.html`` / ``.txt``.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image, ImageEnhance, ImageOps

from _common import Timing, median_timing, profiled, ratio, timed, write_result  # type: ignore[import-not-found]

SIZE_12MP = (3000, 4000)  # width, height
GOAL_WALL_S = 10.0


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


def measured_path(paths: list[Path], skin: bool = True) -> Any:
    """Check + embed + skin in one pass: the product's path."""
    from headshot_lab.capture import check_photos

    return check_photos(paths, skin=skin)


def naive_loop(paths: list[Path]) -> int:
    """The same library calls, one photo at a time, at full resolution. Returns the tones measured."""
    from headshot_lab.errors import HeadshotLabError
    from headshot_lab.faces import get_backend
    from headshot_lab.faces.mesh import face_mesh
    from headshot_lab.io import load_rgb
    from headshot_lab.skin import measure_skin

    backend = get_backend("dlib")
    tones = 0
    for path in paths:
        pixels = load_rgb(path)
        backend.analyze(pixels)
        meshes = face_mesh(pixels)
        with contextlib.suppress(HeadshotLabError):
            measure_skin(pixels, mesh=meshes[0] if meshes else None)
            tones += 1
    return tones


def repeated(repeats: int, fn: Any, *args: Any) -> tuple[Any, Timing]:
    """The last result and the median timing of ``repeats`` runs."""
    runs = [timed(fn, *args) for _ in range(repeats)]
    return runs[-1][0], median_timing([timing for _, timing in runs])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=20, help="how many 12 MP photos (default 20)")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each path; the median is reported")
    parser.add_argument("--out", default="benchmarks/results", help="folder for cpu_check.json")
    parser.add_argument("--profile", action="store_true", help="also write a pyinstrument profile of the path")
    args = parser.parse_args(argv)
    if args.photos < 1 or args.repeats < 1:
        parser.error("--photos and --repeats must be at least 1")

    with tempfile.TemporaryDirectory() as tmp:
        paths = make_photos(Path(tmp), args.photos)
        measured_path(paths[:2])  # warm-up: load the models once, as a running app would have
        naive_loop(paths[:1])
        report, measured = repeated(args.repeats, measured_path, paths)
        _, check_only = repeated(args.repeats, measured_path, paths, False)
        tones, naive = repeated(args.repeats, naive_loop, paths)
        if args.profile:
            with profiled("cpu_check", args.out):
                measured_path(paths)

    photos = report.to_dict()["photos"]
    faces = [photo["faces"] for photo in photos]
    skin = [photo.get("skin") for photo in photos]
    write_result(
        "cpu_check",
        {
            "photos": args.photos,
            "megapixels": SIZE_12MP[0] * SIZE_12MP[1] / 1e6,
            "repeats": args.repeats,
            "measured_path": "check_photos(photos, skin=True): checklist + identity embedding + skin tone",
            "check_embed_skin": measured.to_dict(),
            "check_only": check_only.to_dict(),
            "naive_loop": naive.to_dict(),
            "speedup_vs_naive": ratio(naive.wall_s, measured.wall_s),
            "cpu_speedup_vs_naive": ratio(naive.cpu_s, measured.cpu_s),
            "skin_cost_ratio": ratio(measured.cpu_s, check_only.cpu_s),
            "seconds_per_photo": round(measured.wall_s / args.photos, 3),
            "goal_wall_s": GOAL_WALL_S,
            "goal_met": measured.wall_s <= GOAL_WALL_S,
            "faces_found": faces,
            "embedded": sum(photo.embedding is not None for photo in report.photos),
            "skin_measured": sum(tone is not None for tone in skin),
            "naive_skin_measured": tones,
            "ita": [None if tone is None else tone["ita"] for tone in skin],
            "sanity": all(n == 1 for n in faces) and all(tone is not None for tone in skin),
        },
        args.out,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
