"""Property-based tests (hypothesis) for crop geometry, colour maths and the audit's metrics.

Each property is one that a plausible bug breaks (an off-by-one in a crop, a swapped axis, a
stretched frame, a cosine that leaves [−1, 1], an interval that depends on the order of the rows).
Example-based tests of the same modules live in ``test_export.py``, ``test_faces.py``,
``test_skin.py``, ``test_audit_*.py``; nothing here repeats them.

The examples are derandomized and no example database is written, so every run (CI included) sees
the same examples: the profile :data:`PROFILE` is registered here and applied per test, never
loaded globally (loading it would change the settings of other test files).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from headshot_lab import skin
from headshot_lab.audit.detectability import auroc_with_ci
from headshot_lab.audit.fairness import between_groups, estimate, grouped_metric
from headshot_lab.audit.identity import copy_paste_ratio, cosine_to_reference, pose_diversity, reference_centroid
from headshot_lab.capture import downscale, face_sharpness
from headshot_lab.errors import HeadshotLabError
from headshot_lab.export import CROPS, ExportError, FaceGeometry, circle_alpha, plan_crop, render_crop
from headshot_lab.faces.align import ARCFACE_TEMPLATE_112, align_face, clip_box, similarity_transform, transform_points
from headshot_lab.faces.base import Face, l2_normalize, similarity
from headshot_lab.retouch import NEUTRAL_CHROMA, even_light, neutral_white_balance

settings.register_profile(
    "headshot-lab-properties",
    derandomize=True,  # the same examples on every run and machine
    database=None,  # nothing written to .hypothesis/
    deadline=None,  # wall-clock is noisy on a shared CPU; never a failure reason
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
)
PROFILE = settings.get_profile("headshot-lab-properties")


def examples(n: int) -> settings:
    """The file's profile with ``n`` examples."""
    return settings(PROFILE, max_examples=n)


FRAMED_CROPS = tuple(name for name, spec in CROPS.items() if spec.size is not None)

# ---- strategies ----------------------------------------------------------------------------------

sides = st.integers(1, 8000)
shapes = st.tuples(sides, sides)


@st.composite
def face_boxes(draw, shape: tuple[int, int], *, min_side: float = 0.0, face_like: bool = False) -> Face:
    """A detector box anywhere around a ``shape`` photo (inside, partly or wholly outside, zero-area)."""
    height, width = shape
    w = draw(st.floats(min_side, 1.2 * max(width, height, 1)))
    h = (
        max(min_side, w * draw(st.floats(0.7, 1.4)))
        if face_like
        else draw(st.floats(min_side, 1.2 * max(width, height, 1)))
    )
    left = draw(st.floats(-w - 0.5 * width, 1.5 * width))
    top = draw(st.floats(-h - 0.5 * height, 1.5 * height))
    return Face(box=(left, top, left + w, top + h))  # type: ignore[arg-type]


def _similarity_matrix(angle_deg: float, scale: float) -> np.ndarray:
    angle = math.radians(angle_deg)
    return scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])


def _contains(outer: tuple[float, ...], inner: tuple[float, ...], tol: float) -> bool:
    return (
        outer[0] <= inner[0] + tol
        and outer[1] <= inner[1] + tol
        and outer[2] >= inner[2] - tol
        and outer[3] >= inner[3] - tol
    )


# ================================================================================================
# Crops and geometry
# ================================================================================================


@examples(150)
@given(shape=shapes, crop=st.sampled_from(tuple(CROPS)), data=st.data())
def test_every_plan_has_the_requested_shape_and_one_uniform_scale(shape, crop, data):
    """Any photo size, any face box (or none): a non-empty frame of the output's aspect ratio."""
    face = data.draw(st.none() | face_boxes(shape))
    spec = CROPS[crop]
    plan = plan_crop(shape, crop, face)
    left, top, right, bottom = plan.rect
    width, height = right - left, bottom - top
    assert all(math.isfinite(v) for v in plan.rect)
    assert width > 0 and height > 0
    assert 0.0 <= plan.extended <= 1.0  # 1 = a face wholly outside the photo (render refuses it)
    if spec.size is None:  # hi-res: the whole photo at its own resolution
        assert plan.rect == (0.0, 0.0, float(shape[1]), float(shape[0])) and plan.out_size == (shape[1], shape[0])
        return
    out_w, out_h = spec.size
    assert plan.out_size == spec.size
    assert abs(width - height * out_w / out_h) <= 1e-6 * max(width, 1.0)  # same aspect: nothing stretched
    assert plan.scale * width == pytest.approx(out_w, rel=1e-9)  # one scale for both axes
    assert plan.scale * height == pytest.approx(out_h, rel=1e-9)
    if plan.fallback:  # no (usable) face: the largest centred frame, inside the photo
        assert _contains((0.0, 0.0, float(shape[1]), float(shape[0])), plan.rect, 1e-6 * max(shape))
        assert width == pytest.approx(shape[1]) or height == pytest.approx(shape[0])
        assert (left + right) / 2 == pytest.approx(shape[1] / 2) and (top + bottom) / 2 == pytest.approx(shape[0] / 2)
        assert plan.extended == pytest.approx(0.0, abs=1e-9)
    else:
        # The frame moved at most max_shift and zoomed at most max_zoom away from what was asked.
        assert abs(plan.eye_line - spec.eye_line) <= spec.max_shift + 1e-9
        assert abs(plan.center_x - spec.center_x) <= spec.max_shift + 1e-9
        assert spec.face_height * (1 - 1e-9) <= plan.face_height <= spec.face_height * spec.max_zoom * (1 + 1e-9)
    inside = _contains((0.0, 0.0, float(shape[1]), float(shape[0])), plan.rect, 1e-6 * max(shape))
    if inside:
        assert plan.extended == pytest.approx(0.0, abs=1e-6)
    if plan.extended < 1e-9:
        assert _contains((0.0, 0.0, float(shape[1]), float(shape[0])), plan.rect, 1e-6 * max(width, height, *shape))


