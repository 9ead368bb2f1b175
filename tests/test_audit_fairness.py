"""MetricFrame-shaped results with bootstrap CIs (headshot_lab.audit.fairness)."""

from __future__ import annotations

import numpy as np
import pytest

from headshot_lab.audit.fairness import (
    Estimate,
    between_groups,
    bootstrap_ci,
    estimate,
    grouped_metric,
    interval_levels,
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


def test_seeded_and_reproducible():
    rng = np.random.default_rng(1)
    values = rng.normal(size=40)
    assert bootstrap_ci(values, seed=3) == bootstrap_ci(values, seed=3)
    assert bootstrap_ci(values, seed=3) != bootstrap_ci(values, seed=4)


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
