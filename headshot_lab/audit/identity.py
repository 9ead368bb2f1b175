"""Identity metrics: does the output still look like the person, without copying a selfie?

All similarities are cosines of L2-normalised face embeddings from an *audit encoder* that is not
the one the generator conditions on (the generator's IP-Adapter-FaceID uses ArcFace; the audit uses
dlib's ResNet by default). Every result carries the encoder's name.

* **Reference centroid** of a person's selfies ``e_1 … e_k``: ``c = Σ e_i / ‖Σ e_i‖₂``.
* **Identity cosine** of an output ``o``: ``cos(o, c) = ô · ĉ``.
* **Identity change** against the source the output was made from: ``Δ = cos(o, c) − cos(s, c)``
  (the null generator has ``Δ = 0`` exactly).
* **Copy-paste ratio** (memorisation check): ``r = max_j cos(o, t_j) / max_k cos(o, h_k)`` with
  ``t_j`` the selfies the generator saw and ``h_k`` held-out selfies of the same person. A good
  generator makes a *new* photo of the person (``r ≈ 1``); ``r ≫ 1`` means the output is closer to
  one training selfie than the person's other photos are, i.e. a near copy.
* **Pose diversity** of a set of head poses ``p_i = (yaw, pitch, roll)`` in degrees:
  ``D = mean_{i<j} ‖p_i − p_j‖₂`` plus the per-axis standard deviations.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

#: dlib's same-person decision threshold, 0.6 in L2 distance of unit vectors = cosine ``1 − 0.6²/2``.
DLIB_SAME_PERSON_COSINE = 1.0 - 0.6**2 / 2.0


def _unit_rows(vectors: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    array = np.atleast_2d(np.asarray(vectors, dtype=np.float64))
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(f"expected a non-empty (N, D) array of embeddings, got shape {array.shape}")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    if np.any(norms < 1e-12) or not np.all(np.isfinite(array)):
        raise ValueError("embeddings must be finite and non-zero")
    return np.asarray(array / norms, dtype=np.float64)


def reference_centroid(embeddings: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    """``c = Σ e_i / ‖Σ e_i‖₂`` over the (unit-normalised) embeddings of one person's selfies."""
    total = _unit_rows(embeddings).sum(axis=0)
    norm = float(np.linalg.norm(total))
    if norm < 1e-12:
        raise ValueError("the reference embeddings cancel out (their sum is zero)")
    return np.asarray(total / norm, dtype=np.float64)


def cosine_to_reference(
    outputs: np.ndarray | Sequence[np.ndarray], reference: np.ndarray | Sequence[np.ndarray]
) -> np.ndarray:
    """``cos(o_i, c)`` for each output embedding ``o_i``.

    ``reference`` is either one centroid ``(D,)`` or the person's selfie embeddings ``(k, D)``, whose
    :func:`reference_centroid` is used.
    """
    ref = np.asarray(reference, dtype=np.float64)
    centroid = reference_centroid(ref) if ref.ndim == 2 else _unit_rows(ref)[0]
    return np.asarray(_unit_rows(outputs) @ centroid, dtype=np.float64)


@dataclass(frozen=True)
class CopyPaste:
    """The copy-paste (memorisation) check of one output.

    Attributes:
        train_similarity: ``max_j cos(o, t_j)`` over the training selfies.
        heldout_similarity: ``max_k cos(o, h_k)`` over held-out selfies of the same person.
        ratio: ``train_similarity / heldout_similarity`` (``> 1``: closer to a training selfie).
        closest_train: index of the training selfie it is closest to.
    """

    train_similarity: float
    heldout_similarity: float
    ratio: float
    closest_train: int


def copy_paste_ratio(
    output: np.ndarray, train: np.ndarray | Sequence[np.ndarray], heldout: np.ndarray | Sequence[np.ndarray]
) -> CopyPaste:
    """``r = max_j cos(o, t_j) / max_k cos(o, h_k)`` (see the module docstring)."""
    o = _unit_rows(output)[0]
    train_sims = _unit_rows(train) @ o
    heldout_sims = _unit_rows(heldout) @ o
    best_train = float(train_sims.max())
    best_heldout = float(heldout_sims.max())
    if best_heldout <= 0:
        raise ValueError("the output is not similar to any held-out selfie (cosine ≤ 0); the ratio is undefined")
    return CopyPaste(
        train_similarity=best_train,
        heldout_similarity=best_heldout,
        ratio=best_train / best_heldout,
        closest_train=int(np.argmax(train_sims)),
    )


@dataclass(frozen=True)
class PoseDiversity:
    """How varied a set of head poses is.

    Attributes:
        mean_pairwise: ``mean_{i<j} ‖p_i − p_j‖₂`` in degrees (0 for a single pose).
        std: per-axis standard deviation ``(yaw, pitch, roll)`` in degrees (population, ``ddof=0``).
        n: number of poses.
    """

    mean_pairwise: float
    std: tuple[float, float, float]
    n: int

    def to_dict(self) -> dict[str, object]:
        return {"mean_pairwise": round(self.mean_pairwise, 3), "std": [round(v, 3) for v in self.std], "n": self.n}


def pose_diversity(poses: np.ndarray | Sequence[Sequence[float]]) -> PoseDiversity:
    """Pose diversity of ``(N, 3)`` ``(yaw, pitch, roll)`` degrees (objects with those attributes work too)."""
    rows = [(p.yaw, p.pitch, p.roll) if hasattr(p, "yaw") else tuple(p) for p in poses]  # type: ignore[union-attr]
    array = np.asarray(rows, dtype=np.float64).reshape(-1, 3)
    if len(array) == 0:
        raise ValueError("pose_diversity needs at least one pose")
    pairs = [float(np.linalg.norm(array[i] - array[j])) for i, j in combinations(range(len(array)), 2)]
    std = array.std(axis=0)
    return PoseDiversity(
        mean_pairwise=float(np.mean(pairs)) if pairs else 0.0,
        std=(float(std[0]), float(std[1]), float(std[2])),
        n=len(array),
    )


@dataclass(frozen=True)
class IdentityScores:
    """Identity cosines of a batch of outputs against one person's reference, with the encoder named."""

    encoder: str
    cosines: np.ndarray
    centroid: np.ndarray

    @property
    def mean(self) -> float:
        return float(np.mean(self.cosines))


def identity_scores(
    outputs: np.ndarray | Sequence[np.ndarray], selfies: np.ndarray | Sequence[np.ndarray], *, encoder: str
) -> IdentityScores:
    """:func:`cosine_to_reference` of ``outputs`` against the centroid of ``selfies``, naming ``encoder``."""
    centroid = reference_centroid(selfies)
    return IdentityScores(encoder=encoder, cosines=cosine_to_reference(outputs, centroid), centroid=centroid)
