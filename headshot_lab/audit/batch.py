"""The audit card of one person's batch: identity, skin shift in their ITA group, texture, detectability."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from headshot_lab.analysis import same_scene
from headshot_lab.audit.age import AGE_MODEL, age_ratio
from headshot_lab.audit.detectability import classifier_two_sample_test
from headshot_lab.audit.fairness import Estimate, grouped_metric, two_sample_difference
from headshot_lab.audit.identity import cosine_to_reference, reference_centroid
from headshot_lab.audit.margins import METRIC_SPECS, estimation, format_value
from headshot_lab.audit.measure import AuditAnalysis, analyse_image, encoder_name
from headshot_lab.audit.report import compute_flags, format_estimate, metric_verdicts, render_markdown
from headshot_lab.audit.results import AuditResults, AuditRun, write_results
from headshot_lab.audit.skin import group_label, skin_shift, texture_ratio
from headshot_lab.errors import HeadshotLabError
from headshot_lab.io import as_rgb_array, load_rgb
from headshot_lab.reporting import Progress, number, report_progress, table_cell
from headshot_lab.skin import ita_group, nearest_monk

#: Per-image metrics of the batch card (the same names as ``eval``'s ``results.json``).
AUDIT_METRICS = (
    "identity_cosine",
    "identity_delta",
    "skin_delta_ita",
    "skin_delta_e2000",
    "skin_monk_shift",
    "texture_ratio",
    "age_ratio",
)


@dataclass(frozen=True)
class PersonTone:
    """The person's skin tone over their photos: median ITA°, per-channel median Lab, its Monk swatch and ITA group."""

    ita: float
    lab: tuple[float, float, float]
    monk: int
    ita_group: int

    @classmethod
    def from_tones(cls, tones: Sequence[Any]) -> PersonTone:

        ita = float(np.median([t.ita for t in tones]))
        lab = tuple(float(v) for v in np.median([t.lab for t in tones], axis=0))
        return cls(ita=ita, lab=lab, monk=nearest_monk(lab)[0], ita_group=ita_group(ita))  # type: ignore[arg-type]


@dataclass
class BatchAudit:
    """The audit card of one batch of outputs of one person.

    Attributes:
        encoder: the identity encoder (dlib; not the one a generator conditions on).
        group: the person's ITA group label (``"ITA group III"``), or ``"unknown"``.
        person_ita: the person's median ITA° over their photos.
        images: one row per output (identity, ΔITA, texture ratio, what was paired with what).
        results: a ``results.json``-shaped payload with one run (``eval`` and the report read it).
        markdown: the card.
        plots: PNG files written next to the card.
    """

    encoder: str
    group: str
    person_ita: float | None
    images: list[dict[str, Any]]
    results: dict[str, Any]
    markdown: str
    plots: list[Path] = field(default_factory=list)

    @property
    def flags(self) -> list[str]:
        return list(self.results["runs"][0]["flags"])

    @property
    def verdicts(self) -> dict[str, Any]:
        """``{metric: verdict}`` in plain words (:func:`headshot_lab.audit.report.metric_verdicts`)."""

        return {name: v.to_dict() for name, v in metric_verdicts(self.results["runs"][0]["metrics"]).items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "encoder": self.encoder,
            "group": self.group,
            "person_ita": None if self.person_ita is None else round(self.person_ita, 3),
            "flags": self.flags,
            "verdicts": self.verdicts,
            "metrics": self.results["runs"][0]["metrics"],
            "images": self.images,
            "plots": [path.name for path in self.plots],
        }


def _load_any(source: Any) -> np.ndarray:

    if isinstance(source, str | Path | bytes):
        return load_rgb(source, min_side=0)
    return as_rgb_array(source)


