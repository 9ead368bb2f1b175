"""Identity metrics against known values (headshot_lab.audit.identity)."""

from __future__ import annotations

import numpy as np
import pytest

from headshot_lab.audit.identity import (
    DLIB_SAME_PERSON_COSINE,
    copy_paste_ratio,
    cosine_to_reference,
    identity_scores,
    pose_diversity,
    reference_centroid,
)


def test_centroid_of_two_orthogonal_vectors():
    centroid = reference_centroid([[1.0, 0.0], [0.0, 3.0]])  # rows are normalised first
    assert centroid == pytest.approx([1 / np.sqrt(2), 1 / np.sqrt(2)])


def test_cosine_to_reference_known_values():
    cos = cosine_to_reference([[1.0, 0.0], [0.0, 2.0], [-1.0, 0.0]], np.array([1.0, 0.0]))
    assert cos == pytest.approx([1.0, 0.0, -1.0])
    # a (k, D) reference uses its centroid: 45° from each axis
    cos = cosine_to_reference([[1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]])
    assert cos == pytest.approx([np.cos(np.pi / 4)])


def test_copy_paste_ratio_known_value():
    output = np.array([1.0, 0.0])
    train = [[1.0, 0.0]]  # identical: cosine 1
    heldout = [[0.8, 0.6], [0.0, 1.0]]  # best heldout cosine 0.8
    result = copy_paste_ratio(output, train, heldout)
    assert result.train_similarity == pytest.approx(1.0)
    assert result.heldout_similarity == pytest.approx(0.8)
    assert result.ratio == pytest.approx(1.25)
    assert result.closest_train == 0


def test_copy_paste_ratio_undefined_when_nothing_is_similar():
    with pytest.raises(ValueError):
        copy_paste_ratio([1.0, 0.0], [[1.0, 0.0]], [[-1.0, 0.0]])


def test_pose_diversity_known_value():
    result = pose_diversity([(0.0, 0.0, 0.0), (3.0, 4.0, 0.0)])
    assert result.mean_pairwise == pytest.approx(5.0)
    assert result.std == pytest.approx((1.5, 2.0, 0.0))
    assert pose_diversity([(1.0, 2.0, 3.0)]).mean_pairwise == 0.0


def test_pose_diversity_accepts_pose_objects():
    class Pose:
        def __init__(self, yaw, pitch, roll):
            self.yaw, self.pitch, self.roll = yaw, pitch, roll

    result = pose_diversity([Pose(0, 0, 0), Pose(0, 0, 10), Pose(0, 0, 20)])
    assert result.mean_pairwise == pytest.approx((10 + 20 + 10) / 3)


def test_identity_scores_names_the_encoder_and_rejects_bad_input():
    scores = identity_scores([[1.0, 0.0]], [[1.0, 0.0], [1.0, 0.1]], encoder="dlib ResNet-34")
    assert scores.encoder == "dlib ResNet-34"
    assert 0.99 < scores.mean <= 1.0
    with pytest.raises(ValueError):
        reference_centroid([[0.0, 0.0]])
    with pytest.raises(ValueError):
        reference_centroid([[1.0, 0.0], [-1.0, 0.0]])


def test_dlib_threshold_constant():
    # dlib's 0.6 Euclidean threshold on unit vectors: d² = 2 − 2cos.
    assert pytest.approx(0.82) == DLIB_SAME_PERSON_COSINE
