"""Decode budgets: what an image file holds, read from its container before any decoder runs.

:func:`inspect_container` walks the structure of a JPEG (segments), PNG (chunks), WebP (RIFF chunks),
TIFF (the chain of IFDs) or GIF (blocks) in bounded time (one pass, no pixel decoding, every count
capped) and returns the metadata the loader needs (EXIF for the orientation, the ICC profile, XMP)
plus counts of scans and pages. A file whose structure alone would make a decoder spend minutes or
gigabytes is refused here with a plain-words reason; metadata that is merely malformed is reported
as absent ("metadata ignored"), never as an exception.

Budgets and why:

========================  ==========  ==============================================================
limit                     value       reason
========================  ==========  ==============================================================
:data:`MAX_JPEG_SCANS`    32          libjpeg's standard progressive script has 10 scans (6 for grey),
                                      jpegtran/mozjpeg scripts stay under ~20; each extra scan costs a
                                      pass over every coefficient block (≈ 20 ms at 36 MP measured
                                      here), so 3000 empty scans in 73 KB took 10 s before this cap
:data:`MAX_EXIF_BYTES`    65,535      what a JPEG APP1 segment can hold; the same cap for PNG ``eXIf``
                                      and the WebP ``EXIF`` chunk
:data:`MAX_ICC_BYTES`     1 MiB       Pillow's own cap on a PNG ``iCCP`` chunk; display profiles are
                                      0.5–4 KB, camera profiles rarely over 100 KB
:data:`MAX_XMP_BYTES`     1 MiB       one XMP packet (a phone writes 2–20 KB)
:data:`MAX_TEXT_BYTES`    1 MiB       one PNG text chunk once inflated (Pillow's per-chunk cap)
:data:`MAX_METADATA_BYTES`  8 MiB     all metadata of one file together (text chunks, APP/COM
                                      segments)
:data:`MAX_PAGES`         1024        pages (TIFF IFDs) or frames (GIF) counted; a file may have more
                                      (only the first is used), the walk stops there: Pillow's
                                      ``n_frames`` re-reads every IFD each time and is quadratic
========================  ==========  ==============================================================

The EXIF orientation is read from IFD0 by :func:`exif_orientation` (one SHORT entry, no other tag is
parsed), so an EXIF block crafted to amplify (thousands of entries pointing at the same 60 KB) or
with wrongly-typed tags costs microseconds and cannot raise. JPEG EXIF segments are renamed in place
(``Exif`` → ``Exi_``, same length, offsets kept) so that Pillow never parses them either (it reads
the resolution from EXIF while opening a JPEG without a JFIF header).
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass, field

from headshot_lab.config import get_settings
from headshot_lab.errors import HeadshotLabError, ImageTooComplexError, MetadataTooLargeError

#: Default of ``Settings.max_jpeg_scans`` (``HEADSHOT_LAB_MAX_JPEG_SCANS``).
MAX_JPEG_SCANS = 32
MAX_EXIF_BYTES = 65_535
MAX_ICC_BYTES = 1 << 20
MAX_XMP_BYTES = 1 << 20
MAX_TEXT_BYTES = 1 << 20
MAX_METADATA_BYTES = 8 << 20
MAX_PAGES = 1024

EXIF_HEADER = b"Exif\x00\x00"
JPEG_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
JPEG_ICC_HEADER = b"ICC_PROFILE\x00"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_XMP_KEY = b"XML:com.adobe.xmp"
ORIENTATION_TAG = 0x0112
# The next marker after a scan's entropy-coded data: 0xFF followed by anything but a stuffed zero,
# a restart marker (RST0–7, inside the scan) or another 0xFF (fill).
_NEXT_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_NEUTRAL_EXIF = b"Exi_\x00\x00"


@dataclass
class Container:
    """What :func:`inspect_container` found.

    Attributes:
        data: the bytes to hand to the decoder (JPEG EXIF renamed in place; otherwise the input).
        exif: raw EXIF (TIFF structure, ``Exif\\0\\0`` header removed) or ``None``.
        icc: the embedded ICC profile or ``None``.
        xmp: the XMP packet or ``None``.
        scans: JPEG scans (SOS markers) counted, else ``None``.
        frames: pages (TIFF) or frames (GIF) counted (at most :data:`MAX_PAGES`), else ``None``.
        ignored: metadata found malformed and ignored (``"exif"``, ``"icc"`` …), for the record.
    """

    data: bytes
    exif: bytes | None = None
    icc: bytes | None = None
    xmp: bytes | None = None
    scans: int | None = None
    frames: int | None = None
    ignored: list[str] = field(default_factory=list)


def _too_large(name: str, what: str, limit: int, size: int | None = None) -> MetadataTooLargeError:
    """The refusal of metadata over ``limit`` (``size`` unknown for a compressed chunk: "more than")."""
    amount = _human(size) if size is not None else f"more than {_human(limit)}"
    return MetadataTooLargeError(
        f"{name}: the file carries {amount} of {what}, over the limit of {_human(limit)}; it was not opened "
        "(files built to exhaust a server's memory look like this)."
    )


def _human(size: int) -> str:
    return f"{size / 2**20:.1f} MB" if size >= 2**20 else f"{size / 1024:.0f} KB"


def inflate_capped(payload: bytes, limit: int) -> bytes | None:
    """``zlib``-inflate ``payload`` to at most ``limit`` bytes.

    Returns the bytes, or ``None`` when the stream is broken. Raises :class:`OverflowError` with
    ``args[0]`` = the size reached (``limit + 1``) when it would inflate past ``limit``: the work is
    bounded by ``limit``, however many gigabytes the stream declares.
    """
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(payload, limit + 1)
    except zlib.error:
        return None
    if len(out) > limit or inflater.unconsumed_tail:
        raise OverflowError(len(out))
    return out


def inspect_container(data: bytes, name: str) -> Container:
    """Walk ``data``'s container (format sniffed from its first bytes) within the budgets above.

    Raises:
        ImageTooComplexError: a JPEG with more than :data:`MAX_JPEG_SCANS` scans.
        MetadataTooLargeError: metadata over its cap (inflated size for compressed chunks).

    Anything else wrong with the structure is left for the decoder to report (damaged file); the
    metadata found up to that point is kept.
    """
    container = Container(data)
    walkers = (
        (b"\xff\xd8", _walk_jpeg),
        (PNG_SIGNATURE, _walk_png),
        (b"II*\x00", _walk_tiff),
        (b"MM\x00*", _walk_tiff),
        (b"II+\x00", _walk_tiff),
        (b"MM\x00+", _walk_tiff),
        (b"GIF8", _walk_gif),
    )
    walker = next((fn for magic, fn in walkers if data.startswith(magic)), None)
    if walker is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        walker = _walk_webp
    if walker is None:
        return container
    try:
        walker(container, name)
    except HeadshotLabError:
        raise
    except Exception:  # a malformed structure: the decoder will say whether the file is damaged
        container.ignored.append("structure")
    return container


def _u16(data: bytes, pos: int, order: str = ">") -> int:
    return int(struct.unpack_from(order + "H", data, pos)[0])


def _u32(data: bytes, pos: int, order: str = ">") -> int:
    return int(struct.unpack_from(order + "I", data, pos)[0])


# -- JPEG ----------------------------------------------------------------------------------------


def _walk_jpeg(container: Container, name: str) -> None:
    """Segments from SOI to EOI (or the end); entropy-coded data skipped with one regex search a scan."""
    data = container.data
    pos, size, scans, metadata = 2, len(data), 0, 0
    scan_limit = get_settings().max_jpeg_scans  # MAX_JPEG_SCANS unless the operator sets HEADSHOT_LAB_MAX_JPEG_SCANS
    icc_chunks: dict[int, bytes] = {}
    renamed: list[int] = []
    while pos + 4 <= size:
        if data[pos] != 0xFF:
            break
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # no length
            pos += 2
            continue
        if marker == 0xD9:  # EOI
            break
        length = _u16(data, pos + 2)
        if length < 2:
            break
        start, end = pos + 4, pos + 2 + length
        if marker == 0xDA:  # SOS: count, then skip the entropy-coded data that follows the header
            scans += 1
            if scans > scan_limit:
                raise ImageTooComplexError(
                    f"{name}: the JPEG has more than {scan_limit} scans (a normal progressive photo has "
                    "about 10); decoding it could take minutes, so it was not opened."
                )
            found = _NEXT_MARKER.search(data, end)
            if found is None:
                break
            pos = found.start()
            continue
        if 0xE0 <= marker <= 0xEF or marker == 0xFE:
            metadata += length - 2
            if metadata > MAX_METADATA_BYTES:
                raise _too_large(name, "metadata", MAX_METADATA_BYTES, metadata)
            if marker == 0xE1 and data.startswith(EXIF_HEADER, start):
                if container.exif is None:
                    container.exif = data[start + len(EXIF_HEADER) : end]
                renamed.append(start)
            elif marker == 0xE1 and data.startswith(JPEG_XMP_HEADER, start) and container.xmp is None:
                container.xmp = data[start + len(JPEG_XMP_HEADER) : end]
            elif marker == 0xE2 and data.startswith(JPEG_ICC_HEADER, start) and end - start > 14:
                icc_chunks.setdefault(data[start + 12], data[start + 14 : end])
        pos = end
    container.scans = scans
    if icc_chunks:
        total = sum(len(chunk) for chunk in icc_chunks.values())
        if total > MAX_ICC_BYTES:
            raise _too_large(name, "colour profile", MAX_ICC_BYTES, total)
        container.icc = b"".join(icc_chunks[index] for index in sorted(icc_chunks))
    if renamed:
        edited = bytearray(data)
        for start in renamed:
            edited[start : start + len(_NEUTRAL_EXIF)] = _NEUTRAL_EXIF
        container.data = bytes(edited)


# -- PNG -----------------------------------------------------------------------------------------


def _walk_png(container: Container, name: str) -> None:
    """Chunks up to IEND: caps on ``eXIf``, ``iCCP`` (inflated) and text chunks (inflated)."""
    data = container.data
    pos, size, text_total = len(PNG_SIGNATURE), len(data), 0
    while pos + 12 <= size:
        length, tag = struct.unpack_from(">I4s", data, pos)
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if tag == b"IEND":
            break
        if tag == b"eXIf":
            if length > MAX_EXIF_BYTES:
                raise _too_large(name, "EXIF data", MAX_EXIF_BYTES, length)
            if container.exif is None:
                container.exif = body[len(EXIF_HEADER) :] if body.startswith(EXIF_HEADER) else body
        elif tag == b"iCCP":
            container.icc = _png_compressed(body, body.find(b"\x00") + 2, MAX_ICC_BYTES, name, "colour profile")
            if container.icc is None:
                container.ignored.append("icc")
        elif tag in (b"tEXt", b"zTXt", b"iTXt"):
            text = _png_text(tag, body, name)
            text_total += len(text) if text is not None else length
            if text_total > MAX_METADATA_BYTES:
                raise _too_large(name, "text", MAX_METADATA_BYTES, text_total)
            if tag == b"iTXt" and body.startswith(PNG_XMP_KEY + b"\x00") and text is not None:
                container.xmp = container.xmp or text


def _png_compressed(body: bytes, start: int, limit: int, name: str, what: str) -> bytes | None:
    """The inflated payload of a compressed PNG chunk from ``start``; over ``limit`` → refused."""
    if start < 2 or start > len(body):
        return None
    try:
        return inflate_capped(body[start:], limit)
    except OverflowError:
        raise _too_large(name, f"compressed {what}", limit) from None


def _png_text(tag: bytes, body: bytes, name: str) -> bytes | None:
    """A text chunk's text (inflated within :data:`MAX_TEXT_BYTES`), ``None`` when malformed."""
    keyword_end = body.find(b"\x00")
    if keyword_end < 1:
        return None
    if tag == b"tEXt":
        text = body[keyword_end + 1 :]
    elif tag == b"zTXt":
        return _png_compressed(body, keyword_end + 2, MAX_TEXT_BYTES, name, "text")
    else:  # iTXt: keyword \0 flag method language \0 translated keyword \0 text
        flag = body[keyword_end + 1 : keyword_end + 2]
        language_end = body.find(b"\x00", keyword_end + 3)
        translated_end = body.find(b"\x00", language_end + 1) if language_end >= 0 else -1
        if translated_end < 0:
            return None
        if flag == b"\x01":
            return _png_compressed(body, translated_end + 1, MAX_TEXT_BYTES, name, "text")
        text = body[translated_end + 1 :]
    if len(text) > MAX_TEXT_BYTES:
        raise _too_large(name, "text", MAX_TEXT_BYTES, len(text))
    return text


