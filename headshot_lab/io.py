"""Safe image loading: one door through which every photo enters the system.

``load_photo`` accepts a path, raw bytes or a binary file object and returns a :class:`Photo`
whose pixels are always 8-bit sRGB, upright (EXIF orientation applied) and free of metadata
(EXIF, GPS, XMP, ICC, comments are never copied). The format is sniffed from the content, never
from the file name. Every failure is an :class:`~headshot_lab.errors.ImageError` subclass with a
message a person can act on.

Caps (defaults from :mod:`headshot_lab.config`):

* ``max_pixels`` — width × height above this is refused *before* decoding (decompression bombs).
* ``min_side`` — the shorter side below this is refused (thumbnails, avatars).
* ``max_bytes`` — files larger than this are refused before reading them whole.

Decode budgets (:mod:`headshot_lab.containers`, before any decoder runs): a JPEG with more than 32
scans is refused (``image_too_complex``); EXIF, ICC, XMP and PNG text over their caps are refused
(``metadata_too_large``); TIFF pages and GIF frames are counted by walking the file, capped (never
Pillow's ``n_frames``). The orientation is read from the EXIF IFD0 entry alone and applied with
``Image.transpose``; Pillow's EXIF parser never runs on an upload, and metadata that cannot be read
is ignored, never an error.

Colour: an embedded ICC profile other than sRGB (Display P3, Adobe RGB, ProPhoto, CMYK …) is
converted to sRGB by LittleCMS before anything is measured (``Photo.colour_profile`` names it);
:func:`save_image` tags what it writes as sRGB. The upload's IPTC ``DigitalSourceType`` (XMP) is kept
as ``Photo.digital_source_type`` so that no output weakens it (:mod:`headshot_lab.provenance`).
"""

from __future__ import annotations

import functools
import io as _io
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageCms, UnidentifiedImageError

