"""Style presets: one YAML file per look in ``headshot_lab/styles/`` (like lm-eval's one YAML per task).

A preset holds everything that decides the *look* of a headshot and nothing about the person:

.. code-block:: yaml

    name: corporate
    title: Corporate
    description: Neutral grey studio backdrop, business attire, soft even key light.
    prompt: >-                       # {subject} is the identity ("sks person"); {attire}, {backdrop},
      professional corporate headshot photo of {subject}, {attire}, {backdrop}, {lighting}, ...
    prompt_long: >-                  # optional: natural sentences for T5-encoder bases (FLUX), same placeholders
      A professional corporate headshot photograph of {subject}, wearing a {attire}, ...
    negative_prompt: >-              # must name the classic failure modes (see REQUIRED_NEGATIVES)
      extra faces, deformed eyes, deformed teeth, deformed hands, plastic skin, over-smoothed skin, ...
    backdrop:                        # also used by the offline studio retouch (no generative model)
      description: plain mid-grey seamless studio backdrop
      color: [128, 130, 133]         # sRGB 0–255, top of the backdrop
      gradient_to: [92, 94, 97]      # optional: bottom colour of a vertical gradient
    attire: dark navy suit jacket over a plain light shirt
    lighting: soft even studio key light with gentle fill
    crop: {framing: head-and-shoulders, aspect: [4, 5], face_height: 0.38}
    steps: 30                        # sampler steps and classifier-free guidance
    guidance_scale: 6.0
    default_seed: null               # optional: a fixed seed for uniform team pages

``load_style("corporate")`` reads a bundled preset; ``load_style("path/to/mine.yaml")`` a custom one.

**One preset, every family.** The base family decides how a preset becomes the pipeline's text
(:meth:`Style.render_prompt`, :meth:`Style.negative_for`):

=============  ===========================================  ==================  ==========================
family         prompt                                       negative prompt     steps / guidance
=============  ===========================================  ==================  ==========================
``sd15/sdxl``  ``prompt`` (CLIP: ≤ 77 tokens, tag style)    ``negative_prompt``  the preset's (CFG scale)
``flux``       ``prompt_long`` (T5: up to 256/512 tokens,   none (FLUX has no    the base's: schnell 4 / 0,
               sentences; ``prompt`` when absent)           negative prompt)     dev 28 / 3.5 (distilled)
=============  ===========================================  ==================  ==========================

FLUX.1 is guidance-*distilled*: its ``guidance_scale`` is an input embedding, not classifier-free guidance, so a
preset's CFG scale (tuned for SD) would be wrong there; the sampler defaults come from the base
(:func:`headshot_lab.models.sampling_defaults`). Since FLUX cannot be told what to avoid, ``prompt_long`` says the
negatives positively ("realistic unretouched skin with natural texture" for "plastic skin").
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from headshot_lab.errors import HeadshotLabError

STYLES_DIR = Path(__file__).with_name("styles")

#: Terms every bundled negative prompt contains: the failure modes people complain about in AI headshots.
REQUIRED_NEGATIVES = (
    "extra faces",
    "deformed eyes",
    "deformed teeth",
    "deformed hands",
    "plastic skin",
    "over-smoothed skin",
)

_PROMPT_FIELDS = ("subject", "attire", "backdrop", "lighting")
#: Base families whose text encoder is T5 (long natural-language prompts) and that take no negative prompt.
LONG_PROMPT_FAMILIES = frozenset({"flux"})
NO_NEGATIVE_FAMILIES = frozenset({"flux"})
#: T5 tokens a FLUX.1-schnell prompt may use (``max_sequence_length`` 256; dev: 512).
T5_MAX_TOKENS = 256

#: CLIP reads at most 77 tokens (start and end included); words past that are silently dropped.
CLIP_MAX_TOKENS = 77
# CLIP's pre-tokenizer: contractions, letter runs, single digits, punctuation runs (each ≥ 1 BPE token).
_CLIP_PIECES = re.compile(r"'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|[^\s\w]+|_+", re.IGNORECASE)


def clip_token_estimate(text: str) -> int:
    """A lower bound on CLIP's token count: pre-tokenizer pieces + start/end tokens.

    Common English words are one BPE token in CLIP's 49k vocabulary, so for prompts the bound is close;
    keep prompts well below :data:`CLIP_MAX_TOKENS` to leave room for rare words that split.
    """
    return len(_CLIP_PIECES.findall(text.lower())) + 2


class StyleError(HeadshotLabError):
    """A style preset is missing or malformed."""

    code = "bad_style"


@dataclass(frozen=True)
class Backdrop:
    """The background: words for the generator, colours for the offline retouch.

    Attributes:
        description: prompt text (``"plain mid-grey seamless studio backdrop"``).
        color: ``(r, g, b)`` sRGB 0–255; the top (or only) colour.
        gradient_to: ``(r, g, b)`` bottom colour of a vertical gradient, or ``None`` for a flat backdrop.
    """

    description: str
    color: tuple[int, int, int]
    gradient_to: tuple[int, int, int] | None = None

    def gradient(self, height: int) -> list[tuple[int, int, int]]:
        """The backdrop colour of each row: ``c(y) = color + (gradient_to − color)·y/(height−1)``."""
        end = self.gradient_to or self.color
        steps = max(height - 1, 1)
        return [
            tuple(round(a + (b - a) * row / steps) for a, b in zip(self.color, end, strict=True))  # type: ignore[misc]
            for row in range(height)
        ]


@dataclass(frozen=True)
class Crop:
    """Framing: ``aspect`` is ``(width, height)``; ``face_height`` the face's share of the image height."""

    framing: str = "head-and-shoulders"
    aspect: tuple[int, int] = (4, 5)
    face_height: float = 0.38


