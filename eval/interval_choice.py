"""Which interval each metric is judged by: the one-sided miss at the margin, and the power, on real shapes.

    python -m eval.interval_choice --from RUN [--sizes 4,8,16] [--draws 2000] [--json PATH]

``RUN`` is a finished audit (its ``samples.jsonl``), normally the calibration run of the 58 independent people
(``python -m eval calibrate --config calibration …``). For a metric ``m`` (margin ``δ`` past its no-effect
value ``θ₀``, :mod:`headshot_lab.audit.margins`) and a generator, the people's values ``x`` (each person's mean
skin ΔITA°, Δidentity, or the ``log`` of the texture or apparent-age ratio; synthetic records left out) are a *realistic shape*. Drawing ``n``
people with replacement

* from the shape moved to the margin's edge, ``x − x̄ + θ₀ − δ`` (and ``+ δ``): the share of 95 % intervals
  lying wholly past the margin is the false-alarm rate at the worst null ``|μ − θ₀| = δ`` — the one-sided miss
  of the interval, nominally 2.5 %; it is what a flag risks, whatever the margin;
* from the shape as measured: the share flagged is the power (for a canary) or the false alarm (for a null).

for the interval methods ``hall_t`` (Hall's skewness-corrected t) and ``t`` (plain Student t) of
:mod:`headshot_lab.audit.fairness`. The choice per metric (:attr:`headshot_lab.audit.margins.MetricSpec.interval`,
its reason in :data:`headshot_lab.audit.margins.INTERVAL_REASON`) weighs the worst one-sided miss over the
generators, on the sides the metric flags on, first (a difference of a point or two is a tie: 2 000 draws give a
Monte-Carlo SE of ≈ 0.6 points at 10 %) and the canaries' power second; a tie keeps Hall's, the default.
Resampling with replacement treats the 56–58 people as the population: a guide to the choice, not a calibration
(that is ``python -m eval calibrate``, on disjoint sets of people).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: The paired metrics judged by a mean, and the methods compared.
METRICS = ("skin_delta_ita", "identity_delta", "texture_ratio", "age_ratio")
METHODS = ("hall_t", "t")


def shapes(records: Sequence[dict[str, Any]], metric: str) -> dict[str, np.ndarray]:
    """``{generator: per-person values}`` of ``metric`` (the log of a ratio), synthetic records left out."""
    from headshot_lab.audit.margins import is_log_scale

    people: dict[str, dict[str, list[float]]] = {}
    for record in records:
        value = record.get(metric)
        if value is None or (record.get("meta") or {}).get("synthetic"):
            continue
        if is_log_scale(metric):
            if not value > 0:
                continue
            value = float(np.log(value))
        person = str(record.get("cluster") or record.get("person") or record["id"])
        people.setdefault(str(record["generator"]), {}).setdefault(person, []).append(float(value))
    # one value a person (their mean), as the audit's interval is over person means
    out = {g: np.asarray([np.mean(v) for v in by_person.values()]) for g, by_person in people.items()}
    return {g: v for g, v in out.items() if len(v) >= 8 and np.std(v) > 0}


def _interval(values: np.ndarray, method: str) -> tuple[float, float]:
    from headshot_lab.audit.fairness import t_interval

    return t_interval(float(values.mean()), values, skew_correct=method == "hall_t")


def rates(
    values: np.ndarray, *, below: float, above: float, size: int, draws: int, rng: np.random.Generator
) -> dict[str, dict[str, float]]:
    """``{method: {"miss_below", "miss_above", "flag_below", "flag_above"}}`` for batches of ``size`` people.

    ``below`` / ``above``: the margin's two edges on the scale of ``values`` (``θ₀ − δ``, ``θ₀ + δ``; for a ratio
    ``log(θ₀ − δ)``, ``log(θ₀ + δ)``). ``miss_below``: share of intervals with ``U ≤ below`` when the mean is
    exactly ``below`` (the shape moved there); ``miss_above`` likewise at ``above``; ``flag_*``: the same shares on
    the shape as measured.
    """
    centred = values - values.mean()
    out: dict[str, dict[str, float]] = {
        m: dict.fromkeys(("miss_below", "miss_above", "flag_below", "flag_above"), 0.0) for m in METHODS
    }
    for _ in range(draws):
        index = rng.integers(0, len(values), size)
        for method in METHODS:
            counts = out[method]
            low, high = _interval(centred[index] + below, method)
            counts["miss_below"] += high <= below
            low, high = _interval(centred[index] + above, method)
            counts["miss_above"] += low >= above
            low, high = _interval(values[index], method)
            counts["flag_below"] += high <= below
            counts["flag_above"] += low >= above
    return {m: {k: v / draws for k, v in counts.items()} for m, counts in out.items()}


def measure(
    records: Sequence[dict[str, Any]], *, sizes: Sequence[int] = (4, 8, 16), draws: int = 2000, seed: int = 0
) -> list[dict[str, Any]]:
    """One row per metric × generator × size × method: the four rates of :func:`rates`."""
    from headshot_lab.audit.margins import METRIC_SPECS

    rng = np.random.default_rng(seed)
    rows = []
    for metric in METRICS:
        spec = METRIC_SPECS[metric]
        resolved = spec.resolve()
        assert resolved is not None and spec.null is not None
        null, margin = resolved
        below, above = null - margin, null + margin
        if spec.log_scale:  # a ratio: judged on log v, the edges at log(θ₀ ∓ δ)
            below, above = float(np.log(below)), float(np.log(above))
        for generator, values in shapes(records, metric).items():
            for size in (s for s in sizes if s >= spec.min_n):  # no verdict below the metric's minimum
                found = rates(values, below=below, above=above, size=int(size), draws=draws, rng=rng)
                for method, counts in found.items():
                    rows.append({"metric": metric, "generator": generator, "n": int(size), "method": method, **counts})
    return rows


def summary(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{metric: {method: {"worst_miss", "worst_miss_at", "power_16"}}}``.

    ``worst_miss``: the largest one-sided miss over the generators, sizes and the sides the metric flags on
    (its rules' directions: both for the skin shift and age, ``below`` for identity and texture); ``power_16``: per canary
    whose expected flag (:func:`eval.generators.expected_flag`) belongs to the metric, its flag rate in that
    flag's direction at ``n = 16``.
    """
    from eval.generators import expected_flag
    from headshot_lab.audit.margins import METRIC_SPECS

    out: dict[str, dict[str, Any]] = {}
    for metric in dict.fromkeys(r["metric"] for r in rows):
        directions = {rule.flag: rule.direction for rule in METRIC_SPECS[metric].rules}
        sides = [f"miss_{d}" for d in dict.fromkeys(directions.values())]
        table: dict[str, Any] = {}
        for method in METHODS:
            mine = [r for r in rows if r["metric"] == metric and r["method"] == method]
            worst = max(mine, key=lambda r: max(r[side] for side in sides))
            power = {}
            for r in mine:
                _, flag = expected_flag(r["generator"])
                if r["n"] == 16 and flag in directions:
                    power[r["generator"]] = round(r["flag_below" if directions[flag] == "below" else "flag_above"], 3)
            table[method] = {
                "worst_miss": round(max(worst[side] for side in sides), 4),
                "worst_miss_at": f"{worst['generator']}, n = {worst['n']}",
                "power_16": power,
            }
        out[metric] = table
    return out


def render(rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| metric | generator | n | method | miss at −δ | miss at +δ | flagged below | flagged above |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['metric']} | `{r['generator']}` | {r['n']} | {r['method']} | {r['miss_below']:.3f} | "
            f"{r['miss_above']:.3f} | {r['flag_below']:.3f} | {r['flag_above']:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from eval.runner import read_samples

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from", dest="run", required=True, help="a finished audit's output folder")
    parser.add_argument("--sizes", default="4,8,16", help="batch sizes (people)")
    parser.add_argument("--draws", type=int, default=2000, help="resampled batches per cell")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the rows and the summary here")
    args = parser.parse_args(argv)
    records, _, _ = read_samples(Path(args.run))
    rows = measure(records, sizes=[int(v) for v in args.sizes.split(",")], draws=args.draws, seed=args.seed)
    print(render(rows))
    chosen = summary(rows)
    print(json.dumps(chosen, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "summary": chosen}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
