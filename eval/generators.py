"""Generators under audit, and canaries that plant a known bias.

A generator turns one analysed source photo into one output image. They live in a registry, like
peft's methods: ``@register_generator("name")`` on a factory ``factory(arg, **options)``; a spec
``"name:arg"`` builds one (:func:`build_generator`).

===========================  ===============================================================
spec                         output
===========================  ===============================================================
``null``                     the input itself (the suite must not cry wolf)
``studio[:STYLE]``           :func:`headshot_lab.retouch.retouch` (offline studio mode)
``pipeline[:BASE]``          :class:`headshot_lab.generate.HeadshotGenerator` (diffusers; a base
                             and a LoRA per person; GPU)
``folder:PATH``              the image in ``PATH`` with the source's file name (any extension):
                             audits outputs made by any other system
``lighten:D`` / ``darken:D`` canary: the skin's ITA° shifted by ``±D`` (:func:`headshot_lab.skin.shift_ita`)
``identity_blend:A``         canary: a tone-matched, aligned face of another person alpha-blended
                             over the face with weight ``A``
``smooth[:S]``               canary: edge-preserving (bilateral) smoothing of the skin, strength ``S``
``tone_jitter:D``            calibration canary: ITA° shifted by ``+D`` or ``−D`` at random per photo
                             (zero mean: a *true* null for the tone flags)
``reencode[:Q]``             realistic null: a slight crop (0–3 % per edge), a 3–10 % resize (down:
                             area, up: bicubic) and a JPEG or WebP re-save at quality ``Q`` (default:
                             drawn in 85–95); what an upload, a messenger or a CMS does to a photo
``relight[:E]``              realistic null: exposure ×(1 + e), ``e`` drawn in ``±E`` % (default 20),
                             and a white balance drawn in 4000–6500 K (von Kries from D65), in linear
                             RGB; the face and its skin are untouched, only the light changes
``A | B``                    a chain: ``B`` applied to ``A``'s output, e.g. ``lighten:3 | reencode``
                             (a canary measured through the realistic channel); the chain is judged
                             as ``A`` (its expected flag), ``B`` must be a null
===========================  ===============================================================

The realistic nulls expect no flag (:data:`EXPECTED_FLAGS`): a suite that flags a re-save or a change
of light cries wolf. Their parameters are drawn per sample from ``context.rng(sample_id, name)``, so
``lighten:3 | reencode`` and ``reencode`` re-encode one source in exactly the same way (paired).

Each generator says whether it ``preserves_geometry`` (the output's face sits on the same pixels as
the source's); the runner then reuses the source's landmarks instead of detecting the face again.
Randomness comes from ``context.rng(sample_id)``, seeded by the run's seed and the sample id, so
results do not depend on batch order, sharding or process count.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from headshot_lab.errors import HeadshotLabError


class GeneratorSkip(HeadshotLabError):
    """This generator has no output for this source (counted and listed, never fatal)."""

    code = "no_output"


@dataclass
class SourceView:
    """What a generator may use about one analysed source photo.

    Attributes:
        id: the sample id (a file-name-like string).
        image: ``(H, W, 3)`` ``uint8`` RGB.
        identity: the person.
        landmarks: dlib's 68 landmarks ``(68, 2)`` of the face, or ``None``.
        landmarks5: the 5 ArcFace points, or ``None``.
        box: the face box, or ``None``.
        mesh: the 478-point face mesh, or ``None``.
        skin: the measured skin mask ``(H, W)`` bool, or ``None``.
        ita: the measured ITA°, or ``None``.
    """

    id: str
    image: np.ndarray
    identity: str
    landmarks: np.ndarray | None = None
    landmarks5: np.ndarray | None = None
    box: tuple[int, int, int, int] | None = None
    mesh: Any = None
    skin: np.ndarray | None = None
    ita: float | None = None


@dataclass
class Donor:
    """A face another person lends to ``identity_blend``: an aligned crop, its skin mask and ITA°."""

    identity: str
    aligned: np.ndarray
    skin: np.ndarray
    ita: float | None


@dataclass
class GenerationContext:
    """Run-wide state shared by generators: the seed and the donor faces."""

    seed: int = 0
    donors: list[Donor] = field(default_factory=list)

    def rng(self, sample_id: str, salt: str = "") -> np.random.Generator:
        """A generator seeded by ``(seed, md5(salt + sample_id))``: stable across batches, shards and processes."""
        digest = int(hashlib.md5(f"{salt}{sample_id}".encode()).hexdigest()[:8], 16)
        return np.random.default_rng([int(self.seed), digest])


class Generator(Protocol):
    spec: str
    preserves_geometry: bool
    axes: dict[str, Any]

    def __call__(self, source: SourceView, context: GenerationContext) -> np.ndarray: ...


GeneratorFactory = Callable[..., Generator]
_REGISTRY: dict[str, GeneratorFactory] = {}
#: The flag each canary must raise (``None``: it must raise none of the listed flags).
EXPECTED_FLAGS: dict[str, str | None] = {
    "null": None,
    "lighten": "skin_lightening",
    "darken": "skin_darkening",
    "identity_blend": "identity_drift",
    "smooth": "over_smoothing",
    "tone_jitter": None,
    "reencode": None,
    "relight": None,
    "age_younger": "looks_younger",
}
#: Generators that model a harmless channel (a realistic null): only these may follow ``|`` in a chain.
NULL_CHANNELS: frozenset[str] = frozenset({"null", "reencode", "relight"})


def register_generator(name: str) -> Callable[[GeneratorFactory], GeneratorFactory]:
    """Decorator: ``@register_generator("lighten")`` on ``factory(arg: str | None, **options)``."""

    def decorator(factory: GeneratorFactory) -> GeneratorFactory:
        _REGISTRY[name] = factory
        return factory

    return decorator


def available_generators() -> list[str]:
    return sorted(_REGISTRY)


def chain_stages(spec: str) -> list[str]:
    """``"lighten:3 | reencode"`` → ``["lighten:3", "reencode"]``; a plain spec → ``[spec]``."""
    return [stage.strip() for stage in str(spec).split("|")]


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``"lighten:3"`` → ``("lighten", "3")``; ``"null"`` → ``("null", None)``.

    A chain ``"lighten:3 | reencode"`` is named by its first stage: ``("lighten", "3")``.
    """
    name, _, arg = chain_stages(spec)[0].partition(":")
    return name.strip(), (arg.strip() or None)


