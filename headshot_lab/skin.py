"""Skin tone measurement: skin mask, ITA°, ITA groups, the Monk Skin Tone scale, ΔE2000.

All colour maths uses scikit-image (``rgb2lab``/``lab2rgb`` with the D65 white point and the 2°
observer, ``deltaE_ciede2000``); pixels are treated as sRGB.

**ITA°** (individual typology angle; Chardon et al. 1991, Del Bino & Bernerd 2013) on a CIELAB pixel:

    ITA° = arctan((L* − 50) / b*) · 180/π

For ``b* > 0`` — every real skin colour — this equals ``atan2(L* − 50, b*)``. For ``b* ≤ 0``
(grey or bluish pixels, not skin) the plain ``arctan`` would wrap to the opposite extreme (a light
grey pixel would read "dark"), so the angle is taken as its limit ``b* → 0⁺``: ``±90°`` by the sign
of ``L* − 50``. Implemented as ``clip(atan2(L* − 50, b*), −90°, 90°)``, which is the literature
formula wherever that formula is meaningful and continuous everywhere else.

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
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
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

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (plain ints, floats rounded)."""
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
        }


# --------------------------------------------------------------------------------------------
# Colour maths
# --------------------------------------------------------------------------------------------


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (``uint8`` 0–255 or float 0–1, last axis = 3) → CIELAB (D65, 2°), ``float64``."""
    from skimage.color import rgb2lab

    array = np.asarray(rgb)
    values = array.astype(np.float64) / 255.0 if array.dtype == np.uint8 else array.astype(np.float64)
    return rgb2lab(values, illuminant="D65", observer="2", channel_axis=-1)


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """CIELAB (D65, 2°) → sRGB ``uint8`` (out-of-gamut values clipped, then rounded)."""
    from skimage.color import lab2rgb

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "negative Z values … clipped": expected for shifted colours
        rgb = lab2rgb(np.asarray(lab, dtype=np.float64), illuminant="D65", observer="2", channel_axis=-1)
    return np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)


def ita_from_lab(L: Any, b: Any) -> Any:
    """ITA° = arctan((L* − 50) / b*) · 180/π, with ``b* ≤ 0`` handled as in the module docstring.

    Vectorised; returns a ``float`` for scalar input.
    """
    ita = np.clip(
        np.degrees(np.arctan2(np.asarray(L, dtype=np.float64) - 50.0, np.asarray(b, dtype=np.float64))), -90.0, 90.0
    )
    return float(ita) if np.ndim(ita) == 0 else ita


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
    return (low <= L) & (high >= L)


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
        keep = _photometric_keep(rgb_to_lab(pixels)[:, 0])
        mask[mask] = keep
    return mask


# --------------------------------------------------------------------------------------------
# Measurement
# --------------------------------------------------------------------------------------------


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
        A :class:`SkinTone` from per-pixel ITA° and Lab medians over the mask.

    Raises:
        FaceNotFoundError: no face was found (when the mask has to be computed).
        NoSkinError: (code ``"no_skin"``) fewer than :data:`MIN_SKIN_PIXELS` skin pixels.
        NoColourError: (code ``"no_colour"``) the skin is grey (median chroma below :data:`MIN_CHROMA`).
    """
    from headshot_lab.io import as_rgb_array

    rgb = as_rgb_array(image)
    shape = rgb.shape[:2]
    if mask is None:
        if mesh is None:
            from headshot_lab.faces.mesh import face_mesh

            meshes = face_mesh(rgb, max_faces=1)
            if not meshes:
                raise FaceNotFoundError("No face was found in the photo, so its skin tone cannot be measured.")
            mesh = meshes[0]
        mask = skin_mask(rgb, mesh)
    else:
        mask = _as_mask(mask, shape)
    count = int(mask.sum())
    if count < MIN_SKIN_PIXELS:
        raise NoSkinError(f"Only {count} skin pixels could be measured (at least {MIN_SKIN_PIXELS} are needed).")
    lab = rgb_to_lab(rgb[mask])
    chroma = float(np.median(np.hypot(lab[:, 1], lab[:, 2])))
    if chroma < MIN_CHROMA:
        raise NoColourError(
            f"The skin has no colour (median chroma C*ab = {chroma:.1f}); the photo looks black-and-white or tinted."
        )
    ita = ita_from_lab(lab[:, 0], lab[:, 2])
    median_ita = float(np.median(ita))
    q25, q75 = (float(v) for v in np.percentile(ita, [25.0, 75.0]))
    median_lab = tuple(float(v) for v in np.median(lab, axis=0))
    monk, monk_de = nearest_monk(median_lab)
    group = ita_group(median_ita)
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
        mask_fraction=count / float(shape[0] * shape[1]),
    )


