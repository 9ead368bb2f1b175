"""Skin tone measurement: skin mask, ITA°, ITA groups, the Monk Skin Tone scale, ΔE2000.

All colour maths uses scikit-image (``rgb2lab``/``lab2rgb`` with the D65 white point and the 2°
observer, ``deltaE_ciede2000``); pixels are treated as sRGB.

**ITA°** (individual typology angle; Chardon et al. 1991, Del Bino & Bernerd 2013) on a CIELAB pixel:

    ITA° = arctan((L* − 50) / b*) · 180/π

is the polar angle of the point ``(b*, L* − 50)``. It is computed as the full-plane angle

    ITA° = atan2(L* − 50, b*) · 180/π   ∈ [−180°, 180°]

which *is* the literature formula for ``b* > 0`` (every ordinary skin colour) and continues it
without clipping: at ``b* = 0`` it passes through ±90° continuously, and for ``b* < 0`` (a bluish
pixel, or a face pushed past neutral by a tone change or a colour cast) it goes on to ``(90°, 180°]``
above mid-grey and ``[−180°, −90°)`` below it. (Up to 2026-12 the angle was clipped to ±90° there,
so such faces registered no shift at all.) The only discontinuity is the branch cut ``b* < 0,
L* = 50`` (a bluish mid-grey, far from any skin), where +180° and −180° meet.

**A shift** between two angles is the signed angular difference wrapped into (−180°, 180°]
(:func:`angle_difference`), which is continuous everywhere, the branch cut included: it is the
rotation in the ``(b*, L*)`` plane that carries one colour to the other (what :func:`shift_ita`
applies). For ``|ITA| < 90°`` a positive shift means lighter (higher L*) and/or less yellow; beyond
±90° the same rotation continues past neutral (bluer, and towards mid-grey), so "positive = lighter"
holds literally only inside (−90°, 90°) and as "further along the same rotation" outside. Medians
of per-pixel angles are taken on the circle (:func:`angular_median`), so a face whose pixels straddle
the cut still has one sensible median.

**Light-corrected ITA** (``SkinTone.ita_light_corrected``) reads the skin relative to the light of
the same photo (see :func:`light_corrected_lab`): sRGB is linearised, the scene's grey is estimated
from the *non-skin* pixels (a luminance-rank-trimmed grey-world, :func:`scene_grey`), a von Kries
adaptation in CAT02 space (colour-science) maps that grey to D65 at luminance
:data:`SCENE_GREY_Y` (which also normalises exposure), and the result goes to Lab → ITA. A
global exposure or colour-temperature change moves the scene grey and the skin by the same
diagonal in cone space, so it cancels; a change to the skin alone does not. It assumes what
grey-world assumes: that the scene outside the face averages to grey. A strongly coloured
background (the astronaut photo's flag and orange-lit suit) reads as coloured light and pulls the
corrected skin colour the other way, and a much brighter or darker background than usual shifts the
exposure normalisation; so it is the right measure for comparing two versions of the *same* scene
(an output against its source with the background kept, a re-exposed or re-white-balanced copy),
and an approximate one across different scenes. :attr:`SkinTone.light_corrected_plausible` says when
the corrected skin is no longer red-yellow, i.e. when the scene was visibly misread.

Measured on the real test photos at 640 px (``python -m headshot_lab.testing.skin_light``; exposure
0.8–1.2 × 4000–6504 K, 30 conditions, fresh skin mask each time): light-only changes move the
as-photographed ITA° by up to 11–19° (29° for the astronaut) and the corrected one by ≤ 0.7°; ≤ 1.1°
with a JPEG q90 re-save on both sides; ≤ 1.4° when the relighting uses Bradford instead of the
correction's CAT02. The astronaut is the exception (orange suit and flag: grey-world misreads the
scene and the corrected skin sits near the neutral axis, where the angle is ill-conditioned: 3–6°). A
+3° light-corrected skin change reads +2.0…+3.6° through the same relighting and re-save (astronaut
−0.5…+8.2°). The same person across four different scenes (obama, obama2, obama3, obama_partial)
spreads over 39.5° as photographed and 96° corrected (5.6° against 15.1° without obama3, a small face
in a bright room): the correction takes out the light, and puts the scene in.

**The reported shift within one scene** (:func:`light_matched_delta_ita`, what every report headlines
for an output against its source) does not use the scene greys above, which average *different* pixel
sets once a photo is cropped or resized. Each tone keeps its scene in face-relative cells
(:func:`scene_cells`: centred on the skin mask, scaled by its spread, so a crop or a resize keeps each
cell over the same part of the scene); the light change is a CAT02 diagonal fitted to the cells valid in
both photos (:func:`scene_gain`), and the shift is the as-photographed per-pixel ITA° change less what
that light does to the skin's colour (:func:`gain_corrected_delta_ita`). On the 58 independent people
(``python -m eval.skin_nulls``) a re-encode moves it by +0.18° (SD 0.9°; the scene greys: +1.4°, SD 2.9°),
a relighting by +0.17° (SD 1.4°), and a planted ±3° reads +3.2° / −2.75° (SD 0.9° / 0.75°). A gain the cells
cannot tell from 1 is not applied (:data:`SCENE_GAIN_SHRINK`).

**ITA groups** (Del Bino's six classes; half-open intervals, the lower bound excluded):

=====  ================  ==================
group  band              ITA°
=====  ================  ==================
I      very light        ITA > 55
II     light             41 < ITA ≤ 55
III    intermediate      28 < ITA ≤ 41
IV     tan               10 < ITA ≤ 28
V      brown             −30 < ITA ≤ 10
VI     dark              ITA ≤ −30
=====  ================  ==================

Angles beyond ±90° (``b* < 0``, see above) fall in group I above mid-grey and group VI below it.

They are labelled "ITA group I" … "ITA group VI": a colorimetric class of the photographed skin,
*not* a clinical Fitzpatrick phototype (which is about how skin reacts to the sun).

**Monk Skin Tone scale** (Monk 2019): ten reference swatches; a measured colour is assigned the
nearest swatch by CIEDE2000.

The measurement is robust by construction: per-pixel ITA over a skin mask that avoids eyes, brows,
lips, nostrils, the hairline and the jaw edge, with the darkest and brightest
tails of L* removed, summarised by medians (and the inter-quartile range).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from dataclasses import replace as dataclass_replace
from typing import TYPE_CHECKING, Any

import numpy as np

from headshot_lab.errors import FaceNotFoundError, HeadshotLabError

if TYPE_CHECKING:
    from headshot_lab.faces.mesh import FaceMesh

#: Smallest skin mask (pixels) from which a tone is reported.
MIN_SKIN_PIXELS = 200
#: Below this median chroma ``C*ab = √(a*² + b*²)`` the "skin" is grey (a black-and-white photo,
#: whose pixels measure ≈ 0). Kept far below real skin: the darkest Monk swatch (10) has C*ab ≈ 3.8
#: and swatch 9 ≈ 6.5, so a higher threshold would refuse the darkest skin.
MIN_CHROMA = 1.5

#: ``(lower bound, group, band)``: ITA > lower bound → that group (checked from the top).
ITA_BANDS: tuple[tuple[float, int, str], ...] = (
    (55.0, 1, "very light"),
    (41.0, 2, "light"),
    (28.0, 3, "intermediate"),
    (10.0, 4, "tan"),
    (-30.0, 5, "brown"),
    (-np.inf, 6, "dark"),
)
_ROMAN = ("I", "II", "III", "IV", "V", "VI")

#: Monk Skin Tone scale swatches 1 (lightest) … 10 (darkest), sRGB hex.
MONK_HEX: tuple[str, ...] = (
    "#f6ede4",
    "#f3e7db",
    "#f7ead0",
    "#eadaba",
    "#d7bd96",
    "#a07e56",
    "#825c43",
    "#604134",
    "#3a312a",
    "#292420",
)

# Light correction (``light_corrected_lab``; module docstring):
#: Luminance percentiles of the non-skin pixels averaged into the scene grey. The top quarter is left
#: out (clipped highlights under +20 % exposure); no bottom cut: JPEG noise in the dark tail moves a
#: rank cut there (a (5, 75) band let a q90 re-save move biden's corrected ITA by 2.9° at 1200 px; 0.6° now).
SCENE_BAND = (0.0, 75.0)
#: Luminance the scene grey is mapped to. It sets only where the corrected scale sits (differences
#: within a scene hardly depend on it): about the median scene-grey luminance of the real test
#: photos (0.025–0.15 over obama, obama2, obama3, obama_partial, biden, astronaut; printed by
#: ``python -m headshot_lab.testing.skin_light --json``), so that a photo whose scene is an ordinary
#: neutral one keeps roughly its as-photographed ITA°.
SCENE_GREY_Y = 0.045
#: Chromatic adaptation transform of the correction (a von Kries diagonal in its cone space).
LIGHT_CAT = "CAT02"
#: The face hull is grown by this × √(skin pixels) before the rest of the photo counts as scene.
FACE_MARGIN = 0.05
#: Fewest / most (strided subsample) non-skin pixels used for the scene grey.
MIN_SCENE_PIXELS, SCENE_SAMPLE = 2000, 200_000
# Scene cells (``scene_cells``, ``scene_gain``): the light change between two versions of one scene.
#: The grid has ``SCENE_GRID × SCENE_GRID`` cells spanning ``±SCENE_SPAN`` face units (:data:`SCENE_UNIT_MOMENTS`)
#: around the skin mask's centroid.
SCENE_GRID, SCENE_SPAN = 32, 2.5
#: The face unit is this × √(σ_x σ_y) of the skin mask's pixel coordinates (≈ √(area) for a filled disc; the
#: spread of the mask moves less than its pixel count when the photometric exclusions or the mesh jitter).
SCENE_UNIT_MOMENTS = 3.5
#: A cell counts when scene pixels cover at least this share of its area (a crop or the face hull cuts
#: the rest) and at most :data:`SCENE_CELL_MAX_CLIPPED` of them have a channel ≥ :data:`SCENE_CLIP`.
SCENE_CELL_COVERAGE, SCENE_CELL_MAX_CLIPPED, SCENE_CLIP = 0.75, 0.02, 250
#: Cells darker than this mean luminance (linear) are left out (8-bit steps make their ratios noisy).
SCENE_CELL_MIN_Y = 0.002
#: Fewest cells valid in both photos for :func:`scene_gain`; with fewer the scene greys are used.
MIN_SCENE_CELLS = 8
#: Share of the sorted log ratios trimmed from each end before averaging (0.25: the inter-quartile mean).
SCENE_GAIN_TRIM = 0.25
#: Standard errors within which :func:`scene_gain` reads no light change (its shrinkage towards 1; measured
#: by ``python -m eval.skin_nulls`` on the 56 people with a measurable tone: the table in :mod:`eval.skin_nulls`).
SCENE_GAIN_SHRINK = 2.0
#: Ridge weight pulling :func:`scene_light_matrix`'s off-diagonal part towards the diagonal gain.
SCENE_MATRIX_RIDGE = 0.05

# Skin-mask geometry, in units of the inter-ocular distance ``d`` (iris centre to iris centre).
#: The face oval is shrunk towards its centroid by this factor (drops the jaw line, ears, temples).
OVAL_SHRINK = 0.88
#: Forehead kept up to this fraction of the way from the brow tops to the top of the face oval.
FOREHEAD_FRACTION = 0.55
#: Margins added around the excluded features (× ``d``).
EYE_MARGIN, BROW_MARGIN, LIPS_MARGIN, NOSTRIL_MARGIN = 0.12, 0.08, 0.08, 0.05
# Photometric exclusions (``exclude_extremes``):
#: Pixels whose L* is below / above these percentiles of the candidate region are dropped
#: (deep shadows: nostril rims, eye sockets, beard; specular highlights on forehead and nose).
SHADOW_PERCENTILE, HIGHLIGHT_PERCENTILE = 5.0, 95.0


class NoColourError(HeadshotLabError):
    """The skin pixels carry no hue (a black-and-white or monochrome-tinted photo)."""

    code = "no_colour"
    fix = "Use a colour photo; skin tone cannot be measured from a black-and-white one."


class NoSkinError(FaceNotFoundError):
    """Too few skin pixels to measure a tone."""

    code = "no_skin"
    fix = "Use a photo where the face is large, sharp, evenly lit and not covered (hair, hands, mask)."


@dataclass(frozen=True)
class SkinTone:
    """A robust skin-tone measurement.

    Attributes:
        ita: median ITA° over the skin pixels.
        ita_iqr: ``(q25, q75)`` of the per-pixel ITA°.
        ita_group: 1 … 6 (Del Bino; see the module table).
        ita_group_label: ``"ITA group I"`` … ``"ITA group VI"`` (not a clinical Fitzpatrick type).
        ita_band: ``"very light"``, ``"light"``, ``"intermediate"``, ``"tan"``, ``"brown"`` or ``"dark"``.
        lab: per-channel median ``(L*, a*, b*)`` (D65).
        monk: nearest Monk Skin Tone swatch to ``lab``, 1 (lightest) … 10 (darkest).
        monk_delta_e: CIEDE2000 distance from ``lab`` to that swatch.
        skin_pixels: number of pixels measured.
        mask_fraction: ``skin_pixels`` / pixels in the image.
        ita_light_corrected: median ITA° of the skin read against the photo's own light
            (:func:`light_corrected_lab`; ``None`` when the photo has too little non-skin area to
            estimate the light). Compare *this* one between two versions of a scene; ``ita`` is the
            as-photographed value (kept: it is what the literature's bands were defined on).
        lab_light_corrected: per-channel median Lab of the light-corrected skin.
        scene_grey_xy: CIE xy chromaticity of the estimated scene grey (D65 ≈ (0.3127, 0.3290)).
        scene_grey_y: its luminance (linear, 0–1); the corrected tone maps it to :data:`SCENE_GREY_Y`.
        scene_cells: the scene around the face in face-relative cells (:func:`scene_cells`):
            ``((index, R, G, B), …)`` mean linear sRGB of each well-covered cell, what
            :func:`light_matched_delta_ita` matches between two versions of a scene (``None`` when not measured).
        skin_linear: per-channel median linear sRGB of the skin pixels (:func:`scene_match`), the skin colour
            :func:`light_matched_delta_ita` undoes the light on (a median per channel commutes with a gain and
            ignores the clipped top of each channel while under half the skin is clipped).

    Derived: :attr:`ita_group_light_corrected`, :attr:`light_corrected_plausible`.
    """

    ita: float
    ita_iqr: tuple[float, float]
    ita_group: int
    ita_group_label: str
    ita_band: str
    lab: tuple[float, float, float]
    monk: int
    monk_delta_e: float
    skin_pixels: int
    mask_fraction: float
    ita_light_corrected: float | None = None
    lab_light_corrected: tuple[float, float, float] | None = None
    scene_grey_xy: tuple[float, float] | None = None
    scene_grey_y: float | None = None
    scene_cells: tuple[tuple[float, float, float, float], ...] | None = field(default=None, repr=False)
    skin_linear: tuple[float, float, float] | None = None

    @property
    def light_corrected_plausible(self) -> bool | None:
        """Whether the light-corrected median skin colour is red-yellow (``a* > 0`` and ``b* > 0``), as all skin is.

        ``False`` means the scene's grey was misread (grey-world fails on a strongly coloured scene: red
        curtains read as red light turn the corrected skin green, an orange suit turns it blue): the
        corrected *value* and its ITA group are then not to be trusted, although the *difference*
        between two versions of the same scene still cancels the light (the bias is common to both).
        ``None`` without a correction.
        """
        if self.lab_light_corrected is None:
            return None
        return bool(self.lab_light_corrected[1] > 0 and self.lab_light_corrected[2] > 0)

    @property
    def ita_group_light_corrected(self) -> int | None:
        """ITA group (1 … 6) of :attr:`ita_light_corrected` (``None`` without it)."""
        return None if self.ita_light_corrected is None else ita_group(self.ita_light_corrected)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (plain ints, floats rounded; the light-corrected fields are ``None`` when absent)."""

        def rounded(values: Any, digits: int) -> Any:
            return None if values is None else [round(float(v), digits) for v in values]

        corrected = self.ita_light_corrected
        return {
            "ita": round(self.ita, 2),
            "ita_iqr": [round(self.ita_iqr[0], 2), round(self.ita_iqr[1], 2)],
            "ita_group": self.ita_group,
            "ita_group_label": self.ita_group_label,
            "ita_band": self.ita_band,
            "lab": [round(v, 2) for v in self.lab],
            "monk": self.monk,
            "monk_delta_e": round(self.monk_delta_e, 2),
            "skin_pixels": self.skin_pixels,
            "mask_fraction": round(self.mask_fraction, 5),
            "ita_light_corrected": None if corrected is None else round(corrected, 2),
            "ita_group_light_corrected": self.ita_group_light_corrected,
            "light_corrected_plausible": self.light_corrected_plausible,
            "lab_light_corrected": rounded(self.lab_light_corrected, 2),
            "scene_grey_xy": rounded(self.scene_grey_xy, 4),
            "scene_grey_y": None if self.scene_grey_y is None else round(self.scene_grey_y, 4),
            "scene_cells": None if self.scene_cells is None else cells_to_list(self.scene_cells),
            "skin_linear": None if self.skin_linear is None else [float(f"{v:.6g}") for v in self.skin_linear],
        }


