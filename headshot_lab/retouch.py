"""Offline studio mode: a real photo, retouched — never a generated headshot.

No generative model is involved. :func:`retouch` reads as named steps:

1. **segment** — soft person mask from mediapipe's selfie segmentation
   (:func:`headshot_lab.faces.mesh.selfie_mask`), whose 256-px edge is a blur, not a matte;
2. **refine the matte** — GrabCut (Rother et al. 2004, ``cv2.grabCut``) decides the uncertain band
   of a trimap built from that mask, so the edge sits on the photo's own edges; an edge-aware
   guided filter (He, Sun & Tang 2013) with the photo as guide then feathers it:

   ``α̂ = mean_k(a)·I + mean_k(b)``, with per-window ``a = cov(I, p) / (var(I) + ε)``,
   ``b = mean(p) − a·mean(I)`` (``p`` the GrabCut mask, ``I`` the guide, windows of radius ``r``);

   values within :data:`SNAP` of 0 or 1 are snapped, so the far background is exactly the backdrop;
3. **estimate the foreground colour** at the soft edge (blur-fusion, Germer et al. 2021):
   ``F = F̂ + α·(I − α·F̂ − (1 − α)·B̂)`` with ``F̂``, ``B̂`` the α-/(1−α)-weighted local means — removes
   the old background's colour fringe from hair; ``F = I`` exactly where ``α = 1``;
4. **even the light** on the face, in CIELAB, on ``L*`` only: the low-frequency illumination ``Ī``
   (a skin-weighted Gaussian mean of ``L*``, σ = 0.35 × the inter-ocular distance) is pulled towards
   the skin's median lightness ``L̃``: ``L*′ = L* + s·w·(L̃ − Ī)`` (``s`` the strength, ``w`` a
   feathered face-oval weight). Shadows lift, hot spots calm, detail (``L* − Ī``) is kept and
   ``a*``, ``b*`` are untouched. A **tone lock** then adds one uniform ``ΔL*`` over the face, found
   by bisection, so that the skin's median per-pixel ITA° equals the original's;
5. **white balance the neutrals** — a grey-world cast ``(ā*, b̄*)`` measured on near-neutral
   (``C*ab`` < :data:`NEUTRAL_CHROMA`), non-skin person pixels (shirt, collar, grey hair) is removed
   with a weight that fades to 0 at ``2 × NEUTRAL_CHROMA`` and is 0 on the face: skin chromaticity is
   never changed (changing it is exactly the bias :mod:`headshot_lab.audit` measures);
6. **composite** ``out = α·F + (1 − α)·backdrop`` over the style's colour or vertical gradient.

Skin tone is measured before and after with :mod:`headshot_lab.skin` on the same skin pixels and
reported as ``delta_ita`` (positive = lighter); on the real test photos ``|ΔITA| ≤ 1°``.

The result is always labelled as a retouched photo (IPTC ``compositeWithTrainedAlgorithmicMedia``:
the matte comes from a trained model), never as a generated headshot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from headshot_lab.errors import HeadshotLabError

if TYPE_CHECKING:
    from headshot_lab.faces.mesh import FaceMesh
    from headshot_lab.skin import SkinTone

#: IPTC digital source type of every retouch (a photo composited with a trained model's matte).
DIGITAL_SOURCE_TYPE = "compositeWithTrainedAlgorithmicMedia"
#: Matte values within this distance of 0 or 1 are snapped to 0 or 1.
SNAP = 0.04
#: Longer side (pixels) of the copy GrabCut runs on.
GRABCUT_SIDE = 640
#: Below this fraction of the image the segmenter found no person.
MIN_PERSON_FRACTION = 0.01
#: Chroma ``C*ab`` below which a pixel counts as neutral for the white balance.
NEUTRAL_CHROMA = 8.0
#: Largest cast (in ``a*``/``b*`` units) the white balance removes.
MAX_CAST = 8.0
#: Largest lightness change (``L*`` units) the light evening applies at any pixel.
MAX_LIGHT_DELTA = 15.0
#: Default strength ``s`` of the light evening (0 = off, 1 = fully flat illumination).
DEFAULT_LIGHT = 0.4
#: Photos with more pixels are retouched on an analysis copy of this many pixels (INTER_AREA), and the
#: result applied at full size in row strips (:func:`_apply_at_full_size`): peak memory stays bounded
#: (a 40 MP photo took 4.06 GB when every step ran at full size).
ANALYSIS_PIXELS = 4_000_000
#: Rows per strip when the analysis-size result is applied to the full-size photo.
STRIP_ROWS = 256


@dataclass(frozen=True)
class Backdrop:
    """A studio backdrop: a flat colour, or a vertical gradient from ``color`` (top) to ``gradient_to`` (bottom).

    Row ``y`` of an ``H``-row gradient is ``color + (gradient_to − color)·y/(H − 1)``, rounded to ``uint8``.
    """

    color: tuple[int, int, int]
    gradient_to: tuple[int, int, int] | None = None

    def render(self, height: int, width: int) -> np.ndarray:
        """The ``(height, width, 3)`` ``uint8`` backdrop."""
        top = np.asarray(self.color, dtype=np.float64)
        bottom = np.asarray(self.gradient_to if self.gradient_to is not None else self.color, dtype=np.float64)
        rows = np.arange(height, dtype=np.float64)[:, None]
        values = np.clip(np.round(top + (bottom - top) * rows / max(height - 1, 1)), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.broadcast_to(values[:, None, :], (height, width, 3)))

    def to_dict(self) -> dict[str, Any]:
        return {"color": list(self.color), "gradient_to": list(self.gradient_to) if self.gradient_to else None}


#: Built-in backdrops, used when :mod:`headshot_lab.styles` is not installed or has no such style.
#: ``tests/test_retouch.py`` checks that they agree with the style presets.
BUILTIN_BACKDROPS: dict[str, Backdrop] = {
    "corporate": Backdrop((128, 130, 133), (92, 94, 97)),
    "office": Backdrop((214, 210, 202), (168, 170, 166)),
    "outdoor": Backdrop((118, 142, 96), (64, 88, 58)),
    "creative": Backdrop((38, 92, 102), (18, 44, 52)),
    "academic": Backdrop((206, 204, 200), (172, 170, 166)),
    "team": Backdrop((196, 198, 200)),
}


@dataclass
class RetouchResult:
    """A retouched photo and what was done to it.

    Attributes:
        image: ``(H, W, 3)`` ``uint8`` RGB result.
        mask: ``(H, W)`` ``float32`` refined person matte ``α`` in ``[0, 1]``.
        style: the style name (or ``"custom"``).
        backdrop: the backdrop that was composited.
        kind: always ``"retouched"`` (the provenance kind; never ``"generated"``).
        digital_source_type: always ``"compositeWithTrainedAlgorithmicMedia"`` (IPTC).
        skin_before: skin tone of the input (``None`` when no face/skin could be measured).
        skin_after: skin tone of the output on the same skin pixels.
        delta_ita: :func:`headshot_lab.analysis.skin_delta_ita` of the output against the input (positive =
            lighter; each tone from its own photo's analysis record, exactly as selection and the audit
            report it), or ``None``. ``steps["delta_ita_same_pixels"]`` is the change on the input's own
            skin pixels (``skin_after.ita − skin_before.ita``).
        steps: what each step did (cast removed, light offset, matte radius …), for reports.
    """

    image: np.ndarray
    mask: np.ndarray
    style: str
    backdrop: Backdrop
    kind: str = "retouched"
    digital_source_type: str = DIGITAL_SOURCE_TYPE
    skin_before: SkinTone | None = None
    skin_after: SkinTone | None = None
    delta_ita: float | None = None
    steps: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary (no pixels)."""
        return {
            "kind": self.kind,
            "digital_source_type": self.digital_source_type,
            "style": self.style,
            "backdrop": self.backdrop.to_dict(),
            "size": [int(self.image.shape[1]), int(self.image.shape[0])],
            "skin_before": self.skin_before.to_dict() if self.skin_before else None,
            "skin_after": self.skin_after.to_dict() if self.skin_after else None,
            "delta_ita": None if self.delta_ita is None else round(self.delta_ita, 3),
            "steps": self.steps,
        }


