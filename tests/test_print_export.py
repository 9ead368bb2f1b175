"""Print-ready export: 4×5 in at 300 dpi, DPI and sRGB ICC read back from every format, the real-detail check."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from headshot_lab.export import (
    CROPS,
    ExportError,
    export_headshots,
    find_face,
    plan_crop,
    print_crop,
    print_detail,
)
from headshot_lab.io import srgb_icc_profile
from headshot_lab.provenance import read_history, save_with_provenance
from headshot_lab.testing.tiny import tiny_sr_model
from headshot_lab.ui.formatting import OPERATOR_MARK, export_caption, format_export
from headshot_lab.upscale import history_line, upscale_file

FORMATS = ("jpeg", "png", "webp")
EXT = {"jpeg": ".jpg", "png": ".png", "webp": ".webp"}


def file_dpi(path) -> tuple[float, float] | None:
    """The density a viewer reads: JFIF / pHYs (Pillow ``info["dpi"]``), else the EXIF resolution tags."""
    with Image.open(path) as image:
        if "dpi" in image.info:
            return tuple(float(v) for v in image.info["dpi"])  # type: ignore[return-value]
        exif = image.getexif()
        if 282 in exif and exif.get(296) == 2:
            return float(exif[282]), float(exif[283])
    return None


def icc_description(path) -> str | None:
    with Image.open(path) as image:
        icc = image.info.get("icc_profile")
    if not icc:
        return None
    assert icc == srgb_icc_profile()  # the very profile headshot-lab writes, byte for byte
    return ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(icc))).strip()


@pytest.fixture(scope="module")
def obama(load_real):
    pixels = load_real("obama")
    return pixels, find_face(pixels)


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_embeds_srgb_and_the_dpi_it_is_given(tmp_path, fmt):
    pixels = np.random.default_rng(0).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    plain = save_with_provenance(pixels, tmp_path / f"plain{EXT[fmt]}", "generated")
    assert icc_description(plain) == "sRGB built-in"
    assert file_dpi(plain) in (None, (72.0, 72.0)) or fmt == "jpeg"  # no density claimed unless asked
    printed = save_with_provenance(pixels, tmp_path / f"print{EXT[fmt]}", "generated", dpi=(300, 300))
    assert icc_description(printed) == "sRGB built-in"
    if fmt == "webp":  # no density field in WebP, and outputs carry no EXIF: nothing is claimed
        assert file_dpi(printed) is None
    else:
        assert file_dpi(printed) == pytest.approx((300.0, 300.0), abs=0.01)  # PNG pHYs stores dots per metre
    with Image.open(printed) as image:
        assert not any(tag in image.getexif() for tag in (0x8825, 0x010F, 0x0110))  # no GPS, make or model


@pytest.mark.parametrize("fmt", FORMATS)
def test_print_crop_is_4x5_in_at_300_dpi_with_srgb(tmp_path, obama, fmt):
    pixels, face = obama
    result = export_headshots(pixels, tmp_path, ["print", "square"], format=fmt, face=face, stem="o")
    by_crop = result.by_crop()
    path = by_crop["print"].path
    with Image.open(path) as image:
        assert image.size == (1200, 1500)
    if fmt == "webp":
        assert file_dpi(path) is None and any(
            "WebP files cannot store a print size" in n for n in by_crop["print"].notes
        )
    else:
        assert file_dpi(path) == pytest.approx((300.0, 300.0), abs=0.01)
    assert icc_description(path) == icc_description(by_crop["square"].path) == "sRGB built-in"
    assert by_crop["print"].to_dict()["dpi"] == 300 and by_crop["print"].print_detail is not None
    assert "dpi" not in by_crop["square"].to_dict()


def test_configurable_print_sizes():
    assert CROPS["print"].size == (1200, 1500) and CROPS["print"].inches == (4.0, 5.0)
    assert print_crop(5, 7, dpi=240).size == (1200, 1680)
    assert print_crop(8, 10).inches == (8.0, 10.0)
    with pytest.raises(ExportError):
        print_crop(4, 5, dpi=20)


def test_too_small_source_is_warned_with_the_shortfall(tmp_path, obama):
    pixels, _ = obama
    small = np.asarray(Image.fromarray(pixels).resize((455, 568), Image.Resampling.LANCZOS))
    small_face = find_face(small)
    result = export_headshots(small, tmp_path, ["print"], face=small_face, format="jpeg", stem="s")
    image = result.images[0]
    plan = plan_crop(small.shape, "print", small_face)
    inside = min(plan.rect[3], small.shape[0]) - max(plan.rect[1], 0)
    note = next(n for n in image.notes if "print" in n)
    match = re.search(r"has (\d+) px of real detail.*needs 1500 px: ([\d.]+)× short", note)
    assert match, note
    assert int(match.group(1)) == round(inside) and float(match.group(2)) == pytest.approx(1500 / inside, abs=0.05)
    assert "4×5 in at 300 dpi" in note and "super-resolution" in note
    assert image.notes[-1].startswith("For the operator:") and "headshot-lab upscale" in image.notes[-1]
    # The app: a plain sentence in the table and a short caption; the command only in the operator section.
    shown = format_export([{"file": image.path.name, "kind": "generated"}], [], [], {image.path.name: image.notes})
    visitor, _, operator = shown.partition(OPERATOR_MARK)
    assert "× short" in visitor and "headshot-lab upscale" not in visitor and "headshot-lab upscale" in operator
    assert "too little detail to print sharp" in export_caption(image.path.name, image.notes)
    with pytest.raises(ExportError) as info:
        export_headshots(small, tmp_path / "r", ["print"], face=small_face, refuse_short_print=True)
    assert info.value.code == "print_detail_short" and "headshot-lab upscale" in info.value.fix


def test_a_large_enough_source_is_quiet(tmp_path, load_real):
    """The realistic null: a real photo (1434×2333) with enough pixels behind the print crop gets no print warning.

    Its face leaves ~1220 px behind a 4:5 print crop: enough for 3×3.75 in at 300 dpi (1125 px, quiet), not for
    4×5 in (1500 px: warned, 1.2× short) — the same photo on both sides of the line.
    """
    pixels = load_real("obama3")
    face = find_face(pixels)
    small = export_headshots(pixels, tmp_path, [print_crop(3, 3.75)], face=face, stem="big").images[0]
    assert small.print_detail is not None and not small.print_detail.short and not small.print_detail.model_detail
    assert not any("print" in note for note in small.notes), small.notes
    large = export_headshots(pixels, tmp_path / "l", ["print"], face=face, stem="big").images[0]
    assert large.print_detail.short and 1.1 < large.print_detail.short_by < 1.4


def test_upscaled_sources_do_not_pretend(tmp_path, obama):
    pixels, _ = obama
    small = np.asarray(Image.fromarray(pixels).resize((228, 284), Image.Resampling.LANCZOS))
    source = save_with_provenance(small, tmp_path / "small.png", "generated")
    lanczos = upscale_file(source, tmp_path / "up", 4, model="lanczos")
    model = upscale_file(source, tmp_path / "sr", 4, model=str(tiny_sr_model(tmp_path / "m.pth", scale=4)))
    face = find_face(np.asarray(Image.open(lanczos.path).convert("RGB")))
    by_lanczos = export_headshots(lanczos.path, tmp_path / "a", ["print"], face=face).images[0]
    by_model = export_headshots(model.path, tmp_path / "b", ["print"], face=face).images[0]
    # Lanczos added pixels, not detail: the check divides them back out and still warns.
    assert by_lanczos.print_detail.short and by_lanczos.print_detail.photographed < 400
    # A model's pixels count as upscaled detail, said so, never as photographed detail.
    detail = by_model.print_detail
    assert detail.model_gain == 4 and detail.photographed == pytest.approx(by_lanczos.print_detail.photographed)
    assert any("made by a super-resolution model" in n or "super-resolution model added" in n for n in by_model.notes)
    # The history travels into the exported file, so the next check still knows.
    assert "spandrel:Compact" in (read_history(by_model.path) or "")


def test_print_detail_arithmetic():
    spec = CROPS["print"]
    plan = plan_crop((3000, 2400), spec, None)  # centred: the whole 3000 px height
    assert print_detail(plan, (3000, 2400), spec).short_by == pytest.approx(0.5)
    history = "; ".join([history_line(2, "lanczos", (1200, 1500)), history_line(2, "spandrel:ESRGAN", (2400, 3000))])
    detail = print_detail(plan, (3000, 2400), spec, history)
    assert detail.photographed == pytest.approx(750) and detail.model_made == pytest.approx(1500)
    assert not detail.short and detail.model_detail and detail.short_by == pytest.approx(2.0)
    assert print_detail(plan, (3000, 2400), CROPS["square"]) is None


def test_cli_print_size_dpi_and_refusal(tmp_path, obama, load_real, capsys):
    """``export --print-size 5x7 --print-dpi 150`` writes 750×1050 px at 150 dpi; a small source is written with
    a warning by default and refused with ``--refuse-short-print`` (exit 1, the others go on); a bad size is a
    usage error."""
    import json

    from headshot_lab.cli import main

    pixels, _ = obama
    big, small = tmp_path / "big.png", tmp_path / "small.png"
    Image.fromarray(load_real("obama3")).save(big)  # ~1220 px of real detail behind the crop: enough
    Image.fromarray(pixels).resize((455, 568), Image.Resampling.LANCZOS).save(small)
    args = ["export", str(big), str(small), "--formats", "print", "--print-size", "5x7", "--print-dpi", "150"]
    assert main([*args, "--out", str(tmp_path / "a"), "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [(r["width"], r["height"]) for r in records] == [(750, 1050)] * 2
    assert file_dpi(records[0]["path"]) == (150.0, 150.0)
    assert any("× short" in note for note in records[1]["notes"]) and not any("short" in n for n in records[0]["notes"])
    assert main([*args, "--out", str(tmp_path / "b"), "--json", "--refuse-short-print"]) == 1
    captured = capsys.readouterr()
    assert [Path(r["path"]).stem for r in json.loads(captured.out)] == ["big_print"]
    assert "small.png" in captured.err and "headshot-lab upscale" in captured.err
    with pytest.raises(SystemExit):
        main(["export", str(big), "--out", str(tmp_path / "c"), "--print-size", "five by seven"])
    assert "not WxH in inches" in capsys.readouterr().err
