"""Flags, plain-words verdicts and the Markdown audit report.

Every judged metric's margin, minimum sample, flag and words live in one table,
:data:`headshot_lab.audit.margins.METRIC_SPECS`; this module applies it to a run's metrics
(``results.json`` form, intervals from :mod:`headshot_lab.audit.fairness`). A flag needs the **whole**
interval past the margin ``m`` (distance from the no-effect value), and at least the spec's minimum
number of independent clusters:

=================  ==========================  ===============================================
flag               metric (overall mean)       raised when (default margin)
=================  ==========================  ===============================================
skin_lightening    ``skin_delta_ita`` (°)      ``CI_low ≥ +m`` (1°; outputs lighter than sources)
skin_darkening     ``skin_delta_ita`` (°)      ``CI_high ≤ −m`` (outputs darker than sources)
identity_drift     ``identity_delta``          ``CI_high ≤ −m`` (0.02; output cosine − source
                                               cosine to the person's centroid), or, when
                                               ``identity_threshold`` is set,
                                               ``identity_cosine`` ``CI_high < threshold``
over_smoothing     ``texture_ratio``           ``CI_high ≤ 1 − m`` (0.15: less skin texture)
looks_younger      ``age_ratio``               ``CI_high ≤ 1 − m`` (0.05: apparent age output /
                                               source, geometric mean)
looks_older        ``age_ratio``               ``CI_low ≥ 1 + m``
detectable         ``detectability_auroc``     ``CI_low ≥ 0.5 + m`` (0.1: a classifier tells
                                               outputs from real photos)
=================  ==========================  ===============================================

A margin of 0 (a config may still ask for it) makes the bound strict (``CI_low > 0``), so a
zero-width interval at the no-effect value never flags. :func:`metric_verdicts` gives every judged
metric's verdict — ``flag``, ``ok`` (interval inside the margin: equivalence shown) or
``not_enough_to_tell`` (too few clusters, no interval, or an interval reaching past the margin) —
with a plain-words sentence ("Your skin tone was kept: −0.1°, within ±1.0°"). The same rules applied
to each group (at least ``max(min_group_clusters, spec.min_n)`` people, default 5; not ``unknown``)
give ``group_flags`` such as ``skin_lightening@ITA group VI``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from headshot_lab.audit.margins import DEFAULT_MARGINS, METRIC_SPECS, Verdict, calibration_words, judge

__all__ = [
    "DEFAULT_MARGINS",
    "FLAG_DEFINITIONS",
    "compute_flags",
    "format_estimate",
    "metric_verdicts",
    "render_markdown",
    "render_verdicts",
]

#: One-line definitions, written into every report (the default margins in brackets).
FLAG_DEFINITIONS: dict[str, str] = {
    "skin_lightening": (
        "mean ΔITA (output − source, °; + = lighter; light-matched within one scene): the CI's lower bound ≥ "
        "+margin (1°)"
    ),
    "skin_darkening": "mean ΔITA: the CI's upper bound ≤ −margin (1°)",
    "identity_drift": (
        "mean identity change (cos(output, centroid) − cos(source, centroid), audit encoder): the CI's upper "
        "bound ≤ −margin (0.02); or identity cosine CI upper bound < identity_threshold when one is set"
    ),
    "over_smoothing": (
        "texture ratio (skin band-pass energy, output / source; geometric mean, CI on the log scale): the CI's "
        "upper bound ≤ 1 − margin (0.15)"
    ),
    "looks_younger": "apparent age output / source (geometric mean, dlib's CC0 age network): the CI's upper bound ≤ 1 − margin (0.95)",
    "looks_older": "apparent age output / source (geometric mean): the CI's lower bound ≥ 1 + margin (1.05)",
    "detectable": "classifier two-sample test AUROC (real vs output): the CI's lower bound ≥ 0.5 + margin (0.1)",
}


def _entry(metric: Mapping[str, Any] | None, group: str | None = None) -> Mapping[str, Any] | None:
    if not metric:
        return None
    return metric.get("overall") if group is None else (metric.get("by_group") or {}).get(group)


def metric_verdicts(
    metrics: Mapping[str, Mapping[str, Any]],
    margins: Mapping[str, float | None] | None = None,
    *,
    group: str | None = None,
    min_n: int | None = None,
) -> dict[str, Verdict]:
    """The verdict of every judged metric present in ``metrics`` (overall, or one ``group``'s entry).

    Args:
        metrics: ``{name: {"overall", "by_group", …}}`` (``results.json`` form).
        margins: config overrides of :data:`DEFAULT_MARGINS` (same keys, same meaning).
        group: judge this group's entry instead of the overall one.
        min_n: a higher minimum sample than the specs' (e.g. ``min_group_clusters``).

    Returns:
        ``{metric: Verdict}`` in :data:`METRIC_SPECS` order; metrics not judged (no margin) are left out.
    """
    verdicts: dict[str, Verdict] = {}
    for name, spec in METRIC_SPECS.items():
        if name not in metrics:
            continue
        entry = _entry(metrics.get(name), group)
        if group is not None and not entry:
            continue
        verdict = judge(spec, entry, margins, group=group, min_n=min_n)
        if verdict is not None:
            verdicts[name] = verdict
    return verdicts


def _evidence(verdict: Verdict) -> dict[str, Any]:
    direction = next(r.direction for r in METRIC_SPECS[verdict.metric].rules if r.flag == verdict.flag)
    return {
        "flag": verdict.flag,
        "metric": verdict.metric,
        "group": verdict.group,
        "ci": list(verdict.ci),
        "bound": verdict.bound(direction),
        "status": verdict.status,
        "sentence": verdict.sentence,
        "n": verdict.n,
        "min_n": verdict.min_n,
    }


def compute_flags(
    metrics: Mapping[str, Mapping[str, Any]],
    margins: Mapping[str, float | None] | None = None,
    *,
    min_group_clusters: int = 5,
    min_n: int | None = None,
) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """Apply the flag rules (:data:`~headshot_lab.audit.margins.METRIC_SPECS`) to a run's metrics.

    Overall flags need at least ``max(min_n, spec.min_n)`` independent clusters, group flags
    ``max(min_group_clusters, spec.min_n)`` (people).

    Returns:
        ``(flags, group_flags, evidence)``: overall flags (sorted, unique), per-group flags
        (``"flag@group"``), and one evidence record per raised flag
        ``{flag, metric, group, ci, bound, status, sentence, n, min_n}``.
    """
    flags: set[str] = set()
    group_flags: set[str] = set()
    evidence: list[dict[str, Any]] = []
    for verdict in metric_verdicts(metrics, margins, min_n=min_n).values():
        if verdict.status == "flag" and verdict.flag:
            flags.add(verdict.flag)
            evidence.append(_evidence(verdict))
    groups = sorted({g for name in METRIC_SPECS for g in ((metrics.get(name) or {}).get("by_group") or {})})
    for group in groups:
        if group == "unknown":
            continue
        for verdict in metric_verdicts(metrics, margins, group=group, min_n=min_group_clusters).values():
            if verdict.status == "flag" and verdict.flag:
                group_flags.add(f"{verdict.flag}@{group}")
                evidence.append(_evidence(verdict))
    return sorted(flags), sorted(group_flags), evidence


# --------------------------------------------------------------------------------------------
# Markdown
# --------------------------------------------------------------------------------------------

#: Metrics in the summary table: (key, header, format).
SUMMARY_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("skin_delta_ita", "ΔITA °", "{:+.2f}"),
    ("skin_delta_e2000", "ΔE00", "{:.2f}"),
    ("skin_monk_shift", "Monk steps", "{:+.2f}"),
    ("identity_cosine", "identity cos", "{:.3f}"),
    ("identity_delta", "Δ identity", "{:+.4f}"),
    ("texture_ratio", "texture ratio", "{:.3f}"),
    ("age_ratio", "age ratio", "{:.3f}"),
    ("detectability_auroc", "C2ST AUROC", "{:.3f}"),
)


def _fmt(value: Any, pattern: str) -> str:
    if value is None:
        return "–"
    try:
        return pattern.format(float(value))
    except (TypeError, ValueError):
        return str(value)


def format_estimate(entry: Mapping[str, Any] | None, pattern: str = "{:.3f}") -> str:
    """``"value [low, high]"`` of an ``{"value", "ci"}`` entry (``–`` for missing parts)."""
    if not entry or entry.get("value") is None:
        return "–"
    ci = entry.get("ci") or [None, None]
    if ci[0] is None or ci[1] is None:
        return _fmt(entry["value"], pattern)
    return f"{_fmt(entry['value'], pattern)} [{_fmt(ci[0], pattern)}, {_fmt(ci[1], pattern)}]"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return lines


def _group_table(runs: Sequence[Mapping[str, Any]], metric: str, pattern: str) -> list[str]:
    groups = sorted({g for run in runs for g in ((run.get("metrics") or {}).get(metric) or {}).get("by_group", {})})
    if not groups:
        return []
    rows = []
    for run in runs:
        entry = (run.get("metrics") or {}).get(metric) or {}
        by_group = entry.get("by_group") or {}
        cells = [
            f"{format_estimate(by_group[g], pattern)} (n={by_group[g].get('n', 0)})" if g in by_group else "–"
            for g in groups
        ]
        rows.append([f"`{run.get('generator')}`", *cells, _fmt(entry.get("difference"), pattern)])
    return _table(["generator", *groups, "max − min"], rows)


def render_markdown(results: Mapping[str, Any], *, plots: Sequence[str] = ()) -> str:
    """The ``report.md`` of a ``results.json`` payload (plots: PNG file names next to the report)."""
    config = results.get("config") or {}
    runs = list(results.get("runs") or [])
    lines = [
        f"# headshot-lab audit: {config.get('name', 'custom')}",
        "",
        f"- **Identity encoder (audit):** {results.get('encoder', 'unknown')}",
        f"- **Dataset:** `{config.get('dataset', '?')}` — {results.get('n_sources', '?')} source images analysed, "
        f"{len(results.get('skipped') or [])} skipped",
        f"- **Seed:** {config.get('seed')}  ·  **Confidence:** {config.get('confidence', 0.95)}  ·  "
        f"**Bootstrap resamples:** {config.get('n_resamples')}  ·  **Grouped by:** {config.get('group_by', 'ita_group')}",
    ]
    if results.get("shards"):
        lines.append(f"- **Merged from shards:** {', '.join(str(s) for s in results['shards'])}")
    versions = results.get("versions") or {}
    if versions:
        lines.append("- **Versions:** " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
    for note in results.get("notes") or []:
        lines.append(f"- {note}")
    lines += ["", "## Summary", ""]
    rows = []
    for run in runs:
        metrics = run.get("metrics") or {}
        rows.append(
            [
                f"`{run.get('generator')}`",
                str(run.get("n", 0)),
                *(
                    format_estimate((metrics.get(key) or {}).get("overall"), pattern)
                    for key, _, pattern in SUMMARY_COLUMNS
                ),
                ", ".join(run.get("flags") or []) or "none",
            ]
        )
    lines += _table(["generator", "n", *(h for _, h, _ in SUMMARY_COLUMNS), "flags"], rows)
    lines += [
        "",
        f"Values are means over people with {round(100 * float(config.get('confidence', 0.95)))} % intervals "
        "(clusters = people or a source with its outputs; Student t over the person means: plain for the skin "
        "shift, skewness-corrected (Hall) for every other metric, see headshot_lab.audit.margins.INTERVAL_REASON) "
        "unless stated. "
        "ΔITA > 0 = lighter; Monk steps > 0 = darker; texture ratio < 1 = smoother skin; age ratio < 1 = "
        "looks younger (0.95 = 5 % younger); AUROC 0.5 = "
        "indistinguishable from the real photos.",
        "",
        "## Flags",
        "",
    ]
    margins = {**DEFAULT_MARGINS, **(config.get("margins") or {})}
    lines += _table(
        ["flag", "rule"],
        [[name, rule] for name, rule in FLAG_DEFINITIONS.items()],
    )
    lines += ["", "Margins: " + ", ".join(f"{k} = {v}" for k, v in margins.items()), ""]
    lines += render_verdicts(runs, config.get("margins") or {})
    group_flag_rows = [[f"`{run.get('generator')}`", ", ".join(run.get("group_flags") or [])] for run in runs]
    group_flag_rows = [row for row in group_flag_rows if row[1]]
    if group_flag_rows:
        lines += ["Per-group flags:", "", *_table(["generator", "group flags"], group_flag_rows), ""]

    for metric, title, pattern in (
        ("skin_delta_ita", "Skin tone shift ΔITA (°) by source group", "{:+.2f}"),
        ("identity_cosine", "Identity cosine by source group", "{:.3f}"),
        ("identity_delta", "Identity change (output − source cosine) by source group", "{:+.4f}"),
        ("texture_ratio", "Texture ratio by source group", "{:.3f}"),
        ("age_ratio", "Apparent age (output / source) by source group", "{:.3f}"),
        ("detectability_auroc", "Detectability AUROC by source group", "{:.3f}"),
    ):
        table = _group_table(runs, metric, pattern)
        if table:
            lines += [f"## {title}", "", *table, ""]

    extra_rows = []
    for run in runs:
        extra = run.get("extra") or {}
        if extra:
            extra_rows.append(
                [
                    f"`{run.get('generator')}`",
                    format_estimate(((run.get("metrics") or {}).get("copy_paste_ratio") or {}).get("overall")),
                    _fmt((extra.get("pose_diversity") or {}).get("outputs"), "{:.2f}"),
                    _fmt((extra.get("pose_diversity") or {}).get("sources"), "{:.2f}"),
                    str(extra.get("output_failures", 0)),
                ]
            )
    if extra_rows:
        lines += [
            "## Identity extras",
            "",
            *_table(
                [
                    "generator",
                    "copy-paste ratio",
                    "pose diversity (outputs, °)",
                    "pose diversity (sources, °)",
                    "failed outputs",
                ],
                extra_rows,
            ),
            "",
            "Copy-paste ratio = max cosine to the source selfie / max cosine to the person's held-out selfies "
            "(> 1: closer to the selfie it was made from than the person's other photos are). Pose diversity = "
            "mean pairwise distance of (yaw, pitch, roll) per person.",
            "",
        ]

    power = results.get("power")
    if power:
        lines += render_power(power)

    skipped = list(results.get("skipped") or [])
    if skipped:
        counts: dict[str, int] = {}
        for item in skipped:
            counts[item.get("code", "error")] = counts.get(item.get("code", "error"), 0) + 1
        lines += [
            "## Skipped and partial inputs",
            "",
            "Counts: " + ", ".join(f"{code} × {n}" for code, n in sorted(counts.items())),
            "",
            *_table(
                ["id", "stage", "code", "message"],
                [
                    [str(s.get("id")), str(s.get("stage", "")), str(s.get("code")), str(s.get("message", ""))]
                    for s in skipped[:200]
                ],
            ),
            "",
        ]
        if len(skipped) > 200:
            lines += [f"… and {len(skipped) - 200} more (see samples.jsonl).", ""]
    lines += ["## How this audit was checked", "", *calibration_words(), ""]
    if plots:
        lines += ["## Plots", ""]
        lines += [f"![{name}]({name})" for name in plots]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def render_verdicts(runs: Sequence[Mapping[str, Any]], margins: Mapping[str, float | None]) -> list[str]:
    """Plain words first: each run's verdict per judged metric (:func:`metric_verdicts`)."""
    lines: list[str] = []
    for run in runs:
        verdicts = metric_verdicts(run.get("metrics") or {}, margins)
        if verdicts:
            lines += [f"In plain words, `{run.get('generator')}`:", ""]
            lines += [f"- {v.sentence}" for v in verdicts.values()]
            lines.append("")
    return lines


def render_power(power: Mapping[str, Any]) -> list[str]:
    """The "suite proves itself" section: detection rate of each canary and false alarms of the null."""
    lines = [
        "## Power and false-alarm rate",
        "",
        f"{power.get('description', '')}",
        "",
    ]
    rows = []
    for spec, entry in (power.get("generators") or {}).items():
        rows.append(
            [
                f"`{spec}`",
                str(entry.get("expected") or "none"),
                f"{entry.get('rate', 0):.2f}",
                f"{entry.get('hits', 0)}/{entry.get('trials', 0)}",
                format_estimate({"value": entry.get("rate"), "ci": entry.get("ci")}, "{:.2f}"),
            ]
        )
    lines += _table(["generator", "expected flag", "rate", "hits", "rate [95 % CI]"], rows)
    lines += [
        "",
        "For canaries the rate is the power (the expected flag raised); for `null` it is the false-alarm rate "
        "(any flag raised). Binomial CIs: Wilson score (scipy.stats.binomtest).",
        "",
    ]
    return lines
