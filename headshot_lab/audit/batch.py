"""The audit card of one person's batch: identity, skin shift in their ITA group, texture, detectability."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from headshot_lab.audit.measure import analyse_image, encoder_name
from headshot_lab.audit.results import AuditResults, AuditRun, write_results
from headshot_lab.errors import HeadshotLabError
from headshot_lab.reporting import Progress, number, report_progress, table_cell

#: Per-image metrics of the batch card (the same names as ``eval``'s ``results.json``).
AUDIT_METRICS = (
    "identity_cosine",
    "identity_delta",
    "skin_delta_ita",
    "skin_delta_e2000",
    "skin_monk_shift",
    "texture_ratio",
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
        from headshot_lab.skin import ita_group, nearest_monk

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

    def to_dict(self) -> dict[str, Any]:
        return {
            "encoder": self.encoder,
            "group": self.group,
            "person_ita": None if self.person_ita is None else round(self.person_ita, 3),
            "flags": self.flags,
            "metrics": self.results["runs"][0]["metrics"],
            "images": self.images,
            "plots": [path.name for path in self.plots],
        }


def _load_any(source: Any) -> np.ndarray:
    from headshot_lab.io import as_rgb_array, load_rgb

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
        out_dir: where to write ``report.md``, ``results.json`` and the plots (nothing written when ``None``).

    Raises:
        HeadshotLabError: ``no_reference`` (no face measurable in any reference), ``no_outputs``.
    """
    from headshot_lab.audit.detectability import classifier_two_sample_test
    from headshot_lab.audit.fairness import grouped_metric
    from headshot_lab.audit.identity import cosine_to_reference, reference_centroid
    from headshot_lab.audit.report import compute_flags, render_markdown
    from headshot_lab.audit.skin import group_label, skin_shift, texture_ratio

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
    ref_embeddings = {
        name: a.face.embedding for name, a in refs.items() if a.face is not None and a.face.embedding is not None
    }
    if not ref_embeddings:
        raise HeadshotLabError(
            "No face could be measured in any of your photos, so there is nothing to compare with.",
            fix="Upload photos where your face is clearly visible.",
            code="no_reference",
        )
    centroid = reference_centroid(list(ref_embeddings.values()))
    ref_cos = {name: float(cosine_to_reference([e], centroid)[0]) for name, e in ref_embeddings.items()}
    tones = [a.tone for a in refs.values() if a.tone is not None]
    person = PersonTone.from_tones(tones) if tones else None
    textures = [a.texture for a in refs.values() if a.texture is not None]
    person_texture = float(np.median(textures)) if textures else None
    group = group_label(person.ita_group) if person else "unknown"

    rows: list[dict[str, Any]] = []
    for name, analysis in outs.items():
        source = sources.get(name) if sources.get(name) in refs else None
        src = refs.get(source) if source else None
        row: dict[str, Any] = {"name": name, "source": source, "face_found": analysis.face is not None}
        embedding = analysis.face.embedding if analysis.face is not None else None
        cos = None if embedding is None else float(cosine_to_reference([embedding], centroid)[0])
        baseline = ref_cos.get(source) if source in ref_cos else float(np.mean(list(ref_cos.values())))
        row["identity_cosine"] = cos
        row["identity_delta"] = None if cos is None else cos - baseline
        src_tone = src.tone if src is not None and src.tone is not None else person
        shift = skin_shift(src_tone, analysis.tone) if (src_tone is not None and analysis.tone is not None) else None
        row["skin_delta_ita"] = None if shift is None else shift.delta_ita
        row["skin_delta_e2000"] = None if shift is None else shift.delta_e2000
        row["skin_monk_shift"] = None if shift is None else float(shift.monk_shift)
        src_texture = src.texture if src is not None and src.texture is not None else person_texture
        row["texture_ratio"] = texture_ratio(analysis.texture, src_texture)
        row["cluster"] = source or name
        rows.append(row)
    if not rows:
        raise HeadshotLabError(
            "None of the outputs could be analysed.", fix="Check that they are images.", code="no_outputs"
        )

    options = {"confidence": confidence, "n_resamples": n_resamples, "seed": seed, "min_group_size": 1}
    clusters = [row["cluster"] for row in rows]
    metrics: dict[str, Any] = {}
    for metric in AUDIT_METRICS:
        values = [row[metric] for row in rows]
        if any(v is not None for v in values):
            metrics[metric] = grouped_metric(
                values, [group] * len(rows), name=metric, clusters=clusters, **options
            ).to_dict()
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
        entry = {**c2st.to_dict(), "n": len(real) + len(fake), "clusters": len({*(n for n, _ in real), *clusters})}
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


def format_audit_card(
    encoder: str,
    group: str,
    person: PersonTone | None,
    images: Sequence[Mapping[str, Any]],
    run: Mapping[str, Any],
    details: str,
) -> str:
    """The card: verdict lines (identity, skin shift in the person's ITA group, texture, detectability), then a table."""
    from headshot_lab.audit.report import format_estimate

    metrics = run["metrics"]

    def overall(metric: str, pattern: str) -> str:
        return format_estimate((metrics.get(metric) or {}).get("overall"), pattern)

    flags = run["flags"]
    tone = "unknown" if person is None else f"{group} (median ITA {person.ita:.1f}°, Monk {person.monk})"
    lines = [
        "## Audit card",
        "",
        f"**Flags:** {', '.join(flags) if flags else 'none'}",
        "",
        f"- **You:** {tone}",
        f"- **Identity** ({encoder}): cosine to your photos {overall('identity_cosine', '{:.3f}')}, "
        f"change {overall('identity_delta', '{:+.4f}')}",
        f"- **Skin shift** in {group}: ΔITA {overall('skin_delta_ita', '{:+.2f}')}° (positive = lighter), "
        f"ΔE00 {overall('skin_delta_e2000', '{:.2f}')}, Monk steps {overall('skin_monk_shift', '{:+.2f}')}",
        f"- **Skin texture** (output / your photos): {overall('texture_ratio', '{:.3f}')} (< 1 = smoother)",
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
        "<details><summary>Full report</summary>",
        "",
        details.replace("# headshot-lab audit", "### Audit"),
        "</details>",
    ]
    return "\n".join(lines)