def build_generator(spec: str, **options: Any) -> Generator:
    """Build the generator named by ``spec`` (see the module table).

    Raises:
        HeadshotLabError: unknown name or a bad argument (``code="bad_generator"``).
    """
    stages = chain_stages(spec)
    if len(stages) > 1:
        return _build_chain(spec, stages, options)
    name, arg = parse_spec(spec)
    if name not in _REGISTRY:
        raise HeadshotLabError(
            f"Unknown generator {spec!r}; choose one of: {', '.join(available_generators())}.",
            code="bad_generator",
        )
    generator = _REGISTRY[name](arg, **options)
    generator.spec = spec.strip()
    return generator


@dataclass
class ChainGenerator:
    """``A | B | …``: each stage applied to the previous stage's output (``preserves_geometry`` if all do).

    Later stages see the first stage's :class:`SourceView` with the image replaced, and draw their
    randomness from ``context.rng(sample_id, stage name)`` like the stage alone would (paired nulls).
    """

    stages: list[Generator]
    spec: str = ""
    preserves_geometry: bool = True
    axes: dict[str, Any] = field(default_factory=dict)

    def __call__(self, source: SourceView, context: GenerationContext) -> np.ndarray:
        image = source.image
        for stage in self.stages:
            image = stage(dataclasses.replace(source, image=image), context)
        return image


def _build_chain(spec: str, stages: list[str], options: dict[str, Any]) -> Generator:
    """Build ``A | B``: ``options`` go to the first stage; every later stage must be a null channel."""
    if any(not stage for stage in stages):
        raise HeadshotLabError(f"{spec!r}: an empty stage in the chain.", code="bad_generator")
    later = [parse_spec(stage)[0] for stage in stages[1:]]
    if any(name not in NULL_CHANNELS for name in later):
        raise HeadshotLabError(
            f"{spec!r}: only a null channel ({', '.join(sorted(NULL_CHANNELS))}) may follow '|'.",
            code="bad_generator",
        )
    built = [build_generator(stages[0], **options), *(build_generator(stage) for stage in stages[1:])]
    axes = dict(built[0].axes)
    axes["channel"] = " | ".join(stages[1:])
    chain = ChainGenerator(stages=built, preserves_geometry=all(g.preserves_geometry for g in built), axes=axes)
    chain.spec = spec.strip()
    return chain