# -- WebP ----------------------------------------------------------------------------------------


def _walk_webp(container: Container, name: str) -> None:
    """RIFF chunks: caps on ``EXIF``, ``ICCP`` and ``XMP `` (libwebp hands them over whole)."""
    data = container.data
    pos, size = 12, len(data)
    caps = {b"EXIF": (MAX_EXIF_BYTES, "EXIF data"), b"ICCP": (MAX_ICC_BYTES, "colour profile")}
    caps[b"XMP "] = (MAX_XMP_BYTES, "XMP data")
    while pos + 8 <= size:
        fourcc, length = data[pos : pos + 4], _u32(data, pos + 4, "<")
        body = data[pos + 8 : pos + 8 + length]
        pos += 8 + length + (length & 1)
        if fourcc in caps:
            limit, what = caps[fourcc]
            if length > limit:
                raise _too_large(name, what, limit, length)
            if fourcc == b"EXIF":
                container.exif = body[len(EXIF_HEADER) :] if body.startswith(EXIF_HEADER) else body
            elif fourcc == b"ICCP":
                container.icc = body
            else:
                container.xmp = body


# -- TIFF ----------------------------------------------------------------------------------------


def _walk_tiff(container: Container, name: str) -> None:
    """Pages: the chain of IFD offsets, at most :data:`MAX_PAGES`, loops stopped; IFD0 is the EXIF."""
    container.frames = tiff_page_count(container.data)
    container.exif = container.data  # a TIFF's own IFD0 holds the orientation tag