# --------------------------------------------------------------------------------------------
# Colour maths
# --------------------------------------------------------------------------------------------


@functools.cache
def _skimage_lab_constants() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(sRGB→XYZ matrix, XYZ→sRGB matrix, D65 2° white, 256-entry sRGB-decoding table)`` exactly as scikit-image's.

    The table applies scikit-image's own ``rgb2xyz`` decoding, ``((v + 0.055)/1.055)^2.4`` for ``v > 0.04045``
    and ``v/12.92`` below, to ``v = k/255``, so a table look-up gives the very numbers it computes.
    """
    from skimage.color import colorconv

    values = np.arange(256, dtype=np.float64) / 255.0
    table = np.where(values > 0.04045, np.power((values + 0.055) / 1.055, 2.4), values / 12.92)
    white = np.asarray(colorconv.xyz_tristimulus_values(illuminant="D65", observer="2"), dtype=np.float64)
    constants = (
        np.asarray(colorconv.xyz_from_rgb, dtype=np.float64),
        np.asarray(colorconv.rgb_from_xyz, dtype=np.float64),
        white,
        table,
    )
    for array in constants:
        array.setflags(write=False)
    return constants


def _lab_f(t: np.ndarray) -> np.ndarray:
    """CIE 1976 ``f(t)`` as scikit-image writes it: ``∛t`` for ``t > 0.008856``, else ``7.787 t + 16/116``."""
    out: np.ndarray = np.where(t > 0.008856, np.cbrt(t), 7.787 * t + 16.0 / 116.0)
    return out


@functools.cache
def _xyz_tables() -> np.ndarray:
    """``(3, 3, 256)`` tables ``T[i, c, k] = M[i, c] · decode(k/255) / W_i``: ``XYZ_i / W_i = Σ_c T[i, c, rgb_c]``."""
    to_xyz, _, white, table = _skimage_lab_constants()
    tables: np.ndarray = (to_xyz / white[:, None])[:, :, None] * table[None, None, :]
    tables.setflags(write=False)
    return tables


def _relative_xyz(array: np.ndarray, rows: Sequence[int] = (0, 1, 2)) -> list[np.ndarray]:
    """``XYZ_i / W_i`` (the listed rows) of ``uint8`` sRGB pixels, by three table look-ups per row."""
    tables = _xyz_tables()
    r, g, b = array[..., 0], array[..., 1], array[..., 2]
    return [tables[i, 0][r] + tables[i, 1][g] + tables[i, 2][b] for i in rows]


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (``uint8`` 0–255 or float 0–1, last axis = 3) → CIELAB (D65, 2°), ``float64``.

    scikit-image's ``rgb2lab`` formula: ``XYZ = M · decode(rgb)``, ``(x, y, z) = f(XYZ / W_D65)``,
    ``L* = 116 y − 16``, ``a* = 500 (x − y)``, ``b* = 200 (y − z)``. ``uint8`` input is decoded and
    multiplied through 256-entry tables of the same functions (:func:`_xyz_tables`; several times
    faster, equal to ``rgb2lab`` within 1e-9, tested in ``tests/test_audit_speed.py``); float input goes
    through ``rgb2lab``.
    """
    array = np.asarray(rgb)
    if array.dtype != np.uint8:
        from skimage.color import rgb2lab

        return np.asarray(
            rgb2lab(array.astype(np.float64), illuminant="D65", observer="2", channel_axis=-1), dtype=np.float64
        )
    if array.shape[-1:] != (3,):
        raise ValueError(f"expected RGB pixels with a last axis of 3, got shape {array.shape}")
    x, y, z = (_lab_f(v) for v in _relative_xyz(array))
    lab = np.empty(array.shape, dtype=np.float64)
    lab[..., 0] = 116.0 * y - 16.0
    lab[..., 1] = 500.0 * (x - y)
    lab[..., 2] = 200.0 * (y - z)
    return lab


def lightness(rgb: np.ndarray) -> np.ndarray:
    """CIELAB ``L*`` (D65) of ``uint8`` sRGB pixels: ``116 f(Y) − 16`` with ``Y`` the middle row of ``M · decode(rgb)``.

    The ``L*`` column of :func:`rgb_to_lab` (a third of the work: ``L*`` depends on ``Y`` alone).
    """
    array = np.asarray(rgb)
    if array.dtype != np.uint8:
        return rgb_to_lab(array)[..., 0]
    (y,) = _relative_xyz(array, (1,))
    out: np.ndarray = 116.0 * _lab_f(y) - 16.0
    return out


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """CIELAB (D65, 2°) → sRGB ``uint8`` (out-of-gamut values clipped, then rounded).

    scikit-image's ``lab2rgb`` formula written out (``z < 0`` set to 0, ``f⁻¹``, ``M⁻¹``, the sRGB
    encoding, clip to [0, 1]): equal to it within 1e-12 before rounding (tested).
    """
    _, from_xyz, white, _ = _skimage_lab_constants()
    values = np.asarray(lab, dtype=np.float64)
    fy = (values[..., 0] + 16.0) / 116.0
    xyz = np.stack([values[..., 1] / 500.0 + fy, fy, np.maximum(fy - values[..., 2] / 200.0, 0.0)], axis=-1)
    cubed = xyz > 0.2068966
    xyz[cubed] = np.power(xyz[cubed], 3.0)
    xyz[~cubed] = (xyz[~cubed] - 16.0 / 116.0) / 7.787
    scaled = from_xyz * white  # rgb_c = Σ_i M⁻¹[c, i] · W_i · xyz_i, written out (faster than a (n, 3) @ (3, 3))
    x, y, z = xyz[..., 0], xyz[..., 1], xyz[..., 2]
    rgb = np.stack([scaled[c, 0] * x + scaled[c, 1] * y + scaled[c, 2] * z for c in range(3)], axis=-1)
    high = rgb > 0.0031308
    rgb[high] = 1.055 * np.power(rgb[high], 1 / 2.4) - 0.055
    rgb[~high] *= 12.92
    return np.asarray(np.clip(np.round(np.clip(rgb, 0.0, 1.0) * 255.0), 0, 255), dtype=np.uint8)