@examples(120)
@given(shape=shapes, crop=st.sampled_from(FRAMED_CROPS), data=st.data())
def test_a_face_shaped_box_is_always_inside_its_frame(shape, crop, data):
    """The frame holds the whole face box (extended backdrop included), wherever the face is."""
    face = data.draw(face_boxes(shape, min_side=1.0, face_like=True))
    plan = plan_crop(shape, crop, face)
    assert not plan.fallback
    assert _contains(plan.rect, tuple(float(v) for v in face.box), 1e-6 * max(shape))


@examples(100)
@given(
    shape=shapes, crop=st.sampled_from(FRAMED_CROPS), fill=st.floats(0.05, 1.0), at=st.tuples(*[st.floats(0, 1)] * 2)
)
def test_the_face_lands_exactly_where_asked_whenever_the_frame_fits(shape, crop, fill, at):
    """A face whose asked-for frame lies inside the photo: no slide, no zoom, nothing extended."""
    spec = CROPS[crop]
    height, width = shape
    aspect = spec.size[0] / spec.size[1]
    crop_h = fill * min(height, width / aspect)  # a frame that fits, placed anywhere it fits
    crop_w = crop_h * aspect
    left, top = at[0] * (width - crop_w), at[1] * (height - crop_h)
    size = spec.face_height * crop_h
    assume(size >= 1.0)  # a face under one pixel is no face (centred fallback)
    eye_y, axis_x = top + spec.eye_line * crop_h, left + spec.center_x * crop_w
    geometry = FaceGeometry(eyes=(axis_x, eye_y), center_x=axis_x, size=size, roll=0.0, from_landmarks=True)
    plan = plan_crop(shape, crop, geometry)
    assert plan.eye_line == pytest.approx(spec.eye_line)
    assert plan.center_x == pytest.approx(spec.center_x)
    assert plan.face_height == pytest.approx(spec.face_height)
    assert plan.extended == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(plan.rect, (left, top, left + crop_w, top + crop_h), rtol=1e-9, atol=1e-9)
    assert not any("extended" in note or "Zoomed" in note for note in plan.notes)


@examples(60)
@given(
    shape=st.tuples(st.integers(16, 2000), st.integers(16, 2000)), factor=st.integers(2, 4),
    crop=st.sampled_from(FRAMED_CROPS), data=st.data(),
)  # fmt: skip
def test_plans_scale_with_the_photo(shape, factor, crop, data):
    """Framing is resolution-independent: k× the photo and the face gives k× the frame."""
    face = data.draw(face_boxes(shape, min_side=1.0, face_like=True))
    geometry = FaceGeometry.from_face(face)
    bigger = FaceGeometry(
        eyes=(geometry.eyes[0] * factor, geometry.eyes[1] * factor),
        center_x=geometry.center_x * factor,
        size=geometry.size * factor,
        roll=geometry.roll,
        from_landmarks=geometry.from_landmarks,
    )
    small = plan_crop(shape, crop, geometry)
    large = plan_crop((shape[0] * factor, shape[1] * factor), crop, bigger)
    np.testing.assert_allclose(np.array(large.rect), factor * np.array(small.rect), rtol=1e-9, atol=1e-6)
    assert large.extended == pytest.approx(small.extended, abs=1e-9)


@examples(20)
@given(
    shape=st.tuples(st.integers(1, 48), st.integers(1, 48)), crop=st.sampled_from(tuple(CROPS)),
    seed=st.integers(0, 2**16), data=st.data(),
)  # fmt: skip
def test_render_gives_the_requested_size_for_tiny_and_odd_photos(shape, crop, seed, data):
    """1×1 … 48×48 photos, any face whose centre is in the photo: the output always has the target size."""
    height, width = shape
    face = data.draw(
        st.none()
        | st.builds(
            lambda cx, cy, side: Face(box=(cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)),
            st.floats(0, width),
            st.floats(0, height),
            st.floats(2.0, 2.0 * max(shape)),
        )
    )
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    spec = CROPS[crop]
    plan = plan_crop(pixels.shape, spec, face)
    out = render_crop(pixels, plan, transparent_circle=spec.circle)
    expected_w, expected_h = spec.size or (width, height)
    assert out.shape == (expected_h, expected_w, 4 if spec.circle else 3) and out.dtype == np.uint8
    if spec.size is None:
        np.testing.assert_array_equal(out, pixels)


@examples(30)
@given(
    shape=st.tuples(st.integers(1, 6), st.integers(1, 6)) | st.tuples(st.integers(1, 3), st.integers(1, 3000)),
    crop=st.sampled_from(FRAMED_CROPS), transpose=st.booleans(),
)  # fmt: skip
def test_the_centred_fallback_renders_on_photos_of_a_few_pixels(shape, crop, transpose):
    """No face on a 1×1 … 6×6 or 1×3000 photo: the frame is inside the photo, however thin, so it renders."""
    height, width = shape[::-1] if transpose else shape
    pixels = np.full((height, width, 3), 90, np.uint8)
    plan = plan_crop(pixels.shape, crop, None)
    out = render_crop(pixels, plan)
    assert out.shape == (CROPS[crop].size[1], CROPS[crop].size[0], 3)
    assert np.all(out == 90)  # a flat photo stays flat: only its own pixels, resampled


