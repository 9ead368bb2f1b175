"""The team style guide: one versioned YAML file that fixes the look and the file specs of everyone.

::

    name: acme-directory          # letters, digits, . _ - (it goes into file names and metadata)
    version: "2026.1"             # required, a quoted string: "1", "2.0", "2026-12"
    style: team                   # a style preset (headshot_lab/styles/*.yaml): prompt, attire, light
    crops: [square, circle, banner, hires]   # headshot_lab.export.CROPS; the first is the primary crop
    format: jpeg                  # jpeg | png | webp
    quality: 92                   # JPEG/WebP quality 1–100
    colour_profile: sRGB          # the only profile written (every file embeds the sRGB ICC profile)
    backdrops:                    # 1–4 approved backdrops (2–4 is usual); people get the first unless
      - {name: light-grey, color: [200, 203, 208]}   # their roster row names another
      - {name: warm-white, color: [236, 232, 226]}
    colour_grade: {brightness: 1.0, contrast: 1.0, saturation: 1.0, warmth: 0.0}
    framing: {eye_line: 0.40, face_height: 0.40}   # fractions of the height (square and bio crops)
    naming: "{person_id}_{crop}.{ext}"   # fields: person_id, crop, ext, guide, version
    retention_days: 30            # inputs and intermediates are purged after this many days

Every field is checked, and a bad one is a :class:`GuideError` naming the field and what to write instead.
:attr:`StyleGuideSpec.sha256` is the SHA-256 of the *canonical* content (the validated fields as sorted,
compact JSON), so re-indenting or re-ordering the YAML keeps the hash, and any change of substance changes it.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from headshot_lab import export as exporting
from headshot_lab.errors import HeadshotLabError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,31}$")
SAFE_FILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
NAMING_FIELDS = ("person_id", "crop", "ext", "guide", "version")
FRAMED_CROPS = ("square", "bio")
"""The crops whose eye line and face height the guide's ``framing`` sets (circle and banner keep their own
geometry: the head must stay inside the circle, the banner leaves room for the profile photo)."""
DEFAULT_NAMING = "{person_id}_{crop}.{ext}"
KNOWN_KEYS = (
    "name",
    "version",
    "style",
    "crops",
    "format",
    "quality",
    "colour_profile",
    "backdrops",
    "colour_grade",
    "framing",
    "naming",
    "retention_days",
    "description",
)
MAX_BACKDROPS = 4
MAX_RETENTION_DAYS = 3650


class GuideError(HeadshotLabError):
    code = "bad_style_guide"


@dataclass(frozen=True)
class ApprovedBackdrop:
    name: str
    color: tuple[int, int, int]


@dataclass(frozen=True)
class StyleGuideSpec:
    """A validated team style guide (see the module docstring)."""

    name: str
    version: str
    style: str
    crops: tuple[str, ...]
    format: str
    quality: int
    colour_profile: str
    backdrops: tuple[ApprovedBackdrop, ...]
    colour_grade: exporting.ColourGrade
    eye_line: float
    face_height: float
    naming: str
    retention_days: int
    description: str = ""
    source: str = ""
    sha256: str = field(default="", compare=False)

    @property
    def label(self) -> str:
        """``"name version"``: how the guide is named in reports and file metadata."""
        return f"{self.name} {self.version}"

    @property
    def primary_crop(self) -> str:
        return self.crops[0]

    def backdrop(self, name: str = "") -> ApprovedBackdrop:
        """The approved backdrop called ``name`` (default: the first).

        Raises:
            GuideError: ``unknown_backdrop`` — ``name`` is not approved in this guide.
        """
        if not name:
            return self.backdrops[0]
        for backdrop in self.backdrops:
            if backdrop.name.lower() == name.strip().lower():
                return backdrop
        raise GuideError(
            f"The backdrop {name!r} is not approved in the style guide {self.label}.",
            fix=f"Use one of: {', '.join(b.name for b in self.backdrops)}.",
            code="unknown_backdrop",
        )

    def crop_spec(self, crop: str) -> exporting.CropSpec:
        """The crop's geometry with the guide's framing (square, bio) and no per-photo zoom or slide."""
        spec = exporting.get_crop(crop)
        if crop in FRAMED_CROPS and spec.size is not None:
            spec = replace(spec, eye_line=self.eye_line, face_height=self.face_height)
        return replace(spec, max_shift=0.0, max_zoom=1.0)

    def style_guide(self, backdrop: str = "", crop: str | None = None) -> exporting.StyleGuide:
        """This guide as :class:`headshot_lab.export.StyleGuide` for one crop (default: the primary)."""
        return exporting.StyleGuide(
            crop=self.crop_spec(crop or self.primary_crop),
            backdrop=self.backdrop(backdrop).color,
            grade=self.colour_grade,
            name=self.name,
        )

    def extension(self, crop: str) -> str:
        """The file extension of ``crop`` (a circle in JPEG is written as PNG: it needs transparency)."""
        fmt = exporting.image_format("", self.format)
        if exporting.get_crop(crop).circle:
            fmt = exporting.circle_format(fmt)
        return exporting.EXTENSIONS[fmt].lstrip(".")

    def file_name(self, person_id: str, crop: str) -> str:
        """The file name of one person's crop, from the naming template."""
        return render_name(self.naming, person_id=person_id, crop=crop, ext=self.extension(crop), guide=self)

    def canonical(self) -> dict[str, Any]:
        """The validated content as plain data (what :attr:`sha256` hashes)."""
        grade = self.colour_grade
        return {
            "name": self.name,
            "version": self.version,
            "style": self.style,
            "crops": list(self.crops),
            "format": self.format,
            "quality": self.quality,
            "colour_profile": self.colour_profile,
            "backdrops": [{"name": b.name, "color": list(b.color)} for b in self.backdrops],
            "colour_grade": {
                "brightness": grade.brightness,
                "contrast": grade.contrast,
                "saturation": grade.saturation,
                "warmth": grade.warmth,
            },
            "framing": {"eye_line": self.eye_line, "face_height": self.face_height},
            "naming": self.naming,
            "retention_days": self.retention_days,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.canonical(), "description": self.description, "source": self.source, "sha256": self.sha256}