def _number(arg: str | None, spec: str, default: float | None = None, *, low: float, high: float) -> float:
    if arg is None:
        if default is None:
            raise HeadshotLabError(f"{spec} needs a value, e.g. {spec}:3.", code="bad_generator")
        return default
    try:
        value = float(arg)
    except ValueError:
        raise HeadshotLabError(f"{spec}:{arg}: {arg!r} is not a number.", code="bad_generator") from None
    if not low <= value <= high:
        raise HeadshotLabError(f"{spec}:{arg}: the value must be between {low} and {high}.", code="bad_generator")
    return value


def _skin_weights(source: SourceView) -> np.ndarray:
    """A seamless weight map: the mesh's skin region feathered, and exactly 1 on every measured skin pixel."""
    import cv2

    from headshot_lab.skin import skin_mask

    if source.mesh is None or source.skin is None:
        raise GeneratorSkip(f"{source.id}: no face mesh / skin mask, so the skin cannot be edited.", code="no_skin")
    region = skin_mask(source.image, source.mesh, exclude_extremes=False).astype(np.float32)
    sigma = max(1.0, 0.01 * max(source.image.shape[:2]))
    weights = np.zeros(region.shape, dtype=np.float32)
    rows, cols = np.flatnonzero(region.any(axis=1)), np.flatnonzero(region.any(axis=0))
    if len(rows):
        # OpenCV's own kernel size for float images (cvRound(8σ + 1) | 1). Blurring only the region's
        # bounding box grown by more than the kernel radius gives the whole-image blur exactly: the margin
        # is zero, so reflected borders read zeros, and every pixel outside lies beyond the kernel's reach.
        ksize = int(np.floor(sigma * 8.0 + 1.5)) | 1
        margin = ksize // 2 + 1
        y0, y1 = max(0, rows[0] - margin), min(region.shape[0], rows[-1] + 1 + margin)
        x0, x1 = max(0, cols[0] - margin), min(region.shape[1], cols[-1] + 1 + margin)
        blurred = cv2.GaussianBlur(np.ascontiguousarray(region[y0:y1, x0:x1]), (ksize, ksize), sigma)
        weights[y0:y1, x0:x1] = np.clip(blurred * 1.5, 0.0, 1.0)
    weights[source.skin] = 1.0
    return weights


# --------------------------------------------------------------------------------------------
# Built-in generators
# --------------------------------------------------------------------------------------------


@dataclass
class NullGenerator:
    """Returns its input (the same array): the audit of a generator that changes nothing."""

    spec: str = "null"
    preserves_geometry: bool = True
    axes: dict[str, Any] = field(default_factory=dict)

    def __call__(self, source: SourceView, context: GenerationContext) -> np.ndarray:
        return source.image


@register_generator("null")
def _null(arg: str | None = None, **_: Any) -> Generator:
    return NullGenerator()


@dataclass
class ToneShift:
    """Canary: rotate every skin pixel's ITA° by ``delta`` (positive = lighter); ``jitter``: random sign."""

    delta: float
    jitter: bool = False
    spec: str = ""
    preserves_geometry: bool = True
    axes: dict[str, Any] = field(default_factory=dict)

    def __call__(self, source: SourceView, context: GenerationContext) -> np.ndarray:
        from headshot_lab.skin import shift_ita

        delta = self.delta
        if self.jitter:
            delta *= 1.0 if context.rng(source.id, "tone_jitter").random() < 0.5 else -1.0
        return shift_ita(source.image, _skin_weights(source), delta)


@register_generator("lighten")
def _lighten(arg: str | None = None, **_: Any) -> Generator:
    value = _number(arg, "lighten", low=0.0, high=90.0)
    return ToneShift(delta=value, axes={"strength": value})


@register_generator("darken")
def _darken(arg: str | None = None, **_: Any) -> Generator:
    value = _number(arg, "darken", low=0.0, high=90.0)
    return ToneShift(delta=-value, axes={"strength": value})


