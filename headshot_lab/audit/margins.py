"""The audit's metric specs, defined once: margin that matters, minimum sample, flag rules, plain words.

Significance is not relevance: a 0.2° ΔITA can have an interval that excludes 0 and still be a
shift nobody could see. Every judged metric therefore has a **minimum effect of interest** ``m``
(its *margin*, measured from the metric's no-effect value ``θ₀``) and a **minimum sample** ``n_min``
(independent clusters, i.e. people or source photos; for detectability images per side). With
the metric's ``(1 − α)`` interval ``[L, U]`` (:mod:`headshot_lab.audit.fairness`; Hall's skewness-corrected t
of the mean over people; the plain t for the skin shift: :attr:`MetricSpec.interval`, :data:`INTERVAL_REASON`)
the verdict is

* ``"flag"`` — the *whole* interval lies past the margin: ``L ≥ θ₀ + m`` (direction ``above``) or
  ``U ≤ θ₀ − m`` (``below``). With ``m = 0`` (a config may ask for it) the bound is strict
  (``L > θ₀``), so a zero-width interval at the no-effect value never flags;
* ``"ok"`` — equivalence shown: the interval lies strictly inside the margin on every judged side
  (``U < θ₀ + m`` for ``above``, ``L > θ₀ − m`` for ``below``; equivalence by two one-sided tests, each at level α/2);
* ``"not_enough_to_tell"`` — fewer than ``n_min`` clusters, no interval, or the interval reaches
  past the margin without clearing it.

Under a true effect of exactly 0 an interval with correct coverage clears ``θ₀ + m`` with
probability at most ``α/2`` (2.5 %) for any ``m ≥ 0``, and far less for ``m > 0``: the simulation in
``tests/test_audit_calibration_sim.py`` measures it.

=======================  ===============  ==========  ======  ==========================================
metric                   flag             direction   m       n_min
=======================  ===============  ==========  ======  ==========================================
``skin_delta_ita``       skin_lightening  above       1°      4  (θ₀ = 0; positive ΔITA = lighter)
                         skin_darkening   below
``identity_delta``       identity_drift   below       0.02    4  (θ₀ = 0; cosine)
``identity_cosine``      identity_drift   below       —       4  (only with ``identity_threshold``:
                                                                 ``U < threshold``)
``texture_ratio``        over_smoothing   below       0.15    4  (θ₀ = 1: ratio ≤ 0.85)
``detectability_auroc``  detectable       above       0.1     8 per side (θ₀ = 0.5: AUROC ≥ 0.6)
``age_ratio``            looks_younger    below       5 %     8  (θ₀ = 1: output / source apparent age;
                         looks_older      above                     shown as −8 % for 0.92)
``skin_delta_e2000``     — (verdict only) above       2       4  (θ₀ = 0)
``skin_monk_shift``      — (verdict only) both        1       4  (θ₀ = 0; Monk steps, + = darker)
=======================  ===============  ==========  ======  ==========================================

Config margins (``margins:`` in ``eval/configs/*.yaml``) use the same keys and the same meaning
(distance from ``θ₀``) and override these defaults; ``identity_threshold`` is an absolute floor on
``identity_cosine``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Direction = Literal["above", "below"]
Status = Literal["flag", "ok", "not_enough_to_tell"]

#: The three verdicts, in the order a reader meets them.
STATUSES: tuple[str, ...] = ("flag", "ok", "not_enough_to_tell")


@dataclass(frozen=True)
class FlagRule:
    """One flag of a metric: raised when the interval lies wholly past the margin in ``direction``.

    Attributes:
        flag: the flag's name (``skin_lightening`` …), or ``None`` for a verdict-only metric.
        direction: ``"above"`` (``L ≥ θ₀ + m``) or ``"below"`` (``U ≤ θ₀ − m``).
        words: plain words of the verdict (``"Your skin looks lighter"``).
    """

    flag: str | None
    direction: Direction
    words: str


@dataclass(frozen=True)
class MetricSpec:
    """How one metric is judged (see the module docstring).

    Attributes:
        name: the metric's key in ``results.json`` (``skin_delta_ita`` …).
        label: short human name.
        unit: appended to numbers in sentences (``"°"``, ``""``).
        null: the no-effect value ``θ₀`` (``None``: only with an absolute threshold).
        margin: default minimum effect of interest ``m`` (distance from ``θ₀``); ``None``: not judged.
        reason: why this margin.
        min_n: fewest independent clusters (detectability: images per side) for any verdict.
        rules: the flags, one per judged direction.
        kept: plain words of ``"ok"`` (``"Your skin tone was kept"``).
        question: plain words of what could not be told (``"whether your skin tone was kept"``).
        pattern: number format for sentences.
        margin_key: the key of the margin in a config's ``margins`` (default: ``name``).
        log_scale: estimate on ``log v`` (a ratio; :func:`headshot_lab.audit.fairness.grouped_metric`).
        as_change: a ratio shown in sentences as a change from 1 with ``pattern`` (``"{:+.1%}"``: 0.92 → −8.0 %).
        statistic: the location the verdict is about: ``"mean"`` (over people; every metric today) or
            ``"trimmed"`` (the 20 % trimmed mean over people with Yuen's interval,
            :func:`headshot_lab.audit.fairness.yuen_interval`; measured and not used — a ±3° random jitter then
            raises tone flags in 7 % of batches of 16: see :mod:`headshot_lab.audit.fairness`).
        interval: the interval of that mean (:data:`headshot_lab.audit.fairness.METHODS`): ``"hall_t"`` (Hall's
            skewness-corrected t, the default) or ``"t"`` (plain Student t), chosen per metric by the one-sided
            error at the margin measured on the calibration people (:mod:`eval.interval_choice`).
    """

    name: str
    label: str
    unit: str
    null: float | None
    margin: float | None
    reason: str
    min_n: int
    rules: tuple[FlagRule, ...]
    kept: str
    question: str
    pattern: str = "{:+.2f}"
    margin_key: str = ""
    log_scale: bool = False
    as_change: bool = False
    statistic: str = "mean"
    interval: str = "hall_t"

    @property
    def key(self) -> str:
        return self.margin_key or self.name

    @property
    def flags(self) -> tuple[str, ...]:
        return tuple(r.flag for r in self.rules if r.flag is not None)

    def resolve(self, margins: Mapping[str, float | None] | None = None) -> tuple[float, float] | None:
        """``(θ₀, m)`` with a config's ``margins`` applied; ``None`` when the metric is not judged.

        ``identity_cosine`` has no default: with ``identity_threshold = τ`` it is ``(τ, 0)``.
        """
        given = margins[self.key] if margins and self.key in margins else self.margin
        if self.null is None:
            return None if given is None else (float(given), 0.0)
        if given is None:
            return None
        return float(self.null), abs(float(given))


#: Minimum clusters of the paired metrics: the smallest n simulated in tests/test_audit_calibration_sim.py.
_MIN_N = 4
#: Apparent age needs 8 people: on the calibration people's own spread (``python -m eval.interval_choice``) a batch
#: of 4 catches the age canary in 5 % of resampled batches, and at the margin's edge its interval clears the
#: margin in 18 % (looks older; nominally 2.5 %): there a verdict is mostly noise (n = 8: 21 % and 10 %).
AGE_MIN_N = 8

#: Every judged metric of the audit, by ``results.json`` key (the one table of margins and flags).
METRIC_SPECS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec(
            name="skin_delta_ita",
            label="skin tone (ΔITA)",
            unit="°",
            null=0.0,
            margin=1.0,
            reason=(
                "1° ITA is the smallest tone change of interest: the Del Bino bands are 13–40° wide and a re-save, "
                "resize or crop moves a face's ITA by a fraction of a degree; smaller mean shifts are not a bias "
                "anyone would see"
            ),
            min_n=_MIN_N,
            rules=(
                FlagRule("skin_lightening", "above", "Your skin looks lighter"),
                FlagRule("skin_darkening", "below", "Your skin looks darker"),
            ),
            kept="Your skin tone was kept",
            question="whether your skin tone was kept",
            pattern="{:+.1f}",
            interval="t",  # see INTERVAL_REASON
        ),
        MetricSpec(
            name="identity_delta",
            label="identity change (cosine)",
            unit="",
            null=0.0,
            margin=0.02,
            reason=(
                "a drop of 0.02 in dlib cosine to the person's centroid: edits that keep the face (a 3° tone shift, "
                "smoothing) move it by a few thousandths, and an in-sample selfie baseline is biased by +0.010–0.019"
            ),
            min_n=_MIN_N,
            rules=(FlagRule("identity_drift", "below", "You look less like yourself"),),
            kept="You still look like yourself",
            question="whether you still look like yourself",
            pattern="{:+.3f}",
        ),
        MetricSpec(
            name="identity_cosine",
            label="identity cosine",
            unit="",
            null=None,
            margin=None,
            reason="an absolute floor, only when a config sets identity_threshold (e.g. 0.82 ≈ dlib's 0.6 distance)",
            min_n=_MIN_N,
            rules=(FlagRule("identity_drift", "below", "You look less like yourself than the threshold allows"),),
            kept="Your identity similarity is above the threshold",
            question="whether your identity similarity is above the threshold",
            pattern="{:.3f}",
            margin_key="identity_threshold",
        ),
        MetricSpec(
            name="texture_ratio",
            label="skin texture (output / source)",
            unit="",
            null=1.0,
            margin=0.15,
            reason=(
                "a texture ratio ≤ 0.85 is at least 15 % less skin detail energy, the 'plastic skin' complaint; "
                "resampling alone costs a few percent"
            ),
            min_n=_MIN_N,
            rules=(FlagRule("over_smoothing", "below", "Your skin looks smoothed"),),
            kept="Your skin texture was kept",
            question="whether your skin texture was kept",
            pattern="{:.2f}",
            log_scale=True,
        ),
        MetricSpec(
            name="detectability_auroc",
            label="detectability (C2ST AUROC)",
            unit="",
            null=0.5,
            margin=0.1,
            reason=(
                "AUROC ≥ 0.6: a classifier ranks a made image above a real one in at least 60 % of pairs; "
                "below that the two sets are practically indistinguishable"
            ),
            min_n=8,
            rules=(FlagRule("detectable", "above", "These look machine-made"),),
            kept="These do not look machine-made",
            question="whether these look machine-made",
            pattern="{:.2f}",
        ),
        MetricSpec(
            name="age_ratio",
            label="apparent age (output / source)",
            unit="",
            null=1.0,
            margin=0.05,
            reason=(
                "5 % of apparent age (2 years at 40; dlib's CC0 age network): a re-save with a small resize or crop "
                "moves one face's estimate by 6 % (SD of the log ratio, 58 real people), the network's own spread "
                "is 2–10 years a face and grows with age, so only a batch mean past 5 % is a drift"
            ),
            min_n=AGE_MIN_N,
            rules=(
                FlagRule("looks_younger", "below", "You look younger"),
                FlagRule("looks_older", "above", "You look older"),
            ),
            kept="Your apparent age was kept",
            question="whether your apparent age was kept",
            pattern="{:+.1%}",
            log_scale=True,
            as_change=True,
        ),
        MetricSpec(
            name="skin_delta_e2000",
            label="skin colour difference (ΔE00)",
            unit="",
            null=0.0,
            margin=2.0,
            reason="ΔE00 ≈ 1 is just noticeable side by side and ≈ 2 noticeable at a glance",
            min_n=_MIN_N,
            rules=(FlagRule(None, "above", "Your skin colour changed noticeably"),),
            kept="Your skin colour stayed within a glance-level difference",
            question="whether your skin colour changed noticeably",
            pattern="{:.1f}",
        ),
        MetricSpec(
            name="skin_monk_shift",
            label="Monk scale steps (+ = darker)",
            unit=" steps",
            null=0.0,
            margin=1.0,
            reason="one step of the 10-step Monk Skin Tone scale",
            min_n=_MIN_N,
            rules=(
                FlagRule(None, "below", "Your skin moved lighter on the Monk scale"),
                FlagRule(None, "above", "Your skin moved darker on the Monk scale"),
            ),
            kept="Your skin stayed on the same Monk step",
            question="whether your skin stayed on the same Monk step",
            pattern="{:+.1f}",
        ),
    )
}


def metric_statistic(metric: str) -> str:
    """The location ``metric`` is estimated and judged by: ``"trimmed"`` or ``"mean"`` (see :class:`MetricSpec`)."""
    spec = METRIC_SPECS.get(metric)
    return spec.statistic if spec is not None else "mean"


#: Why the skin shift is judged with the plain t interval and the rest with Hall's (``python -m
#: eval.interval_choice --from RUN --draws 2000`` on the calibration run: 56–58 people, each person's mean).
INTERVAL_REASON = (
    "Each metric takes the interval that misses its margin less often on the calibration people's own spread "
    "(resampled and moved to the margin's edge; n = 4, 8, 16; every generator; the sides the metric flags on), "
    "then the one with more power; a tie keeps Hall's. Worst one-sided miss (nominal 2.5 %), Hall vs plain t: "
    "skin shift 11.0 % vs 8.9 %, apparent age 12.1 % vs 14.2 % (n = 8 and 16; it needs 8), identity 2.1 % vs 1.6 % "
    "and texture 3.1 % vs 3.1 % "
    "(ties). The skin shift's spread is skewed by a few faces whose reading a re-save moves by 2–5° (near-neutral "
    "skin, where the angle turns fast), its long tail pointing towards no change: Hall's term widens the interval "
    "towards 0 whenever such a face is in the batch (darken:3 | reencode caught in 85 % of resampled batches of "
    "16 against 100 % with t), but the misses come from the batches without one. For the age ratio the long tail points "
    "away from no change (a few people made much younger), and there Hall's term holds the interval (the age "
    "canary caught in 62 % of resampled batches of 16 against 44 % with t)"
)


def metric_interval(metric: str) -> str:
    """The interval method ``metric`` is judged by (:attr:`MetricSpec.interval`; ``"hall_t"`` when not a judged metric)."""
    spec = METRIC_SPECS.get(metric)
    return spec.interval if spec is not None else "hall_t"


def estimation(metric: str) -> dict[str, Any]:
    """How :func:`headshot_lab.audit.fairness.grouped_metric` estimates ``metric``: ``log_scale``, ``statistic``, ``method``."""
    return {"log_scale": is_log_scale(metric), "statistic": metric_statistic(metric), "method": metric_interval(metric)}


def is_log_scale(metric: str) -> bool:
    """Whether ``metric`` is estimated on the log scale (a ratio such as ``texture_ratio``)."""
    spec = METRIC_SPECS.get(metric)
    return spec is not None and spec.log_scale


#: Default margins by config key (derived from :data:`METRIC_SPECS`).
DEFAULT_MARGINS: dict[str, float | None] = {spec.key: spec.margin for spec in METRIC_SPECS.values()}


@dataclass(frozen=True)
class Verdict:
    """One metric's verdict (see the module docstring).

    Attributes:
        metric: the metric's key.
        status: ``"flag"``, ``"ok"`` or ``"not_enough_to_tell"``.
        flag: the flag raised (``None`` unless ``status == "flag"`` and the rule names one).
        sentence: plain words first, numbers after.
        value, ci, n: the estimate, its interval and the sample size used for ``min_n``.
        min_n: the spec's minimum sample.
        null, margin: ``θ₀`` and ``m`` as applied.
        group: the group judged (``None`` = overall).
    """

    metric: str
    status: Status
    flag: str | None
    sentence: str
    value: float | None
    ci: tuple[float | None, float | None]
    n: int
    min_n: int
    null: float
    margin: float
    group: str | None = None

    def bound(self, direction: Direction) -> float:
        """The bound a rule compares with: ``θ₀ + m`` (above) or ``θ₀ − m`` (below)."""
        return self.null + self.margin if direction == "above" else self.null - self.margin

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "status": self.status,
            "flag": self.flag,
            "sentence": self.sentence,
            "value": self.value,
            "ci": list(self.ci),
            "n": self.n,
            "min_n": self.min_n,
            "null": self.null,
            "margin": self.margin,
            "group": self.group,
        }


def past(low: float, high: float, direction: Direction, null: float, margin: float) -> bool:
    """Whether ``[low, high]`` lies wholly past the margin (``≥``; strict when ``margin == 0``)."""
    if direction == "above":
        return low >= null + margin and low > null
    return high <= null - margin and high < null


def inside(low: float, high: float, direction: Direction, null: float, margin: float) -> bool:
    """Whether ``[low, high]`` lies strictly inside the margin on ``direction``'s side (equivalence)."""
    return high < null + margin if direction == "above" else low > null - margin


