"""Markdown and captions the app shows; the style swatches; the "no base model" notice."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from headshot_lab.errors import ModelUnavailableError
from headshot_lab.reporting import number, table_cell
from headshot_lab.ui.state import code_settings

#: Marks in glyphs every font has (a headless browser has no colour-emoji font: ✅ would be a box).
OK_MARK, WARN_MARK, NOTE_MARK, NO_MARK = "✓", "⚠", "ℹ", "✗"
#: Severities the checklist uses for problems that never block (the rest block the photo).
ADVISORY = frozenset({"warning", "advisory", "info"})
#: Where a status hands technical details on: everything after it goes to "For the operator".
OPERATOR_MARK = "\n\n<!-- operator -->\n"
#: Words a visitor should not have to read (settings, commands, library and model names, metadata standards).
_OPERATOR_WORDS = re.compile(
    r"(?<![`\w])[A-Z][A-Z0-9]*_[A-Z0-9_]*[A-Z0-9](?![`\w])"  # environment variables
    r"|(?<![\w-])--[a-z][a-z0-9-]+"  # command-line flags
    r"|headshot-lab [a-z]|python -m|pip install|`[^`]*`"  # commands and code spans
    r"|8-bit Adam|bitsandbytes|AdamW|\bIPTC\b|trainedAlgorithmicMedia|ArcFace|insightface|IP-Adapter"
    r"|DreamBooth|ControlNet|diffusers|\bCUDA\b|safetensors|Hub id|model_index|\bC2PA\b|\bXMP\b"
    r"|\bencoder\b|[\w.-]+/[\w.-]+\.py|/tmp/|/home/|/work/",
    re.IGNORECASE,
)
#: Plain words for errors whose own text is for the operator, by error code.
VISITOR_ERRORS = {
    "model_unavailable": (
        "A model this step needs is not set up on this server, so this step is off.",
        "Use the studio retouch (tab 3, lower down): it works on your own photos without any model.",
    ),
    "c2pa_config": (
        "The server's signing setup is incomplete, so nothing was exported.",
        "Please tell the person who runs this page; your headshots are safe and you can try again later.",
    ),
    "device_unavailable": (
        "The server's graphics card is not available right now.",
        "Try again in a few minutes, or use the studio retouch in tab 3.",
    ),
}
#: The step after each action, in plain words (``{usable}`` etc. are filled in by :func:`next_step`).
NEXT_STEPS = {
    "check_ready": "**Next:** tab 2 · Learn identity (or tab 3 · Studio retouch, which needs no training).",
    "check_retouch": "**Next:** tab 3 · Studio retouch — it works with the photos marked ✓.",
    "check_fix": "**Next:** replace the photos marked ⚠ (the reason is under each), then press “Check photos” again.",
    "train": "**Next:** tab 3 · Generate headshots.",
    "generate": "**Next:** tab 4 · Select the best — it ranks every headshot against your own photos.",
    "retouch": "**Next:** tab 4 · Select the best — it ranks every headshot against your own photos.",
    "select": "**Next:** click the headshots you want (click again to drop one), choose crops and format, then Export.",
    "export": "**Next:** download the zip; then tab 5 · Audit shows what the AI changed about you.",
    "audit": "**Next:** when you have what you need, press “Delete my data now” at the bottom of the page.",
    "delete": "**Next:** to start again, upload new photos in tab 1.",
}


def duration_words(seconds: float) -> str:
    """``"45 s"`` under 90 seconds, else ``"12 min"`` (rounded)."""
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def next_step(action: str, *, usable: int | None = None, total: int | None = None, model: bool = True) -> str:
    """The "Next:" line after ``action``; for the checklist it depends on how many photos are usable."""
    if action == "check":
        if not usable:
            return NEXT_STEPS["check_fix"]
        if usable == total and model:
            return NEXT_STEPS["check_ready"]
        return NEXT_STEPS["check_retouch"] if not model or usable else NEXT_STEPS["check_fix"]
    return NEXT_STEPS[action]


def with_operator_details(visitor: str, details: Sequence[str] | str) -> str:
    """``visitor`` words, then technical ``details`` behind :data:`OPERATOR_MARK` (shown only to the operator)."""
    lines = [details] if isinstance(details, str) else [d for d in details if d]
    return visitor + (OPERATOR_MARK + "\n".join(f"- {line}" for line in lines) if lines else "")


def split_for_visitor(status: str, error: Mapping[str, Any] | None = None) -> tuple[str, str]:
    """``(visitor words, operator details)`` of an action's status.

    Known operator errors (:data:`VISITOR_ERRORS`) get plain words; whatever follows :data:`OPERATOR_MARK`,
    and any line naming a setting, command, library or model (:data:`_OPERATOR_WORDS`), goes to the operator.
    """
    visitor, _, operator = (status or "").partition(OPERATOR_MARK)
    moved = [operator] if operator else []
    code = (error or {}).get("code", "")
    if code in VISITOR_ERRORS:
        message, fix = VISITOR_ERRORS[code]
        return f"{WARN_MARK} **{message}**\n\n{fix}", "\n\n".join([visitor, *moved]).strip()
    kept = []
    for line in visitor.split("\n"):
        if line.startswith("|") or not _OPERATOR_WORDS.search(line):  # tables hold names, not settings
            kept.append(line)
        else:
            moved.append(line)
    text = "\n".join(kept).strip()
    if error and not text.replace("*", "").strip(f"{WARN_MARK}️ "):
        text = f"{WARN_MARK} **This step could not run on this server.** The details are under “For the operator”."
    elif error and len(kept) < len(visitor.split("\n")):
        text += "\n\n(The technical details are under “For the operator” at the bottom of the page.)"
    return text, "\n\n".join(m.strip() for m in moved if m.strip())


def _is_advisory(problem: Mapping[str, Any]) -> bool:
    return str(problem.get("severity", "")) in ADVISORY


def photo_caption(name: str, photo: Mapping[str, Any]) -> str:
    """A short caption: the mark, the name and the first problem (the fix is in the table above)."""
    problems = photo.get("problems") or []
    if photo.get("ok") and not problems:
        return f"{OK_MARK} {name}"
    if photo.get("ok"):
        return f"{OK_MARK} {name} — {NOTE_MARK} {problems[0]['message']}"
    first = problems[0] if problems else {"message": "could not be checked", "fix": ""}
    return f"{WARN_MARK} {name} — {first['message']} {first.get('fix', '')}".strip()


def format_capture_report(report: Mapping[str, Any], *, model: bool = True) -> str:
    """The checklist as Markdown: the verdict, set problems, each photo's problems with their fixes, the next step."""
    photos = report["photos"]
    usable = sum(1 for p in photos if p["ok"])
    verdict = f"{OK_MARK} Ready" if report["set"]["ok"] and usable == len(photos) else f"{WARN_MARK} Some things to fix"
    lines = [f"### {verdict} — {usable} of {len(photos)} photos usable", ""]
    for problem in report["set"]["problems"]:
        lines.append(f"- **{problem['message']}** — {problem['fix']}")
    lines += ["", "| photo | faces | result |", "|---|---|---|"]
    for photo in photos:
        if photo["problems"]:
            result = "<br>".join(
                f"{NOTE_MARK if _is_advisory(p) else WARN_MARK} {table_cell(p['message'])} *{table_cell(p['fix'])}*"
                for p in photo["problems"]
            )
        else:
            result = f"{OK_MARK} ok"
        lines.append(f"| {table_cell(photo['path'])} | {photo['faces']} | {result} |")
    lines += ["", next_step("check", usable=usable, total=len(photos), model=model)]
    return "\n".join(lines)


