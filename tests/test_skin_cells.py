"""The reported skin shift reads skin, not light, and not a re-save (scene cells; issue 13).

Known values on synthetic scenes (a diagonal light change is recovered exactly from the cells; a skin-only
change leaves them alone), then realistic nulls and planted changes on real faces, each output measured
from scratch (its own mesh and skin mask): a relighting or a re-encode (crop, resize, JPEG/WebP) moves the
reported ΔITA by < 1°, a ±3° skin change reads ±3 ± 1°, also on a face pushed past neutral (b* < 0).
The 58-person table is ``python -m eval.skin_nulls``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from headshot_lab import skin

FACES = ("obama", "biden", "clm_audrey", "feat_f1", "zidane")


def _measure(image: np.ndarray) -> skin.SkinTone:
    """A fresh measurement: its own mesh and skin mask, as every output gets."""
    return skin.measure_skin(image, skin.skin_mask(image))


def _weights(image: np.ndarray) -> np.ndarray:
    """The canaries' feathered skin weights (eval.generators): the geometry region blurred, 1 on the skin."""
    import cv2

    from headshot_lab.faces.mesh import face_mesh

    (mesh,) = face_mesh(image, max_faces=1)
    region = skin.skin_mask(image, mesh, exclude_extremes=False).astype(np.float32)
    sigma = max(1.0, 0.01 * max(image.shape[:2]))
    weights = np.clip(cv2.GaussianBlur(region, (0, 0), sigma) * 1.5, 0.0, 1.0)
    weights[skin.skin_mask(image, mesh)] = 1.0
    return weights


def _reencode(image: np.ndarray, seed: int) -> np.ndarray:
    from eval.generators import GenerationContext, SourceView, build_generator

    return build_generator("reencode")(
        SourceView(id="face.png", image=image, identity="x"), GenerationContext(seed=seed)
    )


def _relight(image: np.ndarray, seed: int) -> np.ndarray:
    from eval.generators import GenerationContext, SourceView, build_generator

    return build_generator("relight")(
        SourceView(id="face.png", image=image, identity="x"), GenerationContext(seed=seed)
    )


@pytest.fixture(scope="module")
def faces():
    """``{person: (framed face ≤ 384 px, its tone)}``: two bundled photos and three independent people."""
    from eval.datasets import DatasetUnavailableError, OfflineDataset

    try:
        samples = OfflineDataset(people="independent", faces=list(FACES), variants_per_face=0).build()
    except DatasetUnavailableError as exc:
        pytest.skip(f"real test photos unavailable: {exc}")
    out = {}
    for sample in samples:
        out[str(sample.identity)] = (sample.image, _measure(sample.image))
    assert set(out) == set(FACES)
    return out


# ---- known values ---------------------------------------------------------------------------------


