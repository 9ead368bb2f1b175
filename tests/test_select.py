"""Auto-filter and ranking (headshot_lab.select) on images constructed from real photos.

Every image is analysed once (module-scope fixtures); the tests then judge the cached analyses,
so each reject code is checked on its own constructed image without re-running the detectors.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from headshot_lab.errors import HeadshotLabError
from headshot_lab.select import (
    Candidate,
    ImageAnalysis,
    ReferenceProfile,
    SelectThresholds,
    analyze_image,
    candidate_reasons,
    identity_threshold,
    rank_candidates,
    select_candidates,
)


def _face(image: np.ndarray):
    from headshot_lab.faces import get_backend

    return get_backend("dlib").detect(image)[0]


def _eye_boxes(landmarks: np.ndarray) -> list[tuple[int, int, int, int]]:
    """``(x0, y0, x1, y1)`` around each eye's 68-point contour, grown by 6 px."""
    boxes = []
    for eye in (slice(36, 42), slice(42, 48)):
        pts = landmarks[eye]
        boxes.append(
            (int(pts[:, 0].min() - 6), int(pts[:, 1].min() - 6), int(pts[:, 0].max() + 6), int(pts[:, 1].max() + 6))
        )
    return boxes


def construct(load_real) -> dict[str, np.ndarray]:
    """Candidates built from the real photos, one per reject reason (plus good ones)."""
    import cv2

    from headshot_lab.skin import shift_ita, skin_mask

    obama, obama2, obama3 = load_real("obama"), load_real("obama2"), load_real("obama3")
    height, width = obama.shape[:2]
    face = _face(obama)
    left, _, right, _ = face.box
    marks = np.asarray(face.landmarks, dtype=np.float64)
    images: dict[str, np.ndarray] = {"good": obama, "good2": obama2}

    # two people side by side (obama2 scaled to obama's height)
    scaled = cv2.resize(obama2, (round(obama2.shape[1] * height / obama2.shape[0]), height))
    images["two_faces"] = np.concatenate([obama, scaled], axis=1)
    # the image's left edge cuts through the face (20 % of the face box)
    images["cut_off"] = np.ascontiguousarray(obama[:, int(left + 0.2 * (right - left)) :])
    # the same photo in a canvas three times as wide and high (edges replicated)
    images["small_face"] = cv2.copyMakeBorder(obama, height, height, width, width, cv2.BORDER_REPLICATE)
    # blur with σ = 1.5 % of the face width
    images["blurry"] = cv2.GaussianBlur(obama, (0, 0), 0.015 * (right - left))
    # skin lighter / darker by 20° ITA
    images["lighter"] = shift_ita(obama, skin_mask(obama), 20.0)
    images["darker"] = shift_ita(obama3, skin_mask(obama3), -20.0)
    # both eyes painted over with the cheek's colour
    x0, x1 = int(marks[36, 0] - 15), int(marks[45, 0] + 15)
    y0, y1 = int(marks[36:48, 1].min() - 12), int(marks[36:48, 1].max() + 12)
    cheek = obama[int(marks[29, 1]) : int(marks[29, 1]) + 5, int(marks[2, 0]) + 20 : int(marks[2, 0]) + 25]
    covered = obama.copy()
    covered[y0:y1, x0:x1] = cheek.reshape(-1, 3).mean(axis=0)
    images["eyes_covered"] = covered
    # eyes shut: each eye replaced by the eyelid skin above it, with a lash line; blurred locally
    shut = obama.copy()
    for (ex0, ey0, ex1, ey1), eye in zip(_eye_boxes(marks), (slice(36, 42), slice(42, 48)), strict=True):
        h = ey1 - ey0
        shut[ey0:ey1, ex0:ex1] = obama[ey0 - h : ey0, ex0:ex1]
        pts = marks[eye]
        lash_y = int((pts[:, 1].max() + pts[:, 1].min()) / 2 + 2)
        cv2.line(shut, (int(pts[0, 0]), lash_y), (int(pts[3, 0]), lash_y), (25, 20, 20), 2)
        shut[ey0 - 4 : ey1 + 4, ex0 - 4 : ex1 + 4] = cv2.GaussianBlur(
            shut[ey0 - 4 : ey1 + 4, ex0 - 4 : ex1 + 4], (3, 3), 0
        )
    images["eyes_shut"] = shut
    # the image-right eye moved down by 0.15 eye distances
    distance = float(np.linalg.norm(marks[42:48].mean(axis=0) - marks[36:42].mean(axis=0)))
    shift = int(0.15 * distance)
    ex0, ex1 = int(marks[42, 0] - 10), int(marks[45, 0] + 10)
    ey0, ey1 = int(marks[43:48, 1].min() - 10), int(marks[42:48, 1].max() + 10)
    moved = obama.copy()
    moved[ey0 + shift : ey1 + shift, ex0:ex1] = obama[ey0:ey1, ex0:ex1]
    moved[ey0 : ey0 + shift, ex0:ex1] = obama[ey0 - shift : ey0, ex0:ex1]
    images["eye_moved"] = moved
    # another person, and no person at all
    images["other_person"] = load_real("biden")
    images["no_face"] = np.ascontiguousarray(obama[:300, :300])
    # the good photo, a little brighter: a near-duplicate
    images["good_brighter"] = np.clip(obama.astype(np.int16) + 8, 0, 255).astype(np.uint8)
    return images


