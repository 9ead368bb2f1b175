"""PNG plots of a ``results.json`` payload (matplotlib, Agg backend: no display needed).

* ``delta_ita_by_group.png`` — mean ΔITA per source ITA group with CI bars, one series per generator;
* ``identity_by_group.png`` — identity cosine per group with CI bars;
* ``texture_by_group.png`` — texture ratio per group with CI bars;
* ``detectability_roc.png`` — the C2ST ROC curve of each generator;
* ``drift_<axis>.png`` — a metric against a generator axis (number of selfies, steps, seeds, styles,
  canary strength) for every generator family that was run at two or more values of that axis.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from headshot_lab.audit.margins import METRIC_SPECS, sample_size

GROUP_METRICS = (
    ("skin_delta_ita", "delta_ita_by_group.png", "ΔITA (°, + = lighter)", 0.0),
    ("identity_cosine", "identity_by_group.png", "likeness to own photos (cosine)", None),
    ("texture_ratio", "texture_by_group.png", "skin texture ratio (output / source)", 1.0),
)
#: Plot titles in plain words, by metric (a raw name such as ``skin_delta_ita`` is never a title).
PLOT_TITLES = {
    "skin_delta_ita": "Skin tone change by skin-tone group",
    "identity_cosine": "Likeness by skin-tone group",
    "texture_ratio": "Skin texture by skin-tone group",
}
DRIFT_METRICS = (
    ("skin_delta_ita", "ΔITA (°)"),
    ("identity_cosine", "identity cosine"),
    ("texture_ratio", "texture ratio"),
)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _savefig(fig: Any, path: Path) -> None:
    """``fig.savefig`` as PNG (110 dpi), atomically: a reader never sees half a plot."""
    from headshot_lab.atomic import atomic_write

    with atomic_write(path) as handle:
        fig.savefig(handle, format="png", dpi=110)


def _errorbars(entries: Sequence[Mapping[str, Any] | None]) -> tuple[np.ndarray, np.ndarray]:
    values: list[float] = []
    errors: list[list[float]] = [[], []]
    for entry in entries:
        value = None if not entry else entry.get("value")
        ci = (entry or {}).get("ci") or [None, None]
        values.append(np.nan if value is None else float(value))
        errors[0].append(0.0 if value is None or ci[0] is None else max(float(value) - float(ci[0]), 0.0))
        errors[1].append(0.0 if value is None or ci[1] is None else max(float(ci[1]) - float(value), 0.0))
    return np.asarray(values), np.asarray(errors)


def plot_by_group(
    runs: Sequence[Mapping[str, Any]], metric: str, path: Path, ylabel: str, reference: float | None
) -> bool:
    """Per-group means with CI bars, one offset series per generator; ``False`` when there is nothing to plot."""
    groups = sorted({g for run in runs for g in ((run.get("metrics") or {}).get(metric) or {}).get("by_group", {})})
    series = [run for run in runs if (run.get("metrics") or {}).get(metric)]
    if not groups or not series:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(groups) + 2), 4.2))
    width = 0.8 / len(series)
    x = np.arange(len(groups))
    for k, run in enumerate(series):
        by_group = run["metrics"][metric].get("by_group", {})
        values, errors = _errorbars([by_group.get(g) for g in groups])
        ax.errorbar(x - 0.4 + width * (k + 0.5), values, yerr=errors, fmt="o", capsize=3, label=run["generator"])
    if reference is not None:
        ax.axhline(reference, color="grey", lw=0.8, ls="--")
    ax.set_xticks(x, groups, rotation=20)
    ax.set_ylabel(ylabel)
    ax.set_title(f"{PLOT_TITLES.get(metric, metric.replace('_', ' '))} (95 % interval)")
    ax.legend(fontsize=8, ncols=2)
    fig.tight_layout()
    _savefig(fig, path)
    plt.close(fig)
    return True


def _enough_for_detectability(run: Mapping[str, Any]) -> bool:
    """Whether the run's detectability has the sample its verdict needs (else the card says "not enough to tell")."""
    spec = METRIC_SPECS["detectability_auroc"]
    entry = ((run.get("metrics") or {}).get("detectability_auroc") or {}).get("overall") or {}
    return sample_size(entry, spec) >= spec.min_n