def audit_batch(
    references: Mapping[str, Any],
    outputs: Mapping[str, Any],
    *,
    sources: Mapping[str, str] | None = None,
    out_dir: str | Path | None = None,
    seed: int = 0,
    confidence: float = 0.95,
    n_resamples: int = 1000,
    progress: Progress | None = None,
    new_scene: Collection[str] = (),
) -> BatchAudit:
    """Audit a batch of outputs of one person against that person's own photos.

    Every image is analysed with :func:`headshot_lab.audit.measure.analyse_image` (the audit suite's own analysis:
    dlib face + 128-D embedding, 478-point mesh, skin mask, tone, texture, C2ST features). With ``c`` the
    centroid of the reference embeddings and, for each output ``o``, its *source* ``s`` — the photo it
    was made from when ``sources`` names one (studio retouch), else the person as a whole:

    * identity ``cos(o, c)`` and its change ``cos(o, c) − cos(s, c)`` (for the person as a whole,
      ``cos(s, c)`` is the mean over the reference photos);
    * skin shift ``ΔITA = ITA_o − ITA_s`` (positive = lighter), ``ΔE00``, Monk steps — where the
      person's tone is the median ITA° and per-channel median Lab of their photos
      (:class:`PersonTone`), and every value is grouped by the person's ITA group;
    * texture ratio ``T_o / T_s`` (``T_s``: the median over the reference photos);
    * detectability: :func:`~headshot_lab.audit.detectability.classifier_two_sample_test` of the
      reference photos against the outputs (when there are at least two of each).

    Means carry bootstrap CIs over the batch's images (:func:`~headshot_lab.audit.fairness.grouped_metric`;
    an output and its source form one cluster); they describe *this batch*, not the generator in general.
    Flags follow :func:`headshot_lab.audit.report.compute_flags`.

    Args:
        references: ``{name: image}`` of the person's photos (paths, arrays, PIL images).
        outputs: ``{name: image}`` of the outputs to audit.
        sources: ``{output name: reference name}`` for outputs made from one reference photo.
        new_scene: outputs known to show another scene than their source (a studio retouch onto a new backdrop):
            their ΔITA is the one as photographed. The photo-hash test (:func:`~headshot_lab.analysis.same_scene`)
            can call a backdrop swap of a face-filling portrait the same scene, and light-matching on the swapped
            backdrop then reads the new backdrop's colour as a change of light (ΔITA ≈ 100° at ΔE00 0.1).
        out_dir: where to write ``report.md``, ``results.json`` and the plots (nothing written when ``None``).

    Raises:
        HeadshotLabError: ``no_reference`` (no face measurable in any reference), ``no_outputs``.
    """

    if not outputs:
        raise HeadshotLabError(
            "There are no outputs to audit.", fix="Pass at least one output image.", code="no_outputs"
        )
    sources = dict(sources or {})
    total = len(references) + len(outputs)
    skipped: list[dict[str, Any]] = []

    def analyse(items: Mapping[str, Any], offset: int, role: str) -> dict[str, Any]:
        found = {}
        for index, (name, image) in enumerate(items.items()):
            report_progress(progress, (offset + index) / total, f"Analysing {name}")
            try:
                analysis = analyse_image(_load_any(image))
            except HeadshotLabError as exc:
                skipped.append({"id": name, "stage": role, "code": exc.code, "message": exc.message})
                continue
            skipped.extend({"id": name, "stage": f"{role}:{e['stage']}", **e} for e in analysis.errors)
            found[name] = analysis
        return found

    refs = analyse(references, 0, "reference")
    outs = analyse(outputs, len(references), "output")
    ref_embeddings = {name: a.embedding for name, a in refs.items() if a.embedding is not None}
    if not ref_embeddings:
        raise HeadshotLabError(
            "No face could be measured in any of your photos, so there is nothing to compare with.",
            fix="Upload photos where your face is clearly visible.",
            code="no_reference",
        )
    centroid = reference_centroid(list(ref_embeddings.values()))
    tones = [a.tone for a in refs.values() if a.tone is not None]
    person = PersonTone.from_tones(tones) if tones else None
    group = group_label(person.ita_group) if person else "unknown"
    paired = bool(outs) and all(sources.get(name) in refs for name in outs)

    rows = [
        _row(name, analysis, refs, sources.get(name), centroid, ref_embeddings, new_scene=name in set(new_scene))
        for name, analysis in outs.items()
    ]
    if not rows:
        raise HeadshotLabError(
            "None of the outputs could be analysed.", fix="Check that they are images.", code="no_outputs"
        )
    options = {"confidence": confidence, "n_resamples": n_resamples, "seed": seed}
    metrics = (
        _paired_metrics(rows, group, options)
        if paired
        else _unpaired_metrics(rows, refs, ref_embeddings, group, options)
    )
    notes = [
        f"One person's batch: {len(refs)} of their photos against {len(rows)} outputs. Intervals describe this "
        "batch, not the generator in general.",
        "Design: each output against the photo it was made from (paired)."
        if paired
        else "Design: the outputs against your photos as two independent samples (both resampled; identity "
        "baselines leave each photo out of the centroid it is compared with).",
    ]
    curves: dict[str, Any] = {}
    notes = [
        f"One person's batch: {len(refs)} of their photos against {len(rows)} outputs. Intervals resample these "
        "images (an output and its source photo together), so they describe this batch, not the generator.",
    ]
    real = [(n, a.features) for n, a in refs.items() if a.features is not None]
    fake = [(n, a.features) for n, a in outs.items() if a.features is not None]
    try:
        c2st = classifier_two_sample_test(
            np.stack([f for _, f in real]) if real else np.zeros((0, 1)),
            np.stack([f for _, f in fake]) if fake else np.zeros((0, 1)),
            real_groups=[n for n, _ in real],
            fake_groups=[sources.get(n) if sources.get(n) in refs else n for n, _ in fake],
            seed=seed,
            confidence=confidence,
            n_resamples=n_resamples,
        )
    except (HeadshotLabError, ValueError) as exc:
        notes.append(f"Detectability not measured: {getattr(exc, 'message', str(exc))}")
    else:
        clusters = {*(n for n, _ in real), *(row["cluster"] for row in rows)}
        entry = {**c2st.to_dict(), "n": len(real) + len(fake), "n_real": len(real), "n_fake": len(fake)}
        entry["clusters"] = len(clusters)
        metrics["detectability_auroc"] = {
            "overall": entry,
            "by_group": {group: entry},
            "difference": None,
            "ratio": None,
        }
        curves["roc"] = {"fpr": [float(v) for v in c2st.fpr], "tpr": [float(v) for v in c2st.tpr]}
    flags, group_flags, evidence = compute_flags(metrics)
    encoder = encoder_name()
    run = AuditRun(
        generator="this batch",
        n=len(rows),
        metrics=metrics,
        flags=flags,
        group_flags=group_flags,
        evidence=evidence,
        curves=curves,
    )
    audit = AuditResults(
        config={
            "name": "your batch",
            "dataset": "your photos",
            "seed": seed,
            "confidence": confidence,
            "n_resamples": n_resamples,
            "group_by": "the person's ITA group",
        },
        encoder=encoder,
        n_sources=len(refs),
        runs=[run],
        skipped=skipped,
        notes=notes,
    )
    results = audit.to_dict()
    images = [
        {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items() if k != "cluster"} for row in rows
    ]

    def card_for(payload: Mapping[str, Any], plot_names: list[str]) -> str:
        details = render_markdown(payload, plots=plot_names)
        return format_audit_card(encoder, group, person, images, payload["runs"][0], details)

    plots: list[Path] = []
    if out_dir is not None:
        plots = [Path(out_dir) / name for name in write_results(out_dir, audit, render=card_for, default=str)]
    card = card_for(results, [p.name for p in plots])
    report_progress(progress, 1.0, "Done")
    return BatchAudit(
        encoder=encoder,
        group=group,
        person_ita=None if person is None else person.ita,
        images=images,
        results=results,
        markdown=card,
        plots=plots,
    )