from headshot_lab.atomic import write_bytes_atomic
from headshot_lab.config import get_settings
from headshot_lab.containers import MAX_ICC_BYTES, MAX_XMP_BYTES, exif_orientation, inspect_container
from headshot_lab.errors import (
    EmptyFileError,
    HeadshotLabError,
    ImageTooLargeError,
    ImageTooSmallError,
    MetadataTooLargeError,
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
#: EXIF orientation → the transpose that makes the stored pixels upright (1 and a missing tag: none).
ORIENTATION_TRANSPOSE: dict[int, Image.Transpose] = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
#: Formats whose frame count Pillow reads from one header field (cheap); TIFF and GIF are counted by
#: :mod:`headshot_lab.containers` (Pillow's ``n_frames`` walks every page, quadratically for TIFF).
_CHEAP_FRAME_COUNTS = frozenset({"PNG", "WEBP", "MPO", "HEIF", "AVIF"})
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
        frames: frames (or pages) in the file: animations, multi-page TIFF, MPO; only the first is used
            (counted up to :data:`headshot_lab.containers.MAX_PAGES`).
        colour_profile: the description of the embedded ICC profile the pixels were converted from
            into sRGB (``"Display P3"`` …); ``None`` when there was none, or it was sRGB already.
        digital_source_type: the IPTC ``DigitalSourceType`` URI the upload's XMP declares (e.g.
            ``…/trainedAlgorithmicMedia``: already AI-generated), else ``None``. Outputs made from
            this photo keep the stronger of it and their own (:mod:`headshot_lab.provenance`).
    """

    pixels: np.ndarray
    name: str
    format: str
    original_mode: str
    exif_rotated: bool = False
    frames: int = 1
    colour_profile: str | None = None
    digital_source_type: str | None = None

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


def _to_rgb(image: Image.Image, icc: bytes | None = None) -> np.ndarray:
    """Convert any Pillow mode to 8-bit sRGB.

    * 16-bit and 32-bit integer greyscale are rescaled by their range (``I;16``: ÷257), not clipped:
      ``I`` and ``F`` by the smallest of 255, 65535 and 2³¹ − 1 that holds the data, ``F`` within
      0…1 by 1 (the float convention); NaN becomes 0 and ±inf the ends of the range.
    * Transparency is composited on white, as a viewer would show it.
    * CMYK uses the embedded ICC profile when there is one (else Pillow's conversion).
    * RGB (after compositing) with an embedded RGB profile other than sRGB (Display P3, Adobe RGB,
      ProPhoto …) is converted to sRGB by LittleCMS, relative colorimetric: every later measurement
      (ITA°, Monk, ΔE) assumes sRGB values. A profile that cannot be read is ignored.

    ``icc`` is the profile (default: ``image.info["icc_profile"]``).
    """
    return _to_srgb(image, image.info.get("icc_profile") if icc is None else icc)[0]


def _to_srgb(image: Image.Image, icc: bytes | None) -> tuple[np.ndarray, str | None]:
    """:func:`_to_rgb`'s work: ``(pixels, description of the profile converted from or None)``."""
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
        return np.repeat(grey[..., None], 3, axis=2), None
    if mode == "CMYK" and icc:
        try:
            source = ImageCms.ImageCmsProfile(_io.BytesIO(icc))
            srgb = ImageCms.createProfile("sRGB")
            converted = ImageCms.profileToProfile(image, source, srgb, outputMode="RGB")
            return np.asarray(converted), _profile_name(source)
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            pass
    if mode == "P":
        image = image.convert("RGBA")
    if mode in {"LA", "La", "PA"}:
        image = image.convert("RGBA")
    if image.mode in {"RGBA", "RGBa"}:
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    rgb = image if image.mode == "RGB" else image.convert("RGB")  # convert() would copy RGB
    if icc and mode in {"RGB", "RGBA", "RGBX", "P"}:
        managed = _rgb_to_srgb(rgb, icc)
        if managed is not None:
            return managed
    return np.asarray(rgb), None


@functools.lru_cache(maxsize=16)
def _srgb_transform(icc: bytes) -> tuple[ImageCms.ImageCmsTransform, str] | None:
    """The LittleCMS transform ``icc`` → sRGB (cached by the profile's bytes), or ``None`` for sRGB itself.

    A profile whose description names sRGB (``sRGB IEC61966-2.1``, LittleCMS's ``sRGB built-in``) is
    taken as sRGB: converting would cost ~0.1 s per 12 MP for a change under one code value.
    """
    source = ImageCms.ImageCmsProfile(_io.BytesIO(icc))
    if source.profile.xcolor_space.strip() != "RGB":
        return None
    name = _profile_name(source)
    if "srgb" in name.lower().replace(" ", ""):
        return None
    transform = ImageCms.buildTransform(
        source, ImageCms.createProfile("sRGB"), "RGB", "RGB", renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC
    )
    return transform, name


def _profile_name(profile: ImageCms.ImageCmsProfile) -> str:
    try:
        return (ImageCms.getProfileDescription(profile) or "").strip() or "embedded profile"
    except ImageCms.PyCMSError:
        return "embedded profile"


def _rgb_to_srgb(rgb: Image.Image, icc: bytes) -> tuple[np.ndarray, str] | None:
    """``rgb`` converted from ``icc`` to sRGB, or ``None`` (sRGB already, or the profile is unusable)."""
    if len(icc) > MAX_ICC_BYTES:
        return None
    try:
        found = _srgb_transform(icc)
        if found is None:
            return None
        transform, name = found
        return np.asarray(ImageCms.applyTransform(rgb, transform)), name
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError, AttributeError):
        return None  # metadata ignored: a broken profile never stops loading


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

    container = inspect_container(data, name)  # scans, pages and metadata sizes: refused before decoding
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(_io.BytesIO(container.data))
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
        except HeadshotLabError:
            raise
        except Exception as exc:  # OSError, SyntaxError, ValueError, struct.error … from a damaged header
            raise TruncatedImageError(f"{name}: the file is damaged ({_reason(exc)}).") from None

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
        icc = container.icc or _info_bytes(image, "icc_profile")
        if icc is not None and len(icc) > MAX_ICC_BYTES:
            raise MetadataTooLargeError(
                f"{name}: the file carries a colour profile of {len(icc) / 2**20:.1f} MB; it was not opened."
            )
        orientation = exif_orientation(container.exif if container.exif is not None else _info_bytes(image, "exif"))
        try:
            image.load()
            oriented = (
                image.transpose(ORIENTATION_TRANSPOSE[orientation]) if orientation in ORIENTATION_TRANSPOSE else image
            )
            pixels, profile = _to_srgb(oriented, icc)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _bomb_error(name, max_pixels) from None
        except HeadshotLabError:
            raise
        except MemoryError:
            raise _bomb_error(name, max_pixels) from None
        except Exception as exc:  # OSError, SyntaxError, ValueError, EOFError, struct.error … from the decoder
            raise TruncatedImageError(f"{name}: the file is incomplete or damaged ({_reason(exc)}).") from None

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
        exif_rotated=orientation not in (None, 1),
        frames=container.frames if container.frames is not None else _frame_count(image, fmt),
        colour_profile=profile,
        digital_source_type=_digital_source_type(container.xmp or _info_bytes(image, "xmp")),
    )


