"""The insightface backend, wired end to end with tiny ONNX models built here (no weights exist offline).

* ``tiny_arcface.onnx`` — ArcFace-shaped: input ``1×3×112×112`` float, ``AveragePool(8)`` → ``Flatten`` →
  ``MatMul`` to 512-D. insightface's router picks ``ArcFaceONNX`` for it from the shapes alone.
* ``tiny_scrfd.onnx`` — SCRFD-shaped (9 outputs: scores, box distances and 5 key points at strides 8/16/32,
  2 anchors): its stride-32 score is high only where a 32×32 cell of the 640×640 input is bright, and the box and
  key-point offsets are constants, so a white square on black gives one "face" whose geometry we know exactly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from headshot_lab.errors import HeadshotLabError, ModelUnavailableError

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("insightface")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from headshot_lab.faces import get_backend, similarity  # noqa: E402
from headshot_lab.faces.insightface_backend import ENV_VAR, InsightFaceBackend  # noqa: E402

OPSET = 13
IR_VERSION = 8
POOL = 8
EMBED_DIM = 512
# Key-point offsets from the anchor, in units of the stride: a face-like 5-point layout.
KPS_OFFSETS = np.array([[-0.6, -0.4], [0.6, -0.4], [0.0, 0.1], [-0.45, 0.6], [0.45, 0.6]], dtype=np.float32)
BOX_DISTANCE = 2.0  # box = anchor ± 2 strides
CELL = (5, 7)  # (row, col) of the bright stride-32 cell in the 640×640 detector input


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="headshot-lab-tests")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def arcface_weights(seed: int = 0) -> np.ndarray:
    side = 112 // POOL
    return np.random.default_rng(seed).standard_normal((3 * side * side, EMBED_DIM)).astype(np.float32)


def build_tiny_arcface(path: Path, seed: int = 0) -> Path:
    weights = numpy_helper.from_array(arcface_weights(seed), name="W")
    graph = helper.make_graph(
        [
            helper.make_node("AveragePool", ["data"], ["pooled"], kernel_shape=[POOL, POOL], strides=[POOL, POOL]),
            helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "W"], ["fc1"]),
        ],
        "tiny_arcface",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 112, 112])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [1, EMBED_DIM])],
        initializer=[weights],
    )
    return _save(graph, path)


def build_tiny_scrfd(path: Path) -> Path:
    nodes, inits, outputs = [], [], {"score": [], "bbox": [], "kps": []}
    for stride in (8, 16, 32):
        side = 640 // stride
        nodes.append(
            helper.make_node(
                "AveragePool", ["input.1"], [f"p{stride}"], kernel_shape=[stride] * 2, strides=[stride] * 2
            )
        )
        for kind, per_anchor in (("score", 1), ("bbox", 4), ("kps", 10)):
            channels = 2 * per_anchor
            weight = np.zeros((channels, 3, 1, 1), np.float32)
            if kind == "score":
                # logit = 10·mean(normalised RGB) − 5 at stride 32 (white ≈ +5, black ≈ −15); never fires elsewhere.
                weight[:] = 10.0 / 3.0 if stride == 32 else 0.0
                bias = np.full(channels, -5.0 if stride == 32 else -30.0, np.float32)
            elif kind == "bbox":
                bias = np.full(channels, BOX_DISTANCE, np.float32)
            else:
                bias = np.tile(KPS_OFFSETS.ravel(), 2).astype(np.float32)
            name = f"{kind}{stride}"
            inits += [numpy_helper.from_array(weight, f"{name}_w"), numpy_helper.from_array(bias, f"{name}_b")]
            inits.append(numpy_helper.from_array(np.array([-1, per_anchor], np.int64), f"{name}_shape"))
            nodes += [
                helper.make_node("Conv", [f"p{stride}", f"{name}_w", f"{name}_b"], [f"{name}_c"]),
                helper.make_node("Transpose", [f"{name}_c"], [f"{name}_t"], perm=[0, 2, 3, 1]),
            ]
            last = f"{name}_t"
            if kind == "score":
                nodes.append(helper.make_node("Sigmoid", [last], [f"{name}_s"]))
                last = f"{name}_s"
            nodes.append(helper.make_node("Reshape", [last, f"{name}_shape"], [name]))
            outputs[kind].append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [side * side * 2, per_anchor]))
    graph = helper.make_graph(
        nodes,
        "tiny_scrfd",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, 640, 640])],
        outputs["score"] + outputs["bbox"] + outputs["kps"],
        initializer=inits,
    )
    return _save(graph, path)


@pytest.fixture(scope="module")
def packs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("insightface-packs")
    rec_only = root / "rec_only"
    rec_only.mkdir()
    build_tiny_arcface(rec_only / "tiny_arcface.onnx")
    full = root / "full"
    full.mkdir()
    build_tiny_arcface(full / "tiny_arcface.onnx")
    build_tiny_scrfd(full / "tiny_scrfd.onnx")
    return {"rec_only": rec_only, "full": full}


@pytest.fixture(scope="module")
def rec_only_backend(packs) -> InsightFaceBackend:
    return InsightFaceBackend(model_dir=packs["rec_only"], device="cpu")


@pytest.fixture(scope="module")
def full_backend(packs) -> InsightFaceBackend:
    return InsightFaceBackend(model_dir=packs["full"], device="cpu")


def expected_embedding(aligned_rgb: np.ndarray) -> np.ndarray:
    """What the tiny ArcFace must output for an aligned RGB crop: insightface's (x − 127.5)/127.5, RGB, NCHW."""
    x = (aligned_rgb.astype(np.float32) - 127.5) / 127.5
    x = x.transpose(2, 0, 1)
    side = 112 // POOL
    pooled = x.reshape(3, side, POOL, side, POOL).mean(axis=(2, 4))
    vector = pooled.reshape(-1) @ arcface_weights()
    return vector / np.linalg.norm(vector)


