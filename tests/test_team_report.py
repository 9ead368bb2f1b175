"""The team consistency outlier rule: median/MAD robust z with a practical margin.

Null: every person's measure drawn from one distribution whose spread is below the practical margin (a team
made through one guide); the rule must name nobody in at least 99 % of simulated teams. Known value: one planted
person shifted by twice the margin must be named (and nobody else), in at least 95 % of simulated teams.
"""

from __future__ import annotations

import numpy as np
import pytest

from headshot_lab.team.layout import PersonStatus
from headshot_lab.team.report import (
    MARGINS,
    MIN_PEOPLE,
    grade_stats,
    report_markdown,
    robust_outliers,
    team_consistency_check,
)


def test_robust_outliers_known_values():
    values = {f"p{i}": v for i, v in enumerate([0.40, 0.41, 0.39, 0.40, 0.42, 0.38, 0.40, 0.49])}
    result = robust_outliers(values, margin=0.03)
    assert result["median"] == pytest.approx(0.40)
    # MAD = median(|x − 0.40|) = median(0, .01, .01, 0, .02, .02, 0, .09) = 0.01 → spread 0.014826
    assert result["spread"] == pytest.approx(0.0148, abs=1e-4)
    assert result["threshold"] == pytest.approx(max(3.5 * 0.014826, 0.03), abs=1e-4)
    assert result["outliers"] == {"p7": pytest.approx(0.09)}


def test_margin_keeps_an_identical_team_quiet_and_small_teams_say_not_enough():
    identical = {f"p{i}": 0.400 for i in range(10)} | {"p10": 0.41}  # MAD 0: only the margin protects
    assert robust_outliers(identical, margin=0.03)["outliers"] == {}
    assert robust_outliers(identical | {"p11": 0.45}, margin=0.03)["outliers"] == {"p11": pytest.approx(0.05)}
    few = robust_outliers({"a": 0.4, "b": 0.4, "c": 0.9}, margin=0.03)
    assert few["enough"] is False and few["outliers"] == {} and MIN_PEOPLE == 4


def test_one_sided_names_only_large_distances():
    distances = {f"p{i}": d for i, d in enumerate([0.5, 0.8, 0.3, 0.6, 0.4, 0.7, 9.0])}
    assert list(robust_outliers(distances, 5.0, one_sided=True)["outliers"]) == ["p6"]
    near = {f"p{i}": d for i, d in enumerate([3.0, 3.2, 3.1, 0.0])}
    assert robust_outliers(near, 0.5, one_sided=True)["outliers"] == {}  # the small one is not "far"


@pytest.mark.parametrize("key", ["eye_line", "backdrop", "brightness"])
def test_false_alarms_and_power_by_seeded_simulation(key):
    rng = np.random.default_rng(20261202)
    margin = MARGINS[key]
    sigma = margin / 4  # a team made through one guide: natural spread well below what a viewer notices
    trials, n = 400, 12
    false_alarms = caught = 0
    for _ in range(trials):
        x = rng.normal(0.0, sigma, n)
        if key == "backdrop":
            x = np.abs(x)
        false_alarms += bool(
            robust_outliers({f"p{i}": v for i, v in enumerate(x)}, margin, one_sided=key == "backdrop")["outliers"]
        )
        x[0] += 2 * margin  # the planted outlier
        named = robust_outliers({f"p{i}": v for i, v in enumerate(x)}, margin, one_sided=key == "backdrop")["outliers"]
        caught += list(named) == ["p0"]
    assert false_alarms / trials <= 0.01, false_alarms
    assert caught / trials >= 0.95, caught


def test_grade_stats_known_values():
    grey = np.full((8, 8, 3), 119, np.uint8)  # sRGB 119 ≈ L* 50, neutral
    stats = grade_stats(grey)
    assert stats["brightness"] == pytest.approx(50.0, abs=0.3)
    assert stats["saturation"] == pytest.approx(0.0, abs=0.5) and stats["warmth"] == pytest.approx(0.0, abs=0.5)
    warm = grey.copy()
    warm[..., 2] = 90
    assert grade_stats(warm)["warmth"] > 8


def _person(pid, eye=0.40, size=0.40, lab=(82.0, 0.0, -2.0), bright=60.0, version="1", backdrop="grey"):
    return PersonStatus(
        person_id=pid,
        state="done",
        guide_version=version,
        consistency={
            "backdrop": backdrop,
            "framing": {
                "face_found": True,
                "eye_line": eye,
                "face_height": size,
                "center_x": 0.5,
                "backdrop_lab": list(lab),
            },
            "grade": {"brightness": bright, "saturation": 2.0, "warmth": -2.0},
        },
    )


def test_team_check_names_each_planted_outlier_with_its_measure():
    people = [_person(f"p{i}", eye=0.40 + 0.002 * (i % 3), bright=60 + (i % 4)) for i in range(8)]
    people += [
        _person("eyes", eye=0.47),
        _person("dark", bright=40.0),
        _person("wall", lab=(60.0, 10.0, 20.0)),
        _person("old", version="0"),
        _person("white1", lab=(95.0, 0.0, 2.0), backdrop="white"),  # another approved backdrop: own group
        _person("white2", lab=(95.0, 0.0, 2.0), backdrop="white"),
    ]
    check = team_consistency_check(people, current_version="1")
    assert check["outliers"] == {
        "dark": ["brightness"],
        "eyes": ["eye_line"],
        "old": ["guide_version"],
        "wall": ["backdrop"],
    }
    quiet = team_consistency_check(people[:8], current_version="1")
    assert quiet["enough"] and quiet["outliers"] == {}
    report = {
        "guide": {"name": "g", "version": "1", "sha256": "x"},
        "mode": "retouch",
        "engine": {"kind": "local", "workers": 1, "address": None},
        "counts": {"people": 1, "done": 1, "skipped": 0, "failed": 0},
        "processed": [],
        "kept": [],
        "people": [],
        "roster_problems": [],
        "roster_notes": [],
        "checklist": {"photos": 0, "usable": 0, "left_out": 0, "advisories_by_people": {}},
        "audit": [],
        "consistency": check,
    }
    text = report_markdown(report)
    assert "**eyes**: eye line" in text and "made with guide version 0" in text and "For the operator" in text