def _reason(exc: BaseException) -> str:
    """A short reason for a decoder's exception (its message, else its type's name)."""
    return str(exc)[:200] or type(exc).__name__


def _info_bytes(image: Image.Image, key: str) -> bytes | None:
    """``image.info[key]`` as bytes (XMP may come as ``str``), or ``None``."""
    value = image.info.get(key)
    if isinstance(value, str):
        return value.encode("utf-8", "replace")
    return bytes(value) if isinstance(value, bytes | bytearray) and value else None


def _digital_source_type(xmp: bytes | None) -> str | None:
    """The IPTC ``DigitalSourceType`` an upload's XMP declares, or ``None`` (absent, too large or malformed)."""
    if not xmp or len(xmp) > MAX_XMP_BYTES:
        return None
    from headshot_lab.provenance import parse_xmp

    try:
        return parse_xmp(xmp)["digital_source_type"]
    except Exception:  # metadata ignored: hostile XML never stops loading
        return None


def _bomb_error(name: str, max_pixels: int) -> ImageTooLargeError:
    return ImageTooLargeError(
        f"{name}: the image has far more pixels than the limit of {max_pixels / 1e6:.0f} megapixels; "
        "it was not opened (possible decompression bomb)."
    )


def _frame_count(image: Image.Image, fmt: str) -> int:
    """Frames of formats whose count is one header field (APNG, WebP, MPO, HEIF); 1 for the rest."""
    if fmt not in _CHEAP_FRAME_COUNTS:
        return 1
    try:
        return max(1, int(getattr(image, "n_frames", 1)))
    except Exception:  # counting the frames of a damaged file must not stop loading its first one
        return 1


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


@functools.cache
def srgb_icc_profile() -> bytes:
    """LittleCMS's sRGB profile as ICC bytes, its creation date (header bytes 24–35) fixed: outputs stay bit-exact.

    Every output is tagged with it (:func:`save_image`, :mod:`headshot_lab.provenance`), so colour-managed
    viewers show the pixels as the sRGB values they are.
    """
    data = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    data[24:36] = bytes.fromhex("07ea0006000f000c00000000")  # 2026-06-15 12:00:00
    return bytes(data)


def save_image(
    image: np.ndarray | Image.Image | Photo,
    path: str | Path,
    *,
    quality: int = 95,
    source_type: str | None = None,
) -> Path:
    """Write pixels only (no EXIF/GPS), tagged sRGB, atomically: to a temp file, then rename.

    ``source_type`` (default: a :class:`Photo`'s ``digital_source_type``): an IPTC digital source type
    to keep with the pixels, in an XMP packet that holds nothing else — so that a stored upload that
    arrived labelled AI-generated is still labelled when it is loaded again (labels never weaken).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(image, Photo):
        source_type = source_type or image.digital_source_type
    pil = image if isinstance(image, Image.Image) else Image.fromarray(as_rgb_array(image))
    clean = Image.frombytes(pil.mode, pil.size, pil.tobytes())
    fmt = Image.registered_extensions().get(path.suffix.lower(), "PNG")
    options: dict[str, object] = {"quality": quality} if fmt in {"JPEG", "WEBP"} else {}
    if fmt in {"JPEG", "PNG", "WEBP", "TIFF"} and clean.mode in {"RGB", "RGBA"}:
        options["icc_profile"] = srgb_icc_profile()
    if source_type and fmt in {"JPEG", "PNG", "WEBP"}:
        from headshot_lab.provenance import PNG_XMP_KEY, source_type_xmp

        xmp = source_type_xmp(source_type)
        if fmt == "PNG":
            from PIL.PngImagePlugin import PngInfo

            info = PngInfo()
            info.add_itxt(PNG_XMP_KEY, xmp.decode("utf-8"), zip=False)
            options["pnginfo"] = info
        else:
            options["xmp"] = xmp
    buffer = _io.BytesIO()  # encoded in memory: Pillow's C encoders write to a real file without the errno
    clean.save(buffer, format=fmt, **options)
    write_bytes_atomic(path, buffer.getvalue())  # temp file + rename; a full disk raises DiskFullError
    return path