@examples(20)
@given(corner=st.sampled_from([(-1.0, -1.0), (1.0, -1.0), (-1.0, 1.0), (1.0, 1.0)]), far=st.floats(1.5, 20.0))
def test_a_face_far_outside_the_photo_is_an_export_error_not_a_crash(corner, far):
    shape = (200, 300)
    cx, cy = 150 + corner[0] * far * 300, 100 + corner[1] * far * 200
    face = Face(box=(cx - 20, cy - 20, cx + 20, cy + 20))
    plan = plan_crop(shape, "square", face)
    with pytest.raises(ExportError) as info:
        render_crop(np.zeros((*shape, 3), np.uint8), plan)
    assert info.value.code == "bad_crop"


@examples(40)
@given(width=st.integers(16, 300), height=st.integers(16, 300))
def test_circle_alpha_is_a_symmetric_disk(width, height):
    alpha = circle_alpha((width, height)).astype(int)
    assert alpha.shape == (height, width)
    np.testing.assert_array_equal(alpha, alpha[::-1, :])  # mirror-symmetric both ways
    np.testing.assert_array_equal(alpha, alpha[:, ::-1])
    if width == height:
        np.testing.assert_array_equal(alpha, alpha.T)
    # Pixel (x, y) covers [x, x+1]×[y, y+1]; the circle is centred at (W/2, H/2) with radius min(W, H)/2.
    radius = min(width, height) / 2.0
    ys, xs = np.mgrid[:height, :width].astype(float)
    dx_near = np.maximum(np.maximum(width / 2 - (xs + 1), xs - width / 2), 0.0)
    dy_near = np.maximum(np.maximum(height / 2 - (ys + 1), ys - height / 2), 0.0)
    dx_far = np.maximum(np.abs(xs - width / 2), np.abs(xs + 1 - width / 2))
    dy_far = np.maximum(np.abs(ys - height / 2), np.abs(ys + 1 - height / 2))
    outside = np.hypot(dx_near, dy_near) > radius + 0.5  # wholly outside (half a pixel of rasterisation slack)
    inside = np.hypot(dx_far, dy_far) < radius - 0.5
    assert np.all(alpha[outside] == 0)
    assert np.all(alpha[inside] == 255)
    assert abs(alpha.sum() / 255.0 - math.pi * radius**2) <= 2.0 * math.pi * radius * 0.5  # area within a rim


@examples(80)
@given(
    angle=st.floats(-180.0, 180.0), scale=st.floats(0.05, 40.0),
    shift=st.tuples(st.floats(-5000, 5000), st.floats(-5000, 5000)),
    noise=arrays(np.float64, (5, 2), elements=st.floats(-1.0, 1.0)),
)  # fmt: skip
def test_alignment_recovers_the_template_from_any_similarity_transform(angle, scale, shift, noise):
    """Landmarks = s·R·template + t: the estimated warp maps them back onto the template; the face
    size and roll that place every crop follow s and R."""
    rot = _similarity_matrix(angle, scale)
    src = ARCFACE_TEMPLATE_112 @ rot.T + np.array(shift)
    matrix = similarity_transform(src, ARCFACE_TEMPLATE_112)
    np.testing.assert_allclose(transform_points(src, matrix), ARCFACE_TEMPLATE_112, atol=1e-6 * max(1.0, 1 / scale))
    assert np.linalg.det(matrix[:, :2]) == pytest.approx(1.0 / scale**2, rel=1e-6)

    geometry = FaceGeometry.from_face(Face(box=(0, 0, 1, 1), landmarks5=src))
    assert geometry.from_landmarks and geometry.size == pytest.approx(112.0 * scale, rel=1e-6)
    template_roll = math.degrees(math.atan2(*(ARCFACE_TEMPLATE_112[1] - ARCFACE_TEMPLATE_112[0])[::-1]))
    roll_error = (geometry.roll - angle - template_roll + 180.0) % 360.0 - 180.0
    assert abs(roll_error) < 1e-6
    # A little landmark noise (≤ 1 px on a face ≥ 5 px) moves the size by a bounded amount, never wildly.
    noisy = FaceGeometry.from_face(Face(box=(0, 0, 1, 1), landmarks5=src + noise))
    assert noisy.size == pytest.approx(geometry.size, rel=0.5 if scale < 0.5 else 0.1)


@examples(30)
@given(
    shape=st.tuples(st.integers(1, 64), st.integers(1, 64)), size=st.integers(16, 160),
    points=arrays(np.float64, (5, 2), elements=st.floats(-200.0, 200.0)),
)  # fmt: skip
def test_align_face_always_returns_the_crop_or_a_clear_error(shape, size, points):
    image = np.full((*shape, 3), 128, np.uint8)
    try:
        aligned = align_face(image, points, size=size)
    except HeadshotLabError as error:  # degenerate landmarks (all on one point)
        assert error.code == "alignment_failed"
        assert np.ptp(points, axis=0).max() < 1e-3
    else:
        assert aligned.shape == (size, size, 3) and aligned.dtype == np.uint8


