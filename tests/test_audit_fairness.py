"""MetricFrame-shaped results with bootstrap CIs (headshot_lab.audit.fairness)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from headshot_lab.audit.fairness import (
    Estimate,
    between_groups,
    bootstrap_ci,
    effective_dof,
    estimate,
    grouped_metric,
    interval_levels,
    t_interval,
    trimmed_mean,
    two_sample_difference,
    yuen_interval,
)


def test_constant_values_have_a_zero_width_interval():
    est = estimate([2.5] * 10)
    assert est.value == 2.5
    assert est.ci == (2.5, 2.5)
    assert est.n == 10 and est.clusters == 10


def test_difference_and_ratio_follow_fairlearn():
    values = [1.0, 1.0, 2.0, 2.0, 4.0, 4.0]
    groups = ["a", "a", "b", "b", "c", "c"]
    metric = grouped_metric(values, groups, name="m", n_resamples=200)
    assert metric.overall.value == pytest.approx(14 / 6)
    assert {g: e.value for g, e in metric.by_group.items()} == {"a": 1.0, "b": 2.0, "c": 4.0}
    assert metric.difference == pytest.approx(3.0)  # max − min
    assert metric.ratio == pytest.approx(0.25)  # min / max
    payload = metric.to_dict()
    assert set(payload) >= {"overall", "by_group", "difference", "ratio"}
    assert payload["by_group"]["c"] == {"value": 4.0, "ci": [4.0, 4.0], "n": 2, "clusters": 2}


def test_ratio_is_none_for_mixed_signs_and_small_groups_are_left_out():
    assert between_groups({"a": -1.0, "b": 2.0}) == (3.0, None)
    assert between_groups({"a": -1.0, "b": -4.0}) == (3.0, 0.25)
    metric = grouped_metric([1.0, 1.0, 9.0], ["a", "a", "b"], min_group_size=2)
    assert metric.difference is None  # "b" has one sample: reported, not compared
    assert metric.by_group["b"].value == 9.0 and metric.by_group["b"].ci == (None, None)


def test_unknown_group_is_reported_but_not_compared():
    metric = grouped_metric([1.0, 1.0, 5.0, 5.0, 100.0, 100.0], ["a", "a", "b", "b", None, None])
    assert "unknown" in metric.by_group
    assert metric.difference == pytest.approx(4.0)


def test_resampling_methods_are_seeded_and_the_default_draws_nothing():
    rng = np.random.default_rng(1)
    values = rng.normal(size=40)
    for method in ("bca", "expanded", "percentile"):
        assert bootstrap_ci(values, seed=3, method=method) == bootstrap_ci(values, seed=3, method=method)
        assert bootstrap_ci(values, seed=3, method=method) != bootstrap_ci(values, seed=4, method=method)
    # the default (skewness-corrected t) is closed-form: the seed cannot change it (it used to)
    assert bootstrap_ci(values, seed=3) == bootstrap_ci(values, seed=4)


def test_plain_t_matches_scipy_and_hall_is_t_for_symmetric_data():
    rng = np.random.default_rng(5)
    values = rng.normal(2.0, 1.0, size=9)
    expected = stats.t.interval(0.95, 8, loc=values.mean(), scale=stats.sem(values))
    assert bootstrap_ci(values, method="t") == pytest.approx(expected, rel=1e-12)
    symmetric = np.array([-3.0, -1.0, 0.0, 1.0, 3.0])
    assert bootstrap_ci(symmetric) == pytest.approx(bootstrap_ci(symmetric, method="t"), rel=1e-12)
    skewed = np.array([0.1, 0.2, 0.3, 0.4, 5.0])  # right skew: Hall moves the interval up
    hall, plain = bootstrap_ci(skewed), bootstrap_ci(skewed, method="t")
    assert hall[0] > plain[0] and hall[1] > plain[1] and hall[0] <= skewed.mean() <= hall[1]


def test_cluster_t_on_equal_clusters_is_the_t_interval_of_the_cluster_means():
    rng = np.random.default_rng(6)
    means = rng.normal(size=6)
    values = np.repeat(means, 3) + rng.normal(scale=0.1, size=18)
    clusters = np.repeat(np.arange(6), 3)
    cluster_means = values.reshape(6, 3).mean(axis=1)
    expected = stats.t.interval(0.95, 5, loc=cluster_means.mean(), scale=stats.sem(cluster_means))
    assert bootstrap_ci(values, clusters=clusters, method="t") == pytest.approx(expected, rel=1e-9)
    assert t_interval(1.0, np.zeros(5)) == (1.0, 1.0)  # no spread: zero width


def test_median_interval_is_exact_and_needs_six():
    assert bootstrap_ci([1.0, 2.0, 3.0, 4.0, 5.0], statistic="median") == (None, None)
    values = np.arange(1.0, 11.0)
    low, high = bootstrap_ci(values, statistic="median")
    assert (low, high) == (2.0, 9.0)  # order statistics 2 and 9 of 10: P = 1 − 2·F_binom(1; 10, ½) ≈ 0.979


def test_two_sample_difference_is_welch_and_resamples_both_sides():
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([0.0, 1.0, 2.0, 5.0, 6.0])
    est = two_sample_difference(a, b)
    welch = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert est.value == pytest.approx(a.mean() - b.mean())
    assert est.ci == pytest.approx((welch.low, welch.high), rel=1e-12)
    assert est.n == 9 and est.clusters == 4
    # a constant side still has the other side's variance: the interval is not zero width
    wide = two_sample_difference(np.full(5, 2.0), b)
    assert wide.ci[0] < wide.value < wide.ci[1]
    boot = two_sample_difference(a, b, method="bca", n_resamples=999)
    assert boot.ci[0] < boot.value < boot.ci[1]
    assert two_sample_difference(a, [1.0]).ci == (None, None)
    shuffled = two_sample_difference(a[::-1], b[[3, 1, 4, 0, 2]], method="bca", n_resamples=999)
    assert shuffled.ci == pytest.approx(boot.ci)  # resampling does not depend on the row order


def test_interval_covers_the_mean_of_normal_data():
    rng = np.random.default_rng(0)
    values = rng.normal(loc=1.0, scale=1.0, size=400)
    low, high = bootstrap_ci(values, n_resamples=2000)
    half_width = 1.96 / np.sqrt(400)
    assert low < values.mean() < high
    assert (high - low) / 2 == pytest.approx(half_width, rel=0.15)


def test_cluster_bootstrap_is_wider_for_correlated_samples():
    # 10 clusters of 10 identical values: only 10 independent observations, not 100.
    rng = np.random.default_rng(2)
    cluster_means = rng.normal(size=10)
    values = np.repeat(cluster_means, 10)
    clusters = np.repeat(np.arange(10), 10)
    naive = bootstrap_ci(values, method="percentile")
    clustered = bootstrap_ci(values, clusters=clusters, method="percentile")
    assert (clustered[1] - clustered[0]) > 2.5 * (naive[1] - naive[0])


def test_expanded_interval_is_wider_for_few_clusters_and_equal_for_many():
    low_p, high_p = interval_levels(0.95, 5, "percentile")
    low_e, high_e = interval_levels(0.95, 5, "expanded")
    assert (low_p, high_p) == pytest.approx((2.5, 97.5))
    assert low_e < low_p and high_e > high_p
    assert interval_levels(0.95, 100_000, "expanded") == pytest.approx((2.5, 97.5), abs=0.01)


def test_default_cluster_interval_is_wider_for_correlated_samples():
    rng = np.random.default_rng(2)
    values = np.repeat(rng.normal(size=10), 10)
    clusters = np.repeat(np.arange(10), 10)
    naive, clustered = bootstrap_ci(values), bootstrap_ci(values, clusters=clusters)
    assert (clustered[1] - clustered[0]) > 2.5 * (naive[1] - naive[0])


def test_one_cluster_has_no_interval_and_nan_is_dropped():
    assert bootstrap_ci([1.0, 2.0, 3.0], clusters=["p", "p", "p"]) == (None, None)
    est = estimate([1.0, np.nan, 3.0])
    assert est.n == 2 and est.value == 2.0


def test_median_statistic_and_bad_arguments():
    est = estimate([1.0, 2.0, 100.0], statistic="median", n_resamples=100)
    assert est.value == 2.0
    with pytest.raises(ValueError):
        bootstrap_ci([1.0, 2.0], statistic="mode")
    with pytest.raises(ValueError):
        bootstrap_ci([1.0, 2.0], confidence=1.5)
    with pytest.raises(ValueError):
        grouped_metric([1.0, 2.0], ["a"])


def test_estimate_round_trip_and_excludes():
    est = Estimate(value=1.0, ci=(0.5, 1.5), n=4, clusters=3)
    assert Estimate.from_dict(est.to_dict()) == est
    assert est.excludes(0.0) and not est.excludes(1.0)
    assert not Estimate(value=1.0, ci=(None, None), n=1).excludes(0.0)


@pytest.mark.parametrize("method", ["hall_t", "t", "bca"])
def test_clustered_intervals_ignore_the_row_order(method):
    rng = np.random.default_rng(8)
    values = rng.lognormal(size=15)
    clusters = [f"source{c}" for c in rng.integers(0, 6, 15)]
    order = rng.permutation(15)
    first = bootstrap_ci(values, clusters=clusters, method=method, n_resamples=500)
    again = bootstrap_ci(values[order], clusters=[clusters[i] for i in order], method=method, n_resamples=500)
    assert again == pytest.approx(first, rel=1e-9)


def test_effective_dof_is_c_minus_one_for_equal_clusters_and_less_otherwise():
    assert effective_dof(np.full(7, 2)) == pytest.approx(6.0)
    assert effective_dof(np.ones(4)) == pytest.approx(3.0)
    assert effective_dof(np.array([1, 1, 1, 3])) < 3.0


def test_yuen_interval_of_one_to_ten_by_hand():
    # x = 1 … 10, 20 % trimming: g = 2, h = 6, trimmed mean = mean(3 … 8) = 5.5; winsorized
    # (3, 3, 3, 4, 5, 6, 7, 8, 8, 8) has s_w² = 42.5 / 9, SE = √(9·s_w² / (6·5)), ν = 5
    x = np.arange(1.0, 11.0)
    se = np.sqrt(9 * (42.5 / 9) / 30)
    q = stats.t.ppf(0.975, 5)
    assert trimmed_mean(x) == pytest.approx(5.5)
    assert yuen_interval(x) == pytest.approx((5.5 - q * se, 5.5 + q * se))
    assert yuen_interval(x)[0] == pytest.approx(2.44040, abs=1e-5)


def test_yuen_interval_matches_scipys_yuen_welch_test_against_a_constant():
    # scipy's two-sample Yuen–Welch test (ttest_ind, trim=0.2, equal_var=False) against a constant sample has
    # d_y = 0 and ν = h_x − 1, so its interval is the one-sample Yuen interval of x
    rng = np.random.default_rng(1)
    x = rng.lognormal(0.0, 1.0, 17)
    reference = stats.ttest_ind(x, np.zeros(12), trim=0.2, equal_var=False).confidence_interval(0.95)
    assert yuen_interval(x) == pytest.approx((reference.low, reference.high), rel=1e-10)
    assert trimmed_mean(x) == pytest.approx(stats.trim_mean(x, 0.2))


def test_trimmed_statistic_is_over_person_means_and_plain_t_without_trimming():
    values = [1.0, 3.0, 2.0, 10.0, 4.0, 5.0, 6.0]
    people = ["a", "a", "b", "c", "d", "e", "f"]  # a's two rows are one person: mean 2
    est = estimate(values, clusters=people, statistic="trimmed")
    means = [2.0, 2.0, 10.0, 4.0, 5.0, 6.0]
    assert est.value == pytest.approx(trimmed_mean(means)) and est.clusters == 6
    assert est.ci == pytest.approx(yuen_interval(means))
    four = [0.5, 1.0, 2.5, 4.0]  # n < 5: nothing is cut, the one-sample t interval
    assert estimate(four, statistic="trimmed").ci == pytest.approx(
        tuple(stats.ttest_1samp(four, 0.0).confidence_interval(0.95))
    )
