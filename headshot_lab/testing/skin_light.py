"""Validate the light-corrected skin tone under synthetic relighting of the real test photos.

``python -m headshot_lab.testing.skin_light [--size 800] [--json]`` prints, per photo:

* ``light``: the largest |ΔITA| over the relighting grid (exposure 0.8–1.2 × 4000–6504 K,
  :data:`headshot_lab.skin.RELIGHT_EXPOSURES` × :data:`~headshot_lab.skin.RELIGHT_CCTS`) when only the light
  changes, as photographed and light-corrected, without and with a JPEG q90 re-save;
* ``planted``: the skin alone rotated by +3° of light-corrected ITA
  (:func:`headshot_lab.skin.shift_ita_light_corrected`, skin pixels only), then relit over the grid (and re-saved):
  min / max of the measured corrected ΔITA; ``planted_as_photographed``: the same with +3° in the photo's own Lab
  (:func:`headshot_lab.skin.shift_ita`), which the correction reads scaled by how far it moves the colours;
* ``exposure``: ΔITA of a +20 % exposure with the skin untouched (the null that used to raise
  ``skin_lightening``);
* ``bradford``: the light-only maximum when the relighting uses a different adaptation transform (Bradford)
  from the correction's (CAT02);
* ``share_over_margin`` (light-only) and ``share_caught`` (planted): the false-alarm and hit rates at the
  audit's 1° margin over the grid;
* ``stability``: the share of the grid that keeps the face's ITA group (:func:`headshot_lab.skin.ita_group_stability`).

Every output is measured with a fresh skin mask (:func:`headshot_lab.skin.skin_mask` on the relit photo; the
mesh is reused because relighting moves no pixel).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from headshot_lab import skin

PHOTOS = ("obama", "obama2", "obama3", "obama_partial", "biden", "astronaut")
PLANTED = 3.0
#: The audit's practical margin for a skin shift (issue 13: |ΔITA| ≥ 1°).
MARGIN = 1.0


def _downscale(image: np.ndarray, mesh: Any, size: int) -> tuple[np.ndarray, Any]:
    import dataclasses

    import cv2

    scale = size / max(image.shape[:2])
    if scale >= 1:
        return image, mesh
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    return small, dataclasses.replace(mesh, points=mesh.points * scale)


def _measure(image: np.ndarray, mesh: Any) -> skin.SkinTone:
    return skin.measure_skin(image, skin.skin_mask(image, mesh))


def _deltas(reference: skin.SkinTone, tones: list[skin.SkinTone]) -> tuple[np.ndarray, np.ndarray]:
    raw = np.array([skin.delta_ita(reference, t) for t in tones])
    corrected = np.array([skin.delta_ita(reference, t, light_corrected=True) for t in tones])
    return raw, corrected


def validate_photo(
    image: np.ndarray,
    mesh: Any,
    *,
    exposures: tuple[float, ...] = skin.RELIGHT_EXPOSURES,
    ccts: tuple[float, ...] = skin.RELIGHT_CCTS,
    quality: int = 90,
) -> dict[str, Any]:
    """The numbers of the module docstring for one photo (``mesh`` = its face mesh).

    With the JPEG re-save in the loop the reference is the re-saved original (the same channel on both
    sides, as an audit compares two saved files).
    """
    grid = [(e, c) for e in exposures for c in ccts]
    references = {False: _measure(image, mesh), True: _measure(skin.jpeg_roundtrip(image, quality), mesh)}
    reference = references[False]
    region = skin.skin_mask(image, mesh, exclude_extremes=False)
    planted = skin.shift_ita_light_corrected(image, region, PLANTED)
    planted_raw = skin.shift_ita(image, region, PLANTED)
    out: dict[str, Any] = {
        "ita": reference.ita,
        "ita_light_corrected": reference.ita_light_corrected,
        "plausible": reference.light_corrected_plausible,
        "scene_grey_xy": reference.scene_grey_xy,
        "scene_grey_y": reference.scene_grey_y,
    }
    for label, source, transform, jpeg in (
        ("light", image, "CAT02", False),
        ("light_jpeg", image, "CAT02", True),
        ("bradford_jpeg", image, "Bradford", True),
        ("planted", planted, "CAT02", False),
        ("planted_jpeg", planted, "CAT02", True),
        ("planted_as_photographed_jpeg", planted_raw, "CAT02", True),
    ):
        tones = []
        for exposure, cct in grid:
            relit = skin.relight(source, exposure, cct, transform=transform)
            tones.append(_measure(skin.jpeg_roundtrip(relit, quality) if jpeg else relit, mesh))
        raw, corrected = _deltas(references[jpeg], tones)
        if label.startswith("planted"):
            out[label] = {
                "raw": [float(raw.min()), float(raw.max())],
                "corrected": [float(corrected.min()), float(corrected.max())],
                # power at the audit's 1° margin: share of conditions read as a lightening of ≥ 1°
                "share_caught": float(np.mean(corrected >= MARGIN)),
            }
        else:
            out[label] = {
                "raw": float(np.abs(raw).max()),
                "corrected": float(np.abs(corrected).max()),
                # false alarms at the 1° margin: share of light-only conditions with |ΔITA| ≥ 1°
                "share_over_margin_raw": float(np.mean(np.abs(raw) >= MARGIN)),
                "share_over_margin": float(np.mean(np.abs(corrected) >= MARGIN)),
            }
    brighter = _measure(skin.jpeg_roundtrip(skin.relight(image, 1.2), quality), mesh)
    out["exposure_1.2_jpeg"] = {
        "raw": skin.delta_ita(references[True], brighter),
        "corrected": skin.delta_ita(references[True], brighter, light_corrected=True),
    }
    out["stability"] = skin.ita_group_stability(
        image, skin.skin_mask(image, mesh), exposures=exposures, ccts=ccts
    ).to_dict()
    return out


def _line(name: str, r: dict[str, Any]) -> str:
    s = r["stability"]

    def span(key: str, kind: str = "corrected") -> str:
        lo, hi = r[key][kind]
        return f"[{lo:+.2f}, {hi:+.2f}]"

    return (
        f"| {name} | {r['ita']:.1f} | {r['ita_light_corrected']:.1f} | {'yes' if r['plausible'] else 'no'} | "
        f"{r['light']['raw']:.1f} | {r['light']['corrected']:.2f} | {r['light_jpeg']['corrected']:.2f} | "
        f"{r['bradford_jpeg']['corrected']:.2f} | {span('planted')} | {span('planted_jpeg')} | "
        f"{span('planted_as_photographed_jpeg')} | {r['exposure_1.2_jpeg']['raw']:+.1f} | "
        f"{r['exposure_1.2_jpeg']['corrected']:+.2f} | {s['group']}: {s['share']:.2f} | "
        f"{s['group_light_corrected']}: {s['share_light_corrected']:.2f} |"
    )


HEADER = (
    "| photo | ITA | ITA corr. | plausible | light max|Δ| raw | corr. | corr. +JPEG | corr. +JPEG, Bradford | "
    "+3° planted corr. | +JPEG | +3° as-photographed, corr. +JPEG | +20 % raw | +20 % corr. | group: share raw | "
    "corr. |\n|" + "---|" * 15
)


def main(argv: list[str] | None = None) -> int:
    from headshot_lab.faces.mesh import face_mesh
    from headshot_lab.io import load_rgb
    from headshot_lab.testing import real_photos

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=800, help="longest side the photos are resized to")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("photos", nargs="*", default=list(PHOTOS))
    args = parser.parse_args(argv)
    paths = real_photos()
    results = {}
    for name in args.photos:
        image = load_rgb(paths[name], min_side=0)
        (mesh,) = face_mesh(image, max_faces=1)
        image, mesh = _downscale(image, mesh, args.size)
        results[name] = validate_photo(image, mesh)
        if not args.json:
            if len(results) == 1:
                print(HEADER)
            print(_line(name, results[name]), flush=True)
    if args.json:
        print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