@examples(100)
@given(
    box=st.tuples(*[st.floats(-1e5, 1e5)] * 4), width=sides, height=sides,
)  # fmt: skip
def test_clip_box_is_always_inside_the_image(box, width, height):
    left, top, right, bottom = clip_box(box, width, height)
    assert 0 <= left <= width and 0 <= right <= width and 0 <= top <= height and 0 <= bottom <= height
    if box[0] <= box[2] and box[1] <= box[3]:
        assert left <= right and top <= bottom  # an ordered box stays ordered


@examples(40)
@given(shape=st.tuples(st.integers(1, 120), st.integers(1, 120)), seed=st.integers(0, 2**16), data=st.data())
def test_face_sharpness_is_finite_for_any_box(shape, seed, data):
    """Boxes inside, across the edge, outside, inverted or empty: a finite score ≥ 0, never a crash."""
    face = data.draw(face_boxes(shape))
    left, top, right, bottom = face.box
    box = data.draw(st.sampled_from([(left, top, right, bottom), (right, bottom, left, top)]))
    image = np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)
    score = face_sharpness(image, box, size=64)
    assert math.isfinite(score) and score >= 0.0


@examples(60)
@given(
    width=sides, height_area=st.integers(1, 400_000), max_side=st.integers(1, 4000),
)  # fmt: skip
def test_downscale_bounds_the_longer_side_and_keeps_the_shape(width, height_area, max_side):
    height = max(1, height_area // width)
    image = np.zeros((height, width, 3), np.uint8)
    small, scale = downscale(image, max_side)
    assert 0 < scale <= 1.0
    assert small.shape[2] == 3 and min(small.shape[:2]) >= 1
    if max(height, width) <= max_side:
        assert small is image and scale == 1.0
    else:
        assert max(small.shape[:2]) <= max_side
        assert abs(small.shape[0] - height * scale) <= 1 and abs(small.shape[1] - width * scale) <= 1


# ================================================================================================
# Colour maths
# ================================================================================================

lightness = st.floats(0.0, 100.0)
lab_colours = st.tuples(lightness, st.floats(-128.0, 127.0), st.floats(-128.0, 127.0))


@examples(120)
@given(L1=lightness, L2=lightness, b=st.floats(-120.0, 120.0))
def test_ita_is_bounded_and_monotonic_in_lightness(L1, L2, b):
    low, high = sorted((L1, L2))
    ita_low, ita_high = skin.ita_from_lab(low, b), skin.ita_from_lab(high, b)
    assert -180.0 <= ita_low <= 180.0 and -180.0 <= ita_high <= 180.0
    if b > 0:  # every skin colour: inside ±90°, and lighter never reads darker
        assert -90.0 <= ita_low <= ita_high <= 90.0
        if b > 1e-3 and high - low > 1e-9:  # strictly (b* → 0⁺ saturates at ±90°; 1e-141 apart rounds away)
            assert ita_high > ita_low
    else:  # b* ≤ 0 is not clipped (issue 13): past ±90°, on the side of mid-grey that L* is on
        for lightness_, ita in ((low, ita_low), (high, ita_high)):
            if lightness_ != 50.0:
                assert abs(ita) >= 90.0 and (ita > 0) == (lightness_ > 50.0)


#: Every band boundary and its floating-point neighbours (where an off-by-one comparison would show).
BAND_EDGES = sorted(
    {
        v
        for lower, _, _ in skin.ITA_BANDS[:-1]
        for v in (np.nextafter(lower, -np.inf), lower, np.nextafter(lower, np.inf))
    }
)


@examples(200)
@given(ita=st.floats(-1e6, 1e6) | st.floats(-90.0, 90.0) | st.sampled_from(BAND_EDGES), other=st.floats(-90.0, 90.0))
def test_every_finite_ita_has_exactly_one_group_and_groups_are_ordered(ita, other):
    group = skin.ita_group(ita)
    assert group in range(1, 7)
    matching = [g for lower, g, _ in skin.ITA_BANDS if ita > lower]
    upper_bounds = [math.inf] + [lower for lower, _, _ in skin.ITA_BANDS[:-1]]
    lower, _, band = skin.ITA_BANDS[group - 1]
    assert lower < ita <= upper_bounds[group - 1]  # in its half-open band: contiguous, no gaps, no overlaps
    assert matching[0] == group and skin.ita_band(ita) == band
    if other < ita:  # darker never maps to a lighter group
        assert skin.ita_group(other) >= group


@st.composite
def skin_like_images(draw, max_side: int = 12) -> np.ndarray:
    """Small images of warm (b* > 0) colours of every lightness, R ≥ G ≥ B like skin."""
    height, width = draw(st.integers(1, max_side)), draw(st.integers(1, max_side))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    red = rng.integers(40, 256, (height, width))
    green = red * rng.uniform(0.55, 0.95, (height, width))
    blue = green * rng.uniform(0.5, 0.95, (height, width))
    return np.stack([red, green, blue], axis=-1).round().astype(np.uint8)


def _in_gamut(lab: np.ndarray, margin: float = 2e-3) -> np.ndarray:
    """Which Lab colours are inside the sRGB gamut, by colour-science (an independent implementation)."""
    import colour

    linear = colour.XYZ_to_sRGB(colour.Lab_to_XYZ(lab))
    return np.all((linear >= margin) & (linear <= 1.0 - margin), axis=-1)


@examples(40)
@given(image=skin_like_images(), delta=st.floats(-15.0, 15.0), mask_seed=st.integers(0, 2**16))
def test_shift_ita_moves_each_masked_pixel_by_delta_and_nothing_else(image, delta, mask_seed):
    mask = np.random.default_rng(mask_seed).random(image.shape[:2]) < 0.6
    out = skin.shift_ita(image, mask, delta)
    np.testing.assert_array_equal(out[~mask], image[~mask])
    np.testing.assert_array_equal(skin.shift_ita(image, mask, 0.0), image)
    np.testing.assert_array_equal(skin.shift_ita(image, mask.astype(np.float32), delta), out)  # weights 1 = mask
    np.testing.assert_array_equal(skin.shift_ita(image, np.zeros(mask.shape), delta), image)

    before, after = skin.rgb_to_lab(image[mask]), skin.rgb_to_lab(out[mask])
    ita_before = skin.ita_from_lab(before[:, 0], before[:, 2])
    # Where the rotated colour exists in sRGB and stays clear of ±90°, only the uint8 rounding
    # (≤ 1 CIELAB unit in the (b*, L*) plane) separates the change from δ: an angle error ≤ 1/r.
    radius = np.hypot(before[:, 0] - 50.0, before[:, 2])
    angle = np.radians(ita_before + delta)
    target = np.stack([50 + radius * np.sin(angle), before[:, 1], radius * np.cos(angle)], axis=-1)
    valid = (before[:, 2] > 0) & (np.abs(ita_before + delta) < 85.0) & (radius > 2.0) & _in_gamut(target)
    change = skin.ita_from_lab(after[:, 0], after[:, 2]) - ita_before
    bound = np.degrees(1.0 / np.maximum(radius, 1e-9))
    assert np.all(np.abs(change - delta)[valid] <= bound[valid]), np.abs(change - delta)[valid].max()


@examples(40)
@given(rgb=arrays(np.uint8, st.tuples(st.integers(1, 64), st.just(3))))
def test_srgb_lab_round_trip_is_within_one_level(rgb):
    lab = skin.rgb_to_lab(rgb)
    assert lab.shape == rgb.shape and np.all((lab[:, 0] >= -1e-9) & (lab[:, 0] <= 100 + 1e-9))
    back = skin.lab_to_rgb(lab)
    assert back.dtype == np.uint8
    assert np.abs(back.astype(int) - rgb.astype(int)).max() <= 1
    np.testing.assert_allclose(skin.rgb_to_lab(rgb / 255.0), lab, atol=1e-9)  # float 0–1 input = uint8 input


@examples(120)
@given(lab1=lab_colours, lab2=lab_colours)
def test_delta_e2000_is_a_non_negative_symmetric_difference(lab1, lab2):
    d12, d21 = skin.delta_e2000(lab1, lab2), skin.delta_e2000(lab2, lab1)
    assert math.isfinite(d12) and d12 >= 0.0
    assert d12 == pytest.approx(d21, abs=1e-9)
    assert skin.delta_e2000(lab1, lab1) == pytest.approx(0.0, abs=1e-9)
    if max(abs(a - b) for a, b in zip(lab1, lab2, strict=True)) > 1e-3:
        assert d12 > 0.0
    vectorised = skin.delta_e2000(np.array([lab1, lab2]), np.array([lab2, lab1]))
    np.testing.assert_allclose(vectorised, [d12, d21], atol=1e-12)


@examples(120)
@given(lab=st.tuples(lightness, st.floats(-40.0, 60.0), st.floats(-20.0, 80.0)))
def test_nearest_monk_is_the_minimum_over_all_swatches(lab):
    index, distance = skin.nearest_monk(lab)
    assert index in range(1, 11)
    each = [skin.delta_e2000(lab, swatch) for swatch in skin.monk_lab()]
    assert distance == pytest.approx(min(each), abs=1e-9)
    assert each[index - 1] == pytest.approx(distance, abs=1e-9)


@st.composite
def lab_faces(draw, side: int = 24) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A small CIELAB 'face' (skin-like, b* > 0), a feathered face weight and a skin mask."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    lab = np.stack(
        [rng.uniform(30, 70, (side, side)), rng.uniform(5, 25, (side, side)), rng.uniform(8, 35, (side, side))], -1
    )
    lab[..., 0] += np.linspace(-draw(st.floats(0, 10)), draw(st.floats(0, 10)), side)[None, :]  # a light gradient
    weight = np.clip(rng.uniform(-0.2, 1.2, (side, side)), 0.0, 1.0).astype(np.float32)
    skin_mask = rng.random((side, side)) < draw(st.floats(0.2, 0.9))
    assume(skin_mask.any())
    return lab, weight, skin_mask