def tiff_page_count(data: bytes, cap: int = MAX_PAGES) -> int:
    """Pages of a TIFF (classic or BigTIFF) by walking ``next IFD`` offsets: ``O(pages)``, at most ``cap``.

    An offset seen before (a loop) or past the end stops the walk; a file with no readable IFD counts 1.
    """
    order = "<" if data[:2] == b"II" else ">"
    big = _u16(data, 2, order) == 43
    count_fmt, next_fmt, entry = (order + "Q", order + "Q", 20) if big else (order + "H", order + "I", 12)
    count_size, next_size = struct.calcsize(count_fmt), struct.calcsize(next_fmt)
    offset = int(struct.unpack_from(next_fmt, data, 8 if big else 4)[0])
    seen: set[int] = set()
    pages = 0
    while offset and offset not in seen and pages < cap and offset + count_size <= len(data):
        seen.add(offset)
        pages += 1
        entries = int(struct.unpack_from(count_fmt, data, offset)[0])
        after = offset + count_size + entries * entry
        if after + next_size > len(data):
            break
        offset = int(struct.unpack_from(next_fmt, data, after)[0])
    return max(pages, 1)


# -- GIF -----------------------------------------------------------------------------------------


def _walk_gif(container: Container, name: str) -> None:
    container.frames = gif_frame_count(container.data)


