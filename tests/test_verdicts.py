"""One verdict across check, train, retouch and select, asserted on the real registry photos.

* mixed identity: obama × 3 + biden → biden is left out (named, with why); obama + biden → no majority, blocked;
* group, occluded (painted sunglasses), greyscale and a low-resolution video still get the right severity and cause;
* retouch uses only the usable photos; select never rejects a retouch for softness; the same ΔITA in both.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from headshot_lab import workflow
from headshot_lab.capture import check_photos
from headshot_lab.errors import HeadshotLabError
from headshot_lab.testing.checklist_calibration import face_box, framed


@pytest.fixture(scope="module")
def mixed(real_photos):
    """obama × 3 + biden, checked as the app checks them (names → paths)."""
    sources = {f"{name}.jpg": real_photos[name] for name in ("obama", "obama2", "obama3", "biden")}
    return sources, workflow.check_photos(sources)


def test_majority_identity_is_kept_and_the_other_person_left_out_with_why(mixed):
    sources, check = mixed
    assert check.usable_names() == ["obama.jpg", "obama2.jpg", "obama3.jpg"]
    left = check.left_out()
    assert list(left) == ["biden.jpg"]
    assert "biden.jpg looks like a different person" in left["biden.jpg"]
    assert "left out of training and retouch" in left["biden.jpg"]
    usable, left_out = workflow.usable_sources(check, sources)
    assert set(usable) == {"obama.jpg", "obama2.jpg", "obama3.jpg"} and set(left_out) == {"biden.jpg"}
    note = workflow.left_out_notes(left_out)[0]
    assert note.startswith("biden.jpg was left out: ") and "different person" in note
    set_problem = next(p for p in check.report["set"]["problems"] if p["code"] == "different_person")
    assert set_problem["severity"] == "warning" and "biden.jpg" in set_problem["message"]


def test_two_people_and_no_majority_is_blocked_in_plain_words(real_photos):
    check = workflow.check_photos({"me.jpg": real_photos["obama"], "friend.jpg": real_photos["biden"]})
    assert check.usable_names() == []
    with pytest.raises(HeadshotLabError) as raised:
        check.require_usable()
    assert raised.value.code == "different_person"
    assert "can't tell which one is you" in raised.value.message
    with pytest.raises(HeadshotLabError, match="can't tell which one is you"):
        workflow.train_identity({"me.jpg": "a", "friend.jpg": "b"}, "unused", check=check)
    with pytest.raises(HeadshotLabError, match="can't tell which one is you"):
        workflow.retouch_photos({"me.jpg": "a", "friend.jpg": "b"}, "corporate", "unused", check=check)


def test_group_occluded_greyscale_and_small_inputs_get_their_severity(real_photos, load_real):
    from headshot_lab.faces import get_backend
    from tests.test_capture import add_sunglasses

    obama = load_real("obama")
    points = np.asarray(get_backend("dlib").detect(obama)[0].landmarks, dtype=np.float64)
    grey = np.repeat(cv2.cvtColor(obama, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    box = face_box(obama, "obama")
    still, _ = framed(obama, box, 16 / 9, 0.45, 426)  # a 240p video still: the face fills ~half its height
    report = check_photos(
        {
            "group": real_photos["group"],
            "sunglasses": add_sunglasses(obama, points),
            "greyscale": grey,
            "still": still,
        }
    )
    by = {p.path: p for p in report.photos}
    assert "multiple_faces" in by["group"].codes and not by["group"].ok
    assert "eyes_covered" in by["sunglasses"].codes and not by["sunglasses"].ok
    grey_problem = next(p for p in by["greyscale"].problems if p.code == "heavy_filter")
    assert grey_problem.severity == "warning" and "skin tone can't be checked" in grey_problem.message
    small = next(p for p in by["still"].problems if p.code == "face_too_small")
    assert small.severity == "warning" and by["still"].ok
    size = f"{still.shape[1]}×{still.shape[0]}"
    assert size in small.message and "Moving closer won't help" in small.fix  # the cause: resolution, not distance


def test_only_greyscale_photos_block_the_set(load_real):
    grey = np.repeat(cv2.cvtColor(load_real("obama"), cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    report = check_photos({"grey": grey})
    assert report.photos[0].ok  # an advisory on its own …
    assert "no_colour" in report.set.codes and not report.set.ok  # … but no colour at all: skin tone guessed


def test_retouch_uses_usable_photos_and_select_keeps_its_outputs_with_the_same_delta_ita(mixed, tmp_path):
    sources, check = mixed
    chosen = {name: sources[name] for name in ("obama2.jpg", "biden.jpg")}
    batch = workflow.retouch_photos(chosen, "corporate", tmp_path, check=check)
    assert [o.source for o in batch.outputs] == ["obama2.jpg"]
    assert [f.source for f in batch.failures] == ["biden.jpg"] and batch.failures[0].error["code"] == "left_out"
    output = batch.outputs[0]
    candidate = str(output.paths[0])
    selection = workflow.select_headshots(
        {candidate: candidate},
        {name: sources[name] for name in check.usable_names()},
        sources={candidate: "obama2.jpg"},
    )
    kept = {c.path: c for c in selection.kept}
    assert candidate in kept, selection.to_dict()["rejected"]
    scores = kept[candidate].scores
    assert scores["sharpness_vs_source"] > 0.8  # retouch keeps the sharpness
    assert scores["delta_ita_vs"] == "source"
    assert scores["delta_ita"] == pytest.approx(output.delta_ita, abs=0.01)  # one ΔITA everywhere


def test_training_learns_from_the_majority_and_names_who_was_left_out(mixed, monkeypatch, tmp_path):
    from types import SimpleNamespace

    sources, check = mixed
    seen = {}

    def fake_training(photos, base, out_dir, config, **kwargs):  # the trainer itself is tested in test_train.py
        seen["photos"] = list(photos)
        card = {"photos": {"count": len(photos)}, "notes": []}
        return SimpleNamespace(
            card=card, lora_path=tmp_path / "x", seconds=0.0, steps=1, resumed_from=None, card_path=None
        )

    monkeypatch.setattr(workflow.training, "train_identity_lora", fake_training)
    result = workflow.train_identity(dict(sources), tmp_path, check=check)
    assert seen["photos"] == [sources[name] for name in ("obama.jpg", "obama2.jpg", "obama3.jpg")]
    assert result.photos == 3
    assert len(result.notes) == 1 and result.notes[0].startswith("biden.jpg was left out")
