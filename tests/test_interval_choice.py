"""The interval each metric is judged by, and the script that measures the choice (eval.interval_choice)."""

from __future__ import annotations

import numpy as np
import pytest

from eval.interval_choice import rates, summary
from headshot_lab.audit.fairness import grouped_metric, t_interval
from headshot_lab.audit.margins import METRIC_SPECS, estimation, metric_interval


def test_the_skin_shift_is_judged_with_the_plain_t_and_the_rest_with_hall():
    assert metric_interval("skin_delta_ita") == "t"
    assert {metric_interval(m) for m in METRIC_SPECS if m != "skin_delta_ita"} == {"hall_t"}
    assert metric_interval("not_a_metric") == "hall_t"
    assert estimation("texture_ratio") == {"log_scale": True, "statistic": "mean", "method": "hall_t"}


def test_the_estimation_reaches_the_interval():
    # right-skewed shifts (one face the re-save moved the other way): Hall would widen towards 0, t does not
    values = np.array([-2.9, -2.4, -3.1, -2.7, -2.2, -3.3, -2.6, -2.8, -3.0, -2.5, -2.9, -2.4, -3.2, -2.7, -2.6, 1.2])
    groups = ["g"] * len(values)
    judged = grouped_metric(values, groups, name="skin_delta_ita", **estimation("skin_delta_ita")).overall
    assert judged.ci == pytest.approx(t_interval(float(values.mean()), values, skew_correct=False))
    hall = grouped_metric(values, groups, name="skin_delta_ita").overall
    assert hall.ci[1] > judged.ci[1] + 0.2  # the upper end Hall adds: what cost the darkening canary its power
    assert judged.ci[1] <= -1.0 < hall.ci[1]


def test_the_miss_at_the_margin_is_nominal_on_a_normal_shape_and_the_power_follows_the_effect():
    rng = np.random.default_rng(0)
    shape = rng.normal(-3.0, 1.0, 4000)
    found = rates(shape, below=-1.0, above=1.0, size=16, draws=3000, rng=np.random.default_rng(1))
    for method in ("hall_t", "t"):
        assert 0.012 <= found[method]["miss_below"] <= 0.04  # nominal 2.5 % (Monte-Carlo SE ≈ 0.003)
        assert 0.012 <= found[method]["miss_above"] <= 0.04
        assert found[method]["flag_below"] > 0.99 and found[method]["flag_above"] == 0.0


def test_a_tail_towards_no_change_costs_hall_power_not_misses():
    rng = np.random.default_rng(2)
    # the darkening canary's shape: most faces read −3 ± 0.7°, one in 15 near +1° (the reading failed)
    shape = np.where(rng.random(3000) < 1 / 15, rng.normal(1.0, 0.5, 3000), rng.normal(-3.0, 0.7, 3000))
    found = rates(shape, below=-1.0, above=1.0, size=16, draws=1500, rng=np.random.default_rng(3))
    assert found["t"]["flag_below"] > 0.97
    assert found["hall_t"]["flag_below"] < found["t"]["flag_below"] - 0.1
    assert found["t"]["miss_below"] <= found["hall_t"]["miss_below"] + 0.02


def test_the_summary_names_the_worst_miss_and_the_canaries_power():
    rows = [
        {
            "metric": "skin_delta_ita",
            "generator": g,
            "n": 16,
            "method": m,
            "miss_below": mb,
            "miss_above": 0.01,
            "flag_below": fb,
            "flag_above": 0.0,
        }
        for g, m, mb, fb in [
            ("darken:3 | reencode", "hall_t", 0.11, 0.73),
            ("darken:3 | reencode", "t", 0.10, 0.99),
            ("reencode", "hall_t", 0.05, 0.0),
            ("reencode", "t", 0.04, 0.0),
        ]
    ]
    table = summary(rows)["skin_delta_ita"]
    assert table["hall_t"]["worst_miss"] == 0.11 and table["t"]["worst_miss_at"] == "darken:3 | reencode, n = 16"
    assert table["t"]["power_16"] == {"darken:3 | reencode": 0.99}  # the null has no expected flag
    # identity flags only below: a miss above (no flag can come of it) does not count
    above = [dict(r, metric="identity_delta", miss_above=0.3, generator="reencode") for r in rows]
    assert summary(above)["identity_delta"]["hall_t"]["worst_miss"] == 0.11
