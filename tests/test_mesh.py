"""Face mesh, head pose, eye/mouth openness and selfie segmentation on real photos (mediapipe, offline)."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from headshot_lab.faces import mesh as fm
from headshot_lab.faces.base import LANDMARK5_NAMES
from headshot_lab.faces.mesh import FaceMesh, eye_openness, face_mesh, head_pose, mouth_openness, selfie_mask


@pytest.fixture(scope="module")
def meshed(load_real):
    """``meshed(name) -> (image, FaceMesh)``, cached per module."""
    cache: dict[str, tuple[np.ndarray, FaceMesh]] = {}

    def _get(name: str) -> tuple[np.ndarray, FaceMesh]:
        if name not in cache:
            image = load_real(name)
            found = face_mesh(image)
            assert found, f"no face mesh on {name}"
            cache[name] = (image, found[0])
        return cache[name]

    return _get


def _rotate(image: np.ndarray, degrees_clockwise: float) -> np.ndarray:
    """Rotate about the centre, clockwise on screen (cv2's positive angle is counter-clockwise)."""
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2.0, height / 2.0), -degrees_clockwise, 1.0)
    return cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REFLECT)


# ---- region constants -------------------------------------------------------------------------


def _edges(connections) -> set[frozenset[int]]:
    return {frozenset(edge) for edge in connections}


def _loop_edges(loop: tuple[int, ...]) -> set[frozenset[int]]:
    return {frozenset((a, b)) for a, b in zip(loop, loop[1:] + loop[:1], strict=True)}


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ("FACE_OVAL", "FACEMESH_FACE_OVAL"),
        ("LEFT_EYE", "FACEMESH_RIGHT_EYE"),  # image-left = the subject's right
        ("RIGHT_EYE", "FACEMESH_LEFT_EYE"),
        ("LEFT_IRIS", "FACEMESH_RIGHT_IRIS"),
        ("RIGHT_IRIS", "FACEMESH_LEFT_IRIS"),
    ],
)
def test_closed_contours_walk_mediapipe_connections(ours, theirs):
    from mediapipe.python.solutions import face_mesh_connections

    loop = getattr(fm, ours)
    assert len(set(loop)) == len(loop)
    assert _loop_edges(loop) == _edges(getattr(face_mesh_connections, theirs))


def test_lips_brows_are_mediapipe_sets():
    from mediapipe.python.solutions import face_mesh_connections as c

    assert _loop_edges(fm.LIPS) | _loop_edges(fm.LIPS_INNER) == _edges(c.FACEMESH_LIPS)
    assert fm.MOUTH_LEFT in fm.LIPS and fm.UPPER_LIP_INNER in fm.LIPS_INNER
    assert set(fm.LEFT_BROW) == {i for e in c.FACEMESH_RIGHT_EYEBROW for i in e}
    assert set(fm.RIGHT_BROW) == {i for e in c.FACEMESH_LEFT_EYEBROW for i in e}


# ---- face_mesh -------------------------------------------------------------------------------


def test_mesh_on_real_face(meshed):
    image, mesh = meshed("obama")
    height, width = image.shape[:2]
    assert mesh.points.shape == (fm.NUM_POINTS, 2) == (478, 2)
    assert mesh.points3d.shape == (478, 3)
    np.testing.assert_allclose(mesh.points3d[:, :2], mesh.points)
    assert mesh.image_shape == (height, width)
    left, top, right, bottom = mesh.box
    assert 0 <= left < right <= width and 0 <= top < bottom <= height
    assert (mesh.points[:, 0] >= left - 1).all() and (mesh.points[:, 0] <= right + 1).all()
    # Image-left naming, anatomy order (eyes above nose above mouth, chin lowest).
    assert mesh.region(fm.LEFT_EYE)[:, 0].mean() < mesh.region(fm.RIGHT_EYE)[:, 0].mean()
    eyes_y = mesh.eye_centers[:, 1].mean()
    assert eyes_y < mesh.points[fm.NOSE_TIP, 1] < mesh.region(fm.LIPS)[:, 1].mean() < mesh.points[fm.CHIN, 1]
    # The inter-ocular distance is a sensible fraction of the face width.
    assert 0.25 < mesh.interocular / (right - left) < 0.6


