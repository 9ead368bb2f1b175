"""Safe image loading: every hostile or odd input gets a clear ImageError, good ones come out RGB."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from headshot_lab import errors
from headshot_lab.io import as_rgb_array, load_image, load_photo, save_image


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def gradient(width: int = 320, height: int = 400) -> Image.Image:
    x = np.linspace(0, 255, width, dtype=np.uint8)[None, :].repeat(height, 0)
    y = np.linspace(0, 255, height, dtype=np.uint8)[:, None].repeat(width, 1)
    return Image.fromarray(np.stack([x, y, 255 - x], axis=2))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "TIFF"])
def test_common_formats_load_as_rgb_uint8(fmt):
    photo = load_photo(encode(gradient(), fmt))
    assert photo.pixels.dtype == np.uint8
    assert photo.pixels.shape == (400, 320, 3)
    assert photo.format == fmt


def test_format_sniffed_from_content_not_extension(tmp_path):
    path = tmp_path / "photo.png"  # really a JPEG
    path.write_bytes(encode(gradient(), "JPEG"))
    photo = load_photo(path)
    assert photo.format == "JPEG"
    assert photo.name == "photo.png"


@pytest.mark.parametrize(
    ("payload", "expected_error", "words"),
    [
        (b"", errors.EmptyFileError, "empty"),
        (b"<!DOCTYPE html><html><body>hi</body></html>", errors.NotAnImageError, "web page"),
        (b"just some notes\nabout my photos\n", errors.NotAnImageError, "text file"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", errors.NotAnImageError, "PDF"),
        (bytes(range(256)) * 4, errors.UnsupportedFormatError, "not a recognised image"),
    ],
)
def test_non_images_get_a_clear_message(payload, expected_error, words):
    with pytest.raises(expected_error, match=words) as info:
        load_photo(payload, name="x.jpg")
    assert info.value.fix
    assert info.value.to_dict()["code"] == expected_error.code


def test_zip_with_image_extension_is_named_as_zip():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("a.txt", "hello")
    with pytest.raises(errors.NotAnImageError, match="ZIP"):
        load_photo(buffer.getvalue(), name="photo.jpg")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_truncated_files_are_reported_not_crashed(fmt):
    data = encode(gradient(), fmt)
    with pytest.raises((errors.TruncatedImageError, errors.UnsupportedFormatError)):
        load_photo(data[: len(data) // 2])


def test_decompression_bomb_refused_before_decoding():
    # A 20000×20000 PNG of one colour compresses to a few hundred KB but is 400 MP.
    bomb = encode(Image.new("L", (20000, 20000)), "PNG")
    assert len(bomb) < 2_000_000
    with pytest.raises(errors.ImageTooLargeError, match="megapixels"):
        load_photo(bomb)


def test_pixel_cap_is_configurable(monkeypatch):
    data = encode(gradient(400, 400), "PNG")
    with pytest.raises(errors.ImageTooLargeError):
        load_photo(data, max_pixels=100_000)
    monkeypatch.setenv("HEADSHOT_LAB_MAX_PIXELS", "100000")
    with pytest.raises(errors.ImageTooLargeError):
        load_photo(data)


def test_tiny_images_refused_with_min_side(monkeypatch):
    with pytest.raises(errors.ImageTooSmallError, match="too small"):
        load_photo(encode(Image.new("RGB", (1, 1)), "PNG"))
    assert load_photo(encode(Image.new("RGB", (1, 1)), "PNG"), min_side=0).pixels.shape == (1, 1, 3)


def test_file_size_cap(tmp_path):
    path = tmp_path / "big.jpg"
    path.write_bytes(encode(gradient(), "JPEG"))
    with pytest.raises(errors.ImageTooLargeError, match="MB"):
        load_photo(path, max_bytes=100)


def test_missing_file_is_an_image_error(tmp_path):
    with pytest.raises(errors.ImageError, match="not found"):
        load_photo(tmp_path / "nope.jpg")


def test_cmyk_converts_to_plausible_rgb():
    cmyk = Image.new("CMYK", (300, 300), (0, 255, 255, 0))  # pure red ink
    rgb = load_photo(encode(cmyk, "JPEG")).pixels
    r, g, b = rgb[150, 150].astype(int)
    assert r > 200 and g < 60 and b < 60


def test_16bit_greyscale_is_rescaled_not_clipped():
    values = np.full((300, 300), 32768, dtype=np.uint16)  # mid grey in 16 bit
    rgb = load_photo(encode(Image.fromarray(values), "PNG")).pixels
    assert abs(int(rgb[0, 0, 0]) - 128) <= 1
    assert (rgb[..., 0] == rgb[..., 1]).all()


def test_alpha_is_composited_on_white():
    rgba = np.zeros((300, 300, 4), dtype=np.uint8)
    rgba[:, :150] = (255, 0, 0, 255)  # opaque red left half, transparent right half
    rgb = load_photo(encode(Image.fromarray(rgba, "RGBA"), "PNG")).pixels
    assert tuple(rgb[10, 10]) == (255, 0, 0)
    assert tuple(rgb[10, 290]) == (255, 255, 255)


def test_palette_and_grayscale_and_la():
    base = gradient()
    for image in (base.convert("P"), base.convert("L"), base.convert("LA"), base.convert("1")):
        rgb = load_photo(encode(image, "PNG")).pixels
        assert rgb.shape == (400, 320, 3)


def test_animated_gif_takes_first_frame():
    frames = [Image.new("RGB", (300, 300), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    rgb = load_photo(data).pixels
    assert rgb[0, 0, 0] > 200 and rgb[0, 0, 2] < 50


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(orientation):
    # A 300×400 image with a red marker in its top-left corner.
    pixels = np.zeros((400, 300, 3), dtype=np.uint8)
    pixels[:40, :40] = (255, 0, 0)
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = orientation
    photo = load_photo(encode(image, "JPEG", exif=exif.tobytes(), quality=95))
    expected = Image.fromarray(pixels).transpose(_ORIENTATION_OPS[orientation]) if orientation > 1 else image
    assert photo.pixels.shape[:2] == (expected.height, expected.width)
    marker = np.argwhere(photo.pixels[..., 0] > 200).mean(axis=0)
    expected_marker = np.argwhere(np.asarray(expected)[..., 0] > 200).mean(axis=0)
    assert np.allclose(marker, expected_marker, atol=3)
    assert photo.exif_rotated == (orientation != 1)


_ORIENTATION_OPS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def test_metadata_is_stripped_including_gps(tmp_path):
    image = gradient()
    exif = image.getexif()
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(0x8825)
    gps[2] = (52.0, 31.0, 12.0)  # GPSLatitude
    gps[1] = "N"
    data = encode(image, "JPEG", exif=exif.tobytes())
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(0x8825)  # the input really has GPS
    loaded = load_image(data)
    assert not loaded.info and not loaded.getexif()
    out = save_image(loaded, tmp_path / "out.jpg")
    reread = Image.open(out)
    assert not reread.getexif() and "exif" not in reread.info
    assert not reread.getexif().get_ifd(0x8825)


def test_file_objects_and_paths(tmp_path):
    data = encode(gradient(), "PNG")
    path = tmp_path / "a.png"
    path.write_bytes(data)
    with path.open("rb") as handle:
        from_handle = load_photo(handle)
    assert from_handle.name == "a.png"
    assert np.array_equal(from_handle.pixels, load_photo(path).pixels)


def test_heic_when_pillow_heif_is_installed():
    pillow_heif = pytest.importorskip("pillow_heif")
    image = gradient()
    buffer = io.BytesIO()
    pillow_heif.from_pillow(image).save(buffer, quality=90)
    photo = load_photo(buffer.getvalue())
    assert photo.format == "HEIF"
    assert photo.pixels.shape == (400, 320, 3)


def test_as_rgb_array_accepts_many_inputs():
    base = np.asarray(gradient())
    assert as_rgb_array(base).shape == base.shape
    assert as_rgb_array(Image.fromarray(base)).shape == base.shape
    assert as_rgb_array(base[..., 0]).shape == base.shape
    with pytest.raises(ValueError):
        as_rgb_array(np.zeros((3, 3, 7)))


def test_real_photo_loads(real_photos):
    photo = load_photo(real_photos["obama"])
    assert photo.format == "JPEG"
    assert min(photo.pixels.shape[:2]) >= 256
