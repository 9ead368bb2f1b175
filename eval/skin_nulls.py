"""The reported skin shift under harmless changes and planted ones, on the 58 independent people.

    python -m eval.skin_nulls [--seeds 3] [--json PATH] [--people N]

Each person of :func:`headshot_lab.testing.photos.independent_faces` is framed as the calibration does
(``OfflineDataset(people="independent", variants_per_face=0)``: a 2.4 × face-width square at ≤ 384 px),
analysed (:func:`headshot_lab.analysis.analyse_photo`, the judges' finder), and each channel below is
applied with the suite's own generators (:mod:`eval.generators`; ``--seeds`` draws per person) and the
output analysed from scratch (its own detection, mesh and skin mask). Per channel the table gives the mean,
SD and 5–95 % range over people × seeds of

* **as photographed**: ``ITA_out − ITA_src`` (median per-pixel ITA°);
* **grey-matched**: :func:`headshot_lab.skin.grey_matched_delta_ita` (the scene greys; the reported
  shift up to 2026-12);
* **cells, sRGB** / **cells, CAT02**: :func:`headshot_lab.skin.light_matched_delta_ita`'s scene-cell gain
  taken in linear sRGB or in CAT02 cone space (the reported shift now uses
  :data:`headshot_lab.skin.SCENE_GAIN_SPACE`).

Channels: ``reencode`` and ``relight`` (harmless: the goal is |mean| < 0.3°, SD < 1°), ``lighten:3 |
reencode`` and ``darken:3 | reencode`` (planted ±3°: the goal is ±3 ± 0.7° on average).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

CHANNELS = ("reencode", "relight", "lighten:3 | reencode", "darken:3 | reencode")
MEASURES = ("photographed", "grey-matched", "cells, sRGB", "cells, CAT02", "cells, per-pixel", "cells, 3x3")


def _deltas(before: Any, after: Any) -> dict[str, float | None]:
    from headshot_lab import skin

    def cells(space: str) -> float | None:
        gain = skin.scene_gain(before.scene_cells, after.scene_cells, space=space)
        if gain is None:
            return skin.grey_matched_delta_ita(before, after)
        return skin.gain_matched_delta_ita(before, after, gain, space=space)

    def per_pixel() -> float | None:
        gain = skin.scene_gain(before.scene_cells, after.scene_cells, space="CAT02")
        if gain is None:
            return skin.grey_matched_delta_ita(before, after)
        return skin.gain_corrected_delta_ita(before, after, gain, space="CAT02")

    def full() -> float | None:
        matrix = skin.scene_light_matrix(before.scene_cells, after.scene_cells)
        if matrix is None:
            return skin.grey_matched_delta_ita(before, after)
        return skin.matrix_corrected_delta_ita(before, after, matrix)

    return {
        "photographed": float(skin.angle_difference(after.ita, before.ita)),
        "grey-matched": skin.grey_matched_delta_ita(before, after),
        "cells, sRGB": cells("sRGB"),
        "cells, CAT02": cells("CAT02"),
        "cells, per-pixel": per_pixel(),
        "cells, 3x3": full(),
        "reported": skin.light_matched_delta_ita(before, after),
    }


def measure(seeds: int = 3, people: int | None = None, channels: Sequence[str] = CHANNELS) -> list[dict[str, Any]]:
    """One row per person × channel × seed: ``{"person", "channel", "seed", <measure>: ΔITA°}``."""
    from eval.datasets import OfflineDataset
    from eval.generators import GenerationContext, SourceView, build_generator
    from headshot_lab.analysis import AnalysisOptions, analyse_photo, judge_finder

    finder, options = judge_finder(), AnalysisOptions(embed=False)
    samples = OfflineDataset(people="independent", variants_per_face=0).build()
    if people is not None:
        samples = samples[: int(people)]
    generators = {spec: build_generator(spec) for spec in channels}
    rows: list[dict[str, Any]] = []
    for sample in samples:
        source = analyse_photo(sample.image, backend=finder, options=options)
        face = source.primary
        if face is None or face.tone is None or face.skin_mask is None:
            continue
        view = SourceView(
            id=sample.id,
            image=sample.image,
            identity=str(sample.identity),
            box=tuple(round(v) for v in face.box),  # type: ignore[arg-type]
            mesh=face.mesh,
            skin=face.skin_mask,
            ita=float(face.tone.ita),
        )
        for seed in range(seeds):
            context = GenerationContext(seed=seed)
            for spec, generator in generators.items():
                output = analyse_photo(generator(view, context), backend=finder, options=options).primary
                if output is None or output.tone is None:
                    continue
                rows.append({"person": sample.identity, "channel": spec, "seed": seed, **_deltas(face.tone, output.tone)})
    return rows


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """``{channel: {measure: {"n", "mean", "sd", "p5", "p95"}}}``."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    for channel in dict.fromkeys(r["channel"] for r in rows):
        table[channel] = {}
        for key in (*MEASURES, "reported"):
            values = np.array([r[key] for r in rows if r["channel"] == channel and r[key] is not None], dtype=float)
            if len(values) == 0:
                continue
            table[channel][key] = {
                "n": float(len(values)),
                "mean": float(values.mean()),
                "sd": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
                "p5": float(np.percentile(values, 5)),
                "p95": float(np.percentile(values, 95)),
            }
    return table


def render(table: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = ["| channel | measure | n | mean ΔITA° | SD | 5–95 % |", "|---|---|---|---|---|---|"]
    for channel, measures in table.items():
        for key, s in measures.items():
            lines.append(
                f"| {channel} | {key} | {int(s['n'])} | {s['mean']:+.2f} | {s['sd']:.2f} | "
                f"{s['p5']:+.2f} … {s['p95']:+.2f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="draws of each generator per person")
    parser.add_argument("--people", type=int, default=None, help="only the first N people (a quick look)")
    parser.add_argument("--json", default=None, help="also write the rows and the table here")
    args = parser.parse_args(argv)
    rows = measure(args.seeds, args.people)
    table = summarise(rows)
    print(render(table))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"rows": rows, "table": table}, handle, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