def test_mesh_as_face(meshed):
    _, mesh = meshed("obama")
    face = mesh.to_face()
    assert face.backend == "mediapipe" and face.box == mesh.box
    assert face.landmarks5.shape == (len(LANDMARK5_NAMES), 2)
    left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks5
    assert left_eye[0] < nose[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])


def test_no_face_gives_empty_list():
    rng = np.random.default_rng(0)
    assert face_mesh(np.full((480, 640, 3), 128, np.uint8)) == []
    assert face_mesh(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)) == []


def test_large_image_points_scale_back(meshed):
    """A 4× upscaled photo (analysed on a downscaled copy) gives the same mesh at 4× the coordinates."""
    image, mesh = meshed("astronaut")  # 512 px: analysed at full size
    big = cv2.resize(image, None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)  # 2048 px: downscaled to 1024
    (big_mesh,) = face_mesh(big)
    assert big_mesh.image_shape == big.shape[:2]
    error = np.linalg.norm(big_mesh.points / 4.0 - mesh.points, axis=1)
    assert np.median(error) < 0.03 * mesh.interocular


def test_max_faces_validated(meshed):
    image, _ = meshed("obama")
    with pytest.raises(ValueError, match="max_faces"):
        face_mesh(image, max_faces=0)


def test_model_is_thread_safe(meshed):
    image, mesh = meshed("astronaut")
    results: list[np.ndarray] = []

    def work():
        results.append(face_mesh(image)[0].points)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4
    for points in results:
        np.testing.assert_allclose(points, mesh.points, atol=1e-3)


# ---- head pose ---------------------------------------------------------------------------------


def test_frontal_pose(meshed):
    _, mesh = meshed("obama")
    pose = head_pose(mesh)
    assert abs(pose.yaw) < 8 and abs(pose.pitch) < 10 and abs(pose.roll) < 5
    assert set(pose.to_dict()) == {"yaw", "pitch", "roll"}


def test_flip_reverses_yaw_and_roll(meshed):
    image, mesh = meshed("obama2")  # turned clearly towards one side
    pose = head_pose(mesh, image.shape)
    (flipped_mesh,) = face_mesh(np.ascontiguousarray(image[:, ::-1]))
    flipped = head_pose(flipped_mesh)
    assert abs(pose.yaw) > 8
    assert np.sign(flipped.yaw) == -np.sign(pose.yaw)
    assert abs(pose.yaw + flipped.yaw) < 5
    assert abs(pose.roll + flipped.roll) < 3
    assert abs(pose.pitch - flipped.pitch) < 3


@pytest.mark.parametrize("name", ["obama2", "biden"])
def test_yaw_sign_follows_the_nose(meshed, name):
    """Positive yaw = turned towards the image's right = nose tip right of the eye-corner midpoint."""
    _, mesh = meshed(name)
    middle = (mesh.points[fm.LEFT_EYE_OUTER, 0] + mesh.points[fm.RIGHT_EYE_OUTER, 0]) / 2.0
    assert np.sign(head_pose(mesh).yaw) == np.sign(mesh.points[fm.NOSE_TIP, 0] - middle)


@pytest.mark.parametrize("angle", [15.0, -15.0])
def test_rotation_is_roll(meshed, angle):
    image, mesh = meshed("obama")
    before = head_pose(mesh)
    (rotated,) = face_mesh(_rotate(image, angle))
    after = head_pose(rotated)
    assert after.roll - before.roll == pytest.approx(angle, abs=4.0)
    assert abs(after.yaw - before.yaw) < 5 and abs(after.pitch - before.pitch) < 5


