"""Safe image loading: one door through which every photo enters the system.

``load_photo`` accepts a path, raw bytes or a binary file object and returns a :class:`Photo`
whose pixels are always 8-bit RGB, upright (EXIF orientation applied) and free of metadata
(EXIF, GPS, XMP, ICC, comments are never copied). The format is sniffed from the content, never
from the file name. Every failure is an :class:`~headshot_lab.errors.ImageError` subclass with a
message a person can act on.

Caps (defaults from :mod:`headshot_lab.config`):

* ``max_pixels`` — width × height above this is refused *before* decoding (decompression bombs).
* ``min_side`` — the shorter side below this is refused (thumbnails, avatars).
* ``max_bytes`` — files larger than this are refused before reading them whole.
"""

from __future__ import annotations

import io as _io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from headshot_lab.atomic import write_bytes_atomic
from headshot_lab.config import get_settings
from headshot_lab.errors import (
    EmptyFileError,
    ImageTooLargeError,
    ImageTooSmallError,
    NotAnImageError,
    TruncatedImageError,
    UnsupportedFormatError,
)

try:  # HEIC/HEIF straight from phones, when the optional wheel is installed.
    from pillow_heif import register_heif_opener

    register_heif_opener()
    HEIF_SUPPORTED = True
except ImportError:  # pragma: no cover - depends on the install
    HEIF_SUPPORTED = False

DEFAULT_MAX_BYTES = 60 * 1024 * 1024
#: EXIF orientations that turn or flip the pixels (1 and a missing tag leave them as stored).
_EXIF_TURNS = frozenset(range(2, 9))
ACCEPTED_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "HEIF", "AVIF", "TIFF", "BMP", "GIF"})
#: File-name suffixes taken to be photos when a folder is listed (training, ``check``, the audit's datasets,
#: the app's upload filter): the usual suffixes of :data:`ACCEPTED_FORMATS` (MPO files are named ``.jpg``).
#: The one definition; the loader itself goes by the file's content, never by its name.
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif", ".avif", ".tif", ".tiff", ".bmp", ".gif"}
)
ImageSource = str | Path | bytes | bytearray | BinaryIO

# Magic numbers of things people upload by mistake, to say what the file is instead.
_NOT_IMAGE_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a ZIP archive"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"\x7fELF", "a program"),
    (b"MZ", "a Windows program"),
)

# Magic numbers of the accepted formats: a file that starts like one but cannot be opened is damaged
# or cut short (an interrupted upload), not "some other kind of file".
_IMAGE_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
)
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis"})


def _image_format_of(head: bytes) -> str | None:
    """The accepted format ``head`` starts like (by its magic number), or ``None``."""
    for signature, fmt in _IMAGE_SIGNATURES:
        if head.startswith(signature):
            return fmt
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WebP"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return "AVIF" if head[8:12] in {b"avif", b"avis"} else "HEIC"
    if head[:2] == b"BM" and len(head) >= 10 and head[6:10] == b"\x00\x00\x00\x00":  # reserved bytes are zero
        return "BMP"
    return None


@dataclass(frozen=True)
class Photo:
    """A decoded, upright, metadata-free RGB photo.

    Attributes:
        pixels: ``(H, W, 3)`` ``uint8`` RGB array.
        name: display name (file name, or ``"upload"`` for bytes).
        format: the format sniffed from the content (``"JPEG"``, ``"PNG"`` …).
        original_mode: Pillow mode before conversion (``"CMYK"``, ``"I;16"``, ``"RGBA"`` …).
        exif_rotated: whether an EXIF orientation tag turned the image.
        frames: frames (or pages) in the file: animations, multi-page TIFF, MPO; only the first is used.
    """

    pixels: np.ndarray
    name: str
    format: str
    original_mode: str
    exif_rotated: bool = False
    frames: int = 1

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6

    def to_pil(self) -> Image.Image:
        return Image.fromarray(self.pixels, mode="RGB")


