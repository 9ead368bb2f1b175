"""A generated corpus of hostile and odd uploads, each with the outcome the spec promises.

``make_hostile_corpus(out_dir)`` writes 500+ small files (about 60 MB, ~10 s on 2 cores) and
returns one :class:`HostileCase` per file. Nothing is downloaded: face content comes from the cached
real test photos (:mod:`headshot_lab.testing.photos`), landscapes from ``skimage.data``, everything
else is built in code (broken files are byte-level edits of valid ones; decompression bombs are
headers declaring a huge size, or deflate streams of zeros built from one repeated block, so no big
buffer is ever made).

=======================  =====================================================================
group (kinds)            what the files are
=======================  =====================================================================
damaged                  ``truncated_*``, ``header_only_*``, ``garbage_after_header_*``,
                         ``bit_flipped_*`` of JPEG, PNG, WebP, GIF, TIFF, BMP and HEIC
not an image             ``zero_bytes``; ``text``, ``html``, ``json``, ``svg``, ``pdf``,
                         ``zip``, ``elf`` … bytes saved as ``.jpg``/``.png``/``.webp``
wrong extension          a valid image whose extension names another format (or none)
unsupported format       valid images of formats the app does not take (ICO, JPEG 2000, PPM …)
decompression bomb       tiny files declaring 40000×40000 (PNG, GIF, JPEG, TIFF, BMP, WebP
                         16384²), deflate-of-zeros PNGs of 64–144 MP, one PNG just over the cap
size                     headers declaring 0×0 or 0×300 (damaged); 1×1, 2×2, thin strips,
                         20000×8, 8×20000 (refused: too small); the shortest accepted side,
                         20000×256 strips and exactly the pixel cap
mode                     CMYK JPEG/TIFF (no ICC, a CMYK ICC, a wrong or broken ICC), 16-bit
                         grey/RGB/RGBA PNG, ``I;16``/``I``/``F`` TIFF (NaN too), palette with
                         and without transparency, LA/RGBA (fully transparent too), 1-bit, MPO
animated                 animated GIF, WebP and PNG, multi-page TIFF (the first frame is the
                         face, the checklist says only it is used)
exif                     orientations 1–8 on real faces (must load upright), broken or odd EXIF
content                  no face (noise, flat colours, skimage scenes), nine faces, the group
                         photo, faces cut off at each border, greyscale, near-black, blown-out,
                         heavy noise, a tiny face on a 4000×4000 canvas
=======================  =====================================================================

Expected outcomes (``HostileCase.expect``) follow :mod:`headshot_lab.io`'s contract under the
default settings (``max_pixels`` 40 MP, ``min_side`` 256): anything over the pixel cap is refused
as ``image_too_large`` before decoding; a shorter side under 256 px is ``image_too_small``; a file
that starts like an image but is cut short or damaged is ``truncated_image``; bytes of a known
non-image kind are ``not_an_image``; anything else unreadable or of a format the app does not take
is ``unsupported_format``; an empty file is ``empty_file``. Every valid photo loads upright as RGB.

Run ``python -m headshot_lab.testing.hostile OUT_DIR`` to write the corpus, ``OUT_DIR/cases.jsonl``
and print a summary by kind.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import struct
import sys
import time
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image, ImageOps

Expect = Literal["reject", "accept", "accept_face", "accept_no_face", "any"]

#: What each ``expect`` value promises for :func:`headshot_lab.io.load_photo` with default settings.
EXPECTATIONS: dict[str, str] = {
    "reject": "an ImageError whose code is expected_code",
    "accept": "a Photo (8-bit RGB)",
    "accept_face": "a Photo in which an upright face is found",
    "accept_no_face": "a Photo with no face in it",
    "any": "a decoder may tolerate the damage: a Photo, or an ImageError with expected_code (when given)",
}

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: Longer side of the face photos most cases are made from (keeps the corpus small and quick).
FACE_SIDE = 640
#: Longer side of the small images the damaged variants are made from.
DAMAGED_SIDE = 320


@dataclass(frozen=True)
class HostileCase:
    """One file of the corpus and what must happen to it.

    Attributes:
        path: the file.
        kind: what it is (``truncated_jpeg``, ``cmyk_jpeg_icc``, ``exif_orientation`` …).
        expect: one of :data:`EXPECTATIONS`.
        expected_code: the :class:`~headshot_lab.errors.ImageError` code when it is refused.
        note: a human description (the detail that tells this file from the others of its kind).
        capture_codes: the capture checklist must report at least one of these per-photo codes for
            it (empty: no claim beyond "no crash").
    """

    path: Path
    kind: str
    expect: Expect
    expected_code: str | None = None
    note: str = ""
    capture_codes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = self.path.name
        data["capture_codes"] = list(self.capture_codes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], root: Path) -> HostileCase:
        return cls(
            path=root / data["path"],
            kind=data["kind"],
            expect=data["expect"],
            expected_code=data.get("expected_code"),
            note=data.get("note", ""),
            capture_codes=tuple(data.get("capture_codes", ())),
        )


# ================================================================================================
# Byte-level builders
# ================================================================================================


def encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    """``image`` encoded as ``fmt`` by Pillow (pillow-heif for ``HEIF``)."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_chunk(tag: bytes, payload: bytes) -> bytes:
    """One PNG chunk: ``length · tag · payload · CRC-32(tag · payload)``."""
    return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))


def deflate_zeros(size: int, chunk: int = 1 << 20) -> bytes:
    """A zlib stream of ``size`` zero bytes, made in milliseconds without ever holding them.

    One 1 MiB block is deflated with a full flush (byte-aligned, no reference to earlier data, so
    copies of it may follow each other), repeated, then closed by a final block for the remainder
    and the Adler-32 of ``size`` zeros: ``A = 1``, ``B = size mod 65521``.
    """
    repeated = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = repeated.compress(bytes(chunk)) + repeated.flush(zlib.Z_FULL_FLUSH)
    count, rest = divmod(size, chunk)
    final = zlib.compressobj(9, zlib.DEFLATED, -15)
    tail = final.compress(bytes(rest)) + final.flush()
    return b"\x78\xda" + block * count + tail + struct.pack(">I", (size % 65521) << 16 | 1)


def png_of_zeros(width: int, height: int, *, colour_type: int = 0, rows: int | None = None) -> bytes:
    """A valid PNG of one colour (all zeros, no filter): ``width × height`` costs no memory.

    ``colour_type`` 0 is greyscale, 2 RGB. ``rows`` < ``height`` writes only that many rows (a file
    that declares its size but holds almost nothing).
    """
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour_type]
    size = (1 + width * channels) * (height if rows is None else rows)  # a filter byte (0) + samples per row
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    idat = png_chunk(b"IDAT", deflate_zeros(size))
    return PNG_SIGNATURE + png_chunk(b"IHDR", header) + idat + png_chunk(b"IEND", b"")


def png_chunk_offsets(data: bytes) -> list[tuple[bytes, int, int]]:
    """``[(tag, payload start, payload end)]`` of every chunk of a PNG."""
    chunks, pos = [], len(PNG_SIGNATURE)
    while pos + 8 <= len(data):
        length, tag = struct.unpack(">I4s", data[pos : pos + 8])
        chunks.append((tag, pos + 8, pos + 8 + length))
        pos += 12 + length
    return chunks


