"""The source-photo checklist on real photos, each altered to trigger exactly one problem.

Every photo is analysed once per module (fixtures below); set-level tests recombine the
analysed :class:`PhotoReport` objects with :func:`check_set` instead of re-analysing them.
"""

from __future__ import annotations

import copy
import io
import json

import cv2
import numpy as np
import pytest
from PIL import Image

from headshot_lab.capture import (
    CaptureReport,
    CaptureThresholds,
    PhotoReport,
    Problem,
    analyze_photo,
    check_photos,
    check_set,
    face_sharpness,
    photo_problems,
)
from headshot_lab.errors import HeadshotLabError

# ------------------------------------------------------------------------------------------------
# Alterations of real photos (test-local helpers). ``points`` are dlib's 68 landmarks.
# ------------------------------------------------------------------------------------------------


def _eye_centres(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    left, right = points[36:42].mean(axis=0), points[42:48].mean(axis=0)
    return left, right, float(np.hypot(*(right - left)))


def add_sunglasses(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Two dark lenses and a bridge over the eyes."""
    out = image.copy()
    left, right, distance = _eye_centres(points)
    angle = float(np.degrees(np.arctan2(right[1] - left[1], right[0] - left[0])))
    colour = (18, 18, 22)
    for centre in (left, right):
        axes = (int(0.42 * distance), int(0.3 * distance))
        cv2.ellipse(out, (int(centre[0]), int(centre[1])), axes, angle, 0, 360, colour, -1, cv2.LINE_AA)
    cv2.line(out, tuple(int(v) for v in left), tuple(int(v) for v in right), colour, max(2, int(0.06 * distance)))
    return out


def shut_eyes(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Paint each eye over with the skin just below it and draw a lash line along the lid."""
    out = image.astype(np.float32)
    _, _, distance = _eye_centres(points)
    for start in (36, 42):
        eye = points[start : start + 6]
        centre = eye.mean(axis=0)
        below = image[
            int(centre[1] + 0.25 * distance) : int(centre[1] + 0.35 * distance),
            int(centre[0] - 0.1 * distance) : int(centre[0] + 0.1 * distance),
        ]
        skin = below.reshape(-1, 3).mean(axis=0)
        mask = np.zeros(image.shape[:2], np.uint8)
        cv2.ellipse(
            mask, (int(centre[0]), int(centre[1])), (int(0.32 * distance), int(0.16 * distance)), 0, 0, 360, 255, -1
        )
        weight = cv2.GaussianBlur(mask, (0, 0), 0.03 * distance).astype(np.float32)[..., None] / 255.0
        out = out * (1 - weight) + skin * weight
        xs = np.linspace(eye[0, 0], eye[3, 0], 20)
        ys = np.interp(xs, [eye[0, 0], centre[0], eye[3, 0]], [eye[0, 1], centre[1] + 0.05 * distance, eye[3, 1]])
        lash = np.stack([xs, ys], axis=1).astype(np.int32)
        out = out.astype(np.uint8)
        cv2.polylines(out, [lash], False, (25, 20, 20), max(2, int(0.03 * distance)), cv2.LINE_AA)
        out = out.astype(np.float32)
    return out.astype(np.uint8)


def drop_jaw(image: np.ndarray, points: np.ndarray, fraction: float = 0.35) -> np.ndarray:
    """Open the mouth wide: shift the jaw down by ``fraction`` eye distances and fill the gap dark."""
    _, _, distance = _eye_centres(points)
    lip_line = int(points[[61, 62, 63, 65, 66, 67], 1].mean())
    shift = int(fraction * distance)
    out = image.copy()
    x0, x1 = int(points[2, 0]), int(points[14, 0])
    out[lip_line + shift :, x0:x1] = image[lip_line : image.shape[0] - shift, x0:x1]
    m0, m1 = int(points[48, 0] - 0.1 * distance), int(points[54, 0] + 0.1 * distance)
    centre = ((m0 + m1) // 2, lip_line + shift // 2)
    cv2.ellipse(out, centre, ((m1 - m0) // 2, shift // 2 + 2), 0, 0, 360, (40, 15, 15), -1, cv2.LINE_AA)
    return out


def rotate(image: np.ndarray, degrees: float) -> np.ndarray:
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def shrink_into_canvas(image: np.ndarray, scale: float = 0.25, canvas: int = 1600) -> np.ndarray:
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    out = np.full((canvas, canvas, 3), 128, np.uint8)
    height, width = small.shape[:2]
    top, left = (canvas - height) // 2, (canvas - width) // 2
    out[top : top + height, left : left + width] = small
    return out


def paste_face(image: np.ndarray, box: tuple[int, ...], donor: np.ndarray, donor_box: tuple[int, ...]) -> np.ndarray:
    """Paste ``donor``'s face (with some context) at the left edge, scaled to 0.9× the face in ``image``."""
    width = donor_box[2] - donor_box[0]
    margin = int(0.3 * width)
    crop = donor[
        max(0, donor_box[1] - margin) : donor_box[3] + margin, max(0, donor_box[0] - margin) : donor_box[2] + margin
    ]
    factor = 0.9 * (box[2] - box[0]) / width
    crop = cv2.resize(crop, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    out = image.copy()
    top = max(0, box[1] - int(0.3 * factor * width))
    height = min(crop.shape[0], out.shape[0] - top)
    out[top : top + height, : crop.shape[1]] = crop[:height, : out.shape[1]]
    return out


def jpeg_bytes(image: np.ndarray, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------------
# Module fixtures: analyse each photo once.
# ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real(load_real) -> dict[str, np.ndarray]:
    return {name: load_real(name) for name in ("obama", "obama2", "obama3", "biden")}


@pytest.fixture(scope="module")
def faces68(real) -> dict[str, tuple[tuple[int, ...], np.ndarray]]:
    """``{name: (box, 68 landmarks)}`` of the largest face, from the default backend."""
    from headshot_lab.faces import get_backend

    backend = get_backend("dlib")
    found = {}
    for name, image in real.items():
        face = backend.detect(image)[0]
        found[name] = (face.box, np.asarray(face.landmarks, dtype=np.float64))
    return found


#: altered photo → exactly the per-photo problems it must raise (a grey frame has no face and no colour).
EXPECTED = {
    "grey": {"no_face", "heavy_filter"},
    "two_people": {"multiple_faces"},
    "tiny": {"face_too_small"},
    "blurred": {"soft"},  # σ = 3 px on a 240 px face = 1.25 % of its width: a bit soft (advisory)
    "very_blurred": {"blurry"},  # σ = 8 px = 3.3 %: can't be made out (blocking)
    "bright": {"overexposed"},
    "dark": {"underexposed"},
    "warm_cast": {"color_cast"},
    "greyscale": {"heavy_filter"},
    "sunglasses": {"eyes_covered"},
    "eyes_shut": {"eyes_closed"},
    "rolled": {"head_turned"},
    "shouting": {"expression"},
}


@pytest.fixture(scope="module")
def altered(real, faces68) -> dict[str, np.ndarray]:
    obama = real["obama"]
    _, obama_points = faces68["obama"]
    return {
        "grey": np.full((800, 600, 3), 128, np.uint8),
        "two_people": paste_face(obama, faces68["obama"][0], real["biden"], faces68["biden"][0]),
        "tiny": shrink_into_canvas(obama),
        "blurred": cv2.GaussianBlur(obama, (0, 0), 3),
        "very_blurred": cv2.GaussianBlur(obama, (0, 0), 8),
        "bright": np.clip(obama.astype(np.float32) * 2.0, 0, 255).astype(np.uint8),
        "dark": (obama * 0.25).astype(np.uint8),
        "warm_cast": np.clip(obama * np.array([1.0, 0.85, 0.6]), 0, 255).astype(np.uint8),
        "greyscale": np.repeat(cv2.cvtColor(obama, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2),
        "sunglasses": add_sunglasses(obama, obama_points),
        "eyes_shut": shut_eyes(obama, obama_points),
        "rolled": rotate(obama, 30),
        "shouting": drop_jaw(real["obama2"], faces68["obama2"][1]),
    }


@pytest.fixture(scope="module")
def altered_report(altered) -> CaptureReport:
    return check_photos(altered)


@pytest.fixture(scope="module")
def real_report(real_photos) -> CaptureReport:
    """The three unaltered photos of one person, checked from their files."""
    return check_photos([real_photos[name] for name in ("obama", "obama2", "obama3")])


@pytest.fixture(scope="module")
def extra_reports(real_photos, real) -> dict[str, PhotoReport]:
    """Single photos analysed once for the set tests (no set verdict attached yet)."""
    obama = real["obama"]
    reports = {
        "biden": analyze_photo(real_photos["biden"]),
        "obama_reencoded": analyze_photo(
            jpeg_bytes(cv2.resize(obama, None, fx=0.8, fy=0.8), quality=70), name="obama-copy.jpg"
        ),
        "obama2_flipped": analyze_photo(real["obama2"][:, ::-1].copy(), name="obama2-flipped"),
        "obama3_flipped": analyze_photo(real["obama3"][:, ::-1].copy(), name="obama3-flipped"),
    }
    height, width = obama.shape[:2]
    crop_h, crop_w = int(height * 0.82), int(width * 0.82)
    for index, (dy, dx) in enumerate([(0, 0), (0, 1), (0.4, 0), (0.4, 1), (0.2, 0.5)]):  # face stays in frame
        top, left = int((height - crop_h) * dy), int((width - crop_w) * dx)
        reports[f"crop{index}"] = analyze_photo(
            obama[top : top + crop_h, left : left + crop_w].copy(), name=f"obama-crop{index}"
        )
    return reports


def by_name(report: CaptureReport, name: str) -> PhotoReport:
    (photo,) = [p for p in report.photos if p.path == name]
    return photo


def fresh(*reports: PhotoReport) -> list[PhotoReport]:
    """Deep copies: ``check_set`` writes its identity verdict into the photo reports."""
    return [copy.deepcopy(r) for r in reports]


# ------------------------------------------------------------------------------------------------
# No false alarms on real photos
# ------------------------------------------------------------------------------------------------


def test_real_photos_of_one_person_pass_every_photo_check(real_report):
    for photo in real_report.photos:
        assert photo.ok, (photo.path, photo.problems)
        assert photo.problems == [], (photo.path, photo.codes)
        assert photo.faces == 1
        assert photo.metrics["face_px"] >= 200
        assert photo.metrics["identity_similarity"] > 0.9
    # Three photos are a usable set, but fewer than recommended: a warning only.
    assert real_report.set.ok
    assert real_report.set.codes == ["too_few_photos"]
    assert real_report.set.problems[0].severity == "warning"
    assert real_report.set.metrics["usable"] == 3
    assert real_report.ok


# ------------------------------------------------------------------------------------------------
# One altered photo per problem code
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_alteration_raises_its_problem_and_nothing_else(altered_report, name):
    photo = by_name(altered_report, name)
    per_photo = set(photo.codes) - {"different_person"}  # a set-level verdict, tested below
    assert per_photo == EXPECTED[name], photo.metrics
    for problem in photo.problems:
        assert problem.message and problem.fix
        assert problem.severity in {"error", "warning"}
    assert photo.ok == all(p.severity == "warning" for p in photo.problems)


def test_problem_measurements_point_the_right_way(altered_report, real_report):
    """The metric behind each alteration moved in the expected direction, relative to the original."""
    original = real_report.photos[0].metrics  # obama
    measured = {photo.path: photo.metrics for photo in altered_report.photos}
    get = measured.__getitem__
    assert get("blurred")["sharpness"] < 0.3 * original["sharpness"]
    assert get("very_blurred")["sharpness"] < 0.1 * original["sharpness"]
    assert get("bright")["face_highlight_clip"] > 0.5 > original["face_highlight_clip"]
    assert get("dark")["image_luma_p99"] < 0.5 * original["image_luma_p99"]
    assert get("warm_cast")["cast_b"] > 20 > original["cast_b"]  # yellow-orange: b* > 0
    assert get("greyscale")["colour_p99_chroma"] < 1.0
    assert max(get("sunglasses")["eye_darkness"]) < 0.3 < min(original["eye_darkness"])
    assert np.mean(get("eyes_shut")["eye_openness"]) < 0.5 * np.mean(original["eye_openness"])
    assert get("rolled")["roll"] == pytest.approx(-30, abs=3)
    assert get("tiny")["face_px"] < 100
    assert by_name(altered_report, "two_people").faces == 2


def test_face_cut_off_on_the_partial_photo(real_photos):
    photo = analyze_photo(real_photos["obama_partial"])
    assert "face_cut_off" in photo.codes
    assert "left" in photo.metrics["cut_off_edges"]
    assert not photo.ok


def test_exposure_and_sharpness_do_not_penalise_darker_skin(real, faces68):
    """Darken only the skin (ITA −25°, several Monk steps): no under-exposure, no blur, no other alarm."""
    from headshot_lab.faces.mesh import face_mesh
    from headshot_lab.skin import measure_skin, shift_ita, skin_mask

    obama = real["obama"]
    mesh = face_mesh(obama)[0]
    mask = skin_mask(obama, mesh, exclude_extremes=False)
    darker = shift_ita(obama, cv2.GaussianBlur(mask.astype(np.float32), (0, 0), 3), -25.0)
    assert measure_skin(darker).ita < measure_skin(obama).ita - 15  # the alteration really darkened the skin
    photo = analyze_photo(darker, name="darker")
    assert photo.problems == [], photo.codes
    box = faces68["obama"][0]
    assert face_sharpness(darker, box) == pytest.approx(face_sharpness(obama, box), rel=0.35)


# ------------------------------------------------------------------------------------------------
# Unreadable input never stops the others
# ------------------------------------------------------------------------------------------------


def test_unreadable_files_are_reported_and_the_others_still_checked(real_photos, tmp_path):
    truncated = real_photos["obama"].read_bytes()[:2000]
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo at all")
    calls: list[tuple[int, int]] = []
    report = check_photos(
        [
            real_photos["obama"],
            ("garbage.bin", bytes(range(256)) * 8),
            ("truncated.jpg", truncated),
            text,
            np.zeros((3, 3, 5)),
            real_photos["obama2"],
        ],
        progress=lambda done, total: calls.append((done, total)),
    )
    first, garbage, cut, notes, bad_array, last = report.photos
    assert [p.path for p in report.photos] == [
        str(real_photos["obama"]),
        "garbage.bin",
        "truncated.jpg",
        str(text),
        "photo-5",
        str(real_photos["obama2"]),
    ]
    assert garbage.codes == ["unsupported_format"]
    assert cut.codes[0] in {"truncated_image", "unsupported_format"}
    assert notes.codes == ["not_an_image"]
    assert bad_array.codes == ["unreadable"]
    for broken in (garbage, cut, notes, bad_array):
        assert not broken.ok and broken.faces == 0
        assert broken.problems[0].fix
    for good in (first, last):
        assert good.ok and good.faces == 1 and good.problems == []
    assert report.set.metrics["count"] == 6 and report.set.metrics["usable"] == 2
    assert calls[0] == (0, 6) and calls[-1] == (6, 6)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_one_photo_of_garbage_is_a_problem_not_an_exception():
    photo = analyze_photo(b"\x89PNG\r\n\x1a\n but then nothing")
    assert not photo.ok and photo.codes and photo.codes[0] in {"truncated_image", "unsupported_format"}


def test_progress_bar_option(capsys):
    report = check_photos([("a.jpg", b"not a photo"), ("b.jpg", b"")], progress=True)
    assert [p.codes for p in report.photos] == [["not_an_image"], ["empty_file"]]
    assert "2/2" in capsys.readouterr().err


def test_no_photos_at_all_is_a_set_error():
    report = check_photos([])
    assert report.photos == []
    assert report.set.codes == ["too_few_photos"]
    assert report.set.problems[0].severity == "error"
    assert not report.ok


# ------------------------------------------------------------------------------------------------
# Set checks
# ------------------------------------------------------------------------------------------------


def test_different_person_among_the_photos_is_singled_out(real_report, extra_reports):
    photos = fresh(*real_report.photos, extra_reports["biden"])
    result = check_set(photos, encoder="dlib")
    biden = photos[-1]
    assert "different_person" in biden.codes and not biden.ok
    assert biden.metrics["identity_similarity"] < 0.9
    for obama in photos[:-1]:
        assert "different_person" not in obama.codes
        assert obama.metrics["identity_similarity"] > 0.9
    assert "different_person" in result.codes
    assert result.metrics["identity_outliers"] == [biden.path]
    assert result.metrics["usable"] == 3
    # A second run replaces the verdict instead of stacking it.
    check_set(photos, encoder="dlib")
    assert biden.codes.count("different_person") == 1


def test_two_people_and_no_majority_blocks_every_photo(real_report, extra_reports):
    photos = fresh(real_report.photos[0], extra_reports["biden"])
    result = check_set(photos, encoder="dlib")
    assert "different_person" in result.codes and not result.ok
    assert result.metrics["identity_ambiguous"] is True
    # nobody can tell which one is "you": no photo may be trained on or retouched
    assert all("different_person" in p.codes and not p.ok for p in photos)
    assert "can't tell which one is you" in photos[0].problems[0].message
    check_set(photos, encoder="dlib")  # idempotent
    assert all(p.codes.count("different_person") == 1 for p in photos)


def test_identity_check_is_skipped_for_an_encoder_without_a_measured_threshold(real_report, extra_reports):
    photos = fresh(*real_report.photos, extra_reports["biden"])
    result = check_set(photos, encoder="some-new-encoder")
    assert "different_person" not in result.codes
    assert "skipped" in result.metrics["identity_check"]
    # …unless a threshold is given.
    result = check_set(photos, {"same_person_min_cosine": 0.9}, encoder="some-new-encoder")
    assert "different_person" in result.codes


def test_near_duplicate(real_report, extra_reports):
    photos = fresh(*real_report.photos, extra_reports["obama_reencoded"])
    result = check_set(photos, encoder="dlib")
    assert "near_duplicate" in result.codes
    (pair,) = result.metrics["near_duplicates"]
    assert pair[:2] == [photos[0].path, "obama-copy.jpg"]
    assert pair[2] <= CaptureThresholds().max_duplicate_distance
    # The three distinct photos are not duplicates of one another.
    assert real_report.set.metrics["near_duplicates"] == []


def test_low_pose_and_lighting_variety(extra_reports, real_report):
    same_shot = fresh(*(extra_reports[f"crop{i}"] for i in range(5)))
    result = check_set(same_shot, encoder="dlib")
    assert {"low_pose_variety", "low_lighting_variety"} <= set(result.codes)
    assert result.metrics["pose_spread"] < 2.0 and result.metrics["lighting_spread"] < 1.0

    varied = fresh(*real_report.photos, extra_reports["obama2_flipped"], extra_reports["obama3_flipped"])
    result = check_set(varied, encoder="dlib")
    assert "low_pose_variety" not in result.codes and "low_lighting_variety" not in result.codes
    assert result.metrics["pose_spread"] > CaptureThresholds().min_pose_spread
    # With fewer photos than variety_min_photos, variety is not judged at all.
    assert "low_pose_variety" not in check_set(same_shot[:4], encoder="dlib").codes


def test_too_many_photos_with_overridden_limits(real_report):
    result = check_set(fresh(*real_report.photos), {"recommended_photos": 1, "max_photos": 2}, encoder="dlib")
    assert result.codes == ["too_many_photos"] and result.ok
    result = check_set(fresh(*real_report.photos), {"recommended_photos": 3}, encoder="dlib")
    assert result.codes == []


# ------------------------------------------------------------------------------------------------
# Contract: JSON shape, thresholds, inputs
# ------------------------------------------------------------------------------------------------


def test_to_dict_json_shape(altered_report):
    payload = json.loads(json.dumps(altered_report.to_dict()))  # JSON-native values only
    assert set(payload) == {"photos", "set"}
    assert len(payload["photos"]) == len(EXPECTED)
    for photo in payload["photos"]:
        assert {"path", "ok", "faces", "problems", "box", "hash", "width", "height"} <= set(photo)
        assert isinstance(photo["ok"], bool) and isinstance(photo["faces"], int)
        assert "embedding" not in photo
        for problem in photo["problems"]:
            assert set(problem) == {"code", "message", "fix", "severity"}
    face_photo = next(p for p in payload["photos"] if p["path"] == "blurred")
    for key in ("face_px", "face_fraction", "sharpness", "face_highlight_clip", "image_luma_p99", "cast_chroma"):
        assert isinstance(face_photo[key], int | float), key
    for key in ("yaw", "pitch", "roll", "mouth_openness"):
        assert isinstance(face_photo[key], float), key
    assert len(face_photo["eye_openness"]) == 2 and len(face_photo["box"]) == 4
    assert {"ok", "problems", "count", "usable", "near_duplicates", "pose_spread", "lighting_spread"} <= set(
        payload["set"]
    )


def test_thresholds_are_overridable(real_report, altered_report):
    obama = real_report.photos[0]
    strict = CaptureThresholds(min_face_px=5000)
    assert "face_too_small" in [p.code for p in photo_problems(obama.metrics, strict)]
    blurred = by_name(altered_report, "blurred")
    assert "blurry" not in [p.code for p in photo_problems(blurred.metrics, CaptureThresholds(min_sharpness=0.0))]
    assert CaptureThresholds().with_overrides(max_roll=45.0).max_roll == 45.0
    rolled = by_name(altered_report, "rolled")
    assert "head_turned" not in [p.code for p in photo_problems(rolled.metrics, CaptureThresholds(max_roll=45.0))]
    with pytest.raises(HeadshotLabError) as info:
        check_photos([], thresholds={"no_such_limit": 1})
    assert info.value.code == "bad_option"


def test_thresholds_reach_the_analysis(real):
    photo = analyze_photo(real["obama"], name="obama", thresholds={"min_face_px": 5000, "max_mouth_openness": 0.01})
    assert {"face_too_small", "expression"} <= set(photo.codes)


def test_inputs_photo_objects_mappings_and_pil(real_photos, real):
    from headshot_lab.io import load_photo

    photo = load_photo(real_photos["obama2"])
    report = check_photos({"mine": Image.fromarray(real["obama"]), "other": photo})
    assert [p.path for p in report.photos] == ["mine", "other"]
    assert all(p.faces == 1 for p in report.photos)
    assert check_photos(photo).photos[0].path == photo.name


def test_problem_and_report_types():
    problem = Problem("blurry", "msg", "fix", "warning")
    assert problem.to_dict() == {"code": "blurry", "message": "msg", "fix": "fix", "severity": "warning"}
    report = PhotoReport(path="x", ok=True)
    report.add(Problem("a", "m", "f", "warning"))
    assert report.ok
    report.add(Problem("b", "m", "f", "error"))
    assert not report.ok and report.codes == ["b", "a"]  # errors first
    report.discard("b")
    assert report.ok and report.codes == ["a"]


def test_skin_option_measures_the_tone_on_the_checklists_own_pass(real_photos, load_real):
    from headshot_lab.skin import measure_skin

    names = ("obama", "biden")
    plain = check_photos([real_photos[n] for n in names])
    with_skin = check_photos([real_photos[n] for n in names], skin=True)
    assert all(photo.skin is None and "skin" not in photo.to_dict() for photo in plain.photos)
    # The same checklist otherwise: the option only adds the tone.
    assert [p.to_dict() for p in plain.photos] == [
        {k: v for k, v in p.to_dict().items() if k != "skin"} for p in with_skin.photos
    ]
    tones = {}
    for name, photo in zip(names, with_skin.photos, strict=True):
        assert photo.skin is not None and photo.to_dict()["skin"]["ita"] == pytest.approx(
            photo.skin.ita, abs=0.05
        )  # rounded
        # Measured on the analysis copy: close to a full-resolution measurement of the same photo.
        assert photo.skin.ita == pytest.approx(measure_skin(load_real(name)).ita, abs=3.0)
        tones[name] = photo.skin.ita
    assert tones["obama"] > tones["biden"] + 20  # the two people's tones are told apart, the right way round
