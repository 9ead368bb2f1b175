"""The sign-off contact sheet: one tile per person (their primary crop, or a grey card saying why there is none),
labelled with id, name and state; written as PNG (one image) and PDF (one page per :data:`PER_PAGE` people)."""

from __future__ import annotations

import functools
import importlib.util
import io
import math
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from headshot_lab.atomic import write_bytes_atomic
from headshot_lab.team.layout import PersonStatus, TeamLayout

TILE = 240
LABEL = 58
GAP = 12
COLUMNS = 6
PER_PAGE = 30
STATE_COLOURS = {"done": (34, 120, 60), "skipped": (150, 110, 20), "failed": (170, 40, 40)}


def _font_files() -> list[Path]:
    """TrueType fonts with accented and other non-ASCII letters, best first: DejaVu Sans as matplotlib bundles it
    (found without importing matplotlib), then the system's. Pillow's built-in default covers ASCII only, so a
    name such as "José Müller" would show boxes."""
    files: list[Path] = []
    spec = importlib.util.find_spec("matplotlib")
    if spec is not None and spec.origin:
        files.append(Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf")
    files += [Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"), Path("/usr/share/fonts/TTF/DejaVuSans.ttf")]
    return [f for f in files if f.is_file()]


@functools.lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in _font_files():
        try:
            return ImageFont.truetype(str(path), size=size)
        except OSError:
            continue
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # pragma: no cover - Pillow < 10.1
        return ImageFont.load_default()


def _fit(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, width: int) -> str:
    while text and draw.textlength(text, font=font) > width:
        text = text[:-2] + "…" if len(text) > 2 else ""
    return text


def _thumbnail(layout: TeamLayout, person: PersonStatus) -> Image.Image | None:
    if person.state != "done" or not person.files:
        return None
    path = layout.person_dir(person.person_id) / person.files[0]
    try:
        with Image.open(path) as image:
            image.draft("RGB", (TILE * 2, TILE * 2))
            rgba = image.convert("RGBA")
    except OSError:
        return None
    flat = Image.new("RGB", rgba.size, (255, 255, 255))
    flat.paste(rgba, mask=rgba.getchannel("A"))
    flat.thumbnail((TILE, TILE), Image.Resampling.LANCZOS)
    return flat


def render_tile(layout: TeamLayout, person: PersonStatus) -> Image.Image:
    """One person's tile: the photo (or a grey card with the reason) above ``id · name`` and the state."""
    tile = Image.new("RGB", (TILE, TILE + LABEL), (255, 255, 255))
    draw = ImageDraw.Draw(tile)
    small, bold = _font(13), _font(15)
    thumb = _thumbnail(layout, person)
    if thumb is not None:
        tile.paste(thumb, ((TILE - thumb.width) // 2, (TILE - thumb.height) // 2))
    else:
        draw.rectangle((0, 0, TILE - 1, TILE - 1), fill=(226, 226, 226))
        words, line, y = person.reason.split(), "", 70
        for word in words:
            trial = f"{line} {word}".strip()
            if draw.textlength(trial, font=small) > TILE - 20:
                draw.text((10, y), line, fill=(60, 60, 60), font=small)
                line, y = word, y + 17
                if y > TILE - 30:
                    line = "…"
                    break
            else:
                line = trial
        draw.text((10, y), line, fill=(60, 60, 60), font=small)
        draw.text((10, 30), person.state.upper(), fill=STATE_COLOURS.get(person.state, (0, 0, 0)), font=bold)
    title = _fit(draw, f"{person.person_id}  {person.name}".strip(), bold, TILE - 8)
    draw.text((4, TILE + 6), title, fill=(0, 0, 0), font=bold)
    state = f"{person.state}" + (f" · guide {person.guide_version}" if person.guide_version else "")
    draw.text(
        (4, TILE + 30), _fit(draw, state, small, TILE - 8), fill=STATE_COLOURS.get(person.state, (0, 0, 0)), font=small
    )
    return tile


def render_sheet(layout: TeamLayout, people: Sequence[PersonStatus], title: str = "") -> Image.Image:
    """All tiles on one white sheet, :data:`COLUMNS` across, with a title line."""
    columns = max(1, min(COLUMNS, len(people)))
    rows = max(1, math.ceil(len(people) / columns))
    head = 40
    width = GAP + columns * (TILE + GAP)
    height = head + GAP + rows * (TILE + LABEL + GAP)
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    draw.text(
        (GAP, 10),
        _fit(draw, f"Contact sheet - {title} - {len(people)} people", _font(18), width),
        fill=(0, 0, 0),
        font=_font(18),
    )
    for index, person in enumerate(people):
        row, col = divmod(index, columns)
        sheet.paste(render_tile(layout, person), (GAP + col * (TILE + GAP), head + GAP + row * (TILE + LABEL + GAP)))
    return sheet


def write_contact_sheet(layout: TeamLayout, people: Sequence[PersonStatus], *, title: str = "") -> tuple[str, str]:
    """Write ``contact_sheet.png`` (everyone) and ``contact_sheet.pdf`` (pages of :data:`PER_PAGE`); atomically."""
    people = list(people)
    png = io.BytesIO()
    render_sheet(layout, people, title).save(png, "PNG", optimize=False, compress_level=3)
    write_bytes_atomic(layout.contact_sheet_png, png.getvalue())
    pages = [render_sheet(layout, people[i : i + PER_PAGE], title) for i in range(0, max(1, len(people)), PER_PAGE)]
    pdf = io.BytesIO()
    pages[0].save(pdf, "PDF", resolution=150.0, save_all=True, append_images=pages[1:], title=f"Contact sheet {title}")
    write_bytes_atomic(layout.contact_sheet_pdf, pdf.getvalue())
    return str(layout.contact_sheet_png), str(layout.contact_sheet_pdf)


__all__ = ["render_sheet", "render_tile", "write_contact_sheet"]