@examples(30)
@given(face=lab_faces(), strength=st.floats(0.05, 1.0), interocular=st.floats(2.0, 30.0))
def test_even_light_changes_only_lightness_and_locks_the_median_ita(face, strength, interocular):
    lab, weight, skin_mask = face
    out, info = even_light(lab, weight, skin_mask, skin_mask, strength=strength, interocular=interocular)
    np.testing.assert_array_equal(out[..., 1:], lab[..., 1:])  # a*, b* untouched: chromaticity never changes
    np.testing.assert_array_equal(out[weight == 0], lab[weight == 0])  # nothing off the face
    assert np.all((out[..., 0] >= 0) & (out[..., 0] <= 100))
    before = np.median(skin.ita_from_lab(lab[..., 0][skin_mask], lab[..., 2][skin_mask]))
    after = np.median(skin.ita_from_lab(out[..., 0][skin_mask], out[..., 2][skin_mask]))
    assert abs(info["tone_lock_L"]) < 14.9  # the lock did not saturate
    assert after == pytest.approx(before, abs=1e-3)


@examples(30)
@given(
    seed=st.integers(0, 2**32 - 1), cast=st.tuples(st.floats(-6.0, 6.0), st.floats(-6.0, 6.0)),
)  # fmt: skip
def test_neutral_white_balance_never_touches_lightness_the_face_or_colourful_pixels(seed, cast):
    rng = np.random.default_rng(seed)
    side = 48
    lab = np.stack(
        [rng.uniform(25, 95, (side, side)), rng.normal(cast[0], 2, (side, side)), rng.normal(cast[1], 2, (side, side))],
        -1,
    )
    colourful = rng.random((side, side)) < 0.2
    lab[..., 1][colourful] += 40.0  # a red tie
    alpha = np.ones((side, side), np.float32)
    face_weight = np.zeros((side, side), np.float32)
    face_weight[:16, :16] = 1.0
    out, info = neutral_white_balance(lab, alpha, face_weight)
    np.testing.assert_array_equal(out[..., 0], lab[..., 0])
    np.testing.assert_array_equal(out[face_weight == 1], lab[face_weight == 1])
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    np.testing.assert_array_equal(out[chroma >= 2 * NEUTRAL_CHROMA], lab[chroma >= 2 * NEUTRAL_CHROMA])
    # On the neutrals the measured cast is removed in full: their median moves towards grey.
    neutral = (face_weight == 0) & (chroma < NEUTRAL_CHROMA)
    before = np.hypot(np.median(lab[..., 1][neutral]), np.median(lab[..., 2][neutral]))
    after = np.hypot(np.median(out[..., 1][neutral]), np.median(out[..., 2][neutral]))
    assert after <= before + 1e-9
    assert abs(info["cast_a"]) <= 8.0 and abs(info["cast_b"]) <= 8.0


