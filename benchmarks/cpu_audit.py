"""CPU benchmark: audit throughput on 512×512 faces (goal: ≥ 10 faces/s on 2 cores).

The measured path is the eval runner's per-face analysis (:func:`eval.runner.analyse`, i.e.
``_process_sample`` → ``analyse_image``) of an ``imagefolder`` dataset of N 512² face crops, with the
``null`` generator and one canary (``lighten:3`` by default, as in the shipped configs), on ``--num-proc`` 1 and 2 processes. For
each source face the runner decodes it once, detects, embeds, meshes and measures skin, texture,
apparent age and detectability features; the ``null`` output is measured from scratch like any output;
the canary's output (same geometry) reuses the source's face box and mesh and is embedded and measured again.

Baseline, measured in the same run: a naive loop of the same library calls without that reuse —
every output is decoded from the file again, detected, meshed and measured from scratch (the canary's
detection and mesh too, plus three decodes).

The faces are made from the real test photos (:mod:`headshot_lab.testing.photos`): each detected face
is cropped at several scales and offsets, mirrored every other time, and resized to 512².

    .venv/bin/python benchmarks/cpu_audit.py [--faces 64] [--num-proc 1,2] [--canary lighten:3] [--profile]

``faces_per_s`` counts source faces, each audited through every generator; ``images_per_s`` counts the
output images audited (faces × generators); ``marginal_faces_per_s`` is the rate once the workers run
(``(N − n) / (wall(N faces) − wall(n))`` with ``n`` = one batch per process: what a long audit gets, its
workers' start-up paid once). Writes ``OUT/cpu_audit.json`` (keys in benchmarks/README.md).

Every output is analysed from scratch, the ``null``'s too (a new detection on its pixel-identical
image); only the canary, which keeps the geometry, reuses the source's face box and mesh.
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from _common import Timing, profiled, ratio, timed, write_result  # type: ignore[import-not-found]

FACE_SIZE = 512
GOAL_FACES_PER_S = 10.0
#: Sources per batch sent to a worker.
BATCH_SIZE = 4
#: Crop side as a multiple of the face-box width, and offsets of the crop centre (× box width).
SCALES = (2.2, 2.6, 3.0)
OFFSETS = ((0.0, 0.0), (0.08, -0.05), (-0.08, 0.05), (0.05, 0.08))


def _face_boxes() -> list[tuple[str, np.ndarray, tuple[int, int, int, int]]]:
    """``(person, image, box)`` of every usable face in the real test photos (all six of the group photo)."""
    from headshot_lab.faces import get_backend
    from headshot_lab.io import load_rgb
    from headshot_lab.testing.photos import real_photos

    backend = get_backend("dlib")
    found = []
    for name, path in real_photos().items():
        if name == "obama_partial":  # the face is cut off by the frame: not a face crop
            continue
        image = load_rgb(path, min_side=0)
        faces = backend.detect(image)
        chosen = faces if name == "group" else faces[:1]
        for index, face in enumerate(chosen):
            person = f"{name}-{index}" if name == "group" else name.rstrip("0123456789")
            found.append((person, image, tuple(int(v) for v in face.box)))
    return found


def _crop(image: np.ndarray, box: tuple[int, int, int, int], scale: float, offset: tuple[float, float]) -> np.ndarray:
    """A square crop ``scale`` × the box width around the (shifted) box centre, edges mirrored, at 512²."""
    import cv2

    left, top, right, bottom = box
    width = right - left
    half = scale * width / 2.0
    cx, cy = (left + right) / 2.0 + offset[0] * width, (top + bottom) / 2.0 + offset[1] * width
    x0, y0, x1, y1 = (round(v) for v in (cx - half, cy - half, cx + half, cy + half))
    height, full_width = image.shape[:2]
    pad = max(0, -x0, -y0, x1 - full_width, y1 - height)
    if pad:
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    interpolation = cv2.INTER_AREA if crop.shape[0] > FACE_SIZE else cv2.INTER_CUBIC
    return cv2.resize(crop, (FACE_SIZE, FACE_SIZE), interpolation=interpolation)


def make_faces(folder: Path, count: int) -> list[tuple[Path, str]]:
    """``count`` distinct 512² face crops as PNG files plus ``metadata.csv`` (file_name, identity)."""
    from PIL import Image

    boxes = _face_boxes()
    folder.mkdir(parents=True, exist_ok=True)
    files: list[tuple[Path, str]] = []
    for i in range(count):
        person, image, box = boxes[i % len(boxes)]
        round_ = i // len(boxes)
        crop = _crop(image, box, SCALES[round_ % len(SCALES)], OFFSETS[round_ % len(OFFSETS)])
        if round_ % 2:
            crop = np.ascontiguousarray(crop[:, ::-1])
        path = folder / f"face_{i:03d}.png"
        Image.fromarray(crop).save(path)
        files.append((path, person))
    with (folder / "metadata.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file_name", "identity"])
        writer.writerows([path.name, person] for path, person in files)
    return files


def runner_path(
    folder: Path, generators: list[str], num_proc: int, subset: list[tuple[Path, str]] | None = None
) -> list[Any]:
    """The eval runner's analysis of the folder (``subset``: of a new folder holding only those faces)."""
    from eval.datasets import open_dataset
    from eval.runner import EvalConfig, analyse

    if subset is not None:
        _write_folder(folder, subset)
    dataset = open_dataset(f"imagefolder:{folder}")
    config = EvalConfig(name="cpu_audit", generators=generators, num_proc=num_proc, batch_size=BATCH_SIZE)
    return analyse(dataset.entries(), config, [], progress=False, dataset=dataset.worker_view())