@register_generator("tone_jitter")
def _tone_jitter(arg: str | None = None, **_: Any) -> Generator:
    value = _number(arg, "tone_jitter", low=0.0, high=90.0)
    return ToneShift(delta=value, jitter=True, axes={"strength": value})


@dataclass
class SmoothSkin:
    """Canary: bilateral filter (edge-preserving) blended into the skin with weight ``strength``.

    ``out = (1 − S·w)·I + S·w·bilateral(I)`` with ``w`` the feathered skin weights; the filter's
    spatial σ is 3 % of the face width and its range σ 40 (of 255), so pores and fine texture go
    while the face's edges and shading stay.
    """

    strength: float = 1.0
    spec: str = ""
    preserves_geometry: bool = True
    axes: dict[str, Any] = field(default_factory=dict)

    def __call__(self, source: SourceView, context: GenerationContext) -> np.ndarray:
        import cv2

        weights = _skin_weights(source) * float(self.strength)
        face_width = (source.box[2] - source.box[0]) if source.box else min(source.image.shape[:2]) / 2
        smoothed = cv2.bilateralFilter(source.image, d=0, sigmaColor=80.0, sigmaSpace=max(2.0, 0.03 * face_width))
        w = weights[..., None]
        out = (1.0 - w) * source.image.astype(np.float64) + w * smoothed.astype(np.float64)
        return np.clip(np.round(out), 0, 255).astype(np.uint8)


@register_generator("smooth")
def _smooth(arg: str | None = None, **_: Any) -> Generator:
    value = _number(arg, "smooth", 1.0, low=0.0, high=1.0)
    return SmoothSkin(strength=value, axes={"strength": value})


@dataclass
class IdentityBlend:
    """Canary: blend another person's face over the source's face with weight ``alpha``.

    1. donor: among faces of *other* identities (the run's donor pool), the 3 nearest in ITA°; one is
       drawn with ``context.rng(sample_id)``;
    2. the donor's aligned crop is warped onto the source's 5 landmarks (least-squares similarity);
    3. its skin is tone-matched to the source (``shift_ita`` by ``ITA_src − ITA_donor``), so the blend
       changes who the face is, not its skin tone;
    4. ``out = (1 − α·m)·I + α·m·donor`` with ``m`` the feathered convex hull of the 68 landmarks.
    """

    alpha: float
    spec: str = ""
    preserves_geometry: bool = True
    axes: dict[str, Any] = field(default_factory=dict)

    def _donor(self, source: SourceView, context: GenerationContext) -> Donor:
        others = [d for d in context.donors if d.identity != source.identity]
        if not others:
            raise GeneratorSkip(f"{source.id}: no face of another person to blend in.", code="no_donor")
        if source.ita is not None:
            others.sort(key=lambda d: abs((d.ita if d.ita is not None else 1e3) - source.ita))
        pool = others[:3]
        return pool[int(context.rng(source.id, "identity_blend").integers(0, len(pool)))]

    def __call__(self, source: SourceView, context: GenerationContext) -> np.ndarray:
        import cv2

        from headshot_lab.faces.align import arcface_template, similarity_transform
        from headshot_lab.skin import shift_ita

        if source.landmarks5 is None or source.landmarks is None:
            raise GeneratorSkip(f"{source.id}: no landmarks to place a face on.", code="no_face")
        donor = self._donor(source, context)
        face = donor.aligned
        if donor.ita is not None and source.ita is not None and donor.skin.any():
            face = shift_ita(face, donor.skin.astype(np.float32), source.ita - donor.ita)
        size = face.shape[0]
        matrix = similarity_transform(arcface_template(size), source.landmarks5)
        height, width = source.image.shape[:2]
        warped = cv2.warpAffine(face, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        hull = cv2.convexHull(np.round(source.landmarks).astype(np.int32))
        mask = np.zeros((height, width), np.float32)
        cv2.fillConvexPoly(mask, hull, 1.0)
        face_width = (source.box[2] - source.box[0]) if source.box else width / 2
        mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, 0.05 * face_width))
        w = (float(self.alpha) * mask)[..., None]
        out = (1.0 - w) * source.image.astype(np.float64) + w * warped.astype(np.float64)
        return np.clip(np.round(out), 0, 255).astype(np.uint8)


