"""Style presets: the six bundled looks load, say what they must, and bad presets fail clearly."""

from __future__ import annotations

import pytest
import yaml

from headshot_lab.styles import (
    CLIP_MAX_TOKENS,
    REQUIRED_NEGATIVES,
    STYLES_DIR,
    Backdrop,
    StyleError,
    clip_token_estimate,
    list_styles,
    load_style,
)

BUNDLED = ("corporate", "office", "outdoor", "creative", "academic", "team")


def test_all_six_presets_are_listed():
    assert set(BUNDLED) <= set(list_styles())


@pytest.mark.parametrize("name", BUNDLED)
def test_preset_is_complete(name):
    style = load_style(name)
    assert style.name == name
    assert "{subject}" in style.prompt
    for field in (style.prompt, style.negative_prompt, style.attire, style.lighting, style.backdrop.description):
        assert field.strip()
    negative = style.negative_prompt.lower()
    missing = [term for term in REQUIRED_NEGATIVES if term not in negative]
    assert not missing, f"{name}: negative prompt lacks {missing}"
    for colour in (style.backdrop.color, style.backdrop.gradient_to or style.backdrop.color):
        assert len(colour) == 3
        assert all(isinstance(v, int) and 0 <= v <= 255 for v in colour)
    assert style.steps >= 1
    assert style.guidance_scale > 1  # classifier-free guidance on, so the negative prompt is used
    assert len(style.sha256) == 64


@pytest.mark.parametrize("name", BUNDLED)
def test_prompts_fit_in_clip_context(name):
    """CLIP drops words past 77 tokens: a too-long prompt would silently lose its last instructions."""
    style = load_style(name)
    prompt = style.render_prompt("sks person")
    assert "sks person" in prompt
    assert "{" not in prompt
    assert clip_token_estimate(prompt) <= CLIP_MAX_TOKENS - 15
    assert clip_token_estimate(style.negative_prompt) <= CLIP_MAX_TOKENS - 15


def test_token_estimate_counts_words_digits_and_punctuation():
    assert clip_token_estimate("a photo") == 4
    assert clip_token_estimate("85mm, f/4") == 2 + 7  # "8" "5" "mm" "," "f" "/" "4"


def test_styles_look_different():
    prompts = {load_style(n).render_prompt("x") for n in BUNDLED}
    colours = {load_style(n).backdrop.color for n in BUNDLED}
    assert len(prompts) == len(BUNDLED)
    assert len(colours) == len(BUNDLED)


def test_team_look_is_uniform():
    team = load_style("team")
    assert team.default_seed is not None
    assert team.backdrop.gradient_to in (None, team.backdrop.color)


def test_academic_covers_medical():
    academic = load_style("academic")
    assert "medical" in academic.render_prompt("x") or "doctor" in academic.attire


def test_size_for_keeps_aspect_and_pixel_count():
    corporate = load_style("corporate")  # 4:5
    width, height = corporate.size_for(512)
    assert width % 8 == 0 and height % 8 == 0
    assert height > width
    assert abs(width / height - 4 / 5) < 0.03
    assert abs(width * height - 512 * 512) / (512 * 512) < 0.05
    assert load_style("team").size_for(64) == (64, 64)


def test_backdrop_gradient_runs_from_top_to_bottom_colour():
    rows = Backdrop("x", (0, 100, 200), (100, 100, 0)).gradient(11)
    assert rows[0] == (0, 100, 200)
    assert rows[-1] == (100, 100, 0)
    assert rows[5] == (50, 100, 100)


def _write(tmp_path, data, name="mine.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _valid() -> dict:
    return yaml.safe_load((STYLES_DIR / "corporate.yaml").read_text(encoding="utf-8"))


def test_custom_preset_by_path(tmp_path):
    data = _valid() | {"name": "mine", "backdrop": {"description": "white wall", "color": "#ffffff"}}
    style = load_style(_write(tmp_path, data))
    assert style.name == "mine"
    assert style.backdrop.color == (255, 255, 255)
    assert style.backdrop.gradient_to is None


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"backdrop": {"description": "x", "color": [300, 0, 0]}}, "color"),
        ({"backdrop": {"description": "x", "color": [1, 2]}}, "color"),
        ({"prompt": "a headshot with no person"}, "{subject}"),
        ({"prompt": "photo of {subject} in {place}"}, "placeholder"),
        ({"prompt_long": "A photograph of nobody."}, "prompt_long must contain {subject}"),
        ({"prompt_long": "A photograph of {subject} in {place}."}, "prompt_long has an unknown placeholder"),
        ({"negative_prompt": ""}, "negative_prompt"),
        ({"crop": {"aspect": [4, 0]}}, "aspect"),
        ({"steps": 0}, "steps"),
    ],
)
def test_bad_presets_say_what_is_wrong(tmp_path, change, words):
    with pytest.raises(StyleError) as info:
        load_style(_write(tmp_path, _valid() | change))
    assert words in info.value.message


def test_invalid_yaml_is_a_style_error(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(StyleError, match="not valid YAML"):
        load_style(path)


def test_unknown_style_lists_the_choices():
    with pytest.raises(StyleError) as info:
        load_style("disco")
    assert info.value.code == "unknown_style"
    assert "corporate" in info.value.fix


@pytest.mark.parametrize("name", BUNDLED)
def test_one_preset_serves_every_family(name):
    """SD1.5/SDXL get the CLIP tag prompt and the negative prompt; FLUX the natural-language T5 prompt and none."""
    from headshot_lab.styles import T5_MAX_TOKENS

    style = load_style(name)
    clip = style.render_prompt("sks person")
    assert style.render_prompt("sks person", "sd15") == style.render_prompt("sks person", "sdxl") == clip
    long = style.render_prompt("sks person", "flux")
    assert long != clip and "sks person" in long and "{" not in long
    assert len(long.split()) > len(clip.split()) > 0
    assert clip_token_estimate(long) <= T5_MAX_TOKENS // 2  # well inside schnell's 256 T5 tokens
    assert style.negative_for("sd15") == style.negative_for("sdxl") == style.negative_prompt
    assert style.negative_for("flux") is None
    # FLUX cannot be told what to avoid: the long prompt says the negatives' intent positively
    assert "skin" in long and "texture" in long


def test_a_preset_without_a_long_prompt_uses_its_prompt_on_flux(tmp_path):
    style = load_style(_write(tmp_path, {k: v for k, v in _valid().items() if k != "prompt_long"}))
    assert style.prompt_long is None
    assert style.render_prompt("sks person", "flux") == style.render_prompt("sks person")