def sample_size(entry: Mapping[str, Any], spec: MetricSpec) -> int:
    """The sample compared with ``min_n``: clusters (else ``n``); detectability: the smaller side."""
    if spec.name == "detectability_auroc" and entry.get("n_real") is not None and entry.get("n_fake") is not None:
        return int(min(entry["n_real"], entry["n_fake"]))
    return int(entry.get("clusters") or entry.get("n") or 0)


def format_value(spec: MetricSpec, value: float) -> str:
    """``value`` as sentences show it: ``pattern`` + ``unit``, a ratio with ``as_change`` as ``value − 1`` (0.92 → −8.0%)."""
    shown = value - 1.0 if spec.as_change else value
    return spec.pattern.format(shown).replace("-", "−") + spec.unit


def _numbers(spec: MetricSpec, value: float | None, low: float | None, high: float | None) -> str:
    if value is None:
        return "no value"
    text = format_value(spec, value)
    if low is not None and high is not None:
        text += f" [{format_value(spec, low)}, {format_value(spec, high)}]"
    return text


def _ok_words(spec: MetricSpec, null: float, margin: float) -> str:
    """``"within ±1°"`` (two-sided) or ``"above 0.85"`` / ``"below 0.60"`` (one-sided)."""
    directions = {r.direction for r in spec.rules}
    if directions == {"above", "below"}:
        half = spec.pattern.format(margin).lstrip("+") + spec.unit
        return f"within ±{half}" if null == 0 or spec.as_change else f"within {null} ± {half}"
    if "above" in directions:
        return "below " + format_value(spec, null + margin).lstrip("+")
    return "above " + format_value(spec, null - margin).lstrip("+")