# ================================================================================================
# Metrics
# ================================================================================================

embedding_dims = st.integers(1, 512)


@st.composite
def embeddings(draw, dim: int | None = None, count: int | None = None) -> np.ndarray:
    """``(count, dim)`` (or ``(dim,)``) random vectors of norm far from 0, on any scale."""
    d = dim if dim is not None else draw(embedding_dims)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = 10.0 ** draw(st.floats(-3.0, 4.0))
    shape = (d,) if count is None else (count, d)
    vectors = rng.normal(size=shape) * scale
    norms = np.linalg.norm(np.atleast_2d(vectors), axis=1)
    assume(np.all(norms > 1e-6 * scale * math.sqrt(d)))
    return vectors


@examples(150)
@given(data=st.data(), dim=embedding_dims, k=st.floats(1e-3, 1e3))
def test_cosine_similarity_is_bounded_symmetric_and_scale_invariant(data, dim, k):
    a, b = data.draw(embeddings(dim)), data.draw(embeddings(dim))
    s = similarity(a, b)
    assert -1.0 <= s <= 1.0
    assert s == similarity(b, a)
    assert similarity(k * a, b) == pytest.approx(s, abs=1e-5)
    assert similarity(-a, b) == pytest.approx(-s, abs=1e-5)
    assert 1.0 - 1e-5 <= similarity(a, a) <= 1.0  # never above 1, even in float32
    assert -1.0 <= similarity(a, -a) <= -1.0 + 1e-5
    fa = Face(box=(0, 0, 1, 1), embedding=a, backend="x")
    assert similarity(fa, Face(box=(0, 0, 1, 1), embedding=b, backend="x")) == s
    with pytest.raises(ValueError):
        similarity(fa, Face(box=(0, 0, 1, 1), embedding=b, backend="y"))


@examples(100)
@given(vector=embeddings(), zero_dim=embedding_dims)
def test_l2_normalize_gives_unit_vectors_and_zero_for_zero(vector, zero_dim):
    unit = l2_normalize(vector)
    assert unit.dtype == np.float32 and unit.shape == vector.shape
    assert float(np.linalg.norm(unit.astype(np.float64))) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(unit, vector / np.linalg.norm(vector), rtol=1e-5, atol=1e-7)
    zero = l2_normalize(np.zeros(zero_dim))
    assert np.all(np.isfinite(zero)) and not zero.any()
    assert similarity(np.zeros(zero_dim), np.ones(zero_dim)) == 0.0


@examples(60)
@given(data=st.data(), dim=st.integers(2, 128), count=st.integers(1, 8), order_seed=st.integers(0, 2**16))
def test_reference_centroid_is_unit_and_ignores_order_and_row_scale(data, dim, count, order_seed):
    selfies = data.draw(embeddings(dim, count))
    assume(np.linalg.norm((selfies / np.linalg.norm(selfies, axis=1, keepdims=True)).sum(axis=0)) > 1e-3)
    centroid = reference_centroid(selfies)
    assert np.linalg.norm(centroid) == pytest.approx(1.0, abs=1e-12)
    rng = np.random.default_rng(order_seed)
    shuffled = selfies[rng.permutation(count)] * rng.uniform(0.01, 100.0, (count, 1))
    np.testing.assert_allclose(reference_centroid(shuffled), centroid, atol=1e-9)
    outputs = data.draw(embeddings(dim, 3))
    cosines = cosine_to_reference(outputs, selfies)
    assert np.all(np.abs(cosines) <= 1.0 + 1e-12)
    np.testing.assert_allclose(cosines, cosine_to_reference(outputs, centroid), atol=1e-12)


