"""Skin mask, ITA°, ITA groups, Monk scale, ΔE2000 and synthetic tone shifts."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from headshot_lab import skin
from headshot_lab.errors import FaceNotFoundError, HeadshotLabError
from headshot_lab.faces import mesh as fm
from headshot_lab.faces.mesh import face_mesh

SHIFTS = (-10.0, -6.0, -3.0, 3.0, 6.0, 10.0)
SHIFT_PHOTOS = ("obama", "biden", "astronaut")


@pytest.fixture(scope="module")
def meshed(load_real):
    """``meshed(name) -> (image, FaceMesh)``, cached per module."""
    cache: dict = {}

    def _get(name: str):
        if name not in cache:
            image = load_real(name)
            (found,) = face_mesh(image)
            cache[name] = (image, found)
        return cache[name]

    return _get


def _hex_rgb(code: str) -> np.ndarray:
    return np.array([int(code[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.uint8)


def _colour_science_lab(rgb_uint8: np.ndarray) -> np.ndarray:
    """Lab (D65, 2°) from colour-science: an independent implementation of the conversion."""
    import colour

    d65 = colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D65"]
    return colour.XYZ_to_Lab(colour.sRGB_to_XYZ(rgb_uint8 / 255.0), d65)


def _expose(image: np.ndarray, factor: float) -> np.ndarray:
    """Multiply linear-light sRGB by ``factor`` (an exposure change), re-encode to uint8."""
    import colour

    linear = colour.models.eotf_sRGB(image / 255.0) * factor
    encoded = colour.models.eotf_inverse_sRGB(np.clip(linear, 0.0, 1.0))
    return np.clip(np.round(encoded * 255.0), 0, 255).astype(np.uint8)


# ---- ITA and groups ------------------------------------------------------------------------------


@given(st.floats(0.0, 100.0), st.floats(0.01, 120.0))
def test_ita_is_the_literature_formula_for_positive_b(lightness, b_star):
    expected = math.degrees(math.atan((lightness - 50.0) / b_star))
    assert skin.ita_from_lab(lightness, b_star) == pytest.approx(expected, abs=1e-9)


def test_ita_for_non_positive_b_continues_past_90_degrees():
    """b* ≤ 0 is not clipped: the angle goes on past ±90° (atan2), continuously across b* = 0."""
    assert skin.ita_from_lab(70.0, 0.0) == 90.0 and skin.ita_from_lab(30.0, 0.0) == -90.0
    # L* − 50 = 20, b* = −20: 135°, not the clipped 90° (and not arctan's wrap to −45°).
    assert skin.ita_from_lab(70.0, -20.0) == pytest.approx(135.0)
    assert skin.ita_from_lab(30.0, -20.0) == pytest.approx(-135.0)
    assert skin.ita_from_lab(70.0, 1e-9) == pytest.approx(90.0) and skin.ita_from_lab(70.0, -1e-9) == pytest.approx(
        90.0
    )
    values = skin.ita_from_lab(np.array([60.0, 40.0]), np.array([10.0, -10.0]))
    np.testing.assert_allclose(values, [45.0, -135.0])
    assert skin.ita_group(135.0) == 1 and skin.ita_group(-135.0) == 6


def test_angle_difference_wraps_across_the_cut():
    assert skin.angle_difference(100.0, 80.0) == pytest.approx(20.0)
    assert skin.angle_difference(-179.0, 179.0) == pytest.approx(2.0)  # across the branch cut at ±180°
    assert skin.angle_difference(179.0, -179.0) == pytest.approx(-2.0)
    assert skin.angle_difference(180.0, -180.0) == pytest.approx(0.0)
    np.testing.assert_allclose(skin.angle_difference(np.array([10.0, 350.0]), 0.0), [10.0, -10.0])


def test_angular_median_straddling_the_cut():
    angles = np.array([170.0, 175.0, 178.0, -178.0, -172.0])
    median, (q25, q75) = skin.angular_median(angles, (25.0, 75.0))
    assert median == pytest.approx(178.0)
    assert q25 == pytest.approx(175.0) and q75 == pytest.approx(-178.0)
    plain = np.array([-20.0, 5.0, 30.0, 31.0])
    assert skin.angular_median(plain)[0] == pytest.approx(np.median(plain))


@pytest.mark.parametrize(
    ("ita", "group", "band"),
    [
        (90.0, 1, "very light"),
        (55.001, 1, "very light"),
        (55.0, 2, "light"),
        (41.001, 2, "light"),
        (41.0, 3, "intermediate"),
        (28.001, 3, "intermediate"),
        (28.0, 4, "tan"),
        (10.001, 4, "tan"),
        (10.0, 5, "brown"),
        (-29.999, 5, "brown"),
        (-30.0, 6, "dark"),
        (-90.0, 6, "dark"),
    ],
)
def test_ita_group_boundaries(ita, group, band):
    assert skin.ita_group(ita) == group
    assert skin.ita_band(ita) == band
    assert skin.ita_group_label(group) == f"ITA group {('I', 'II', 'III', 'IV', 'V', 'VI')[group - 1]}"


def test_ita_group_rejects_nan():
    with pytest.raises(ValueError, match="finite"):
        skin.ita_group(float("nan"))


# ---- ΔE2000 and Monk -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lab1", "lab2", "expected"),
    [  # Sharma, Wu & Dalal (2005), Table 1: pairs 1, 7, 13, 17, 25.
        ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
        ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
        ((50.0, 2.49, -0.001), (50.0, -2.49, 0.0009), 7.1792),
        ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
        ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ],
)
def test_delta_e2000_sharma_reference(lab1, lab2, expected):
    assert skin.delta_e2000(lab1, lab2) == pytest.approx(expected, abs=1e-4)
    assert skin.delta_e2000(lab2, lab1) == pytest.approx(expected, abs=1e-4)


def test_delta_e2000_vectorised():
    labs = np.array([[50.0, 0.0, 0.0], [60.0, 10.0, 20.0]])
    out = skin.delta_e2000(labs, labs[::-1])
    assert out.shape == (2,) and out[0] == pytest.approx(out[1]) and out[0] > 10


@pytest.mark.parametrize("index", range(1, 11))
def test_monk_swatch_patch(index):
    """A flat patch of swatch i measures Monk i, ΔE≈0, and the ITA group its own Lab implies."""
    rgb = _hex_rgb(skin.MONK_HEX[index - 1])
    patch = np.broadcast_to(rgb, (32, 32, 3)).copy()
    tone = skin.measure_skin(patch, mask=np.ones((32, 32), bool))
    assert tone.monk == index
    assert tone.monk_delta_e < 0.05
    L, _, b = _colour_science_lab(rgb)
    expected_ita = math.degrees(math.atan((L - 50.0) / b))
    assert tone.ita == pytest.approx(expected_ita, abs=0.05)
    assert tone.ita_group == skin.ita_group(expected_ita)
    assert tone.ita_iqr[0] == pytest.approx(tone.ita) and tone.ita_iqr[1] == pytest.approx(tone.ita)
    assert tone.skin_pixels == 32 * 32 and tone.mask_fraction == 1.0


def test_monk_lab_matches_colour_science():
    labs = skin.monk_lab()
    assert labs.shape == (10, 3)
    expected = np.array([_colour_science_lab(_hex_rgb(code)) for code in skin.MONK_HEX])
    np.testing.assert_allclose(labs, expected, atol=0.05)
    assert labs[0, 0] > 90 and labs[-1, 0] < 20  # 1 = lightest, 10 = darkest


def test_nearest_monk_between_swatches():
    a, b = skin.monk_lab()[5], skin.monk_lab()[6]
    near_a = a + 0.2 * (b - a)
    index, distance = skin.nearest_monk(near_a)
    assert index == 6
    assert distance == pytest.approx(skin.delta_e2000(near_a, a))
    assert distance < skin.delta_e2000(near_a, b)


# ---- skin mask -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["obama", "biden", "astronaut"])
def test_mask_avoids_features_and_has_a_sensible_size(meshed, name):
    import cv2

    image, mesh = meshed(name)
    mask = skin.skin_mask(image, mesh)
    assert mask.dtype == bool and mask.shape == image.shape[:2]

    def inside(indices) -> np.ndarray:
        pts = np.round(mesh.points[list(indices)]).astype(int)
        return mask[pts[:, 1], pts[:, 0]]

    for region in (fm.LEFT_EYE, fm.RIGHT_EYE, fm.LEFT_IRIS, fm.RIGHT_IRIS, fm.LEFT_BROW, fm.RIGHT_BROW, fm.LIPS):
        assert not inside(region).any()
    assert not inside(fm.LIPS_INNER).any() and not inside(fm.NOSTRILS).any()

    oval = np.zeros(mask.shape, np.uint8)
    cv2.fillPoly(oval, [np.round(mesh.points[list(fm.FACE_OVAL)]).astype(np.int32)], 1)
    assert not (mask & ~oval.astype(bool)).any(), "skin outside the face oval"
    fraction = mask.sum() / oval.sum()
    assert 0.3 < fraction < 0.75, fraction
    # Cheeks are in: the points halfway between each eye and its mouth corner.
    for eye, corner in ((fm.LEFT_IRIS_CENTER, fm.MOUTH_LEFT), (fm.RIGHT_IRIS_CENTER, fm.MOUTH_RIGHT)):
        x, y = np.round((mesh.points[eye] + mesh.points[corner]) / 2).astype(int)
        assert mask[y, x]


def test_photometric_exclusions_trim_the_tails(meshed):
    image, mesh = meshed("obama")
    full = skin.skin_mask(image, mesh, exclude_extremes=False)
    trimmed = skin.skin_mask(image, mesh)
    assert not (trimmed & ~full).any()
    assert 0.85 < trimmed.sum() / full.sum() < 0.95
    lightness = skin.rgb_to_lab(image[full])[:, 0]
    kept = skin.rgb_to_lab(image[trimmed])[:, 0]
    assert kept.min() >= np.percentile(lightness, skin.SHADOW_PERCENTILE) - 1e-9
    assert kept.max() <= np.percentile(lightness, skin.HIGHLIGHT_PERCENTILE) + 1e-9


def test_mask_computes_the_mesh_itself(meshed):
    image, mesh = meshed("astronaut")
    np.testing.assert_array_equal(skin.skin_mask(image), skin.skin_mask(image, mesh))


# ---- measurement and errors ----------------------------------------------------------------------


def test_measure_real_face(meshed):
    image, mesh = meshed("astronaut")
    tone = skin.measure_skin(image, mesh=mesh)
    assert tone.ita_iqr[0] < tone.ita < tone.ita_iqr[1]
    assert tone.ita_group == skin.ita_group(tone.ita) and tone.ita_band == skin.ita_band(tone.ita)
    assert (tone.monk, tone.monk_delta_e) == pytest.approx(skin.nearest_monk(tone.lab))
    assert tone.skin_pixels == int(skin.skin_mask(image, mesh).sum())
    assert tone.mask_fraction == pytest.approx(tone.skin_pixels / (image.shape[0] * image.shape[1]))
    assert 15 < tone.lab[2] < 35 and 0 < tone.lab[1] < 30  # skin is yellowish-red
    data = json.loads(json.dumps(tone.to_dict()))
    assert data["ita_group_label"] == tone.ita_group_label and data["skin_pixels"] == tone.skin_pixels


def test_no_face_is_a_clear_error():
    gradient = np.tile(np.linspace(0, 255, 640, dtype=np.uint8)[None, :, None], (480, 1, 3))
    assert not skin.skin_mask(gradient).any()
    with pytest.raises(FaceNotFoundError) as info:
        skin.measure_skin(gradient)
    assert info.value.code == "no_face" and "face" in info.value.message and info.value.fix


def test_tiny_mask_is_no_skin(meshed):
    image, _ = meshed("obama")
    mask = np.zeros(image.shape[:2], bool)
    mask[:10, :10] = True
    with pytest.raises(HeadshotLabError) as info:
        skin.measure_skin(image, mask)
    assert info.value.code == "no_skin" and "100" in info.value.message and info.value.fix
    assert isinstance(info.value, FaceNotFoundError)


def test_black_and_white_photo_is_no_colour(meshed):
    image, mesh = meshed("obama")
    grey = np.repeat(image.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
    with pytest.raises(HeadshotLabError) as info:
        skin.measure_skin(grey, mesh=mesh)
    assert info.value.code == "no_colour" and info.value.fix


def test_mask_shape_mismatch(meshed):
    image, _ = meshed("obama")
    with pytest.raises(ValueError, match="shape"):
        skin.measure_skin(image, np.ones((10, 10), bool))


# ---- synthetic tone shifts -----------------------------------------------------------------------


@pytest.mark.parametrize("name", SHIFT_PHOTOS)
def test_known_shifts_are_recovered(meshed, name):
    """Shift the skin by δ, then measure the shifted photo from scratch (new mesh, new mask)."""
    image, mesh = meshed(name)
    reference = skin.measure_skin(image, mesh=mesh)
    region = skin.skin_mask(image, mesh, exclude_extremes=False)
    for delta in SHIFTS:
        shifted = skin.shift_ita(image, region, delta)
        same_mask = skin.delta_ita(reference, skin.measure_skin(shifted, skin.skin_mask(image, mesh)))
        remeasured = skin.delta_ita(reference, skin.measure_skin(shifted))
        assert same_mask == pytest.approx(delta, abs=0.5), (name, delta)
        assert remeasured == pytest.approx(delta, abs=1.0), (name, delta)


def test_shift_touches_only_the_mask_and_keeps_redness(meshed):
    image, mesh = meshed("obama")
    mask = skin.skin_mask(image, mesh)
    darker = skin.shift_ita(image, mask, -10.0)
    np.testing.assert_array_equal(darker[~mask], image[~mask])
    assert (darker[mask] != image[mask]).any(axis=1).mean() > 0.9
    before, after = skin.rgb_to_lab(image[mask]), skin.rgb_to_lab(darker[mask])
    assert np.median(after[:, 1]) == pytest.approx(np.median(before[:, 1]), abs=1.5)
    assert np.median(after[:, 0]) < np.median(before[:, 0])  # darker = lower L*
    np.testing.assert_array_equal(skin.shift_ita(image, mask, 0.0), image)


def test_shift_with_soft_weights_blends(meshed):
    image, mesh = meshed("astronaut")
    mask = skin.skin_mask(image, mesh)
    reference = skin.measure_skin(image, mask)
    full = skin.measure_skin(skin.shift_ita(image, mask, 8.0), mask)
    half = skin.measure_skin(skin.shift_ita(image, mask.astype(np.float32) * 0.5, 8.0), mask)
    assert 0.25 < skin.delta_ita(reference, half) / skin.delta_ita(reference, full) < 0.75


def test_shift_signs_for_delta_ita_and_monk(meshed):
    image, mesh = meshed("biden")
    mask = skin.skin_mask(image, mesh)
    reference = skin.measure_skin(image, mask)
    lighter = skin.measure_skin(skin.shift_ita(image, mask, 25.0), mask)
    darker = skin.measure_skin(skin.shift_ita(image, mask, -25.0), mask)
    assert skin.delta_ita(reference, lighter) > 20 and skin.delta_ita(reference, darker) < -20
    assert skin.monk_shift(reference, lighter) <= 0 <= skin.monk_shift(reference, darker)
    assert skin.monk_shift(reference, darker) - skin.monk_shift(reference, lighter) >= 1


def test_exposure_moves_ita_in_its_direction(meshed):
    """Brighter exposure reads lighter, darker reads darker (how much: see the module report)."""
    image, mesh = meshed("obama")
    mask = skin.skin_mask(image, mesh)
    reference = skin.measure_skin(image, mask)
    assert skin.delta_ita(reference, skin.measure_skin(_expose(image, 1.2), mask)) > 1.0
    assert skin.delta_ita(reference, skin.measure_skin(_expose(image, 0.8), mask)) < -1.0
