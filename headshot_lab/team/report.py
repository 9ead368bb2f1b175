"""The team report (``team_report.json`` + ``report.md``) and the team consistency check with outliers named.

Consistency
-----------
Each person's primary crop is measured once (:func:`measure_person`): the framing (eye line ``e_y/H``, face size
``F/H`` and face axis ``c_x/W``, :func:`headshot_lab.export.measure_portrait`), the backdrop colour (median CIELAB
of the top corners) and the colour grade (:func:`grade_stats`: L* = brightness, C*ab = saturation, b* = warmth, read on the
backdrop — the one region whose colour is known — and compared within the people on the same approved backdrop).

**Outlier rule** (:func:`robust_outliers`). Over the team, for one measure ``x``: the median ``m`` and the
scaled median absolute deviation ``s = 1.4826 · median|xᵢ − m|`` (≈ the standard deviation for normal data, and
untouched by a few outliers, so an outlier cannot hide itself by inflating the spread as it does with a mean and a
standard deviation). A person is an outlier when

``|xᵢ − m| ≥ max(3.5 · s, margin)``

— a robust z of 3.5 (Iglewicz & Hoaglin's modified z-score cut) *and* at least a practical ``margin`` that a
viewer would notice side by side (:data:`MARGINS`; e.g. 3 % of the height for the eye line, ΔE2000 5 for the
backdrop). The margin keeps a team that is uniform by construction (spread ≈ 0) from naming someone over an
invisible difference; the robust z keeps a naturally varied measure from naming the tail of normal variation.
Below :data:`MIN_PEOPLE` measured people the report says "not enough people to tell" instead of naming anyone.
For the backdrop the measure is one-sided: each person's ΔE2000 to the median backdrop of the people on the same
approved backdrop (``m`` and ``s`` taken over those distances, flagging only large ones).

The null the rule is tested against: a team of real photos through one guide names no outlier; a planted change
(one person's file re-graded, re-framed or on another backdrop) is named. ``tests/test_team_report.py`` also
measures the false-alarm rate by seeded simulation (normal spreads below the margins: ≤ 1 % of teams).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from headshot_lab.atomic import write_text_atomic
from headshot_lab.team.layout import PersonStatus, TeamLayout

if TYPE_CHECKING:
    from headshot_lab.team.run import TeamRun

ROBUST_Z = 3.5
MAD_SCALE = 1.4826
MIN_PEOPLE = 4
MARGINS: dict[str, float] = {
    "eye_line": 0.03,  # fraction of the height (export.TEAM_TOLERANCES)
    "face_size": math.log(1.10),  # log of the size ratio: 10 % larger or smaller
    "face_axis": 0.05,  # fraction of the width
    "backdrop": 5.0,  # ΔE2000: clearly visible side by side (export.TEAM_TOLERANCES)
    "brightness": 5.0,  # backdrop L*, against the median of the people on the same approved backdrop
    "saturation": 4.0,  # backdrop C*ab, likewise
    "warmth": 4.0,  # backdrop b*, likewise
}
"""The practical margin of each measure: below it a difference is not named, however unusual."""
WORDS = {
    "eye_line": "eye line",
    "face_size": "face size",
    "face_axis": "face position",
    "backdrop": "backdrop colour",
    "brightness": "brightness",
    "saturation": "colour saturation",
    "warmth": "warmth",
}


# ============================================================================== measuring one person
def grade_stats(pixels: np.ndarray) -> dict[str, float]:
    """The colour grade of a finished portrait, read on its backdrop (the one region whose colour is known: the
    approved backdrop, the same for everyone on it): ``brightness`` = L*, ``warmth`` = b*, ``saturation`` =
    C*ab = √(a*² + b*²) of the median CIELAB of the top corners (:func:`headshot_lab.export.backdrop_lab`).

    Not measured over the whole frame on purpose: there, clothes, hair and skin tone (an orange suit, a dark
    complexion) would read as a "grade" and name people for what they wear or who they are.
    """
    from headshot_lab import export as exporting

    lightness, a, b = exporting.backdrop_lab(np.asarray(pixels)[..., :3])
    return {
        "brightness": round(float(lightness), 3),
        "saturation": round(float(math.hypot(a, b)), 3),
        "warmth": round(float(b), 3),
    }


def measure_person(path: str | Path, *, backdrop: str = "") -> dict[str, Any]:
    """Framing, backdrop colour and colour grade of one person's primary crop (``status.consistency``)."""
    from headshot_lab import export as exporting
    from headshot_lab.io import load_rgb

    pixels = load_rgb(path, min_side=0)
    measure = exporting.measure_portrait(pixels, Path(path).stem)
    return {
        "file": Path(path).name,
        "backdrop": backdrop,
        "framing": measure.to_dict(),
        "grade": grade_stats(pixels),
    }