@pytest.fixture(scope="module")
def profile(load_real) -> ReferenceProfile:
    return ReferenceProfile.from_images({name: load_real(name) for name in ("obama", "obama2", "obama3")})


@pytest.fixture(scope="module")
def analyses(load_real) -> dict[str, ImageAnalysis]:
    return {name: analyze_image(image, name=name) for name, image in construct(load_real).items()}


@pytest.fixture(scope="module")
def selection(analyses, profile):
    return select_candidates(list(analyses.values()), profile)


def _codes(selection, name: str) -> list[str]:
    (candidate,) = [c for c in selection.candidates if c.path == name]
    return candidate.codes


def test_profile_summarises_the_selfies(profile):
    summary = profile.to_dict()
    assert summary["used"] == ["obama", "obama2", "obama3"] and not summary["skipped"]
    assert "dlib" in summary["encoder"]
    assert np.isclose(np.linalg.norm(profile.centroid), 1.0, atol=1e-5)
    assert all(s > identity_threshold(SelectThresholds(), "dlib") for s in summary["self_similarity"])
    low, high = summary["ita_range"]
    assert low < high  # three different lights


def test_good_candidate_is_kept_with_scores(selection):
    (good,) = [c for c in selection.candidates if c.path == "good"]
    assert good.kept and good.rank is not None and not good.reasons
    assert good.scores["identity"] >= identity_threshold(SelectThresholds(), "dlib")
    assert good.scores["faces"] == 1 and good.scores["sharpness"] > SelectThresholds().min_sharpness


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("two_faces", "multiple_faces"),
        ("cut_off", "face_cut_off"),
        ("small_face", "face_too_small"),
        ("blurry", "blurry"),
        ("lighter", "skin_tone_shift"),
        ("darker", "skin_tone_shift"),
        ("eyes_covered", "eyes_missing"),
        ("eyes_shut", "eyes_closed"),
        ("eye_moved", "eyes_misaligned"),
        ("other_person", "identity_low"),
        ("no_face", "no_face"),
        ("good_brighter", "near_duplicate"),
    ],
)
def test_each_defect_is_rejected_with_its_code(selection, name, code):
    codes = _codes(selection, name)
    assert code in codes, f"{name}: expected {code}, got {codes}"
    (candidate,) = [c for c in selection.candidates if c.path == name]
    assert not candidate.kept and candidate.rank is None
    assert all(reason.message for reason in candidate.reasons)


@pytest.mark.parametrize(
    ("name", "code"),
    [("good", "eyes_missing"), ("good", "eyes_closed"), ("good", "eyes_misaligned"), ("good", "skin_tone_shift")],
)
def test_the_unaltered_photo_does_not_trip_the_eye_and_skin_checks(selection, name, code):
    assert code not in _codes(selection, name)


def test_skin_shift_is_signed(selection):
    by_name = {c.path: c for c in selection.candidates}
    assert by_name["lighter"].scores["ita_outside"] > SelectThresholds().max_ita_shift
    assert by_name["lighter"].scores["delta_ita"] > 0
    assert by_name["darker"].scores["ita_outside"] < -SelectThresholds().max_ita_shift
    assert by_name["darker"].scores["delta_ita"] < 0
    assert "lighter" in by_name["lighter"].reasons[0].message


def test_tight_profile_catches_a_smaller_shift(load_real):
    from headshot_lab.skin import shift_ita, skin_mask

    obama = load_real("obama")
    single = ReferenceProfile.from_images({"obama": obama})
    mask = skin_mask(obama)
    shifted = {"plus8": shift_ita(obama, mask, 8.0), "plus2": shift_ita(obama, mask, 2.0)}
    result = select_candidates(shifted, single, thresholds={"max_duplicate_distance": -1})
    codes = {c.path: c.codes for c in result.candidates}
    assert "skin_tone_shift" in codes["plus8"]
    assert "skin_tone_shift" not in codes["plus2"]


def test_thresholds_change_the_verdict_on_the_same_measurements(analyses, profile):
    strict = SelectThresholds(min_identity=0.9999, min_sharpness=10_000)
    _, reasons = candidate_reasons(analyses["good"], profile, strict)
    assert {"identity_low", "blurry"} <= {r.code for r in reasons}
    _, reasons = candidate_reasons(analyses["blurry"], profile, SelectThresholds(min_sharpness=0))
    assert "blurry" not in {r.code for r in reasons}


def test_unknown_threshold_is_a_clear_error(profile):
    with pytest.raises(HeadshotLabError) as info:
        select_candidates([], profile, thresholds={"min_identiy": 0.5})
    assert info.value.code == "bad_option" and "min_identiy" in info.value.message