def read_bytes(source: ImageSource, *, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[bytes, str]:
    """Return ``(content, display_name)`` from a path, bytes or binary file object."""
    if isinstance(source, bytes | bytearray):
        data, name = bytes(source), "upload"
    elif isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise NotAnImageError(f"{path.name}: file not found.", fix="Check the path.", code="file_not_found")
        if path.stat().st_size > max_bytes:
            raise ImageTooLargeError(
                f"{path.name}: the file is {path.stat().st_size / 1e6:.0f} MB; the limit is {max_bytes / 1e6:.0f} MB."
            )
        data, name = path.read_bytes(), path.name
    else:
        data = source.read(max_bytes + 1)
        name = Path(getattr(source, "name", "upload") or "upload").name
        if len(data) > max_bytes:
            raise ImageTooLargeError(f"{name}: the file is larger than {max_bytes / 1e6:.0f} MB.")
    if not data:
        raise EmptyFileError(f"{name}: the file is empty (0 bytes).")
    return data, name


def _describe_non_image(head: bytes) -> str | None:
    for signature, what in _NOT_IMAGE_SIGNATURES:
        if head.startswith(signature):
            return what
    stripped = head.lstrip().lower()
    if stripped.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        return "a web page (HTML)"
    if stripped.startswith(b"<svg") or (stripped.startswith(b"<?xml") and b"<svg" in head):
        return "a vector drawing (SVG)"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason != "unexpected end of data":  # not merely a character cut by the 512-byte window
            return None
        text = head[: exc.start].decode("utf-8")
    if any(ord(ch) < 32 and ch not in "\t\n\r\f" for ch in text):  # NUL and friends: binary (a video, audio …)
        return None
    return "a text file"


def _to_rgb(image: Image.Image) -> np.ndarray:
    """Convert any Pillow mode to 8-bit RGB.

    * 16-bit and 32-bit integer greyscale are rescaled by their range (``I;16``: ÷257), not clipped:
      ``I`` and ``F`` by the smallest of 255, 65535 and 2³¹ − 1 that holds the data, ``F`` within
      0…1 by 1 (the float convention); NaN becomes 0 and ±inf the ends of the range.
    * Transparency is composited on white, as a viewer would show it.
    * CMYK uses the embedded ICC profile when there is one (else Pillow's conversion).
    """
    mode = image.mode
    if mode in {"I;16", "I;16L", "I;16B", "I;16N", "I", "F"}:
        values = np.asarray(image, dtype=np.float64)
        peak = float(values.max(initial=0.0, where=np.isfinite(values)))
        if mode.startswith("I;16"):
            top = 65535.0
        elif mode == "F" and peak <= 1.0:
            top = 1.0
        else:
            top = next((limit for limit in (255.0, 65535.0, 2.0**31 - 1) if peak <= limit), peak)
        values = np.nan_to_num(values, nan=0.0, posinf=top, neginf=0.0)
        grey = np.clip(np.round(values / top * 255.0), 0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=2)
    if mode == "CMYK" and image.info.get("icc_profile"):
        try:
            source = ImageCms.ImageCmsProfile(_io.BytesIO(image.info["icc_profile"]))
            srgb = ImageCms.createProfile("sRGB")
            return np.asarray(ImageCms.profileToProfile(image, source, srgb, outputMode="RGB"))
        except (ImageCms.PyCMSError, OSError):
            pass
    if mode == "P":
        image = image.convert("RGBA")
    if mode in {"LA", "La", "PA"}:
        image = image.convert("RGBA")
    if image.mode in {"RGBA", "RGBa"}:
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return np.asarray(image if image.mode == "RGB" else image.convert("RGB"))  # convert() would copy RGB


def load_photo(
    source: ImageSource,
    *,
    name: str | None = None,
    max_pixels: int | None = None,
    min_side: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Photo:
    """Decode a photo safely. See the module docstring for the guarantees.

    Args:
        source: a path, raw bytes, or a binary file object.
        name: display name for messages (defaults to the file name).
        max_pixels: decompression-bomb cap (default ``Settings.max_pixels``, about 40 MP).
        min_side: smallest accepted shorter side (default ``Settings.min_side``). ``0`` disables.
        max_bytes: largest accepted file size.

    Raises:
        ImageError: a subclass naming what is wrong, with a ``fix``.
    """
    settings = get_settings()
    max_pixels = settings.max_pixels if max_pixels is None else max_pixels
    min_side = settings.min_side if min_side is None else min_side
    data, default_name = read_bytes(source, max_bytes=max_bytes)
    name = name or default_name

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(_io.BytesIO(data))
        except UnidentifiedImageError:
            fmt = _image_format_of(data[:16])
            if fmt:
                raise TruncatedImageError(
                    f"{name}: the file starts like a {fmt} image but is damaged or incomplete."
                ) from None
            what = _describe_non_image(data[:512])
            if what:
                raise NotAnImageError(f"{name}: this is {what}, not a photo.") from None
            raise UnsupportedFormatError(f"{name}: not a recognised image format (or the file is corrupt).") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _bomb_error(name, max_pixels) from None
        except (OSError, SyntaxError, ValueError) as exc:
            raise TruncatedImageError(f"{name}: the file is damaged ({exc}).") from None

        fmt = (image.format or "").upper()
        if fmt not in ACCEPTED_FORMATS:
            raise UnsupportedFormatError(
                f"{name}: {fmt or 'this'} files are not supported.",
            )
        width, height = image.size
        if width * height > max_pixels:
            raise ImageTooLargeError(
                f"{name}: {width}×{height} is {width * height / 1e6:.0f} megapixels; "
                f"the limit is {max_pixels / 1e6:.0f} megapixels."
            )
        original_mode = image.mode
        try:
            image.seek(0)  # first frame of animations
            image.load()
            orientation = _orientation(image)
            # exif_transpose copies the whole image when there is nothing to turn (36 MB for 12 MP): skip that.
            oriented = ImageOps.exif_transpose(image) if orientation in _EXIF_TURNS else image
            pixels = _to_rgb(oriented)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _bomb_error(name, max_pixels) from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise TruncatedImageError(f"{name}: the file is incomplete or damaged ({exc}).") from None

    exif_rotated = oriented.size != image.size or orientation not in (None, 1)
    short = min(pixels.shape[:2])
    if min_side and short < min_side:
        raise ImageTooSmallError(
            f"{name}: {pixels.shape[1]}×{pixels.shape[0]} is too small; the shorter side must be at least {min_side} pixels."
        )
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    return Photo(
        pixels=pixels,
        name=name,
        format=fmt,
        original_mode=original_mode,
        exif_rotated=exif_rotated,
        frames=_frame_count(image),
    )


def _bomb_error(name: str, max_pixels: int) -> ImageTooLargeError:
    return ImageTooLargeError(
        f"{name}: the image has far more pixels than the limit of {max_pixels / 1e6:.0f} megapixels; "
        "it was not opened (possible decompression bomb)."
    )


def _frame_count(image: Image.Image) -> int:
    try:
        return max(1, int(getattr(image, "n_frames", 1)))
    except Exception:  # counting the frames of a damaged file must not stop loading its first one
        return 1


def _orientation(image: Image.Image) -> int | None:
    try:
        return image.getexif().get(0x0112)
    except Exception:  # a broken EXIF block must not stop loading
        return None


def load_image(source: ImageSource, **kwargs: object) -> Image.Image:
    """Like :func:`load_photo` but return a metadata-free RGB ``PIL.Image``."""
    return load_photo(source, **kwargs).to_pil()  # type: ignore[arg-type]


def load_rgb(source: ImageSource, **kwargs: object) -> np.ndarray:
    """Like :func:`load_photo` but return the ``(H, W, 3)`` ``uint8`` array."""
    return load_photo(source, **kwargs).pixels  # type: ignore[arg-type]


def as_rgb_array(image: np.ndarray | Image.Image | Photo) -> np.ndarray:
    """Accept an array, a PIL image or a :class:`Photo`; return ``(H, W, 3)`` ``uint8`` RGB."""
    if isinstance(image, Photo):
        return image.pixels
    if isinstance(image, Image.Image):
        return _to_rgb(image)
    array = np.asarray(image)
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {array.shape}")
    if array.shape[2] == 4:
        array = array[..., :3]
    if array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(array)


def save_image(image: np.ndarray | Image.Image, path: str | Path, *, quality: int = 95) -> Path:
    """Write pixels only (no EXIF/GPS/ICC) atomically: to a temp file, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pil = image if isinstance(image, Image.Image) else Image.fromarray(as_rgb_array(image))
    clean = Image.frombytes(pil.mode, pil.size, pil.tobytes())
    fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    options = {"quality": quality} if fmt in {"JPEG", "WEBP"} else {}
    buffer = _io.BytesIO()  # encoded in memory: Pillow's C encoders write to a real file without the errno
    clean.save(buffer, format=fmt, **options)
    write_bytes_atomic(path, buffer.getvalue())  # temp file + rename; a full disk raises DiskFullError
    return path