def canonical_sha256(content: dict[str, Any]) -> str:
    """``sha256(json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False))``."""
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def render_name(template: str, *, person_id: str, crop: str, ext: str, guide: StyleGuideSpec | None = None) -> str:
    """Fill the naming template; the result must be a safe file name (letters, digits, ``.``, ``_``, ``-``).

    Raises:
        GuideError: ``bad_naming`` — an unknown field, or a result that is not a safe file name.
    """
    fields = _template_fields(template)
    unknown = [f for f in fields if f not in NAMING_FIELDS]
    if unknown:
        raise GuideError(
            f"naming: unknown field {{{unknown[0]}}} in {template!r}.",
            fix=f"Use only {', '.join('{' + f + '}' for f in NAMING_FIELDS)}.",
            code="bad_naming",
        )
    values = {
        "person_id": person_id,
        "crop": crop,
        "ext": ext,
        "guide": guide.name if guide else "guide",
        "version": guide.version if guide else "1",
    }
    name = template.format(**values)
    if not SAFE_FILE.match(name) or ".." in name:
        raise GuideError(
            f"naming: {template!r} gives {name!r}, which is not a safe file name.",
            fix="Use letters, digits, '.', '_' and '-' only, e.g. {person_id}_{crop}.{ext}.",
            code="bad_naming",
        )
    return name


def _template_fields(template: str) -> list[str]:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise GuideError(
            f"naming: {template!r} is not a valid template ({exc}).",
            fix="Write fields in braces, e.g. {person_id}_{crop}.{ext}.",
            code="bad_naming",
        ) from None
    fields = []
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if spec or conversion or not name:
            raise GuideError(
                f"naming: {{{name}}} in {template!r} must be a plain field (no format spec).",
                fix="Write e.g. {person_id}_{crop}.{ext}.",
                code="bad_naming",
            )
        fields.append(name)
    return fields


# -- validation -----------------------------------------------------------------------------------


def _fail(key: str, message: str, fix: str) -> GuideError:
    return GuideError(f"Style guide field '{key}': {message}", fix=fix)


def _text(data: dict[str, Any], key: str, pattern: re.Pattern[str], fix: str, default: str | None = None) -> str:
    value = data.get(key, default)
    if value is None:
        raise _fail(key, "is missing.", fix)
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise _fail(
            key,
            f"must be text in quotes: without them it is read as the number {value!r} "
            "(so 2026.10 would read as 2026.1, the same as an older version).",
            fix,
        )
    if not isinstance(value, str):
        raise _fail(key, f"must be text in quotes (got {value!r}).", fix)
    if not pattern.match(value.strip()):
        raise _fail(key, f"{value!r} is not allowed.", fix)
    return value.strip()