def jpeg_segment(data: bytes, markers: Sequence[int]) -> int:
    """Offset of the first segment whose marker (``0xC0`` …) is in ``markers`` (at its ``0xFF``)."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            raise ValueError("not a marker")
        marker = data[pos + 1]
        if marker in markers:
            return pos
        pos += 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]
    raise ValueError("marker not found")


def jpeg_with_size(data: bytes, width: int, height: int) -> bytes:
    """A JPEG whose frame header (SOF) declares ``width × height``; the scan data stay as they are."""
    sof = jpeg_segment(data, (0xC0, 0xC1, 0xC2))
    out = bytearray(data)
    out[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(out)


def jpeg_with_app1(data: bytes, payload: bytes) -> bytes:
    """``data`` with an APP1 segment holding ``payload`` inserted right after SOI."""
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + data[2:]


def tiff_with_size(data: bytes, width: int, height: int) -> bytes:
    """A little-endian TIFF whose first IFD declares ``width × height`` (tags 256/257)."""
    if data[:4] != b"II*\x00":
        raise ValueError("expected a little-endian TIFF")
    out = bytearray(data)
    (ifd,) = struct.unpack("<I", data[4:8])
    (count,) = struct.unpack("<H", data[ifd : ifd + 2])
    for index in range(count):
        entry = ifd + 2 + 12 * index
        tag, kind = struct.unpack("<HH", data[entry : entry + 4])
        if tag in (256, 257):
            value = width if tag == 256 else height
            out[entry + 8 : entry + 12] = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
    return bytes(out)


def bmp_with_size(data: bytes, width: int, height: int) -> bytes:
    """A BMP whose info header declares ``width × height``."""
    out = bytearray(data)
    out[18:26] = struct.pack("<ii", width, height)
    return bytes(out)


def gif_declaring(width: int, height: int) -> bytes:
    """A 60-byte GIF whose screen and only image declare ``width × height`` (one LZW clear code of data)."""
    screen = struct.pack("<HHBBB", width, height, 0x80, 0, 0)  # global colour table of 2 entries
    palette = b"\x00\x00\x00\xff\xff\xff"
    descriptor = b"," + struct.pack("<HHHHB", 0, 0, width, height, 0)
    data = b"\x02\x02\x4c\x01\x00"  # LZW minimum code size 2, one sub-block, terminator
    return b"GIF89a" + screen + palette + descriptor + data + b";"


def riff(chunks: Sequence[tuple[bytes, bytes]]) -> bytes:
    """A RIFF/WEBP container of ``(fourcc, payload)`` chunks (odd payloads padded)."""
    body = b"WEBP"
    for fourcc, payload in chunks:
        body += fourcc + struct.pack("<I", len(payload)) + payload + (b"\x00" if len(payload) % 2 else b"")
    return b"RIFF" + struct.pack("<I", len(body)) + body


def webp_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """``[(fourcc, payload)]`` of a RIFF/WEBP file."""
    chunks, pos = [], 12
    while pos + 8 <= len(data):
        fourcc, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        chunks.append((fourcc, data[pos + 8 : pos + 8 + size]))
        pos += 8 + size + (size % 2)
    return chunks


def vp8l_declaring(width: int, height: int, tiny_vp8l: bytes) -> bytes:
    """A lossless WebP whose VP8L header declares ``width × height`` (≤ 16384), with ``tiny_vp8l``'s data."""
    header = 0x2F.to_bytes(1, "little") + ((width - 1) | (height - 1) << 14).to_bytes(4, "little")
    return riff([(b"VP8L", header + tiny_vp8l[5:])])


def webp_canvas_declaring(width: int, height: int, tiny_vp8l: bytes) -> bytes:
    """An animated WebP whose canvas (VP8X) declares ``width × height`` around one 1×1 frame."""
    vp8x = bytes([0x02, 0, 0, 0]) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    anim = b"\x00\x00\x00\x00\x00\x00"
    frame = bytes(6) + bytes(6) + (100).to_bytes(3, "little") + b"\x00"
    frame += b"VP8L" + struct.pack("<I", len(tiny_vp8l)) + tiny_vp8l + (b"\x00" if len(tiny_vp8l) % 2 else b"")
    return riff([(b"VP8X", vp8x), (b"ANIM", anim), (b"ANMF", frame)])


def jpeg_scans(data: bytes) -> list[tuple[int, int]]:
    """``[(start, end)]`` of every scan of a JPEG: its SOS segment and the entropy-coded data after it."""
    import re

    next_marker = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
    pos, scans = 2, []
    while pos + 4 <= len(data) and data[pos + 1] != 0xD9:
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if data[pos + 1] == 0xDA:
            found = next_marker.search(data, pos + 2 + length)
            end = found.start() if found else len(data)
            scans.append((pos, end))
            pos = end
            continue
        pos += 2 + length
    return scans


def jpeg_with_repeated_scans(data: bytes, repeats: int) -> bytes:
    """A progressive JPEG whose last scan is repeated ``repeats`` more times before EOI.

    A refinement scan of a flat image is a few bytes, but every copy makes libjpeg pass over every
    coefficient block again: 3000 copies in a 73 KB file took 10 s to decode (2048², measured here).
    """
    start, end = jpeg_scans(data)[-1]
    return data[:end] + data[start:end] * repeats + b"\xff\xd9"


def tiff_with_pages(first_page: bytes, pages: int) -> bytes:
    """A little-endian TIFF: ``first_page`` (a Pillow TIFF) followed by ``pages`` 1×1 grey pages.

    Each extra page is one 8-entry IFD (102 bytes) pointing at a shared 1-byte strip, chained by the
    next-IFD offsets: 20,000 pages in 2 MB, the file on which Pillow's ``n_frames`` took seconds.
    """
    if first_page[:4] != b"II*\x00":
        raise ValueError("expected a little-endian TIFF")
    (ifd,) = struct.unpack("<I", first_page[4:8])
    (count,) = struct.unpack("<H", first_page[ifd : ifd + 2])
    next_at = ifd + 2 + 12 * count
    base = len(first_page) + (len(first_page) & 1)
    strip = base
    chain_start = base + 2  # one byte of pixel data, padded to an even offset
    ifd_size = 2 + 8 * 12 + 4
    out = bytearray(first_page) + bytes(base - len(first_page)) + b"\x80\x00"
    for index in range(pages):
        here = chain_start + index * ifd_size
        following = here + ifd_size if index + 1 < pages else 0
        entries = [(256, 3, 1, 1), (257, 3, 1, 1), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1)]
        entries += [(273, 4, 1, strip), (278, 3, 1, 1), (279, 4, 1, 1)]
        out += struct.pack("<H", len(entries))
        for tag, kind, n, value in entries:
            out += struct.pack("<HHI", tag, kind, n) + (
                struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
            )
        out += struct.pack("<I", following)
    out[next_at : next_at + 4] = struct.pack("<I", chain_start)
    return bytes(out)


def exif_block(entries: Sequence[tuple[int, int, int, bytes]], *, data: bytes = b"", header: bool = True) -> bytes:
    """A little-endian EXIF block: IFD0 at offset 8 with ``(tag, type, count, 4-byte value field)`` entries.

    ``data`` follows the IFD (entries pointing at it use offsets from the TIFF header). With
    ``header``, the ``Exif\\0\\0`` prefix JPEG APP1 and WebP use.
    """
    body = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        body += struct.pack("<HHI", tag, kind, count) + value[:4].ljust(4, b"\x00")
    body += struct.pack("<I", 0) + data
    return (b"Exif\x00\x00" if header else b"") + body


def exif_amplifier(orientation: int, entries: int = 5000, size: int = 60_000, *, loop: bool = False) -> bytes:
    """EXIF that expands on parsing: ``entries`` distinct private tags, each ``size`` bytes at offset 8.

    The block is under 64 KB (one JPEG APP1) but a parser that reads every tag's data holds
    ``entries × size`` bytes (300 MB here), and re-serialising it (``ImageOps.exif_transpose`` for
    orientations 2–8) took 53–90 s and up to 1 GB. With ``loop``, the Exif and GPS IFD pointers point
    back at IFD0: the loader before issue 19 ran past 5 minutes on it.
    """
    table = [(0x0112, 3, 1, struct.pack("<H", orientation))]
    if loop:  # the Exif and GPS IFD pointers lead back to IFD0 itself
        table += [(0x8769, 4, 1, struct.pack("<I", 8)), (0x8825, 4, 1, struct.pack("<I", 8))]
        entries -= 2
    table += [(0xA500 + index, 7, size, struct.pack("<I", 8)) for index in range(entries)]
    block = exif_block(table)
    return block + bytes(max(0, size + 8 + 6 - len(block)))


def png_with_chunks(png: bytes, chunks: Sequence[tuple[bytes, bytes]]) -> bytes:
    """``png`` with ``chunks`` inserted right after IHDR."""
    ihdr_end = len(PNG_SIGNATURE) + 8 + 13 + 4
    return png[:ihdr_end] + b"".join(png_chunk(tag, payload) for tag, payload in chunks) + png[ihdr_end:]


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


#: Bradford cone-response matrix (Lam 1985), for adapting colorants to the ICC's D50 PCS.
_BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
_D50_XYZ = np.array([0.9642, 1.0, 0.8249])
#: RGB colour spaces phones and editors tag photos with: primaries (x, y) R, G, B; white (x, y); tone curve.
RGB_SPACES: dict[str, tuple[tuple[tuple[float, float], ...], tuple[float, float], str | float]] = {
    "Display P3": (((0.680, 0.320), (0.265, 0.690), (0.150, 0.060)), (0.3127, 0.3290), "srgb"),
    "Adobe RGB (1998)": (((0.640, 0.330), (0.210, 0.710), (0.150, 0.060)), (0.3127, 0.3290), 563 / 256),
    "ProPhoto RGB": (((0.7347, 0.2653), (0.1596, 0.8404), (0.0366, 0.0001)), (0.3457, 0.3585), 1.8),
}