@examples(50)
@given(data=st.data(), dim=st.integers(2, 64), count=st.integers(1, 6))
def test_copy_paste_ratio_is_one_when_training_and_held_out_selfies_are_the_same(data, dim, count):
    selfies = data.draw(embeddings(dim, count))
    output = selfies[0] + 0.1 * data.draw(embeddings(dim))  # close to selfie 0: cosine > 0
    assume(cosine_to_reference(output, selfies[0]).item() > 1e-3)
    result = copy_paste_ratio(output, selfies, selfies)
    assert result.ratio == pytest.approx(1.0)
    assert result.train_similarity == pytest.approx(result.heldout_similarity)
    assert 0 <= result.closest_train < count


@examples(50)
@given(
    poses=arrays(np.float64, st.tuples(st.integers(1, 12), st.just(3)), elements=st.floats(-90, 90)),
    offset=st.tuples(*[st.floats(-45, 45)] * 3), order_seed=st.integers(0, 2**16),
)  # fmt: skip
def test_pose_diversity_ignores_a_common_offset_and_the_order(poses, offset, order_seed):
    base = pose_diversity(poses)
    moved = pose_diversity(poses[np.random.default_rng(order_seed).permutation(len(poses))] + np.array(offset))
    assert moved.n == base.n == len(poses)
    assert moved.mean_pairwise == pytest.approx(base.mean_pairwise, abs=1e-9)
    np.testing.assert_allclose(moved.std, base.std, atol=1e-9)
    assert base.mean_pairwise >= 0 and (len(poses) > 1 or base.mean_pairwise == 0.0)


# ---- confidence intervals ------------------------------------------------------------------------

N_BOOT = 600


@st.composite
def proportions(draw, max_n: int = 60) -> np.ndarray:
    """0/1 outcomes (a proportion), in a random order."""
    n = draw(st.integers(2, max_n))
    k = draw(st.integers(0, n))
    order = np.random.default_rng(draw(st.integers(0, 2**16))).permutation(n)
    return (np.arange(n) < k).astype(np.float64)[order]


@examples(40)
@given(values=proportions(), method=st.sampled_from(["expanded", "percentile"]), order_seed=st.integers(0, 2**16))
def test_proportion_intervals_contain_the_estimate_and_ignore_the_order(values, method, order_seed):
    est = estimate(values, n_resamples=N_BOOT, method=method)
    low, high = est.ci
    assert 0.0 <= low <= est.value <= high <= 1.0
    order = np.random.default_rng(order_seed).permutation(len(values))
    shuffled = estimate(values[order], n_resamples=N_BOOT, method=method)
    assert shuffled.value == pytest.approx(est.value, abs=1e-15)
    assert shuffled.ci == pytest.approx(est.ci, abs=1e-12)  # a function of the data, not of the row order


@examples(40)
@given(values=proportions(max_n=40), factor=st.integers(2, 4))
def test_proportion_intervals_shrink_as_n_grows_with_the_same_proportion(values, factor):
    small = estimate(values, n_resamples=N_BOOT)
    large = estimate(np.tile(values, factor), n_resamples=N_BOOT)
    assert large.value == pytest.approx(small.value)
    assert large.ci[1] - large.ci[0] <= small.ci[1] - small.ci[0] + 1e-12


@examples(40)
@given(
    seed=st.integers(0, 2**32 - 1), n=st.integers(2, 40), n_clusters=st.integers(2, 10),
    statistic=st.sampled_from(["mean", "median"]),
)  # fmt: skip
def test_cluster_intervals_contain_the_estimate_and_ignore_the_row_order(seed, n, n_clusters, statistic):
    rng = np.random.default_rng(seed)
    values = rng.lognormal(0.0, 1.5, n)  # skewed, as ΔE and identity losses are
    clusters = [f"person{c}" for c in rng.integers(0, n_clusters, n)]
    assume(len(set(clusters)) >= 2)
    est = estimate(values, clusters=clusters, statistic=statistic, n_resamples=200 if statistic == "median" else N_BOOT)
    if est.has_ci:
        assert est.ci[0] <= est.value <= est.ci[1]
    else:  # the median's exact order-statistic interval needs at least 6 clusters
        assert statistic == "median" and len(set(clusters)) < 6
    order = rng.permutation(n)
    again = estimate(
        values[order],
        clusters=[clusters[i] for i in order],
        statistic=statistic,
        n_resamples=200 if statistic == "median" else N_BOOT,
    )
    assert again.value == pytest.approx(est.value, rel=1e-12)
    assert again.has_ci == est.has_ci
    if est.has_ci:
        assert again.ci == pytest.approx(est.ci, rel=1e-9, abs=1e-12)


# ---- group gaps ----------------------------------------------------------------------------------


@examples(60)
@given(
    values=st.lists(st.floats(-100, 100), min_size=2, max_size=12),
    names=st.lists(st.text("abcdefgh", min_size=1, max_size=3), min_size=2, max_size=5, unique=True),
)  # fmt: skip
def test_group_gaps_are_zero_for_identical_groups(values, names):
    groups = [g for g in names for _ in values]
    metric = grouped_metric(values * len(names), groups, n_resamples=50)
    assert metric.difference == pytest.approx(0.0, abs=1e-9)
    mean = float(np.mean(values))
    if abs(mean) > 1e-9:
        assert metric.ratio == pytest.approx(1.0)
    assert set(metric.by_group) == set(names)


