"""Files that pass every size cap yet take long to decode: for the fairness tests and the concurrency benchmark.

:func:`jpeg_scan_bomb` is a progressive JPEG whose last scan is repeated ``scans`` times: libjpeg processes every
scan over the whole coefficient buffer, so the decode time grows as ``scans × side²`` while the file stays small
(2048 px and 2,000 scans: about 48 KB and 5–10 s on one core). The loader may learn to refuse it early (counting
scans); the app's decode worker must stop it either way.
"""

from __future__ import annotations

import io
import struct

from PIL import Image

_EOI = 0xD9
_SOS = 0xDA


def _segments(data: bytes) -> list[tuple[int, int, int]]:
    """``(marker, start, end)`` of each JPEG segment after SOI; a scan's end includes its entropy-coded data."""
    index, found = 2, []
    while index < len(data):
        if data[index] != 0xFF:
            raise ValueError(f"not a JPEG marker at byte {index}")
        marker = data[index + 1]
        if marker == _EOI:
            found.append((marker, index, index + 2))
            break
        (length,) = struct.unpack(">H", data[index + 2 : index + 4])
        end = index + 2 + length
        if marker == _SOS:  # entropy-coded data up to the next marker that is neither stuffing nor a restart
            while True:
                end = data.index(b"\xff", end)
                follower = data[end + 1]
                if follower == 0 or 0xD0 <= follower <= 0xD7:
                    end += 2
                    continue
                break
        found.append((marker, index, end))
        index = end
    return found


def jpeg_scan_bomb(side: int = 2048, scans: int = 2000, *, grey: int = 128) -> bytes:
    """A ``side × side`` progressive greyscale JPEG with its last scan repeated ``scans`` more times."""
    buffer = io.BytesIO()
    Image.new("L", (side, side), grey).save(buffer, "JPEG", progressive=True, quality=50)
    data = buffer.getvalue()
    segments = _segments(data)
    last_scan = next(s for s in reversed(segments) if s[0] == _SOS)
    end_of_image = segments[-1][1]
    return data[:end_of_image] + data[last_scan[1] : last_scan[2]] * scans + data[end_of_image:]
