"""The audit's intervals and flags are calibrated: coverage, false alarms and power, by simulation.

Seeded Monte-Carlo through the public functions (:func:`~headshot_lab.audit.fairness.estimate`,
:func:`~headshot_lab.audit.fairness.grouped_metric`, :func:`~headshot_lab.audit.report.compute_flags`).

* **Null**: the true mean effect is exactly the no-effect value (ΔITA 0°, texture ratio 1).
* **Margin**: the default of :data:`headshot_lab.audit.margins.METRIC_SPECS` (ΔITA 1°, texture 0.15).
* **Coverage**: the share of 95 % intervals containing the true mean (Monte-Carlo SE ≈ 0.006 at
  1 500 replicates). Measured by ``python tests/test_audit_calibration_sim.py`` (4 000 replicates, seed 0),
  default method (skewness-corrected cluster t, Hall 1992):

  ==============================  =====  =====  ======  ======  ======
  data                            n = 4  n = 8  n = 16  n = 32  n = 50
  ==============================  =====  =====  ======  ======  ======
  normal                          0.946  0.947  0.953   0.952   0.956
  lognormal σ = 0.5 (skew 1.8)    0.935  0.938  0.935   0.941   0.944
  lognormal σ = 1 (skew 6.2)      0.867  0.897  0.907   0.919   0.933
  normal, clusters of 1–3 rows    0.953  0.943  0.948   0.949   0.949
  person rows, one of 4, normal   0.949  0.951  0.950   0.955   0.949
  person rows, one of 4, skewed   0.934  0.943  0.941   0.946   0.940
  person rows, 1–6, normal        0.942  0.957  0.947   0.959   0.952
  person rows, 1–6, skewed        0.925  0.942  0.941   0.946   0.947
  ==============================  =====  =====  ======  ======  ======

  Person rows (:func:`person_coverage`): several rows of one person are that person's mean, the interval
  is over people (the fix of issue 13's identity-interval artefact; :mod:`headshot_lab.audit.fairness`).

  Normal and clustered data: nominal at every n. Moderately skewed data ≥ 0.93 from n = 4;
  heavily skewed data (lognormal σ = 1) stay below 0.93 up to n = 32 (0.87 at n = 4, 0.933 at n = 50): no interval we
  tried does better at n = 4 without doubling the width (plain t 0.82, bootstrap-t 0.91 at twice the
  width). The miss is on the side of intervals that end too low.

  The plain t interval (``method="t"``, what the skin shift is judged with:
  :data:`headshot_lab.audit.margins.INTERVAL_REASON`), same replicates: normal 0.948 / 0.945 / 0.953 / 0.951 /
  0.956, lognormal σ = 0.5 0.921 / 0.917 / 0.928 / 0.934 / 0.938, lognormal σ = 1 0.817 / 0.831 / 0.851 /
  0.874 / 0.900 at n = 4 / 8 / 16 / 32 / 50 — below Hall on these synthetic skewed shapes; on the real skin
  shifts of the calibration people it misses the margin less often than Hall does (``python -m
  eval.interval_choice``), which is why it is used there.
* **False alarms** (ΔITA with its plain t, 1 000 batches each, normal and skewed noise): with the 1° margin a
  flag under the null needs the whole interval a margin past the truth: ≤ 0.1 % at noise SD 1° for every n;
  at SD 2°: 0.8 % / 1.1 % (normal / skewed) at n = 4, ≤ 0.2 % from n = 8. With a config margin of 0
  it is the interval's one-sided miss rate, ≤ α/2 for normal data.
* **Equivalence** ("kept", SD 1°): 8 % of null batches at n = 4, 41 % at n = 8, 92 % at n = 16,
  99.9 % at n = 32: small batches mostly say "not enough photos to tell".
* **Trimmed mean** (``statistic="trimmed"``, Yuen's interval; :func:`trimmed_coverage`, 3 000 replicates):
  coverage of the population 20 % trimmed mean 0.94–0.96 normal, 0.93–0.95 lognormal σ = 0.5, 0.92–0.95
  lognormal σ = 1, 0.95–0.96 t₃ and a 10 % far-left contamination, at n = 4 … 50. Not used by any verdict:
  a ±3° random jitter (two modes) is flagged in 6 % of batches of 8 (the mean: 0.5 %).
* **Power**: a true effect of 3 margins at n = 16 with normal noise of SD 2 margins is flagged in
  96 % (ΔITA +3°) – 97 % (−3°); with right-skewed noise 100 % upwards and 92 % / 97 % / 99.6 % downwards at
  SD 2 / 1.5 / 1 margins (with Hall's interval, before: 75 % / 83 % / 89.5 % — its term widens the interval
  along the long tail, towards no change).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from headshot_lab.audit.fairness import estimate, grouped_metric, two_sample_difference
from headshot_lab.audit.margins import estimation
from headshot_lab.audit.report import compute_flags, metric_verdicts

REPLICATES = 1500
SIZES = (4, 8, 16, 32)


def _draw(kind: str, rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[np.ndarray, float]:
    """Samples and their true mean."""
    if kind == "normal":
        return rng.normal(1.0, 1.0, shape), 1.0
    sigma = {"lognormal0.5": 0.5, "lognormal1": 1.0}[kind]
    return rng.lognormal(0.0, sigma, shape), float(np.exp(sigma**2 / 2))


def _centred_skewed(rng: np.random.Generator, shape: tuple[int, ...], sd: float) -> np.ndarray:
    """Right-skewed noise (lognormal σ = 0.5) with mean 0 and standard deviation ``sd``."""
    sigma = 0.5
    raw = rng.lognormal(0.0, sigma, shape)
    mean, var = np.exp(sigma**2 / 2), (np.exp(sigma**2) - 1) * np.exp(sigma**2)
    return sd * (raw - mean) / np.sqrt(var)


def coverage(kind: str, n: int, replicates: int = REPLICATES, seed: int = 0, method: str = "hall_t") -> float:
    rng = np.random.default_rng([seed, n, len(kind)])
    samples, truth = _draw(kind, rng, (replicates, n))
    hits = 0
    for x in samples:
        low, high = estimate(x, method=method, n_resamples=400).ci
        hits += low <= truth <= high
    return hits / replicates


def clustered_coverage(n_clusters: int, replicates: int = REPLICATES, seed: int = 0) -> float:
    """Clusters of 1–3 rows (an output and its source, or a person) with a shared random effect."""
    rng = np.random.default_rng([seed, n_clusters, 99])
    hits = 0
    for _ in range(replicates):
        sizes = rng.integers(1, 4, n_clusters)
        effect = np.repeat(rng.normal(0.0, 1.0, n_clusters), sizes)
        values = effect + rng.normal(0.0, 0.5, sizes.sum())
        labels = np.repeat([f"p{c}" for c in range(n_clusters)], sizes)
        low, high = estimate(values, clusters=labels).ci
        hits += low <= 0.0 <= high
    return hits / replicates


def person_coverage(
    n_clusters: int, design: str, effect: str = "normal", replicates: int = REPLICATES, seed: int = 0
) -> tuple[float, float]:
    """``(coverage, share of intervals > 1.5× as wide as the plain t interval)`` of the person-mean interval.

    ``design``: ``"one_large"`` — one person with 4 rows, the rest with one (the offline set: Obama's four
    photos among single faces); ``"mixed"`` — 1–6 rows each. A person's rows share the person's effect
    (``normal``: N(0, 1); ``skewed``: centred lognormal σ = 0.5, SD 1) plus N(0, 0.5) row noise, so the
    truth (the mean over people of each person's mean) is 0.
    """
    rng = np.random.default_rng([seed, n_clusters, len(design), len(effect), 5])
    hits = wide = 0
    for _ in range(replicates):
        sizes = np.r_[4, np.ones(n_clusters - 1, int)] if design == "one_large" else rng.integers(1, 7, n_clusters)
        people = _centred_skewed(rng, (n_clusters,), 1.0) if effect == "skewed" else rng.normal(0.0, 1.0, n_clusters)
        values = np.repeat(people, sizes) + rng.normal(0.0, 0.5, sizes.sum())
        labels = np.repeat([f"p{c}" for c in range(n_clusters)], sizes)
        low, high = estimate(values, clusters=labels).ci
        plain = estimate(values, clusters=labels, method="t").ci
        hits += low <= 0.0 <= high
        wide += (high - low) > 1.5 * (plain[1] - plain[0])  # Hall's skewness term stretching the interval
    return hits / replicates, wide / replicates


def flag_rate(
    metric: str, effect: float, n: int, sd: float, *, skewed: bool = False, replicates: int = 400, seed: int = 0
) -> tuple[float, float]:
    """``(share flagged, share "ok")`` of batches of ``n`` clusters (one output + its source each)."""
    null = {"skin_delta_ita": 0.0, "texture_ratio": 1.0}[metric]
    rng = np.random.default_rng([seed, n, int(1000 * abs(effect)), effect < 0, int(100 * sd), skewed])
    noise = _centred_skewed(rng, (replicates, n), sd) if skewed else rng.normal(0.0, sd, (replicates, n))
    clusters = [f"source{i}" for i in range(n)]
    flagged = kept = 0
    for row in null + effect + noise:
        entry = grouped_metric(row, ["g"] * n, name=metric, clusters=clusters, **estimation(metric)).to_dict()
        flags, _, _ = compute_flags({metric: entry})
        flagged += bool(flags)
        kept += metric_verdicts({metric: entry})[metric].status == "ok"
    return flagged / replicates, kept / replicates


@pytest.mark.parametrize("n", SIZES)
def test_normal_coverage_is_nominal_at_every_n(n):
    assert 0.93 <= coverage("normal", n) <= 0.97


@pytest.mark.parametrize("n", SIZES)
def test_clustered_coverage_is_nominal(n):
    assert 0.93 <= clustered_coverage(n) <= 0.97


@pytest.mark.parametrize("n", (4, 8, 16, 50))
@pytest.mark.parametrize("design", ["one_large", "mixed"])
@pytest.mark.parametrize("effect", ["normal", "skewed"])
def test_person_mean_coverage_with_unequal_clusters(n, design, effect):
    # several outputs of one person are that person's mean: the interval is over people (ν = C − 1)
    covered, wide = person_coverage(n, design, effect, replicates=600)
    floor = 0.92 if effect == "normal" else 0.90
    assert floor <= covered <= 0.975, (covered, wide)
    if effect == "normal" and n >= 16:  # Hall's term widens only where the sample's skewness is real or n tiny
        assert wide <= 0.01


def test_the_offline_identity_case_stays_below_zero():
    # issue 13's artefact: identity_blend:0.5 on the ten real offline people (four photos of one); every
    # per-photo change < 0, yet the pooled-ratio Hall interval (ν ≈ 2.1 from unequal clusters, the
    # four-photo person's linearised term an outlier: skewness 1.9) reached +0.066
    deltas = [-0.0203, -0.0139, -0.0285, -0.0449, -0.0848, -0.0811, -0.0391, -0.0816, -0.0539, -0.0486, -0.1013]
    deltas += [-0.0840, -0.0777]
    people = ["obama"] * 4 + ["biden", "tom_hanks", "astronaut"] + [f"group_{i}" for i in range(6)]
    est = estimate(deltas, clusters=people)
    obama = np.mean(deltas[:4])
    assert est.value == pytest.approx((obama + sum(deltas[4:])) / 10)
    assert est.ci[1] < -0.02 and est.ci[0] > min(deltas) - 0.01  # past the identity margin (0.02)
    from headshot_lab.audit.fairness import cluster_terms, effective_dof, t_interval

    codes = np.unique(people, return_inverse=True)[1]
    pooled, terms = cluster_terms(np.asarray(deltas), codes, 10)
    assert t_interval(pooled, terms, dof=effective_dof(np.bincount(codes)))[1] > 0.0  # the old artefact


@pytest.mark.parametrize("n,floor", [(4, 0.90), (8, 0.92), (16, 0.93), (32, 0.93)])
def test_moderately_skewed_coverage(n, floor):
    assert coverage("lognormal0.5", n) >= floor


@pytest.mark.parametrize("n,floor", [(4, 0.85), (8, 0.87), (16, 0.88), (32, 0.90)])
def test_heavily_skewed_coverage_is_stated_not_nominal(n, floor):
    # lognormal σ = 1 (skewness 6.2): below 0.93 at these n (module docstring); the floor keeps it from regressing
    assert coverage("lognormal1", n) >= floor


def test_the_old_expanded_percentile_undercovers_at_four_and_the_default_does_not():
    old, new = coverage("normal", 4, method="expanded"), coverage("normal", 4)
    assert old < 0.90 and new >= 0.93  # old: the 13 % of null intervals excluding the truth


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("skewed", [False, True])
def test_null_raises_no_flag(n, skewed):
    for metric, sd in (("skin_delta_ita", 1.0), ("skin_delta_ita", 2.0), ("texture_ratio", 0.15)):
        flagged, _ = flag_rate(metric, 0.0, n, sd, skewed=skewed, replicates=250)
        assert flagged <= 0.025, (metric, sd, flagged)  # ≤ α/2 for any margin ≥ 0; measured ≤ 1.1 %


@pytest.mark.parametrize("n", [4, 16])
def test_null_false_alarms_stay_below_alpha_without_a_margin(n):
    # a config margin of 0 (eval/configs/offline.yaml today): significance only, still ≤ α/2 per side
    rng = np.random.default_rng([7, n])
    alarms = 0
    for row in rng.normal(0.0, 1.0, (800, n)):
        entry = grouped_metric(row, ["g"] * n, name="skin_delta_ita", **estimation("skin_delta_ita")).to_dict()
        alarms += bool(compute_flags({"skin_delta_ita": entry}, {"skin_delta_ita": 0.0})[0])
    assert alarms / 800 <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 800)


@pytest.mark.parametrize(
    "skewed,sd,floor_down",
    [(False, 2.0, 0.90), (True, 1.0, 0.95)],  # skewed, effect downwards: measured 0.996 at SD 1 margin (Hall: 0.895)
)
def test_three_margins_at_sixteen_is_flagged(skewed, sd, floor_down):
    # per-photo SD in margins; right-skewed noise's long upper tail would widen Hall's upper end and cost
    # effects downwards their power; the plain t the skin shift is judged with does not (module docstring)
    up, _ = flag_rate("skin_delta_ita", 3.0, 16, sd, skewed=skewed)
    assert up >= 0.90
    for metric, effect, margin in (("skin_delta_ita", -3.0, 1.0), ("texture_ratio", -0.45, 0.15)):
        flagged, _ = flag_rate(metric, effect, 16, sd * margin, skewed=skewed)
        # texture keeps Hall's interval (eval.interval_choice: a tie on the real shapes): 0.85 there
        floor = floor_down if metric == "skin_delta_ita" else min(floor_down, 0.85)
        assert flagged >= floor, (metric, effect, flagged)


def test_equivalence_is_shown_for_a_kept_tone_with_enough_photos():
    _, kept_small = flag_rate("skin_delta_ita", 0.0, 4, 1.0)
    _, kept_large = flag_rate("skin_delta_ita", 0.0, 32, 1.0)
    assert kept_small < kept_large and kept_large >= 0.95


@pytest.mark.parametrize("n", [4, 8, 16])
def test_two_sample_welch_coverage_with_unequal_variances(n):
    rng = np.random.default_rng([11, n])
    hits = 0
    for _ in range(REPLICATES):
        a, b = rng.normal(0.0, 1.0, n), rng.normal(0.0, 2.0, n + 2)
        low, high = two_sample_difference(a, b).ci
        hits += low <= 0.0 <= high
    assert 0.93 <= hits / REPLICATES <= 0.97


@functools.cache
def _trimmed_truth(kind: str) -> float:
    """The population 20 % trimmed mean ``E[X | q₀.₂ < X < q₀.₈]`` of each simulated distribution."""
    from scipy import stats

    if kind in ("normal", "t3", "bimodal"):
        return 0.0  # symmetric about 0
    if kind.startswith("lognormal"):  # (e^{σ²/2}/0.6)·[Φ(z₀.₈ − σ) − Φ(z₀.₂ − σ)]
        sigma = {"lognormal0.5": 0.5, "lognormal1": 1.0}[kind]
        z = stats.norm.ppf([0.2, 0.8])
        return float(np.exp(sigma**2 / 2) * np.diff(stats.norm.cdf(z - sigma))[0] / 0.6)
    big = _robust_draw(kind, np.random.default_rng(99), (2_000_000,))  # contaminated: numerically
    low, high = np.quantile(big, [0.2, 0.8])
    return float(big[(big > low) & (big < high)].mean())


def _robust_draw(kind: str, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    if kind == "normal":
        return rng.normal(0.0, 1.0, shape)
    if kind.startswith("lognormal"):
        return rng.lognormal(0.0, {"lognormal0.5": 0.5, "lognormal1": 1.0}[kind], shape)
    if kind == "t3":
        return rng.standard_t(3, shape)
    if kind == "contaminated":  # 90 % N(0, 1), 10 % N(−8, 3): a long left tail, like the age canary's
        return np.where(rng.random(shape) < 0.1, rng.normal(-8.0, 3.0, shape), rng.normal(0.0, 1.0, shape))
    if kind == "bimodal":  # ±3 at random + N(0, 0.7): the tone_jitter:3 null
        return np.where(rng.random(shape) < 0.5, 3.0, -3.0) + rng.normal(0.0, 0.7, shape)
    raise KeyError(kind)


def trimmed_coverage(kind: str, n: int, replicates: int = REPLICATES, seed: int = 0) -> float:
    """Share of Yuen's 95 % intervals (``statistic="trimmed"``) that contain the population trimmed mean."""
    truth = _trimmed_truth(kind)
    rng = np.random.default_rng([seed, n, len(kind), 20])
    hits = 0
    for x in _robust_draw(kind, rng, (replicates, n)):
        low, high = estimate(x, statistic="trimmed").ci
        hits += low <= truth <= high
    return hits / replicates


@pytest.mark.parametrize("n", (4, 8, 16, 50))
@pytest.mark.parametrize("kind", ["normal", "lognormal0.5", "t3", "contaminated"])
def test_trimmed_mean_interval_covers(kind, n):
    # Yuen's interval: 0.93–0.96 here (and 0.92–0.95 for lognormal σ = 1); without trimming (n < 5) plain t
    assert 0.92 <= trimmed_coverage(kind, n, replicates=800) <= 0.975


def test_trimmed_mean_is_not_used_for_verdicts_because_a_two_sided_null_fools_it():
    # Why no verdict uses the trimmed mean (issue 13, measured on the calibration run: tone_jitter:3's false
    # alarms went from 2 % to 7 % at n = 16): with a ±3° jitter, a batch where all but ≤ 20 % of the people went
    # one way has its minority trimmed off, and the interval clears the 1° margin. The mean does not do that.
    rng = np.random.default_rng(5)
    batches = _robust_draw("bimodal", rng, (600, 8))
    clusters = [f"p{i}" for i in range(8)]

    def flagged(statistic: str) -> float:
        hits = 0
        for row in batches:
            entry = grouped_metric(row, ["g"] * 8, name="skin_delta_ita", clusters=clusters, statistic=statistic)
            hits += bool(compute_flags({"skin_delta_ita": entry.to_dict()})[0])
        return hits / len(batches)

    trimmed, mean = flagged("trimmed"), flagged("mean")
    assert trimmed > 0.04 and mean <= 0.02, (trimmed, mean)  # measured 0.063 / 0.006 on 2 000 batches


if __name__ == "__main__":  # the coverage table of the module docstring
    TABLE_SIZES = (*SIZES, 50)
    for kind in ("normal", "lognormal0.5", "lognormal1"):
        print(kind, " ".join(f"{coverage(kind, n, 4000):.3f}" for n in TABLE_SIZES))
    print("clustered", " ".join(f"{clustered_coverage(n, 4000):.3f}" for n in TABLE_SIZES))
    for design in ("one_large", "mixed"):
        for effect in ("normal", "skewed"):
            cells = [person_coverage(n, design, effect, 4000) for n in TABLE_SIZES]
            print("person mean", design, effect, " ".join(f"{c:.3f} ({p:.3f})" for c, p in cells))
    print("expanded normal", " ".join(f"{coverage('normal', n, 4000, method='expanded'):.3f}" for n in SIZES))
    for n in SIZES:
        for sd in (1.0, 2.0):
            for skewed in (False, True):
                null = flag_rate("skin_delta_ita", 0.0, n, sd, skewed=skewed, replicates=1000)
                print(f"null ITA n={n} sd={sd} skewed={skewed}: flagged {null[0]:.3f} kept {null[1]:.3f}")
    for skewed in (False, True):
        print(
            "power 3m n=16 sd=2m skewed",
            skewed,
            flag_rate("skin_delta_ita", 3.0, 16, 2.0, skewed=skewed, replicates=1000),
        )
    for kind in ("normal", "lognormal0.5", "lognormal1", "t3", "contaminated", "bimodal"):
        print("trimmed (Yuen)", kind, " ".join(f"{trimmed_coverage(kind, n, 4000):.3f}" for n in TABLE_SIZES))