def delta_ita(reference: SkinTone, other: SkinTone) -> float:
    """Signed ITA° change ``other.ita − reference.ita``: positive = ``other`` is lighter."""
    return float(other.ita - reference.ita)


def monk_shift(reference: SkinTone, other: SkinTone) -> int:
    """Signed Monk-scale steps ``other.monk − reference.monk``: positive = ``other`` is darker
    (Monk 1 is the lightest swatch), the opposite sign of :func:`delta_ita`."""
    return int(other.monk - reference.monk)


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

    rgb = as_rgb_array(image).copy()
    weights = np.asarray(mask)
    if weights.shape != rgb.shape[:2]:
        raise ValueError(f"the mask has shape {weights.shape} but the image is {rgb.shape[:2]}")
    weights = np.clip(weights.astype(np.float64), 0.0, 1.0)
    selected = weights > 0
    if not selected.any() or delta_ita_degrees == 0:
        return rgb
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
    return rgb


# --------------------------------------------------------------------------------------------
# Texture energy (over-smoothing, "plastic skin")
# --------------------------------------------------------------------------------------------

#: Common face width (pixels) at which texture energy is measured, and the Gaussian σ (pixels at that
#: width) applied before the Laplacian. Together they pick a band around 1/20 of the face width: detail
#: that any photo of a face carries and a 3–10 % resize or a JPEG/WebP q85–95 re-save keeps (geometric
#: mean ratio 0.90–0.96 on the real test photos at 384 px), but that skin smoothing removes (0.53–0.61).
#: At 256 px without the blur the band is pixel-level detail, which a 0.92× re-save alone cut to 0.71.
TEXTURE_SIZE = 96
TEXTURE_SIGMA = 1.5
#: Erosion (pixels) of the skin mask before measuring texture.
TEXTURE_ERODE = 2
#: Fewest mask pixels (after erosion) needed for a texture measurement.
MIN_TEXTURE_PIXELS = 200


def _crop_to_face(
    image: np.ndarray, mask: np.ndarray, box: Sequence[float] | None, size: int
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
    scale = size / max(right - left, 1.0)
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
) -> float | None:
    """``T = mean_M((∇²(G_σ ∗ Y))²) / var_M(Y)`` on the skin mask at a common face scale.

    The face box is resized to ``size`` pixels wide; ``Y`` is the luma in [0, 1], ``G_σ`` a Gaussian
    of ``sigma`` pixels (a band-pass together with the Laplacian: see :data:`TEXTURE_SIGMA`), ``M`` the
    skin mask eroded by ``erode`` pixels. Dividing by the skin's luma variance makes ``T`` invariant to
    a global change of contrast or exposure.

    Args:
        image: ``(H, W, 3)`` RGB image (array, PIL or :class:`~headshot_lab.io.Photo`).
        mask: ``(H, W)`` skin mask (bool, or weights > 0.5).
        box: the face box ``(left, top, right, bottom)`` that sets the scale (default: the mask's bounds).
        size: width in pixels the face box is resized to.
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
    rgb, skin = _crop_to_face(rgb, skin, box, size)
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
