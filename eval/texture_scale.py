"""Texture ratio under a harmless re-encode and under smoothing: the detector box's scale vs the mesh's.

    python -m eval.texture_scale [--people N] [--json PATH]

Each of the 58 independent people (``OfflineDataset(people="independent", variants_per_face=0)``, as the
calibration frames them) is analysed the way :mod:`eval.runner` does it — the source with the dataset's face
box as hint (found at 1280 px), each output of ``reencode`` and ``smooth | reencode`` from scratch — and the
texture energy (:func:`headshot_lab.skin.texture_energy`) of source and output is taken twice on the same
pixels and skin mask:

* **box scale** (up to 2026-12-02): the face box resized to :data:`headshot_lab.skin.TEXTURE_SIZE` px wide.
  The two analyses' dlib boxes come from different image-pyramid levels and disagree;
* **mesh scale** (now): the mesh's horizontal span (:func:`headshot_lab.skin.mesh_face_width`) resized to
  :data:`headshot_lab.skin.TEXTURE_MESH_SIZE` px.

Printed per channel: the log texture ratio's mean and SD over people (a harmless channel should give ≈ 0
and a small SD; ``smooth`` a clear negative mean with an SD small enough for a batch of 16 to clear the
0.85 margin). Measured 2026-12-02 (58 people; log texture ratio; the suite's own calibration records before
and after the change, ``samples.jsonl`` of ``python -m eval calibrate --config calibration``, give the same):

==================  ============================  ============================
channel             box scale: mean, SD (log)     mesh scale: mean, SD (log)
==================  ============================  ============================
reencode            +0.078, 0.221 (ratio ×1.08)   −0.013, 0.084 (×0.99)
smooth | reencode   −0.352, 0.357 (×0.70)         −0.442, 0.241 (×0.64)
==================  ============================  ============================

The two analyses of the *same* source (the dataset's box vs a fresh detection) differ by log SD 0.227 at the
box scale and 0.064 at the mesh scale. This script reproduces the table to the third decimal (58 people,
2026-12-02).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

CHANNELS = ("reencode", "smooth | reencode")


def _energies(analysis: Any) -> dict[str, float | None]:
    from headshot_lab.skin import TEXTURE_MESH_SIZE, mesh_face_width, texture_energy

    face = analysis.face
    if face is None or face.mesh is None or face.skin_mask is None or analysis.photo is None:
        return {"box": None, "mesh": None}
    small = analysis.photo.small
    return {
        "box": texture_energy(small, face.skin_mask, box=face.box),
        "mesh": texture_energy(
            small, face.skin_mask, box=face.box, face_width=mesh_face_width(face.mesh.points), size=TEXTURE_MESH_SIZE
        ),
    }


def measure(people: int | None = None) -> list[dict[str, Any]]:
    """One row per person × channel: ``{"person", "channel", "box", "mesh"}`` (log texture ratios)."""
    from eval.datasets import OfflineDataset
    from eval.generators import GenerationContext, SourceView, build_generator
    from eval.runner import _face_from_hint
    from headshot_lab.audit.measure import analyse_image

    samples = OfflineDataset(people="independent", variants_per_face=0).build()[: people or None]
    generators = {spec: build_generator(spec) for spec in CHANNELS}
    context = GenerationContext(seed=0)
    rows: list[dict[str, Any]] = []
    for sample in samples:
        source = analyse_image(sample.image, hint_face=_face_from_hint(sample.face_hint), measure_age=False)
        before = _energies(source)
        geometry = source.original_geometry()
        view = SourceView(
            id=sample.id,
            image=sample.image,
            identity=str(sample.identity),
            landmarks=geometry["landmarks"],
            landmarks5=geometry["landmarks5"],
            box=geometry["box"],
            mesh=geometry["mesh"],
            skin=geometry["skin"],
        )
        for spec, generator in generators.items():
            after = _energies(analyse_image(generator(view, context), measure_age=False))
            row: dict[str, Any] = {"person": sample.identity, "channel": spec}
            for key in ("box", "mesh"):
                old, new = before[key], after[key]
                row[key] = None if not old or not new else float(np.log(new / old))
            rows.append(row)
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    lines = ["| channel | scale | n | mean log ratio | SD | geometric-mean ratio |", "|---|---|---|---|---|---|"]
    for channel in CHANNELS:
        for key in ("box", "mesh"):
            values = np.array([r[key] for r in rows if r["channel"] == channel and r[key] is not None], dtype=float)
            if len(values) > 1:
                name = channel.replace("|", "\\|")
                lines.append(
                    f"| {name} | {key} | {len(values)} | {values.mean():+.3f} | {values.std(ddof=1):.3f} | "
                    f"{np.exp(values.mean()):.2f} |"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=None, help="only the first N people (a quick look)")
    parser.add_argument("--json", default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    rows = measure(args.people)
    print(render(rows))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