def ita_from_lab(L: Any, b: Any) -> Any:
    """ITA° = atan2(L* − 50, b*) · 180/π ∈ [−180°, 180°] (module docstring; = arctan((L* − 50)/b*) for b* > 0).

    Vectorised; returns a ``float`` for scalar input. Not clipped: ``b* ≤ 0`` continues past ±90°.
    """
    ita = np.degrees(np.arctan2(np.asarray(L, dtype=np.float64) - 50.0, np.asarray(b, dtype=np.float64)))
    return float(ita) if np.ndim(ita) == 0 else ita


def angle_difference(after: Any, before: Any) -> Any:
    """Signed angular difference ``after − before`` wrapped into (−180°, 180°] (continuous across the cut).

    ``wrap(d) = 180 − ((180 − d) mod 360)``; for two angles inside (−90°, 90°) it is the plain difference.
    """
    d = np.asarray(after, dtype=np.float64) - np.asarray(before, dtype=np.float64)
    wrapped = 180.0 - np.mod(180.0 - d, 360.0)
    return float(wrapped) if np.ndim(wrapped) == 0 else wrapped


def angular_median(angles: np.ndarray, percentiles: Sequence[float] = ()) -> tuple[float, list[float]]:
    """Median (and percentiles) of angles in degrees, taken on the circle.

    The angles are unwrapped around their circular mean ``μ`` (``scipy.stats.circmean``), i.e.
    ``θᵢ′ = μ + wrap(θᵢ − μ)``, and the ordinary median/percentiles of ``θᵢ′`` are wrapped back into
    (−180°, 180°]. For angles spanning less than 180° away from the cut (all real skin) this equals
    the plain median.
    """
    values = np.asarray(angles, dtype=np.float64)
    centre = circular_mean(values)
    unwrapped = centre + angle_difference(values, centre)
    quantiles = np.percentile(unwrapped, [50.0, *percentiles])  # one partial sort for all of them
    median, *extra = (float(angle_difference(v, 0.0)) for v in np.atleast_1d(quantiles))
    return median, extra


def circular_mean(angles: np.ndarray) -> float:
    """Circular mean in degrees: ``atan2(Σ sin θᵢ, Σ cos θᵢ)`` in ``[−180°, 180°)``.

    ``scipy.stats.circmean(θ, high=180, low=−180)``'s value (equal within 1e-9°, tested) without its
    per-call overhead.
    """
    radians = np.radians(np.asarray(angles, dtype=np.float64))
    mean = float(np.degrees(np.arctan2(np.sin(radians).sum(), np.cos(radians).sum())))
    return -180.0 if mean >= 180.0 else mean


def ita_group(ita: float) -> int:
    """Del Bino group 1 … 6 of an ITA° value (see the module table; lower bounds excluded)."""
    if not np.isfinite(ita):
        raise ValueError(f"ITA must be a finite number, got {ita}")
    for lower, group, _ in ITA_BANDS:
        if ita > lower:
            return group
    return 6  # pragma: no cover - the last band's bound is -inf


def ita_band(ita: float) -> str:
    """Band name of an ITA° value: ``"very light"`` … ``"dark"``."""
    return ITA_BANDS[ita_group(ita) - 1][2]


def ita_group_label(group: int) -> str:
    """``"ITA group I"`` … ``"ITA group VI"``."""
    return f"ITA group {_ROMAN[group - 1]}"


def _lab_of(value: Any) -> np.ndarray:
    return np.asarray(value.lab if isinstance(value, SkinTone) else value, dtype=np.float64)


def delta_e2000(lab1: Any, lab2: Any) -> Any:
    """CIEDE2000 colour difference (Sharma et al. 2005; ``kL = kC = kH = 1``) via scikit-image.

    Accepts ``(…, 3)`` Lab arrays (broadcast) or :class:`SkinTone` objects (their median ``lab``);
    returns a ``float`` for single colours.
    """
    from skimage.color import deltaE_ciede2000

    a, b = np.broadcast_arrays(_lab_of(lab1), _lab_of(lab2))
    delta = deltaE_ciede2000(a, b, channel_axis=-1)
    return float(delta) if np.ndim(delta) == 0 else delta


@functools.cache
def monk_lab() -> np.ndarray:
    """``(10, 3)`` CIELAB of the Monk swatches (from :data:`MONK_HEX`)."""
    rgb = np.array([[int(h[i : i + 2], 16) for i in (1, 3, 5)] for h in MONK_HEX], dtype=np.uint8)
    lab = rgb_to_lab(rgb)
    lab.setflags(write=False)
    return lab


def nearest_monk(lab: Any) -> tuple[int, float]:
    """``(index 1 … 10, ΔE2000)`` of the Monk swatch nearest to one Lab colour."""
    distances = delta_e2000(monk_lab(), np.broadcast_to(_lab_of(lab), (len(MONK_HEX), 3)))
    index = int(np.argmin(distances))
    return index + 1, float(distances[index])


# --------------------------------------------------------------------------------------------
# Light correction (the scene's grey → D65) and synthetic relighting
# --------------------------------------------------------------------------------------------


@functools.cache
def _linear_lut() -> np.ndarray:
    """``decode(k/255)`` for ``k = 0 … 255``: the IEC 61966-2-1 EOTF, ``v/12.92`` for ``v ≤ 0.04045``, else
    ``((v + 0.055)/1.055)^2.4`` (colour-science's ``eotf_sRGB``; equal within 1e-15, tested), without
    importing colour-science (≈ 1–2 CPU-s a process)."""
    lut = np.array(_skimage_lab_constants()[3], dtype=np.float64)
    lut.setflags(write=False)
    return lut


@functools.cache
def _luminance_tables() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``w_c · decode(k/255)`` for the BT.709 weights ``w = (0.2126, 0.7152, 0.0722)``: ``Y = Σ_c T_c[rgb_c]``."""
    tables = tuple(weight * _linear_lut() for weight in (0.2126, 0.7152, 0.0722))
    for table in tables:
        table.setflags(write=False)
    return tables  # type: ignore[return-value]


def srgb_to_linear(rgb: Any) -> np.ndarray:
    """sRGB (``uint8`` or float 0–1) → linear light in [0, 1] (IEC 61966-2-1 EOTF, colour-science).

    ``uint8`` input goes through a 256-entry table of the same function.
    """
    array = np.asarray(rgb)
    if array.dtype == np.uint8:
        table: np.ndarray = _linear_lut()[array]
        return table
    from colour.models import eotf_sRGB

    return np.asarray(eotf_sRGB(array.astype(np.float64)), dtype=np.float64)


def linear_to_srgb(linear: Any) -> np.ndarray:
    """Linear light → sRGB ``uint8`` (clipped to [0, 1], encoded with the inverse EOTF, rounded)."""
    from colour.models import eotf_inverse_sRGB

    encoded = eotf_inverse_sRGB(np.clip(np.asarray(linear, dtype=np.float64), 0.0, 1.0))
    return np.clip(np.round(np.asarray(encoded) * 255.0), 0, 255).astype(np.uint8)


#: CIE 1931 xy of D65 (colour-science's ``CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D65"]``).
D65_XY = (0.3127, 0.3290)
#: IEC 61966-2-1's sRGB ↔ XYZ matrices as the standard prints them (four decimals; colour-science's
#: ``RGB_COLOURSPACES["sRGB"].matrix_RGB_to_XYZ`` / ``matrix_XYZ_to_RGB``, equal, tested).
SRGB_TO_XYZ = ((0.4124, 0.3576, 0.1805), (0.2126, 0.7152, 0.0722), (0.0193, 0.1192, 0.9505))
XYZ_TO_SRGB = ((3.2406, -1.5372, -0.4986), (-0.9689, 1.8758, 0.0415), (0.0557, -0.2040, 1.0570))
#: The CAT02 matrix (CIECAM02; colour-science's ``CAT_CAT02``).
CAT02 = ((0.7328, 0.4296, -0.1624), (-0.7036, 1.6975, 0.0061), (0.0030, 0.0136, 0.9834))


def _xy_to_xyz(xy: Sequence[float]) -> np.ndarray:
    """``(x/y, 1, (1 − x − y)/y)``: the XYZ of chromaticity ``xy`` at ``Y = 1``."""
    x, y = (float(v) for v in xy)
    return np.array([x / y, 1.0, (1.0 - x - y) / y], dtype=np.float64)


@functools.cache
def _srgb_matrices() -> tuple[np.ndarray, np.ndarray]:
    """``(SRGB_TO_XYZ, XYZ_TO_SRGB)`` as read-only arrays."""
    matrices = (np.array(SRGB_TO_XYZ, dtype=np.float64), np.array(XYZ_TO_SRGB, dtype=np.float64))
    for matrix in matrices:
        matrix.setflags(write=False)
    return matrices


def _von_kries_cat02(white: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``M⁻¹ · diag(M·W_target / M·W) · M`` with ``M`` = :data:`CAT02`: colour-science's
    ``matrix_chromatic_adaptation_VonKries(W, W_target, "CAT02")`` (within 1e-12; tested)."""
    cat = np.asarray(CAT02, dtype=np.float64)
    gains = (cat @ np.asarray(target, dtype=np.float64)) / (cat @ np.asarray(white, dtype=np.float64))
    adapted: np.ndarray = np.linalg.inv(cat) @ (gains[:, None] * cat)
    return adapted


def _linear_to_xyz(linear: np.ndarray) -> np.ndarray:
    """``XYZ = M_sRGB · ρ``: ``colour.RGB_to_XYZ(ρ, "sRGB", apply_cctf_decoding=False)`` (its CAT02 step maps
    D65 to D65, the identity up to 1e-15; tested) without colour-science's per-call set-up."""
    return np.asarray(np.asarray(linear, dtype=np.float64) @ _srgb_matrices()[0].T, dtype=np.float64)


def _xyz_to_linear(xyz: np.ndarray) -> np.ndarray:
    """``ρ = M_sRGB⁻¹ · XYZ``: ``colour.XYZ_to_RGB(XYZ, "sRGB", apply_cctf_encoding=False)`` (as :func:`_linear_to_xyz`)."""
    return np.asarray(np.asarray(xyz, dtype=np.float64) @ _srgb_matrices()[1].T, dtype=np.float64)


def _xyz_to_lab_d65(xyz: np.ndarray) -> np.ndarray:
    """``colour.XYZ_to_Lab(XYZ, D65 xy)``: CIE 1976 ``L*a*b*`` against the D65 white (``Y = 1``), in numpy.

    ``f(t) = t^{1/3}`` for ``t > (24/116)³``, else ``(841/108) t + 16/116``; ``L* = 116 f(Y/Yₙ) − 16``,
    ``a* = 500 (f(X/Xₙ) − f(Y/Yₙ))``, ``b* = 200 (f(Y/Yₙ) − f(Z/Zₙ))`` (equal to colour-science within 1e-9, tested).
    """
    t = np.asarray(xyz, dtype=np.float64) / _d65_xyz()
    f = np.where(t > (24.0 / 116.0) ** 3, np.cbrt(t), (841.0 / 108.0) * t + 16.0 / 116.0)
    lab = np.empty(f.shape, dtype=np.float64)
    lab[..., 0] = 116.0 * f[..., 1] - 16.0
    lab[..., 1] = 500.0 * (f[..., 0] - f[..., 1])
    lab[..., 2] = 200.0 * (f[..., 1] - f[..., 2])
    return lab


