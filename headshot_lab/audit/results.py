"""The audit's typed result and the one writer of ``results.json`` (+ plots + ``report.md``).

Both audits build an :class:`AuditResults` — the suite (``eval.runner.aggregate``) and the per-batch
card (:func:`headshot_lab.audit.batch.audit_batch`) — and write it with :func:`write_results`; the
report (:func:`headshot_lab.audit.report.render_markdown`) and the plots
(:func:`headshot_lab.audit.plots.write_plots`) read its ``to_dict()`` form, which is the stable
``results.json`` schema (:data:`SCHEMA_VERSION`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from headshot_lab.atomic import write_json_atomic, write_text_atomic

SCHEMA_VERSION = 1


@dataclass
class AuditRun:
    """One generator's (or one batch's) results.

    Attributes:
        generator: the generator spec (``"lighten:3"``) or ``"this batch"``.
        n: number of output images measured.
        metrics: ``{metric: GroupedMetric.to_dict()}``.
        flags, group_flags, evidence: what :func:`headshot_lab.audit.report.compute_flags` concluded and why.
        curves: e.g. the detectability ROC ``{"roc": {"fpr", "tpr"}}``.
        dataset, axes, extra: the suite's extras (generator axes for drift plots, failures, timing).
    """

    generator: str
    n: int
    metrics: dict[str, Any]
    flags: list[str]
    group_flags: list[str]
    evidence: list[dict[str, Any]]
    curves: dict[str, Any] = field(default_factory=dict)
    dataset: str | None = None
    axes: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.dataset is None:
            del data["dataset"]
        return data


@dataclass
class AuditResults:
    """Everything ``results.json`` holds."""

    config: dict[str, Any]
    encoder: str
    n_sources: int
    runs: list[AuditRun]
    skipped: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)
    power: dict[str, Any] | None = None
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "schema_version": self.schema_version,
            "config": self.config,
            "versions": self.versions,
            "encoder": self.encoder,
            "n_sources": self.n_sources,
            "runs": [run.to_dict() for run in self.runs],
            "skipped": list(self.skipped),
            "notes": list(self.notes),
        }
        if self.power is not None:
            data["power"] = self.power
        return data


def write_results(
    directory: str | Path,
    results: AuditResults | Mapping[str, Any],
    *,
    plots: bool = True,
    render: Callable[[Mapping[str, Any], list[str]], str] | None = None,
    default: Any = None,
) -> list[str]:
    """Write ``results.json``, the PNG plots and ``report.md`` into ``directory``; return the plot file names.

    ``render(payload, plot_names)`` makes ``report.md`` (default:
    :func:`headshot_lab.audit.report.render_markdown`); the batch card passes its own, which embeds that
    report. The one place ``results.json`` is written.
    """
    from headshot_lab.audit.plots import write_plots
    from headshot_lab.audit.report import render_markdown

    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    payload = results.to_dict() if isinstance(results, AuditResults) else dict(results)
    write_json_atomic(folder / "results.json", payload, default=default)
    names: list[str] = write_plots(payload, folder) if plots else []
    report = render(payload, names) if render is not None else render_markdown(payload, plots=names)
    write_text_atomic(folder / "report.md", report)
    return names