def gif_frame_count(data: bytes, cap: int = MAX_PAGES) -> int:
    """Image descriptors of a GIF, walking its blocks (sub-blocks skipped by their length): at most ``cap``."""
    size = len(data)

    def skip_sub_blocks(pos: int) -> int:
        while pos < size:
            length = data[pos]
            pos += 1 + length
            if length == 0:
                break
        return pos

    flags = data[10]
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    frames = 0
    while pos < size and frames < cap:
        block = data[pos]
        if block == 0x21:  # extension: label, then sub-blocks
            pos = skip_sub_blocks(pos + 2)
        elif block == 0x2C:  # image descriptor (10 bytes), local colour table, LZW code size, data
            frames += 1
            local = data[pos + 9] if pos + 9 < size else 0
            pos += 10 + (3 << ((local & 7) + 1) if local & 0x80 else 0)
            pos = skip_sub_blocks(pos + 1)
        else:  # trailer (0x3B) or garbage
            break
    return max(frames, 1)


# -- EXIF ----------------------------------------------------------------------------------------


def exif_orientation(raw: bytes | None) -> int | None:
    """The EXIF orientation (1–8) from IFD0 of a TIFF-structured block, or ``None``.

    Reads the IFD0 entry count, then entries of 12 bytes until tag ``0x0112``; the value must be a
    SHORT (type 3) between 1 and 8. Nothing else is parsed, so the cost is ``O(entries)`` and a
    malformed block (wrong types, offsets past the end, garbage) gives ``None``, never an exception.
    """
    if not raw:
        return None
    try:
        if raw.startswith(EXIF_HEADER):
            raw = raw[len(EXIF_HEADER) :]
        order = {b"II": "<", b"MM": ">"}.get(raw[:2])
        if order is None or _u16(raw, 2, order) != 42:
            return None
        ifd = _u32(raw, 4, order)
        entries = _u16(raw, ifd, order)
        for index in range(min(entries, (len(raw) - ifd - 2) // 12)):
            at = ifd + 2 + 12 * index
            tag, kind, count = struct.unpack_from(order + "HHI", raw, at)
            if tag == ORIENTATION_TAG:
                value = _u16(raw, at + 8, order) if kind == 3 and count >= 1 else 0
                return value if 1 <= value <= 8 else None
    except (struct.error, IndexError, ValueError):
        return None
    return None


__all__ = [
    "MAX_EXIF_BYTES",
    "MAX_ICC_BYTES",
    "MAX_JPEG_SCANS",
    "MAX_METADATA_BYTES",
    "MAX_PAGES",
    "MAX_TEXT_BYTES",
    "MAX_XMP_BYTES",
    "Container",
    "exif_orientation",
    "gif_frame_count",
    "inflate_capped",
    "inspect_container",
    "tiff_page_count",
]