def test_loads_pack_and_describes_encoder(rec_only_backend):
    assert rec_only_backend.embedding_dim == EMBED_DIM
    assert "tiny_arcface.onnx" in rec_only_backend.encoder
    assert rec_only_backend.detector is None
    assert rec_only_backend.providers == ["CPUExecutionProvider"]


def test_embeds_real_face_unit_norm_512(rec_only_backend, load_real):
    image = load_real("obama")
    faces = rec_only_backend.analyze(image)
    assert len(faces) == 1
    face = faces[0]
    assert face.backend == "insightface"
    assert face.extra["detector"].startswith("dlib")  # the pack has no detector: dlib's landmarks align the face
    assert face.embedding.shape == (EMBED_DIM,)
    assert face.embedding.dtype == np.float32
    assert np.linalg.norm(face.embedding) == pytest.approx(1.0, abs=1e-5)
    assert face.aligned.shape == (112, 112, 3)
    # The vector is exactly the model applied to the aligned crop in RGB with insightface's normalisation.
    np.testing.assert_allclose(face.embedding, expected_embedding(face.aligned), atol=1e-4)


def test_deterministic_and_faces_differ(rec_only_backend, load_real):
    obama = load_real("obama")
    first = rec_only_backend.analyze(obama)[0]
    again = rec_only_backend.analyze(obama)[0]
    np.testing.assert_array_equal(first.embedding, again.embedding)
    other = rec_only_backend.analyze(load_real("biden"))[0]
    assert similarity(first, other) < 0.9999
    assert not np.allclose(first.embedding, other.embedding, atol=1e-3)


def _square_image(scale: int) -> np.ndarray:
    """640·scale black image with one white stride-32 cell at CELL (in detector-input coordinates)."""
    image = np.zeros((640 * scale, 640 * scale, 3), np.uint8)
    row, col = CELL
    image[row * 32 * scale : (row + 1) * 32 * scale, col * 32 * scale : (col + 1) * 32 * scale] = 255
    return image


@pytest.mark.parametrize("scale", [1, 2])
def test_pack_detector_finds_the_planted_face_at_the_right_place(full_backend, scale):
    faces = full_backend.detect(_square_image(scale))
    assert len(faces) == 1
    face = faces[0]
    assert face.extra["detector"] == "tiny_scrfd.onnx"
    # SCRFD anchors sit at the cell's top-left corner; everything scales back by the resize factor.
    anchor = np.array([CELL[1] * 32, CELL[0] * 32], np.float32)
    reach = BOX_DISTANCE * 32
    expected_box = np.array([anchor[0] - reach, anchor[1] - reach, anchor[0] + reach, anchor[1] + reach]) * scale
    np.testing.assert_allclose(face.box, expected_box, atol=1.5 * scale)
    np.testing.assert_allclose(face.landmarks5, (anchor + KPS_OFFSETS * 32) * scale, atol=1.0 * scale)
    (embedded,) = full_backend.embed(_square_image(scale), faces)
    assert np.linalg.norm(embedded.embedding) == pytest.approx(1.0, abs=1e-5)


def test_pack_detector_finds_nothing_in_black(full_backend):
    assert full_backend.detect(np.zeros((480, 640, 3), np.uint8)) == []


def test_model_dir_from_env(packs, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(packs["rec_only"]))
    backend = InsightFaceBackend(device="cpu")
    assert backend.model_dir == packs["rec_only"]


def test_registry_builds_it(packs):
    backend = get_backend("insightface", model_dir=str(packs["rec_only"]), device="cpu")
    assert isinstance(backend, InsightFaceBackend)
    assert backend is get_backend("insightface", model_dir=str(packs["rec_only"]), device="cpu")


def test_unset_dir_names_env_var(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    with pytest.raises(ModelUnavailableError) as info:
        InsightFaceBackend()
    assert ENV_VAR in info.value.message
    assert "w600k_r50.onnx" in info.value.fix and "det_10g.onnx" in info.value.fix


@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_missing_or_empty_dir(tmp_path, kind):
    folder = tmp_path / "pack"
    if kind == "empty":
        folder.mkdir()
    with pytest.raises(ModelUnavailableError) as info:
        InsightFaceBackend(model_dir=folder)
    assert ENV_VAR in info.value.message
    assert str(folder) in info.value.message
    assert info.value.code == "model_unavailable"


def test_pack_without_arcface(tmp_path):
    build_tiny_scrfd(tmp_path / "det_only.onnx")
    with pytest.raises(ModelUnavailableError, match="ArcFace recognition model"):
        InsightFaceBackend(model_dir=tmp_path)


def test_damaged_onnx_is_a_clear_error(tmp_path):
    (tmp_path / "w600k_r50.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelUnavailableError, match=r"w600k_r50\.onnx"):
        InsightFaceBackend(model_dir=tmp_path)


def test_face_without_landmarks_is_refused(rec_only_backend, load_real):
    from headshot_lab.faces import Face

    with pytest.raises(HeadshotLabError) as info:
        rec_only_backend.embed(load_real("obama"), [Face(box=(10, 10, 200, 200))])
    assert info.value.code == "no_landmarks"