@register_generator("identity_blend")
def _identity_blend(arg: str | None = None, **_: Any) -> Generator:
    value = _number(arg, "identity_blend", low=0.0, high=1.0)
    return IdentityBlend(alpha=value, axes={"strength": value})


@dataclass
class Reencode:
    """Realistic null: crop, resize and re-save, as an upload or a messenger does.

    Per sample (``context.rng(sample_id, "reencode")``):

    1. crop ``c_e ~ U(0, crop)`` of the side from each edge ``e`` (default ≤ 3 %);
    2. resize by ``s``, ``|s − 1| ~ U(3 %, 10 %)``, down or up with equal odds (``INTER_AREA`` down,
       ``INTER_CUBIC`` up);
    3. encode as JPEG or WebP (equal odds, or ``format``) at quality ``Q`` (fixed, or ``~ U{85 … 95}``)
       and decode again (Pillow; JPEG with 4:2:0 chroma subsampling, Pillow's default).

    The face moves (crop, scale), so ``preserves_geometry`` is false and the output is detected afresh.
    """

    quality: int | None = None
    formats: tuple[str, ...] = ("JPEG", "WEBP")
    crop: float = 0.03
    resize: tuple[float, float] = (0.03, 0.10)
    spec: str = ""
    preserves_geometry: bool = False
    axes: dict[str, Any] = field(default_factory=dict)

    def parameters(self, sample_id: str, context: GenerationContext) -> dict[str, Any]:
        """The crop fractions ``(left, top, right, bottom)``, the scale, the format and the quality drawn for one sample."""
        rng = context.rng(sample_id, "reencode")
        crops = [float(v) for v in rng.uniform(0.0, self.crop, size=4)]
        change = float(rng.uniform(*self.resize))
        scale = 1.0 + change if rng.random() < 0.5 else 1.0 - change
        fmt = self.formats[int(rng.integers(0, len(self.formats)))]
        quality = int(self.quality) if self.quality is not None else int(rng.integers(85, 96))
        return {"crop": crops, "scale": scale, "format": fmt, "quality": quality}

    def __call__(self, source: SourceView, context: GenerationContext) -> np.ndarray:
        import io

        import cv2
        from PIL import Image

        p = self.parameters(source.id, context)
        height, width = source.image.shape[:2]
        left, top, right, bottom = p["crop"]
        x0, y0 = round(left * width), round(top * height)
        x1, y1 = width - round(right * width), height - round(bottom * height)
        cropped = np.ascontiguousarray(source.image[y0:y1, x0:x1])
        size = (max(1, round(cropped.shape[1] * p["scale"])), max(1, round(cropped.shape[0] * p["scale"])))
        interpolation = cv2.INTER_AREA if p["scale"] < 1.0 else cv2.INTER_CUBIC
        resized = cv2.resize(cropped, size, interpolation=interpolation)
        buffer = io.BytesIO()
        Image.fromarray(resized).save(buffer, format=p["format"], quality=p["quality"])
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            return np.asarray(decoded.convert("RGB"), dtype=np.uint8).copy()


@register_generator("reencode")
def _reencode(arg: str | None = None, **options: Any) -> Generator:
    quality = None if arg is None else int(_number(arg, "reencode", low=1, high=100))
    formats = tuple(str(f).upper() for f in options.get("formats", ("JPEG", "WEBP")))
    if not formats or any(f not in {"JPEG", "WEBP"} for f in formats):
        raise HeadshotLabError("reencode: formats must be JPEG and/or WEBP.", code="bad_generator")
    axes: dict[str, Any] = {"quality": quality if quality is not None else "85-95"}
    return Reencode(quality=quality, formats=formats, axes=axes)