def _number(data: dict[str, Any], key: str, value: Any, low: float, high: float, where: str | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= float(value) <= high:
        raise _fail(where or key, f"{value!r} must be a number from {low:g} to {high:g}.", f"e.g. {where or key}: 1.0")
    return float(value)


def _colour(value: Any, where: str) -> tuple[int, int, int]:
    ok = isinstance(value, list | tuple) and len(value) == 3
    ok = ok and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in value)
    if not ok:
        raise _fail(where, f"{value!r} must be three whole numbers 0–255 (red, green, blue).", "e.g. [200, 203, 208]")
    return (int(value[0]), int(value[1]), int(value[2]))


def _backdrops(data: dict[str, Any]) -> tuple[ApprovedBackdrop, ...]:
    raw = data.get("backdrops")
    fix = "List 1–4 backdrops, e.g. backdrops: [{name: light-grey, color: [200, 203, 208]}]"
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_BACKDROPS:
        raise _fail("backdrops", "must list 1 to 4 approved backdrops.", fix)
    result: list[ApprovedBackdrop] = []
    for i, item in enumerate(raw):
        where = f"backdrops[{i}]"
        if not isinstance(item, dict) or set(item) - {"name", "color", "colour"}:
            raise _fail(where, "must be {name: ..., color: [r, g, b]}.", fix)
        name = item.get("name")
        if not isinstance(name, str) or not NAME.match(name):
            raise _fail(where + ".name", f"{name!r} must be a short name (letters, digits, . _ -).", "e.g. light-grey")
        if name.lower() in {b.name.lower() for b in result}:
            raise _fail(where + ".name", f"{name!r} is listed twice.", "Give each backdrop its own name.")
        result.append(ApprovedBackdrop(name, _colour(item.get("color", item.get("colour")), where + ".color")))
    return tuple(result)


def _crops(data: dict[str, Any]) -> tuple[str, ...]:
    raw = data.get("crops", ["square"])
    fix = f"Choose from: {', '.join(exporting.CROP_NAMES)}; e.g. crops: [square, circle, hires]"
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw or not all(isinstance(c, str) for c in raw):
        raise _fail("crops", "must be a list of crop names.", fix)
    crops = tuple(dict.fromkeys(c.strip().lower() for c in raw))
    unknown = [c for c in crops if c not in exporting.CROP_NAMES]
    if unknown:
        raise _fail("crops", f"unknown crop {unknown[0]!r}.", fix)
    if exporting.get_crop(crops[0]).size is None:
        raise _fail("crops", "the first (primary) crop must have a size, not hires.", "Put square first.")
    return crops


def _grade(data: dict[str, Any]) -> exporting.ColourGrade:
    raw = data.get("colour_grade", data.get("color_grade", {})) or {}
    allowed = {"brightness", "contrast", "saturation", "warmth"}
    if not isinstance(raw, dict) or set(raw) - allowed:
        extra = sorted(set(raw) - allowed) if isinstance(raw, dict) else raw
        raise _fail("colour_grade", f"unknown entries {extra}.", f"Use {', '.join(sorted(allowed))}.")
    values = {k: _number(raw, k, raw[k], 0.5, 1.5, f"colour_grade.{k}") for k in raw if k != "warmth"}
    if "warmth" in raw:
        values["warmth"] = _number(raw, "warmth", raw["warmth"], -1.0, 1.0, "colour_grade.warmth")
    return exporting.ColourGrade(**values)


def _framing(data: dict[str, Any]) -> tuple[float, float]:
    raw = data.get("framing", {}) or {}
    if not isinstance(raw, dict) or set(raw) - {"eye_line", "face_height"}:
        raise _fail("framing", "must be {eye_line: 0.40, face_height: 0.40}.", "Use eye_line and face_height only.")
    eye = _number(raw, "eye_line", raw.get("eye_line", 0.40), 0.2, 0.6, "framing.eye_line")
    face = _number(raw, "face_height", raw.get("face_height", 0.40), 0.15, 0.8, "framing.face_height")
    return eye, face