# ============================================================================== the outlier rule
def robust_outliers(
    values: Mapping[str, float], margin: float, *, z: float = ROBUST_Z, min_n: int = MIN_PEOPLE, one_sided: bool = False
) -> dict[str, Any]:
    """Name the outliers of ``{person: value}`` (module docstring): ``|x − m| ≥ max(z · 1.4826 · MAD, margin)``.

    ``one_sided``: only ``x − m ≥ threshold`` counts (distances, where small is good).

    Returns:
        ``{"n", "median", "spread" (1.4826·MAD), "threshold", "enough", "outliers": {person: deviation}}``;
        with fewer than ``min_n`` values ``enough`` is false and nobody is named.
    """
    names = list(values)
    x = np.array([float(values[k]) for k in names], dtype=float)
    if len(x) == 0:
        return {"n": 0, "median": None, "spread": None, "threshold": None, "enough": False, "outliers": {}}
    median = float(np.median(x))
    spread = MAD_SCALE * float(np.median(np.abs(x - median)))
    threshold = max(z * spread, margin)
    deviation = x - median if one_sided else np.abs(x - median)
    enough = len(x) >= min_n
    outliers = {names[i]: round(float(x[i] - median), 4) for i in range(len(x)) if enough and deviation[i] >= threshold}
    return {
        "n": len(x),
        "median": round(median, 4),
        "spread": round(spread, 4),
        "threshold": round(threshold, 4),
        "enough": enough,
        "outliers": outliers,
    }


def _backdrop_distances(measures: Mapping[str, dict[str, Any]]) -> dict[str, float]:
    """Each person's ΔE2000 to the median backdrop CIELAB of the people on the same approved backdrop."""
    from headshot_lab.skin import delta_e2000

    groups: dict[str, list[str]] = {}
    for person, measure in measures.items():
        groups.setdefault(str(measure.get("backdrop", "")), []).append(person)
    distances: dict[str, float] = {}
    for people in groups.values():
        labs = np.array([measures[p]["framing"]["backdrop_lab"] for p in people], dtype=float)
        centre = np.median(labs, axis=0)
        for person, lab in zip(people, labs, strict=True):
            distances[person] = float(delta_e2000(lab, centre))
    return distances


def _within_backdrop(values: Mapping[str, float], measures: Mapping[str, dict[str, Any]]) -> dict[str, float]:
    """``x − median(x of the people on the same approved backdrop)``: a slate backdrop is not a darker grade."""
    groups: dict[str, list[str]] = {}
    for person in values:
        groups.setdefault(str(measures[person].get("backdrop", "")), []).append(person)
    centred: dict[str, float] = {}
    for people in groups.values():
        centre = float(np.median([values[p] for p in people]))
        centred.update({p: float(values[p]) - centre for p in people})
    return centred


def team_consistency_check(people: Sequence[PersonStatus], current_version: str = "") -> dict[str, Any]:
    """The consistency section of the report: per measure the median, spread, threshold and outliers named."""
    measures = {p.person_id: p.consistency for p in people if p.state == "done" and p.consistency.get("framing")}
    framed = {k: m for k, m in measures.items() if m["framing"].get("face_found")}
    no_face = sorted(set(measures) - set(framed))
    series: dict[str, dict[str, float]] = {
        "eye_line": {k: m["framing"]["eye_line"] for k, m in framed.items()},
        "face_size": {k: math.log(m["framing"]["face_height"]) for k, m in framed.items()},
        "face_axis": {k: m["framing"]["center_x"] for k, m in framed.items()},
        "backdrop": _backdrop_distances(measures) if measures else {},
    }
    for key in ("brightness", "saturation", "warmth"):
        series[key] = _within_backdrop({k: m["grade"][key] for k, m in measures.items()}, measures)
    checks = {
        key: {**robust_outliers(values, MARGINS[key], one_sided=key == "backdrop"), "margin": round(MARGINS[key], 4)}
        for key, values in series.items()
    }
    outliers: dict[str, list[str]] = {}
    for key, check in checks.items():
        for person in check["outliers"]:
            outliers.setdefault(person, []).append(key)
    other_version = {
        p.person_id: p.guide_version
        for p in people
        if p.state == "done" and current_version and p.guide_version != current_version
    }
    for person in other_version:
        outliers.setdefault(person, []).append("guide_version")
    return {
        "people_measured": len(measures),
        "enough": len(measures) >= MIN_PEOPLE,
        "min_people": MIN_PEOPLE,
        "rule": "outlier when |x - median| >= max(3.5 * 1.4826 * MAD, margin)",
        "checks": checks,
        "outliers": {k: sorted(v) for k, v in sorted(outliers.items())},
        "no_face": no_face,
        "other_guide_version": other_version,
        "measures": measures,
    }


