"""dlib's face-recognition ResNet run by onnxruntime: the same 128-D descriptor, about 5× cheaper.

The PyPI ``dlib-bin`` wheel is built without BLAS, so ``face_recognition_model_v1`` spends ≈ 0.1 CPU-s
per face in dlib's own convolution loops — half of an audit's time. This module reads the *same*
weights file (``dlib_face_recognition_resnet_model_v1.dat`` from ``face_recognition_models``) and runs
the *same* network as an ONNX graph built in memory, on onnxruntime's CPU kernels (≈ 20 ms a face, one
thread). Nothing is downloaded or converted ahead of time; the file's layers are checked against the
architecture below while they are read.

**The network** (dlib's ``dnn_face_recognition_ex.cpp``, ``anet_type``), input a 150×150 RGB chip
``x = (RGB − μ) / 256`` with ``μ`` = the file's ``avg_red/green/blue`` (122.782, 117.001, 104.298):

* ``conv 7×7/2, 32`` → affine → ReLU → ``max-pool 3×3/2``;
* residual stages of blocks ``b(x) = A(conv₃ₓ₃(ReLU(A(conv₃ₓ₃/s(x)))))`` (``A`` the per-channel affine
  ``γ·v + β`` that dlib builds from the trained batch norm): 3 × 32, then 4 × 64, 3 × 128, 3 × 256 and
  1 × 256, the first block of each stage after the first downsampling (``s = 2``, padding 0);
* a plain block is ``ReLU(x + b(x))``; a downsampling block ``ReLU(avgpool₂ₓ₂/2(x) ⊕ b(x))`` where ``⊕`` is
  dlib's ``add_prev``: the output has the larger of both shapes, each input added at the top-left
  corner and zero elsewhere (channels 32 → 64 … and, at 8 px, 4×4 pooled vs 3×3 convolved);
* global average pool → ``fc 256 → 128`` without bias. The output is dlib's raw descriptor ``d``
  (callers L2-normalise it, as :meth:`headshot_lab.faces.dlib_backend.DlibBackend.embed` does).

Each affine is folded into the convolution before it (``W′ = γ W``, ``b′ = γ b + β``), so the graph
computes the same function with a different order of floating-point roundings: measured on the real
test photos, ``max |d_onnx − d_dlib| < 1e-5`` and cosine ``> 1 − 1e-9`` (``tests/test_faces.py``).

**File format** (dlib ``serialize``): integers are packed (a control byte ``size | 0x80·negative``, then
``size`` little-endian bytes), strings a packed length and the bytes, doubles a packed mantissa and
exponent (``m · 2^e``), tensors a version (2), four packed dimensions and raw little-endian float32.
Each layer's record starts with its name (``con_4``, ``affine_``, ``max_pool_2``, ``avg_pool_2``,
``fc_2``, ``input_rgb_image_sized``), innermost (input) layer first.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from headshot_lab.errors import ModelUnavailableError

logger = logging.getLogger(__name__)

#: The chip side the network was trained on (``input_rgb_image_sized<150>``).
CHIP_SIZE = 150
#: Filters of each residual stage and its blocks (``alevel4`` … ``alevel0``); all but the first start downsampled.
STAGES = ((32, 3), (64, 4), (128, 3), (256, 3), (256, 1))

_NAMES = (b"con_4", b"affine_", b"max_pool_2", b"avg_pool_2", b"fc_2", b"input_rgb_image_sized", b"loss_metric_2")
_TOKEN = re.compile(rb"\x01([\x03-\x20])([a-z_]+[0-9]*)")


class _Reader:
    """Sequential reader of dlib's serialisation format (see the module docstring)."""

    def __init__(self, data: bytes, position: int) -> None:
        self.data, self.position = data, position

    def integer(self) -> int:
        control = self.data[self.position]
        size = control & 0x0F
        value = int.from_bytes(self.data[self.position + 1 : self.position + 1 + size], "little")
        self.position += 1 + size
        return -value if control & 0x80 else value

    def string(self) -> str:
        length = self.integer()
        text = self.data[self.position : self.position + length].decode("ascii")
        self.position += length
        return text

    def real(self) -> float:
        mantissa = self.integer()
        return float(mantissa * 2.0 ** self.integer())

    def tensor(self) -> np.ndarray:
        if self.integer() != 2:
            raise ValueError("unexpected tensor version")
        shape = [self.integer() for _ in range(4)]
        count = int(np.prod(shape))
        if self.position + 4 * count > len(self.data):
            raise ValueError("the weights file ends inside a tensor (cut short or damaged)")
        values = np.frombuffer(self.data, dtype="<f4", count=count, offset=self.position).astype(np.float32)
        self.position += 4 * count
        return values

    def alias(self) -> tuple[int, ...]:
        if self.integer() != 1:
            raise ValueError("unexpected alias-tensor version")
        return tuple(self.integer() for _ in range(4))