@dataclass(frozen=True)
class Style:
    """One style preset (see the module docstring for the YAML form)."""

    name: str
    title: str
    description: str
    prompt: str
    negative_prompt: str
    backdrop: Backdrop
    attire: str
    lighting: str
    crop: Crop = field(default_factory=Crop)
    steps: int = 30
    guidance_scale: float = 6.0
    default_seed: int | None = None
    #: denoise strength of the face-detail pass (:mod:`headshot_lab.detail`), 0.3–0.5 keeps the person.
    detail_strength: float = 0.4
    source: str = ""
    sha256: str = ""
    #: natural-language prompt for T5-encoder families (:data:`LONG_PROMPT_FAMILIES`); ``None``: ``prompt`` is used.
    prompt_long: str | None = None

    def render_prompt(self, subject: str, family: str | None = None) -> str:
        """The prompt for ``family`` with ``{subject}``, ``{attire}``, ``{backdrop}`` and ``{lighting}`` filled in:
        ``prompt_long`` for a T5-encoder family (FLUX) when the preset has one, else ``prompt``."""
        template = self.prompt_long if family in LONG_PROMPT_FAMILIES and self.prompt_long else self.prompt
        return " ".join(
            template.format(
                subject=subject, attire=self.attire, backdrop=self.backdrop.description, lighting=self.lighting
            ).split()
        )

    def negative_for(self, family: str | None = None) -> str | None:
        """The negative prompt for ``family``: ``None`` where the family has none (:data:`NO_NEGATIVE_FAMILIES`)."""
        return None if family in NO_NEGATIVE_FAMILIES else self.negative_prompt

    def size_for(self, base: int, multiple: int = 8) -> tuple[int, int]:
        """``(width, height)`` with about ``base²`` pixels in this style's aspect ratio, rounded to ``multiple``.

        ``w = base·√(a_w/a_h)``, ``h = base·√(a_h/a_w)``, each rounded to the nearest multiple.
        """
        aw, ah = self.crop.aspect
        ratio = (aw / ah) ** 0.5
        width = max(multiple, round(base * ratio / multiple) * multiple)
        height = max(multiple, round(base / ratio / multiple) * multiple)
        return int(width), int(height)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["crop"]["aspect"] = list(self.crop.aspect)
        data["backdrop"]["color"] = list(self.backdrop.color)
        if self.backdrop.gradient_to is not None:
            data["backdrop"]["gradient_to"] = list(self.backdrop.gradient_to)
        return data