# ============================================================================== the report
def _checklist_totals(people: Sequence[PersonStatus]) -> dict[str, Any]:
    photos = sum(int(p.checklist.get("photos", 0) or 0) for p in people)
    usable = sum(int(p.checklist.get("usable", 0) or 0) for p in people)
    advisories: dict[str, int] = {}
    for p in people:
        for code in p.checklist.get("advisories", []) or []:
            advisories[code] = advisories.get(code, 0) + 1
    return {"photos": photos, "usable": usable, "left_out": photos - usable, "advisories_by_people": advisories}


def _audit_rows(people: Sequence[PersonStatus]) -> list[dict[str, Any]]:
    rows = []
    for p in people:
        if p.state != "done":
            continue
        audit = p.audit or {}
        rows.append(
            {
                "person_id": p.person_id,
                "group": audit.get("group"),
                "identity": audit.get("identity"),
                "delta_ita": audit.get("delta_ita"),
                "flags": audit.get("flags", []),
                "verdicts": audit.get("verdicts", {}),
                "error": audit.get("error"),
            }
        )
    return rows


def build_report(run: TeamRun) -> dict[str, Any]:
    """The ``team_report.json`` payload of a finished run (every person in the folder, not only this run's)."""
    people = run.people
    states = {s: [p.person_id for p in people if p.state == s] for s in ("done", "skipped", "failed")}
    return {
        "guide": {"name": run.guide.name, "version": run.guide.version, "sha256": run.guide.sha256},
        "mode": run.mode,
        "engine": {"kind": run.engine.kind, "workers": run.engine.workers, "address": run.engine.address},
        "counts": {k: len(v) for k, v in states.items()} | {"people": len(people)},
        "processed": list(run.processed),
        "kept": list(run.kept),
        "people": [
            {
                "person_id": p.person_id,
                "name": p.name,
                "role": p.role,
                "state": p.state,
                "reason": p.reason,
                "guide_version": p.guide_version,
                "files": list(p.files),
                "checklist": {k: v for k, v in p.checklist.items() if k not in {"files", "sources_sha256"}},
                "file_notes": _file_notes(p),
            }
            for p in people
        ],
        "roster_problems": list(run.roster_problems),
        "roster_notes": list(run.notes),
        "checklist": _checklist_totals(people),
        "audit": _audit_rows(people),
        "consistency": team_consistency_check(people, run.guide.version),
    }


OPERATOR = "For the operator: "  # a file note meant for the collapsed operator section (a command to run)


def _file_notes(person: PersonStatus) -> list[str]:
    """``"file: note"`` for each finished file with a warning (a print crop with too little real detail)."""
    files = person.checklist.get("files") if isinstance(person.checklist, dict) else None
    return [
        f"{Path(str(f.get('file', ''))).name}: {note}"
        for f in files or []
        if isinstance(f, dict)
        for note in f.get("notes") or []
    ]


def _one_line(text: str) -> str:
    """A reason on one line: its own lines joined with "; " (a checklist reason lists each photo)."""
    return "; ".join(part.strip(" -") for part in str(text).splitlines() if part.strip(" -"))


def _audit_verdict(row: dict[str, Any]) -> str:
    """One cell: the audit's flags, "not enough photos to tell" when every verdict says so, else "no problem found"."""
    if row.get("error"):
        return "the audit could not run"
    if row.get("flags"):
        return "flagged: " + ", ".join(row["flags"])
    verdicts = [v for v in (row.get("verdicts") or {}).values() if isinstance(v, dict)]
    if verdicts and all(v.get("status") == "not_enough_to_tell" for v in verdicts):
        needed = max(int(v.get("min_n") or 0) for v in verdicts)
        return f"not enough photos to tell (needs at least {needed})" if needed else "not enough photos to tell"
    return "no problem found"


def _fmt(value: Any, digits: int = 3) -> str:
    return "–" if value is None else (f"{value:.{digits}f}" if isinstance(value, float) else str(value))