def _reason_words(candidate: Any) -> str:
    return "; ".join(str(getattr(reason, "message", "") or reason.code) for reason in candidate.reasons)


def candidate_caption(candidate: Any, *, picked: bool | None = None) -> str:
    """``#rank · likeness · skin tone`` for a kept headshot, the reasons in words for a rejected one."""
    scores = candidate.scores
    identity = scores.get("identity")
    identity_text = "" if identity is None else f" · likeness {identity:.2f}"
    pick = "" if picked is None else (f"{OK_MARK} picked · " if picked else "click to pick · ")
    if candidate.kept:
        return f"{pick}#{candidate.rank}{identity_text} · skin tone {scores.get('delta_ita') or 0:+.1f}°"
    return f"{pick}{NO_MARK} {_reason_words(candidate)}{identity_text}"


def rank_order(candidates: Sequence[Any]) -> list[Any]:
    """Kept candidates by rank (1 first), then the rejected ones in their given order."""
    kept = sorted((c for c in candidates if c.kept), key=lambda c: c.rank if c.rank is not None else 1 << 30)
    return kept + [c for c in candidates if not c.kept]


def toggle_caption(caption: str, picked: bool) -> str:
    """``caption`` with its pick mark set to ``picked`` (the gallery shows what is picked)."""
    for prefix in (f"{OK_MARK} picked · ", "click to pick · "):
        caption = caption.removeprefix(prefix)
    return (f"{OK_MARK} picked · " if picked else "click to pick · ") + caption