def _flag_words(spec: MetricSpec, rule: FlagRule, null: float, margin: float) -> str:
    """``"past +1°"``, ``"at or below 0.85"``, ``"at or above 0.60"``."""
    if len(spec.rules) > 1 and (null == 0 or spec.as_change):
        return "past " + format_value(spec, null + margin if rule.direction == "above" else null - margin)
    bound = format_value(spec, null + margin if rule.direction == "above" else null - margin).lstrip("+")
    return ("at or above " if rule.direction == "above" else "at or below ") + bound


def judge(
    spec: MetricSpec,
    entry: Mapping[str, Any] | None,
    margins: Mapping[str, float | None] | None = None,
    *,
    group: str | None = None,
    min_n: int | None = None,
) -> Verdict | None:
    """The verdict of one ``{"value", "ci", "n", "clusters"}`` entry; ``None`` when the metric is not judged.

    ``min_n`` raises the spec's minimum (e.g. the runner's ``min_group_clusters`` for groups).
    """
    resolved = spec.resolve(margins)
    if resolved is None:
        return None
    null, margin = resolved
    entry = entry or {}
    value = entry.get("value")
    ci = entry.get("ci") or [None, None]
    low, high = ci[0], ci[1]
    n = sample_size(entry, spec)
    need = max(spec.min_n, int(min_n or 0))
    numbers = _numbers(spec, value, low, high)
    limit = _ok_words(spec, null, margin)

    def verdict(status: Status, sentence: str, flag: str | None = None) -> Verdict:
        return Verdict(spec.name, status, flag, sentence, value, (low, high), n, need, null, margin, group)

    if value is None or n < need:
        return verdict(
            "not_enough_to_tell",
            f"Not enough photos to tell {spec.question} (n = {n}, at least {need} needed).",
        )
    if low is None or high is None:
        return verdict("not_enough_to_tell", f"Not enough photos to tell {spec.question}: {numbers}, no interval.")
    for rule in spec.rules:
        if past(low, high, rule.direction, null, margin):
            return verdict("flag", f"{rule.words}: {numbers}, {_flag_words(spec, rule, null, margin)}.", rule.flag)
    if all(inside(low, high, r.direction, null, margin) for r in spec.rules):
        return verdict("ok", f"{spec.kept}: {numbers}, {limit}.")
    return verdict(
        "not_enough_to_tell",
        f"Not enough photos to tell {spec.question}: {numbers} is not clearly {limit}.",
    )


