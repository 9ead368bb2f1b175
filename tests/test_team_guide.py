"""The versioned team style guide: every bad field is a clear error; the hash follows content, not layout."""

from __future__ import annotations

import copy

import pytest
import yaml

from headshot_lab import export as exporting
from headshot_lab.team.guide import SAMPLE_GUIDE, GuideError, guide_from_dict, load_guide, render_name


@pytest.fixture()
def sample():
    return yaml.safe_load(SAMPLE_GUIDE.read_text())


def test_the_sample_guide_loads_and_maps_onto_export(sample):
    guide = load_guide(SAMPLE_GUIDE)
    assert guide.label == "company 2026.1" and guide.version == "2026.1"
    assert guide.crops == ("square", "circle", "banner", "hires") and guide.primary_crop == "square"
    assert [guide.file_name("p01", c) for c in guide.crops] == [
        "p01_square.jpg",
        "p01_circle.png",  # a circle needs transparency: PNG
        "p01_banner.jpg",
        "p01_hires.jpg",
    ]
    style = guide.style_guide()
    assert isinstance(style, exporting.StyleGuide)
    assert style.backdrop == (200, 203, 208) and style.grade == guide.colour_grade and style.name == "company"
    assert style.spec.eye_line == guide.eye_line and style.spec.max_zoom == 1.0 and style.spec.max_shift == 0.0
    assert guide.style_guide("slate").backdrop == (96, 104, 114)
    assert guide.crop_spec("circle").eye_line == exporting.CROPS["circle"].eye_line  # circle keeps its own
    with pytest.raises(GuideError, match="not approved"):
        guide.backdrop("hot-pink")
    assert len(guide.sha256) == 64


def test_sha256_is_of_the_canonical_content(sample, tmp_path):
    base = guide_from_dict(sample)
    reordered = dict(reversed(list(sample.items())))
    path = tmp_path / "g.yaml"
    path.write_text("# a comment\n" + yaml.safe_dump(reordered, indent=4))
    assert load_guide(path).sha256 == base.sha256
    changed = copy.deepcopy(sample)
    changed["colour_grade"]["warmth"] = 0.2
    assert guide_from_dict(changed).sha256 != base.sha256
    bumped = {**sample, "version": "2026.2"}
    assert guide_from_dict(bumped).sha256 != base.sha256


BAD_FIELDS = [
    ({"version": 1.0}, "version", "quotes"),
    ({"version": None}, "version", "missing"),
    ({"version": "1 / 2"}, "version", "not allowed"),
    ({"name": "a/b"}, "name", "not allowed"),
    ({"style": "glamour"}, "style", "Unknown style"),
    ({"crops": ["square", "poster"]}, "crops", "unknown crop 'poster'"),  # print is a crop since issue 16
    ({"crops": ["hires"]}, "crops", "primary"),
    ({"format": "tiff"}, "format", "jpeg, png or webp"),
    ({"quality": 0}, "quality", "1–100"),
    ({"colour_profile": "AdobeRGB"}, "colour_profile", "sRGB"),
    ({"backdrops": []}, "backdrops", "1 to 4"),
    ({"backdrops": [{"name": f"b{i}", "color": [1, 2, 3]} for i in range(5)]}, "backdrops", "1 to 4"),
    ({"backdrops": [{"name": "x", "color": [1, 2, 300]}]}, "backdrops[0].color", "0–255"),
    (
        {"backdrops": [{"name": "x", "color": [1, 2, 3]}, {"name": "X", "color": [1, 2, 3]}]},
        "backdrops[1].name",
        "twice",
    ),
    ({"colour_grade": {"brightness": 3}}, "colour_grade.brightness", "0.5 to 1.5"),
    ({"colour_grade": {"gamma": 1.0}}, "colour_grade", "unknown"),
    ({"framing": {"eye_line": 0.9}}, "framing.eye_line", "0.2 to 0.6"),
    ({"naming": "{person_id}.{ext}"}, "naming", "no {crop}"),
    ({"retention_days": 0}, "retention_days", "1–3650"),
    ({"retention_days": "30"}, "retention_days", "whole number"),
    ({"colour": "blue"}, "colour", "not a style-guide field"),
]


