"""Skin metrics of an output against its source: tone shift and over-smoothing ("plastic skin").

**Tone shift** (per output, against the source photo it was made from; tones from
:func:`headshot_lab.skin.measure_skin`):

* ``ΔITA_corrected = ITA′_out − ITA′_src`` on the **light-corrected** ITA° (``SkinTone.ita_light_corrected``:
  the skin read against each photo's own light, so an exposure or white-balance change cancels) — signed,
  **positive = lighter**: *this is the one to headline* (issue 13: "skin tone that reads skin, not light");
  ``None`` when either side lacks it (a tone without enough non-skin area, or an old record);
* ``ΔITA = ITA_out − ITA_src`` on the as-photographed ITA° — kept beside it: ±20 % exposure alone moves it by
  5–14°, so it measures light and skin together. Both are angle differences wrapped into (−180°, 180°]
  (:func:`headshot_lab.skin.angle_difference`), so faces with ``b* ≤ 0`` (ITA beyond ±90°) shift too;
* ``ΔE00 = CIEDE2000(Lab_src, Lab_out)`` of the median skin colours (scikit-image), always ≥ 0;
* ``Monk shift = Monk_out − Monk_src`` in swatch steps — signed, **positive = darker** (swatch 1 is the
  lightest), i.e. the opposite sign convention of ΔITA, as in :func:`headshot_lab.skin.monk_shift`.

Each is grouped by the *source's* ITA group (and any dataset label) with
:func:`headshot_lab.audit.fairness.grouped_metric`.

**Texture energy** on the skin mask (over-smoothing; :func:`headshot_lab.skin.texture_energy`). The face
is first brought to a common scale (the audit: the face mesh's horizontal span resized to 85 pixels,
:data:`headshot_lab.skin.TEXTURE_MESH_SIZE` — not the detector box, whose size jumps between image-pyramid
levels; called with a box only, the box is resized to ``size`` = 96 pixels wide), then on the luma
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
from headshot_lab.audit.margins import estimation
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

    The audit headlines :attr:`headline_delta_ita` (:func:`headshot_lab.skin.reported_delta_ita`): within one
    scene the output's skin seen under the source's light (exposure and white balance cancel; a skin change
    reads at full size), across scenes :attr:`delta_ita` as photographed ("skin and light together").
    :attr:`delta_ita_corrected` compares each photo's own light-corrected ITA° (an absolute scale that a
    coloured backdrop can throw far off: 4 of 6 real test photos read implausible), so it is shown, not judged.

    Attributes:
        delta_ita: ``ITA_out − ITA_src`` as photographed (positive = lighter), wrapped into (−180°, 180°].
        delta_e2000: CIEDE2000 between the median skin colours (≥ 0).
        monk_shift: ``Monk_out − Monk_src`` (positive = darker).
        source_ita: the source's ITA°.
        source_group: the source's ITA group (1 … 6), the group every skin metric is reported by.
        delta_ita_corrected: ``ITA′_out − ITA′_src`` on the light-corrected ITA°, or ``None``.
        source_ita_corrected: the source's light-corrected ITA°, or ``None``.
        light_corrected_plausible: both corrected skin colours are red-yellow
            (:attr:`headshot_lab.skin.SkinTone.light_corrected_plausible`); ``False`` says the grey-world
            estimate misread a coloured scene on one side, so across *different* scenes the corrected
            shift carries that error (within one scene it cancels). ``None`` when unknown.
        same_scene: whether the two photos show one scene (:func:`headshot_lab.analysis.same_scene`).
        delta_ita_reported: the headline (:func:`headshot_lab.skin.reported_delta_ita`).
    """

    delta_ita: float
    delta_e2000: float
    monk_shift: int
    source_ita: float
    source_group: int
    delta_ita_corrected: float | None = None
    source_ita_corrected: float | None = None
    light_corrected_plausible: bool | None = None
    same_scene: bool | None = None
    delta_ita_reported: float | None = None

    @property
    def headline_delta_ita(self) -> float:
        """The ΔITA to report first: :func:`headshot_lab.skin.reported_delta_ita` (light-matched within one
        scene, as photographed across scenes), computed by :func:`skin_shift`; :attr:`delta_ita` when absent."""
        return self.delta_ita if self.delta_ita_reported is None else self.delta_ita_reported

    def to_dict(self) -> dict[str, Any]:
        def rounded(value: float | None, digits: int) -> float | None:
            return None if value is None else round(value, digits)

        return {
            "delta_ita": round(self.delta_ita, 4),
            "delta_e2000": round(self.delta_e2000, 4),
            "monk_shift": self.monk_shift,
            "source_ita": round(self.source_ita, 3),
            "source_group": self.source_group,
            "delta_ita_corrected": rounded(self.delta_ita_corrected, 4),
            "source_ita_corrected": rounded(self.source_ita_corrected, 3),
            "light_corrected_plausible": self.light_corrected_plausible,
            "same_scene": self.same_scene,
            "delta_ita_reported": rounded(self.delta_ita_reported, 4),
        }