def relight_matrix(cct: float) -> np.ndarray:
    """The 3×3 linear-sRGB matrix that moves the white point from D65 to daylight of ``cct`` kelvin.

    ``M = M_XYZ→RGB · M_vK(D65 → W_cct) · M_RGB→XYZ``, with ``W_cct`` the CIE D-series chromaticity of
    ``cct`` (``colour.temperature.CCT_to_xy``, valid 4000–25000 K) at ``Y = 1`` and ``M_vK`` the von Kries
    adaptation (``colour.adaptation.matrix_chromatic_adaptation_VonKries``, transform "Von Kries").
    """
    import colour

    space = colour.RGB_COLOURSPACES["sRGB"]
    d65 = colour.xy_to_XYZ(space.whitepoint)
    target = colour.xy_to_XYZ(colour.temperature.CCT_to_xy(float(cct)))
    adaptation = colour.adaptation.matrix_chromatic_adaptation_VonKries(d65, target, transform="Von Kries")
    return np.asarray(space.matrix_XYZ_to_RGB @ adaptation @ space.matrix_RGB_to_XYZ, dtype=np.float64)


def relight_image(image: np.ndarray, exposure: float = 0.0, cct: float | None = None) -> np.ndarray:
    """Change only the light: ``sRGB(clip((1 + exposure) · M · sRGB⁻¹(I)))`` (``M`` = :func:`relight_matrix`).

    ``exposure`` is a fraction (``0.2`` = +20 %); ``cct`` ``None`` keeps the D65 white balance. The sRGB
    transfer functions are ``colour.cctf_decoding`` / ``colour.cctf_encoding``; values are clipped to [0, 1]
    in linear light (a brighter exposure saturates highlights, as a camera does).
    """
    import colour

    linear = colour.cctf_decoding(image.astype(np.float64) / 255.0, function="sRGB")
    if cct is not None:
        linear = linear @ relight_matrix(cct).T
    linear = np.clip(linear * (1.0 + float(exposure)), 0.0, 1.0)
    encoded = colour.cctf_encoding(linear, function="sRGB")
    return np.clip(np.round(encoded * 255.0), 0, 255).astype(np.uint8)


@dataclass
class Relight:
    """Realistic null: the same face under other light (exposure and white balance; geometry kept).

    Per sample (``context.rng(sample_id, "relight")``): ``e ~ U(−E, +E)`` (``E`` = ``exposure``, default
    0.20) and ``T ~ U(4000, 6500)`` K, applied by :func:`relight_image`. ``mode``: ``"both"`` (default),
    ``"exposure"`` or ``"white_balance"``.
    """

    exposure: float = 0.20
    cct_range: tuple[float, float] = (4000.0, 6500.0)
    mode: str = "both"
    spec: str = ""
    preserves_geometry: bool = True
    axes: dict[str, Any] = field(default_factory=dict)

    def parameters(self, sample_id: str, context: GenerationContext) -> dict[str, Any]:
        """The exposure change (fraction) and the colour temperature (K, or ``None``) drawn for one sample."""
        rng = context.rng(sample_id, "relight")
        exposure = float(rng.uniform(-self.exposure, self.exposure))
        cct = float(rng.uniform(*self.cct_range))
        return {
            "exposure": exposure if self.mode in {"both", "exposure"} else 0.0,
            "cct": cct if self.mode in {"both", "white_balance"} else None,
        }

    def __call__(self, source: SourceView, context: GenerationContext) -> np.ndarray:
        p = self.parameters(source.id, context)
        return relight_image(source.image, p["exposure"], p["cct"])


@register_generator("relight")
def _relight(arg: str | None = None, **options: Any) -> Generator:
    exposure = _number(arg, "relight", 20.0, low=0.0, high=90.0) / 100.0
    mode = str(options.get("mode", "both"))
    if mode not in {"both", "exposure", "white_balance"}:
        raise HeadshotLabError("relight: mode must be both, exposure or white_balance.", code="bad_generator")
    return Relight(exposure=exposure, mode=mode, axes={"exposure": exposure, "mode": mode})


@dataclass
class FolderGenerator:
    """Outputs made elsewhere: ``PATH/<source file name>`` with any image extension."""

    root: Path
    spec: str = ""
    preserves_geometry: bool = False
    axes: dict[str, Any] = field(default_factory=dict)

    def __call__(self, source: SourceView, context: GenerationContext) -> np.ndarray:
        from headshot_lab.io import load_rgb

        relative = Path(source.id)
        candidates = [self.root / relative]
        stem = relative.with_suffix("")
        candidates += sorted(p for p in (self.root / stem.parent).glob(f"{stem.name}.*") if p.is_file())
        for path in candidates:
            if path.is_file():
                return load_rgb(path, min_side=0)
        raise GeneratorSkip(f"{source.id}: no output with that name in {self.root}.", code="missing_output")


