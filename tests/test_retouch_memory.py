"""Retouch of large photos: work at analysis size, apply at full size (issue 19: 40 MP ≤ 1.5 GB peak).

Memory itself is measured in benchmarks/retouch_memory.py (no timed or RSS assertions here); these tests
prove the large-photo path gives the same picture as the full-size path, at full resolution.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from headshot_lab import retouch as retouching


def test_apply_at_full_size_keeps_every_full_resolution_pixel_where_nothing_changed():
    """α = 1 and Δ = 0 → the output is the full-size photo, bit for bit (no upsampled blur)."""
    import cv2

    rng = np.random.default_rng(0)
    full = rng.integers(0, 256, (601, 803, 3), dtype=np.uint8)
    small = cv2.resize(full, (200, 150), interpolation=cv2.INTER_AREA)
    box = (slice(0, 150), slice(0, 200))
    alpha = np.ones((150, 200), np.float32)
    backdrop = retouching.Backdrop((10, 20, 30))
    out, matte = retouching._apply_at_full_size(full, small, small.astype(np.float32), alpha, box, backdrop)
    assert np.array_equal(out, full) and matte.shape == full.shape[:2] and (matte == 1).all()
    # α = 0 → the backdrop; a uniform Δ of +10 → the photo + 10 (clipped), at full resolution
    out, _ = retouching._apply_at_full_size(full, small, small + 0.0, alpha * 0, box, backdrop)
    assert (out == backdrop.render(601, 803)).all()
    out, _ = retouching._apply_at_full_size(full, small, small + 10.0, alpha, box, backdrop)
    assert np.array_equal(out, np.clip(full.astype(np.int16) + 10, 0, 255).astype(np.uint8))


def test_matte_upsampling_matches_cv2_resize():
    import cv2

    rng = np.random.default_rng(1)
    small_alpha = rng.random((40, 60)).astype(np.float32)
    small = np.zeros((40, 60, 3), np.uint8)
    full = np.zeros((400, 600, 3), np.uint8)
    _, matte = retouching._apply_at_full_size(
        full, small, small.astype(np.float32), small_alpha, (slice(0, 40), slice(0, 60)), retouching.Backdrop((0, 0, 0))
    )
    expected = cv2.resize(small_alpha, (600, 400), interpolation=cv2.INTER_LINEAR)
    error = np.abs(matte - expected)
    assert error.max() < 0.04 and error.mean() < 0.005  # remap interpolates at 1/32-pixel steps


@pytest.fixture(scope="module")
def face_photo(real_photos) -> np.ndarray:
    with Image.open(real_photos["obama"]) as opened:
        face = opened.convert("RGB")
    face.thumbnail((640, 640))
    return np.asarray(face)


def test_large_photo_path_gives_the_full_size_picture(face_photo, monkeypatch):
    """The analysis-size path (forced by a low ANALYSIS_PIXELS) against the full-size path on the same photo."""
    direct = retouching.retouch(face_photo, "corporate")
    monkeypatch.setattr(retouching, "ANALYSIS_PIXELS", face_photo.shape[0] * face_photo.shape[1] // 6)
    analysed = retouching.retouch(face_photo, "corporate")
    assert "analysis_size" in analysed.steps and "analysis_size" not in direct.steps
    assert analysed.image.shape == direct.image.shape == face_photo.shape
    assert analysed.mask.shape == face_photo.shape[:2]
    person = (direct.mask > 0.5) & (analysed.mask > 0.5)
    union = (direct.mask > 0.5) | (analysed.mask > 0.5)
    assert person.sum() / union.sum() > 0.95  # the same person matte
    difference = np.abs(analysed.image.astype(np.int16) - direct.image.astype(np.int16))
    assert difference.mean() < 4.0
    inner = person & (np.minimum(direct.mask, analysed.mask) > 0.99)
    assert np.median(difference[inner]) <= 2  # inside the person: the same colours (light, white balance)
    assert analysed.delta_ita is not None and abs(analysed.delta_ita) < 1.0
