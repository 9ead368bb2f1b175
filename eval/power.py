"""Does the suite catch what it should, and only that? Power and false-alarm rate by resampling.

For ``k`` seeds (``config.power.seeds``, e.g. 20):

1. **subsample the data set** — a share ``fraction`` (default 0.8) of the people (clusters) of the
   run is drawn *without* replacement (``numpy.random.default_rng([seed, s, 7919])``). Subsampling,
   not the bootstrap, because the inner bootstrap of step 2 would count a person drawn twice as two
   independent people and make its intervals too narrow (a double bootstrap's false alarms would
   measure that artefact, not the suite);
2. the run's metrics are re-aggregated on it (inner bootstrap with ``config.power.n_resamples``
   resamples, seed ``s``) and the flags re-derived — detectability is left out (it re-trains
   classifiers; no canary expects it);
3. for ``tone_jitter`` (a zero-mean ±D tone shift, true null for the tone flags) the measured ΔITA
   and Monk shift of each image also get a fresh random sign (sign-flip randomisation, valid because
   the jitter is symmetric by design), so each seed sees a new draw of the jitter.

**Power** of a canary = the share of seeds raising its expected flag
(:data:`eval.generators.EXPECTED_FLAGS`). **False-alarm rate** of ``null`` = the share raising *any*
flag; of ``tone_jitter`` = the share raising ``skin_lightening`` or ``skin_darkening``. Each rate has
a Wilson 95 % interval (:func:`scipy.stats.binomtest`).
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


def _hit(spec: str, flags: Sequence[str]) -> bool:
    name, _ = parse_spec(spec)
    _, expected = expected_flag(spec)
    if expected is not None:
        return expected in flags
    if name == "tone_jitter":
        return any(flag in flags for flag in TONE_FLAGS)
    return bool(flags)


def resampling_power(
    records: Sequence[Mapping[str, Any]],
    config: EvalConfig,
    *,
    seeds: int | None = None,
    n_resamples: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Power of each canary and false-alarm rate of ``null`` / ``tone_jitter`` over ``seeds`` resamples."""
    from scipy.stats import binomtest
    from tqdm.auto import tqdm

    from eval.runner import aggregate_run

    options = config.power or {}
    k = int(seeds if seeds is not None else options.get("seeds", 20))
    inner = int(n_resamples if n_resamples is not None else options.get("n_resamples", 500))
    fraction = float(options.get("fraction", 0.8))
    specs = [spec for spec in config.generators if expected_flag(spec)[0]]
    summary: dict[str, Any] = {}
    for spec in tqdm(specs, desc="power", disable=not progress):
        rows = [r for r in records if r["generator"] == spec]
        if not rows or k <= 0:
            continue
        jitter = parse_spec(spec)[0] == "tone_jitter"
        hits = 0
        flags_seen: dict[str, int] = defaultdict(int)
        for s in range(k):
            rng = np.random.default_rng([int(config.seed), s, 7919])
            sample = resample_records(rows, rng, fraction=fraction, sign_flip=jitter)
            run = aggregate_run(
                sample, {}, spec, config, with_detectability=False, with_attributes=False, n_resamples=inner, seed=s
            )
            hits += int(_hit(spec, run["flags"]))
            for flag in run["flags"]:
                flags_seen[flag] += 1
        interval = binomtest(hits, k, 0.5).proportion_ci(confidence_level=0.95, method="wilson")
        _, expected = expected_flag(spec)
        summary[spec] = {
            "kind": "power" if expected else "false_alarm",
            "expected": expected,
            "hits": hits,
            "trials": k,
            "rate": hits / k,
            "ci": [round(float(interval.low), 4), round(float(interval.high), 4)],
            "flags_seen": dict(sorted(flags_seen.items())),
        }
    return {
        "method": "subsampling of people without replacement; sign-flip for tone_jitter",
        "seeds": k,
        "fraction": fraction,
        "inner_resamples": inner,
        "description": (
            f"{k} subsamples of {fraction:.0%} of the people in this run, drawn without replacement (inner "
            f"bootstrap B = {inner}); flags re-derived each time without detectability. Power = share of "
            "subsamples raising the canary's flag; false-alarm rate = share raising any flag (null) or a tone "
            "flag (tone_jitter, with fresh random signs)."
        ),
        "generators": summary,
    }