def guide_from_dict(data: Any, *, source: str = "<dict>") -> StyleGuideSpec:
    """Validate parsed YAML into a :class:`StyleGuideSpec` (every bad field is a :class:`GuideError`)."""
    from headshot_lab.styles import load_style

    if not isinstance(data, dict):
        raise GuideError(f"{source} is not a style guide (expected named fields).", fix="See examples in the README.")
    unknown = sorted(str(k) for k in data if k not in KNOWN_KEYS)
    if unknown:
        raise _fail(unknown[0], "is not a style-guide field.", f"Known fields: {', '.join(KNOWN_KEYS)}.")
    name = _text(data, "name", NAME, "e.g. name: acme-directory (letters, digits, . _ -)")
    version = _text(data, "version", VERSION, 'e.g. version: "2026.1" (in quotes)')
    style = data.get("style", "team")
    if not isinstance(style, str):
        raise _fail("style", f"{style!r} must be a style preset name.", "e.g. style: team")
    try:
        style = load_style(style).name
    except HeadshotLabError as exc:
        raise _fail("style", exc.message, exc.fix) from None
    fmt = data.get("format", "jpeg")
    try:
        fmt = exporting.format_name(str(fmt))
    except HeadshotLabError:
        raise _fail("format", f"{fmt!r} is not a format.", "Use jpeg, png or webp.") from None
    quality = data.get("quality", 92)
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise _fail("quality", f"{quality!r} must be a whole number 1–100.", "e.g. quality: 92")
    profile = data.get("colour_profile", "sRGB")
    if not isinstance(profile, str) or profile.strip().lower().replace(" ", "") not in {"srgb", "srgbiec61966-2.1"}:
        raise _fail(
            "colour_profile", f"{profile!r} is not supported.", "Use sRGB (every file embeds the sRGB profile)."
        )
    retention = data.get("retention_days", 30)
    if isinstance(retention, bool) or not isinstance(retention, int) or not 1 <= retention <= MAX_RETENTION_DAYS:
        raise _fail("retention_days", f"{retention!r} must be a whole number of days, 1–3650.", "e.g. 30")
    naming = data.get("naming", DEFAULT_NAMING)
    if not isinstance(naming, str):
        raise _fail("naming", f"{naming!r} must be a template text.", f"e.g. naming: '{DEFAULT_NAMING}'")
    fields = _template_fields(naming)
    for needed in ("person_id", "crop", "ext"):
        if needed not in fields:
            raise _fail("naming", f"{naming!r} has no {{{needed}}}, so files would clash.", f"e.g. '{DEFAULT_NAMING}'")
    eye, face = _framing(data)
    description = data.get("description", "")
    guide = StyleGuideSpec(
        name=name,
        version=version,
        style=style,
        crops=_crops(data),
        format=fmt,
        quality=int(quality),
        colour_profile="sRGB",
        backdrops=_backdrops(data),
        colour_grade=_grade(data),
        eye_line=eye,
        face_height=face,
        naming=naming,
        retention_days=int(retention),
        description=str(description or "")[:500],
        source=source,
    )
    for crop in guide.crops:  # the template with this guide's own values must give safe names
        render_name(naming, person_id="p01", crop=crop, ext=guide.extension(crop), guide=guide)
    return replace(guide, sha256=canonical_sha256(guide.canonical()))


def load_guide(path: str | Path) -> StyleGuideSpec:
    """Read and validate a style-guide YAML file.

    Raises:
        GuideError: the file is missing, not YAML, or a field is bad (the message names it).
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise GuideError(f"Style guide {path} not found.", fix="Give the path of the guide's .yaml file.")
    try:
        data = yaml.safe_load(path.read_bytes())
    except yaml.YAMLError as exc:
        raise GuideError(f"{path.name} is not valid YAML ({exc}).", fix="Fix the YAML syntax.") from None
    return guide_from_dict(data, source=str(path))


SAMPLE_GUIDE = Path(__file__).resolve().parents[1] / "styles" / "guides" / "company.yaml"
"""The bundled example guide (``headshot_lab/styles/guides/company.yaml``)."""


__all__ = [
    "SAMPLE_GUIDE",
    "ApprovedBackdrop",
    "GuideError",
    "StyleGuideSpec",
    "canonical_sha256",
    "guide_from_dict",
    "load_guide",
    "render_name",
]
