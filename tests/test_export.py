"""Export: crops placed from landmarks on real photos, banner without stretching, circle alpha,
no upload metadata in any output, zip integrity, fallback, upscaling flags, team consistency, CLI."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from headshot_lab.export import (
    CROPS,
    CropSpec,
    FaceGeometry,
    StyleGuide,
    apply_style,
    circle_alpha,
    crop_image,
    export_headshots,
    export_team,
    extend_backdrop,
    find_face,
    plan_crop,
    render_crop,
    team_consistency,
    zip_exports,
)
from headshot_lab.faces.base import Face
from headshot_lab.provenance import C2PA_CERT_ENV, C2PA_KEY_ENV, read_provenance

EYE_BAND = 0.08  # eyes must land within ±8 % of the height of the spec's eye line (frames may slide ≤ 6 %)
CENTRE_BAND = 0.08  # face centre within ±8 % of the width of where the spec puts it


@pytest.fixture(autouse=True)
def _no_c2pa_env(monkeypatch):
    monkeypatch.delenv(C2PA_CERT_ENV, raising=False)
    monkeypatch.delenv(C2PA_KEY_ENV, raising=False)


@pytest.fixture(scope="module")
def face_of():
    """``face_of(name, pixels) -> Face`` detected once per photo per module (detection is the slow part)."""
    cache: dict[str, Face | None] = {}

    def _face(name: str, pixels: np.ndarray) -> Face | None:
        if name not in cache:
            cache[name] = find_face(pixels)
        return cache[name]

    return _face


def _measure(pixels: np.ndarray) -> tuple[Face, FaceGeometry]:
    face = find_face(pixels[..., :3])
    assert face is not None, "no face found in the exported crop"
    return face, FaceGeometry.from_face(face)


@pytest.mark.parametrize("name", ["obama", "biden", "astronaut"])
def test_crops_have_the_right_sizes_and_place_the_face(tmp_path, load_real, face_of, name):
    pixels = load_real(name)
    face = face_of(name, pixels)
    assert face is not None
    result = export_headshots(pixels, tmp_path, format="png", face=face, stem=name)
    by_crop = result.by_crop()
    assert set(by_crop) == set(CROPS)
    for crop_name, image in by_crop.items():
        spec = CROPS[crop_name]
        with Image.open(image.path) as opened:
            out = np.asarray(opened)
        if spec.size is None:  # hi-res original: the whole photo, native size, pixels intact (PNG)
            assert out.shape[:2] == pixels.shape[:2] and np.array_equal(out[..., :3], pixels)
            continue
        width, height = spec.size
        assert (out.shape[1], out.shape[0]) == (width, height) == image.size
        assert min(width, height) >= 396 and (crop_name != "square" or width == height >= 400)
        measured_face, geometry = _measure(out)
        eye_line = geometry.eyes[1] / height
        face_centre = (measured_face.box[0] + measured_face.box[2]) / 2 / width
        assert abs(eye_line - spec.eye_line) <= EYE_BAND, (crop_name, eye_line)
        assert abs(face_centre - spec.center_x) <= CENTRE_BAND, (crop_name, face_centre)
        # The plan's own prediction matches what a detector sees in the file.
        assert abs(eye_line - image.eye_line) < 0.02
    assert by_crop["bio"].size[0] * 5 == by_crop["bio"].size[1] * 4


def test_banner_is_not_stretched(load_real, face_of):
    pixels = load_real("obama")
    source_face = face_of("obama", pixels)
    banner = crop_image(pixels, "banner", face=source_face)
    assert banner.pixels.shape == (396, 1584, 3)
    assert banner.plan.extended > 0.3  # the photo is portrait: most of the banner is extended backdrop
    banner_face, banner_geometry = _measure(banner.pixels)
    source_geometry = FaceGeometry.from_face(source_face)

    def shape_ratios(face: Face) -> tuple[float, float]:
        p = face.landmarks5
        eye_distance = np.linalg.norm(p[1] - p[0])
        eye_to_mouth = np.linalg.norm((p[0] + p[1]) / 2 - (p[3] + p[4]) / 2)
        return eye_distance / eye_to_mouth, face.width / face.height

    for before, after in zip(shape_ratios(source_face), shape_ratios(banner_face), strict=True):
        assert after == pytest.approx(before, rel=0.08)
    # One uniform scale: the face's size grew exactly as the plan says.
    assert banner_geometry.size / source_geometry.size == pytest.approx(banner.plan.scale, rel=0.05)
    # Right of centre, as LinkedIn banners need (the profile photo covers the lower left).
    assert (banner_face.box[0] + banner_face.box[2]) / 2 > 0.6 * 1584


def test_render_is_a_uniform_lanczos_resample(load_real, face_of):
    pixels = load_real("obama3")
    plan = plan_crop(pixels.shape, "square", face_of("obama3", pixels))
    assert plan.extended == 0
    expected = Image.fromarray(pixels).resize((1080, 1080), Image.Resampling.LANCZOS, box=plan.rect, reducing_gap=3.0)
    assert np.array_equal(render_crop(pixels, plan), np.asarray(expected))


@pytest.mark.parametrize("fmt", ["png", "webp"])
def test_circle_has_transparent_corners(tmp_path, load_real, face_of, fmt):
    pixels = load_real("obama")
    result = export_headshots(
        pixels, tmp_path, ["circle"], format=fmt, face=face_of("obama", pixels), transparent_circle=True
    )
    with Image.open(result.images[0].path) as image:
        assert image.mode == "RGBA"
        alpha = np.asarray(image.getchannel("A"))
    size = alpha.shape[0]
    for y, x in [(0, 0), (0, size - 1), (size - 1, 0), (size - 1, size - 1), (40, 40)]:
        assert alpha[y, x] == 0
    assert alpha[size // 2, size // 2] == 255 and alpha[size // 2, 5] == 255  # inside the circle, near its edge
    assert read_provenance(result.images[0].path)["kind"] == "generated"


def test_circle_asked_in_jpeg_is_a_transparent_png_and_says_so(tmp_path, load_real, face_of):
    pixels = load_real("obama")
    result = export_headshots(pixels, tmp_path, ["square", "circle"], format="jpeg", face=face_of("obama", pixels))
    square, circle = result.images
    assert square.path.suffix == ".jpg" and circle.path.suffix == ".png" and circle.format == "PNG"
    with Image.open(circle.path) as image:
        assert image.mode == "RGBA"
        alpha = np.asarray(image.getchannel("A"))
    assert alpha[0, 0] == 0 and alpha[alpha.shape[0] // 2, alpha.shape[1] // 2] == 255  # round, not a square
    assert any("PNG" in note and "JPEG" in note for note in circle.notes)
    assert not any("PNG" in note for note in square.notes)
    assert read_provenance(circle.path)["kind"] == "generated"


def test_circle_alpha_is_antialiased_disk():
    alpha = circle_alpha((200, 200))
    assert alpha[100, 100] == 255 and alpha[0, 0] == 0
    yy, xx = np.mgrid[:200, :200]
    radius = np.hypot(xx - 99.5, yy - 99.5)
    soft = (alpha > 0) & (alpha < 255)
    assert soft.any() and np.all(np.abs(radius[soft] - 100) < 2)  # partial alpha only on the rim
    assert abs(alpha.astype(float).mean() / 255 - np.pi / 4) < 0.01  # area of the inscribed disk


def _upload_with_gps(path, pixels: np.ndarray) -> None:
    exif = Image.Exif()
    exif[0x010F] = "SecretPhoneMaker"
    exif[0x0132] = "2024:05:01 10:00:00"
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0), 0x1D: "2024:05:01"})
    Image.fromarray(pixels).save(path, exif=exif, quality=92)


def test_gps_exif_of_an_upload_is_absent_from_every_output(tmp_path, load_real, face_of):
    pixels = load_real("obama")
    upload = tmp_path / "upload.jpg"
    _upload_with_gps(upload, pixels)
    with Image.open(upload) as check:  # the upload really carries GPS
        assert check.getexif().get_ifd(0x8825)[1] == "N"
    outputs = []
    for fmt in ("jpeg", "png", "webp"):
        result = export_headshots(upload, tmp_path / fmt, format=fmt, zip_name="all.zip", face=face_of("obama", pixels))
        outputs += result.paths
        with zipfile.ZipFile(result.zip_path) as archive:
            blobs = [archive.read(name) for name in archive.namelist()]
        outputs_bytes = [path.read_bytes() for path in result.paths] + blobs
        for data in outputs_bytes:
            assert b"SecretPhoneMaker" not in data and b"Exif\x00\x00" not in data and b"2024:05:01" not in data
    assert len(outputs) == 3 * len(CROPS)  # every crop (print included) in each format
    for path in outputs:
        with Image.open(path) as image:
            exif = image.getexif()
            assert len(exif) == 0 and not exif.get_ifd(0x8825)
            assert "exif" not in image.info
        assert read_provenance(path)["digital_source_type"] is not None


def test_zip_holds_the_files_byte_for_byte_with_xmp(tmp_path, load_real, face_of):
    pixels = load_real("biden")
    result = export_headshots(
        pixels,
        tmp_path,
        ["square", "banner"],
        format="webp",
        kind="retouched",
        face=face_of("biden", pixels),
        zip_name="picks.zip",
    )
    with zipfile.ZipFile(result.zip_path) as archive:
        assert sorted(archive.namelist()) == sorted(p.name for p in result.paths)
        for path in result.paths:
            data = archive.read(path.name)
            assert data == path.read_bytes()
            extracted = tmp_path / "x" / path.name
            extracted.parent.mkdir(exist_ok=True)
            extracted.write_bytes(data)
            assert read_provenance(extracted)["kind"] == "retouched"


def test_zip_keeps_files_with_the_same_name(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.png").write_bytes(b"one")
    (tmp_path / "b" / "x.png").write_bytes(b"two")
    archive = zip_exports([tmp_path / "a" / "x.png", tmp_path / "b" / "x.png"], tmp_path / "z.zip")
    with zipfile.ZipFile(archive) as z:
        assert sorted(z.namelist()) == ["x-2.png", "x.png"]
        assert {z.read("x.png"), z.read("x-2.png")} == {b"one", b"two"}


def test_no_face_falls_back_to_a_centred_crop_and_says_so(tmp_path):
    rng = np.random.default_rng(1)
    landscape = (rng.random((600, 900, 3)) * 255).astype(np.uint8)
    landscape[:, :450] //= 2  # a left/right difference to locate the crop
    result = export_headshots(landscape, tmp_path, ["square", "bio"], format="png")
    assert result.face is None and any("No face" in note for note in result.notes)
    for image in result.images:
        assert image.fallback and not image.face_found
        assert any("centred crop" in note for note in image.notes)
    plan = plan_crop(landscape.shape, "square", None)
    left, top, right, bottom = plan.rect
    assert (left + right) / 2 == pytest.approx(450) and (top, bottom) == (0, 600)
    assert plan.extended == 0


def test_group_photo_frames_the_largest_face_and_says_so(tmp_path, load_real):
    result = export_headshots(load_real("group"), tmp_path, ["square"], format="jpeg")
    (note,) = [n for n in result.notes if "faces were found" in n]
    assert int(note.split()[0]) >= 2
    assert result.images[0].face_found and not result.images[0].fallback
    box = result.face["box"]
    assert (box[2] - box[0]) * (box[3] - box[1]) > 0


def _geometry(x: float, y: float, size: float) -> FaceGeometry:
    return FaceGeometry(eyes=(x, y), center_x=x, size=size, roll=0.0, from_landmarks=True)


def test_small_sources_are_upscaled_only_to_the_target_and_flagged(load_real, face_of):
    small = load_real("tom_hanks")  # 112×112
    cropped = crop_image(small, "square", face=face_of("tom_hanks", small))
    assert cropped.pixels.shape == (1080, 1080, 3)
    assert cropped.plan.upscaled and cropped.plan.scale > 3
    assert any("smaller than the target" in note and "upscaled ×" in note for note in cropped.plan.notes)
    assert any("Low resolution" in note for note in cropped.plan.notes)

    big = plan_crop((4000, 3000), "square", _geometry(1500, 1500, 800))  # crop 2000 px → downscaled
    assert not big.upscaled and big.scale == pytest.approx(1080 / 2000)
    assert not any("smaller than the target" in note for note in big.notes)


def test_plan_geometry_exact_when_the_frame_fits():
    spec = CROPS["bio"]
    plan = plan_crop((3000, 2000), spec, _geometry(1000, 1200, 450))
    assert plan.eye_line == pytest.approx(spec.eye_line)
    assert plan.center_x == pytest.approx(spec.center_x)
    assert plan.face_height == pytest.approx(spec.face_height)
    left, top, right, bottom = plan.rect
    assert (right - left) / (bottom - top) == pytest.approx(4 / 5)
    assert plan.extended == 0 and plan.notes == ()


def test_plan_slides_and_zooms_only_within_limits():
    spec = CropSpec("t", (1000, 1000), eye_line=0.4, face_height=0.4, max_shift=0.05, max_zoom=1.2)
    near_top = plan_crop((2000, 2000), spec, _geometry(1000, 300, 400))  # wants top = -100
    assert near_top.eye_line == pytest.approx(0.4 - 0.05)  # slid by the maximum 5 %
    assert near_top.extended > 0
    huge = plan_crop((1000, 1000), spec, _geometry(500, 450, 600))  # wants a 1500 px crop of a 1000 px photo
    assert huge.face_height == pytest.approx(0.4 * 1.2)
    assert any("Zoomed in 1.20×" in note for note in huge.notes)
    exact = CropSpec("e", (1000, 1000), max_shift=0, max_zoom=1)
    fixed = plan_crop((2000, 2000), exact, _geometry(1000, 300, 400))
    assert fixed.eye_line == pytest.approx(0.4) and fixed.face_height == pytest.approx(0.4)


def test_box_only_faces_still_place_the_crop():
    face = Face(box=(100, 100, 300, 300))
    geometry = FaceGeometry.from_face(face)
    assert geometry.eyes == (200, 160) and geometry.size == pytest.approx(220) and not geometry.from_landmarks


def test_extension_keeps_the_photo_and_only_uses_its_colours():
    rng = np.random.default_rng(2)
    region = (rng.random((50, 40, 3)) * 200 + 20).astype(np.uint8)
    out = extend_backdrop(region, (10, 20, 30, 40))
    assert out.shape == (80, 110, 3)
    assert np.array_equal(out[10:60, 30:70], region)
    assert out.min() >= region.min() and out.max() <= region.max()
    far_left = out[:, :5].astype(float)
    assert far_left.std(axis=0).mean() < region.astype(float).std(axis=0).mean()  # smooth, not a copy of the noise


def test_unknown_crop_and_empty_request_are_clear_errors(tmp_path):
    from headshot_lab.export import ExportError

    pixels = np.zeros((300, 300, 3), np.uint8)
    with pytest.raises(ExportError) as info:
        export_headshots(pixels, tmp_path, ["poster"], face=None)
    assert "square" in info.value.fix
    with pytest.raises(ExportError):
        export_headshots(pixels, tmp_path, [], face=None)


def test_team_consistency_uniform_pair_beats_mismatched_pair(tmp_path, load_real, face_of):
    obama, biden = load_real("obama"), load_real("biden")
    faces = {"obama": face_of("obama", obama), "biden": face_of("biden", biden)}
    guide = StyleGuide(crop="square", backdrop=(205, 208, 212))
    uniform = {
        name: apply_style(img, guide, face=faces[name]).pixels for name, img in [("obama", obama), ("biden", biden)]
    }
    loose = CropSpec("loose", (1080, 1080), eye_line=0.30, face_height=0.26)
    mismatched = {
        "obama": crop_image(obama, "square", face=faces["obama"]).pixels,  # own office backdrop
        "biden": crop_image(biden, loose, face=faces["biden"]).pixels,  # own backdrop, other framing
    }
    good, bad = team_consistency(uniform), team_consistency(mismatched)
    assert 0 <= bad.score < good.score <= 1
    assert good.backdrop_delta_e < 2 < bad.backdrop_delta_e
    assert good.eye_line_spread < bad.eye_line_spread
    assert good.face_scale_spread < bad.face_scale_spread
    assert good.to_dict()["people"][0]["face_found"]


def test_export_team_writes_disclosed_files_and_a_score(tmp_path, load_real):
    people = {"obama": load_real("obama"), "astronaut": load_real("astronaut")}
    team = export_team(people, tmp_path, StyleGuide(crop="bio"), format="png", zip_name="team.zip")
    assert set(team.images) == set(people)
    for image in team.images.values():
        assert image.size == (1080, 1350)
        assert read_provenance(image.path)["kind"] == "retouched"
    assert team.consistency.score > 0.8
    with zipfile.ZipFile(team.zip_path) as archive:
        assert len(archive.namelist()) == 2
    assert json.loads(json.dumps(team.to_dict()))["consistency"]["components"]["backdrop"] > 0.9


def test_export_team_circle_is_cut_round(tmp_path, load_real):
    """A team whose guide says circle gets round files (transparent outside, as a one-person circle crop); asked for
    JPEG they are PNG with the note saying why; the consistency score is measured on the same portraits."""
    people = {"obama": load_real("obama"), "astronaut": load_real("astronaut")}
    team = export_team(people, tmp_path, StyleGuide(crop="circle"), format="jpeg")
    for image in team.images.values():
        assert image.path.suffix == ".png" and image.format == "PNG"
        with Image.open(image.path) as written:
            alpha = np.asarray(written.convert("RGBA"))[..., 3]
        assert alpha[0, 0] == 0 and alpha[alpha.shape[0] // 2, alpha.shape[1] // 2] == 255
        assert any("see-through" in note for note in image.notes)
        assert read_provenance(image.path)["kind"] == "retouched"
    square = export_team(people, tmp_path / "square", StyleGuide(crop="square"), format="jpeg")
    assert all(image.path.suffix == ".jpg" for image in square.images.values())
    assert team.consistency.score == pytest.approx(square.consistency.score, abs=0.05)


# -- CLI -----------------------------------------------------------------------------------------


@pytest.fixture()
def cli():
    """``headshot-lab`` main entry point."""
    from headshot_lab.cli import main

    return main


def test_cli_export_prints_paths_and_writes_a_zip(tmp_path, real_photos, cli, capsys):
    out = tmp_path / "out"
    code = cli(
        [
            "export",
            str(real_photos["astronaut"]),
            "--formats",
            "square,banner",
            "--out",
            str(out),
            "--zip",
            "--format",
            "png",
        ]
    )
    assert code == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert [line.rsplit("/", 1)[-1] for line in lines] == [
        "astronaut_square.png",
        "astronaut_banner.png",
        "headshots.zip",
    ]
    assert all((out / line.rsplit("/", 1)[-1]).is_file() for line in lines)
    assert read_provenance(lines[0])["kind"] == "generated"
    assert "note:" in captured.err  # the astronaut photo is small: upscaling is reported


def test_cli_export_json_and_kind(tmp_path, real_photos, cli, capsys):
    code = cli(
        [
            "export",
            str(real_photos["astronaut"]),
            "--formats",
            "hires",
            "--out",
            str(tmp_path),
            "--json",
            "--kind",
            "retouched",
            "--format",
            "webp",
        ]
    )
    assert code == 0
    records = json.loads(capsys.readouterr().out)
    assert isinstance(records, list) and len(records) == 1
    record = records[0]
    assert (
        record["crop"] == "hires" and record["format"] == "webp" and (record["width"], record["height"]) == (512, 512)
    )
    assert record["digital_source_type"].endswith("compositeWithTrainedAlgorithmicMedia")
    assert read_provenance(record["path"])["kind"] == "retouched"


def test_cli_export_bad_input_is_reported_not_a_traceback(tmp_path, real_photos, cli, capsys):
    not_a_photo = tmp_path / "notes.txt"
    not_a_photo.write_text("hello")
    code = cli(
        ["export", str(not_a_photo), str(real_photos["astronaut"]), "--formats", "hires", "--out", str(tmp_path / "o")]
    )
    captured = capsys.readouterr()
    assert code == 1 and "notes.txt" in captured.err and "Traceback" not in captured.err
    assert captured.out.strip().endswith("astronaut_hires.jpg")  # the good photo was still exported
    with pytest.raises(SystemExit) as info:
        cli(["export", str(real_photos["astronaut"]), "--formats", "poster", "--out", str(tmp_path)])
    assert info.value.code == 2


def test_extension_fades_stripes_instead_of_streaking_and_keeps_the_seam_continuous():
    # A photo whose left edge is a striped flag (8-px bands) on grey, extended 600 px to the left.
    region = np.full((200, 120, 3), 128, np.uint8)
    stripes = (np.arange(200) // 8) % 2 == 0
    region[stripes, :30] = (200, 30, 40)
    region[~stripes, :30] = (240, 240, 240)
    out = extend_backdrop(region, (0, 0, 600, 0)).astype(float)
    edge = region[:, 0].astype(float)
    assert np.abs(out[:, 599] - edge).mean() < 0.25 * edge.std(axis=0).mean()  # the seam carries the edge on
    assert (
        out[:, 600 - 40].std(axis=0).mean() < 0.1 * edge.std(axis=0).mean()
    )  # ... and the stripes fade within 5 widths
    far = out[:, :100]
    assert far.std(axis=0).mean() < 0.05 * edge.std(axis=0).mean()  # far away: no streaks, a smooth field
    assert np.abs(far.mean(axis=(0, 1)) - edge.mean(axis=0)).max() < 3  # ... of the edge's own colours


def test_extension_below_a_shirt_fades_into_the_backdrop_beside_it():
    # A portrait cut off at the shirt: grey backdrop, a dark shirt across the middle of the bottom rows.
    region = np.full((300, 300, 3), 170, np.uint8)
    region[200:, 90:210] = 25
    out = extend_backdrop(region, (0, 150, 400, 400)).astype(float)
    corner = out[-20:, :100].mean(axis=(0, 1))  # far below and beside the photo
    assert np.abs(corner - 170).max() < 15  # backdrop, not a dark block
    below = out[-1, 400 + 150]  # straight under the shirt, at the bottom
    assert 25 <= below.mean() <= 170  # the shirt fades out, inside the photo's range