def test_head_pose_needs_3d_points():
    with pytest.raises(ValueError, match="3D"):
        head_pose(np.zeros((478, 2)))


# ---- openness ----------------------------------------------------------------------------------


def _synthetic_mesh(eye_height: float, lip_gap: float) -> FaceMesh:
    """All points at the origin except the eye/mouth points, laid out with known geometry."""
    points = np.zeros((478, 2))
    for ear, x0 in ((fm.LEFT_EYE_EAR, 0.0), (fm.RIGHT_EYE_EAR, 100.0)):
        p1, p2, p3, p4, p5, p6 = ear
        points[p1], points[p4] = (x0, 0.0), (x0 + 30.0, 0.0)
        points[p2], points[p6] = (x0 + 10.0, -eye_height / 2), (x0 + 10.0, eye_height / 2)
        points[p3], points[p5] = (x0 + 20.0, -eye_height / 2), (x0 + 20.0, eye_height / 2)
    points[fm.MOUTH_LEFT], points[fm.MOUTH_RIGHT] = (20.0, 80.0), (80.0, 80.0)
    points[fm.UPPER_LIP_INNER], points[fm.LOWER_LIP_INNER] = (50.0, 80.0 - lip_gap / 2), (50.0, 80.0 + lip_gap / 2)
    points3d = np.concatenate([points, np.zeros((478, 1))], axis=1)
    return FaceMesh(points=points, points3d=points3d, box=(0, 0, 130, 100), image_shape=(200, 200))


def test_openness_formulas():
    open_mesh = _synthetic_mesh(eye_height=9.0, lip_gap=30.0)
    assert eye_openness(open_mesh) == pytest.approx((0.3, 0.3))  # 2·9 / (2·30)
    assert mouth_openness(open_mesh) == pytest.approx(0.5)  # 30 / 60
    closed = _synthetic_mesh(eye_height=0.0, lip_gap=0.0)
    assert eye_openness(closed) == (0.0, 0.0) and mouth_openness(closed) == 0.0


def test_openness_on_real_faces(meshed):
    for name in ("obama", "obama2", "biden", "astronaut"):
        left, right = eye_openness(meshed(name)[1])
        assert 0.15 < left < 0.45 and 0.15 < right < 0.45, name
    assert mouth_openness(meshed("obama2")[1]) > 0.25  # speaking
    assert mouth_openness(meshed("biden")[1]) < 0.05  # lips closed


def test_openness_is_scale_invariant(meshed):
    image, mesh = meshed("obama2")
    (small,) = face_mesh(cv2.resize(image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))
    assert eye_openness(small) == pytest.approx(eye_openness(mesh), abs=0.04)
    assert mouth_openness(small) == pytest.approx(mouth_openness(mesh), abs=0.04)


# ---- selfie segmentation -----------------------------------------------------------------------


def test_selfie_mask_on_astronaut(meshed):
    image, mesh = meshed("astronaut")
    mask = selfie_mask(image)
    assert mask.dtype == np.float32 and mask.shape == image.shape[:2]
    assert mask.min() >= 0.0 and mask.max() <= 1.0
    left, top, right, bottom = mesh.box
    assert mask[top:bottom, left:right].mean() > 0.8
    corner = 48
    assert mask[:corner, :corner].mean() < 0.1 and mask[:corner, -corner:].mean() < 0.1  # background


def test_selfie_mask_full_resolution_for_large_images(meshed):
    image, _ = meshed("astronaut")
    big = cv2.resize(image, None, fx=2.5, fy=2.5, interpolation=cv2.INTER_LINEAR)
    small_mask, big_mask = selfie_mask(image), selfie_mask(big)
    assert big_mask.shape == big.shape[:2]
    back = cv2.resize(big_mask, image.shape[1::-1], interpolation=cv2.INTER_AREA)
    assert np.mean(np.abs(back - small_mask)) < 0.05
