"""Calibration (eval.calibrate) and power (eval.power): trials are disjoint, rates mean what they say.

The fast tests work on synthetic per-sample records (no images): a planted effect must be caught
in almost every trial, no effect must stay quiet. They assert on the flag names that
:func:`headshot_lab.audit.report.compute_flags` returns, not on its thresholds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eval.calibrate import (
    NOT_ENOUGH,
    calibrate_records,
    disjoint_trials,
    effective_trials,
    is_hit,
    rate_interval,
    render_calibration,
)
from eval.runner import EvalConfig

REPO = Path(__file__).resolve().parents[1]
EVAL = [sys.executable, "-m", "eval", "calibrate"]
FAST = ["--seeds", "2", "--n-resamples", "200", "--quiet"]


def _records(spec: str, people: int, *, ita_mean: float, seed: int, photos: int = 1) -> list[dict]:
    """Synthetic records: ``people`` people, ΔITA ~ N(ita_mean, 1) per photo, no other metric."""
    rng = np.random.default_rng(seed)
    out = []
    for p in range(people):
        for i in range(photos):
            out.append(
                {
                    "id": f"p{p}_{i}.png",
                    "generator": spec,
                    "person": f"p{p}",
                    "cluster": f"p{p}",
                    "group": "unknown",
                    "meta": {"synthetic": False},
                    "axes": {},
                    "seconds": 0.0,
                    "source": {},
                    "output": {"face_found": True},
                    "skin_delta_ita": float(rng.normal(ita_mean, 1.0)),
                }
            )
    return out


def _config(*specs: str) -> EvalConfig:
    return EvalConfig(name="unit", generators=list(specs), seed=0, n_resamples=300, detectability={"enabled": False})


def test_trials_are_disjoint_and_cover_floor_c_over_n_sets():
    clusters = [f"p{i}" for i in range(23)] * 2  # duplicates count once
    for size in (2, 4, 5, 8, 23, 24):
        trials = disjoint_trials(clusters, size, np.random.default_rng(size))
        assert len(trials) == effective_trials(23, size) == 23 // size
        flat = [c for t in trials for c in t]
        assert len(flat) == len(set(flat)) == size * len(trials)  # no person in two trials
        assert all(len(t) == size for t in trials)
    a = disjoint_trials(clusters, 4, np.random.default_rng(0))
    assert (
        a
        == disjoint_trials(clusters, 4, np.random.default_rng(0))
        != disjoint_trials(clusters, 4, np.random.default_rng(1))
    )
    with pytest.raises(ValueError):
        disjoint_trials(clusters, 0, np.random.default_rng(0))


def test_calibration_scores_each_partition_on_disjoint_people(monkeypatch):
    import eval.calibrate as calibrate

    seen: list[tuple[int, frozenset[str]]] = []

    def spy(rows, features, spec, config, **_):
        people = frozenset(r["cluster"] for r in rows)
        seen.append((len(rows), people))
        return []

    monkeypatch.setattr(calibrate, "trial_flags", spy)
    records = _records("null", 17, ita_mean=0.0, seed=0, photos=2)
    result = calibrate_records(records, _config("null"), sizes=(4, 8), partitions=3)
    assert [r[0] for r in seen] == [8] * 12 + [16] * 6  # every photo of each drawn person comes along
    for size, count, start in ((4, 4, 0), (8, 2, 12)):
        chunks = [seen[start + k * count : start + (k + 1) * count] for k in range(3)]
        for chunk in chunks:  # one partition: disjoint sets of `size` people
            people = [p for _, members in chunk for p in members]
            assert all(len(members) == size for _, members in chunk) and len(people) == len(set(people))
        assert len({frozenset(m for _, m in chunk) for chunk in chunks}) > 1  # partitions differ
    assert result["generators"]["null"]["by_size"]["4"]["independent_trials"] == 4


def test_hits_and_intervals():
    assert is_hit("lighten:3 | reencode", ["skin_lightening"]) and not is_hit("lighten:3", ["skin_darkening"])
    assert is_hit("reencode", ["detectable"]) and not is_hit("relight", [])
    assert is_hit("tone_jitter:3", ["skin_darkening"]) and not is_hit("tone_jitter:3", ["over_smoothing"])
    assert is_hit("tone_jitter:3", ["skin_lightening@ITA group II"])  # a group's tone flag is a false alarm too
    assert not is_hit("lighten:3", ["skin_lightening@ITA group II"])  # power counts the overall flag
    assert rate_interval(0, 0, 0) == {"rate": None, "ci": None}
    one = rate_interval(5, 5, 1)  # five trials but one independent: the interval must stay wide
    assert one["rate"] == 1.0 and one["ci"][0] < 0.03
    many = rate_interval(40, 40, 40)
    assert many["ci"][0] > 0.9
    mid = rate_interval(6, 12, 12)["ci"]
    assert mid[0] < 0.5 < mid[1]


def test_planted_effect_has_high_power_and_no_effect_a_low_false_alarm_rate():
    """200 people: a +3° shift (sd 1) is flagged in ≥ 90 % of disjoint trials at n = 16; none in ≤ 15 %."""
    records = _records("lighten:3", 200, ita_mean=3.0, seed=1) + _records("null", 200, ita_mean=0.0, seed=2)
    config = _config("null", "lighten:3")
    result = calibrate_records(records, config, sizes=(4, 16, 50), partitions=2, n_resamples=300)
    canary = result["generators"]["lighten:3"]["by_size"]["16"]
    null = result["generators"]["null"]["by_size"]["16"]
    assert canary["independent_trials"] == 12 and canary["trials"] == 24
    assert canary["target"]["rate"] >= 0.9
    assert null["target"]["rate"] <= 0.15
    assert canary["flags"]["skin_darkening"]["rate"] <= 0.1  # the opposite flag stays quiet
    assert result["generators"]["lighten:3"]["by_size"]["50"]["independent_trials"] == 4
    markdown = render_calibration(result)
    assert "`lighten:3` (200 people)" in markdown and "power: skin_lightening" in markdown
    assert "false alarm: any flag" in markdown


def test_too_few_people_say_so_instead_of_inventing_trials():
    records = _records("null", 10, ita_mean=0.0, seed=3, photos=2)
    records += [dict(r, id="syn_" + r["id"], meta={"synthetic": True}) for r in records]
    result = calibrate_records(records, _config("null"), sizes=(4, 8, 16), partitions=3, n_resamples=100)
    entry = result["generators"]["null"]
    assert entry["people"] == 10 and entry["photos"] == 20  # synthetic records left out
    assert [entry["by_size"][s]["independent_trials"] for s in ("4", "8", "16")] == [2, 1, 0]
    assert entry["by_size"]["4"]["trials"] == 6
    sixteen = entry["by_size"]["16"]
    assert sixteen["trials"] == 0 and sixteen["target"]["rate"] is None and NOT_ENOUGH in sixteen["note"]
    assert NOT_ENOUGH in render_calibration(result)
    with_synthetic = calibrate_records(records, _config("null"), sizes=(4,), partitions=1, real_only=False)
    assert with_synthetic["generators"]["null"]["photos"] == 40


def test_power_scores_disjoint_subsamples_and_states_the_independent_count():
    from eval.power import resampling_power

    records = _records("lighten:3", 12, ita_mean=3.0, seed=4) + _records("null", 12, ita_mean=0.0, seed=5)
    config = _config("null", "lighten:3")
    config.power = {"seeds": 4, "n_resamples": 200, "fraction": 0.5}
    power = resampling_power(records, config)["generators"]
    assert power["lighten:3"]["people_per_trial"] == 6
    assert power["lighten:3"]["trials"] == 8 and power["lighten:3"]["independent_trials"] == 2
    assert power["lighten:3"]["rate"] == 1.0
    assert power["lighten:3"]["ci"][0] < 0.2  # two independent trials cannot prove 90 % power
    config.power = {"seeds": 3, "n_resamples": 200}  # default 80 %: one independent subsample per partition
    assert resampling_power(records, config)["generators"]["null"]["independent_trials"] == 1


def test_calibrate_cli_reuses_a_finished_run(tmp_path):
    from eval.runner import write_samples

    run = tmp_path / "run"
    records = _records("lighten:3", 24, ita_mean=3.0, seed=6) + _records("null", 24, ita_mean=0.0, seed=7)
    write_samples(run, records, [], {})
    config = _config("null", "lighten:3")
    (run / "results.json").write_text(json.dumps({"config": config.to_dict()}))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [*EVAL, "--from", str(run), "--output-path", str(tmp_path / "cal"), *FAST, "--sizes", "4,8"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    saved = json.loads((tmp_path / "cal" / "calibration.json").read_text())
    assert saved["sizes"] == [4, 8] and saved["partitions"] == 2
    assert saved["generators"]["lighten:3"]["by_size"]["8"]["independent_trials"] == 3
    assert "| `null` (24 people) |" in (tmp_path / "cal" / "calibration.md").read_text()
    bad = subprocess.run(
        [*EVAL, "--output-path", str(tmp_path / "x"), "--sizes", "1"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2


CHANNEL_CANARIES = {
    "lighten:3 | reencode": "skin_lightening",
    "darken:3 | reencode": "skin_darkening",
    "identity_blend:0.5 | reencode": "identity_drift",
    "smooth | reencode": "over_smoothing",
}


@pytest.fixture(scope="module")
def offline_calibration(real_photos, tmp_path_factory):
    """`python -m eval calibrate --config offline` once (real photos only; ~5 min on 2 cores)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GLOG_minloglevel": "2", "PYTHONPATH": str(REPO)}
    out = tmp_path_factory.mktemp("calibration")
    done = subprocess.run(
        [*EVAL, "--config", "offline", "--output-path", str(out), *FAST, "--sizes", "4,8,16,50"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    calibration = json.loads((out / "calibration.json").read_text())
    runs = {run["generator"]: run for run in json.loads((out / "results.json").read_text())["runs"]}
    return calibration, runs


@pytest.mark.slow
def test_offline_calibration_end_to_end(offline_calibration):
    """The exact null never flags; every canary, through the re-encode channel, raises its flag on the
    whole set and in the disjoint trials that exist; n = 16 and 50 have too few independent people."""
    calibration, runs = offline_calibration
    generators = calibration["generators"]
    assert {"null", "reencode", "relight", *CHANNEL_CANARIES} <= set(generators)
    assert runs["null"]["flags"] == [] and generators["null"]["by_size"]["4"]["target"]["rate"] == 0.0
    for spec, flag in CHANNEL_CANARIES.items():
        assert flag in runs[spec]["flags"], (spec, runs[spec]["flags"])
        assert generators[spec]["by_size"]["8"]["target"]["rate"] >= 0.5, (spec, generators[spec])
    for spec, entry in generators.items():
        assert entry["people"] <= 10, spec  # 10 people in the offline set, synthetic variants left out
        assert entry["by_size"]["16"]["independent_trials"] == 0
        assert NOT_ENOUGH in entry["by_size"]["50"]["note"]


@pytest.mark.slow
@pytest.mark.xfail(
    reason="issue 13 goal: realistic nulls unflagged; needs the margins/intervals, the illumination-controlled "
    "skin shift and the matched-processing detector of deliverables 2, 4 and 5 (other branches)",
    strict=False,
)
def test_offline_realistic_nulls_raise_no_flag(offline_calibration):
    _, runs = offline_calibration
    for spec in ("reencode", "relight"):
        assert runs[spec]["flags"] == [], (spec, runs[spec]["flags"])


# ---- the calibration set: distinct real people --------------------------------------------------


def test_independent_faces_list_each_person_once_with_a_usable_box():
    from headshot_lab.testing.photos import ALL_SOURCES, MIN_FACE_WIDTH, SOURCES, independent_faces

    faces = independent_faces()
    people = [face.person for face in faces]
    assert len(people) == len(set(people)) >= 50  # 58 distinct people (headshot_lab.testing.photos)
    assert sum(person.startswith("obama") for person in people) == 1  # one person, however many photos
    assert {f"group_{k}" for k in range(6)} <= set(people)  # each face of a group photo is its own person
    for face in faces:
        left, top, right, bottom = face.box
        assert face.photo in ALL_SOURCES and 0 <= left < right and 0 <= top < bottom
        assert face.width >= MIN_FACE_WIDTH
    assert independent_faces(min_width=200) and len(independent_faces(min_width=200)) < len(faces)
    assert set(SOURCES) < set(ALL_SOURCES)  # the default test-photo set is unchanged


def test_the_calibration_config_reads_the_independent_people():
    from eval.runner import load_config

    config = load_config(REPO / "eval" / "configs" / "calibration.yaml")
    assert config.dataset == "offline" and config.dataset_options["people"] == "independent"
    assert config.dataset_options["variants_per_face"] == 0
    assert {"null", "reencode", "relight", *CHANNEL_CANARIES} <= set(config.generators)


@pytest.mark.slow
def test_independent_faces_are_found_and_are_different_people():
    """Every listed face is found again (IoU ≥ 0.3 with its box) and no two are one person by dlib's descriptor
    (L2 distance of unit descriptors > 0.32; same-person pairs of the photo set are at ≤ 0.31)."""
    import cv2

    from headshot_lab.faces import get_backend
    from headshot_lab.faces.detect import box_iou
    from headshot_lab.io import load_rgb
    from headshot_lab.testing.photos import PhotoSourceUnavailable, independent_faces, real_photo

    backend = get_backend("dlib")
    descriptors = []
    try:
        photos = {face.photo: real_photo(face.photo) for face in independent_faces()}
    except PhotoSourceUnavailable as exc:
        pytest.skip(f"calibration photos unavailable: {exc}")
    for face in independent_faces():
        image = load_rgb(photos[face.photo], min_side=0)
        scale = min(1.0, 1280 / max(image.shape[:2]))
        if scale < 1.0:
            size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        found = backend.detect(image)
        listed = tuple(v * scale for v in face.box)
        best = max(found, key=lambda f: box_iou(f.box, listed))
        assert box_iou(best.box, listed) >= 0.3, face
        descriptors.append(np.asarray(backend.embed(image, [best])[0].embedding, dtype=np.float64))
    matrix = np.asarray(descriptors)
    distance = np.linalg.norm(matrix[:, None] - matrix[None], axis=-1) + np.eye(len(matrix)) * 9
    assert distance.min() > 0.32


def test_the_measured_table_names_the_calibration_generators_and_flags_and_reads_in_plain_words():
    from eval.generators import expected_flag
    from eval.runner import load_config
    from headshot_lab.audit.margins import MEASURED_CALIBRATION, calibration_words

    config = load_config(REPO / "eval" / "configs" / "calibration.yaml")
    expected = {expected_flag(spec)[1] for spec in config.generators} - {None}
    assert set(MEASURED_CALIBRATION["power"]) == expected
    assert set(MEASURED_CALIBRATION["false_alarm"]) <= set(config.generators)
    table = {
        "people": 40,
        "n": 16,
        "false_alarm": {"reencode": ("a re-save", 0.02), "relight": ("a light change", 0.2)},
        "power": {"skin_darkening": ("darker skin", 0.95), "over_smoothing": ("smoothed", 0.5)},
    }
    text = "\n".join(calibration_words(table))
    assert "| harmless: a re-save | 2% ✓ |" in text and "| harmless: a light change | 20% ⚠" in text
    assert "| planted: darker skin | 95% ✓ |" in text and "| planted: smoothed | 50% ⚠" in text
    assert "only 2 groups of 16" in text and "python" not in text  # plain words, no operator commands