def rgb_icc_profile(name: str) -> bytes:
    """A matrix/TRC ICC v2 display profile for one of :data:`RGB_SPACES`, built in code (no profile file).

    Colorants: the primaries' XYZ scaled so that ``R + G + B`` is the white point, Bradford-adapted to
    the D50 PCS (``M_D50 = B⁻¹·diag(B·W_D50 / B·W)·B·M``); tone curve a ``curv`` gamma, or for the sRGB
    curve a ``para`` type 3 (``Y = ((X + 0.055)/1.055)^2.4`` above 0.04045, ``X/12.92`` below).
    """
    primaries, white_xy, curve = RGB_SPACES[name]

    def xyz(x: float, y: float) -> np.ndarray:
        return np.array([x / y, 1.0, (1 - x - y) / y])

    white = xyz(*white_xy)
    columns = np.stack([xyz(*p) for p in primaries], axis=1)
    matrix = columns * np.linalg.solve(columns, white)
    adapt = np.linalg.inv(_BRADFORD) @ np.diag((_BRADFORD @ _D50_XYZ) / (_BRADFORD @ white)) @ _BRADFORD
    colorants = adapt @ matrix
    if curve == "srgb":
        params = (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045)
        trc = b"para" + bytes(4) + struct.pack(">HH", 3, 0) + b"".join(_s15(v) for v in params)
    else:
        trc = b"curv" + bytes(4) + struct.pack(">IH", 1, round(float(curve) * 256))
    desc_text = name.encode("ascii") + b"\x00"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(desc_text)) + desc_text + bytes(4 + 4 + 2 + 1 + 67)
    wtpt = b"XYZ " + bytes(4) + b"".join(_s15(v) for v in _D50_XYZ)
    tags = [(b"desc", desc), (b"wtpt", wtpt), (b"cprt", b"text" + bytes(4) + b"public domain\x00")]
    for signature, column in zip((b"rXYZ", b"gXYZ", b"bXYZ"), colorants.T, strict=True):
        tags.append((signature, b"XYZ " + bytes(4) + b"".join(_s15(v) for v in column)))
    tags += [(b"rTRC", trc), (b"gTRC", trc), (b"bTRC", trc)]
    return _icc_bytes(tags, device_class=b"mntr", colour_space=b"RGB ", pcs=b"XYZ ")


def _icc_bytes(tags: list[tuple[bytes, bytes]], *, device_class: bytes, colour_space: bytes, pcs: bytes) -> bytes:
    """An ICC v2.1 profile: the 128-byte header (D50 illuminant, a fixed date), the tag table and the tags."""
    offset = 128 + 4 + 12 * len(tags)
    table, blobs = struct.pack(">I", len(tags)), b""
    for signature, blob in tags:
        blob += bytes(-len(blob) % 4)
        table += signature + struct.pack(">II", offset + len(blobs), len(blob))
        blobs += blob
    body = table + blobs
    header = struct.pack(">I4sI4s4s4s", 128 + len(body), b"lcms", 0x02100000, device_class, colour_space, pcs)
    header += struct.pack(">6H", 2026, 6, 15, 12, 0, 0) + b"acsp" + bytes(4 + 4 + 4 + 4 + 8 + 4)
    header += b"".join(_s15(v) for v in _D50_XYZ) + bytes(4) + bytes(44)
    return header + body


def encode_in_space(image: Image.Image, name: str, fmt: str = "JPEG", **options: Any) -> bytes:
    """``image`` (sRGB) converted by LittleCMS into the RGB space ``name`` and saved with its profile embedded.

    ``"sRGB"`` saves it with LittleCMS's sRGB profile. What a phone writes for a Display-P3 photo.
    """
    from PIL import ImageCms

    if name == "sRGB":
        profile = _srgb_profile()
        converted = image.convert("RGB")
    else:
        profile = rgb_icc_profile(name)
        target = ImageCms.ImageCmsProfile(io.BytesIO(profile))
        managed = ImageCms.profileToProfile(
            image.convert("RGB"),
            ImageCms.createProfile("sRGB"),
            target,
            renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
            outputMode="RGB",
        )
        assert managed is not None  # None only with inPlace=True
        converted = managed
    return encode(converted, fmt, icc_profile=profile, **options)


def cmyk_icc_profile() -> bytes:
    """A small, valid ICC v2 CMYK output profile built in code (no profile file ships with the OS).

    Its ``A2B0`` tag is a ``lut16Type`` with a 2-point CLUT per ink: each corner of the CMYK cube maps
    to the CIELAB colour of the naive ink model ``RGB = (1 − C)(1 − K), (1 − M)(1 − K), (1 − Y)(1 − K)``
    (sRGB, D65 → D50 PCS via scikit-image), encoded as ICC v2 16-bit Lab (``L·65280/100``,
    ``(a + 128)·256``). Good enough for LittleCMS to convert with it, which is what the corpus needs.
    """
    from skimage.color import rgb2lab

    grid = []
    for c in (0, 1):
        for m in (0, 1):
            for y in (0, 1):
                for k in (0, 1):
                    grid.append(((1 - c) * (1 - k), (1 - m) * (1 - k), (1 - y) * (1 - k)))
    lab = rgb2lab(np.array(grid, dtype=np.float64)[None], illuminant="D50")[0]
    clut = b"".join(
        struct.pack(">HHH", round(lv * 65280 / 100), round((av + 128) * 256), round((bv + 128) * 256))
        for lv, av, bv in np.clip(lab, [0, -128, -128], [100, 127.99, 127.99])
    )
    identity = struct.pack(">iiiiiiiii", 65536, 0, 0, 0, 65536, 0, 0, 0, 65536)
    ramp = struct.pack(">HH", 0, 65535)
    lut = b"mft2" + bytes(4) + bytes([4, 3, 2, 0]) + identity + struct.pack(">HH", 2, 2)
    lut += ramp * 4 + clut + ramp * 3
    desc_text = b"headshot-lab CMYK test profile\x00"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(desc_text)) + desc_text + bytes(4 + 4 + 2 + 1 + 67)
    wtpt = b"XYZ " + bytes(4) + struct.pack(">iii", 63190, 65536, 54061)  # D50
    cprt = b"text" + bytes(4) + b"public domain\x00"
    tags = [(b"desc", desc), (b"wtpt", wtpt), (b"cprt", cprt), (b"A2B0", lut)]
    return _icc_bytes(tags, device_class=b"prtr", colour_space=b"CMYK", pcs=b"Lab ")


# ================================================================================================
# The corpus
# ================================================================================================

# Non-image payloads (what people upload by mistake), with the code the spec gives them: the kinds
# named in headshot_lab.io's signature table (and text) are ``not_an_image``, anything else that
# no decoder recognises is ``unsupported_format``.
_NON_IMAGES: tuple[tuple[str, bytes, str], ...] = (
    ("text", b"Here are my photos, hope they work!\nThanks\n", "not_an_image"),
    (
        "html",
        b"<!DOCTYPE html>\n<html><head><title>photo</title></head><body><img src=x></body></html>",
        "not_an_image",
    ),
    ("html_error_page", b"  <html><body><h1>403 Forbidden</h1></body></html>\n", "not_an_image"),
    ("json", b'{"image": "data:image/jpeg;base64,/9j/4AAQSkZJRg=="}', "not_an_image"),
    ("svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="600" height="600"><circle r="50"/></svg>', "not_an_image"),
    (
        "svg_xml",
        b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"></svg>',
        "not_an_image",
    ),
    ("pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n%%EOF\n", "not_an_image"),
    ("elf", b"\x7fELF\x02\x01\x01" + bytes(9) + b"\x02\x00\x3e\x00" + bytes(100), "not_an_image"),
    ("windows_exe", b"MZ\x90\x00\x03" + bytes(59) + b"PE\x00\x00" + bytes(100), "not_an_image"),
    ("rar", b"Rar!\x1a\x07\x01\x00" + bytes(60), "not_an_image"),
    ("seven_zip", b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(60), "not_an_image"),
    ("csv", b"name,width,height\nme.jpg,4000,3000\n", "not_an_image"),
    ("whitespace", b"   \n\t\n  ", "not_an_image"),
    ("one_byte", b"\xff", "unsupported_format"),
    ("utf16_text", "my photo".encode("utf-16"), "unsupported_format"),
    ("utf8_text_long", b"a" + "ü".encode() * 400, "not_an_image"),  # a character straddles byte 512
    ("mp4_video", b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + bytes(200), "unsupported_format"),
    ("mp3_audio", b"ID3\x04\x00\x00\x00\x00\x00\x0f" + bytes(200), "unsupported_format"),
)

_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "TIFF": "tif", "BMP": "bmp", "HEIF": "heic"}

# EXIF orientation n: the transpose that turns the stored pixels upright (PIL.ImageOps.exif_transpose);
# the stored pixels are made from the upright photo by its inverse.
_UPRIGHT_TO_STORED: dict[int, Image.Transpose | None] = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


