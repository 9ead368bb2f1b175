"""The human two-alternative forced-choice kit (headshot_lab.audit.survey)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from headshot_lab.audit.survey import make_survey, score_survey
from headshot_lab.errors import HeadshotLabError


def _images(n: int, value: int) -> list[np.ndarray]:
    rng = np.random.default_rng(value)
    return [np.clip(value + rng.normal(0, 5, (24, 24, 3)), 0, 255).astype(np.uint8) for _ in range(n)]


def _key(path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def _answers(path, rows: list[tuple[str, str]], participant: str | None = None) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["trial", "choice", *(["participant"] if participant else [])])
        for trial, choice in rows:
            writer.writerow([trial, choice, *([participant] if participant else [])])


def test_survey_is_written_randomised_and_reproducible(tmp_path):
    real, fake = _images(12, 60), _images(12, 180)
    kit = make_survey(real, fake, tmp_path / "a", seed=1)
    key = _key(kit.key)
    assert kit.n_trials == 12 and len(key) == 12
    assert {row["ai_side"] for row in key} == {"left", "right"}  # both sides used
    page = kit.html.read_text()
    assert page.count('class="trial"') == 12 and "answers.csv" in page
    images = sorted((tmp_path / "a" / "images").iterdir())
    assert len(images) == 24
    assert all(len(p.stem) == 16 for p in images)  # random names: nothing to read off the file name
    again = _key(make_survey(real, fake, tmp_path / "b", seed=1).key)
    assert [row["ai_side"] for row in again] == [row["ai_side"] for row in key]
    other = _key(make_survey(real, fake, tmp_path / "c", seed=2).key)
    assert [row["ai_side"] for row in other] != [row["ai_side"] for row in key]


def test_the_generated_image_is_on_the_side_the_key_says(tmp_path):
    from headshot_lab.io import load_rgb

    kit = make_survey(_images(6, 40), _images(6, 220), tmp_path, seed=0, paired=True)
    for row in _key(kit.key):
        left = load_rgb(tmp_path / "images" / row["left"], min_side=0).mean()
        right = load_rgb(tmp_path / "images" / row["right"], min_side=0).mean()
        assert (left > right) == (row["ai_side"] == "left")  # generated images are the bright ones


def test_scoring_uses_an_exact_binomial_test(tmp_path):
    from scipy.stats import binomtest

    kit = make_survey(_images(40, 60), _images(40, 180), tmp_path, seed=3)
    key = _key(kit.key)
    rows = [
        (row["trial"], row["ai_side"] if i < 30 else ("left" if row["ai_side"] == "right" else "right"))
        for i, row in enumerate(key)
    ]
    _answers(tmp_path / "answers.csv", rows)
    score = score_survey(kit.key, tmp_path / "answers.csv")
    expected = binomtest(30, 40, 0.5).proportion_ci(0.95, method="wilson")
    assert score.n == 40 and score.correct == 30 and score.accuracy == 0.75
    assert score.ci == pytest.approx((expected.low, expected.high))
    assert score.p_value == pytest.approx(binomtest(30, 40, 0.5).pvalue)
    exact = score_survey(kit.key, tmp_path / "answers.csv", method="exact")
    assert exact.ci[0] < score.ci[0]  # Clopper–Pearson is the wider one here


def test_several_participants_and_blank_answers(tmp_path):
    kit = make_survey(_images(4, 60), _images(4, 180), tmp_path, seed=0)
    key = _key(kit.key)
    _answers(tmp_path / "p1.csv", [(r["trial"], r["ai_side"]) for r in key])
    _answers(tmp_path / "p2.csv", [(key[0]["trial"], "")] + [(r["trial"], "left") for r in key[1:]])
    score = score_survey(kit.key, [tmp_path / "p1.csv", tmp_path / "p2.csv"])
    assert score.unanswered == 1
    assert score.n == 7
    assert set(score.by_participant) == {"p1", "p2"} and score.by_participant["p1"] == 1.0
    assert score.to_dict()["n"] == 7


def test_bad_survey_input_gives_clear_errors(tmp_path):
    with pytest.raises(HeadshotLabError):
        make_survey([], _images(2, 1), tmp_path)
    with pytest.raises(HeadshotLabError):
        make_survey(_images(2, 1), _images(2, 2), tmp_path, n_trials=5)
    kit = make_survey(_images(2, 1), _images(2, 2), tmp_path, seed=0)
    (tmp_path / "bad.csv").write_text("question,answer\n1,left\n")
    with pytest.raises(HeadshotLabError, match="columns"):
        score_survey(kit.key, tmp_path / "bad.csv")
    with pytest.raises(HeadshotLabError, match="not found"):
        score_survey(kit.key, tmp_path / "missing.csv")
    _answers(tmp_path / "none.csv", [("99", "left")])
    with pytest.raises(HeadshotLabError, match="No answered"):
        score_survey(kit.key, tmp_path / "none.csv")