def _compared_with(reference: str | None) -> str:
    """Plain words for what a candidate's ΔITA was measured against."""
    return {"source": "the photo it was made from", "median selfie": "your middle-toned photo"}.get(
        reference or "", "–"
    )


def format_selection(payload: Mapping[str, Any], total: int) -> str:
    """The kept headshots by rank, the rejected ones with reasons in words, the next step.

    ``likeness`` is the cosine similarity of face embeddings to the person's own photos (1 = identical);
    ``skin tone`` the ΔITA in degrees (+ = lighter).
    """
    lines = [f"### {len(payload['kept'])} of {total} headshots kept", ""]
    if payload["kept"]:
        lines += [
            "| rank | headshot | likeness (1 = you) | sharpness | skin tone change ° | skin compared with |",
            "|---|---|---|---|---|---|",
        ]
        for rank, entry in enumerate(payload["kept"], start=1):
            s = entry["scores"]
            lines.append(
                f"| {rank} | {table_cell(entry['path'])} | {number(s.get('identity'), '{:.3f}')} | {number(s.get('sharpness'), '{:.0f}')} "
                f"| {number(s.get('delta_ita'), '{:+.2f}')} | {_compared_with(s.get('delta_ita_vs'))} |"
            )
    if payload["rejected"]:
        lines += ["", "**Left out:**", ""]
        for entry in payload["rejected"]:
            reasons = "; ".join(r["message"] for r in entry["reasons"])
            lines.append(f"- {entry['path']} — {reasons}")
    lines += ["", next_step("select")]
    encoder = payload.get("encoder")
    return with_operator_details("\n".join(lines), [f"identity encoder: {encoder}"] if encoder else [])


#: Plain words for the provenance kinds written into each file.
KIND_WORDS = {"generated": "labelled inside the file as AI-generated", "retouched": "labelled as an AI-edited photo"}