class _Corpus:
    """Writes files and records their cases (file names unique, in the order written)."""

    def __init__(self, out_dir: Path, seed: int) -> None:
        self.out = out_dir
        self.rng = np.random.default_rng(seed)
        self.cases: list[HostileCase] = []
        self._names: set[str] = set()

    def add(
        self,
        kind: str,
        name: str,
        data: bytes,
        expect: Expect,
        code: str | None = None,
        note: str = "",
        capture: Sequence[str] = (),
    ) -> None:
        if name in self._names:
            raise ValueError(f"duplicate corpus file name {name}")
        self._names.add(name)
        path = self.out / name
        path.write_bytes(data)
        self.cases.append(HostileCase(path, kind, expect, code, note, tuple(capture)))

    def image(self, kind: str, stem: str, image: Image.Image, fmt: str, expect: Expect, **kwargs: Any) -> None:
        """Encode ``image`` as ``fmt`` and add it; ``kwargs``: ``code``, ``note``, ``capture``, ``ext``, ``options``."""
        ext = kwargs.pop("ext", _EXTENSIONS.get(fmt, fmt.lower()))
        options = kwargs.pop("options", {})
        if fmt == "GIF":  # Pillow's web palette: much faster than the median-cut quantizer GIF saving runs
            image = image.convert("P") if image.mode == "RGB" else image
            if "append_images" in options:
                options = {**options, "append_images": [im.convert("P") for im in options["append_images"]]}
        data = encode(image, fmt, **options)
        self.add(kind, f"{kind}-{stem}.{ext}" if ext else f"{kind}-{stem}", data, expect, **kwargs)


def _resize(image: Image.Image, side: int) -> Image.Image:
    """``image`` scaled so that its longer side is ``side`` (never up)."""
    scale = side / max(image.size)
    if scale >= 1:
        return image.copy()
    return image.resize(
        (max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.Resampling.LANCZOS
    )


def _faces() -> dict[str, Image.Image]:
    from headshot_lab.testing.photos import real_photos

    photos = real_photos(["obama", "obama2", "biden", "tom_hanks", "group", "astronaut"])
    out = {}
    for name, path in photos.items():
        with Image.open(path) as opened:
            out[name] = ImageOps.exif_transpose(opened).convert("RGB")
    return out


def _body_range(fmt: str, data: bytes) -> tuple[int, int]:
    """``(start, end)`` of the pixel data inside an encoded file (the part after every header)."""
    if fmt == "JPEG":
        sos = jpeg_segment(data, (0xDA,))
        return sos + 2 + struct.unpack(">H", data[sos + 2 : sos + 4])[0], len(data) - 2
    if fmt == "PNG":
        idat = [(start, end) for tag, start, end in png_chunk_offsets(data) if tag == b"IDAT"]
        return idat[0][0], idat[-1][1]
    if fmt == "TIFF":
        with Image.open(io.BytesIO(data)) as image:
            strips = image.tag_v2[273]  # type: ignore[attr-defined]  # TIFF images only
        return min(strips) if isinstance(strips, tuple) else strips, len(data)
    if fmt == "BMP":
        return struct.unpack("<I", data[10:14])[0], len(data)
    if fmt == "HEIF":
        return data.index(b"mdat") + 4, len(data)
    if fmt == "WEBP":
        return 30, len(data)
    if fmt == "GIF":
        return data.index(b",", 13) + 11, len(data) - 1
    raise ValueError(fmt)


def _damaged(corpus: _Corpus, base: Image.Image, formats: Sequence[str]) -> None:
    """Truncated, header-only, garbage-after-header and bit-flipped copies of ``base`` in each format."""
    rng = corpus.rng
    for fmt in formats:
        ext, label = _EXTENSIONS[fmt], _EXTENSIONS[fmt].replace("tif", "tiff").replace("jpg", "jpeg")
        image = base.convert("P") if fmt == "GIF" else base
        options = {"quality": 90} if fmt in {"JPEG", "WEBP", "HEIF"} else {}
        data = encode(image, fmt, **options)
        start, end = _body_range(fmt, data)
        # Cut short: inside the header, right after it, and at fractions of the file.
        fractions = (0.05, 0.1, 0.15, 0.25, 0.3, 0.4, 0.5, 0.6, 0.75, 0.9, 0.95)
        cuts = sorted({12, 24, start, *(round(len(data) * f) for f in fractions), len(data) - 64})
        for cut in cuts:
            corpus.add(
                f"truncated_{label}",
                f"truncated_{label}-{cut:07d}.{ext}",
                data[:cut],
                "reject",
                "truncated_image",
                f"{cut} of {len(data)} bytes",
                capture=("truncated_image",),
            )
        # Only the trailer missing (JPEG EOI, PNG IEND …): every pixel is there, so a decoder may show it.
        corpus.add(
            f"truncated_{label}",
            f"truncated_{label}-{len(data) - 8:07d}.{ext}",
            data[:-8],
            "any",
            "truncated_image",
            "the last 8 bytes missing",
        )
        corpus.add(
            f"header_only_{label}",
            f"header_only_{label}.{ext}",
            data[:start],
            "reject",
            "truncated_image",
            f"the {start} header bytes, no pixel data",
            capture=("truncated_image",),
        )
        for index in range(3):
            garbage = rng.integers(0, 256, size=len(data) - start, dtype=np.uint8).tobytes()
            corpus.add(
                f"garbage_after_header_{label}",
                f"garbage_after_header_{label}-{index}.{ext}",
                data[:start] + garbage,
                "any",
                "truncated_image",
                "a valid header, then random bytes; decoders may show noise",
            )
        for index, flips in enumerate((1, 1, 1, 1, 4, 4, 4, 4, 16, 16, 16, 64, 64, 64, 256, 256)):
            damaged = bytearray(data)
            for pos in rng.integers(start, end, size=flips):
                damaged[pos] ^= 1 << int(rng.integers(0, 8))
            corpus.add(
                f"bit_flipped_{label}",
                f"bit_flipped_{label}-{index:02d}.{ext}",
                bytes(damaged),
                "any",
                "truncated_image",
                f"{flips} bit(s) flipped in the pixel data",
            )


def _not_images(corpus: _Corpus) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("photo.jpg", (2026, 1, 1, 0, 0, 0)), b"\xff\xd8\xff not really")
    payloads = (*_NON_IMAGES, ("zip", buffer.getvalue(), "not_an_image"))
    payloads += (("gzip", gzip.compress(b"hello", mtime=0), "not_an_image"),)
    payloads += (
        ("random_bytes", corpus.rng.integers(0, 256, size=4096, dtype=np.uint8).tobytes(), "unsupported_format"),
    )
    for kind, data, code in payloads:
        for ext in ("jpg", "png", "webp"):
            corpus.add(kind, f"{kind}-as.{ext}", data, "reject", code, f"{kind} bytes named .{ext}", capture=(code,))
    for ext in ("jpg", "jpeg", "png", "webp", "heic", "gif"):
        corpus.add("zero_bytes", f"zero_bytes.{ext}", b"", "reject", "empty_file", capture=("empty_file",))


def _wrong_extensions(corpus: _Corpus, face: Image.Image, formats: Sequence[str]) -> None:
    table: dict[str, tuple[str, ...]] = {
        "JPEG": ("png", "webp", "heic"),
        "PNG": ("jpg", "jpeg", "webp"),
        "WEBP": ("jpg", "png", "gif"),
    }
    table |= {"GIF": ("jpg", "png", "webp"), "TIFF": ("jpg", "png"), "BMP": ("jpg", "webp"), "HEIF": ("jpg", "png")}
    for fmt, extensions in table.items():
        if fmt not in formats:
            continue
        data = encode(face.convert("P") if fmt == "GIF" else face, fmt)
        for ext in extensions:
            corpus.add(
                "wrong_extension",
                f"wrong_extension-{fmt.lower()}-as.{ext}",
                data,
                "accept_face",
                note=f"{fmt} named .{ext}",
            )
    corpus.image("wrong_extension", "jpeg-no-extension", face, "JPEG", "accept_face", ext="", note="no extension")
    corpus.image("wrong_extension", "jpeg-upper", face, "JPEG", "accept_face", ext="JPG", note="upper-case .JPG")
    corpus.image("wrong_extension", "png-double", face, "PNG", "accept_face", ext="jpg.exe", note="double extension")


