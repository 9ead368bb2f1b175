"""Audit metrics: identity, skin tone, over-smoothing, AI-detectability, fairness by group, reports.

Pure functions on embeddings, tones, images and score arrays; each documents its formula. The
suite that runs them over datasets and generators is :mod:`eval` (``python -m eval``).

=====================================  ==========================================================
module                                 what it measures
=====================================  ==========================================================
:mod:`~headshot_lab.audit.identity`    cosine to the person's centroid (named encoder), copy-paste
                                       ratio, pose diversity
:mod:`~headshot_lab.audit.skin`        signed ΔITA, ΔE2000, Monk-step shift; skin texture energy
:mod:`~headshot_lab.audit.detectability`  classifier two-sample test (AUROC), pretrained Hub detector
:mod:`~headshot_lab.audit.survey`      human two-alternative forced-choice kit and scoring
:mod:`~headshot_lab.audit.fairness`    MetricFrame-shaped results with bootstrap CIs
:mod:`~headshot_lab.audit.report`      flags and the Markdown report
=====================================  ==========================================================
"""

from __future__ import annotations

from headshot_lab.audit.batch import BatchAudit, audit_batch
from headshot_lab.audit.fairness import (
    Estimate,
    GroupedMetric,
    bootstrap_ci,
    estimate,
    grouped_metric,
    two_sample_difference,
)
from headshot_lab.audit.identity import (
    CopyPaste,
    PoseDiversity,
    copy_paste_ratio,
    cosine_to_reference,
    pose_diversity,
    reference_centroid,
)
from headshot_lab.audit.margins import METRIC_SPECS, Verdict
from headshot_lab.audit.measure import AuditAnalysis, analyse_image, encoder_name
from headshot_lab.audit.report import FLAG_DEFINITIONS, compute_flags, metric_verdicts, render_markdown
from headshot_lab.audit.results import AuditResults, AuditRun, write_results
from headshot_lab.audit.skin import SkinShift, skin_shift, skin_shift_metrics, texture_ratio
from headshot_lab.skin import texture_energy

__all__ = [
    "FLAG_DEFINITIONS",
    "METRIC_SPECS",
    "AuditAnalysis",
    "AuditResults",
    "AuditRun",
    "BatchAudit",
    "CopyPaste",
    "Estimate",
    "GroupedMetric",
    "PoseDiversity",
    "SkinShift",
    "Verdict",
    "analyse_image",
    "audit_batch",
    "bootstrap_ci",
    "compute_flags",
    "copy_paste_ratio",
    "cosine_to_reference",
    "encoder_name",
    "estimate",
    "grouped_metric",
    "metric_verdicts",
    "pose_diversity",
    "reference_centroid",
    "render_markdown",
    "skin_shift",
    "skin_shift_metrics",
    "texture_energy",
    "texture_ratio",
    "two_sample_difference",
    "write_results",
]
