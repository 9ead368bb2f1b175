"""Team rosters built from real photos (tests and ``benchmarks/team_roster.py``).

Each person is one distinct real face of :func:`headshot_lab.testing.photos.independent_faces`, cut from its photo
with head-and-shoulders room (the box grown by one face width each side, 0.9 face heights above and 1.8 below,
clipped to the photo) and resized to a shorter side of :data:`MIN_SIDE` px — a portrait as a phone would take it.
Nothing is committed: the photos come from the registry-package cache at run time.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from PIL import Image

from headshot_lab.testing.photos import IndependentFace, independent_faces, real_photo

MIN_SIDE = 560
SINGLE_FIRST = ("obama", "biden", "astronaut", "feat_single_face", "grace_hopper", "clm_", "feat_", "fer_", "zidane")


def ordered_faces() -> list[IndependentFace]:
    """Every independent face, those from one-person photos first (they make the cleanest portraits)."""
    faces = independent_faces()
    counts: dict[str, int] = {}
    for face in faces:
        counts[face.photo] = counts.get(face.photo, 0) + 1
    return sorted(faces, key=lambda f: (counts[f.photo] > 1, faces.index(f)))


def portrait(face: IndependentFace, target: Path, *, exif_gps: bool = False) -> Path:
    """Cut ``face`` from its photo as a head-and-shoulders portrait into ``target`` (JPEG)."""
    with Image.open(real_photo(face.photo)) as image:
        rgb = image.convert("RGB")
    left, top, right, bottom = face.box
    w, h = right - left, bottom - top
    box = (
        max(0, left - w),
        max(0, top - int(0.9 * h)),
        min(rgb.width, right + w),
        min(rgb.height, bottom + int(1.8 * h)),
    )
    crop = rgb.crop(box)
    scale = MIN_SIDE / min(crop.size)
    crop = crop.resize((round(crop.width * scale), round(crop.height * scale)), Image.Resampling.LANCZOS)
    target.parent.mkdir(parents=True, exist_ok=True)
    options: dict[str, object] = {"quality": 92}
    if exif_gps:
        exif = Image.Exif()
        exif[0x010F] = "PhoneMaker"  # Make
        gps = exif.get_ifd(0x8825)
        gps[1], gps[2] = "N", (52.0, 31.0, 12.0)
        options["exif"] = exif.tobytes()
    crop.save(target, "JPEG", **options)
    return target


def write_roster(
    folder: Path,
    faces: Sequence[IndependentFace],
    *,
    extra_rows: Sequence[dict[str, str]] = (),
    exif_gps: bool = False,
) -> Path:
    """A roster CSV in ``folder`` with one person per face (``pNN``, photos in ``photos/pNN/``), plus ``extra_rows``."""
    rows = []
    for index, face in enumerate(faces, start=1):
        person = f"p{index:02d}"
        portrait(face, folder / "photos" / person / f"{face.person}.jpg", exif_gps=exif_gps)
        rows.append(
            {
                "person_id": person,
                "name": face.person.replace("_", " ").title(),
                "role": "Staff",
                "photos": f"photos/{person}",
                "consent": "yes",
            }
        )
    rows += [dict(r) for r in extra_rows]
    path = folder / "roster.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["person_id", "name", "role", "photos", "consent", "backdrop"])
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in writer.fieldnames})
    return path


__all__ = ["MIN_SIDE", "ordered_faces", "portrait", "write_roster"]
