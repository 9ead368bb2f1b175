"""Calibration: how often the audit cries wolf, and how often it catches a planted bias, by sample size.

    python -m eval calibrate --config calibration --output-path DIR [--seeds K] [--sizes 4,8,16,50]

``--config calibration`` (``eval/configs/calibration.yaml``) audits one face of each of the 58 distinct
real people of :func:`headshot_lab.testing.photos.independent_faces`: 14 / 7 / 3 / 1 disjoint trials per
partition at n = 4 / 8 / 16 / 50 (:func:`possible_subsets` counts the distinct sets, 4·10⁵ … 8·10¹³).
The measured table is in the README ("Calibration") and in
:data:`headshot_lab.audit.margins.MEASURED_CALIBRATION` (the app's help text).

The audit runs **once** (``samples.jsonl``: one record per source × generator); every trial then
re-aggregates a subset of those records (:func:`eval.runner.aggregate_run`, flags from
:func:`headshot_lab.audit.report.compute_flags`), so no image is measured twice.

**Trials are independent.** For a sample size ``n`` (people, i.e. clusters: all photos of a person and
everything made from them go together) the ``C`` people of a generator are shuffled and cut into
``m = ⌊C / n⌋`` *disjoint* sets of ``n`` (:func:`disjoint_trials`; the ``C − m·n`` left over sit this
partition out). Disjoint sets share no person, so their flags are independent draws — unlike
overlapping subsamples, whose flags are strongly correlated (two 80 % subsamples share ≥ 60 % of
the people). ``K`` partitions (``--seeds``) are averaged for a steadier rate, but trials of different
partitions share people, so the **effective** number of independent trials is ``m``, and the interval
is Clopper–Pearson (exact, ≥ 95 % coverage; :func:`scipy.stats.binomtest`) on ``round(rate·m)`` of
``m``. Where ``C < n`` there is no trial: the table says "not enough independent photos".

* **False-alarm rate** of a null (``null``, ``reencode``, ``relight`` and chains of them) = the share
  of trials raising *any* flag (overall or per group); for ``tone_jitter`` (zero-mean tone noise) the
  share raising a tone flag.
* **Power** of a canary (``lighten:3 | reencode`` …) = the share of trials raising its expected flag
  (:data:`eval.generators.EXPECTED_FLAGS`).
* Each flag's own rate is listed too (per metric).

Synthetic records (the offline set's ``shift_ita`` tone variants, ``meta.synthetic``) are left out by
default: they are not independent people, and a canary that undoes them measures itself. Mirrored
copies of a photo would not be independent people either, so none are made.

Goal (issue 13): every null ≤ 5 % and every canary ≥ 90 % at ``n = 16``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from eval.generators import expected_flag, parse_spec

if TYPE_CHECKING:
    from eval.runner import EvalConfig

TONE_FLAGS = ("skin_lightening", "skin_darkening")
DEFAULT_SIZES = (4, 8, 16, 50)
NOT_ENOUGH = "not enough independent photos"


def disjoint_trials(clusters: Sequence[str], size: int, rng: np.random.Generator) -> list[list[str]]:
    """Shuffle the distinct ``clusters`` and cut them into ``⌊C / size⌋`` disjoint lists of ``size``.

    Every cluster is in at most one list; the ``C mod size`` left over are unused (``[]`` when ``C < size``).
    """
    if size < 1:
        raise ValueError("size must be ≥ 1")
    unique = sorted(set(map(str, clusters)))
    order = [unique[int(i)] for i in rng.permutation(len(unique))]
    count = len(unique) // int(size)
    return [sorted(order[k * size : (k + 1) * size]) for k in range(count)]


def effective_trials(people: int, size: int) -> int:
    """``m = ⌊people / size⌋``: how many disjoint trials of ``size`` people exist (independent trials)."""
    return people // size if size > 0 else 0


def possible_subsets(people: int, size: int) -> int:
    """``C(people, size)``: how many distinct sets of ``size`` people exist (overlapping ones included)."""
    from math import comb

    return comb(int(people), int(size)) if 0 < size <= people else 0


def is_hit(spec: str, flags: Sequence[str]) -> bool:
    """Did a trial of ``spec`` raise what counts: the canary's expected flag overall, a tone flag overall
    or for a group (``tone_jitter``: a false alarm, like any flag of a null), or any flag (a null)?"""
    name, _ = parse_spec(spec)
    _, expected = expected_flag(spec)
    if expected is not None:
        return expected in flags
    if name == "tone_jitter":
        return bool(_flag_names(flags) & set(TONE_FLAGS))
    return bool(flags)


def rate_interval(hits: int, trials: int, independent: int, confidence: float = 0.95) -> dict[str, Any]:
    """``{rate, ci}``: ``rate = hits / trials``; the Clopper–Pearson interval of ``round(rate·m)`` of
    ``m = independent`` trials (``ci`` ``None`` when ``m = 0``)."""
    from scipy.stats import binomtest

    if trials <= 0 or independent <= 0:
        return {"rate": None, "ci": None}
    rate = hits / trials
    successes = round(rate * independent)
    interval = binomtest(successes, independent, 0.5).proportion_ci(confidence_level=confidence, method="exact")
    return {"rate": round(rate, 4), "ci": [round(float(interval.low), 4), round(float(interval.high), 4)]}


def trial_flags(
    rows: Sequence[Mapping[str, Any]],
    features: Mapping[str, Any],
    spec: str,
    config: EvalConfig,
    *,
    with_detectability: bool,
    n_resamples: int,
    seed: int,
) -> list[str]:
    """The flags one trial raises: ``aggregate_run`` on ``rows``, overall flags and ``flag@group`` flags."""
    from eval.runner import aggregate_run

    run = aggregate_run(
        rows,
        features,
        spec,
        config,
        with_detectability=with_detectability,
        with_attributes=False,
        n_resamples=n_resamples,
        seed=seed,
    )
    return [*run["flags"], *run["group_flags"]]


def _flag_names(flags: Sequence[str]) -> set[str]:
    """``"over_smoothing@ITA group II"`` → ``"over_smoothing"``."""
    return {flag.split("@", 1)[0] for flag in flags}


def calibrate_records(
    records: Sequence[Mapping[str, Any]],
    config: EvalConfig,
    *,
    features: Mapping[str, Any] | None = None,
    sizes: Sequence[int] = DEFAULT_SIZES,
    partitions: int = 5,
    n_resamples: int = 500,
    with_detectability: bool = True,
    real_only: bool = True,
    specs: Sequence[str] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """False-alarm rate and power of each null/canary generator at each sample size (see the module text).

    Args:
        records: ``samples.jsonl`` records (:func:`eval.runner.read_samples`).
        config: the run's config (margins, confidence, group rules).
        features: ``features.npz`` arrays (needed for detectability; ``None`` leaves it out).
        sizes: people per trial.
        partitions: ``K`` random partitions per size (trials = ``K·m``, independent = ``m``).
        n_resamples: inner bootstrap resamples per trial.
        with_detectability: re-fit the C2ST in each trial (slower; needs ``features``).
        real_only: leave out synthetic records (``meta.synthetic``).
        specs: generators to calibrate (default: every null and canary of the config).
    """
    from tqdm.auto import tqdm

    from headshot_lab.audit.report import FLAG_DEFINITIONS

    use = [r for r in records if not (real_only and (r.get("meta") or {}).get("synthetic"))]
    chosen = [s for s in (specs or config.generators) if expected_flag(s)[0]]
    detect = bool(with_detectability and features)
    summary: dict[str, Any] = {}
    for spec in tqdm(chosen, desc="calibrate", disable=not progress):
        by_cluster: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        for row in use:
            if row["generator"] == spec:
                by_cluster[str(row["cluster"])].append(row)
        people = len(by_cluster)
        _, expected = expected_flag(spec)
        counted: dict[int, tuple[int, int, dict[str, int]]] = {}
        for size in map(int, sizes):
            hits, trials, flag_hits = 0, 0, defaultdict(int)
            for k in range(int(partitions) if effective_trials(people, size) else 0):
                rng = np.random.default_rng([int(config.seed), size, k, 4421])
                for t, members in enumerate(disjoint_trials(list(by_cluster), size, rng)):
                    subset = [row for member in members for row in by_cluster[member]]
                    flags = trial_flags(
                        subset,
                        features or {},
                        spec,
                        config,
                        with_detectability=detect,
                        n_resamples=n_resamples,
                        seed=int(config.seed) * 1_000_003 + size * 10_007 + k * 101 + t,
                    )
                    trials += 1
                    hits += int(is_hit(spec, flags))
                    for name in _flag_names(flags):
                        flag_hits[name] += 1
            counted[size] = (hits, trials, dict(flag_hits))
        seen = {name for _, _, found in counted.values() for name in found}
        names = sorted(({n for n in FLAG_DEFINITIONS if detect or n != "detectable"} | seen) - {expected})
        by_size = {}
        for size, (hits, trials, found) in counted.items():
            independent = effective_trials(people, size)
            by_size[str(size)] = {
                "n": size,
                "trials": trials,
                "independent_trials": independent,
                "possible_subsets": possible_subsets(people, size),
                "target": {"hits": hits, **rate_interval(hits, trials, independent, config.confidence)},
                "flags": {
                    name: {
                        "hits": found.get(name, 0),
                        **rate_interval(found.get(name, 0), trials, independent, config.confidence),
                    }
                    for name in names
                },
                "note": None if independent else f"{NOT_ENOUGH} ({people} people; n = {size} needs ≥ {size})",
            }
        summary[spec] = {
            "kind": "power" if expected else "false_alarm",
            "expected": expected,
            "people": people,
            "photos": sum(len(v) for v in by_cluster.values()),
            "by_size": by_size,
        }
    return {
        "method": "disjoint subsets of people; K partitions averaged; Clopper-Pearson on the independent count",
        "sizes": [int(s) for s in sizes],
        "partitions": int(partitions),
        "n_resamples": int(n_resamples),
        "detectability": detect,
        "real_only": bool(real_only),
        "confidence": float(config.confidence),
        "goal": {"null_max": 0.05, "canary_min": 0.90, "at_n": 16},
        "generators": summary,
    }


def _cell(entry: Mapping[str, Any], value: Mapping[str, Any]) -> str:
    if not entry["independent_trials"]:
        return NOT_ENOUGH
    ci = value.get("ci") or [None, None]
    return f"{value['rate']:.2f} [{ci[0]:.2f}, {ci[1]:.2f}] ({entry['independent_trials']}/{entry['trials']})"


def _label(spec: str, entry: Mapping[str, Any]) -> str:
    """What a generator's first row counts: its power, or its false-alarm rate."""
    if entry["expected"]:
        return f"power: {entry['expected']}"
    return "false alarm: tone flag" if parse_spec(spec)[0] == "tone_jitter" else "false alarm: any flag"


