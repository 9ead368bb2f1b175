"""Does the suite catch what it should, and only that? Power and false-alarm rate by resampling.

For ``k`` seeds (``config.power.seeds``, e.g. 20):

1. **partition the people** — the ``C`` people (clusters) of the run are shuffled
   (``numpy.random.default_rng([seed, s, 7919])``) and cut into ``m = ⌊C / size⌋`` *disjoint*
   subsamples of ``size = max(2, ⌈fraction × C⌉)`` people (:func:`eval.calibrate.disjoint_trials`).
   Subsampling without replacement, not the bootstrap, because the inner bootstrap of step 2 would
   count a person drawn twice as two independent people;
2. the run's metrics are re-aggregated on each subsample (inner bootstrap with
   ``config.power.n_resamples`` resamples) and the flags re-derived — detectability is left out (it
   re-trains classifiers; no canary expects it);
3. for ``tone_jitter`` (a zero-mean ±D tone shift, true null for the tone flags) the measured ΔITA
   and Monk shift of each image also get a fresh random sign (sign-flip randomisation, valid because
   the jitter is symmetric by design), so each seed sees a new draw of the jitter.

**Independence.** Until this version 20 overlapping 80 % subsamples were scored as 20 independent
trials (two such subsamples share ≥ 60 % of the people, so their flags agree almost surely) and the
Wilson interval was computed on 20: far too narrow. Now only the ``m`` subsamples of one partition are
independent; the ``k·m`` trials of all partitions are averaged for the rate, and the 95 % interval is
Clopper–Pearson on ``m`` independent trials (:func:`eval.calibrate.rate_interval`), reported as
``independent_trials``. With the default ``fraction`` 0.8, ``m = 1``: one run cannot estimate its own
power. For rates at given sample sizes over truly independent trials use ``python -m eval calibrate``
(:mod:`eval.calibrate`).

**Power** of a canary = the share of trials raising its expected flag
(:data:`eval.generators.EXPECTED_FLAGS`). **False-alarm rate** of a null (``null``, ``reencode``,
``relight``) = the share raising *any* flag; of ``tone_jitter`` = the share raising
``skin_lightening`` or ``skin_darkening``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from eval.generators import expected_flag, parse_spec

if TYPE_CHECKING:
    from eval.runner import EvalConfig

TONE_FLAGS = ("skin_lightening", "skin_darkening")


def resample_records(
    records: Sequence[Mapping[str, Any]], rng: np.random.Generator, *, fraction: float = 0.8, sign_flip: bool = False
) -> list[dict[str, Any]]:
    """A subsample of ``records``: ``ceil(fraction × C)`` of the ``C`` clusters without replacement (≥ 2),
    with fresh random signs of ΔITA and the Monk shift when ``sign_flip``."""
    by_cluster: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        by_cluster[str(record["cluster"])].append(record)
    clusters = sorted(by_cluster)
    keep = min(len(clusters), max(2, int(np.ceil(float(fraction) * len(clusters)))))
    drawn = rng.choice(len(clusters), size=keep, replace=False)
    out: list[dict[str, Any]] = []
    for index in sorted(drawn):
        for record in by_cluster[clusters[int(index)]]:
            copy = dict(record)
            if sign_flip:
                sign = 1.0 if rng.random() < 0.5 else -1.0
                for key in ("skin_delta_ita", "skin_monk_shift"):
                    if copy.get(key) is not None:
                        copy[key] = sign * float(copy[key])
            out.append(copy)
    return out


def _sign_flipped(records: Sequence[Mapping[str, Any]], rng: np.random.Generator) -> list[dict[str, Any]]:
    """Copies of ``records`` with ΔITA and the Monk shift multiplied by a fresh random sign each."""
    out = []
    for record in records:
        copy = dict(record)
        sign = 1.0 if rng.random() < 0.5 else -1.0
        for key in ("skin_delta_ita", "skin_monk_shift"):
            if copy.get(key) is not None:
                copy[key] = sign * float(copy[key])
        out.append(copy)
    return out


def resampling_power(
    records: Sequence[Mapping[str, Any]],
    config: EvalConfig,
    *,
    seeds: int | None = None,
    n_resamples: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Power of each canary and false-alarm rate of each null over ``seeds`` partitions into disjoint subsamples."""
    from tqdm.auto import tqdm

    from eval.calibrate import disjoint_trials, effective_trials, is_hit, rate_interval
    from eval.runner import aggregate_run

    options = config.power or {}
    k = int(seeds if seeds is not None else options.get("seeds", 20))
    inner = int(n_resamples if n_resamples is not None else options.get("n_resamples", 500))
    fraction = float(options.get("fraction", 0.8))
    specs = [spec for spec in config.generators if expected_flag(spec)[0]]
    summary: dict[str, Any] = {}
    for spec in tqdm(specs, desc="power", disable=not progress):
        rows = [r for r in records if r["generator"] == spec]
        by_cluster: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
        for row in rows:
            by_cluster[str(row["cluster"])].append(row)
        if not rows or k <= 0:
            continue
        people = len(by_cluster)
        size = min(people, max(2, int(np.ceil(fraction * people))))
        independent = effective_trials(people, size)
        jitter = parse_spec(spec)[0] == "tone_jitter"
        hits, trials = 0, 0
        flags_seen: dict[str, int] = defaultdict(int)
        for s in range(k):
            rng = np.random.default_rng([int(config.seed), s, 7919])
            for t, members in enumerate(disjoint_trials(list(by_cluster), size, rng)):
                sample = [row for member in members for row in by_cluster[member]]
                if jitter:
                    sample = _sign_flipped(sample, rng)
                run = aggregate_run(
                    sample,
                    {},
                    spec,
                    config,
                    with_detectability=False,
                    with_attributes=False,
                    n_resamples=inner,
                    seed=s * 1009 + t,
                )
                trials += 1
                hits += int(is_hit(spec, run["flags"]))
                for flag in run["flags"]:
                    flags_seen[flag] += 1
        interval = rate_interval(hits, trials, independent, config.confidence)
        _, expected = expected_flag(spec)
        summary[spec] = {
            "kind": "power" if expected else "false_alarm",
            "expected": expected,
            "hits": hits,
            "trials": trials,
            "independent_trials": independent,
            "people_per_trial": size,
            "rate": hits / trials if trials else 0.0,
            "ci": interval["ci"],
            "flags_seen": dict(sorted(flags_seen.items())),
        }
    return {
        "method": "disjoint subsamples of people (partitions averaged); sign-flip for tone_jitter",
        "seeds": k,
        "fraction": fraction,
        "inner_resamples": inner,
        "ci_method": "Clopper-Pearson (exact) on round(rate x independent_trials) of independent_trials",
        "description": (
            f"{k} random partitions of the people into disjoint subsamples of {fraction:.0%} of them (inner "
            f"bootstrap B = {inner}); flags re-derived each time without detectability. Power = share of "
            "subsamples raising the canary's flag; false-alarm rate = share raising any flag (nulls) or a tone "
            "flag (tone_jitter, with fresh random signs). Subsamples of different partitions share people, so "
            "the 95 % interval is Clopper-Pearson on the independent subsamples of one partition only "
            "(`independent_trials`); `python -m eval calibrate` gives rates by sample size."
        ),
        "generators": summary,
    }