def _xyz_to_xy(xyz: np.ndarray) -> np.ndarray:
    """CIE 1931 chromaticity ``(X, Y) / (X + Y + Z)`` of one colour (``colour.XYZ_to_xy``)."""
    values = np.asarray(xyz, dtype=np.float64)
    return np.asarray(values[:2] / values.sum(), dtype=np.float64)


@functools.cache
def _d65_xyz() -> np.ndarray:
    """XYZ of D65 at ``Y = 1`` (colour-science's ``xy_to_XYZ`` of :data:`D65_XY`)."""
    return _xy_to_xyz(D65_XY)


def channel_max(pixels: np.ndarray) -> np.ndarray:
    """``max(R, G, B)`` of each ``(..., 3)`` pixel (the same as ``pixels.max(axis=-1)``, ≈ 10× faster)."""
    return np.asarray(np.maximum(np.maximum(pixels[..., 0], pixels[..., 1]), pixels[..., 2]))


def scene_region(mask: np.ndarray) -> np.ndarray:
    """The non-skin part of the photo: everything outside the skin mask's convex hull grown by a margin.

    The hull (plus :data:`FACE_MARGIN` × ``√(skin pixels)``) also covers the holes the photometric
    exclusions leave in the mask and the skin just around it, so a change to the face's skin never
    reaches the pixels the light is estimated from.
    """
    import cv2

    ys, xs = np.nonzero(mask)
    region = np.zeros(mask.shape, dtype=np.uint8)
    if len(xs) == 0:
        return np.ones(mask.shape, dtype=bool)
    hull = cv2.convexHull(np.stack([xs, ys], axis=1).astype(np.int32))[:, 0, :]
    cv2.fillPoly(region, [hull], 1)
    grow = max(1, round(FACE_MARGIN * np.sqrt(len(xs))))
    grown = cv2.dilate(region, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
    outside: np.ndarray = np.asarray(grown) == 0
    return outside


def scene_pixels(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The non-skin pixels the light is estimated from: :func:`scene_region` on an even grid of ≤ :data:`SCENE_SAMPLE`.

    The photo and mask are sampled every ``k = ⌈√(H·W / SCENE_SAMPLE)⌉`` rows and columns first, so a
    12-megapixel photo costs what a 0.2-megapixel one does (the estimate is a mean over a band of
    ranks; a regular grid of 200 000 pixels changes it by far less than the light it corrects).
    """
    height, width = mask.shape
    k = max(1, int(np.ceil(np.sqrt(height * width / SCENE_SAMPLE))))
    small = np.ascontiguousarray(mask[::k, ::k])
    pixels: np.ndarray = np.asarray(image)[::k, ::k][scene_region(small)]
    return pixels


def scene_grey(scene_pixels: np.ndarray) -> np.ndarray | None:
    """Linear-sRGB estimate of the scene's grey: a luminance-rank-trimmed grey-world.

        g = mean{ ρ(p) : Y(p) between the :data:`SCENE_BAND` percentiles of Y over the scene }

    with ``ρ`` linear sRGB and ``Y`` its luminance (BT.709 weights). Averaging is linear, so a global
    exposure × colour-temperature change ``ρ → Mρ`` moves ``g`` to ``Mg`` exactly (ranks by ``Y`` are
    kept by a scale and nearly kept by a colour change), while the rank band keeps the brightest pixels,
    the ones a brighter exposure clips, out (grey-world: Buchsbaum 1980; its Minkowski form,
    shades-of-grey, Finlayson & Trezzi 2004, weights exactly the clipped pixels most). At most :data:`SCENE_SAMPLE` pixels are used (an even stride). ``None`` when fewer than
    :data:`MIN_SCENE_PIXELS` are given or the band is black.

    Args:
        scene_pixels: ``(n, 3)`` sRGB pixels (``uint8`` or float 0–1) outside the face.
    """
    pixels = np.asarray(scene_pixels).reshape(-1, 3)
    if len(pixels) < MIN_SCENE_PIXELS:
        return None
    step = max(1, len(pixels) // SCENE_SAMPLE)
    sampled = pixels[::step]
    if sampled.dtype == np.uint8:  # Y by three look-ups; only the band's pixels decoded in full
        tables = _luminance_tables()
        luminance = tables[0][sampled[:, 0]] + tables[1][sampled[:, 1]] + tables[2][sampled[:, 2]]
    else:
        luminance = srgb_to_linear(sampled) @ np.array([0.2126, 0.7152, 0.0722])
    low, high = np.percentile(luminance, SCENE_BAND)
    band = (luminance >= low) & (luminance <= high)
    grey: np.ndarray = srgb_to_linear(sampled[band]).mean(axis=0)
    if not np.all(grey > 1e-6):
        return None
    return grey


def scene_cells(image: np.ndarray, mask: np.ndarray) -> tuple[tuple[float, float, float, float], ...] | None:
    """The scene around the face in face-relative cells: ``((index, R, G, B), …)``, mean linear sRGB per cell.

    With ``(c_x, c_y)`` the skin mask's centroid and ``u = 3.5 √(σ_x σ_y)`` (:data:`SCENE_UNIT_MOMENTS`; both follow a crop and a
    resize of the photo), pixel ``(x, y)`` lies in cell

        (i, j) = ⌊((y − c_y)/u + S) · G / 2S⌋, ⌊((x − c_x)/u + S) · G / 2S⌋,   index = i·G + j

    (``G`` = :data:`SCENE_GRID`, ``S`` = :data:`SCENE_SPAN`). Only scene pixels count (:func:`scene_region`:
    outside the grown face hull, so a change to the skin leaves every cell as it was). A cell is kept when
    those cover ≥ :data:`SCENE_CELL_COVERAGE` of its area (so a cell cut by the photo's edge or by the face
    hull is left out, not averaged over a different part of itself), at most :data:`SCENE_CELL_MAX_CLIPPED`
    of them are clipped (a channel ≥ :data:`SCENE_CLIP`), and its mean luminance is ≥
    :data:`SCENE_CELL_MIN_Y`; its value is the mean of its unclipped pixels. The photo is read on an even
    stride of ≤ :data:`SCENE_SAMPLE` pixels, as :func:`scene_pixels`. ``None`` without skin.

    Cell means are linear, so a change of light ``ρ → Mρ`` (diagonal ``M``) multiplies every cell by
    ``M`` (:func:`scene_gain` recovers it), whereas a re-save's crop or resize keeps each cell over the
    same part of the scene.
    """
    selected = np.asarray(mask, dtype=bool)
    ys, xs = np.nonzero(selected)
    if len(xs) == 0:
        return None
    height, width = selected.shape
    k = max(1, int(np.ceil(np.sqrt(height * width / SCENE_SAMPLE))))
    small = np.ascontiguousarray(selected[::k, ::k])
    region = scene_region(small)
    unit = SCENE_UNIT_MOMENTS * float(np.sqrt(xs.std() * ys.std()))
    centre_x, centre_y = float(xs.mean()), float(ys.mean())
    if not unit > 0:
        return None
    rows = (np.arange(small.shape[0]) * k - centre_y) / unit
    cols = (np.arange(small.shape[1]) * k - centre_x) / unit
    scale = SCENE_GRID / (2.0 * SCENE_SPAN)
    i = np.floor((rows + SCENE_SPAN) * scale).astype(np.int64)
    j = np.floor((cols + SCENE_SPAN) * scale).astype(np.int64)
    inside = region & ((i >= 0) & (i < SCENE_GRID))[:, None] & ((j >= 0) & (j < SCENE_GRID))[None, :]
    index = (i[:, None] * SCENE_GRID + j[None, :])[inside]
    pixels = np.asarray(image)[::k, ::k][inside]
    if len(index) == 0:
        return ()
    clipped = channel_max(pixels) >= SCENE_CLIP
    cells = SCENE_GRID * SCENE_GRID
    counts = np.bincount(index, minlength=cells)
    clipped_counts = np.bincount(index, weights=clipped, minlength=cells)
    linear = srgb_to_linear(pixels[~clipped])
    kept = index[~clipped]
    kept_counts = np.bincount(kept, minlength=cells)
    sums = np.stack([np.bincount(kept, weights=linear[:, c], minlength=cells) for c in range(3)], axis=1)
    area = (unit / scale / k) ** 2
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / kept_counts[:, None]
    luminance = means @ np.array([0.2126, 0.7152, 0.0722])
    good = (
        (counts >= SCENE_CELL_COVERAGE * area)
        & (clipped_counts <= SCENE_CELL_MAX_CLIPPED * np.maximum(counts, 1))
        & (kept_counts > 0)
        & (luminance >= SCENE_CELL_MIN_Y)
    )
    return tuple((float(c), float(means[c, 0]), float(means[c, 1]), float(means[c, 2])) for c in np.flatnonzero(good))


def scene_match(image: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
    """What :func:`light_matched_delta_ita` needs of one photo: ``{"scene_cells": …, "skin_linear": …}``.

    ``skin_linear`` = per-channel median of the linear sRGB skin pixels, ``scene_cells`` = :func:`scene_cells`.
    """
    selected = np.asarray(mask, dtype=bool)
    pixels = np.asarray(image)[selected]
    linear = tuple(float(v) for v in np.median(srgb_to_linear(pixels), axis=0)) if len(pixels) else None
    return {"scene_cells": scene_cells(image, selected), "skin_linear": linear}


def cells_to_list(cells: Any) -> list[list[float]]:
    """Scene cells as JSON lists ``[[index, R, G, B], …]`` (index an int, channels to 5 significant digits)."""
    return [[int(c[0]), *(float(f"{float(v):.5g}") for v in c[1:4])] for c in cells]


def _cell_table(cells: Any) -> dict[int, np.ndarray]:
    return {int(c[0]): np.asarray(c[1:4], dtype=np.float64) for c in cells}


#: Colour spaces :func:`scene_gain` can take the diagonal in: linear sRGB or CAT02 cone space.
GAIN_SPACES = ("sRGB", "CAT02")
#: The space :func:`light_matched_delta_ita` uses (measured: ``python -m eval.skin_nulls``).
SCENE_GAIN_SPACE = "CAT02"


def _to_gain_space(linear: np.ndarray, space: str) -> np.ndarray:
    if space == "sRGB":
        return linear
    import colour

    return np.asarray(linear @ (np.asarray(colour.adaptation.CAT_CAT02) @ _rgb_to_xyz_matrix()).T)


def _from_gain_space(values: np.ndarray, space: str) -> np.ndarray:
    if space == "sRGB":
        return values
    import colour

    matrix = np.asarray(colour.adaptation.CAT_CAT02) @ _rgb_to_xyz_matrix()
    return np.asarray(values @ np.linalg.inv(matrix).T)


@functools.cache
def _rgb_to_xyz_matrix() -> np.ndarray:
    import colour

    return np.asarray(colour.RGB_COLOURSPACES["sRGB"].matrix_RGB_to_XYZ, dtype=np.float64)


def scene_gain(
    reference_cells: Any, other_cells: Any, *, space: str = SCENE_GAIN_SPACE, shrink: float | None = None
) -> np.ndarray | None:
    """Per-channel light gain ``other / reference`` from the scene cells valid in both photos.

        mₖ   = trimmed mean over cells c of  log(Oₖ(c) / Rₖ(c))
        SEₖ  = s_w,k / ((1 − 2τ) √n)                      (its standard error: ``scipy.stats.mstats.trimmed_stde``)
        log g = m · max(0, 1 − z² Σₖ SEₖ² / Σₖ mₖ²)         (z = ``shrink``, :data:`SCENE_GAIN_SHRINK`)

    ``τ`` = :data:`SCENE_GAIN_TRIM` is cut from each end of the sorted ratios (robust to cells where the scene
    itself changed, e.g. a retouched background or a cell the skin edit bled into); ``s_w`` is the SD of the
    ratios winsorized at the same share, ``n`` the number of common cells. The last line shrinks the whole
    log-gain vector towards *no light change* by one factor (positive-part James–Stein form; one factor for
    the three channels, so a change of exposure is never turned into a change of colour): a gain the cells
    show well beyond their own noise is undone in full (a relighting: ``SE`` ≈ 0.002–0.007 on 200–300 cells
    against ``|m|`` of 0.05–0.4), one whose log lies within about ``z`` standard errors of 0 is not undone at
    all. Without it a re-save of a photo the face fills (``clm_murray``: 24 cells, ``m`` ≈ −0.03, ``SE`` ≈
    0.06) read as a 3 % change of exposure, which near ``L*`` = 50 turns the ITA° by +5°. ``shrink=0`` gives
    the plain trimmed mean. ``space``: the
    channels (``"sRGB"``: linear sRGB; ``"CAT02"``: CAT02 cone responses, a von Kries diagonal). ``None``
    with fewer than :data:`MIN_SCENE_CELLS` common cells.
    """
    from scipy.stats import trim_mean
    from scipy.stats.mstats import trimmed_stde

    if reference_cells is None or other_cells is None:
        return None
    reference, other = _cell_table(reference_cells), _cell_table(other_cells)
    common = sorted(set(reference) & set(other))
    if len(common) < MIN_SCENE_CELLS:
        return None
    r = _to_gain_space(np.stack([reference[c] for c in common]), space)
    o = _to_gain_space(np.stack([other[c] for c in common]), space)
    positive = np.all(r > 1e-6, axis=1) & np.all(o > 1e-6, axis=1)
    if int(positive.sum()) < MIN_SCENE_CELLS:
        return None
    ratios = np.log(o[positive] / r[positive])
    mean = np.asarray(trim_mean(ratios, SCENE_GAIN_TRIM, axis=0), dtype=np.float64)
    z = SCENE_GAIN_SHRINK if shrink is None else float(shrink)
    if z <= 0.0:
        return np.exp(mean)
    se = np.asarray(trimmed_stde(ratios, limits=(SCENE_GAIN_TRIM, SCENE_GAIN_TRIM), axis=0), dtype=np.float64)
    energy = float(np.sum(mean**2))
    kept = 0.0 if energy == 0.0 else max(0.0, 1.0 - z**2 * float(np.sum(se**2)) / energy)
    return np.exp(mean * kept)


def _diagonal_matrix(gain: np.ndarray, space: str) -> np.ndarray:
    """The linear-sRGB matrix of the diagonal ``gain`` taken in ``space``: ``T⁻¹ diag(g) T``."""
    return _from_gain_space(_to_gain_space(np.eye(3), space) * np.asarray(gain), space).T


def scene_light_matrix(
    reference_cells: Any, other_cells: Any, *, ridge: float = SCENE_MATRIX_RIDGE
) -> np.ndarray | None:
    """The 3×3 linear-sRGB light change ``M`` (``other ≈ M · reference``) fitted to the common scene cells.

        M = D + E,   E = argmin Σ_c w_c ‖o_c − (D + E) r_c‖² + λ ‖E‖²_F · Σ_c w_c ‖r_c‖²,   w_c = 1/‖r_c‖²

    with ``D`` the CAT02 diagonal of :func:`scene_gain` (so ``E`` = 0 for a scene of one colour, where a
    full matrix is not identified), ``λ`` = ``ridge``, relative errors (``w_c``), refitted once without the
    quarter of cells with the largest residuals (cells where the scene itself changed). Covers any linear
    change of light, a von Kries diagonal in any cone space included. ``None`` as :func:`scene_gain`.
    """
    gain = scene_gain(reference_cells, other_cells, space="CAT02")
    if gain is None:
        return None
    reference, other = _cell_table(reference_cells), _cell_table(other_cells)
    common = sorted(set(reference) & set(other))
    r = np.stack([reference[c] for c in common])
    o = np.stack([other[c] for c in common])
    diagonal = _diagonal_matrix(gain, "CAT02")
    weights = 1.0 / np.maximum(np.sum(r**2, axis=1), 1e-12)
    keep = np.ones(len(common), dtype=bool)
    matrix = diagonal
    for _ in range(2):
        rk, ok, wk = r[keep], o[keep], weights[keep]
        residual = ok - rk @ diagonal.T
        gram = (rk * wk[:, None]).T @ rk + ridge * float(np.sum(wk * np.sum(rk**2, axis=1))) * np.eye(3)
        update = np.linalg.solve(gram, (rk * wk[:, None]).T @ residual).T
        matrix = diagonal + update
        errors = np.sum((o - r @ matrix.T) ** 2, axis=1) * weights
        keep = errors <= np.quantile(errors, 1.0 - SCENE_GAIN_TRIM)
    return np.asarray(matrix)


def matrix_corrected_delta_ita(reference: Any, other: Any, matrix: np.ndarray) -> float:
    """:func:`gain_corrected_delta_ita` with a full 3×3 light change: ``ρ′ = M⁻¹ ρ_o`` in linear sRGB."""
    import colour

    o, o_linear = _skin_colour(other)
    if not o_linear:
        o = _lab_to_linear(o)
    white = colour.XYZ_to_xy(_d65_xyz())
    matched = np.linalg.solve(np.asarray(matrix, dtype=np.float64), o)
    lab_m, lab_o = (np.asarray(colour.XYZ_to_Lab(v @ _rgb_to_xyz_matrix().T, white)) for v in (matched, o))
    light = angle_difference(ita_from_lab(lab_m[0], lab_m[2]), ita_from_lab(lab_o[0], lab_o[2]))
    return float(angle_difference(float(angle_difference(other.ita, reference.ita)) + float(light), 0.0))


def gain_matched_lab(lab: Any, gain: np.ndarray, *, space: str = SCENE_GAIN_SPACE) -> np.ndarray:
    """A Lab colour (D65) with the light gain undone: ``ρ′ = T⁻¹ diag(1/g) T ρ`` in linear sRGB (``T`` = the gain space)."""
    import colour

    white = colour.XYZ_to_xy(_d65_xyz())
    xyz = np.asarray(colour.Lab_to_XYZ(np.asarray(lab, dtype=np.float64), white))
    linear = xyz @ np.linalg.inv(_rgb_to_xyz_matrix()).T
    matched = _from_gain_space(_to_gain_space(linear, space) / np.asarray(gain, dtype=np.float64), space)
    return np.asarray(colour.XYZ_to_Lab(matched @ _rgb_to_xyz_matrix().T, white), dtype=np.float64)


def light_corrected_lab(skin_pixels: np.ndarray, grey: np.ndarray, *, grey_y: float | None = None) -> np.ndarray:
    """CIELAB (D65) of skin pixels after mapping the scene's grey ``g`` to D65 at luminance ``Y_g``.

        XYZ′ = M⁻¹ · diag(LMS(Y_g·W_D65) / LMS(XYZ(g))) · M · XYZ(ρ),   LMS = M · XYZ,  M = CAT02

    (von Kries adaptation, ``colour.adaptation.chromatic_adaptation_VonKries`` with ``transform="CAT02"``),
    then ``XYZ′ → L*a*b*`` against D65 (white ``Y = 1``). The diagonal carries both the white balance
    and the exposure (its scale is ``Y_g / Y(g)``), so a photo re-exposed or re-lit by any diagonal in
    CAT02 space measures the same (up to clipping and 8-bit rounding). A photo whose estimated grey is
    already D65 at ``Y_g`` keeps its as-photographed Lab exactly.

    Args:
        skin_pixels: ``(n, 3)`` sRGB skin pixels.
        grey: the scene grey from :func:`scene_grey` (linear sRGB).
        grey_y: ``Y_g``; default :data:`SCENE_GREY_Y`.
    """
    target = _d65_xyz() * (SCENE_GREY_Y if grey_y is None else float(grey_y))
    if LIGHT_CAT == "CAT02":  # the shipped transform, in numpy (no colour-science import on the audit's path)
        adaptation = _von_kries_cat02(_linear_to_xyz(grey), target)
    else:
        import colour

        adaptation = colour.adaptation.matrix_chromatic_adaptation_VonKries(_linear_to_xyz(grey), target, LIGHT_CAT)
    adapted = srgb_to_linear(skin_pixels) @ (np.asarray(adaptation) @ _srgb_matrices()[0]).T
    return _xyz_to_lab_d65(adapted)


def illuminant_xy(cct_kelvin: float) -> np.ndarray:
    """CIE 1931 xy of the CIE daylight illuminant of correlated colour temperature ``cct_kelvin`` (4000–25000 K).

    ``colour.temperature.CCT_to_xy_CIE_D``; 6504 K is D65 (x 0.31271, y 0.32912 by the formula, within
    2·10⁻⁴ of the tabulated 0.31270, 0.32900).
    """
    import colour

    return np.asarray(colour.temperature.CCT_to_xy_CIE_D(float(cct_kelvin)))


def relight(image: Any, exposure: float = 1.0, cct_kelvin: float = 6504.0, *, transform: str = "CAT02") -> np.ndarray:
    """The photo as if lit by a daylight of ``cct_kelvin`` at ``exposure`` × the light (synthetic relighting).

    In linear light: ``XYZ′ = exposure · CAT(W_6504 → W_cct) · XYZ`` (``colour.adaptation.
    chromatic_adaptation_VonKries`` with ``transform``; both whites from :func:`illuminant_xy`, so
    6504 K at exposure 1 leaves the photo as it is, up to rounding), back to
    sRGB, clipped and rounded to ``uint8`` — as a camera left white-balanced for D65 would record the
    same scene under a warmer (< 6504 K) or cooler light, brighter or darker. ``transform`` other than
    CAT02 (``"Bradford"``, ``"Von Kries"``) gives a relighting that the correction does not invert exactly.

    Args:
        image: ``(H, W, 3)`` RGB image (or ``(n, 3)`` pixels).
        exposure: light scale (1.2 = +20 %).
        cct_kelvin: the new light's correlated colour temperature (6504 K = D65: unchanged colour).
        transform: the chromatic adaptation transform that models the change of light.
    """
    import colour

    from headshot_lab.io import as_rgb_array

    array = np.asarray(image)
    rgb = array if array.ndim == 2 else as_rgb_array(image)
    xyz = _linear_to_xyz(srgb_to_linear(rgb))
    source, target = (colour.xy_to_XYZ(illuminant_xy(t)) for t in (6504.0, cct_kelvin))
    moved = colour.adaptation.chromatic_adaptation_VonKries(xyz, source, target, transform) * float(exposure)
    return linear_to_srgb(_xyz_to_linear(moved))


def jpeg_roundtrip(image: np.ndarray, quality: int = 90) -> np.ndarray:
    """Re-save an RGB ``uint8`` image as JPEG at ``quality`` (Pillow defaults: 4:2:0 chroma) and decode it."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="JPEG", quality=int(quality))
    with Image.open(io.BytesIO(buffer.getvalue())) as decoded:
        return np.asarray(decoded.convert("RGB"))


# --------------------------------------------------------------------------------------------
# Skin mask
# --------------------------------------------------------------------------------------------


def _fill(mask: np.ndarray, polygon: np.ndarray, *, margin: float = 0.0, convex: bool = False, value: int = 1) -> None:
    """Fill ``polygon`` (``(k, 2)`` float pixels) into ``mask``, grown by ``margin`` pixels."""
    import cv2

    points = np.round(polygon).astype(np.int32)
    if convex:
        points = np.asarray(cv2.convexHull(points)[:, 0, :], dtype=np.int32)
    cv2.fillPoly(mask, [points], value)
    thickness = round(2 * margin)
    if thickness >= 1:
        cv2.polylines(mask, [points], isClosed=True, color=value, thickness=thickness)


def _geometry_mask(shape: tuple[int, int], mesh: FaceMesh) -> np.ndarray:
    """Mask of the skin area from the mesh geometry alone (no pixel values)."""
    from headshot_lab.faces import mesh as fm

    points = mesh.points
    d = max(mesh.interocular, 1.0)
    mask = np.zeros(shape, dtype=np.uint8)

    oval = points[list(fm.FACE_OVAL)]
    center = oval.mean(axis=0)
    _fill(mask, center + OVAL_SHRINK * (oval - center))

    # Forehead cap: measured along the face's own "up" axis (perpendicular to the eye line).
    eye_left, eye_right = mesh.eye_centers
    across = (eye_right - eye_left) / d
    up = np.array([across[1], -across[0]])  # eye line rotated by −90° (y is down)
    brows = points[list(fm.LEFT_BROW + fm.RIGHT_BROW)]
    brow_top = float(np.max((brows - center) @ up))
    oval_top = float(np.max((oval - center) @ up))
    limit = brow_top + FOREHEAD_FRACTION * max(oval_top - brow_top, 0.0)
    # Everything further "up" than ``limit`` is removed: a large polygon beyond that line.
    base = center + limit * up
    far = 4.0 * max(shape)
    cap = np.array(
        [base - far * across, base + far * across, base + far * across + far * up, base - far * across + far * up]
    )
    _fill(mask, cap, value=0)

    for region, margin in (
        (fm.LEFT_EYE, EYE_MARGIN),
        (fm.RIGHT_EYE, EYE_MARGIN),
        (fm.LEFT_BROW, BROW_MARGIN),
        (fm.RIGHT_BROW, BROW_MARGIN),
        (fm.LIPS, LIPS_MARGIN),
        (fm.LEFT_NOSTRIL, NOSTRIL_MARGIN),
        (fm.RIGHT_NOSTRIL, NOSTRIL_MARGIN),
    ):
        _fill(mask, points[list(region)], margin=margin * d, convex=True, value=0)
    return mask.astype(bool)


def _photometric_keep(L: np.ndarray) -> np.ndarray:
    """Which candidate pixels lie inside the [shadow, highlight] L* percentiles."""
    if L.size < MIN_SKIN_PIXELS:
        return np.ones(L.shape, dtype=bool)
    low, high = np.percentile(L, [SHADOW_PERCENTILE, HIGHLIGHT_PERCENTILE])
    return np.asarray((low <= L) & (high >= L), dtype=bool)


def skin_mask(image: Any, mesh: FaceMesh | None = None, *, exclude_extremes: bool = True) -> np.ndarray:
    """Boolean ``(H, W)`` mask of measurable facial skin (all ``False`` when no face is found).

    Geometry (from the 478-point mesh; ``d`` = inter-ocular distance):

    1. the face oval (:data:`~headshot_lab.faces.mesh.FACE_OVAL`) shrunk by :data:`OVAL_SHRINK`
       towards its centroid — away from the jaw line, ears, temples and background;
    2. minus everything above a line parallel to the eyes, :data:`FOREHEAD_FRACTION` of the way from
       the brow tops to the top of the oval — away from the hairline and fringes;
    3. minus the eyes, brows, outer lips and nostrils (convex hulls grown by ``margin × d``).

    Photometry (``exclude_extremes=True``): drop pixels whose L* lies outside the
    [:data:`SHADOW_PERCENTILE`, :data:`HIGHLIGHT_PERCENTILE`] percentiles of the candidates (deep
    shadows, stubble, specular highlights). Percentiles of the image itself adapt to exposure and to
    the skin's own lightness, which fixed L* thresholds would not, and being rank-based they move
    with the data: a uniform tone change does not change which pixels are kept. Clipped pixels
    (a channel at 255) are deliberately *not* dropped as such: they are the brightest skin, and a
    median stays right when they are kept at the top of the ranking, whereas removing them would
    pull the median darker by however much of the face is over-exposed.

    Args:
        image: ``(H, W, 3)`` RGB array, PIL image or :class:`~headshot_lab.io.Photo`.
        mesh: the face's :class:`~headshot_lab.faces.mesh.FaceMesh`; computed (largest face) when ``None``.
        exclude_extremes: apply the photometric exclusions.
    """
    from headshot_lab.faces.mesh import face_mesh
    from headshot_lab.io import as_rgb_array

    rgb = as_rgb_array(image)
    shape = rgb.shape[:2]
    if mesh is None:
        meshes = face_mesh(rgb, max_faces=1)
        if not meshes:
            return np.zeros(shape, dtype=bool)
        mesh = meshes[0]
    mask = _geometry_mask(shape, mesh)
    if exclude_extremes and mask.any():
        pixels = rgb[mask]
        keep = _photometric_keep(lightness(pixels))
        mask[mask] = keep
    return mask


# --------------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------------


def _skin_mask_of(rgb: np.ndarray, mask: Any, mesh: FaceMesh | None) -> np.ndarray:
    """``mask`` as a bool array of ``rgb``'s shape; without one, the skin mask of ``mesh`` (or of the mesh found)."""
    if mask is not None:
        return _as_mask(mask, rgb.shape[:2])
    if mesh is None:
        from headshot_lab.faces.mesh import face_mesh

        meshes = face_mesh(rgb, max_faces=1)
        if not meshes:
            raise FaceNotFoundError("No face was found in the photo, so its skin tone cannot be measured.")
        mesh = meshes[0]
    return skin_mask(rgb, mesh)


def _as_mask(mask: Any, shape: tuple[int, int]) -> np.ndarray:
    array = np.asarray(mask)
    if array.shape != shape:
        raise ValueError(f"the mask has shape {array.shape} but the image is {shape}")
    return array > 0.5 if array.dtype != bool else array


def measure_skin(image: Any, mask: Any = None, mesh: FaceMesh | None = None) -> SkinTone:
    """Measure the skin tone of the (largest) face in ``image``.

    Args:
        image: ``(H, W, 3)`` RGB array, PIL image or :class:`~headshot_lab.io.Photo`.
        mask: ``(H, W)`` skin mask (bool, or weights > 0.5); computed with :func:`skin_mask` when ``None``.
        mesh: the face mesh to build the mask from (computed when ``None`` and no ``mask`` is given).

    Returns:
        A :class:`SkinTone` from per-pixel ITA° and Lab medians over the mask, with the light-corrected
        ITA° (:func:`light_corrected_lab` against the scene grey of the pixels outside the face,
        :func:`scene_pixels`) beside the as-photographed one; about 20–90 ms more per face than without.

    Raises:
        FaceNotFoundError: no face was found (when the mask has to be computed).
        NoSkinError: (code ``"no_skin"``) fewer than :data:`MIN_SKIN_PIXELS` skin pixels.
        NoColourError: (code ``"no_colour"``) the skin is grey (median chroma below :data:`MIN_CHROMA`).
    """
    from headshot_lab.io import as_rgb_array

    rgb = as_rgb_array(image)
    shape = rgb.shape[:2]
    mask = _skin_mask_of(rgb, mask, mesh)
    count = int(mask.sum())
    if count < MIN_SKIN_PIXELS:
        raise NoSkinError(f"Only {count} skin pixels could be measured (at least {MIN_SKIN_PIXELS} are needed).")
    tone = tone_from_pixels(rgb[mask], scene_pixels(rgb, mask), image_pixels=shape[0] * shape[1])
    return dataclass_replace(tone, **scene_match(rgb, mask))


def tone_from_pixels(skin_pixels: np.ndarray, scene_pixels: np.ndarray | None, *, image_pixels: int) -> SkinTone:
    """The :class:`SkinTone` of already-selected skin pixels, light-corrected against ``scene_pixels``.

    What :func:`measure_skin` does once it has its mask (and what :func:`ita_group_stability` reuses
    on relit pixels without relighting whole photos). ``scene_pixels=None`` skips the correction.

    Raises:
        NoSkinError, NoColourError: as :func:`measure_skin`.
    """
    pixels = np.asarray(skin_pixels).reshape(-1, 3)
    count = len(pixels)
    if count < MIN_SKIN_PIXELS:
        raise NoSkinError(f"Only {count} skin pixels could be measured (at least {MIN_SKIN_PIXELS} are needed).")
    lab = rgb_to_lab(pixels)
    chroma = float(np.median(np.hypot(lab[:, 1], lab[:, 2])))
    if chroma < MIN_CHROMA:
        raise NoColourError(
            f"The skin has no colour (median chroma C*ab = {chroma:.1f}); the photo looks black-and-white or tinted."
        )
    median_ita, (q25, q75) = angular_median(ita_from_lab(lab[:, 0], lab[:, 2]), (25.0, 75.0))
    median_lab = tuple(float(v) for v in np.median(lab, axis=0))
    monk, monk_de = nearest_monk(median_lab)
    group = ita_group(median_ita)
    corrected: dict[str, Any] = {}
    grey = None if scene_pixels is None else scene_grey(scene_pixels)
    if grey is not None:
        lab_c = light_corrected_lab(pixels, grey)
        xyz_grey = _linear_to_xyz(grey)
        corrected = {
            "ita_light_corrected": angular_median(ita_from_lab(lab_c[:, 0], lab_c[:, 2]))[0],
            "lab_light_corrected": tuple(float(v) for v in np.median(lab_c, axis=0)),
            "scene_grey_xy": tuple(float(v) for v in _xyz_to_xy(xyz_grey)),
            "scene_grey_y": float(xyz_grey[1]),
        }
    return SkinTone(
        ita=median_ita,
        ita_iqr=(q25, q75),
        ita_group=group,
        ita_group_label=ita_group_label(group),
        ita_band=ITA_BANDS[group - 1][2],
        lab=median_lab,  # type: ignore[arg-type]
        monk=monk,
        monk_delta_e=monk_de,
        skin_pixels=count,
        mask_fraction=count / float(image_pixels),
        **corrected,
    )


def delta_ita(reference: SkinTone, other: SkinTone, *, light_corrected: bool = False) -> float:
    """Signed ITA° change ``other − reference`` (:func:`angle_difference`): positive = ``other`` is lighter.

    ``light_corrected=True`` compares :attr:`SkinTone.ita_light_corrected` (``nan`` when either lacks it).
    """
    if light_corrected:
        if reference.ita_light_corrected is None or other.ita_light_corrected is None:
            return float("nan")
        return float(angle_difference(other.ita_light_corrected, reference.ita_light_corrected))
    return float(angle_difference(other.ita, reference.ita))


def light_matched_delta_ita(reference: Any, other: Any) -> float | None:
    """ΔITA of ``other``'s skin seen under ``reference``'s light (degrees, positive = lighter).

    The light change is read from *corresponding* scene content: ``g`` = :func:`scene_gain` of the two
    tones' :attr:`SkinTone.scene_cells` (face-relative cells, so a crop or a resize compares the same part of
    the scene; a von Kries diagonal in CAT02 cone space, :data:`SCENE_GAIN_SPACE`), and

        ΔITA = wrap(ITA_o − ITA_r) + wrap(ITA(T⁻¹ diag(1/g) T ρ_o) − ITA(ρ_o))

    (:func:`gain_corrected_delta_ita`): the as-photographed change of the per-pixel ITA° medians, less what
    the light change does to the other photo's skin colour ``ρ_o`` (per-channel median linear sRGB,
    :attr:`SkinTone.skin_linear`). A change of exposure or white balance of the whole photo multiplies every
    cell and the skin by the same diagonal, so it cancels; a change of the skin alone leaves the cells
    (outside the grown face hull) where they were, so it reads at full size; a re-save with a crop and a
    resize keeps ``g ≈ 1`` and the reading is the as-photographed one. Measured on the 58 independent
    people (``python -m eval.skin_nulls``; the table is in :mod:`eval.skin_nulls`). With fewer than
    :data:`MIN_SCENE_CELLS` common cells (a face filling the photo, or tones without cells)
    :func:`grey_matched_delta_ita`; ``None`` when that has no scene grey either.
    """
    gain = scene_gain(getattr(reference, "scene_cells", None), getattr(other, "scene_cells", None))
    if gain is None:
        return grey_matched_delta_ita(reference, other)
    return gain_corrected_delta_ita(reference, other, gain)


def _skin_colour(tone: Any) -> tuple[np.ndarray, bool]:
    """``(colour, linear?)``: the tone's per-channel median linear sRGB when it has one, else its median Lab."""
    linear = getattr(tone, "skin_linear", None)
    if linear is not None:
        return np.asarray(linear, dtype=np.float64), True
    return np.asarray(tone.lab, dtype=np.float64), False


def gain_matched_delta_ita(reference: Any, other: Any, gain: np.ndarray, *, space: str = SCENE_GAIN_SPACE) -> float:
    """``ITA(Lab(T⁻¹ diag(1/g) T ρ_o)) − ITA(Lab(ρ_r))``: the other photo's skin with the light gain ``g`` undone.

    ``ρ`` is each tone's :attr:`SkinTone.skin_linear` (per-channel median linear sRGB) when both have it,
    else their median Lab (converted to linear sRGB); ``T`` the gain space (:func:`scene_gain`).
    """
    import colour

    (r, r_linear), (o, o_linear) = _skin_colour(reference), _skin_colour(other)
    white = colour.XYZ_to_xy(_d65_xyz())
    if not (r_linear and o_linear):
        r, o = (np.asarray(reference.lab, dtype=np.float64), np.asarray(other.lab, dtype=np.float64))
        r, o = (_lab_to_linear(v) for v in (r, o))
    matched = _from_gain_space(_to_gain_space(o, space) / np.asarray(gain, dtype=np.float64), space)
    after = np.asarray(colour.XYZ_to_Lab(matched @ _rgb_to_xyz_matrix().T, white))
    before = np.asarray(colour.XYZ_to_Lab(r @ _rgb_to_xyz_matrix().T, white))
    return float(angle_difference(ita_from_lab(after[0], after[2]), ita_from_lab(before[0], before[2])))


def gain_corrected_delta_ita(reference: Any, other: Any, gain: np.ndarray, *, space: str = SCENE_GAIN_SPACE) -> float:
    """``wrap(ITA_o − ITA_r) + wrap(ITA(T⁻¹ diag(1/g) T ρ_o) − ITA(ρ_o))``: the per-pixel ITA° change, less the light's.

    The first term is the as-photographed change (medians of per-pixel ITA°, the steadiest skin reading under
    a re-save); the second what the light change ``g`` does to the other photo's skin colour ``ρ_o``
    (:attr:`SkinTone.skin_linear`, else its median Lab), so a pure change of light cancels to first order.
    """
    import colour

    o, o_linear = _skin_colour(other)
    if not o_linear:
        o = _lab_to_linear(o)
    white = colour.XYZ_to_xy(_d65_xyz())
    matched = _from_gain_space(_to_gain_space(o, space) / np.asarray(gain, dtype=np.float64), space)
    lab_m, lab_o = (np.asarray(colour.XYZ_to_Lab(v @ _rgb_to_xyz_matrix().T, white)) for v in (matched, o))
    light = angle_difference(ita_from_lab(lab_m[0], lab_m[2]), ita_from_lab(lab_o[0], lab_o[2]))
    return float(angle_difference(float(angle_difference(other.ita, reference.ita)) + float(light), 0.0))


def _lab_to_linear(lab: np.ndarray) -> np.ndarray:
    import colour

    xyz = np.asarray(colour.Lab_to_XYZ(lab, colour.XYZ_to_xy(_d65_xyz())))
    return np.asarray(xyz @ np.linalg.inv(_rgb_to_xyz_matrix()).T)


def grey_matched_delta_ita(reference: Any, other: Any) -> float | None:
    """ΔITA of ``other``'s skin seen under ``reference``'s light, the light estimated from the scene *greys*.

    The fallback of :func:`light_matched_delta_ita` (which matches corresponding scene cells instead) when a
    tone has no scene cells (records written before them) or too few cells are common to both photos.

    With ``g_r``, ``g_o`` the two photos' scene greys (XYZ from :attr:`SkinTone.scene_grey_xy` and
    :attr:`SkinTone.scene_grey_y`) and ``Lab_o`` the other photo's median skin colour:

        XYZ′ = CAT02 von Kries(XYZ(Lab_o); g_o → g_r),   ΔITA = ITA(Lab(XYZ′)) − ITA(Lab_r)

    (``colour.adaptation.chromatic_adaptation_VonKries``; the diagonal carries the exposure too). A change of
    exposure or white balance of the whole photo moves both the skin and ``g_o``, so it cancels; a change of
    the skin alone leaves ``g_o`` (estimated from the non-skin pixels) where it was, so it reads at full size,
    on the reference photo's own ITA° scale. But the two greys average *different* pixel sets when the photo
    was cropped or resized (the crop removes edges, the rank band shifts), so their ratio is not the light
    change: on the 58 independent people a harmless re-encode moves it by +1.5° on average (SD 3.2°,
    ``python -m eval.skin_nulls``).
    ``None`` when either tone has no scene grey.
    """
    import colour

    greys = []
    for tone in (reference, other):
        xy, luminance = getattr(tone, "scene_grey_xy", None), getattr(tone, "scene_grey_y", None)
        if xy is None or luminance is None or not luminance > 0:
            return None
        greys.append(colour.xyY_to_XYZ([float(xy[0]), float(xy[1]), float(luminance)]))
    white = colour.XYZ_to_xy(_d65_xyz())
    xyz = colour.Lab_to_XYZ(np.asarray(other.lab, dtype=np.float64), white)
    seen = colour.adaptation.chromatic_adaptation_VonKries(xyz, greys[1], greys[0], transform=LIGHT_CAT)
    lab = colour.XYZ_to_Lab(seen, white)
    before = np.asarray(reference.lab, dtype=np.float64)
    return float(angle_difference(ita_from_lab(lab[0], lab[2]), ita_from_lab(before[0], before[2])))


def reported_delta_ita(reference: Any, other: Any, *, same_scene: bool | None) -> float:
    """The ΔITA every report headlines (degrees, positive = ``other`` lighter).

    Within one scene (``same_scene``: the same shot re-saved, relit or edited in place; ``None`` = unknown,
    treated as the same scene) :func:`light_matched_delta_ita`, so an exposure or white-balance change is not
    read as skin; across scenes (a new backdrop: the scene grey no longer measures the light), and when a
    tone has no scene grey, the ITA° as photographed.
    """
    photographed = float(angle_difference(other.ita, reference.ita))
    if same_scene is False:
        return photographed
    matched = light_matched_delta_ita(reference, other)
    return photographed if matched is None else matched


def monk_shift(reference: SkinTone, other: SkinTone) -> int:
    """Signed Monk-scale steps ``other.monk − reference.monk``: positive = ``other`` is darker
    (Monk 1 is the lightest swatch), the opposite sign of :func:`delta_ita`."""
    return int(other.monk - reference.monk)


# --------------------------------------------------------------------------------------------
# ITA-group stability under relighting
# --------------------------------------------------------------------------------------------

#: The relighting grid of :func:`ita_group_stability`: exposure ±20 % × 4000–6504 K (issue 13).
RELIGHT_EXPOSURES: tuple[float, ...] = (0.8, 0.9, 1.0, 1.1, 1.2)
RELIGHT_CCTS: tuple[float, ...] = (4000.0, 4500.0, 5000.0, 5500.0, 6000.0, 6504.0)


@dataclass(frozen=True)
class GroupStability:
    """How often a face's ITA group survives a change of light.

    Attributes:
        group: ITA group of the photo as given (as photographed).
        share: share of the relighting conditions whose as-photographed group equals ``group``.
        ita_range: ``(min, max)`` as-photographed ITA° over the conditions.
        group_light_corrected: ITA group of the light-corrected ITA° of the photo as given.
        share_light_corrected: the same share for the light-corrected group.
        ita_light_corrected_range: ``(min, max)`` light-corrected ITA° over the conditions.
        conditions: number of (exposure, colour temperature) conditions.
    """

    group: int
    share: float
    ita_range: tuple[float, float]
    group_light_corrected: int | None
    share_light_corrected: float | None
    ita_light_corrected_range: tuple[float, float] | None
    conditions: int

    def to_dict(self) -> dict[str, Any]:
        def rounded(pair: tuple[float, float] | None) -> list[float] | None:
            return None if pair is None else [round(pair[0], 2), round(pair[1], 2)]

        return {
            "group": self.group,
            "share": round(self.share, 4),
            "ita_range": rounded(self.ita_range),
            "group_light_corrected": self.group_light_corrected,
            "share_light_corrected": None
            if self.share_light_corrected is None
            else round(self.share_light_corrected, 4),
            "ita_light_corrected_range": rounded(self.ita_light_corrected_range),
            "conditions": self.conditions,
        }


def ita_group_stability(
    image: Any,
    mask: Any = None,
    mesh: FaceMesh | None = None,
    *,
    exposures: Sequence[float] = RELIGHT_EXPOSURES,
    ccts: Sequence[float] = RELIGHT_CCTS,
    transform: str = "CAT02",
    jpeg_quality: int | None = None,
) -> GroupStability:
    """Share of relighting conditions (``exposures × ccts``, :func:`relight`) that keep the face's ITA group.

    ``share = #{c : group(ITA under c) = group(ITA as given)} / #conditions``, for the as-photographed
    ITA° and for the light-corrected one. The mask is fixed (relighting moves no pixel). Without
    ``jpeg_quality`` only the skin pixels and the scene sample are relit (relighting is per pixel, so this
    equals relighting the photo); with it each relit photo is re-saved as JPEG and measured whole.

    Raises:
        FaceNotFoundError, NoSkinError, NoColourError: as :func:`measure_skin` on the photo as given.
    """
    from headshot_lab.io import as_rgb_array

    rgb = as_rgb_array(image)
    mask = _skin_mask_of(rgb, mask, mesh)
    base = measure_skin(rgb, mask)
    skin_px = rgb[mask]
    scene_px = scene_pixels(rgb, mask)
    itas: list[float] = []
    corrected: list[float | None] = []
    for exposure in exposures:
        for cct in ccts:
            if jpeg_quality is None:
                tone = tone_from_pixels(
                    relight(skin_px, exposure, cct, transform=transform),
                    relight(scene_px, exposure, cct, transform=transform),
                    image_pixels=mask.size,
                )
            else:
                relit = jpeg_roundtrip(relight(rgb, exposure, cct, transform=transform), jpeg_quality)
                tone = measure_skin(relit, mask)
            itas.append(tone.ita)
            corrected.append(tone.ita_light_corrected)
    n = len(itas)
    share = sum(ita_group(v) == base.ita_group for v in itas) / n
    stable_c: float | None = None
    range_c: tuple[float, float] | None = None
    known = [v for v in corrected if v is not None]
    if base.ita_light_corrected is not None and len(known) == n:
        group_c = base.ita_group_light_corrected
        stable_c = sum(ita_group(v) == group_c for v in known) / n
        range_c = (float(min(known)), float(max(known)))
    return GroupStability(
        group=base.ita_group,
        share=float(share),
        ita_range=(float(min(itas)), float(max(itas))),
        group_light_corrected=base.ita_group_light_corrected,
        share_light_corrected=stable_c,
        ita_light_corrected_range=range_c,
        conditions=n,
    )


def shift_ita_light_corrected(image: Any, mask: Any, delta_ita_degrees: float) -> np.ndarray:
    """Change the *light-corrected* ITA° of the masked skin by ``δ`` (a skin change under the reference light).

    The skin pixels are taken to the light-corrected Lab of :func:`light_corrected_lab` (against the
    photo's own scene grey, :func:`scene_grey` of :func:`scene_pixels` of ``mask``), rotated there as in
    :func:`shift_ita`, and brought back through the inverse adaptation; pixels outside ``mask`` are
    untouched, so the scene grey is unchanged. Where the scene grey is D65 at :data:`SCENE_GREY_Y` this is
    :func:`shift_ita`; under a colour cast it is the skin change that the cast would have shown.

    Raises:
        ValueError: the photo has too little non-skin area to estimate its light.
    """
    import colour

    from headshot_lab.io import as_rgb_array

    rgb = as_rgb_array(image).copy()
    selected = _as_mask(mask, rgb.shape[:2])
    grey = scene_grey(scene_pixels(rgb, selected))
    if grey is None:
        raise ValueError("the photo has too little non-skin area to estimate its light")
    if not selected.any() or delta_ita_degrees == 0:
        return rgb
    lab = light_corrected_lab(rgb[selected], grey)
    lightness, b_star = lab[:, 0] - 50.0, lab[:, 2]
    radius = np.hypot(lightness, b_star)
    angle = np.arctan2(lightness, b_star) + np.radians(delta_ita_degrees)
    lab[:, 0] = 50.0 + radius * np.sin(angle)
    lab[:, 2] = radius * np.cos(angle)
    d65 = _d65_xyz()
    adapted = np.asarray(colour.Lab_to_XYZ(lab, colour.XYZ_to_xy(d65)))
    xyz = colour.adaptation.chromatic_adaptation_VonKries(adapted, d65 * SCENE_GREY_Y, _linear_to_xyz(grey), LIGHT_CAT)
    rgb[selected] = linear_to_srgb(_xyz_to_linear(np.asarray(xyz)))
    return rgb


# --------------------------------------------------------------------------------------------
# Synthetic tone shift (tests, audit canaries)
# --------------------------------------------------------------------------------------------


def shift_ita(image: Any, mask: Any, delta_ita_degrees: float) -> np.ndarray:
    """Change the ITA° of the masked skin pixels by a known amount.

    Each pixel's ``(b*, L* − 50)`` is rotated about ``(0, 0)`` by ``δ``: with
    ``r = √((L* − 50)² + b*²)`` and ``θ = atan2(L* − 50, b*)``,

        L*′ = 50 + r·sin(θ + δ),   b*′ = r·cos(θ + δ),   a*′ = a*,

    so every pixel's ITA° changes by exactly ``δ`` (positive = lighter) while its distance from the
    neutral mid-grey in that plane, and its a* (redness), are kept. The result is converted back to
    sRGB and clipped/rounded to ``uint8``, which is the only source of deviation from ``δ``.

    Args:
        image: ``(H, W, 3)`` RGB image.
        mask: ``(H, W)`` bool mask, or float weights in ``[0, 1]`` to blend the shifted colour in
            (``out = (1 − w)·image + w·shifted``, for seamless canaries).
        delta_ita_degrees: the ITA° change ``δ``.

    Returns:
        A new ``(H, W, 3)`` ``uint8`` image; pixels outside the mask are untouched.
    """
    from headshot_lab.io import as_rgb_array

    out = as_rgb_array(image).copy()
    weights = np.asarray(mask)
    if weights.shape != out.shape[:2]:
        raise ValueError(f"the mask has shape {weights.shape} but the image is {out.shape[:2]}")
    rows, cols = np.flatnonzero((weights > 0).any(axis=1)), np.flatnonzero((weights > 0).any(axis=0))
    if not len(rows) or delta_ita_degrees == 0:
        return out
    # Only the bounding box of the weighted pixels changes: work on that view (per-pixel maths, same result).
    rgb = out[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    weights = np.clip(weights[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.float64), 0.0, 1.0)
    selected = weights > 0
    pixels = rgb[selected]
    lab = rgb_to_lab(pixels)
    lightness, b_star = lab[:, 0] - 50.0, lab[:, 2]
    radius = np.hypot(lightness, b_star)
    angle = np.arctan2(lightness, b_star) + np.radians(delta_ita_degrees)
    lab[:, 0] = 50.0 + radius * np.sin(angle)
    lab[:, 2] = radius * np.cos(angle)
    shifted = lab_to_rgb(lab).astype(np.float64)
    w = weights[selected][:, None]
    rgb[selected] = np.clip(np.round((1.0 - w) * pixels + w * shifted), 0, 255).astype(np.uint8)
    return out


# --------------------------------------------------------------------------------------------
# Texture energy (over-smoothing, "plastic skin")
# --------------------------------------------------------------------------------------------

#: Common face width (pixels) at which texture energy is measured, and the Gaussian σ (pixels at that
#: width) applied before the Laplacian. Together they pick a band around 1/20 of the face width: detail
#: that any photo of a face carries and a re-save mostly keeps, but that skin smoothing removes. On the real
#: test photos at 384 px (``python -m headshot_lab.testing.audit_nulls``): a 0.92× resize + JPEG q90 gives
#: ratios 0.78–1.28 a face, the smoothing canary's bilateral filter 0.31–0.75. At 256 px without the blur
#: the band was pixel-level detail, which the same re-save alone cut to a geometric mean of 0.71.
TEXTURE_SIZE = 96
TEXTURE_SIGMA = 1.5
#: Width (pixels) the face mesh's horizontal span is brought to before texture is measured
#: (:func:`mesh_face_width`; the audit's scale). Issue 13: the dlib box that used to set the scale comes from an
#: image pyramid and jumps with the resolution it was found at — the dataset's box (found at 1280 px) and a fresh
#: detection of the same 384 px face differ, and a 3–10 % resize moves it too. On the 58 independent people that
#: alone moved a face's texture by ±23 % (log SD 0.227, ``python -m eval.texture_scale``); the
#: mesh's span follows the face continuously (log SD 0.064 between the two analyses). 85 px keeps the band of
#: :data:`TEXTURE_SIGMA`: the mesh span is 0.88 of the dlib box on those people (median), 96 px × 0.88 ≈ 85.
TEXTURE_MESH_SIZE = 85
#: Erosion (pixels) of the skin mask before measuring texture.
TEXTURE_ERODE = 2
#: Fewest mask pixels (after erosion) needed for a texture measurement.
MIN_TEXTURE_PIXELS = 200


def mesh_face_width(points: Any) -> float:
    """The face's width in pixels from its mesh: the horizontal span ``max x − min x`` of the points.

    Unlike a detector box it varies continuously with the face's size in the image (no pyramid steps,
    no clipping at the border), so two analyses of the same face agree on it.
    """
    xs = np.asarray(points, dtype=np.float64)[:, 0]
    return float(xs.max() - xs.min())


def _crop_to_face(
    image: np.ndarray, mask: np.ndarray, box: Sequence[float] | None, size: int, face_width: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    if box is None:
        ys, xs = np.nonzero(mask)
        if len(xs) == 0:
            return image, mask
        box = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    left, top, right, bottom = (float(v) for v in box)
    pad_x, pad_y = 0.1 * (right - left), 0.1 * (bottom - top)
    height, width = mask.shape
    x0, y0 = max(int(left - pad_x), 0), max(int(top - pad_y), 0)
    x1, y1 = min(int(np.ceil(right + pad_x)), width), min(int(np.ceil(bottom + pad_y)), height)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return image, mask
    crop, crop_mask = image[y0:y1, x0:x1], mask[y0:y1, x0:x1]
    scale = size / max(float(face_width) if face_width else right - left, 1.0)
    new_size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(crop, new_size, interpolation=interpolation)
    resized_mask = cv2.resize(crop_mask.astype(np.uint8), new_size, interpolation=cv2.INTER_NEAREST) > 0
    return resized, resized_mask


def texture_energy(
    image: Any,
    mask: np.ndarray,
    *,
    box: Sequence[float] | None = None,
    size: int = TEXTURE_SIZE,
    erode: int = TEXTURE_ERODE,
    sigma: float = TEXTURE_SIGMA,
    face_width: float | None = None,
) -> float | None:
    """``T = mean_M((∇²(G_σ ∗ Y))²) / var_M(Y)`` on the skin mask at a common face scale.

    The face (``face_width`` pixels wide, default the box's width) is resized to ``size`` pixels wide
    (the audit passes the mesh's span, :func:`mesh_face_width`, with :data:`TEXTURE_MESH_SIZE`); ``Y`` is the luma in [0, 1], ``G_σ`` a Gaussian
    of ``sigma`` pixels (a band-pass together with the Laplacian: see :data:`TEXTURE_SIGMA`), ``M`` the
    skin mask eroded by ``erode`` pixels. Dividing by the skin's luma variance makes ``T`` invariant to
    a global change of contrast or exposure.

    Args:
        image: ``(H, W, 3)`` RGB image (array, PIL or :class:`~headshot_lab.io.Photo`).
        mask: ``(H, W)`` skin mask (bool, or weights > 0.5).
        box: the face box ``(left, top, right, bottom)`` that sets the scale (default: the mask's bounds).
        size: width in pixels the face (``face_width``) is resized to.
        face_width: the face's width in pixels that sets the scale (default: the box's width).
        erode: pixels the mask is eroded by.

    Returns:
        ``T`` (≥ 0), or ``None`` when fewer than :data:`MIN_TEXTURE_PIXELS` pixels remain or the skin is flat.
    """
    import cv2

    from headshot_lab.io import as_rgb_array

    rgb = as_rgb_array(image)
    skin = np.asarray(mask)
    skin = skin > 0.5 if skin.dtype != bool else skin
    if skin.shape != rgb.shape[:2]:
        raise ValueError(f"the mask has shape {skin.shape} but the image is {rgb.shape[:2]}")
    if int(skin.sum()) < MIN_TEXTURE_PIXELS:
        return None
    rgb, skin = _crop_to_face(rgb, skin, box, size, face_width)
    luma = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY).astype(np.float64) / 255.0
    band = cv2.GaussianBlur(luma, (0, 0), sigma, borderType=cv2.BORDER_REFLECT) if sigma > 0 else luma
    laplacian = cv2.Laplacian(band, cv2.CV_64F, ksize=1, borderType=cv2.BORDER_REFLECT)
    if erode > 0:
        kernel = np.ones((3, 3), np.uint8)
        eroded = cv2.erode(
            skin.astype(np.uint8), kernel, iterations=int(erode), borderType=cv2.BORDER_CONSTANT, borderValue=0
        )
        skin = eroded > 0
    if int(skin.sum()) < MIN_TEXTURE_PIXELS:
        return None
    variance = float(np.var(luma[skin]))
    if variance <= 1e-12:
        return None
    return float(np.mean(laplacian[skin] ** 2) / variance)
