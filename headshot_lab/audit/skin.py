"""Skin metrics of an output against its source: tone shift and over-smoothing ("plastic skin").

**Tone shift** (per output, against the source photo it was made from; tones from
:func:`headshot_lab.skin.measure_skin`):

* ``ΔITA = ITA_out − ITA_src`` in degrees — signed, **positive = lighter** (the headline bias);
* ``ΔE00 = CIEDE2000(Lab_src, Lab_out)`` of the median skin colours (scikit-image), always ≥ 0;
* ``Monk shift = Monk_out − Monk_src`` in swatch steps — signed, **positive = darker** (swatch 1 is the
  lightest), i.e. the opposite sign convention of ΔITA, as in :func:`headshot_lab.skin.monk_shift`.

Each is grouped by the *source's* ITA group (and any dataset label) with
:func:`headshot_lab.audit.fairness.grouped_metric`.

**Texture energy** on the skin mask (over-smoothing; :func:`headshot_lab.skin.texture_energy`). The face
is first brought to a common scale (the face box resized to ``size`` = 96 pixels wide), then on the luma
``Y`` (BT.601, in [0, 1]):

    T = mean_{p∈M}((∇²(G_σ ∗ Y))(p)²) / var_{p∈M}(Y)

with ``G_σ`` a Gaussian of σ = 1.5 px (a band around 1/20 of the face width, which re-saves and small
resizes keep and smoothing removes), ``∇²`` the 4-neighbour Laplacian ``[[0, 1, 0], [1, −4, 1], [0, 1, 0]]`` and ``M`` the skin mask
eroded by ``erode`` pixels (so no eye, brow or lip edge, nor the image border, enters). The numerator is the pores-and-fine-
texture (high-frequency) energy; dividing by the skin's total luma variance makes ``T`` invariant to a
global change of contrast or exposure, so a tone shift does not read as smoothing while an
edge-preserving blur (which removes the fine detail but keeps the shading) lowers it sharply.
The **texture ratio** of an output is ``T_out / T_src``: 1 = unchanged, < 1 = smoother ("plastic").
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from headshot_lab.audit.fairness import GroupedMetric, grouped_metric
from headshot_lab.skin import MIN_TEXTURE_PIXELS, TEXTURE_ERODE, TEXTURE_SIZE, texture_energy  # noqa: F401 (moved there)


class ToneLike(Protocol):
    """What the skin metrics need from a tone (:class:`headshot_lab.skin.SkinTone` has it)."""

    ita: float
    lab: tuple[float, float, float]
    monk: int
    ita_group: int


@dataclass(frozen=True)
class SkinShift:
    """How an output's skin tone differs from its source's.

    Attributes:
        delta_ita: ``ITA_out − ITA_src`` (positive = lighter).
        delta_e2000: CIEDE2000 between the median skin colours (≥ 0).
        monk_shift: ``Monk_out − Monk_src`` (positive = darker).
        source_ita: the source's ITA°.
        source_group: the source's ITA group (1 … 6), the group every skin metric is reported by.
    """

    delta_ita: float
    delta_e2000: float
    monk_shift: int
    source_ita: float
    source_group: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "delta_ita": round(self.delta_ita, 4),
            "delta_e2000": round(self.delta_e2000, 4),
            "monk_shift": self.monk_shift,
            "source_ita": round(self.source_ita, 3),
            "source_group": self.source_group,
        }


def skin_shift(source: ToneLike, output: ToneLike) -> SkinShift:
    """ΔITA (positive = lighter), ΔE2000 and Monk-step shift of ``output`` against ``source``."""
    from skimage.color import deltaE_ciede2000

    delta_e = float(deltaE_ciede2000(np.asarray(source.lab, float), np.asarray(output.lab, float), channel_axis=-1))
    return SkinShift(
        delta_ita=float(output.ita - source.ita),
        delta_e2000=delta_e,
        monk_shift=int(output.monk - source.monk),
        source_ita=float(source.ita),
        source_group=int(source.ita_group),
    )


def group_label(ita_group: int | None) -> str:
    """``"ITA group I"`` … ``"ITA group VI"`` (or ``"unknown"``)."""
    if ita_group is None:
        return "unknown"
    roman = ("I", "II", "III", "IV", "V", "VI")
    return f"ITA group {roman[int(ita_group) - 1]}"


def skin_shift_metrics(
    shifts: Sequence[SkinShift | None],
    *,
    labels: Sequence[Hashable | None] | None = None,
    clusters: Sequence[Hashable] | None = None,
    **options: Any,
) -> dict[str, GroupedMetric]:
    """Group ΔITA, ΔE2000 and Monk shift by the source's ITA group (or by ``labels`` when given).

    ``None`` shifts (skin not measurable) are counted under ``"unknown"`` and left out of the values.
    ``options`` go to :func:`~headshot_lab.audit.fairness.grouped_metric` (``seed``, ``confidence`` …).
    """
    groups = (
        list(labels) if labels is not None else [group_label(s.source_group) if s is not None else None for s in shifts]
    )
    columns = {
        "skin_delta_ita": [s.delta_ita if s else None for s in shifts],
        "skin_delta_e2000": [s.delta_e2000 if s else None for s in shifts],
        "skin_monk_shift": [float(s.monk_shift) if s else None for s in shifts],
    }
    return {
        name: grouped_metric(values, groups, name=name, clusters=clusters, **options)
        for name, values in columns.items()
    }


# --------------------------------------------------------------------------------------------
# Texture (the measurement lives in headshot_lab.skin.texture_energy)
# --------------------------------------------------------------------------------------------


def texture_ratio(output_energy: float | None, reference_energy: float | None) -> float | None:
    """``T_out / T_ref`` (1 = unchanged texture, < 1 = smoother), ``None`` when either is missing."""
    if output_energy is None or reference_energy is None or reference_energy <= 0:
        return None
    return float(output_energy) / float(reference_energy)


def texture_metric(
    ratios: Sequence[float | None],
    groups: Sequence[Hashable | None],
    *,
    clusters: Sequence[Hashable] | None = None,
    **options: Any,
) -> GroupedMetric:
    """Group the texture ratios (mean and CI; over-smoothing when the CI lies below 1)."""
    return grouped_metric(ratios, groups, name="texture_ratio", clusters=clusters, **options)


def shifts_from_records(records: Sequence[Mapping[str, Any]]) -> list[SkinShift | None]:
    """Rebuild :class:`SkinShift` objects from their :meth:`SkinShift.to_dict` forms (``None`` kept)."""
    return [SkinShift(**record) if record else None for record in records]  # type: ignore[arg-type]