def format_export(
    rows: Sequence[Mapping[str, Any]],
    notes: Sequence[str],
    consistency: Sequence[Mapping[str, Any]],
    file_notes: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """The files written, each with its own notes (upscaled, circle as PNG …), then the general notes."""
    file_notes = file_notes or {}
    lines = [
        f"### {OK_MARK} {len(rows)} files written, zipped byte for byte",
        "",
        "| file | label | notes |",
        "|---|---|---|",
    ]
    operator = [f"{row['file']}: {n}" for row in rows for n in file_notes.get(row["file"], ()) if _for_operator(n)]
    for row in rows:
        label = KIND_WORDS.get(str(row.get("kind")), "labelled as made with AI")
        said = "<br>".join(table_cell(n) for n in file_notes.get(row["file"], ()) if not _for_operator(n)) or "–"
        lines.append(f"| {table_cell(row['file'])} | {label} | {said} |")
    for entry in consistency:
        lines.append(
            f"\nTeam consistency ({entry['kind']}): **{entry['score']:.2f}** (1 = identical framing and backdrop)"
        )
    if notes:
        lines += ["", *(f"- {note}" for note in notes)]
    lines += ["", next_step("export")]
    details = [f"{row['file']}: {row.get('disclosure')}" for row in rows if row.get("disclosure")]
    return with_operator_details("\n".join(lines), [*operator, *details])


def _for_operator(note: str) -> bool:
    """A note with a command or a setting in it (``For the operator: …``): it goes in the collapsed section."""
    return note.startswith("For the operator:")


#: Short forms of the export notes for a caption (the status table keeps the full sentences).
_SHORT_NOTES = (
    (re.compile(r"upscaled ×([\d.]+)"), "upscaled ×{0} from a smaller photo"),
    (re.compile(r"extended to fill (\d+%)"), "backdrop extended ({0})"),
    (re.compile(r"Zoomed in ([\d.]+)×"), "zoomed in {0}×"),
    (re.compile(r"Saved as PNG"), "saved as PNG: round, see-through corners"),
    (re.compile(r"No face was found"), "no face found: a centred crop"),
    (re.compile(r"Low resolution"), "low resolution: may look soft"),
    (
        re.compile(r"Too little detail for a sharp print.*: ([\d.]+)× short"),
        "too little detail to print sharp ({0}× short)",
    ),
    (re.compile(r"Enough pixels for a print at"), "print detail partly made by an upscaler"),
)


def short_note(note: str) -> str:
    """A caption-sized form of an export note (``"… upscaled ×1.27 …"`` → ``"upscaled ×1.27 from a smaller photo"``)."""
    for pattern, short in _SHORT_NOTES:
        if match := pattern.search(note):
            return short.format(*match.groups())
    return note


def export_caption(name: str, notes: Sequence[str]) -> str:
    """A file's caption: its name, then its notes in short, so a warning sits next to the file."""
    return " · ".join([name, *(short_note(note) for note in notes if not _for_operator(note))])


#: Plain titles of the audit's plots, by file stem.
PLOT_TITLES = {
    "delta_ita_by_group": "Skin tone change (+ = lighter), with its 95 % range",
    "identity_by_group": "Likeness to your own photos (1 = identical)",
    "texture_by_group": "Skin texture kept (1 = as in your photos)",
    "detectability_roc": "Can a computer tell these from real photos? (diagonal = no)",
}


def plot_caption(stem: str) -> str:
    """The plain title of an audit plot (file stem), e.g. ``delta_ita_by_group`` → "Skin tone change …"."""
    if stem.startswith("drift_"):
        return f"How the results change with {stem.removeprefix('drift_').replace('_', ' ')}"
    return PLOT_TITLES.get(stem, stem.replace("_", " ").capitalize())


def embed_images(markdown: str, images: Mapping[str, Any]) -> str:
    """``markdown`` with each ``![alt](name)`` whose ``name`` is in ``images`` (name → PNG path) embedded as a
    ``data:`` URI, so the report's pictures show wherever the text goes (no link to a file that is not served)."""
    import base64

    def embed(match: re.Match[str]) -> str:
        name = match.group(2)
        path = images.get(name)
        if path is None:
            return match.group(0)
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        return f"![{plot_caption(Path(name).stem)}](data:image/png;base64,{data})"

    return re.sub(r"!\[([^\]]*)\]\(([^)\s]+)\)", embed, markdown)


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


#: Why Learn identity and Generate are off, in plain words (the operator's side: :func:`base_model_setup`).
NO_GENERATOR = (
    f"{NOTE_MARK} **Learning your likeness and generating new headshots are off on this server:** no image "
    "generator is set up here. The **studio retouch** (tab 3, lower down) works without one — it puts your own "
    "photo on a studio backdrop with even light."
)


def base_model_setup() -> str | None:
    """The operator's text (setting names, commands) when no base model is configured, else ``None``."""
    from headshot_lab.models import resolve_base

    try:
        resolve_base()
    except ModelUnavailableError as exc:
        return f"**{code_settings(exc.message)}** {code_settings(exc.fix)}"
    return None


def base_model_notice() -> str | None:
    """:data:`NO_GENERATOR` (plain words for a visitor) when no base model is configured, else ``None``."""
    return NO_GENERATOR if base_model_setup() is not None else None


#: The capture checklist a first-time visitor reads before uploading (the seeds' checklist).
CAPTURE_GUIDANCE = f"""### What photos to upload
- **15–20 recent photos** of you (from the last few months); one is enough for the studio retouch.
- **Vary them:** different angles (front, a little left, a little right), light, outfits and backgrounds.
- **Only you** in each photo, your whole face visible and sharp — no sunglasses, hats or hands in front.
- **No filters**, beauty modes or heavy edits; a **neutral expression** (a light smile is fine).
- Phone photos are fine: hold the phone at eye level, about an arm's length away, facing a window.

Examples below are drawings: {OK_MARK} good, {NO_MARK} to avoid."""
#: (what the drawing shows, caption) of the capture examples, in the order shown.
CAPTURE_EXAMPLES = (
    ("good", f"{OK_MARK} facing the camera, even light"),
    ("turned", f"{OK_MARK} a little turned: vary the angle"),
    ("sunglasses", f"{NO_MARK} sunglasses or a hat"),
    ("backlit", f"{NO_MARK} light behind you, face dark"),
    ("filter", f"{NO_MARK} filters or colour effects"),
    ("group", f"{NO_MARK} other people in the photo"),
    ("blurry", f"{NO_MARK} blurry or far away"),
)


def draw_example(kind: str, size: tuple[int, int] = (150, 180)) -> np.ndarray:
    """A simple drawn figure (no photo of anyone) showing a capture ``kind`` from :data:`CAPTURE_EXAMPLES`."""
    from PIL import Image, ImageDraw, ImageFilter

    width, height = size
    scale = 4  # drawn large and reduced: smooth edges
    backdrop = (250, 250, 248) if kind == "backlit" else (196, 208, 218)
    image = Image.new("RGB", (width * scale, height * scale), backdrop)
    draw = ImageDraw.Draw(image)
    # Several skin tones across the examples: no tone stands for "good" or "bad".
    tones = {"turned": (141, 98, 72), "group": (188, 140, 110), "filter": (172, 120, 92), "blurry": (120, 84, 64)}
    skin, hair, shirt = tones.get(kind, (224, 182, 150)), (58, 42, 34), (60, 90, 140)

    def person(cx: float, cy: float, r: float, turn: float = 0.0) -> None:
        x, y, k = cx * width * scale, cy * height * scale, r * width * scale
        draw.ellipse((x - 2.2 * k, y + 1.3 * k, x + 2.2 * k, y + 4.6 * k), fill=shirt)  # shoulders
        draw.rectangle((x - 0.35 * k, y + 0.8 * k, x + 0.35 * k, y + 1.6 * k), fill=skin)  # neck
        draw.ellipse((x - 0.85 * k, y - 1.15 * k, x + 0.85 * k, y + 1.05 * k), fill=skin)  # face
        draw.chord((x - 0.9 * k, y - 1.25 * k, x + 0.9 * k, y + 0.2 * k), 180, 360, fill=hair)  # hair
        eye_y, dx = y + 0.05 * k, turn * 0.35 * k
        for side in (-1, 1):
            ex = x + side * 0.34 * k + dx
            if kind == "sunglasses":
                draw.rounded_rectangle(
                    (ex - 0.28 * k, eye_y - 0.16 * k, ex + 0.28 * k, eye_y + 0.2 * k), 0.08 * k, fill=(15, 15, 15)
                )
            else:
                draw.ellipse((ex - 0.09 * k, eye_y - 0.07 * k, ex + 0.09 * k, eye_y + 0.07 * k), fill=(35, 30, 30))
        if kind == "sunglasses":
            draw.rectangle(
                (x - 0.06 * k + dx, eye_y - 0.04 * k, x + 0.06 * k + dx, eye_y + 0.02 * k), fill=(15, 15, 15)
            )
            draw.chord((x - 0.95 * k, y - 1.6 * k, x + 0.95 * k, y - 0.3 * k), 180, 360, fill=(120, 40, 40))  # hat
        draw.arc(
            (x - 0.3 * k + dx, y + 0.3 * k, x + 0.3 * k + dx, y + 0.65 * k),
            20,
            160,
            fill=(120, 60, 60),
            width=int(0.06 * k),
        )
        draw.line((x + dx, eye_y + 0.1 * k, x + 1.3 * dx, y + 0.35 * k), fill=(170, 120, 100), width=int(0.05 * k))

    if kind == "group":
        for cx in (0.2, 0.5, 0.8):
            person(cx, 0.42, 0.13)
    elif kind == "blurry":
        person(0.5, 0.55, 0.12)
    else:
        person(0.5, 0.4, 0.22, turn=1.0 if kind == "turned" else 0.0)
    image = image.resize(size, Image.Resampling.LANCZOS)
    if kind == "backlit":  # the person against the light: a dark, grey silhouette
        pixels = np.asarray(image).astype(np.float32)
        figure = np.abs(pixels - np.array(backdrop, np.float32)).sum(axis=2) > 30
        figure &= pixels.min(axis=2) < 240
        grey = pixels.mean(axis=2, keepdims=True) * 0.3
        glow = np.zeros(figure.shape, bool)
        glow[: int(0.5 * height), int(0.6 * width) :] = True  # a bright window behind, beside the head
        lit = np.where(glow[..., None] & ~figure[..., None], np.array([255.0, 246.0, 200.0]), pixels)
        image = Image.fromarray(np.where(figure[..., None], grey, lit).astype(np.uint8))
    if kind == "blurry":
        image = image.filter(ImageFilter.GaussianBlur(3))
    drawn = np.asarray(image).astype(np.float64)
    if kind == "filter":  # a strong warm tint with lifted blacks, as a photo filter does
        drawn = 0.55 * drawn + 0.45 * np.array([255.0, 150.0, 200.0])
    return np.clip(drawn, 0, 255).astype(np.uint8)


def capture_examples(size: tuple[int, int] = (150, 180)) -> list[tuple[np.ndarray, str]]:
    """The good and bad capture examples as ``(drawing, caption)`` pairs (:data:`CAPTURE_EXAMPLES`)."""
    return [(draw_example(kind, size), caption) for kind, caption in CAPTURE_EXAMPLES]


def audit_help() -> str:
    """How to read the audit card, in plain words, built from the one table of margins (``METRIC_SPECS``)."""
    from headshot_lab.audit.margins import METRIC_SPECS, calibration_words, format_value

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
            shown = (
                format_value(spec, bound).lstrip("+") if spec.as_change else f"{bound:g}{spec.unit}".replace("-", "−")
            )
            when.append(f"{rule.words.lower()}: {sign} {shown}")
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