def _write_folder(folder: Path, files: list[tuple[Path, str]]) -> None:
    """Hard links (or copies) of ``files`` in ``folder`` with their ``metadata.csv``."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    for path, _ in files:
        target = folder / path.name
        if not target.exists():
            try:
                os.link(path, target)
            except OSError:
                shutil.copyfile(path, target)
    with (folder / "metadata.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file_name", "identity"])
        writer.writerows([path.name, person] for path, person in files)


def _marginal(full: Timing, start: Timing, extra_faces: int) -> float | None:
    """``extra_faces / (wall(all faces) − wall(one batch per process))``: the rate once the workers run."""
    seconds = full.wall_s - start.wall_s
    return round(extra_faces / seconds, 2) if seconds > 0 else None


def naive_loop(files: list[tuple[Path, str]], generators: list[str]) -> int:
    """The same calls without reuse: every output decoded again and analysed from scratch. Returns faces found."""
    from eval.generators import GenerationContext, SourceView, build_generator
    from eval.runner import analyse_image
    from headshot_lab.errors import HeadshotLabError
    from headshot_lab.io import load_rgb

    built = [build_generator(spec) for spec in generators]
    context = GenerationContext(seed=0, donors=[])
    found = 0
    for path, person in files:
        source = analyse_image(load_rgb(path, min_side=0))
        found += source.face is not None
        geometry = source.original_geometry()
        for generator in built:
            image = load_rgb(path, min_side=0)
            view = SourceView(
                id=path.name,
                image=image,
                identity=person,
                ita=None if source.tone is None else float(source.tone.ita),
                **geometry,
            )
            try:
                output = generator(view, context)
            except HeadshotLabError:  # e.g. no skin to edit: the runner counts it and goes on
                continue
            analyse_image(output)
    return found


def _rates(timing: Timing, faces: int, generators: int) -> dict[str, Any]:
    return {
        **timing.to_dict(),
        "faces_per_s": round(faces / timing.wall_s, 2),
        "images_per_s": round(faces * generators / timing.wall_s, 2),
        "cpu_s_per_face": round(timing.cpu_s / faces, 3),
    }


def _signature(results: list[Any]) -> list[Any]:
    """What must not depend on the number of processes: each face's source and output measurements."""
    return [
        (r.id, r.source, {spec: out.measurements for spec, out in sorted(r.outputs.items())})
        for r in sorted(results, key=lambda r: r.id)
    ]


def _counts(text: str) -> list[int]:
    """``"1,2"`` → ``[1, 2]`` (sorted, without repeats)."""
    try:
        return sorted({int(n) for n in text.split(",") if n.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated whole numbers, got {text!r}") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces", type=int, default=64, help="how many 512² face crops (default 64)")
    parser.add_argument("--num-proc", type=_counts, default=[1, 2], help="process counts for the runner, e.g. 1,2")
    parser.add_argument("--canary", default="lighten:3", help="the canary generator spec next to null")
    parser.add_argument("--out", default="benchmarks/results", help="folder for cpu_audit.json")
    parser.add_argument("--profile", action="store_true", help="also profile one more 1-process run")
    args = parser.parse_args(argv)
    counts: list[int] = args.num_proc
    if args.faces < 1 or not counts or counts[0] < 1:
        parser.error("--faces and every --num-proc value must be at least 1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    generators = ["null", args.canary]

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "faces"
        files = make_faces(folder, args.faces)
        warm = Path(tmp) / "warm"
        naive_loop(make_faces(warm, 2), generators)  # warm-up: models loaded once, as a long audit has them

        runs: dict[str, dict[str, Any]] = {}
        signatures = []
        results: list[Any] = []
        for count in counts:
            results, timing = timed(runner_path, folder, generators, count)
            runs[f"num_proc_{count}"] = _rates(timing, args.faces, len(generators))
            signatures.append(_signature(results))
            small = count * BATCH_SIZE  # one batch per process: the start-up and little else
            if args.faces > small:
                subset = Path(tmp) / f"start_{count}"  # outside ``folder``: the dataset reads it recursively
                _, start = timed(runner_path, subset, generators, count, files[:small])
                runs[f"num_proc_{count}"]["marginal_faces_per_s"] = _marginal(timing, start, args.faces - small)
        naive_found, naive = timed(naive_loop, files, generators)
        if args.profile:  # an extra, untimed run: the profiler slows down what it measures
            with profiled("cpu_audit", args.out):
                runner_path(folder, generators, 1)

    first = runs[f"num_proc_{counts[0]}"]
    best = max(runs.values(), key=lambda run: run["faces_per_s"])
    naive_rates = _rates(naive, args.faces, len(generators))
    sources = [r.source or {} for r in results]
    found = sum(bool(s.get("face_found")) for s in sources)
    same = all(s == signatures[0] for s in signatures)
    write_result(
        "cpu_audit",
        {
            "faces": args.faces,
            "face_size": FACE_SIZE,
            "generators": generators,
            "measured_path": "eval.runner.analyse on imagefolder faces (decode once, reuse across generators)",
            "runner": runs,
            "naive_loop": naive_rates,
            "speedup_vs_naive": ratio(naive.wall_s, first["wall_s"]),
            "cpu_speedup_vs_naive": ratio(naive.cpu_s, first["cpu_s"]),
            "best_faces_per_s": best["faces_per_s"],
            "goal_faces_per_s": GOAL_FACES_PER_S,
            "goal_met": best["faces_per_s"] >= GOAL_FACES_PER_S,
            "faces_found": found,
            "naive_faces_found": naive_found,
            "skin_measured": sum(s.get("ita") is not None for s in sources),
            "same_results_across_num_proc": same,
            "sanity": found == naive_found and same,
        },
        args.out,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