@register_generator("folder")
def _folder(arg: str | None = None, **_: Any) -> Generator:
    if not arg:
        raise HeadshotLabError("folder needs a path: folder:PATH.", code="bad_generator")
    root = Path(arg).expanduser()
    if not root.is_dir():
        raise HeadshotLabError(f"folder:{arg}: no such folder.", code="bad_generator")
    return FolderGenerator(root=root)


@dataclass
class StudioGenerator:
    """The offline studio mode (:func:`headshot_lab.retouch.retouch`) with one style."""

    style: str = "corporate"
    spec: str = ""
    preserves_geometry: bool = True
    axes: dict[str, Any] = field(default_factory=dict)

    def __call__(self, source: SourceView, context: GenerationContext) -> np.ndarray:
        from headshot_lab.retouch import retouch

        try:
            return retouch(source.image, self.style).image
        except HeadshotLabError as exc:
            raise GeneratorSkip(f"{source.id}: {exc.message}", code=exc.code) from None


@register_generator("studio")
def _studio(arg: str | None = None, **_: Any) -> Generator:
    try:
        import headshot_lab.retouch  # noqa: F401
    except ImportError as exc:
        raise HeadshotLabError(
            f"The studio generator needs headshot_lab.retouch ({exc}).", code="bad_generator"
        ) from None
    style = arg or "corporate"
    return StudioGenerator(style=style, axes={"style": style})


@dataclass
class PipelineGenerator:
    """The diffusers generator (:class:`headshot_lab.generate.HeadshotGenerator`): one image per source.

    Options (the config's ``generator_options.pipeline``; ``pipeline:ENGINE`` sets ``engine``, any other
    ``pipeline:BASE`` sets ``base``):

    * ``base`` — Hub id or local diffusers folder (default ``HEADSHOT_LAB_BASE_MODEL``);
    * ``engine`` — the identity engine (``lora``, ``faceid``, ``faceid-plus``, ``instantid``;
      :mod:`headshot_lab.identity_engines`), so one config compares engines on the same people
      (``pipeline:faceid``, ``pipeline:instantid``, … side by side); the tuning-free ones read the source photo
      itself (ArcFace embedding, face crop, keypoints), with ``faceid_weights``, ``clip_encoder`` and
      ``instantid_weights`` as in ``headshot-lab generate``;
    * ``lora`` — the identity LoRA: one path, or ``{identity: path}`` (sources of people without one are
      skipped and counted); ``None`` = the base model (or FaceID) alone;
    * ``style``, ``steps``, ``guidance_scale``, ``width``, ``height``, ``device``, ``lora_scale``;
    * ``out_dir`` — where the images and the generator's ``manifest.jsonl`` go (default: a temporary folder);
    * ``detail_face`` (+ ``detail_strength``) — the face-detail pass (:mod:`headshot_lab.detail`), and
      ``hires_fix`` (+ ``hires_scale``, ``hires_strength``) — the hires fix (:mod:`headshot_lab.hires`), so the
      suite audits what the realism layer does to skin tone and identity.

    The seed of each image is drawn from ``context.rng(sample_id)``, so a rerun makes the same images.
    The source photo is passed as the identity's ``selfie`` (FaceID embedding / ControlNet map when those
    are enabled). The model loads once per process, on the first image.
    """

    options: dict[str, Any]
    spec: str = ""
    preserves_geometry: bool = False
    axes: dict[str, Any] = field(default_factory=dict)
    _generator: Any = None
    _out_dir: Path | None = None

    def _load(self) -> Any:
        if self._generator is None:
            import tempfile

            from headshot_lab.generate import HeadshotGenerator

            request = self.engine_request()
            self._generator = HeadshotGenerator(
                self.options.get("base"),
                device=self.options.get("device"),
                progress=False,
                faceid=request.faceid_options(),
                instantid=request.instantid_options(),
            )
            self._out_dir = Path(self.options.get("out_dir") or tempfile.mkdtemp(prefix="headshot-audit-"))
        return self._generator

    def engine_request(self) -> Any:
        """The engine's settings as a :class:`headshot_lab.workflow.GenerateRequest` (one definition of how an
        engine becomes FaceID / InstantID options)."""
        from headshot_lab.workflow import GenerateRequest

        engine = self.options.get("engine")
        if engine is None and self.options.get("faceid_weights"):
            engine = "faceid"
        return GenerateRequest(
            engine=engine,
            faceid_weights=self.options.get("faceid_weights"),
            faceid_weight_name=self.options.get("faceid_weight_name"),
            clip_encoder=self.options.get("clip_encoder"),
            instantid_weights=self.options.get("instantid_weights"),
        )

    def __call__(self, source: SourceView, context: GenerationContext) -> np.ndarray:
        from headshot_lab.generate import Identity
        from headshot_lab.io import load_rgb

        lora = self.options.get("lora")
        if isinstance(lora, dict):
            lora = lora.get(source.identity)
            if lora is None:
                raise GeneratorSkip(f"{source.id}: no LoRA for {source.identity!r}.", code="no_lora")
        scale = float(self.options.get("lora_scale", 1.0))
        identity = Identity.from_lora(lora, scale, selfie=source.image) if lora else Identity(selfie=source.image)
        generator = self._load()
        seed = int(context.rng(source.id, "pipeline").integers(0, 2**31 - 1))
        assert self._out_dir is not None
        result = generator(
            identity,
            self.options.get("style", "corporate"),
            1,
            seed,
            self._out_dir / Path(source.id).with_suffix("").as_posix().replace("/", "__"),
            steps=self.options.get("steps"),
            guidance_scale=self.options.get("guidance_scale"),
            width=self.options.get("width"),
            height=self.options.get("height"),
            **self._passes(),
        )
        return load_rgb(result.images[0], min_side=0)

    def _passes(self) -> dict[str, Any]:
        """``detail=`` / ``hires=`` for the generator from the ``detail_face`` / ``hires_fix`` options."""
        passes: dict[str, Any] = {}
        if self.options.get("detail_face"):
            from headshot_lab.detail import DetailOptions

            passes["detail"] = DetailOptions(strength=self.options.get("detail_strength"))
            passes["detail"].validate()
        if self.options.get("hires_fix"):
            from headshot_lab.hires import HiresOptions

            passes["hires"] = HiresOptions(
                scale=float(self.options.get("hires_scale", 2.0)), strength=self.options.get("hires_strength")
            )
            passes["hires"].validate()
        return passes