def _colour(value: Any, what: str, where: str) -> tuple[int, int, int]:
    if isinstance(value, str) and value.startswith("#") and len(value) == 7:
        try:
            return tuple(int(value[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
        except ValueError:
            pass
    if (
        isinstance(value, list | tuple)
        and len(value) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in value)
    ):
        return (int(value[0]), int(value[1]), int(value[2]))
    raise StyleError(
        f"{where}: backdrop {what} must be [r, g, b] with integers 0–255 or '#rrggbb', got {value!r}.",
        fix="Fix the colour in the style file.",
    )


def _text(data: dict[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise StyleError(f"{where}: '{key}' must be a non-empty text.", fix=f"Add '{key}:' to the style file.")
    return " ".join(value.split())


def style_from_dict(data: dict[str, Any], *, source: str = "<dict>", sha256: str = "") -> Style:
    """Validate a parsed preset and build a :class:`Style` (raises :class:`StyleError` naming the problem)."""
    if not isinstance(data, dict):
        raise StyleError(
            f"{source}: a style file must be a YAML mapping.", fix="See headshot_lab/styles/corporate.yaml."
        )
    name = _text(data, "name", source)
    prompt = _check_template(_text(data, "prompt", source), "prompt", source)
    prompt_long = None
    if data.get("prompt_long") is not None:
        prompt_long = _check_template(_text(data, "prompt_long", source), "prompt_long", source)
    backdrop_data = data.get("backdrop")
    if not isinstance(backdrop_data, dict):
        raise StyleError(f"{source}: 'backdrop' must be a mapping with description and color.")
    gradient = backdrop_data.get("gradient_to")
    backdrop = Backdrop(
        description=_text(backdrop_data, "description", f"{source} backdrop"),
        color=_colour(backdrop_data.get("color"), "color", source),
        gradient_to=_colour(gradient, "gradient_to", source) if gradient is not None else None,
    )
    crop_data = data.get("crop") or {}
    aspect = crop_data.get("aspect", [4, 5])
    if not (
        isinstance(aspect, list | tuple) and len(aspect) == 2 and all(isinstance(v, int) and v > 0 for v in aspect)
    ):
        raise StyleError(f"{source}: crop.aspect must be [width, height] positive integers, got {aspect!r}.")
    crop = Crop(
        framing=str(crop_data.get("framing", "head-and-shoulders")),
        aspect=(int(aspect[0]), int(aspect[1])),
        face_height=float(crop_data.get("face_height", 0.38)),
    )
    steps = data.get("steps", 30)
    guidance = data.get("guidance_scale", 6.0)
    if not isinstance(steps, int) or steps < 1:
        raise StyleError(f"{source}: steps must be a positive integer, got {steps!r}.")
    if not isinstance(guidance, int | float) or guidance < 0:
        raise StyleError(f"{source}: guidance_scale must be a number ≥ 0, got {guidance!r}.")
    default_seed = data.get("default_seed")
    detail_strength = data.get("detail_strength", 0.4)
    if not isinstance(detail_strength, int | float) or not 0.0 < float(detail_strength) <= 1.0:
        raise StyleError(f"{source}: detail_strength must be a number in (0, 1], got {detail_strength!r}.")
    return Style(
        name=name,
        title=str(data.get("title") or name.title()),
        description=str(data.get("description") or "").strip(),
        prompt=prompt,
        negative_prompt=_text(data, "negative_prompt", source),
        backdrop=backdrop,
        attire=_text(data, "attire", source),
        lighting=_text(data, "lighting", source),
        crop=crop,
        steps=steps,
        guidance_scale=float(guidance),
        default_seed=int(default_seed) if default_seed is not None else None,
        detail_strength=float(detail_strength),
        source=source,
        sha256=sha256,
        prompt_long=prompt_long,
    )


def _check_template(prompt: str, key: str, source: str) -> str:
    """``prompt`` if it holds ``{subject}`` and no placeholder outside :data:`_PROMPT_FIELDS`."""
    if "{subject}" not in prompt:
        raise StyleError(f"{source}: the {key} must contain {{subject}} (where the person goes).")
    try:
        prompt.format(**dict.fromkeys(_PROMPT_FIELDS, ""))
    except (KeyError, IndexError, ValueError) as exc:
        raise StyleError(
            f"{source}: the {key} has an unknown placeholder ({exc}); allowed: "
            + ", ".join("{" + f + "}" for f in _PROMPT_FIELDS)
        ) from None
    return prompt


def list_styles() -> list[str]:
    """Names of the bundled presets, sorted."""
    return sorted(path.stem for path in STYLES_DIR.glob("*.yaml"))


@cache
def _load_file(path: str, mtime_ns: int) -> Style:
    import yaml

    raw = Path(path).read_bytes()
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise StyleError(f"{Path(path).name}: not valid YAML ({exc}).", fix="Fix the YAML syntax.") from None
    return style_from_dict(data, source=path, sha256=hashlib.sha256(raw).hexdigest())


def load_style(name: str | Path | Style) -> Style:
    """A bundled preset by name (``"corporate"``) or a custom preset by ``.yaml`` path.

    Raises:
        StyleError: unknown name, unreadable or invalid file (the message says which field).
    """
    if isinstance(name, Style):
        return name
    text = str(name)
    path = Path(text)
    if path.suffix.lower() not in {".yaml", ".yml"}:
        path = STYLES_DIR / f"{text}.yaml"
        if not path.is_file():
            raise StyleError(
                f"Unknown style {text!r}.",
                fix=f"Choose one of {', '.join(list_styles())}, or give the path of a .yaml preset.",
                code="unknown_style",
            )
    if not path.is_file():
        raise StyleError(f"Style file {path} does not exist.", fix="Check the path.", code="unknown_style")
    return _load_file(str(path.resolve()), path.stat().st_mtime_ns)