# --------------------------------------------------------------------------------------------
# Styles
# --------------------------------------------------------------------------------------------


def _rgb_triplet(value: Any, what: str) -> tuple[int, int, int]:
    if isinstance(value, str) and value.startswith("#") and len(value) == 7:
        return tuple(int(value[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
    try:
        triplet = tuple(round(float(v)) for v in value)
    except (TypeError, ValueError):
        triplet = ()
    if len(triplet) != 3 or not all(0 <= v <= 255 for v in triplet):
        raise HeadshotLabError(
            f"The backdrop {what} {value!r} is not an [r, g, b] colour with values 0–255.",
            fix="Write colours as [r, g, b], e.g. [200, 204, 210], or as '#c8ccd2'.",
            code="bad_style",
        )
    return triplet  # type: ignore[return-value]


def backdrop_from(value: Any) -> Backdrop:
    """A :class:`Backdrop` from a mapping or object with ``color`` and optional ``gradient_to``."""
    if isinstance(value, Backdrop):
        return value
    get = value.get if isinstance(value, Mapping) else lambda key, default=None: getattr(value, key, default)
    color = get("color")
    if color is None:
        raise HeadshotLabError(
            "The style's backdrop has no colour.", fix="Give the backdrop a color: [r, g, b].", code="bad_style"
        )
    gradient = get("gradient_to")
    return Backdrop(
        _rgb_triplet(color, "color"), _rgb_triplet(gradient, "gradient_to") if gradient is not None else None
    )


def resolve_backdrop(style: Any) -> tuple[str, Backdrop]:
    """``(style name, Backdrop)`` for a style name, a style object (``.backdrop``), a mapping or a Backdrop.

    Names are looked up with ``headshot_lab.styles.load_style`` and fall back to
    :data:`BUILTIN_BACKDROPS` when that module (or the style) is not available.
    """
    if isinstance(style, Backdrop):
        return "custom", style
    if isinstance(style, str):
        name = style.strip().lower()
        try:
            from headshot_lab.styles import load_style
        except ImportError:
            load_style = None  # type: ignore[assignment]
        if load_style is not None:
            try:
                loaded = load_style(name)
            except HeadshotLabError:
                if name not in BUILTIN_BACKDROPS:
                    raise
            else:
                return name, backdrop_from(getattr(loaded, "backdrop", None) or {})
        if name not in BUILTIN_BACKDROPS:
            raise HeadshotLabError(
                f"Unknown style {style!r}.",
                fix=f"Choose one of: {', '.join(sorted(BUILTIN_BACKDROPS))}.",
                code="unknown_style",
            )
        return name, BUILTIN_BACKDROPS[name]
    if isinstance(style, Mapping) and "backdrop" not in style:
        return "custom", backdrop_from(style)
    backdrop = style.get("backdrop") if isinstance(style, Mapping) else getattr(style, "backdrop", None)
    if backdrop is None:
        raise HeadshotLabError("The style has no backdrop.", code="bad_style", fix="Add a backdrop with a color.")
    name = style.get("name", "custom") if isinstance(style, Mapping) else getattr(style, "name", "custom")
    return str(name), backdrop_from(backdrop)


# --------------------------------------------------------------------------------------------
# Matte
# --------------------------------------------------------------------------------------------


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Edge-aware smoothing of ``src`` guided by ``guide`` (He et al. 2013; formula in the module docstring).

    Uses OpenCV's ``cv2.ximgproc.guidedFilter`` (colour guide) when opencv-contrib is installed,
    else the grey-guide form of the same filter with box means.

    Args:
        guide: ``(H, W, 3)`` float32 image in ``[0, 1]``.
        src: ``(H, W)`` float32 to filter.
        radius: window radius ``r`` in pixels.
        eps: regularisation ``ε`` (larger = smoother, less edge-following).
    """
    import cv2

    guide = np.ascontiguousarray(guide, dtype=np.float32)
    src = np.ascontiguousarray(src, dtype=np.float32)
    ximgproc = getattr(cv2, "ximgproc", None)
    if ximgproc is not None and hasattr(ximgproc, "guidedFilter"):
        return ximgproc.guidedFilter(guide, src, int(radius), float(eps))
    grey = cv2.cvtColor(guide, cv2.COLOR_RGB2GRAY) if guide.ndim == 3 else guide
    size = (2 * int(radius) + 1, 2 * int(radius) + 1)

    def mean(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, cv2.CV_32F, size, borderType=cv2.BORDER_REFLECT)

    mean_i, mean_p = mean(grey), mean(src)
    a = (mean(grey * src) - mean_i * mean_p) / (mean(grey * grey) - mean_i * mean_i + eps)
    b = mean_p - a * mean_i
    return mean(a) * grey + mean(b)


def grabcut_mask(
    image: np.ndarray, coarse: np.ndarray, *, max_side: int = GRABCUT_SIDE, iterations: int = 4
) -> np.ndarray:
    """Snap the segmenter's blurry edge to the photo's edges with GrabCut (Rother et al. 2004, ``cv2.grabCut``).

    The coarse mask becomes a trimap on a copy whose longer side is at most ``max_side``: sure
    person where the mask, eroded by 3 % of the side, is > 0.5; sure background outside the
    equally dilated mask; "probably" person/background in between by the 0.5 threshold. GrabCut's
    colour models and graph cut decide the band. Returns a ``(H, W)`` float32 0/1 mask at full
    size (bilinear upsampling leaves a one-pixel soft edge for :func:`refine_matte`).
    """
    import cv2

    height, width = coarse.shape
    person = (np.asarray(coarse) > 0.5).astype(np.uint8)
    scale = min(1.0, max_side / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA) if scale < 1 else image
    small_person = cv2.resize(person, size, interpolation=cv2.INTER_NEAREST) if scale < 1 else person
    k = max(3, int(0.03 * max(size)))
    kernel = np.ones((k, k), np.uint8)
    sure_fg = cv2.erode(small_person, kernel) > 0
    sure_bg = cv2.dilate(small_person, kernel) == 0
    if not sure_fg.any() or not sure_bg.any():
        return person.astype(np.float32)
    trimap = np.where(small_person > 0, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    trimap[sure_fg] = cv2.GC_FGD
    trimap[sure_bg] = cv2.GC_BGD
    bgd_model, fgd_model = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    bgr = np.ascontiguousarray(small[..., ::-1])
    # GrabCut seeds its colour models with k-means on OpenCV's RNG (per thread, advanced by every call): seeded
    # here, a person's matte does not depend on who was retouched before in the same process (Ray vs local).
    cv2.setRNGSeed(0)
    cv2.grabCut(bgr, trimap, None, bgd_model, fgd_model, iterations, cv2.GC_INIT_WITH_MASK)  # type: ignore[call-overload]
    hard = ((trimap == cv2.GC_FGD) | (trimap == cv2.GC_PR_FGD)).astype(np.float32)
    return cv2.resize(hard, (width, height), interpolation=cv2.INTER_LINEAR) if scale < 1 else hard


def refine_matte(image: np.ndarray, mask: np.ndarray, *, radius: int | None = None, eps: float = 1e-2) -> np.ndarray:
    """Feather a (near-)binary person mask into a matte that follows the photo's edges.

    The guided filter (guide = the photo) spreads the edge only where the photo has no edge of its
    own, so flyaway hair and soft shoulders get a natural falloff; then
    ``α = clip((q − SNAP) / (1 − 2·SNAP), 0, 1)`` snaps near-0/1 values. ``radius`` defaults to
    0.5 % of the shorter side (at least 3 px). ``eps`` = 10⁻² (guide in [0, 1]): OpenCV's colour
    guided filter silently degenerates to a plain box blur for ε below about 3·10⁻³ (measured on a
    step edge), which would lose the edge-awareness.
    """
    height, width = mask.shape
    radius = radius if radius is not None else default_matte_radius((height, width))
    refined = guided_filter(image.astype(np.float32) / 255.0, np.asarray(mask, dtype=np.float32), radius, eps)
    return np.clip((refined - SNAP) / (1.0 - 2.0 * SNAP), 0.0, 1.0).astype(np.float32)


def default_matte_radius(shape: tuple[int, ...]) -> int:
    """0.5 % of the shorter side, at least 3 px."""
    return max(3, round(min(shape[:2]) / 200))


def person_matte(image: np.ndarray, coarse: np.ndarray | None = None, *, radius: int | None = None) -> np.ndarray:
    """Steps 1–2: ``(H, W)`` float32 matte α in [0, 1].

    ``coarse`` (default: :func:`headshot_lab.faces.mesh.selfie_mask`) → :func:`grabcut_mask` →
    :func:`refine_matte`.
    """
    from headshot_lab.faces.mesh import selfie_mask

    coarse = selfie_mask(image) if coarse is None else coarse
    return refine_matte(image, grabcut_mask(image, coarse), radius=radius)


def estimate_foreground(image: np.ndarray, alpha: np.ndarray, radii: tuple[int, ...] = (90, 6)) -> np.ndarray:
    """Foreground colours ``F`` for compositing (blur-fusion, Germer et al. 2021; formula in the module docstring).

    Only the soft band ``0 < α < 1`` needs solving: where ``α = 1`` the formula gives ``F = I``
    exactly, and where ``α = 0`` ``F`` is never seen. Returns ``(H, W, 3)`` float32 in ``[0, 1]``.
    """
    import cv2

    img = image.astype(np.float32) / 255.0
    a = alpha.astype(np.float32)
    band = (a > 0) & (a < 1)
    fg = img.copy()
    if not band.any():
        return fg
    a_band = a[band][:, None]
    img_band = img[band]
    bg = img
    for i, r in enumerate(radii):
        size = (2 * r + 1, 2 * r + 1)
        blur_a = cv2.blur(a, size, borderType=cv2.BORDER_REPLICATE)[band][:, None]
        fg_hat = cv2.blur(fg * a[..., None], size, borderType=cv2.BORDER_REPLICATE)[band] / (blur_a + 1e-5)
        bg_sum = cv2.blur(bg * (1.0 - a)[..., None], size, borderType=cv2.BORDER_REPLICATE)[band]
        bg_hat = bg_sum / (1.0 - blur_a + 1e-5)
        fg_band = np.clip(fg_hat + a_band * (img_band - a_band * fg_hat - (1.0 - a_band) * bg_hat), 0.0, 1.0)
        if i < len(radii) - 1:
            bg_band = np.clip(
                bg_hat + (1.0 - a_band) * (img_band - (1.0 - a_band) * bg_hat - a_band * fg_band), 0.0, 1.0
            )
            bg = img.copy()
            bg[band] = bg_band
        fg[band] = fg_band
    return fg


# --------------------------------------------------------------------------------------------
# Light and white balance (CIELAB)
# --------------------------------------------------------------------------------------------


def _face_weight(shape: tuple[int, int], mesh: FaceMesh) -> np.ndarray:
    """Feathered face-oval weight ``w`` in [0, 1] (Gaussian edge, σ = 0.15 × inter-ocular distance)."""
    import cv2

    from headshot_lab.faces.mesh import FACE_OVAL

    weight = np.zeros(shape, dtype=np.uint8)
    cv2.fillPoly(weight, [np.round(mesh.region(FACE_OVAL)).astype(np.int32)], 1)
    sigma = max(1.0, 0.15 * mesh.interocular)
    return cv2.GaussianBlur(weight.astype(np.float32), (0, 0), sigma)


def _median_ita(L: np.ndarray, b: np.ndarray) -> float:
    from headshot_lab.skin import ita_from_lab

    return float(np.median(ita_from_lab(L, b)))


def even_light(
    lab: np.ndarray,
    face_weight: np.ndarray,
    skin: np.ndarray,
    skin_region: np.ndarray,
    *,
    strength: float,
    interocular: float,
) -> tuple[np.ndarray, dict[str, float]]:
    """Pull the face's low-frequency lightness towards the skin's median, then lock the skin's median ITA°.

    Args:
        lab: ``(H, W, 3)`` CIELAB (modified copy returned).
        face_weight: ``w`` (see :func:`_face_weight`).
        skin: boolean mask of the measured skin pixels (median lightness and the tone lock).
        skin_region: boolean mask of the skin area (geometry only) used to estimate the illumination.
        strength: ``s`` in ``L*′ = L* + s·w·(L̃ − Ī)``.
        interocular: face scale in pixels (σ of the illumination estimate = 0.35 × this).

    Returns:
        ``(lab′, info)`` with the median lightness, the largest change and the tone-lock offset.
    """
    import cv2

    out = lab.copy()
    L = lab[..., 0]
    if strength <= 0 or not skin.any():
        return out, {"strength": 0.0}
    sigma = max(2.0, 0.35 * interocular)
    # Work on the face's box (where w > 0) grown by 3σ: the illumination field is local.
    ys, xs = np.nonzero(face_weight > 1e-3)
    if ys.size == 0:
        return out, {"strength": 0.0}
    pad = int(3 * sigma) + 1
    box = (
        slice(max(0, ys.min() - pad), min(L.shape[0], ys.max() + 1 + pad)),
        slice(max(0, xs.min() - pad), min(L.shape[1], xs.max() + 1 + pad)),
    )
    L_box = L[box].astype(np.float32)
    weights = skin_region[box].astype(np.float32)
    illumination = cv2.GaussianBlur(L_box * weights, (0, 0), sigma) / (cv2.GaussianBlur(weights, (0, 0), sigma) + 1e-6)
    target = float(np.median(L[skin]))
    lifted = L.copy()
    delta = np.zeros_like(L)
    delta[box] = np.clip(strength * (target - illumination), -MAX_LIGHT_DELTA, MAX_LIGHT_DELTA) * face_weight[box]
    lifted += delta

    # Tone lock: one uniform ΔL over the face so that the skin's median per-pixel ITA is unchanged.
    b_skin = lab[..., 2][skin]
    goal = _median_ita(L[skin], b_skin)
    low, high = -MAX_LIGHT_DELTA, MAX_LIGHT_DELTA
    lifted_skin, weight_skin = lifted[skin], face_weight[skin]
    for _ in range(30):
        mid = 0.5 * (low + high)
        if _median_ita(lifted_skin + mid * weight_skin, b_skin) > goal:
            high = mid
        else:
            low = mid
    offset = 0.5 * (low + high)
    out[..., 0] = np.clip(lifted + offset * face_weight, 0.0, 100.0)
    return out, {
        "strength": float(strength),
        "skin_median_L": round(target, 2),
        "max_change_L": round(float(np.abs(delta).max()), 2),
        "tone_lock_L": round(offset, 3),
    }


def neutral_white_balance(
    lab: np.ndarray, alpha: np.ndarray, face_weight: np.ndarray
) -> tuple[np.ndarray, dict[str, float]]:
    """Remove a colour cast measured on the person's near-neutral, non-face pixels (formula in the module docstring).

    ``a*′ = a* − k·ā*``, ``b*′ = b* − k·b̄*`` with ``k = α·(1 − w)·clip(2 − C*ab / C₀, 0, 1)``,
    ``C₀`` = :data:`NEUTRAL_CHROMA`: full correction on neutrals, none on colourful pixels or on the face.
    """
    out = lab.copy()
    a, b = lab[..., 1], lab[..., 2]
    chroma = np.hypot(a, b)
    not_face = (1.0 - face_weight) * alpha
    neutral = (not_face > 0.9) & (chroma < NEUTRAL_CHROMA) & (lab[..., 0] > 20) & (lab[..., 0] < 97)
    if neutral.sum() < max(200, 0.002 * alpha.size):
        return out, {"cast_a": 0.0, "cast_b": 0.0}
    cast = np.clip(np.array([np.median(a[neutral]), np.median(b[neutral])]), -MAX_CAST, MAX_CAST)
    k = not_face * np.clip(2.0 - chroma / NEUTRAL_CHROMA, 0.0, 1.0)
    out[..., 1] = a - k * cast[0]
    out[..., 2] = b - k * cast[1]
    return out, {"cast_a": round(float(cast[0]), 3), "cast_b": round(float(cast[1]), 3)}


# --------------------------------------------------------------------------------------------
# The pipeline
# --------------------------------------------------------------------------------------------


def _person_box(alpha: np.ndarray, pad: int) -> tuple[slice, slice]:
    rows = np.flatnonzero(alpha.max(axis=1) > 0)
    cols = np.flatnonzero(alpha.max(axis=0) > 0)
    height, width = alpha.shape
    return (
        slice(max(0, rows[0] - pad), min(height, rows[-1] + 1 + pad)),
        slice(max(0, cols[0] - pad), min(width, cols[-1] + 1 + pad)),
    )


def retouch(
    image: Any,
    style: Any = "corporate",
    *,
    light: float = DEFAULT_LIGHT,
    white_balance: bool = True,
    matte_radius: int | None = None,
    mask: np.ndarray | None = None,
) -> RetouchResult:
    """Studio-retouch a real photo: new backdrop, refined matte, even light, neutral white balance.

    Args:
        image: the photo: ``(H, W, 3)`` array, PIL image or :class:`~headshot_lab.io.Photo`.
        style: a style name (``corporate``, ``office``, ``outdoor``, ``creative``, ``academic``, ``team``
            or any preset of :mod:`headshot_lab.styles`), a style object or mapping with a ``backdrop``,
            or a :class:`Backdrop`.
        light: strength ``s`` of the light evening, 0 … 1 (0 switches it off).
        white_balance: remove a colour cast from the neutrals (never from the skin).
        matte_radius: guided-filter radius (default 0.5 % of the shorter side, at least 3 px).
        mask: a coarse ``(H, W)`` person mask in [0, 1] to use instead of the segmenter.

    Returns:
        A :class:`RetouchResult` (``kind="retouched"``) with the skin tone before and after.

    Raises:
        HeadshotLabError: ``no_person`` when no person is found; ``unknown_style`` / ``bad_style``;
            ``bad_option`` for an out-of-range ``light``.
    """
    from headshot_lab.faces.mesh import face_mesh
    from headshot_lab.io import as_rgb_array

    if not 0.0 <= float(light) <= 1.0:
        raise HeadshotLabError(f"light must be between 0 and 1, got {light}.", code="bad_option", fix="Use e.g. 0.4.")
    style_name, backdrop = resolve_backdrop(style)
    try:
        pixels = as_rgb_array(image)
    except ValueError as exc:
        raise HeadshotLabError(f"Cannot retouch this input: {exc}.", code="bad_image") from None
    full: np.ndarray | None = None
    if mask is None and pixels.shape[0] * pixels.shape[1] > ANALYSIS_PIXELS:  # work at analysis size
        full, pixels = pixels, _analysis_copy(pixels)
        if matte_radius is not None:
            matte_radius = max(1, round(matte_radius * pixels.shape[0] / full.shape[0]))
    height, width = pixels.shape[:2]
    meshes = face_mesh(pixels, max_faces=1)
    mesh = meshes[0] if meshes else None

    # 1–2. segment, refine the matte
    coarse = None if mask is None else np.clip(np.asarray(mask, dtype=np.float32), 0, 1)
    if coarse is not None and coarse.shape != (height, width):
        raise HeadshotLabError(
            f"The mask is {coarse.shape[1]}×{coarse.shape[0]} but the photo is {width}×{height}.", code="bad_mask"
        )
    radius = matte_radius if matte_radius is not None else default_matte_radius((height, width))
    alpha = person_matte(pixels, coarse, radius=radius)
    if float((alpha > 0.5).mean()) < MIN_PERSON_FRACTION:
        raise HeadshotLabError(
            "No person was found in the photo, so there is no background to replace.",
            fix="Use a photo of one person, from the chest up, facing the camera.",
            code="no_person",
        )
    steps: dict[str, Any] = {"matte_radius": radius}

    # 3. foreground colours on the person's box (the rest becomes backdrop)
    rows, cols = _person_box(alpha, pad=8)
    box_alpha = alpha[rows, cols]
    foreground = estimate_foreground(pixels[rows, cols], box_alpha)

    # 4–5. light and white balance (CIELAB), skin measured before
    skin, skin_region, skin_before = _skin_before(pixels, mesh)
    person, steps_lab = _relight(
        foreground,
        box_alpha,
        mesh,
        skin,
        skin_region,
        (rows, cols),
        light=float(light) if skin_before is not None else 0.0,
        wb=white_balance,
    )
    steps.update(steps_lab)

    # 6. composite
    out = backdrop.render(height, width)
    a = box_alpha[..., None]
    out[rows, cols] = np.clip(np.round(a * person + (1.0 - a) * out[rows, cols]), 0, 255).astype(np.uint8)

    skin_after = _measure(out, skin) if skin_before is not None else None
    if skin_before is not None and skin_after is not None:
        steps["delta_ita_same_pixels"] = round(float(skin_after.ita - skin_before.ita), 3)
    change = _reported_delta_ita(pixels, out) if skin_before is not None else None
    if full is not None:  # apply at full size: the matte and the colour changes, upsampled strip by strip
        steps["analysis_size"] = [width, height]
        out, alpha = _apply_at_full_size(full, pixels, person, alpha, (rows, cols), backdrop)
    return RetouchResult(
        image=out,
        mask=alpha,
        style=style_name,
        backdrop=backdrop,
        skin_before=skin_before,
        skin_after=skin_after,
        delta_ita=change,
        steps=steps,
    )


def _analysis_copy(pixels: np.ndarray) -> np.ndarray:
    """``pixels`` downscaled (area average) to about :data:`ANALYSIS_PIXELS` pixels."""
    import cv2

    height, width = pixels.shape[:2]
    scale = (ANALYSIS_PIXELS / (height * width)) ** 0.5
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.ascontiguousarray(cv2.resize(pixels, size, interpolation=cv2.INTER_AREA))


def _apply_at_full_size(
    full: np.ndarray,
    small: np.ndarray,
    person: np.ndarray,
    alpha: np.ndarray,
    box: tuple[slice, slice],
    backdrop: Backdrop,
) -> tuple[np.ndarray, np.ndarray]:
    """Composite at full size from the analysis-size result: ``out = α↑·(I + Δ↑) + (1 − α↑)·backdrop``.

    ``Δ = person − small`` is what steps 3–5 changed (foreground colour at the edge, light, white
    balance: all smooth or confined to the soft band) and ``α`` the matte, both bilinearly upsampled
    (``cv2.remap`` with ``cv2.resize``'s pixel-centre mapping) one strip of :data:`STRIP_ROWS` rows at a
    time, so the only full-size arrays are the photo, the output and the float32 matte; the photo's own
    full-resolution detail is kept (``Δ = 0`` where nothing changed). Returns ``(out, α↑)``.
    """
    import cv2

    height, width = full.shape[:2]
    small_h, small_w = small.shape[:2]
    delta = np.zeros((small_h, small_w, 3), dtype=np.float32)
    delta[box] = person.astype(np.float32) - small[box]
    matte = np.ascontiguousarray(alpha, dtype=np.float32)
    map_x = ((np.arange(width, dtype=np.float32) + 0.5) * (small_w / width) - 0.5)[None, :]
    out = backdrop.render(height, width)
    alpha_full = np.empty((height, width), dtype=np.float32)
    for top in range(0, height, STRIP_ROWS):
        rows = slice(top, min(height, top + STRIP_ROWS))
        ys = (np.arange(rows.start, rows.stop, dtype=np.float32) + 0.5) * (small_h / height) - 0.5
        grid_x = np.ascontiguousarray(np.broadcast_to(map_x, (ys.size, width)))
        grid_y = np.ascontiguousarray(np.broadcast_to(ys[:, None], (ys.size, width)))
        a = cv2.remap(matte, grid_x, grid_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        alpha_full[rows] = a
        if not a.any():
            continue
        change = cv2.remap(delta, grid_x, grid_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        a3 = a[..., None]
        blended = a3 * (full[rows].astype(np.float32) + change) + (1.0 - a3) * out[rows]
        out[rows] = np.clip(np.round(blended), 0, 255).astype(np.uint8)
    return out, alpha_full


def _reported_delta_ita(source: np.ndarray, output: np.ndarray) -> float | None:
    """ΔITA of the output against its source, as the audit reports a retouch (one record each): as photographed,
    since the output is on a new backdrop (another scene; light-matching on the swapped backdrop would read its
    colour as a change of light, ``new_scene`` in :func:`headshot_lab.audit.batch.audit_batch`)."""
    from headshot_lab.analysis import AnalysisOptions, analyse_photo, judge_finder
    from headshot_lab.skin import reported_delta_ita

    finder, options = judge_finder(), AnalysisOptions(embed=False)
    before = analyse_photo(source, backend=finder, options=options)
    after = analyse_photo(output, backend=finder, options=options)
    if before.primary is None or after.primary is None or before.primary.tone is None or after.primary.tone is None:
        return None
    return reported_delta_ita(before.primary.tone, after.primary.tone, same_scene=False)


def _measure(pixels: np.ndarray, skin: np.ndarray) -> SkinTone | None:
    from headshot_lab.skin import NoColourError, NoSkinError, measure_skin

    try:
        return measure_skin(pixels, mask=skin)
    except (NoSkinError, NoColourError):
        return None


def _skin_before(pixels: np.ndarray, mesh: FaceMesh | None) -> tuple[np.ndarray, np.ndarray, SkinTone | None]:
    """``(measured-skin mask, geometric skin area, tone)`` of the input; the tone is ``None`` without skin."""
    from headshot_lab.skin import skin_mask

    if mesh is None:
        empty = np.zeros(pixels.shape[:2], dtype=bool)
        return empty, empty, None
    skin = skin_mask(pixels, mesh)
    region = skin_mask(pixels, mesh, exclude_extremes=False)
    return skin, region, (_measure(pixels, skin) if skin.any() else None)


def _relight(
    foreground: np.ndarray,
    alpha: np.ndarray,
    mesh: FaceMesh | None,
    skin: np.ndarray,
    skin_region: np.ndarray,
    box: tuple[slice, slice],
    *,
    light: float,
    wb: bool,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Steps 4–5 on the person's box; returns float RGB 0–255 and what was done.

    ``skin`` is the measured-skin mask (median, tone lock), ``skin_region`` the geometric skin area
    (illumination estimate), both full-size; ``box`` the person's box the other arrays cover.
    """
    from headshot_lab.skin import lab_to_rgb, rgb_to_lab

    steps: dict[str, Any] = {}
    lab_in = rgb_to_lab(foreground)
    lab = lab_in
    face_w = _face_weight(skin.shape, mesh)[box] if mesh is not None else np.zeros(alpha.shape, dtype=np.float32)
    if mesh is not None and light > 0:
        lab, steps["light"] = even_light(
            lab, face_w, skin[box], skin_region[box], strength=light, interocular=mesh.interocular
        )
    if wb:
        lab, steps["white_balance"] = neutral_white_balance(lab, alpha, face_w)
    # Only pixels a step changed go back through Lab → sRGB; the rest keep their exact values.
    person = foreground * 255.0
    changed = np.any(np.abs(lab - lab_in) > 1e-6, axis=-1)
    if changed.any():
        person[changed] = lab_to_rgb(lab[changed])
    return person, steps