# ---- the measured calibration (read by the app's help text) ----------------------------------------

#: What ``python -m eval calibrate --config calibration --sizes 16,50 --seeds 20`` measured (README "Calibration"): on
#: trials of ``n`` distinct real people (58 in all, registry photos), the share of trials that raised a
#: flag — any flag for a harmless change (``false_alarm``), the planted change's own flag for a canary
#: (``power``). Every entry: ``(plain words, rate at n = 16)``. Goal (issue 13): ≤ 0.05 and ≥ 0.90.
MEASURED_CALIBRATION: dict[str, Any] = {
    "people": 58,
    "n": 16,
    "trials": 60,
    "false_alarm": {
        "null": ("the photo itself", 0.0),
        "reencode": ("a re-save with a small resize or crop", 0.0),
        "relight": ("brighter, darker, warmer or cooler light", 0.0),
        "tone_jitter:3 | reencode": ("random tone noise of ±3° (no shift on average)", 0.02),
    },
    "power": {
        "skin_lightening": ("skin lightened by 3°", 1.0),
        "skin_darkening": ("skin darkened by 3°", 1.0),
        "identity_drift": ("the face half-blended with another person", 1.0),
        "over_smoothing": ("skin smoothed (bilateral filter)", 1.0),
        "looks_younger": ("the face made to look younger", 0.63),
    },
}


def calibration_words(calibration: Mapping[str, Any] | None = None) -> list[str]:
    """Plain-words lines (Markdown) of :data:`MEASURED_CALIBRATION`: what was checked and how often it was right."""
    table = MEASURED_CALIBRATION if calibration is None else calibration
    n, people = table["n"], table["people"]
    lines = [
        f"How the audit was checked: on {people} different real people, in groups of {n}, "
        "harmless changes it must not flag and planted changes it must catch "
        "(the aim: at most 5 % false flags, at least 90 % caught):",
        "",
        "| change | flagged in |",
        "|---|---|",
    ]
    for words, rate in table["false_alarm"].values():
        lines.append(f"| harmless: {words} | {rate:.0%} {'✓' if rate <= 0.05 else '⚠ (too often)'} |")
    for words, rate in table["power"].values():
        lines.append(f"| planted: {words} | {rate:.0%} {'✓' if rate >= 0.90 else '⚠ (missed too often)'} |")
    lines += [
        "",
        f"With {people} people only {people // n} groups of {n} are fully independent, so each share is a rough "
        "figure; the README's Calibration section has the intervals and the reasons for each miss.",
    ]
    return lines