def _corrected(tone: Any) -> float | None:
    value = getattr(tone, "ita_light_corrected", None)
    return None if value is None or not np.isfinite(value) else float(value)


def skin_shift(source: ToneLike, output: ToneLike, *, same_scene: bool | None = None) -> SkinShift:
    """ΔITA as photographed and light-corrected (positive = lighter), ΔE2000 and Monk-step shift.

    ``ita_light_corrected`` is read from either tone when it has one (``SkinTone`` does; a tone-like
    object without it gives ``delta_ita_corrected=None``). Angles are differenced on the circle
    (:func:`headshot_lab.skin.angle_difference`).
    """
    from skimage.color import deltaE_ciede2000

    from headshot_lab.skin import angle_difference, reported_delta_ita

    delta_e = float(deltaE_ciede2000(np.asarray(source.lab, float), np.asarray(output.lab, float), channel_axis=-1))
    src_c, out_c = _corrected(source), _corrected(output)
    plausible = [getattr(t, "light_corrected_plausible", None) for t in (source, output)]
    return SkinShift(
        delta_ita=float(angle_difference(output.ita, source.ita)),
        delta_e2000=delta_e,
        monk_shift=int(output.monk - source.monk),
        source_ita=float(source.ita),
        source_group=int(source.ita_group),
        delta_ita_corrected=None if src_c is None or out_c is None else float(angle_difference(out_c, src_c)),
        source_ita_corrected=src_c,
        light_corrected_plausible=None if None in plausible else all(plausible),
        same_scene=same_scene,
        delta_ita_reported=reported_delta_ita(source, output, same_scene=same_scene),
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
    """Group ΔITA (light-corrected and as photographed), ΔE2000 and Monk shift by the source's ITA group.

    Metrics: ``skin_delta_ita_corrected`` (the headline; only shifts that have it),
    ``skin_delta_ita`` (as photographed), ``skin_delta_e2000``, ``skin_monk_shift``. Grouped by the
    source's as-photographed ITA group, or by ``labels`` when given.

    ``None`` shifts (skin not measurable) are counted under ``"unknown"`` and left out of the values.
    ``options`` go to :func:`~headshot_lab.audit.fairness.grouped_metric` (``seed``, ``confidence`` …).
    """
    groups = (
        list(labels) if labels is not None else [group_label(s.source_group) if s is not None else None for s in shifts]
    )
    columns = {
        "skin_delta_ita_corrected": [s.delta_ita_corrected if s else None for s in shifts],
        "skin_delta_ita": [s.delta_ita if s else None for s in shifts],
        "skin_delta_e2000": [s.delta_e2000 if s else None for s in shifts],
        "skin_monk_shift": [float(s.monk_shift) if s else None for s in shifts],
    }
    judged_as = {"skin_delta_ita_corrected": "skin_delta_ita"}  # the same quantity, judged the same way
    return {
        name: grouped_metric(
            values, groups, name=name, clusters=clusters, **{**estimation(judged_as.get(name, name)), **options}
        )
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
    """Group the texture ratios (geometric mean and CI on the log scale; over-smoothing when the CI lies below 0.85)."""
    return grouped_metric(
        ratios, groups, name="texture_ratio", clusters=clusters, **{**estimation("texture_ratio"), **options}
    )


def shifts_from_records(records: Sequence[Mapping[str, Any]]) -> list[SkinShift | None]:
    """Rebuild :class:`SkinShift` objects from their :meth:`SkinShift.to_dict` forms (``None`` kept)."""
    return [SkinShift(**record) if record else None for record in records]  # type: ignore[arg-type]