def _scene(size: int = 240, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A textured, colourful background with a flat skin disc in the middle (``(image, skin mask)``)."""
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.uniform(30, 220, size=(size // 8, size // 8, 3)).astype(np.float32)
    image = cv2.resize(noise, (size, size), interpolation=cv2.INTER_CUBIC).clip(0, 255).astype(np.uint8)
    yy, xx = np.mgrid[:size, :size]
    mask = (yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 7) ** 2
    image[mask] = skin.lab_to_rgb(np.array([60.0, 15.0, 20.0]))
    return image, mask


def test_a_diagonal_light_change_is_recovered_from_the_cells_and_the_skin_is_not():
    image, mask = _scene()
    cells = skin.scene_cells(image, mask)
    assert cells is not None and len(cells) >= 3 * skin.MIN_SCENE_CELLS
    gain = np.array([0.7, 0.9, 1.1])
    relit = skin.linear_to_srgb(skin.srgb_to_linear(image) * gain)
    measured = skin.scene_gain(cells, skin.scene_cells(relit, mask), space="sRGB")
    np.testing.assert_allclose(measured, gain, rtol=0.01)  # 8-bit rounding only
    # a von Kries change of light in CAT02 space is a diagonal there: the gain is the ratio of the whites' cones
    warm = skin.relight(image, 1.1, 4500.0, transform="CAT02")
    cones = skin._to_gain_space(skin._xyz_to_linear(skin._d65_xyz()), "CAT02")
    import colour

    target = colour.xy_to_XYZ(skin.illuminant_xy(4500.0)) / colour.xy_to_XYZ(skin.illuminant_xy(6504.0))[1]
    expected = 1.1 * skin._to_gain_space(skin._xyz_to_linear(target), "CAT02") / cones
    np.testing.assert_allclose(skin.scene_gain(cells, skin.scene_cells(warm, mask), space="CAT02"), expected, rtol=0.02)
    changed = image.copy()
    changed[mask] = skin.lab_to_rgb(np.array([70.0, 10.0, 12.0]))
    assert skin.scene_cells(changed, mask) == cells  # the skin is outside every cell


def _cells_with_ratios(log_ratios: np.ndarray, seed: int = 0) -> tuple[list[list[float]], list[list[float]]]:
    """Reference cells and other cells whose per-channel log ratios (in CAT02 space) are ``log_ratios``."""
    rng = np.random.default_rng(seed)
    reference = rng.uniform(0.05, 0.6, size=(len(log_ratios), 3))
    cones = skin._to_gain_space(reference, "CAT02")
    other = skin._from_gain_space(cones * np.exp(log_ratios), "CAT02")
    as_cells = lambda values: [[i, *map(float, v)] for i, v in enumerate(values)]  # noqa: E731
    return as_cells(reference), as_cells(other)


def test_a_gain_within_the_cells_noise_is_read_as_no_light_change():
    rng = np.random.default_rng(3)
    # a re-save of a photo the face fills: 24 cells whose ratios scatter (SD 0.15) around a small offset
    reference, other = _cells_with_ratios(rng.normal(-0.03, 0.15, size=(24, 3)))
    plain = skin.scene_gain(reference, other, shrink=0)
    assert plain is not None and np.max(np.abs(np.log(plain))) > 0.01  # the trimmed mean alone reads a change
    np.testing.assert_array_equal(skin.scene_gain(reference, other), 1.0)
    # a relighting: every one of 250 cells moves by the same gain, up to small noise; undone in full
    target = np.array([0.8, 0.9, 1.1])
    reference, other = _cells_with_ratios(np.log(target) + rng.normal(0.0, 0.03, size=(250, 3)))
    np.testing.assert_allclose(skin.scene_gain(reference, other), target, rtol=0.01)
    # a small true change seen on many cells is kept, and shrinkage only ever moves the gain towards 1
    reference, other = _cells_with_ratios(np.log(1.03) + rng.normal(0.0, 0.05, size=(250, 3)))
    shrunk, unshrunk = skin.scene_gain(reference, other), skin.scene_gain(reference, other, shrink=0)
    assert np.all(np.abs(np.log(shrunk)) <= np.abs(np.log(unshrunk)))
    np.testing.assert_allclose(shrunk, 1.03, rtol=0.015)
    # one factor for all three channels: an exposure change seen through unequally noisy channels stays grey
    noise = rng.normal(0.0, 1.0, size=(60, 3)) * np.array([0.02, 0.08, 0.2])
    reference, other = _cells_with_ratios(np.log(1.05) + noise - noise.mean(axis=0))
    shrunk, unshrunk = skin.scene_gain(reference, other), skin.scene_gain(reference, other, shrink=0)
    ratio = np.log(shrunk) / np.log(unshrunk)
    assert 0.0 < ratio[0] < 1.0
    np.testing.assert_allclose(ratio, ratio[0])


def test_the_cells_follow_a_crop_and_a_resize():
    import cv2

    image, mask = _scene(seed=1)
    cells = skin.scene_cells(image, mask)
    crop = (slice(7, 240), slice(0, 229))
    small = cv2.resize(image[crop], None, fx=0.9, fy=0.9, interpolation=cv2.INTER_AREA)
    small_mask = cv2.resize(mask[crop].astype(np.uint8), small.shape[1::-1], interpolation=cv2.INTER_NEAREST) > 0
    moved = skin.scene_cells(small, small_mask)
    common = {int(c[0]) for c in cells} & {int(c[0]) for c in moved}
    assert len(common) >= skin.MIN_SCENE_CELLS
    np.testing.assert_allclose(skin.scene_gain(cells, moved), 1.0, atol=0.03)


def test_without_cells_the_scene_greys_are_used_and_other_scenes_read_as_photographed(faces):
    image, tone = faces["obama"]
    other = _measure(skin.relight(image, 1.1, 5000.0))
    bare = [skin.dataclass_replace(t, scene_cells=None) for t in (tone, other)]
    assert skin.light_matched_delta_ita(*bare) == skin.grey_matched_delta_ita(tone, other)
    photographed = skin.angle_difference(other.ita, tone.ita)
    assert skin.reported_delta_ita(tone, other, same_scene=False) == pytest.approx(photographed)
    assert skin.scene_gain(tone.scene_cells, other.scene_cells) is not None  # the cells are what is used


def test_the_cells_survive_the_json_record(faces):
    _, tone = faces["biden"]
    record = json.loads(json.dumps(tone.to_dict(), allow_nan=False))
    assert len(record["scene_cells"]) == len(tone.scene_cells) >= skin.MIN_SCENE_CELLS

    class FromRecord:  # a tone rebuilt from the record (as the suite's samples.jsonl is read)
        ita = record["ita"]
        lab = tuple(record["lab"])
        scene_cells = record["scene_cells"]
        skin_linear = record["skin_linear"]

    np.testing.assert_allclose(skin.scene_gain(tone.scene_cells, FromRecord.scene_cells), 1.0, rtol=1e-4)
    assert skin.light_matched_delta_ita(tone, FromRecord()) == pytest.approx(0.0, abs=0.01)


# ---- realistic nulls and planted changes on real faces -------------------------------------------


@pytest.fixture(scope="module")
def nulls(faces):
    """``{"relight" | "reencode": [(reported, as photographed), …]}`` over the faces × 2 draws."""
    out: dict[str, list[tuple[float, float]]] = {"relight": [], "reencode": []}
    for image, tone in faces.values():
        for seed in range(2):
            for name, change in (("relight", _relight), ("reencode", _reencode)):
                other = _measure(change(image, seed))
                out[name].append(
                    (skin.light_matched_delta_ita(tone, other), skin.angle_difference(other.ita, tone.ita))
                )
    return out


def test_light_does_not_move_the_reported_shift(nulls):
    reported, photographed = np.array(nulls["relight"]).T
    assert np.sqrt(np.mean(photographed**2)) > 5.0  # the light alone moves ITA° as photographed by many degrees
    assert abs(reported.mean()) < 1.0 and np.sqrt(np.mean(reported**2)) < 1.5, reported.round(2)
    assert np.max(np.abs(reported)) < 3.0, reported.round(2)


def test_a_re_encode_does_not_move_the_reported_shift(nulls):
    reported, photographed = np.array(nulls["reencode"]).T
    assert abs(reported.mean()) < 0.5 and np.sqrt(np.mean(reported**2)) < 1.0, reported.round(2)
    assert np.max(np.abs(reported - photographed)) < 1.5  # no light changed, so hardly any light correction


@pytest.mark.parametrize("delta", [3.0, -3.0])
def test_a_3_degree_skin_change_is_read_through_a_re_encode(faces, delta):
    read = []
    for image, tone in faces.values():
        changed = _reencode(skin.shift_ita(image, _weights(image), delta), seed=0)
        read.append(skin.light_matched_delta_ita(tone, _measure(changed)))
    values = np.array(read)
    assert values.mean() == pytest.approx(delta, abs=1.0), values.round(2)
    assert np.all(np.abs(values - delta) < 2.5), values.round(2)


@pytest.mark.parametrize("delta", [3.0, -3.0])
def test_a_face_past_neutral_still_reads_light_and_skin(faces, delta):
    """b* < 0 (ITA beyond 90°): no clipping, so light cancels and a skin change reads at full size."""
    image, tone = faces["clm_audrey"]
    weights = _weights(image)
    past = skin.shift_ita(image, weights, 100.0 - tone.ita)
    base = _measure(past)
    assert base.lab[2] < 0 and abs(base.ita) > 90.0, base.lab
    relit = skin.light_matched_delta_ita(base, _measure(_relight(past, 0)))
    assert abs(relit) < 1.5, relit
    # no re-save here: so close to neutral a JPEG's chroma noise alone moves ITA° by degrees (as photographed too)
    changed = skin.shift_ita(past, weights, delta)
    assert skin.light_matched_delta_ita(base, _measure(changed)) == pytest.approx(delta, abs=1.0)