def _loo_centroid(embeddings: Mapping[str, np.ndarray], leave_out: str | None) -> np.ndarray | None:
    """The centroid of the person's photos other than ``leave_out`` (``None`` when none is left)."""

    others = [e for name, e in embeddings.items() if name != leave_out]
    return reference_centroid(others) if others else None


def _cosine(embedding: np.ndarray | None, centroid: np.ndarray | None) -> float | None:

    if embedding is None or centroid is None:
        return None
    return float(cosine_to_reference([embedding], centroid)[0])


def _row(
    name: str,
    analysis: AuditAnalysis,
    refs: Mapping[str, AuditAnalysis],
    source: str | None,
    centroid: np.ndarray,
    ref_embeddings: Mapping[str, np.ndarray],
    *,
    new_scene: bool = False,
) -> dict[str, Any]:
    """One output's per-image numbers; against its ``source`` photo when it has one.

    With a source ``s``: identity change ``cos(o, c₋ₛ) − cos(s, c₋ₛ)`` with ``c₋ₛ`` the centroid of the
    person's *other* photos (an output made from ``s`` is not compared with a centroid that contains
    ``s``); ``ΔITA = ITA_o − ITA_s``; texture ratio ``T_o / T_s``.
    """

    src = refs.get(source) if source is not None else None
    row: dict[str, Any] = {"name": name, "source": source if src is not None else None}
    row["face_found"] = analysis.face is not None
    row["identity_cosine"] = _cosine(analysis.embedding, centroid)
    row["ita"] = None if analysis.tone is None else float(analysis.tone.ita)
    row["texture"] = analysis.texture
    row["identity_delta"] = row["skin_delta_ita"] = row["skin_delta_e2000"] = row["skin_monk_shift"] = None
    row["texture_ratio"] = row["age_ratio"] = None
    row["age"] = analysis.age
    if src is not None:
        others = _loo_centroid(ref_embeddings, source)
        out_cos, src_cos = _cosine(analysis.embedding, others), _cosine(src.embedding, others)
        row["identity_delta"] = None if out_cos is None or src_cos is None else out_cos - src_cos
        if src.tone is not None and analysis.tone is not None:
            scene = not new_scene and same_scene(
                src.photo.metrics.get("hash") if src.photo else None,
                analysis.photo.metrics.get("hash") if analysis.photo else None,
            )
            shift = skin_shift(src.tone, analysis.tone, same_scene=scene)
            row.update(
                skin_delta_ita=shift.headline_delta_ita,
                skin_delta_ita_photographed=shift.delta_ita,
                skin_measure="light-matched"
                if scene and src.tone.scene_grey_y is not None and analysis.tone.scene_grey_y is not None
                else "as photographed",
                skin_delta_e2000=shift.delta_e2000,
                skin_monk_shift=float(shift.monk_shift),
            )
        row["texture_ratio"] = texture_ratio(analysis.texture, src.texture)
        row["age_ratio"] = age_ratio(src.age, analysis.age)
    row["cluster"] = source if src is not None else name
    return row