def test_identity_threshold_is_per_encoder():
    assert identity_threshold(SelectThresholds(), "dlib") == pytest.approx(0.90)
    assert identity_threshold(SelectThresholds(min_identity=0.5), "insightface") == 0.5
    with pytest.raises(HeadshotLabError) as info:
        identity_threshold(SelectThresholds(), "insightface")
    assert info.value.code == "bad_option" and "min_identity" in info.value.fix


def test_ranking_puts_the_more_identity_similar_candidate_first(analyses, profile):
    pair = [analyses["good2"], analyses["good"]]
    result = select_candidates(pair, profile, thresholds={"quality_weight": 0.0})
    kept = result.kept
    assert [c.rank for c in kept] == [1, 2]
    assert kept[0].scores["identity"] > kept[1].scores["identity"]


def test_near_duplicates_are_not_both_in_the_top_picks(analyses, profile):
    trio = [analyses["good"], analyses["good_brighter"], analyses["good2"]]
    result = select_candidates(trio, profile, top_k=2)
    picked = {c.path for c in result.kept}
    assert len(picked) == 2
    assert not {"good", "good_brighter"} <= picked
    assert "good2" in picked


def test_top_k_limits_the_kept_list(analyses, profile):
    result = select_candidates([analyses["good"], analyses["good2"]], profile, top_k=1)
    assert len(result.kept) == 1
    (other,) = result.rejected
    assert other.codes == ["not_in_top_k"]


def test_mmr_prefers_a_different_looking_image_over_a_similar_better_one():
    limits = SelectThresholds()
    pool = [
        Candidate("a", {"identity": 0.99, "quality": 0.5}, hash="ffffffff00000000"),
        Candidate("a_like", {"identity": 0.985, "quality": 0.5}, hash="ffffffff00003fff"),  # 14 bits from "a"
        Candidate("b", {"identity": 0.97, "quality": 0.5}, hash="0000ffffffff0000"),  # 32 bits from "a"
    ]
    rank_candidates(pool, limits, top_k=None)
    assert [c.path for c in sorted(pool, key=lambda c: c.rank)] == ["a", "b", "a_like"]


def test_to_dict_is_the_cli_contract(selection):
    payload = json.loads(json.dumps(selection.to_dict()))
    assert set(payload) >= {"kept", "rejected"}
    assert payload["kept"] and payload["rejected"]
    assert all(set(item) == {"path", "scores"} for item in payload["kept"])
    assert all(set(item) == {"path", "reasons"} for item in payload["rejected"])
    for item in payload["rejected"]:
        assert item["reasons"] and all(set(r) == {"code", "message"} for r in item["reasons"])
    identities = [item["scores"]["identity"] for item in payload["kept"]]
    assert payload["kept"][0]["scores"]["relevance"] == max(item["scores"]["relevance"] for item in payload["kept"])
    assert len(identities) == len(selection.kept)


def test_references_without_a_face_are_refused():
    blank = np.full((300, 300, 3), 128, dtype=np.uint8)
    with pytest.raises(HeadshotLabError) as info:
        ReferenceProfile.from_images([blank])
    assert info.value.code == "no_reference"


def test_unreadable_candidate_is_rejected_not_raised(tmp_path, profile):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    result = select_candidates([broken], profile)
    (candidate,) = result.candidates
    assert not candidate.kept and candidate.reasons
    assert candidate.reasons[0].code in {"truncated_image", "unsupported_format", "not_an_image", "unreadable"}


@pytest.fixture()
def studio_cli():
    """``headshot-lab`` main entry point."""
    from headshot_lab.cli import main

    return main


def test_cli_select_json_contract(tmp_path, real_photos, studio_cli, capsys):
    import shutil

    candidates, selfies = tmp_path / "candidates", tmp_path / "selfies"
    candidates.mkdir()
    selfies.mkdir()
    for name in ("obama", "biden"):
        shutil.copy(real_photos[name], candidates / real_photos[name].name)
    (candidates / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (candidates / "notes.txt").write_text("not an image")
    # Selfies in three lights: with only the two dimmer ones, the well-lit candidate's ITA° lies 15°
    # above their range and is (by design) flagged as a skin-tone shift.
    for name in ("obama2", "obama3", "obama_partial"):
        shutil.copy(real_photos[name], selfies / real_photos[name].name)

    assert studio_cli(["select", str(candidates), "--reference", str(selfies), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    kept = {item["path"].rsplit("/", 1)[-1]: item for item in payload["kept"]}
    rejected = {item["path"].rsplit("/", 1)[-1]: item for item in payload["rejected"]}
    assert list(kept) == ["obama.jpg"]
    assert kept["obama.jpg"]["scores"]["identity"] > 0.9
    assert "identity_low" in [r["code"] for r in rejected["biden.jpg"]["reasons"]]
    assert "broken.png" in rejected and "notes.txt" not in rejected


def test_cli_select_without_references_exits_1(tmp_path, studio_cli, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert studio_cli(["select", str(empty), "--reference", str(empty)]) == 1
    err = capsys.readouterr().err
    assert "error:" in err and "fix:" in err
