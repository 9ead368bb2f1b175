"""Light-corrected skin tone: known values, relighting invariance on real photos, a planted change caught.

The null that must stay quiet: the same photo under another light (exposure ±20 %, 4000–6504 K, with a
JPEG q90 re-save), |ΔITA_corrected| < 1°. The change that must be seen: the skin alone rotated by +3° ITA
(``shift_ita``), measured as 3 ± 1° through the same relighting and re-save. The full grid and table:
``python -m headshot_lab.testing.skin_light``.
"""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np
import pytest

from headshot_lab import skin
from headshot_lab.audit.skin import SkinShift, shifts_from_records, skin_shift
from headshot_lab.faces.mesh import face_mesh

#: Corners and centre of the relighting grid (the full 30-condition grid is in the validation script).
CONDITIONS = ((0.8, 4000.0), (1.2, 4000.0), (0.8, 6504.0), (1.2, 6504.0), (1.0, 5000.0))
PHOTOS = ("obama", "obama2", "biden")
SIZE = 480


@pytest.fixture(scope="module")
def small(load_real):
    """``small(name) -> (image, mesh)`` at ≤ 480 px (the mesh found once, on the small photo)."""
    cache: dict = {}

    def _get(name: str):
        if name not in cache:
            image = load_real(name)
            scale = SIZE / max(image.shape[:2])
            if scale < 1:
                image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            (mesh,) = face_mesh(image)
            cache[name] = (image, mesh)
        return cache[name]

    return _get


def _measure(image: np.ndarray, mesh) -> skin.SkinTone:
    return skin.measure_skin(image, skin.skin_mask(image, mesh))


def _colour_science_lab(rgb_uint8: np.ndarray) -> np.ndarray:
    import colour

    d65 = colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D65"]
    return colour.XYZ_to_Lab(colour.sRGB_to_XYZ(rgb_uint8 / 255.0), d65)


