"""GPU benchmark input photos: the person's photos for training, the ControlNet selfie and the selection.

From ``--photos DIR`` (a folder of one person's photos), else the real test photos of one person that
:mod:`headshot_lab.testing.photos` caches (``obama``, ``obama2``, ``obama3``). A training set of ``count``
photos cycles through them (file content does not change the speed of a training step). Without any
photo (no folder, the cache empty and the registry unreachable, as on a GPU machine without a network),
plain grey-noise images stand in and the report says so: training then centre-crops, and the face
ControlNet map and the selection find no face, which are recorded as errors of those stages.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


@dataclass
class PersonPhotos:
    """The distinct photos of the person and where they came from."""

    distinct: list[Path]
    source: str
    notes: list[str] = field(default_factory=list)

    def training_set(self, count: int) -> list[Path]:
        """``count`` photos, cycling through the distinct ones."""
        return list(itertools.islice(itertools.cycle(self.distinct), count))

    def to_dict(self, count: int) -> dict[str, object]:
        return {"count": count, "distinct": len(self.distinct), "source": self.source, "notes": list(self.notes)}


def person_photos(folder: str | Path | None, workdir: Path) -> PersonPhotos:
    """The person's photos (see the module docstring)."""
    if folder is not None:
        files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if files:
            return PersonPhotos(files, f"--photos {folder}")
        return _stand_ins(workdir, f"{folder} holds no JPEG/PNG/WebP photos")
    from headshot_lab.testing.photos import SAME_PERSON, PhotoSourceUnavailable, real_photos

    try:
        return PersonPhotos(list(real_photos(SAME_PERSON).values()), "headshot_lab.testing.photos (one person)")
    except (PhotoSourceUnavailable, OSError) as exc:
        return _stand_ins(workdir, f"real test photos unavailable ({exc})")


def _stand_ins(workdir: Path, why: str, count: int = 3, side: int = 768) -> PersonPhotos:
    import numpy as np
    from PIL import Image

    folder = workdir / "stand-in-photos"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        pixels = np.clip(128 + 40 * rng.standard_normal((side, side, 3)), 0, 255).astype(np.uint8)
        path = folder / f"stand-in-{index}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return PersonPhotos(paths, "grey-noise stand-ins", [f"{why}: no face in any input photo"])