def _paired_metrics(rows: Sequence[Mapping[str, Any]], group: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """Each output against its source photo; an output and its source form one cluster."""

    clusters = [row["cluster"] for row in rows]
    metrics: dict[str, Any] = {}
    for metric in AUDIT_METRICS:
        values = [row[metric] for row in rows]
        if any(v is not None for v in values):
            metrics[metric] = grouped_metric(
                values,
                [group] * len(rows),
                name=metric,
                clusters=clusters,
                **estimation(metric),
                **options,
            ).to_dict()
    return metrics


def _single_group(estimate: Any, group: str, **extra: Any) -> dict[str, Any]:
    entry = {**estimate.to_dict(), **extra}
    return {"overall": entry, "by_group": {group: entry}, "difference": None, "ratio": None}


def _unpaired_metrics(
    rows: Sequence[Mapping[str, Any]],
    refs: Mapping[str, AuditAnalysis],
    ref_embeddings: Mapping[str, np.ndarray],
    group: str,
    options: Mapping[str, Any],
) -> dict[str, Any]:
    """Outputs and the person's photos as two independent samples, both resampled (Welch).

    * identity change: ``mean cos(oᵢ, c) − mean cos(rⱼ, c₋ⱼ)`` — each photo against the centroid of the
      *other* photos (leave-one-out), so the baseline is not inflated by the photo's own vote;
    * ``ΔITA = mean ITA(outputs) − mean ITA(photos)``;
    * texture ratio ``exp(mean log T_o − mean log T_r)`` and apparent-age ratio ``exp(mean log A_o − mean log A_r)``
      (intervals transformed the same way).
    """

    confidence, seed = options["confidence"], options["seed"]
    metrics: dict[str, Any] = {}
    cosines = [row["identity_cosine"] for row in rows]
    if any(v is not None for v in cosines):
        metrics["identity_cosine"] = grouped_metric(
            cosines, [group] * len(rows), name="identity_cosine", **options
        ).to_dict()
    baseline = [_cosine(e, _loo_centroid(ref_embeddings, name)) for name, e in ref_embeddings.items()]

    def difference(a: Sequence[float | None], b: Sequence[float | None]) -> Estimate:
        return two_sample_difference(
            [v for v in a if v is not None], [v for v in b if v is not None], confidence=confidence, seed=seed
        )

    if len(ref_embeddings) >= 2:
        metrics["identity_delta"] = _single_group(difference(cosines, baseline), group)
    ref_ita = [float(a.tone.ita) for a in refs.values() if a.tone is not None]
    metrics["skin_delta_ita"] = _single_group(difference([row["ita"] for row in rows], ref_ita), group)

    def ratio(outputs: Sequence[float | None], photos: Sequence[float | None]) -> Estimate | None:
        """``exp(mean log o − mean log p)`` with the Welch interval of the logs mapped back (positive values only)."""
        log_ratio = difference(
            [float(np.log(v)) for v in outputs if v is not None and v > 0],
            [float(np.log(v)) for v in photos if v is not None and v > 0],
        )
        if log_ratio.value is None:
            return None
        low, high = log_ratio.ci
        return Estimate(
            value=float(np.exp(log_ratio.value)),
            ci=(None if low is None else float(np.exp(low)), None if high is None else float(np.exp(high))),
            n=log_ratio.n,
            clusters=log_ratio.clusters,
        )

    for quantity in ("texture", "age"):
        found = ratio([row[quantity] for row in rows], [getattr(a, quantity) for a in refs.values()])
        if found is not None:
            metrics[f"{quantity}_ratio"] = _single_group(found, group)
    return metrics


#: How each verdict is marked on the card (plain words follow the mark).
_STATUS_MARK = {"ok": "✓", "flag": "⚠", "not_enough_to_tell": "?"}  # glyphs every system font has


def format_audit_card(
    encoder: str,
    group: str,
    person: PersonTone | None,
    images: Sequence[Mapping[str, Any]],
    run: Mapping[str, Any],
    details: str,
) -> str:
    """The card: verdict lines (identity, skin shift in the person's ITA group, texture, detectability), then a table."""

    metrics = run["metrics"]

    def overall(metric: str, pattern: str) -> str:
        return format_estimate((metrics.get(metric) or {}).get("overall"), pattern)

    def as_change(metric: str) -> str:
        """A ratio's overall value as the verdicts show it (``format_value``: 0.912 → −8.8%)."""
        value = ((metrics.get(metric) or {}).get("overall") or {}).get("value")
        return "–" if value is None else format_value(METRIC_SPECS[metric], float(value))

    flags = run["flags"]
    tone = "unknown" if person is None else f"{group} (median ITA {person.ita:.1f}°, Monk {person.monk})"
    verdicts = metric_verdicts(metrics)
    lines = [
        "## Audit card",
        "",
        *[f"- {_STATUS_MARK[v.status]} {v.sentence}" for v in verdicts.values()],
        "",
        f"**Flags:** {', '.join(flags) if flags else 'none'}",
        "",
        "<details><summary>The numbers</summary>",
        "",
        f"- **You:** {tone}",
        f"- **Identity** ({encoder}): cosine to your photos {overall('identity_cosine', '{:.3f}')}, "
        f"change {overall('identity_delta', '{:+.4f}')}",
        f"- **Skin shift** in {group}: ΔITA {overall('skin_delta_ita', '{:+.2f}')}° (positive = lighter), "
        f"ΔE00 {overall('skin_delta_e2000', '{:.2f}')}, Monk steps {overall('skin_monk_shift', '{:+.2f}')}",
        f"- **Skin texture** (output / your photos): {overall('texture_ratio', '{:.3f}')} (< 1 = smoother)",
        f"- **Apparent age** (output / your photos, {AGE_MODEL}): {overall('age_ratio', '{:.3f}')} (< 1 = younger; "
        f"{as_change('age_ratio')})",
        f"- **Detectability** (classifier two-sample test AUROC, 0.5 = indistinguishable): "
        f"{overall('detectability_auroc', '{:.3f}')}",
        "",
        "| output | face | identity cos | ΔITA ° | texture ratio | compared with |",
        "|---|---|---|---|---|---|",
    ]
    for row in images:
        lines.append(
            f"| {table_cell(row['name'])} | {'yes' if row['face_found'] else 'no'} | {number(row['identity_cosine'], '{:.3f}')} "
            f"| {number(row['skin_delta_ita'], '{:+.2f}')} | {number(row['texture_ratio'], '{:.3f}')} "
            f"| {table_cell(row['source'] or 'all your photos')} |"
        )
    lines += [
        "",
        "</details>",
        "",
        "<details><summary>Full report</summary>",
        "",
        details.replace("# headshot-lab audit", "### Audit"),
        "</details>",
    ]
    return "\n".join(lines)