def report_markdown(report: dict[str, Any]) -> str:
    """``report.md``: plain words first, details after, the operator's facts collapsed at the end."""
    counts, guide = report["counts"], report["guide"]
    consistency = report["consistency"]
    lines = [
        f"# Team headshots — style guide {guide['name']} {guide['version']}",
        "",
        f"**{counts['people']} people: {counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed.**",
        "",
    ]
    waiting = [p for p in report["people"] if p["state"] != "done"]
    if waiting:
        lines += ["## Who has no headshot yet, and why", ""]
        lines += [f"- **{p['person_id']}** {p['name']} — {p['state']}: {_one_line(p['reason'])}" for p in waiting]
        lines.append("")
    noted = [(p, note) for p in report["people"] for note in p.get("file_notes") or [] if OPERATOR not in note]
    if noted:
        lines += ["## Files that may not hold up", ""]
        lines += [f"- **{p['person_id']}** {p['name']} — {note}" for p, note in noted]
        lines.append("")
    if report["roster_problems"]:
        lines += ["## Roster rows that could not be used", ""]
        lines += [f"- {_one_line(r['reason'])}" for r in report["roster_problems"]]
        lines.append("")
    lines += ["## Does the team look consistent?", ""]
    if not consistency["enough"]:
        lines.append(
            f"Not enough people to tell: {consistency['people_measured']} finished, "
            f"the check needs at least {consistency['min_people']}."
        )
    elif not consistency["outliers"]:
        lines.append("Yes: nobody stands out in framing, eye line, backdrop or colour grade.")
    else:
        lines.append("These people stand out from the rest of the team:")
        checks = consistency["checks"]
        for person, keys in consistency["outliers"].items():
            parts = []
            for key in keys:
                if key == "guide_version":
                    parts.append(f"made with guide version {consistency['other_guide_version'][person]}")
                else:
                    dev = checks[key]["outliers"][person]
                    parts.append(
                        f"{WORDS[key]} (off by {dev:+.3g}; the team's usual spread is {checks[key]['spread']:.3g})"
                    )
            lines.append(f"- **{person}**: {', '.join(parts)}")
    if consistency["no_face"]:
        lines.append(
            f"No face found in the finished photo of {', '.join(consistency['no_face'])}: framing not checked."
        )
    lines.append("")
    totals = report["checklist"]
    lines += [
        "## Photo checklist",
        "",
        f"{totals['photos']} photos checked, {totals['usable']} usable, {totals['left_out']} left out.",
    ]
    if totals["advisories_by_people"]:
        tips = ", ".join(
            f"{code.replace('_', ' ')} ({n})" for code, n in sorted(totals["advisories_by_people"].items())
        )
        lines.append(f"Advice given, with how many people got it: {tips}.")
    lines += ["", "## Likeness and skin tone (each person against their own photos)", ""]
    lines += ["| person | ITA group | identity | ΔITA° | verdict |", "|---|---|---|---|---|"]
    for row in report["audit"]:
        flags = _audit_verdict(row)
        lines.append(
            f"| {row['person_id']} | {row['group'] or '–'} | {_fmt(row['identity'])} | {_fmt(row['delta_ita'], 2)} | {flags} |"
        )
    lines += ["", "## Everyone", "", "| person | name | role | state | files |", "|---|---|---|---|---|"]
    for p in report["people"]:
        lines.append(f"| {p['person_id']} | {p['name']} | {p['role']} | {p['state']} | {len(p['files'])} |")
    lines += [
        "",
        "<details><summary>For the operator</summary>",
        "",
        f"- guide sha256: `{guide['sha256']}`; mode `{report['mode']}`; engine `{report['engine']['kind']}` "
        f"({report['engine']['workers']} workers{', ' + report['engine']['address'] if report['engine']['address'] else ''})",
        f"- this run processed {len(report['processed'])} people and kept {len(report['kept'])} already done",
        f"- outlier rule: {consistency['rule']}; at least {consistency['min_people']} people; margins: "
        + ", ".join(f"{k} {v['margin']:.3g}" for k, v in consistency["checks"].items()),
        "- audit: identity = cosine to the person's own photos with the dlib encoder (not the generator's); "
        'ΔITA° > 0 = lighter; a person\'s audit card says "not enough to tell" below its minimum n',
    ]
    lines += [f"- roster: {note}" for note in report["roster_notes"]]
    lines += [
        f"- {p['person_id']}: {note.replace(OPERATOR, '')}"
        for p in report["people"]
        for note in p.get("file_notes") or []
        if OPERATOR in note
    ]
    lines += ["", "</details>", ""]
    return "\n".join(lines)


def write_report(run: TeamRun) -> dict[str, Any]:
    """Write ``team_report.json``, ``report.md`` and the contact sheet (PNG + PDF); return the report."""
    from headshot_lab.team.contact_sheet import write_contact_sheet

    layout = TeamLayout(run.out)
    report = build_report(run)
    write_text_atomic(layout.report_json, json.dumps(report, indent=2, ensure_ascii=False, default=str))
    write_text_atomic(layout.report_md, report_markdown(report))
    write_contact_sheet(layout, run.people, title=f"{run.guide.name} {run.guide.version}")
    return report


__all__ = [
    "MARGINS",
    "MIN_PEOPLE",
    "build_report",
    "grade_stats",
    "measure_person",
    "report_markdown",
    "robust_outliers",
    "team_consistency_check",
    "write_report",
]