@examples(80)
@given(
    group_values=st.dictionaries(
        st.text("abcdefgh", min_size=1, max_size=3),
        st.floats(-1e3, 1e3, allow_subnormal=False) | st.floats(1e-3, 1e3),  # 5e-324 / 2 underflows to 0
        min_size=2, max_size=6,
    ),
    seed=st.integers(0, 2**16),
)  # fmt: skip
def test_group_gaps_are_symmetric_under_relabelling(group_values, seed):
    names = list(group_values)
    relabelled = dict(zip(np.random.default_rng(seed).permutation(names).tolist(), group_values.values(), strict=True))
    difference, ratio = between_groups(group_values)
    assert (difference, ratio) == between_groups(relabelled)
    assert difference >= 0.0
    assert difference == pytest.approx(max(group_values.values()) - min(group_values.values()))
    if ratio is not None:
        assert 0.0 < ratio <= 1.0
    values = list(group_values.values())
    if all(v > 0 for v in values) or all(v < 0 for v in values):
        assert ratio is not None


# ---- AUROC (detectability) -----------------------------------------------------------------------


@st.composite
def scored_samples(draw) -> tuple[np.ndarray, np.ndarray]:
    n_real, n_fake = draw(st.integers(1, 25)), draw(st.integers(1, 25))
    scores = draw(arrays(np.int64, n_real + n_fake, elements=st.integers(-1000, 1000)))
    return np.r_[np.zeros(n_real, np.int64), np.ones(n_fake, np.int64)], scores.astype(np.float64)


MONOTONE = {
    "affine": lambda s: 2.5 * s - 7.0,
    "cube": lambda s: s**3,
    "exp": lambda s: np.exp(s / 1000.0),
}


@examples(30)
@given(sample=scored_samples(), transform=st.sampled_from(sorted(MONOTONE)))
def test_auroc_and_its_interval_ignore_monotonic_transforms_of_the_scores(sample, transform):
    labels, scores = sample
    base = auroc_with_ci(labels, scores, n_resamples=200)
    moved = auroc_with_ci(labels, MONOTONE[transform](scores), n_resamples=200)
    assert 0.0 <= base.auroc <= 1.0
    assert moved.auroc == pytest.approx(base.auroc, abs=1e-12)
    assert moved.ci == pytest.approx(base.ci, abs=1e-12)
    flipped = auroc_with_ci(labels, -scores, n_resamples=200)
    assert flipped.auroc == pytest.approx(1.0 - base.auroc, abs=1e-12)
    if base.ci[0] is not None:
        assert base.ci[0] <= base.auroc <= base.ci[1]


@examples(30)
@given(sample=scored_samples(), seed=st.integers(0, 2**16))
def test_auroc_interval_ignores_row_order(sample, seed):
    labels, scores = sample
    order = np.random.default_rng(seed).permutation(len(labels))
    base = auroc_with_ci(labels, scores, n_resamples=200)
    shuffled = auroc_with_ci(labels[order], scores[order], n_resamples=200)
    assert shuffled.auroc == pytest.approx(base.auroc, abs=1e-12)
    assert shuffled.ci == pytest.approx(base.ci, abs=1e-12)


@examples(30)
@given(sample=scored_samples(), gap=st.floats(0.5, 100.0))
def test_perfectly_separated_scores_have_auroc_one(sample, gap):
    labels, scores = sample
    separated = np.where(labels == 1, scores + 2001.0 + gap, scores)
    result = auroc_with_ci(labels, separated, n_resamples=200)
    assert result.auroc == 1.0
    if result.ci[0] is not None:
        assert result.ci == (1.0, 1.0)


# ---- power resampling (eval) ---------------------------------------------------------------------


@examples(40)
@given(
    sizes=st.lists(st.integers(1, 4), min_size=1, max_size=12), fraction=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16), sign_flip=st.booleans(),
)  # fmt: skip
def test_power_subsamples_whole_people_without_replacement(sizes, fraction, seed, sign_flip):
    from eval.power import resample_records

    records = [
        {"cluster": f"p{c}", "i": i, "skin_delta_ita": float(c + i + 1), "skin_monk_shift": -1.0, "x": "keep"}
        for c, size in enumerate(sizes)
        for i in range(size)
    ]
    out = resample_records(records, np.random.default_rng(seed), fraction=fraction, sign_flip=sign_flip)
    kept = {r["cluster"] for r in out}
    assert len(kept) == min(len(sizes), max(2, math.ceil(fraction * len(sizes))))
    for cluster in kept:  # every kept person comes whole, once
        assert sorted(r["i"] for r in out if r["cluster"] == cluster) == list(range(sizes[int(cluster[1:])]))
    originals = {(r["cluster"], r["i"]): r for r in records}
    for row in out:
        source = originals[(row["cluster"], row["i"])]
        assert row["x"] == "keep" and row is not source
        assert abs(row["skin_delta_ita"]) == source["skin_delta_ita"] and abs(row["skin_monk_shift"]) == 1.0
        if not sign_flip:
            assert row == source
    assert records == [originals[(r["cluster"], r["i"])] for r in records]  # the input is not modified
