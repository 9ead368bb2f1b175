"""Markdown and captions the app shows; the style swatches; the "no base model" notice."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from headshot_lab.errors import ModelUnavailableError
from headshot_lab.reporting import number, table_cell
from headshot_lab.ui.state import RETOUCH_OFFER, code_settings


def photo_caption(name: str, photo: Mapping[str, Any]) -> str:
    problems = photo.get("problems") or []
    if photo.get("ok") and not problems:
        return f"✅ {name}"
    if photo.get("ok"):
        return f"✅ {name} — note: {problems[0]['message']}"
    first = problems[0] if problems else {"message": "could not be checked", "fix": ""}
    return f"⚠️ {name} — {first['message']} {first.get('fix', '')}".strip()


def format_capture_report(report: Mapping[str, Any]) -> str:
    """The checklist as Markdown: the verdict, set problems, then each photo's problems with their fixes."""
    photos = report["photos"]
    usable = sum(1 for p in photos if p["ok"])
    verdict = "✅ Ready" if report["set"]["ok"] and usable == len(photos) else "⚠️ Some things to fix"
    lines = [f"### {verdict} — {usable} of {len(photos)} photos usable", ""]
    for problem in report["set"]["problems"]:
        lines.append(f"- **{problem['message']}** — {problem['fix']}")
    lines += ["", "| photo | faces | result |", "|---|---|---|"]
    for photo in photos:
        if photo["problems"]:
            result = "<br>".join(
                f"{'⚠️' if p.get('severity') != 'warning' else 'ℹ️'} {table_cell(p['message'])} *{table_cell(p['fix'])}*"
                for p in photo["problems"]
            )
        else:
            result = "✅ ok"
        lines.append(f"| {table_cell(photo['path'])} | {photo['faces']} | {result} |")
    return "\n".join(lines)


def candidate_caption(candidate: Any) -> str:
    scores = candidate.scores
    identity = scores.get("identity")
    identity_text = "" if identity is None else f" · identity {identity:.2f}"
    if candidate.kept:
        return f"#{candidate.rank} ✅{identity_text} · ΔITA {scores.get('delta_ita') or 0:+.1f}°"
    reasons = "; ".join(reason.code for reason in candidate.reasons)
    return f"✗ {reasons}{identity_text}"


def _compared_with(reference: str | None) -> str:
    """Plain words for what a candidate's ΔITA was measured against."""
    return {"source": "the photo it was made from", "median selfie": "your middle-toned photo"}.get(
        reference or "", "–"
    )


def format_selection(payload: Mapping[str, Any], total: int) -> str:
    lines = [f"### {len(payload['kept'])} of {total} headshots kept (encoder: {payload['encoder']})", ""]
    if payload["kept"]:
        lines += [
            "| rank | headshot | identity | sharpness | ΔITA ° | skin compared with |",
            "|---|---|---|---|---|---|",
        ]
        for rank, entry in enumerate(payload["kept"], start=1):
            s = entry["scores"]
            lines.append(
                f"| {rank} | {table_cell(entry['path'])} | {number(s.get('identity'), '{:.3f}')} | {number(s.get('sharpness'), '{:.0f}')} "
                f"| {number(s.get('delta_ita'), '{:+.2f}')} | {_compared_with(s.get('delta_ita_vs'))} |"
            )
    if payload["rejected"]:
        lines += ["", "**Rejected:**", ""]
        for entry in payload["rejected"]:
            reasons = "; ".join(f"{r['code']}: {r['message']}" for r in entry["reasons"])
            lines.append(f"- {entry['path']} — {reasons}")
    return "\n".join(lines)


def format_export(
    rows: Sequence[Mapping[str, Any]], notes: Sequence[str], consistency: Sequence[Mapping[str, Any]]
) -> str:
    lines = [f"### ✅ {len(rows)} files written, zipped byte for byte", "", "| file | label |", "|---|---|"]
    lines += [f"| {table_cell(row['file'])} | {row['kind']}: {table_cell(row['disclosure'])} |" for row in rows]
    for entry in consistency:
        lines.append(
            f"\nTeam consistency ({entry['kind']}): **{entry['score']:.2f}** (1 = identical framing and backdrop)"
        )
    if notes:
        lines += ["", *(f"- {note}" for note in notes)]
    return "\n".join(lines)


def style_swatches(size: tuple[int, int] = (160, 200)) -> list[tuple[np.ndarray, str]]:
    """One swatch per bundled style: its backdrop gradient with the title, captioned with the description."""
    from PIL import Image, ImageDraw

    from headshot_lab.styles import list_styles, load_style

    swatches = []
    width, height = size
    for name in list_styles():
        style = load_style(name)
        rows = np.asarray(style.backdrop.gradient(height), dtype=np.uint8)
        image = Image.fromarray(np.ascontiguousarray(np.broadcast_to(rows[:, None, :], (height, width, 3))))
        draw = ImageDraw.Draw(image)
        light = float(np.mean(rows[: height // 4])) > 140
        draw.text((10, 10), style.title, fill=(20, 20, 20) if light else (240, 240, 240))
        swatches.append((np.asarray(image), f"{name}: {style.description}"))
    return swatches


def base_model_notice() -> str | None:
    """A plain sentence when no base model is configured (no network access), else ``None``."""
    from headshot_lab.models import resolve_base

    try:
        resolve_base()
    except ModelUnavailableError as exc:
        return f"ℹ️ **{code_settings(exc.message)}** {code_settings(exc.fix)}\n\n{RETOUCH_OFFER}"
    return None


def audit_help() -> str:
    """How to read the audit card, in plain words, built from the one table of margins (``METRIC_SPECS``)."""
    from headshot_lab.audit.margins import METRIC_SPECS, calibration_words

    lines = [
        "Each line of the card is one of three answers:",
        "",
        "- ✓ **kept** — the whole 95 % interval lies inside the margin that matters;",
        "- ⚠ **flag** — the whole interval lies past it;",
        "- ? **not enough to tell** — too few photos, or the interval reaches both sides. A small batch "
        "usually gets this answer: it is the honest one.",
        "",
        "| what | flagged when the whole interval is | needs at least |",
        "|---|---|---|",
    ]
    for spec in METRIC_SPECS.values():
        if spec.margin is None or spec.null is None or not spec.flags:
            continue
        when = []
        for rule in spec.rules:
            bound = spec.null + spec.margin if rule.direction == "above" else spec.null - spec.margin
            sign = "≥" if rule.direction == "above" else "≤"
            when.append(f"{rule.words.lower()}: {sign} {bound:g}{spec.unit}")
        size = "photos per side" if spec.name == "detectability_auroc" else "photos"
        lines.append(f"| {spec.label} | {'; '.join(when)} | {spec.min_n} {size} |")
    lines += [
        "",
        "Skin tone is the ITA° angle of your skin in CIELAB (a colour measurement, not a Fitzpatrick type). "
        "When a headshot keeps the photo's scene, light and white balance are taken out first, so a brighter or "
        "warmer picture does not count as lighter skin; on a new backdrop the colours are compared as photographed.",
        "",
        *calibration_words(),
    ]
    return "\n".join(lines)