def _unsupported_formats(corpus: _Corpus, face: Image.Image) -> None:
    small = _resize(face, 256)
    for fmt, ext, image in (
        ("ICO", "ico", small),
        ("JPEG2000", "jp2", face),
        ("PPM", "ppm", face),
        ("TGA", "tga", face),
        ("PCX", "pcx", face),
        ("SGI", "sgi", face),
        ("DDS", "dds", face),
        ("QOI", "qoi", face),
        ("IM", "im", face),
        ("XBM", "xbm", face.convert("1")),
    ):
        corpus.image(
            "unsupported_format",
            fmt.lower(),
            image,
            fmt,
            "reject",
            code="unsupported_format",
            ext=ext,
            note=f"a valid {fmt} file (not a format the app takes)",
            capture=("unsupported_format",),
        )
    corpus.image(
        "unsupported_format",
        "jpeg2000-as",
        face,
        "JPEG2000",
        "reject",
        code="unsupported_format",
        ext="jpg",
        note="JPEG 2000 named .jpg",
    )


def _bombs(corpus: _Corpus, face: Image.Image) -> None:
    """Files whose declared size is over the 40 MP cap: each must be refused before decoding."""

    def bomb(name: str, data: bytes, note: str) -> None:
        corpus.add(
            "decompression_bomb",
            f"decompression_bomb-{name}",
            data,
            "reject",
            "image_too_large",
            note,
            ("image_too_large",),
        )

    small = _resize(face, 64)
    jpeg, tiff, bmp = encode(small, "JPEG"), encode(small, "TIFF"), encode(small, "BMP")
    tiny_vp8l = dict(webp_chunks(encode(Image.new("RGB", (1, 1)), "WEBP", lossless=True)))[b"VP8L"]
    bomb("png-40000.png", png_of_zeros(40000, 40000, rows=8), "PNG header declares 40000×40000 (1.6 GP)")
    bomb("png-40000-rgb.png", png_of_zeros(40000, 40000, colour_type=2, rows=2), "RGB PNG declares 40000×40000")
    bomb("gif-40000.gif", gif_declaring(40000, 40000), "60-byte GIF declares 40000×40000")
    bomb("gif-65535.gif", gif_declaring(65535, 65535), "GIF declares 65535×65535")
    bomb("jpeg-40000.jpg", jpeg_with_size(jpeg, 40000, 40000), "JPEG frame header declares 40000×40000")
    bomb("jpeg-65535.jpg", jpeg_with_size(jpeg, 65535, 65535), "JPEG frame header declares 65535×65535")
    bomb("jpeg-7000.jpg", jpeg_with_size(jpeg, 7000, 7000), "JPEG declares 49 MP: over the cap, under Pillow's")
    bomb("tiff-40000.tif", tiff_with_size(tiff, 40000, 40000), "TIFF declares 40000×40000")
    bomb("bmp-40000.bmp", bmp_with_size(bmp, 40000, 40000), "BMP declares 40000×40000")
    bomb("webp-16384.webp", vp8l_declaring(16384, 16384, tiny_vp8l), "lossless WebP declares 16384×16384 (268 MP)")
    bomb("webp-canvas-40000.webp", webp_canvas_declaring(16000, 16000, tiny_vp8l), "animated WebP canvas 16000×16000")
    bomb("png-zeros-8000-rgb.png", png_of_zeros(8000, 8000, colour_type=2), "real 64 MP RGB PNG of zeros (~190 KB)")
    bomb("png-zeros-12000.png", png_of_zeros(12000, 12000), "real 144 MP grey PNG of zeros (~140 KB)")
    bomb("png-just-over.png", png_of_zeros(8001, 5000), "40.005 MP: one column over the cap")
    # Over the file-size cap: a JPEG's bytes, then a hole up to one byte over 60 MB. Sparse, so it takes
    # almost no disk; it must be refused from its size alone, before it is read.
    from headshot_lab.io import DEFAULT_MAX_BYTES

    name, size = "over_byte_cap.jpg", DEFAULT_MAX_BYTES + 1
    corpus.add("over_byte_cap", name, jpeg, "reject", "image_too_large", f"{size} bytes, sparse", ("image_too_large",))
    with open(corpus.out / name, "r+b") as handle:
        handle.truncate(size)


def _sizes(corpus: _Corpus) -> None:
    rng = corpus.rng

    def noise(width: int, height: int) -> Image.Image:
        return Image.fromarray(rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8))

    # Headers declaring no pixels at all: invalid files (a PNG or JPEG side must be ≥ 1), so damaged.
    grey = Image.new("RGB", (64, 64), (100, 120, 140))
    jpeg, tiff, bmp = encode(grey, "JPEG"), encode(grey, "TIFF"), encode(grey, "BMP")
    for name, data in (
        ("png-0x0.png", png_of_zeros(0, 0)),
        ("png-0x300.png", png_of_zeros(0, 300)),
        ("gif-0x0.gif", gif_declaring(0, 0)),
        ("jpeg-300x0.jpg", jpeg_with_size(jpeg, 300, 0)),
        ("bmp-0x0.bmp", bmp_with_size(bmp, 0, 0)),
        ("tiff-0x0.tif", tiff_with_size(tiff, 0, 0)),
    ):
        note = "the header declares no pixels"
        corpus.add("zero_size", f"zero_size-{name}", data, "reject", "truncated_image", note, ("truncated_image",))
    for width, height in ((1, 1), (2, 2), (3, 3), (1, 600), (600, 1), (16, 16), (255, 400), (400, 255)):
        for fmt in ("PNG", "JPEG", "GIF", "WEBP", "BMP"):
            corpus.image(
                "too_small",
                f"{width}x{height}",
                noise(width, height),
                fmt,
                "reject",
                code="image_too_small",
                note=f"{width}×{height}",
                capture=("image_too_small",),
            )
    flat = Image.new("RGB", (20000, 8), (120, 140, 160))
    for fmt in ("PNG", "JPEG", "GIF", "TIFF"):
        for image in (flat, flat.transpose(Image.Transpose.TRANSPOSE)):
            corpus.image(
                "too_small",
                f"{image.width}x{image.height}",
                image,
                fmt,
                "reject",
                code="image_too_small",
                note="a 20000-pixel side, 8 px the other way",
            )
    for fmt in ("PNG", "JPEG"):
        corpus.image("smallest_accepted", "256x256", noise(256, 256), fmt, "accept_no_face", note="exactly min_side")
        corpus.image("smallest_accepted", "256x400", noise(256, 400), fmt, "accept_no_face", note="min_side wide")
    strip = np.tile(np.linspace(40, 220, 20000, dtype=np.uint8)[None, :, None], (256, 1, 3))
    corpus.image("long_strip", "20000x256", Image.fromarray(strip), "PNG", "accept_no_face", note="20000×256")
    corpus.image("long_strip", "256x20000", Image.fromarray(strip.transpose(1, 0, 2)), "JPEG", "accept_no_face")
    corpus.add(
        "at_pixel_cap",
        "at_pixel_cap-8000x5000.png",
        png_of_zeros(8000, 5000),
        "accept_no_face",
        note="exactly 40 MP (the cap is inclusive); black",
        capture=("no_face", "underexposed"),
    )