@pytest.mark.parametrize(("change", "field", "words"), BAD_FIELDS)
def test_every_bad_field_is_named(sample, change, field, words):
    data = {**sample, **change}
    if change.get("version", "") is None:
        data.pop("version")
    with pytest.raises(GuideError) as info:
        guide_from_dict(data)
    assert f"'{field}'" in info.value.message and words in info.value.message + info.value.fix
    assert info.value.code == "bad_style_guide" and info.value.fix


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ("{person_id}_{crop}_{email}.{ext}", "unknown field {email}"),
        ("../{person_id}_{crop}.{ext}", "not a safe file name"),
        ("{person_id}/{crop}.{ext}", "not a safe file name"),
        ("{person_id!r}_{crop}.{ext}", "plain field"),
        ("{person_id_{crop}.{ext}", "not a valid template"),
    ],
)
def test_naming_templates_are_validated(sample, template, words):
    with pytest.raises(GuideError, match=words.replace("{", r"\{").replace("}", r"\}")):
        guide_from_dict({**sample, "naming": template})


def test_naming_with_guide_fields(sample):
    guide = guide_from_dict({**sample, "naming": "{guide}-{version}-{person_id}-{crop}.{ext}"})
    assert guide.file_name("p07", "banner") == "company-2026.1-p07-banner.jpg"
    assert render_name("{person_id}_{crop}.{ext}", person_id="a", crop="square", ext="png") == "a_square.png"


def test_file_problems(tmp_path):
    with pytest.raises(GuideError, match="not found"):
        load_guide(tmp_path / "none.yaml")
    (tmp_path / "bad.yaml").write_text("name: [unclosed")
    with pytest.raises(GuideError, match="not valid YAML"):
        load_guide(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(GuideError, match="not a style guide"):
        load_guide(tmp_path / "list.yaml")


@pytest.mark.parametrize("ext", ["jpg", "png", "webp"])
def test_guide_properties_round_trip_through_xmp_in_every_format(tmp_path, ext):
    import numpy as np

    from headshot_lab.provenance import ProvenanceError, read_properties, read_provenance, save_with_provenance

    props = {"StyleGuide": 'co "<&>"', "StyleGuideVersion": "2026.1"}
    path = save_with_provenance(np.zeros((20, 20, 3), np.uint8), tmp_path / f"x.{ext}", "retouched", properties=props)
    assert read_properties(path) == props
    assert read_provenance(path, c2pa=False)["kind"] == "retouched"  # the disclosure is unchanged
    assert read_properties(save_with_provenance(np.zeros((20, 20, 3), np.uint8), tmp_path / f"y.{ext}")) == {}
    with pytest.raises(ProvenanceError):
        save_with_provenance(np.zeros((20, 20, 3), np.uint8), tmp_path / f"z.{ext}", properties={"bad name": "x"})


def test_a_print_crop_in_the_guide_is_written_at_its_dpi(tmp_path, real_photos):
    """A guide may list the print crop: the file says 300 dpi and the entry says so (and how short it is)."""
    import numpy as np
    from PIL import Image

    from headshot_lab.io import load_rgb
    from headshot_lab.team.run import export_person

    guide = guide_from_dict(yaml.safe_load(SAMPLE_GUIDE.read_text()) | {"crops": ["square", "print"]})
    pixels = load_rgb(real_photos["obama"], min_side=0)
    written = export_person(np.asarray(pixels), guide, tmp_path, "p01", kind="retouched", backdrop="", replace=False)
    entry = next(w for w in written if w["crop"] == "print")
    assert entry["dpi"] == 300 and (entry["width"], entry["height"]) == (1200, 1500)
    with Image.open(tmp_path / entry["file"].removeprefix("files/")) as image:
        assert round(image.info["dpi"][0]) == 300
    assert entry["print_short_by"] > 1  # a small web photo has far less than 1500 px of real detail


def test_an_unquoted_version_says_how_yaml_read_it(tmp_path):
    """``version: 2026.10`` (no quotes) is the number 2026.1 to YAML: the error says so, so the admin sees why
    a bump would have looked like the old version; a quoted one loads as written."""
    text = SAMPLE_GUIDE.read_text(encoding="utf-8")
    unquoted = tmp_path / "unquoted.yaml"
    unquoted.write_text(text.replace('version: "2026.1"', "version: 2026.10"), encoding="utf-8")
    with pytest.raises(GuideError) as excinfo:
        load_guide(unquoted)
    assert "read as the number 2026.1" in excinfo.value.message and "quotes" in excinfo.value.message
    quoted = tmp_path / "quoted.yaml"
    quoted.write_text(text.replace('version: "2026.1"', 'version: "2026.10"'), encoding="utf-8")
    assert load_guide(quoted).version == "2026.10"