def _patch_scene(
    skin_lab: tuple[float, float, float], grey_srgb: int = 60, size: int = 96
) -> tuple[np.ndarray, np.ndarray]:
    """A flat skin square in the middle of a neutral grey frame (``(image, skin mask)``)."""
    image = np.full((size, size, 3), grey_srgb, np.uint8)
    mask = np.zeros((size, size), bool)
    mask[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = True
    image[mask] = skin.lab_to_rgb(np.array(skin_lab, dtype=float))
    return image, mask


# ---- known values ---------------------------------------------------------------------------------


@pytest.mark.parametrize("lab", [(65.0, 12.0, 20.0), (40.0, 15.0, 12.0), (70.0, 6.0, -8.0), (35.0, 4.0, -6.0)])
def test_flat_patch_gives_the_formula_value(lab):
    """ITA° of a flat patch = atan2(L* − 50, b*) of its (8-bit) colour, b* < 0 included (no clipping)."""
    image, mask = _patch_scene(lab)
    tone = skin.measure_skin(image, mask)
    L, _, b = _colour_science_lab(image[mask][0])
    assert tone.ita == pytest.approx(math.degrees(math.atan2(L - 50.0, b)), abs=0.05)
    if b > 0:
        assert tone.ita == pytest.approx(math.degrees(math.atan((L - 50.0) / b)), abs=0.05)
    else:
        assert abs(tone.ita) > 90.0  # beyond ±90°: the old clip would have said exactly ±90
    assert tone.ita_iqr[0] == pytest.approx(tone.ita) and tone.ita_iqr[1] == pytest.approx(tone.ita)


def test_light_correction_of_a_d65_grey_is_the_identity():
    """If the scene grey already is D65 at Y_g, the corrected Lab is the as-photographed Lab."""
    pixels = skin.lab_to_rgb(np.array([[65.0, 12.0, 20.0], [45.0, 18.0, 15.0], [30.0, 10.0, 8.0]]))
    grey = np.full(3, 0.05)  # linear sRGB neutral = D65 chromaticity
    corrected = skin.light_corrected_lab(pixels, grey, grey_y=0.05)
    np.testing.assert_allclose(corrected, skin.rgb_to_lab(pixels), atol=0.02)
    brighter = skin.light_corrected_lab(pixels, grey, grey_y=0.10)  # the same skin against a darker scene
    assert (brighter[:, 0] > corrected[:, 0] + 3).all()


def test_flat_scene_relit_reads_the_same_corrected_tone():
    image, mask = _patch_scene((62.0, 14.0, 18.0), grey_srgb=120)
    reference = skin.measure_skin(image, mask)
    assert reference.scene_grey_xy == pytest.approx((0.3127, 0.3290), abs=2e-4)
    for exposure, cct in CONDITIONS:
        relit = skin.measure_skin(skin.relight(image, exposure, cct), mask)
        # Two flat colours, each rounded to 8 bits with nothing to average the rounding out: ≈ 0.4° at most.
        assert abs(skin.delta_ita(reference, relit, light_corrected=True)) < 0.6, (exposure, cct)
    cast = skin.measure_skin(skin.relight(image, 1.2, 4000.0), mask)
    assert abs(skin.delta_ita(reference, cast)) > 3.0  # as photographed, the light shows


def test_scene_grey_is_linear_in_the_light_and_ignores_the_skin():
    from colour.models import eotf_inverse_sRGB

    rng = np.random.default_rng(0)
    linear = rng.uniform(0.02, 0.7, (5000, 3))
    base = skin.scene_grey(eotf_inverse_sRGB(linear))  # float sRGB: no rounding
    np.testing.assert_allclose(skin.scene_grey(eotf_inverse_sRGB(1.25 * linear)) / base, 1.25, rtol=1e-9)
    assert skin.scene_grey(linear[:10]) is None
    image, mask = _patch_scene((62.0, 14.0, 18.0))
    region = skin.scene_region(mask)
    assert not (region & mask).any() and region.sum() > 0.3 * region.size
    changed = skin.shift_ita(image, mask, 10.0)
    np.testing.assert_array_equal(skin.scene_grey(changed[region]), skin.scene_grey(image[region]))


def test_no_scene_no_correction_and_records_stay_json():
    patch = np.broadcast_to(skin.lab_to_rgb(np.array([60.0, 12.0, 18.0])), (40, 40, 3)).copy()
    tone = skin.measure_skin(patch, np.ones((40, 40), bool))
    assert tone.ita_light_corrected is None and tone.to_dict()["ita_light_corrected"] is None
    image, mask = _patch_scene((62.0, 14.0, 18.0))
    data = skin.measure_skin(image, mask).to_dict()
    assert isinstance(data["ita_light_corrected"], float) and len(data["lab_light_corrected"]) == 3


# ---- real photos ----------------------------------------------------------------------------------


def _through(image: np.ndarray, exposure: float, cct: float, jpeg: bool) -> np.ndarray:
    relit = skin.relight(image, exposure, cct)
    return skin.jpeg_roundtrip(relit, 90) if jpeg else relit


@pytest.mark.parametrize("name", PHOTOS)
def test_light_only_changes_move_the_corrected_ita_less_than_1_degree(small, name):
    """Same channel on both sides: with the JPEG re-save, the reference is re-saved too."""
    image, mesh = small(name)
    references = {jpeg: _measure(skin.jpeg_roundtrip(image, 90) if jpeg else image, mesh) for jpeg in (False, True)}
    raw, corrected = [], []
    for exposure, cct in CONDITIONS:
        for jpeg in (False, True):
            tone = _measure(_through(image, exposure, cct, jpeg), mesh)
            raw.append(skin.delta_ita(references[jpeg], tone))
            corrected.append(skin.delta_ita(references[jpeg], tone, light_corrected=True))
    assert max(abs(v) for v in corrected) < 1.0, (name, corrected)
    assert max(abs(v) for v in raw) > 5.0, (name, raw)  # as photographed the same grid moves ITA by > 5°


@pytest.mark.parametrize("name", PHOTOS)
def test_a_planted_3_degree_skin_change_is_still_measured(small, name):
    """+3° of light-corrected ITA planted on the skin alone, then relit and re-saved: read as 3 ± 1°."""
    image, mesh = small(name)
    references = {jpeg: _measure(skin.jpeg_roundtrip(image, 90) if jpeg else image, mesh) for jpeg in (False, True)}
    region = skin.skin_mask(image, mesh, exclude_extremes=False)
    planted = skin.shift_ita_light_corrected(image, region, 3.0)
    for exposure, cct in ((1.0, 6504.0), (1.2, 4500.0), (0.8, 6000.0), (1.2, 4000.0)):
        for jpeg in (False, True):
            tone = _measure(_through(planted, exposure, cct, jpeg), mesh)
            measured = skin.delta_ita(references[jpeg], tone, light_corrected=True)
            assert measured == pytest.approx(3.0, abs=1.0), (exposure, cct, jpeg)


@pytest.mark.parametrize("name", PHOTOS)
def test_an_as_photographed_3_degree_change_still_clears_the_margin(small, name):
    """``shift_ita`` (+3° in the photo's own Lab) reads as 3° × the correction's local gain (0.6–1.2 here):
    after relighting it is still a lightening past the audit's 1° margin, and never a darkening."""
    image, mesh = small(name)
    reference = _measure(image, mesh)
    planted = skin.shift_ita(image, skin.skin_mask(image, mesh, exclude_extremes=False), 3.0)
    for exposure, cct in ((1.0, 6504.0), (1.2, 4500.0), (0.8, 6000.0)):
        tone = _measure(skin.relight(planted, exposure, cct), mesh)
        assert 1.5 < skin.delta_ita(reference, tone, light_corrected=True) < 4.0, (exposure, cct)


def test_a_coloured_scene_is_read_as_coloured_light(small):
    """The known limit of grey-world: the astronaut's orange suit and flag read as warm light."""
    image, mesh = small("astronaut")
    tone = _measure(image, mesh)
    assert tone.scene_grey_xy[0] > 0.38  # far warmer than D65's x = 0.3127
    assert tone.light_corrected_plausible is False  # the corrected skin is no longer red-yellow
    assert tone.lab_light_corrected[2] < tone.lab[2] - 10


def test_brighter_exposure_alone_is_not_a_skin_shift(small):
    """The +20 % exposure null (once flagged skin_lightening): as photographed > 2°, corrected and reported < 1°."""
    image, mesh = small("obama")
    source = _measure(skin.jpeg_roundtrip(image, 92), mesh)
    output = _measure(skin.jpeg_roundtrip(skin.relight(image, 1.2), 92), mesh)
    shift = skin_shift(source, output)
    assert shift.delta_ita > 2.0
    assert abs(shift.delta_ita_corrected) < 1.0
    assert abs(shift.headline_delta_ita) < 1.0 and shift.headline_delta_ita == shift.delta_ita_reported


def test_group_stability_on_a_real_photo(small):
    image, mesh = small("obama")
    grid = dict(exposures=(0.8, 1.0, 1.2), ccts=(4000.0, 5000.0, 6504.0))
    stability = skin.ita_group_stability(image, skin.skin_mask(image, mesh), **grid)
    assert stability.conditions == 9
    assert stability.group == _measure(image, mesh).ita_group
    assert stability.ita_range[1] - stability.ita_range[0] > 5.0
    assert stability.share < 1.0  # this face changes group as photographed under some of the light ...
    assert stability.share_light_corrected == 1.0  # ... and keeps it once the light is taken out
    lo, hi = stability.ita_light_corrected_range
    assert hi - lo < 1.0
    assert stability.to_dict()["share"] == pytest.approx(stability.share, abs=1e-4)
    # Through whole relit photos and a JPEG re-save the corrected group holds too.
    resaved = skin.ita_group_stability(image, mesh=mesh, exposures=(0.8, 1.2), ccts=(4000.0,), jpeg_quality=90)
    assert resaved.conditions == 2 and resaved.share_light_corrected == 1.0


def test_relight_is_a_no_op_at_d65_and_is_warmer_at_4000k(small):
    image, _ = small("astronaut")
    same = skin.relight(image, 1.0, 6504.0)
    assert np.abs(same.astype(int) - image.astype(int)).max() <= 1
    warm = skin.relight(image, 1.0, 4000.0).astype(float)
    assert warm[..., 0].mean() > image[..., 0].mean() and warm[..., 2].mean() < image[..., 2].mean()
    np.testing.assert_allclose(skin.illuminant_xy(6504.0), (0.3127, 0.3290), atol=2e-4)


# ---- the audit's shift ----------------------------------------------------------------------------


@dataclasses.dataclass
class _Tone:
    ita: float
    lab: tuple[float, float, float]
    monk: int
    ita_group: int


def test_skin_shift_carries_both_deltas_and_wraps_the_angle():
    source = _Tone(179.0, (60.0, 1.0, -1.0), 3, 1)
    output = _Tone(-179.0, (60.0, 1.0, -1.1), 3, 1)
    shift = skin_shift(source, output)
    assert shift.delta_ita == pytest.approx(2.0) and shift.delta_ita_corrected is None
    assert shift.headline_delta_ita == shift.delta_ita
    image, mask = _patch_scene((62.0, 14.0, 18.0))
    a = skin.measure_skin(image, mask)
    b = skin.measure_skin(skin.relight(image, 1.2, 4500.0), mask)
    full = skin_shift(a, b)
    assert abs(full.delta_ita_corrected) < 0.6 and abs(full.delta_ita) > 3.0
    assert full.source_ita_corrected == pytest.approx(a.ita_light_corrected, abs=1e-3)
    assert shifts_from_records([full.to_dict()])[0] == SkinShift(**full.to_dict())
    old = {k: v for k, v in full.to_dict().items() if k not in {"delta_ita_corrected", "source_ita_corrected"}}
    assert shifts_from_records([old])[0].delta_ita_corrected is None  # records written before the field