def _modes(corpus: _Corpus, face: Image.Image) -> None:
    import cv2

    rgb = np.asarray(face)
    grey = np.asarray(face.convert("L"))
    cmyk = face.convert("CMYK")
    profile = cmyk_icc_profile()
    srgb = _srgb_profile()
    corpus.image("cmyk_jpeg", "no-icc", cmyk, "JPEG", "accept_face", note="CMYK JPEG without a profile")
    corpus.image("cmyk_jpeg", "icc", cmyk, "JPEG", "accept_face", options={"icc_profile": profile}, note="CMYK ICC")
    corpus.image(
        "cmyk_jpeg", "srgb-icc", cmyk, "JPEG", "accept_face", options={"icc_profile": srgb}, note="RGB profile"
    )
    corpus.image("cmyk_jpeg", "broken-icc", cmyk, "JPEG", "accept_face", options={"icc_profile": b"x" * 300})
    corpus.image("cmyk_tiff", "icc", cmyk, "TIFF", "accept_face", options={"icc_profile": profile})
    corpus.image("cmyk_tiff", "no-icc", cmyk, "TIFF", "accept_face")

    def cv2_png(array: np.ndarray) -> bytes:
        return cv2.imencode(".png", array)[1].tobytes()

    deep = rgb.astype(np.uint16) * 257
    corpus.add("png16_grey", "png16_grey.png", cv2_png(grey.astype(np.uint16) * 257), "accept_face")
    corpus.add("png16_rgb", "png16_rgb.png", cv2_png(deep[..., ::-1].copy()), "accept_face")
    alpha = np.full(grey.shape, 65535, dtype=np.uint16)
    corpus.add("png16_rgba", "png16_rgba.png", cv2_png(np.dstack([deep[..., ::-1], alpha])), "accept_face")
    corpus.add(
        "tiff16_rgb", "tiff16_rgb.tif", cv2.imencode(".tiff", deep[..., ::-1].copy())[1].tobytes(), "accept_face"
    )
    corpus.image("tiff_i16", "grey", Image.fromarray(grey.astype(np.uint16) * 257), "TIFF", "accept_face", note="I;16")
    big_endian = Image.fromarray(grey.astype(np.uint16) * 257).convert("I").convert("I;16B")
    corpus.image("tiff_i16", "big-endian", big_endian, "TIFF", "accept_face", note="I;16B")
    corpus.image(
        "tiff_i32",
        "grey",
        Image.fromarray((grey.astype(np.int64) * 8421504).astype(np.int32)),
        "TIFF",
        "accept_face",
        note="I",
    )
    corpus.image(
        "tiff_float", "0-1", Image.fromarray(grey.astype(np.float32) / 255), "TIFF", "accept_face", note="F in 0…1"
    )
    corpus.image(
        "tiff_float", "0-255", Image.fromarray(grey.astype(np.float32)), "TIFF", "accept_face", note="F in 0…255"
    )
    nan = grey.astype(np.float32) / 255
    nan[:40] = np.nan
    nan[-40:] = np.inf
    corpus.image("tiff_float", "nan", Image.fromarray(nan), "TIFF", "accept_face", note="F with NaN and inf rows")
    corpus.image("palette", "png", face.convert("P"), "PNG", "accept_face")
    corpus.image("palette", "gif", face.convert("P"), "GIF", "accept_face")
    transparent = face.convert("P")
    corpus.image("palette_transparent", "png", transparent, "PNG", "accept_face", options={"transparency": 0})
    corpus.image("palette_transparent", "gif", transparent, "GIF", "accept_face", options={"transparency": 0})
    corpus.image("greyscale_alpha", "la", face.convert("LA"), "PNG", "accept_face", note="LA")
    rgba = np.dstack([rgb, np.full(grey.shape, 255, np.uint8)])
    rgba[: rgba.shape[0] // 6, :, 3] = 0  # transparent band over the hair, face opaque
    corpus.image("rgba", "png", Image.fromarray(rgba, "RGBA"), "PNG", "accept_face", note="partly transparent")
    corpus.image("rgba", "webp", Image.fromarray(rgba, "RGBA"), "WEBP", "accept_face", options={"lossless": True})
    corpus.image("rgba", "tiff", Image.fromarray(rgba, "RGBA"), "TIFF", "accept_face")
    clear = rgba.copy()
    clear[..., 3] = 0
    corpus.image(
        "fully_transparent",
        "png",
        Image.fromarray(clear, "RGBA"),
        "PNG",
        "accept_no_face",
        note="every pixel transparent: shows as white",
        capture=("no_face",),
    )
    corpus.image(
        "fully_transparent",
        "webp",
        Image.fromarray(clear, "RGBA"),
        "WEBP",
        "accept_no_face",
        options={"lossless": True},
    )
    corpus.image("one_bit", "png", face.convert("1"), "PNG", "accept", note="dithered black and white")
    corpus.image("one_bit", "tiff", face.convert("1"), "TIFF", "accept", options={"compression": "group4"})
    corpus.image("greyscale", "jpeg", face.convert("L"), "JPEG", "accept_face", capture=("heavy_filter",))
    corpus.image("greyscale", "png", face.convert("L"), "PNG", "accept_face", capture=("heavy_filter",))
    corpus.image(
        "mpo",
        "two-frames",
        face,
        "MPO",
        "accept_face",
        ext="jpg",
        options={"save_all": True, "append_images": [face.rotate(180)]},
    )
    corpus.image("progressive_jpeg", "q85", face, "JPEG", "accept_face", options={"progressive": True, "quality": 85})
    lab = face.convert("LAB")
    lab.info.pop("icc_profile", None)  # a LAB profile stamped with today's date: the file would change daily
    corpus.image("lab_tiff", "lab", lab, "TIFF", "accept", note="CIELAB TIFF")
    corpus.image("ycbcr_tiff", "jpeg-compressed", face, "TIFF", "accept_face", options={"compression": "jpeg"})


def _srgb_profile() -> bytes:
    """LittleCMS's built-in sRGB profile, its creation date (header bytes 24–35) fixed for reproducible files."""
    from PIL import ImageCms

    data = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    data[24:36] = struct.pack(">6H", 2026, 6, 15, 12, 0, 0)
    return bytes(data)


def _animations(corpus: _Corpus, face: Image.Image) -> None:
    """Animations whose first frame is the face and whose later frames are not (the first frame must be used)."""
    rng = corpus.rng
    later = [Image.fromarray(rng.integers(0, 256, size=(face.height, face.width, 3), dtype=np.uint8))]
    later += [Image.new("RGB", face.size, colour) for colour in ((0, 0, 255), (250, 250, 250), (30, 30, 30))]
    options = {"save_all": True, "append_images": later, "duration": 100, "loop": 0}
    said = ("animated",)
    corpus.image("animated_gif", "5-frames", face, "GIF", "accept_face", options=options, capture=said)
    webp = {**options, "quality": 80}
    corpus.image("animated_webp", "5-frames", face, "WEBP", "accept_face", options=webp, capture=said)
    corpus.image("animated_png", "5-frames", face, "PNG", "accept_face", options=options, note="APNG", capture=said)
    many = {**options, "append_images": [Image.new("RGB", face.size, (i, 0, 0)) for i in range(0, 250, 5)]}
    corpus.image("animated_gif", "51-frames", face, "GIF", "accept_face", options=many, capture=said)
    pages = {"save_all": True, "append_images": later[:2]}
    corpus.image("multipage_tiff", "3-pages", face, "TIFF", "accept_face", options=pages, capture=said)


def _exif(corpus: _Corpus, faces: dict[str, Image.Image]) -> None:
    """EXIF orientations 1–8 (stored pixels turned so that only applying the tag makes them upright)."""
    for name in ("obama", "obama2"):
        upright = _resize(faces[name], 512)
        for orientation, op in _UPRIGHT_TO_STORED.items():
            stored = upright if op is None else upright.transpose(op)
            exif = Image.Exif()
            exif[0x0112] = orientation
            corpus.image(
                "exif_orientation",
                f"{name}-{orientation}",
                stored,
                "JPEG",
                "accept_face",
                options={"exif": exif.tobytes(), "quality": 90},
                note=f"orientation {orientation}: upright only after the tag is applied",
            )
    upright = _resize(faces["obama"], 512)
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    corpus.image(
        "exif_orientation", "png-6", stored, "PNG", "accept_face", options={"exif": exif.tobytes()}, note="PNG eXIf"
    )
    corpus.image(
        "exif_orientation", "webp-6", stored, "WEBP", "accept_face", options={"exif": exif.tobytes()}, note="WebP EXIF"
    )
    for value in (0, 9, 255, 65535):
        exif = Image.Exif()
        exif[0x0112] = value
        corpus.image(
            "exif_odd",
            f"orientation-{value}",
            upright,
            "JPEG",
            "accept_face",
            options={"exif": exif.tobytes()},
            note=f"invalid orientation {value}: ignored",
        )
    plain = encode(upright, "JPEG", quality=90)
    rng = corpus.rng
    broken = [
        ("garbage-exif", b"Exif\x00\x00" + rng.integers(0, 256, 200, dtype=np.uint8).tobytes()),
        ("truncated-exif", b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x05\x00\x12\x01\x03\x00"),
        (
            "looping-ifd",
            b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x01\x00\x12\x01\x03\x00\x01\x00\x00\x00\x01\x00\x00\x00\x08\x00\x00\x00",
        ),
        ("big-exif", b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x00\x00" + bytes(60000)),
    ]
    for stem, payload in broken:
        corpus.add("exif_broken", f"exif_broken-{stem}.jpg", jpeg_with_app1(plain, payload), "accept", note=stem)


def _decode_budgets(corpus: _Corpus, faces: dict[str, Image.Image]) -> None:
    """Small files that pinned a worker for minutes (issue 19): scans, pages, EXIF amplifiers, metadata bombs."""
    upright = _resize(faces["obama"], 512)
    flat = encode(Image.new("RGB", (2048, 2048), (120, 90, 70)), "JPEG", progressive=True, quality=30)
    corpus.add(
        "many_scan_jpeg",
        "many_scan_jpeg-3000-scans.jpg",
        jpeg_with_repeated_scans(flat, 3000),
        "reject",
        "image_too_complex",
        "progressive JPEG, last scan repeated 3000 times: 73 KB, 10 s to decode",
        ("image_too_complex",),
    )
    face_jpeg = encode(upright, "JPEG", progressive=True, quality=90)
    at_limit = jpeg_with_repeated_scans(face_jpeg, 32 - len(jpeg_scans(face_jpeg)))
    corpus.add("many_scan_jpeg", "many_scan_jpeg-32-scans.jpg", at_limit, "accept_face", note="exactly 32 scans")
    over = jpeg_with_repeated_scans(face_jpeg, 33 - len(jpeg_scans(face_jpeg)))
    corpus.add("many_scan_jpeg", "many_scan_jpeg-33-scans.jpg", over, "reject", "image_too_complex", "33 scans")
    first = encode(_resize(faces["obama"], 400), "TIFF")
    corpus.add(
        "many_page_tiff",
        "many_page_tiff-20000.tif",
        tiff_with_pages(first, 20_000),
        "accept_face",
        note="a face, then 20,000 1×1 pages (2 MB): pages counted by walking IFDs, capped",
        capture=("animated",),
    )
    loop = bytearray(tiff_with_pages(first, 2))
    (ifd,) = struct.unpack("<I", loop[4:8])
    (count,) = struct.unpack("<H", loop[ifd : ifd + 2])
    loop[ifd + 2 + 12 * count : ifd + 6 + 12 * count] = struct.pack("<I", ifd)  # IFD0 points back at itself
    corpus.add("many_page_tiff", "many_page_tiff-loop.tif", bytes(loop), "accept_face", note="IFD chain loops")
    plain = encode(upright, "JPEG", quality=90)
    for orientation, op in _UPRIGHT_TO_STORED.items():
        stored = encode(upright if op is None else upright.transpose(op), "JPEG", quality=90)
        corpus.add(
            "exif_amplifier",
            f"exif_amplifier-{orientation}.jpg",
            jpeg_with_app1(stored, exif_amplifier(orientation)),
            "accept_face",
            note=f"orientation {orientation} + 5000 tags × 60 KB (300 MB when parsed) in a 64 KB APP1",
        )
    loop6 = encode(upright.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=90)
    corpus.add(
        "exif_amplifier",
        "exif_amplifier-loop-6.jpg",
        jpeg_with_app1(loop6, exif_amplifier(6, loop=True)),
        "accept_face",
        note="orientation 6 + 4998 tags × 60 KB, Exif and GPS IFD pointers looping back to IFD0",
    )
    short = struct.pack("<H", 6)
    wrong: dict[str, list[tuple[int, int, int, bytes]]] = {
        "width-ascii": [(0x0100, 2, 4, b"abc\x00"), (0x0112, 3, 1, short)],
        "resolution-ascii": [(0x0112, 3, 1, short), (0x011A, 2, 4, b"72\x00\x00"), (0x0128, 3, 1, b"\x02\x00")],
        "resolution-zero": [(0x0112, 3, 1, short), (0x011A, 5, 1, struct.pack("<I", 26))],
        "unknown-type": [(0x0100, 99, 1, b"\x01\x00"), (0x0112, 3, 1, short)],
        "huge-count": [(0x0110, 2, 0x7FFFFFFF, struct.pack("<I", 26)), (0x0112, 3, 1, short)],
        "offset-past-end": [(0x0112, 3, 1, short), (0x010F, 2, 100, struct.pack("<I", 0x7FFFFFF0))],
        "exif-ifd-loop": [(0x0112, 3, 1, short), (0x8769, 4, 1, struct.pack("<I", 8))],
    }
    stored6 = upright.transpose(Image.Transpose.ROTATE_90)
    jpeg6 = encode(stored6, "JPEG", quality=90)
    for stem, entries in wrong.items():
        block = exif_block(entries, data=bytes(16))
        note = f"orientation 6 (SHORT) + {stem}: must load upright"
        corpus.add(
            "exif_wrong_type", f"exif_wrong_type-{stem}.jpg", jpeg_with_app1(jpeg6, block), "accept_face", note=note
        )
    for fmt in ("PNG", "WEBP"):
        block = exif_block(wrong["width-ascii"], data=bytes(16))
        corpus.image(
            "exif_wrong_type", f"width-ascii-{fmt.lower()}", stored6, fmt, "accept_face", options={"exif": block}
        )
    ascii_orientation = exif_block([(0x0112, 2, 2, b"6\x00")])
    corpus.add(
        "exif_wrong_type",
        "exif_wrong_type-orientation-ascii.jpg",
        jpeg_with_app1(plain, ascii_orientation),
        "accept_face",
        note="orientation stored as ASCII '6': ignored (the pixels are upright as stored)",
    )

    png = encode(upright, "PNG")
    tiff_zeros = b"II*\x00" + struct.pack("<I", 8) + bytes(6)
    bombs = {
        "exif-5mb": ([(b"eXIf", tiff_zeros + bytes(5 << 20))], "a 5 MB eXIf chunk"),
        "iccp-256mb": ([(b"iCCP", b"icc\x00\x00" + deflate_zeros(256 << 20))], "iCCP inflating to 256 MB"),
        "ztxt-256mb": ([(b"zTXt", b"Comment\x00\x00" + deflate_zeros(256 << 20))], "zTXt inflating to 256 MB"),
        "itxt-256mb": ([(b"iTXt", b"Comment\x00\x01\x00\x00\x00" + deflate_zeros(256 << 20))], "iTXt, 256 MB"),
        "ztxt-many": (
            [(b"zTXt", f"k{i}".encode() + b"\x00\x00" + deflate_zeros(900 << 10)) for i in range(20)],
            "20 zTXt chunks of 900 KB each (18 MB of text in all)",
        ),
    }
    for stem, (chunks, note) in bombs.items():
        data = png_with_chunks(png, chunks)
        code = "metadata_too_large"
        corpus.add("png_metadata_bomb", f"png_metadata_bomb-{stem}.png", data, "reject", code, note, (code,))
    icc = _srgb_profile() * (1 + (1 << 20) // len(_srgb_profile()))  # over 1 MB in 65 KB APP2 chunks
    parts = [icc[i : i + 65519] for i in range(0, len(icc), 65519)]
    app2 = b"".join(
        b"\xff\xe2" + struct.pack(">H", len(part) + 16) + b"ICC_PROFILE\x00" + bytes([i + 1, len(parts)]) + part
        for i, part in enumerate(parts)
    )
    corpus.add(
        "jpeg_metadata_bomb",
        "jpeg_metadata_bomb-icc-1mb.jpg",
        plain[:2] + app2 + plain[2:],
        "reject",
        "metadata_too_large",
        f"{len(parts)} APP2 ICC chunks, {len(icc) / 2**20:.1f} MB",
        ("metadata_too_large",),
    )


def _colour_profiles(corpus: _Corpus, faces: dict[str, Image.Image]) -> None:
    """The same face tagged sRGB, Display P3, Adobe RGB and ProPhoto (JPEG, PNG, WebP): all read as sRGB."""
    face = _resize(faces["obama"], 512)
    for space in ("sRGB", *RGB_SPACES):
        stem = space.split(" (")[0].lower().replace(" ", "_")
        for fmt, options in (("JPEG", {"quality": 95}), ("PNG", {}), ("WEBP", {"quality": 95})):
            data = encode_in_space(face, space, fmt, **options)
            note = f"{space} pixels with the {space} profile embedded"
            corpus.add("icc_tagged", f"icc_tagged-{stem}.{_EXTENSIONS[fmt]}", data, "accept_face", note=note)
    broken = bytearray(rgb_icc_profile("Display P3"))
    broken[200:260] = bytes(60)  # the tag table's data zeroed: LittleCMS refuses it
    data = encode(face, "JPEG", quality=90, icc_profile=bytes(broken))
    corpus.add("icc_tagged", "icc_tagged-broken.jpg", data, "accept_face", note="unreadable profile: ignored")


def _labels(corpus: _Corpus, faces: dict[str, Image.Image]) -> None:
    """Uploads already labelled by their maker (IPTC DigitalSourceType in XMP): the label must be read."""
    from datetime import UTC, datetime

    from headshot_lab.provenance import PNG_XMP_KEY, build_xmp

    face = _resize(faces["obama2"], 512)
    xmp = build_xmp("generated", disclosure="Made by another AI tool.", created=datetime(2026, 6, 15, tzinfo=UTC))
    note = "XMP Iptc4xmpExt:DigitalSourceType = trainedAlgorithmicMedia"
    corpus.image("ai_labelled", "jpeg", face, "JPEG", "accept_face", options={"xmp": xmp}, note=note)
    corpus.image("ai_labelled", "webp", face, "WEBP", "accept_face", options={"xmp": xmp}, note=note)
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_itxt(PNG_XMP_KEY, xmp.decode("utf-8"))
    corpus.image("ai_labelled", "png", face, "PNG", "accept_face", options={"pnginfo": info}, note=note)


def _content(corpus: _Corpus, faces: dict[str, Image.Image], formats: Sequence[str]) -> None:
    """Valid photos whose content the checklist must judge (no face, many faces, cut off, exposure …)."""
    from skimage import data as scenes

    rng = corpus.rng
    face = _resize(faces["obama"], FACE_SIDE)
    no_face: dict[str, Image.Image] = {
        "noise": Image.fromarray(rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8)),
        "black": Image.new("RGB", (640, 480)),
        "white": Image.new("RGB", (640, 480), (255, 255, 255)),
        "grey": Image.new("RGB", (640, 480), (128, 128, 128)),
        "red": Image.new("RGB", (480, 640), (200, 20, 30)),
        "gradient": Image.linear_gradient("L").resize((640, 480)).convert("RGB"),
    }
    scene_names = ("coffee", "rocket", "chelsea", "coins", "brick", "grass", "gravel", "moon", "clock", "colorwheel")
    for scene in (*scene_names, "immunohistochemistry"):
        array = getattr(scenes, scene)()
        no_face[scene] = _resize(Image.fromarray(array), FACE_SIDE)
    no_face["hubble"] = _resize(Image.fromarray(scenes.hubble_deep_field()), FACE_SIDE)
    no_face["horse_bool"] = Image.fromarray(scenes.horse())
    for stem, image in no_face.items():
        fmt = "PNG" if stem in {"black", "white", "grey", "red", "gradient", "horse_bool"} else "JPEG"
        corpus.image("no_face", stem, image, fmt, "accept_no_face", capture=("no_face",))

    # Nine faces: the 3×3 grid of three people's faces.
    tiles = [_resize(faces[name], 300) for name in ("obama", "obama2", "biden")] * 3
    grid = Image.new("RGB", (900, 900), (90, 90, 90))
    for index, tile in enumerate(tiles):
        cell = ImageOps.fit(tile, (300, 300), centering=(0.5, 0.3))
        grid.paste(cell, (300 * (index % 3), 300 * (index // 3)))
    corpus.image("nine_faces", "grid", grid, "JPEG", "accept_face", capture=("multiple_faces",))
    corpus.image(
        "many_faces",
        "group",
        _resize(faces["group"], FACE_SIDE * 2),
        "JPEG",
        "accept_face",
        capture=("multiple_faces",),
    )

    # Faces cut off at each border: the photo shifted so the face box straddles the edge.
    width, height = face.size
    # obama's face box spans x 0.39–0.70 and y 0.13–0.37 of this copy (dlib, 156 px): each shift puts
    # about a quarter of it outside the frame.
    for side, box in {
        "left": (width * 0.47, 0, width * 1.47, height),
        "right": (-width * 0.38, 0, width * 0.62, height),
        "top": (0, height * 0.19, width, height * 1.19),
        "bottom": (0, -height * 0.69, width, height * 0.31),
    }.items():
        left, top, right, bottom = (round(v) for v in box)
        shifted = face.crop((left, top, right, bottom))
        corpus.image("face_cut_off", side, shifted, "JPEG", "accept", capture=("face_cut_off", "no_face"))

    array = np.asarray(face, dtype=np.float32)
    corpus.image(
        "near_black",
        "x0.04",
        Image.fromarray((array * 0.04).astype(np.uint8)),
        "PNG",
        "accept",
        capture=("underexposed", "no_face"),
    )
    corpus.image(
        "blown_out",
        "x4",
        Image.fromarray(np.clip(array * 4, 0, 255).astype(np.uint8)),
        "JPEG",
        "accept",
        capture=("overexposed", "no_face"),
    )
    corpus.image(
        "blown_out",
        "white+60",
        Image.fromarray(np.clip(array + 160, 0, 255).astype(np.uint8)),
        "JPEG",
        "accept",
        capture=("overexposed", "no_face"),
    )
    for sigma in (40, 90):
        noisy = np.clip(array + rng.normal(0, sigma, array.shape), 0, 255).astype(np.uint8)
        corpus.image("heavy_noise", f"sigma{sigma}", Image.fromarray(noisy), "PNG", "accept")
    canvas = Image.new("RGB", (4000, 4000), (70, 110, 90))
    canvas.paste(_resize(face, 90), (1950, 1900))
    corpus.image(
        "tiny_face",
        "4000x4000",
        canvas,
        "JPEG",
        "accept",
        note="a 90-px head on 16 MP",
        capture=("face_too_small", "no_face"),
    )
    for name in ("obama", "obama2", "biden", "tom_hanks", "astronaut"):
        heif = ("HEIF",) if name == "obama" and "HEIF" in formats else ()  # encoding HEIC takes ~1 s
        for fmt in ("JPEG", "PNG", "WEBP", "TIFF", "BMP", *heif):
            image = _resize(faces[name], FACE_SIDE)
            if name == "tom_hanks":
                image = image.resize((336, 336), Image.Resampling.LANCZOS)  # 112 px is under min_side
            corpus.image("real_photo", f"{name}-{fmt.lower()}", image, fmt, "accept_face")


def _steps(faces: dict[str, Image.Image], formats: Sequence[str]) -> list[tuple[str, Callable[[_Corpus], None]]]:
    face = _resize(faces["obama"], FACE_SIDE)
    small = _resize(faces["obama"], DAMAGED_SIDE)
    return [
        ("damaged", lambda c: _damaged(c, small, formats)),
        ("not an image", _not_images),
        ("wrong extension", lambda c: _wrong_extensions(c, _resize(face, 512), formats)),
        ("unsupported format", lambda c: _unsupported_formats(c, _resize(face, 400))),
        ("decompression bomb", lambda c: _bombs(c, face)),
        ("size", _sizes),
        ("mode", lambda c: _modes(c, _resize(face, 512))),
        ("animated", lambda c: _animations(c, _resize(face, 400))),
        ("exif", lambda c: _exif(c, faces)),
        ("content", lambda c: _content(c, faces, formats)),
        ("decode budgets", lambda c: _decode_budgets(c, faces)),
        ("colour profiles", lambda c: _colour_profiles(c, faces)),
        ("labels", lambda c: _labels(c, faces)),
    ]


def make_hostile_corpus(out_dir: str | Path, *, seed: int = 0) -> list[HostileCase]:
    """Write the corpus into ``out_dir`` (created) and return its cases, in a fixed order.

    The same ``seed`` gives the same files and cases (random bytes come from ``numpy``'s PCG64).
    HEIC files are only written when ``pillow-heif`` is installed.
    """
    from headshot_lab.io import HEIF_SUPPORTED

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    corpus = _Corpus(out, seed)
    formats = ["JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP"] + (["HEIF"] if HEIF_SUPPORTED else [])
    faces = _faces()
    for _, step in _steps(faces, formats):
        step(corpus)
    return corpus.cases


def write_cases(cases: Sequence[HostileCase], path: str | Path) -> Path:
    """Write ``cases`` as JSON lines (file names relative to the corpus folder)."""
    path = Path(path)
    path.write_text("".join(json.dumps(case.to_dict()) + "\n" for case in cases))
    return path


def read_cases(path: str | Path) -> list[HostileCase]:
    """Read a ``cases.jsonl`` written by :func:`write_cases` (paths resolved next to it)."""
    path = Path(path)
    return [HostileCase.from_dict(json.loads(line), path.parent) for line in path.read_text().splitlines() if line]


def summary(cases: Sequence[HostileCase]) -> str:
    """A plain-text table: files, expectation and expected code per kind, then the totals."""
    rows: dict[str, Counter[str]] = {}
    for case in cases:
        rows.setdefault(case.kind, Counter())[f"{case.expect}:{case.expected_code or '-'}"] += 1
    width = max(len(kind) for kind in rows)
    lines = [f"{'kind':<{width}}  files  expect (code)"]
    for kind in sorted(rows):
        outcomes = ", ".join(f"{key} ×{n}" if n > 1 else key for key, n in sorted(rows[kind].items()))
        lines.append(f"{kind:<{width}}  {sum(rows[kind].values()):>5}  {outcomes}")
    totals = Counter(case.expect for case in cases)
    disk = sum(case.path.stat().st_blocks * 512 for case in cases if case.path.exists())
    lines.append(
        f"{len(cases)} files in {len(rows)} kinds, {disk / 1e6:.1f} MB on disk: "
        + ", ".join(f"{n} {expect}" for expect, n in sorted(totals.items()))
    )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m headshot_lab.testing.hostile OUT_DIR [--seed N]``."""
    parser = argparse.ArgumentParser(
        prog="python -m headshot_lab.testing.hostile",
        description="Write the hostile-input corpus, OUT_DIR/cases.jsonl, and print a summary by kind.",
    )
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    cases = make_hostile_corpus(args.out_dir, seed=args.seed)
    index = write_cases(cases, args.out_dir / "cases.jsonl")
    print(summary(cases))
    print(f"written in {time.perf_counter() - start:.1f} s; cases: {index}")
    return 0


__all__ = [
    "EXPECTATIONS",
    "HostileCase",
    "make_hostile_corpus",
    "read_cases",
    "summary",
    "write_cases",
]

if __name__ == "__main__":
    sys.exit(main())