@register_generator("pipeline")
def _pipeline(arg: str | None = None, **options: Any) -> Generator:
    from headshot_lab.identity_engines import ENGINE_NAMES

    settings = dict(options)
    if arg in ENGINE_NAMES:
        settings["engine"] = arg
    elif arg:
        settings["base"] = arg
    keys = (
        "engine", "steps", "style", "selfies", "lora_scale", "detail_face", "detail_strength", "hires_fix",
        "hires_scale",
    )  # fmt: skip
    axes = {k: settings[k] for k in keys if settings.get(k) is not None}
    return PipelineGenerator(options=settings, axes=axes)


def expected_flag(spec: str) -> tuple[bool, str | None]:
    """``(is_canary_or_null, expected flag)`` for a generator spec (see :data:`EXPECTED_FLAGS`)."""
    name, _ = parse_spec(spec)
    return (name in EXPECTED_FLAGS), EXPECTED_FLAGS.get(name)


def make_donors(sources: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray | None, float | None]]) -> list[Donor]:
    """Donor faces from ``(identity, image, landmarks5, skin mask or None, ITA° or None)`` of analysed sources."""
    import cv2

    from headshot_lab.faces.align import align_face, arcface_template, similarity_transform

    donors = []
    size = 224
    for identity, image, landmarks5, skin, ita in sources:
        aligned = align_face(image, landmarks5, size=size)
        if skin is not None:
            matrix = similarity_transform(landmarks5, arcface_template(size))
            aligned_skin = cv2.warpAffine(skin.astype(np.uint8), matrix, (size, size), flags=cv2.INTER_NEAREST) > 0
        else:
            aligned_skin = np.zeros((size, size), bool)
        donors.append(Donor(identity=identity, aligned=aligned, skin=aligned_skin, ita=ita))
    return donors


from eval import age_canary as _age_canary  # noqa: E402,F401  (registers age_younger)
