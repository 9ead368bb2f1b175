"""The audit's realistic nulls and planted changes on the real test photos, one photo at a time.

``python -m headshot_lab.testing.audit_nulls [--side 384]`` prints, per photo, how the reported skin shift
(:func:`headshot_lab.analysis.skin_delta_ita`: light-matched within one scene) and the texture ratio
(:func:`headshot_lab.skin.texture_energy`) move under harmless changes — exposure/white balance, a JPEG
re-save with a resize — and under planted ones — +3° of skin tone, bilateral smoothing — next to the ITA°
shift as photographed. Every output is analysed from scratch (its own detection, mesh and skin mask).
The figures quoted in :data:`headshot_lab.skin.TEXTURE_SIGMA` come from this script; the skin shift's
table on the 58 independent people (the suite's own ``reencode`` / ``relight`` generators and canaries) is
``python -m eval.skin_nulls``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from headshot_lab.analysis import AnalysisOptions, PhotoAnalysis, analyse_photo, downscale, judge_finder, skin_delta_ita
from headshot_lab.io import load_rgb
from headshot_lab.skin import angle_difference, jpeg_roundtrip, relight, shift_ita
from headshot_lab.testing.photos import real_photos

PHOTOS = ("obama", "obama2", "obama3", "biden", "tom_hanks", "astronaut")


def _resaved(image: np.ndarray, scale: float = 0.92, quality: int = 90) -> np.ndarray:
    import cv2

    height, width = image.shape[:2]
    resized = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    return jpeg_roundtrip(resized, quality)


def _smoothed(image: np.ndarray, box: tuple[float, ...]) -> np.ndarray:
    import cv2

    face_width = box[2] - box[0]
    return np.asarray(cv2.bilateralFilter(image, d=0, sigmaColor=80.0, sigmaSpace=max(2.0, 0.03 * face_width)))


def _row(source: PhotoAnalysis, output: PhotoAnalysis) -> dict[str, float | None]:
    before, after = source.primary, output.primary
    if before is None or after is None or before.tone is None or after.tone is None:
        return {"reported": None, "photographed": None, "texture_ratio": None}
    ratio = None if before.texture is None or after.texture is None else after.texture / before.texture
    return {
        "reported": skin_delta_ita(source, output),
        "photographed": float(angle_difference(after.tone.ita, before.tone.ita)),
        "texture_ratio": ratio,
    }


def measure(side: int = 384, photos: tuple[str, ...] = PHOTOS) -> dict[str, dict[str, Any]]:
    """``{photo: {change: {"reported", "photographed", "texture_ratio"}}}``."""
    finder, options = judge_finder(), AnalysisOptions(embed=False)
    found = real_photos(list(photos))
    table: dict[str, dict[str, Any]] = {}
    for name, path in found.items():
        image = downscale(load_rgb(path, min_side=0), side)[0]
        source = analyse_photo(image, backend=finder, options=options)
        face = source.primary
        if face is None or face.skin_mask is None:
            continue
        mask = face.skin_mask.astype(np.float32)
        changes = {
            "exposure 0.8, 4000 K": relight(image, 0.8, 4000),
            "exposure 1.2, 6504 K": relight(image, 1.2, 6504),
            "exposure 1.0, 5000 K": relight(image, 1.0, 5000),
            "0.92x + JPEG q90": _resaved(image),
            "+3° skin": shift_ita(image, mask, 3.0),
            "+3° skin, then re-saved": _resaved(shift_ita(image, mask, 3.0)),
            "smoothed": _smoothed(image, face.box),
        }
        table[name] = {
            change: _row(source, analyse_photo(pixels, backend=finder, options=options))
            for change, pixels in changes.items()
        }
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=384, help="longer side the photos are brought to")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    table = measure(args.side)
    if args.json:
        print(json.dumps(table, indent=2))
        return 0

    def cell(value: float | None, pattern: str) -> str:
        return "–" if value is None else pattern.format(value)

    print("| photo | change | ΔITA reported | ΔITA as photographed | texture ratio |")
    print("|---|---|---|---|---|")
    for name, rows in table.items():
        for change, row in rows.items():
            print(
                f"| {name} | {change} | {cell(row['reported'], '{:+.2f}')} | "
                f"{cell(row['photographed'], '{:+.2f}')} | {cell(row['texture_ratio'], '{:.2f}')} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