@dataclass
class _Conv:
    weight: np.ndarray  # (out, in, kh, kw)
    bias: np.ndarray  # (out,)
    stride: int
    padding: int


@dataclass
class ResNetWeights:
    """The parsed network: input means, the 29 convolutions (affines folded in) and the final projection."""

    means: np.ndarray
    convs: list[_Conv] = field(default_factory=list)
    pools: list[tuple[int, ...]] = field(default_factory=list)
    fc: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))  # (in, out)


def read_weights(path: str | Path) -> ResNetWeights:
    """Parse ``dlib_face_recognition_resnet_model_v1.dat`` and fold each affine into its convolution."""
    data = Path(path).read_bytes()
    tokens = [
        (match.start(), match.group(2))
        for match in _TOKEN.finditer(data)
        if match.group(2) in _NAMES and match.group(1)[0] == len(match.group(2))
    ]
    weights = ResNetWeights(means=np.zeros(3, np.float32))
    pending: tuple[np.ndarray, np.ndarray, int, int] | None = None
    for offset, name in tokens:
        reader = _Reader(data, offset)
        reader.string()
        if name == b"input_rgb_image_sized":
            weights.means = np.array([reader.real() for _ in range(3)], dtype=np.float32)
            if (reader.integer(), reader.integer()) != (CHIP_SIZE, CHIP_SIZE):
                raise ValueError("the network is not sized for 150×150 chips")
        elif name == b"con_4":
            params = reader.tensor()
            filters, rows, cols = reader.integer(), reader.integer(), reader.integer()
            stride_y, stride_x, pad_y, pad_x = (reader.integer() for _ in range(4))
            shape, _ = reader.alias(), reader.alias()
            if (stride_y, pad_y) != (stride_x, pad_x) or shape[0] != filters or shape[2:] != (rows, cols):
                raise ValueError("unexpected convolution layout")
            size = int(np.prod(shape))
            pending = (params[:size].reshape(shape), params[size : size + filters], stride_y, pad_y)
        elif name == b"affine_":
            params = reader.tensor()
            gamma_shape, _ = reader.alias(), reader.alias()
            if pending is None or reader.integer() != 0:  # 0: convolution mode (one γ, β per channel)
                raise ValueError("an affine layer that does not follow a convolution")
            channels = gamma_shape[1]
            gamma, beta = params[:channels], params[channels : 2 * channels]
            weight, bias, stride, padding = pending
            weights.convs.append(
                _Conv(
                    weight=(weight * gamma[:, None, None, None]).astype(np.float32),
                    bias=(bias * gamma + beta).astype(np.float32),
                    stride=stride,
                    padding=padding,
                )
            )
            pending = None
        elif name in (b"max_pool_2", b"avg_pool_2"):
            weights.pools.append(tuple(reader.integer() for _ in range(6)))
        elif name == b"fc_2":
            outputs, inputs = reader.integer(), reader.integer()
            params = reader.tensor()
            weights.fc = params[: inputs * outputs].reshape(inputs, outputs)
    expected_convs = 1 + 2 * sum(blocks for _, blocks in STAGES)
    if len(weights.convs) != expected_convs or len(weights.pools) != 6 or weights.fc.shape != (256, 128):
        raise ValueError(
            f"unexpected network: {len(weights.convs)} convolutions, {len(weights.pools)} pools, fc {weights.fc.shape}"
        )
    return weights


def _out_side(side: int, kernel: int, stride: int, padding: int) -> int:
    return 1 + (side + 2 * padding - kernel) // stride