def plot_roc(runs: Sequence[Mapping[str, Any]], path: Path) -> bool:
    """The C2ST ROC of every run with enough images for a detectability verdict (a curve of 3 images says nothing)."""
    curves = [
        (run["generator"], (run.get("curves") or {}).get("roc")) for run in runs if _enough_for_detectability(run)
    ]
    curves = [(name, roc) for name, roc in curves if roc]
    if not curves:
        return False
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, roc in curves:
        assert roc is not None  # curves keeps only runs with a ROC
        run = next(r for r in runs if r["generator"] == name)
        auc = (((run.get("metrics") or {}).get("detectability_auroc") or {}).get("overall") or {}).get("value")
        ax.plot(roc["fpr"], roc["tpr"], label=f"{name} (AUROC {auc:.2f})" if auc is not None else name)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    ax.set_xlabel("false positive rate (real called generated)")
    ax.set_ylabel("true positive rate")
    ax.set_title("Detectability: classifier two-sample test")
    ax.legend(fontsize=8)
    fig.tight_layout()
    _savefig(fig, path)
    plt.close(fig)
    return True


def drift_axes(runs: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, list[tuple[float, Mapping[str, Any]]]]]:
    """``{axis: {family: [(value, run)]}}`` for families run at ≥ 2 numeric values of an axis."""
    found: dict[str, dict[str, list[tuple[float, Mapping[str, Any]]]]] = defaultdict(lambda: defaultdict(list))
    for run in runs:
        family = str(run["generator"]).strip().partition(":")[0].strip()  # "lighten:3" → "lighten"
        for axis, value in (run.get("axes") or {}).items():
            try:
                found[axis][family].append((float(value), run))
            except (TypeError, ValueError):
                continue
    return {
        axis: {family: sorted(points, key=lambda p: p[0]) for family, points in families.items() if len(points) >= 2}
        for axis, families in found.items()
        if any(len(points) >= 2 for points in families.values())
    }


def plot_drift(runs: Sequence[Mapping[str, Any]], directory: Path) -> list[str]:
    names = []
    for axis, families in drift_axes(runs).items():
        plt = _pyplot()
        fig, axes = plt.subplots(1, len(DRIFT_METRICS), figsize=(4.2 * len(DRIFT_METRICS), 3.8))
        for ax, (metric, label) in zip(axes, DRIFT_METRICS, strict=True):
            for family, points in families.items():
                entries = [((run.get("metrics") or {}).get(metric) or {}).get("overall") for _, run in points]
                values, errors = _errorbars(entries)
                ax.errorbar([p[0] for p in points], values, yerr=errors, marker="o", capsize=3, label=family)
            ax.set_xlabel(axis)
            ax.set_ylabel(label)
        axes[0].legend(fontsize=8)
        fig.suptitle(f"Drift versus {axis} (95 % CI)")
        fig.tight_layout()
        name = f"drift_{axis}.png"
        _savefig(fig, directory / name)
        plt.close(fig)
        names.append(name)
    return names


def write_plots(results: Mapping[str, Any], directory: str | Path) -> list[str]:
    """Write every applicable plot into ``directory``; returns the file names written."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    runs = list(results.get("runs") or [])
    names = []
    for metric, name, label, reference in GROUP_METRICS:
        if plot_by_group(runs, metric, folder / name, label, reference):
            names.append(name)
    if plot_roc(runs, folder / "detectability_roc.png"):
        names.append("detectability_roc.png")
    names += plot_drift(runs, folder)
    return names