def _resample_counts(calibration: Mapping[str, Any]) -> list[str]:
    """One line: per n, the disjoint (independent) trials per partition and the distinct sets of n people."""
    entries = list(calibration["generators"].values())
    if not entries:
        return []
    people = max(entry["people"] for entry in entries)
    cells = [
        f"n = {n}: {effective_trials(people, int(n))} disjoint per partition of {possible_subsets(people, int(n)):.3g} "
        "possible sets"
        for n in calibration["sizes"]
    ]
    return [f"{people} people; " + "; ".join(cells) + ".", ""]


def render_calibration(calibration: Mapping[str, Any]) -> str:
    """``calibration.md``: generator × metric × n → rate [CI] (independent / total trials).

    Each generator gets its target row (power or false alarm) and one row per other flag that fired
    in some trial; flags that never fired are in ``calibration.json`` (rate 0).
    """
    sizes = [str(s) for s in calibration["sizes"]]
    header = ["generator", "counted", *(f"n = {s}" for s in sizes)]
    lines = [
        "# Calibration: false alarms and power by sample size",
        "",
        f"n = people per trial; each trial a disjoint set of people, {calibration['partitions']} random partitions "
        f"averaged; inner bootstrap B = {calibration['n_resamples']}; detectability "
        f"{'re-fitted per trial' if calibration['detectability'] else 'left out'}; "
        f"{'real photos only (synthetic variants left out)' if calibration['real_only'] else 'all records'}.",
        "Cells: rate [95 % Clopper–Pearson on the independent trials] (independent / total trials). "
        "Goal: nulls ≤ 0.05, canaries ≥ 0.90 at n = 16. ↳ rows: other flags that fired.",
        "",
        *_resample_counts(calibration),
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    for spec, entry in calibration["generators"].items():
        by_size = entry["by_size"]
        fired = sorted({name for d in by_size.values() for name, v in d["flags"].items() if v["hits"]})
        name = f"`{spec}` ({entry['people']} people)".replace("|", "\\|")
        for label, key in [(_label(spec, entry), None), *((f"↳ {flag}", flag) for flag in fired)]:
            cells = []
            for size in sizes:
                data = by_size[size]
                cells.append(_cell(data, data["target"] if key is None else data["flags"][key]))
            lines.append(f"| {name} | {label} | " + " | ".join(cells) + " |")
    lines.append("")
    return "\n".join(lines)


def calibrate(
    config: EvalConfig,
    output_path: str | Path,
    *,
    run: str | Path | None = None,
    sizes: Sequence[int] | None = None,
    partitions: int | None = None,
    n_resamples: int | None = None,
    with_detectability: bool = True,
    real_only: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the audit once into ``output_path`` (or read the finished ``run``), calibrate, and write
    ``calibration.json`` + ``calibration.md`` there.

    With ``real_only`` on the offline set the audit is run without synthetic variants (they would be
    left out anyway). Power seeds and plots are off in that run.
    """
    import dataclasses

    from eval.runner import read_samples, run_eval
    from headshot_lab.atomic import write_json_atomic, write_text_atomic

    options = config.power or {}
    sizes = [int(s) for s in (sizes or options.get("sizes") or DEFAULT_SIZES)]
    partitions = int(partitions if partitions is not None else options.get("partitions", 5))
    n_resamples = int(n_resamples if n_resamples is not None else options.get("n_resamples", 500))
    directory = Path(output_path)
    source = Path(run) if run is not None else directory
    if run is None:
        audit = dataclasses.replace(config, power={**options, "seeds": 0}, plots=False)
        if real_only and audit.dataset == "offline":
            audit.dataset_options = {**(audit.dataset_options or {}), "variants_per_face": 0}
        run_eval(audit, directory, progress=progress)
    records, _, features = read_samples(source)
    calibration = calibrate_records(
        records,
        config,
        features=features,
        sizes=sizes,
        partitions=partitions,
        n_resamples=n_resamples,
        with_detectability=with_detectability,
        real_only=real_only,
        progress=progress,
    )
    calibration["run"] = str(source)
    calibration["config"] = config.name
    directory.mkdir(parents=True, exist_ok=True)
    write_json_atomic(directory / "calibration.json", calibration)
    write_text_atomic(directory / "calibration.md", render_calibration(calibration))
    return calibration


def parse_sizes(text: str) -> list[int]:
    """``"4,8,16,50"`` → ``[4, 8, 16, 50]`` (each ≥ 2)."""
    sizes = [int(part) for part in str(text).split(",") if part.strip()]
    if not sizes or any(s < 2 for s in sizes):
        raise ValueError("sizes must be integers ≥ 2, e.g. 4,8,16,50")
    return sizes