def build_onnx(weights: ResNetWeights, *, check: bool = False) -> bytes:
    """The network as a serialised ONNX model: input ``x`` ``(N, 3, 150, 150)`` float32, output ``d`` ``(N, 128)``.

    ``check`` runs :func:`onnx.checker.check_model` (≈ 0.7 s for the 22 MB graph: the tests do it).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes: list[Any] = []
    inits: list[Any] = []
    counter = iter(range(10_000))

    def name(prefix: str) -> str:
        return f"{prefix}{next(counter)}"

    def const(array: np.ndarray, prefix: str) -> str:
        key = name(prefix)
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array), key))
        return key

    def conv(x: str, layer: _Conv) -> str:
        out = name("conv")
        kernel = layer.weight.shape[2]
        nodes.append(
            helper.make_node(
                "Conv",
                [x, const(layer.weight, "w"), const(layer.bias, "b")],
                [out],
                kernel_shape=[kernel, kernel],
                strides=[layer.stride, layer.stride],
                pads=[layer.padding] * 4,
            )
        )
        return out

    def unary(op: str, x: str, **attrs: Any) -> str:
        out = name(op.lower())
        nodes.append(helper.make_node(op, [x], [out], **attrs))
        return out

    def pad_to(x: str, shape: tuple[int, int, int], target: tuple[int, int, int]) -> str:
        if shape == target:
            return x
        pads = [0, 0, 0, 0, 0, target[0] - shape[0], target[1] - shape[1], target[2] - shape[2]]
        out = name("pad")
        nodes.append(helper.make_node("Pad", [x, const(np.array(pads, dtype=np.int64), "pads")], [out]))
        return out

    convs = iter(weights.convs)
    first = next(convs)
    side = _out_side(CHIP_SIZE, first.weight.shape[2], first.stride, first.padding)
    x = unary("Relu", conv("x", first))
    kernel, _, stride, _, padding, _ = weights.pools[0]
    x = unary("MaxPool", x, kernel_shape=[kernel, kernel], strides=[stride, stride], pads=[padding] * 4)
    side = _out_side(side, kernel, stride, padding)
    shape = (int(first.weight.shape[0]), side, side)
    pools = iter(weights.pools[1:])
    for stage, (filters, blocks) in enumerate(STAGES):
        for block in range(blocks):
            down = stage > 0 and block == 0
            a, b = next(convs), next(convs)
            if int(a.weight.shape[0]) != filters or (a.stride == 2) != down:
                raise ValueError("the convolutions do not follow the expected residual stages")
            inner = _out_side(shape[1], a.weight.shape[2], a.stride, a.padding)
            branch = conv(unary("Relu", conv(x, a)), b)
            branch_shape = (filters, inner, inner)
            if down:
                kernel, _, stride, _, padding, _ = next(pools)
                shortcut = unary(
                    "AveragePool", x, kernel_shape=[kernel, kernel], strides=[stride, stride], pads=[padding] * 4
                )
                pooled = _out_side(shape[1], kernel, stride, padding)
                shortcut_shape = (shape[0], pooled, pooled)
            else:
                shortcut, shortcut_shape = x, shape
            target = tuple(max(p, q) for p, q in zip(branch_shape, shortcut_shape, strict=True))
            out = name("add")
            nodes.append(
                helper.make_node(
                    "Add",
                    [pad_to(shortcut, shortcut_shape, target), pad_to(branch, branch_shape, target)],  # type: ignore[arg-type]
                    [out],
                )
            )
            x, shape = unary("Relu", out), target  # type: ignore[assignment]
    pooled_all = unary("GlobalAveragePool", x)
    flat = unary("Flatten", pooled_all, axis=1)
    nodes.append(helper.make_node("MatMul", [flat, const(weights.fc, "fc")], ["d"]))
    graph = helper.make_graph(
        nodes,
        "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, CHIP_SIZE, CHIP_SIZE])],
        [helper.make_tensor_value_info("d", TensorProto.FLOAT, ["N", 128])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if check:
        onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


class OnnxResNet:
    """dlib's ResNet descriptor on onnxruntime (one CPU thread by default: audits run processes side by side)."""

    def __init__(self, path: str | Path, threads: int = 1) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelUnavailableError(
                "onnxruntime is not installed.", fix="pip install onnxruntime", code="onnx_unavailable"
            ) from None
        weights = read_weights(path)  # not kept: the session holds its own copy (22 MB)
        self.means = weights.means
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            build_onnx(weights), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._lock = threading.Lock()

    def descriptors(self, chips: np.ndarray) -> np.ndarray:
        """``(N, 128)`` raw descriptors of ``(N, 150, 150, 3)`` uint8 RGB chips (``x = (chip − μ) / 256``)."""
        batch = np.asarray(chips)
        if batch.ndim == 3:
            batch = batch[None]
        if batch.ndim != 4 or batch.shape[1:] != (CHIP_SIZE, CHIP_SIZE, 3):
            raise ValueError(f"chips must be (N, {CHIP_SIZE}, {CHIP_SIZE}, 3), got {batch.shape}")
        if batch.shape[0] == 0:
            return np.zeros((0, 128), np.float32)
        x = ((batch.astype(np.float32) - self.means) / np.float32(256.0)).transpose(0, 3, 1, 2)
        with self._lock:
            (out,) = self.session.run(["d"], {"x": np.ascontiguousarray(x)})
        return np.asarray(out, dtype=np.float32)


_LOAD_LOCK = threading.Lock()
#: One network per weights file and process; ``None`` where it could not be built (then dlib's own runs).
_LOADED: dict[str, OnnxResNet | None] = {}


def onnx_resnet(path: str | Path) -> OnnxResNet | None:
    """The process-wide :class:`OnnxResNet` for ``path``, or ``None`` when onnx/onnxruntime cannot run it."""
    key = str(path)
    with _LOAD_LOCK:
        if key not in _LOADED:
            try:
                _LOADED[key] = OnnxResNet(key)
            except (ImportError, ModelUnavailableError, ValueError, RuntimeError, OSError) as exc:
                logger.warning("dlib's ResNet runs in dlib (slower): the ONNX copy could not be built: %s", exc)
                _LOADED[key] = None
        return _LOADED[key]
