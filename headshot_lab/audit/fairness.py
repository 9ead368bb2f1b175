"""Every metric by group, with bootstrap confidence intervals: a MetricFrame-shaped result.

The shape follows fairlearn's ``MetricFrame``: an ``overall`` value, a value per group
(``by_group``), and the spread between groups as ``difference`` and ``ratio``:

* ``difference = max_g v_g − min_g v_g`` (fairlearn ``difference(method="between_groups")``);
* ``ratio = min_g v_g / max_g v_g`` (fairlearn ``ratio(method="between_groups")``), reported only
  when every group value has the same strict sign (a ratio of a positive and a negative mean, e.g.
  two signed ΔITA values, means nothing) — otherwise ``None``.

Only groups with at least ``min_group_size`` samples and not named in ``exclude_groups``
(``"unknown"`` by default: samples whose group could not be measured) enter the difference and ratio.

**Confidence intervals** are percentile-bootstrap intervals (Efron & Tibshirani 1993, §13.3)
computed with numpy (not :func:`scipy.stats.bootstrap`, which has no cluster resampling):

1. draw ``B`` resamples of the ``C`` *clusters* with replacement (``numpy.random.default_rng(seed)``);
   without ``clusters`` every sample is its own cluster (the ordinary bootstrap);
2. compute the statistic ``θ*_b`` on the samples of the drawn clusters;
3. ``CI = [q_{α′/2}(θ*), q_{1−α′/2}(θ*)]``.

With ``method="percentile"``, ``α′ = α = 1 − confidence``. The default ``method="expanded"`` is
Hesterberg's *expanded percentile* interval (Hesterberg 2015, "What teachers should know about the
bootstrap", §5.3), which corrects the plain percentile interval's known narrowness with few
clusters: ``α′/2 = Φ(−√(C/(C−1))·t_{1−α/2, C−1})`` (``t`` Student quantile with ``C − 1`` degrees of
freedom, ``Φ`` the normal CDF; :mod:`scipy.stats`). For large ``C`` it equals the percentile interval;
for ``C = 2`` it is the whole bootstrap range.

Resampling clusters (e.g. all images of one person, or a source and the images made from it)
instead of images keeps the interval honest when samples are not independent. For the mean the
resampled statistic is ``θ* = Σ_{c∈draw} S_c / Σ_{c∈draw} n_c`` with ``S_c``, ``n_c`` the sum and
count of cluster ``c`` (vectorised); other statistics are computed per resample. With fewer than
two clusters no interval can be estimated and ``ci`` is ``(None, None)``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Default number of bootstrap resamples.
N_RESAMPLES = 2000
#: Default confidence level of every interval.
CONFIDENCE = 0.95
#: Group label of samples whose group is unknown (never part of difference/ratio).
UNKNOWN_GROUP = "unknown"

Statistic = str | Callable[[np.ndarray], float]


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its bootstrap confidence interval.

    Attributes:
        value: the statistic on all samples (``None`` when there are none).
        ci: ``(low, high)`` percentile-bootstrap interval, ``(None, None)`` when it cannot be estimated.
        n: number of samples.
        clusters: number of independent clusters the interval was resampled over.
    """

    value: float | None
    ci: tuple[float | None, float | None]
    n: int
    clusters: int = 0

    @property
    def has_ci(self) -> bool:
        return self.ci[0] is not None and self.ci[1] is not None

    def excludes(self, null: float) -> bool:
        """Whether the interval lies entirely on one side of ``null`` (a two-sided test at level α)."""
        return self.has_ci and (self.ci[0] > null or self.ci[1] < null)  # type: ignore[operator]

    def to_dict(self, digits: int = 5) -> dict[str, Any]:
        return {
            "value": _round(self.value, digits),
            "ci": [_round(self.ci[0], digits), _round(self.ci[1], digits)],
            "n": self.n,
            "clusters": self.clusters,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Estimate:
        ci = data.get("ci") or [None, None]
        return cls(
            value=data.get("value"), ci=(ci[0], ci[1]), n=int(data.get("n", 0)), clusters=int(data.get("clusters", 0))
        )


@dataclass(frozen=True)
class GroupedMetric:
    """A metric overall and by group (fairlearn ``MetricFrame`` shape) with bootstrap CIs.

    Attributes:
        name: the metric's name (``"skin_delta_ita"`` …).
        overall: the estimate on every sample.
        by_group: ``{group: Estimate}`` in sorted group order.
        difference: ``max − min`` of the eligible group values (see the module docstring), or ``None``.
        ratio: ``min / max`` of the eligible group values, or ``None``.
        statistic: ``"mean"``, ``"median"`` or the callable's name.
        confidence: the intervals' confidence level.
    """

    name: str
    overall: Estimate
    by_group: dict[str, Estimate] = field(default_factory=dict)
    difference: float | None = None
    ratio: float | None = None
    statistic: str = "mean"
    confidence: float = CONFIDENCE
    method: str = "expanded"

    def to_dict(self, digits: int = 5) -> dict[str, Any]:
        """The ``results.json`` form: ``{"overall", "by_group", "difference", "ratio"}``."""
        return {
            "overall": self.overall.to_dict(digits),
            "by_group": {group: est.to_dict(digits) for group, est in self.by_group.items()},
            "difference": _round(self.difference, digits),
            "ratio": _round(self.ratio, digits),
            "statistic": self.statistic,
            "confidence": self.confidence,
            "ci_method": self.method,
        }


def _round(value: float | None, digits: int) -> float | None:
    if value is None:
        return None
    value = float(value)
    return round(value, digits) if np.isfinite(value) else None


def _statistic(statistic: Statistic) -> tuple[str, Callable[[np.ndarray], float]]:
    if callable(statistic):
        return getattr(statistic, "__name__", "statistic"), statistic
    functions: dict[str, Callable[[np.ndarray], float]] = {"mean": np.mean, "median": np.median}
    if statistic not in functions:
        raise ValueError(f"statistic must be 'mean', 'median' or a callable, got {statistic!r}")
    return statistic, functions[statistic]


def _cluster_codes(n: int, clusters: Sequence[Hashable] | np.ndarray | None) -> np.ndarray:
    if clusters is None:
        return np.arange(n)
    labels = list(clusters)
    if len(labels) != n:
        raise ValueError(f"clusters has {len(labels)} entries but there are {n} values")
    _, codes = np.unique(np.asarray([str(c) for c in labels]), return_inverse=True)
    return codes.astype(np.int64)


@functools.lru_cache(maxsize=4096)
def interval_levels(confidence: float, n_clusters: int, method: str = "expanded") -> tuple[float, float]:
    """The percentiles ``(100·α′/2, 100·(1 − α′/2))`` of the bootstrap distribution (module docstring)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    alpha = 1.0 - confidence
    if method == "percentile":
        half = alpha / 2.0
    elif method == "expanded":
        from scipy.stats import norm, t

        if n_clusters < 2:
            raise ValueError("the expanded percentile interval needs at least 2 clusters")
        z = np.sqrt(n_clusters / (n_clusters - 1.0)) * t.ppf(1.0 - alpha / 2.0, n_clusters - 1)
        half = float(norm.cdf(-z))
    else:
        raise ValueError(f"method must be 'expanded' or 'percentile', got {method!r}")
    return 100.0 * half, 100.0 * (1.0 - half)


def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    *,
    clusters: Sequence[Hashable] | np.ndarray | None = None,
    statistic: Statistic = "mean",
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    method: str = "expanded",
) -> tuple[float | None, float | None]:
    """Bootstrap interval of ``statistic(values)``, resampling ``clusters`` (see the module docstring)."""
    data = np.asarray(values, dtype=np.float64)
    if data.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {data.shape}")
    interval_levels(confidence, 2, method)  # validates confidence and method
    if clusters is None:  # each value is its own cluster: resample in value order, so the row order cannot matter
        data = np.sort(data)
    codes = _cluster_codes(len(data), clusters)
    n_clusters = int(codes.max()) + 1 if len(codes) else 0
    if n_clusters < 2:
        return (None, None)
    name, function = _statistic(statistic)
    rng = np.random.default_rng(seed)
    if name == "mean":
        sums = np.bincount(codes, weights=data, minlength=n_clusters)
        counts = np.bincount(codes, minlength=n_clusters).astype(np.float64)
        chunk = max(1, 10_000_000 // n_clusters)  # bounded memory: chunk × C cluster draws at a time
        parts = []
        for start in range(0, int(n_resamples), chunk):
            draws = rng.integers(0, n_clusters, size=(min(chunk, int(n_resamples) - start), n_clusters))
            parts.append(sums[draws].sum(axis=1) / counts[draws].sum(axis=1))
        boot = np.concatenate(parts)
    else:
        members = [np.flatnonzero(codes == c) for c in range(n_clusters)]
        boot = np.array(
            [
                function(data[np.concatenate([members[c] for c in rng.integers(0, n_clusters, n_clusters)])])
                for _ in range(int(n_resamples))
            ]
        )
    low, high = np.percentile(boot, interval_levels(confidence, n_clusters, method))
    return float(low), float(high)


def estimate(
    values: Sequence[float] | np.ndarray,
    *,
    clusters: Sequence[Hashable] | np.ndarray | None = None,
    statistic: Statistic = "mean",
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    method: str = "expanded",
) -> Estimate:
    """``statistic(values)`` with its :func:`bootstrap_ci`; non-finite values are dropped first."""
    data = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(data)
    cluster_array = None if clusters is None else np.asarray([str(c) for c in clusters], dtype=object)[keep]
    data = data[keep]
    if len(data) == 0:
        return Estimate(value=None, ci=(None, None), n=0, clusters=0)
    _, function = _statistic(statistic)
    n_clusters = len(set(cluster_array.tolist())) if cluster_array is not None else len(data)
    ci = bootstrap_ci(
        data,
        clusters=cluster_array,
        statistic=statistic,
        confidence=confidence,
        n_resamples=n_resamples,
        seed=seed,
        method=method,
    )
    return Estimate(value=float(function(data)), ci=ci, n=len(data), clusters=n_clusters)


def between_groups(values: Mapping[str, float]) -> tuple[float | None, float | None]:
    """``(difference, ratio)`` of group values: ``max − min`` and ``min / max`` (``None`` on mixed signs or zero)."""
    finite = [float(v) for v in values.values() if v is not None and np.isfinite(v)]
    if len(finite) < 2:
        return None, None
    low, high = min(finite), max(finite)
    difference = high - low
    same_sign = all(v > 0 for v in finite) or all(v < 0 for v in finite)
    ratio = (low / high if high > 0 else high / low) if same_sign else None
    return difference, ratio


def grouped_metric(
    values: Sequence[float] | np.ndarray,
    groups: Sequence[Hashable | None],
    *,
    name: str = "",
    clusters: Sequence[Hashable] | np.ndarray | None = None,
    statistic: Statistic = "mean",
    confidence: float = CONFIDENCE,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    min_group_size: int = 2,
    exclude_groups: Sequence[str] = (UNKNOWN_GROUP,),
    method: str = "expanded",
) -> GroupedMetric:
    """Compute a metric overall and per group, with percentile-bootstrap CIs.

    Args:
        values: one value per sample (``NaN``/``None`` entries are dropped).
        groups: the group of each sample; ``None`` becomes :data:`UNKNOWN_GROUP`.
        name: the metric's name, carried into the result.
        clusters: the independent unit of each sample (resampled together); default: each sample.
        statistic: ``"mean"`` (default), ``"median"`` or a callable on a 1-D array.
        confidence: CI level.
        n_resamples: bootstrap resamples ``B``.
        seed: seed of ``numpy.random.default_rng`` (the same seed gives the same intervals).
        method: ``"expanded"`` (default) or ``"percentile"`` (see the module docstring).
        min_group_size: groups smaller than this are reported but left out of difference/ratio.
        exclude_groups: groups reported but left out of difference/ratio.

    Returns:
        A :class:`GroupedMetric`. For a ratio, when the group values are ``v_g``:
        ``difference = max v_g − min v_g``, ``ratio = min v_g / max v_g`` (same strict sign only).
    """
    data = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    labels = [UNKNOWN_GROUP if g is None or (isinstance(g, float) and np.isnan(g)) else str(g) for g in groups]
    if len(labels) != len(data):
        raise ValueError(f"groups has {len(labels)} entries but there are {len(data)} values")
    cluster_list = None if clusters is None else [str(c) for c in clusters]
    if cluster_list is not None and len(cluster_list) != len(data):
        raise ValueError(f"clusters has {len(cluster_list)} entries but there are {len(data)} values")
    stat_name, _ = _statistic(statistic)
    options = {
        "statistic": statistic,
        "confidence": confidence,
        "n_resamples": n_resamples,
        "seed": seed,
        "method": method,
    }
    overall = estimate(data, clusters=cluster_list, **options)  # type: ignore[arg-type]
    by_group: dict[str, Estimate] = {}
    for group in sorted(set(labels)):
        index = [i for i, g in enumerate(labels) if g == group]
        by_group[group] = estimate(
            data[index],
            clusters=None if cluster_list is None else [cluster_list[i] for i in index],
            **options,  # type: ignore[arg-type]
        )
    eligible = {
        g: e.value
        for g, e in by_group.items()
        if g not in exclude_groups and e.n >= min_group_size and e.value is not None
    }
    difference, ratio = between_groups(eligible)  # type: ignore[arg-type]
    return GroupedMetric(
        name=name,
        overall=overall,
        by_group={g: e for g, e in by_group.items() if e.n > 0},
        difference=difference,
        ratio=ratio,
        statistic=stat_name,
        confidence=confidence,
        method=method,
    )
