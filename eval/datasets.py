"""Audit datasets: where the source photos come from.

A dataset is named by a *spec*:

==========================  ==================================================================
spec                        what it is
==========================  ==================================================================
``offline``                 the real photos of :mod:`headshot_lab.testing.photos` (one person in
                            four photos, five other people, the six faces of the group photo),
                            widened by **synthetic** tone variants (see :class:`OfflineDataset`).
                            Needs no network once the photos are cached.
``imagefolder:PATH``        image files under ``PATH`` (recursive), with an optional
                            ``metadata.csv`` (``file_name``, ``identity``, ``group`` and any other
                            label columns).
``nlphuji/utk_faces``       UTKFace from its files (a script dataset: :class:`UTKFaceDataset`).
``hf:ID`` or ``ID``         a Hugging Face Hub dataset (``HuggingFaceM4/FairFace``,
                            ``logasja/lfw``, ``flwrlabs/celeba`` …),
                            read with ``datasets.load_dataset(ID, streaming=True)``; images are
                            decoded by :func:`headshot_lab.io.load_photo` (so broken images are
                            counted, not fatal).
==========================  ==================================================================

Every dataset yields :class:`Sample` objects in a stable order. ``iterate(shard=(i, n), limit=k)``
keeps the samples whose *shard key* (the identity when known, else the sample id) hashes to ``i``
modulo ``n`` — so all photos of one person land in the same shard and each shard can compute the
person's reference centroid on its own — and stops after ``k`` of them. Filtering happens before
decoding.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from headshot_lab.errors import HeadshotLabError
from headshot_lab.io import IMAGE_SUFFIXES

#: ITA° at the centre of each ITA group (I … VI), the targets of the synthetic tone variants.
GROUP_TARGET_ITA: dict[int, float] = {1: 62.0, 2: 48.0, 3: 34.5, 4: 19.0, 5: -10.0, 6: -45.0}

#: The real photos of the offline set: ``name → identity`` (the group photo is expanded into its faces).
OFFLINE_PHOTOS: dict[str, str] = {
    "obama": "obama",
    "obama2": "obama",
    "obama3": "obama",
    "obama_partial": "obama",
    "biden": "biden",
    "tom_hanks": "tom_hanks",
    "astronaut": "astronaut",
    "group": "group",
}


class DatasetUnavailableError(HeadshotLabError):
    """A dataset could not be opened (offline, unknown id, missing folder)."""

    code = "dataset_unavailable"
    fix = (
        "Work offline with a local folder (--dataset imagefolder:PATH, with an optional metadata.csv: "
        "file_name, identity, group) or with the bundled set (--config eval/configs/offline.yaml)."
    )


@dataclass
class Sample:
    """One source photo.

    Attributes:
        id: unique, file-name-like id (``folder:PATH`` generators match outputs by it).
        image: ``(H, W, 3)`` ``uint8`` RGB, or ``None`` when it could not be read (see ``error``).
        identity: the person (``None`` when the dataset does not say: each photo is then its own person).
        labels: dataset labels (``{"race": "Black", "gender": "Female"}``), strings.
        meta: provenance (``synthetic``, ``tone_offset``, ``base`` …).
        face_hint: ``{"box": [l, t, r, b], "landmarks": [[x, y] × 68]}`` when the dataset already
            located the face (the offline set's synthetic variants share their base photo's geometry).
        error: ``{"code", "message", "fix"}`` when the image could not be used.
    """

    id: str
    image: np.ndarray | None
    identity: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    face_hint: dict[str, Any] | None = None
    error: dict[str, str] | None = None

    @property
    def person(self) -> str:
        """The identity, or the id for photos of unknown people (each its own person)."""
        return self.identity or f"id:{self.id}"


def shard_of(key: str, count: int) -> int:
    """Stable shard index ``int(md5(key)[:8], 16) mod count`` (independent of order and process)."""
    return int(hashlib.md5(key.encode("utf-8")).hexdigest()[:8], 16) % int(count)


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"I/N"`` → ``(I, N)`` with ``0 ≤ I < N``; ``None`` passes through."""
    if text in (None, ""):
        return None
    try:
        index, count = (int(part) for part in str(text).split("/"))
    except ValueError:
        raise HeadshotLabError(f"--shard must look like I/N (e.g. 0/4), got {text!r}.", code="bad_option") from None
    if count < 1 or not 0 <= index < count:
        raise HeadshotLabError(f"--shard {text}: need 0 ≤ I < N.", code="bad_option")
    return index, count


class AuditDataset:
    """Base class: subclasses implement :meth:`_candidates` (cheap records) and :meth:`_load` (decode)."""

    spec: str = ""
    description: str = ""
    notes: tuple[str, ...] = ()

    def _candidates(self) -> Iterator[tuple[str, str | None, Any]]:  # pragma: no cover - abstract
        """``(id, identity, opaque record)`` in a stable order, without decoding images."""
        raise NotImplementedError

    def _load(self, sample_id: str, identity: str | None, record: Any) -> Sample:  # pragma: no cover - abstract
        raise NotImplementedError

    def entries(
        self, *, shard: tuple[int, int] | None = None, limit: int | None = None
    ) -> Iterator[tuple[str, str | None, Any]]:
        """The undecoded ``(id, identity, record)`` of shard ``(i, n)`` (all when ``None``), at most ``limit``.

        :meth:`load` turns one into a :class:`Sample`; :meth:`iterate` is the two together. A distributed run
        sends the entries to its workers and decodes there (with :meth:`worker_view`).
        """
        count = 0
        for sample_id, identity, record in self._candidates():
            if limit is not None and count >= limit:
                return
            if shard is not None and shard_of(identity or f"id:{sample_id}", shard[1]) != shard[0]:
                continue
            count += 1
            yield sample_id, identity, record

    def load(self, entry: tuple[str, str | None, Any]) -> Sample:
        """Decode one entry of :meth:`entries` (a broken image gives a :class:`Sample` with ``error``)."""
        return self._load(*entry)

    def worker_view(self) -> AuditDataset:
        """A light, picklable copy that can :meth:`load` entries in another process (no stream, no cache)."""
        return self

    def iterate(self, *, shard: tuple[int, int] | None = None, limit: int | None = None) -> Iterator[Sample]:
        """The samples of shard ``(i, n)`` (all when ``None``), at most ``limit`` of them."""
        for entry in self.entries(shard=shard, limit=limit):
            yield self.load(entry)

    def __iter__(self) -> Iterator[Sample]:
        return self.iterate()


def _error_sample(sample_id: str, identity: str | None, labels: dict[str, str], exc: HeadshotLabError) -> Sample:
    return Sample(id=sample_id, image=None, identity=identity, labels=labels, error=exc.to_dict())


def _decode(source: Any, name: str) -> np.ndarray:
    from headshot_lab.io import load_rgb

    return load_rgb(source, name=name, min_side=0)


# --------------------------------------------------------------------------------------------
# imagefolder:PATH
# --------------------------------------------------------------------------------------------


class ImageFolderDataset(AuditDataset):
    """Images under a folder; labels from ``metadata.csv`` (``file_name`` relative to the folder).

    Columns: ``file_name`` (required), ``identity`` (the person), ``group`` (a label to group by) and
    any others (kept as labels). Without a metadata file every image is its own person.
    """

    def __init__(self, path: str | Path) -> None:
        self.root = Path(path).expanduser()
        if not self.root.is_dir():
            raise DatasetUnavailableError(f"imagefolder:{path}: no such folder.")
        self.spec = f"imagefolder:{self.root}"
        self.description = f"images under {self.root}"
        self.metadata = self._read_metadata()

    def _read_metadata(self) -> dict[str, dict[str, str]]:
        file = self.root / "metadata.csv"
        if not file.is_file():
            return {}
        with file.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            if "file_name" not in (reader.fieldnames or []):
                raise HeadshotLabError(
                    f"{file}: the first row must name the columns, including file_name.", code="bad_metadata"
                )
            return {row["file_name"].strip(): {k: (v or "").strip() for k, v in row.items() if k} for row in reader}

    def _candidates(self) -> Iterator[tuple[str, str | None, Any]]:
        files = sorted(
            p
            for p in self.root.rglob("*")
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
        )
        for path in files:
            relative = path.relative_to(self.root).as_posix()
            row = self.metadata.get(relative) or self.metadata.get(path.name) or {}
            yield relative, row.get("identity") or None, (path, row)

    def _load(self, sample_id: str, identity: str | None, record: Any) -> Sample:
        path, row = record
        labels = {k: v for k, v in row.items() if k not in {"file_name", "identity"} and v != ""}
        try:
            image = _decode(path, sample_id)
        except HeadshotLabError as exc:
            return _error_sample(sample_id, identity, labels, exc)
        return Sample(id=sample_id, image=image, identity=identity, labels=labels, meta={"file": str(path)})


# --------------------------------------------------------------------------------------------
# Hub datasets
# --------------------------------------------------------------------------------------------


def _offline_mode() -> bool:
    return any(
        os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}
        for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


class HubDataset(AuditDataset):
    """A Hub dataset streamed with ``datasets.load_dataset(..., streaming=True)``.

    Args:
        dataset_id: the Hub id.
        name: the configuration (``"1.25"`` for FairFace with 125 % margin …).
        split: the split (default ``"train"``).
        image_column: the image column (default: the first ``Image`` feature).
        identity_column: the column naming the person (LFW, CelebA), if any.
        label_columns: columns kept as labels (class-label integers become their names).
        revision: a branch or commit (e.g. ``"refs/convert/parquet"`` for script-based repos).
    """

    def __init__(
        self,
        dataset_id: str,
        *,
        name: str | None = None,
        split: str = "train",
        image_column: str | None = None,
        identity_column: str | None = None,
        label_columns: Sequence[str] = (),
        revision: str | None = None,
        data_files: Any = None,
    ) -> None:
        self.dataset_id = dataset_id
        self.spec = f"hf:{dataset_id}"
        self.description = f"{dataset_id} ({name or 'default'}, {split}) from the Hugging Face Hub"
        self.name, self.split, self.revision, self.data_files = name, split, revision, data_files
        self.identity_column = identity_column
        self.label_columns = list(label_columns)
        self._stream = self._open()
        features = getattr(self._stream, "features", None) or {}
        self.image_column = image_column or self._find_image_column(features)
        self.missing_columns = [
            c for c in [*self.label_columns, identity_column] if c and features and c not in features
        ]
        self._names = {
            column: list(getattr(features.get(column), "names", None) or [])
            for column in [*self.label_columns, identity_column]
            if column and features and column in features
        }
        if features and self.image_column in features:
            from datasets import Image as ImageFeature

            self._stream = self._stream.cast_column(self.image_column, ImageFeature(decode=False))
        if self.missing_columns:
            self.notes = (f"columns not in {dataset_id}: {', '.join(self.missing_columns)} (ignored)",)

    def _open(self) -> Any:
        try:
            import datasets
        except ImportError:  # pragma: no cover - depends on the install
            raise DatasetUnavailableError("Hub datasets need the 'datasets' package (pip install datasets).") from None
        try:
            return datasets.load_dataset(
                self.dataset_id,
                name=self.name,
                split=self.split,
                streaming=True,
                revision=self.revision,
                data_files=self.data_files,
            )
        except Exception as exc:  # ConnectionError, FileNotFoundError, DatasetNotFoundError …: all "cannot reach"
            reason = (
                "the Hub is switched off (HF_HUB_OFFLINE=1)"
                if _offline_mode()
                else f"{type(exc).__name__}: {str(exc)[:160]}"
            )
            raise DatasetUnavailableError(f"The dataset {self.dataset_id!r} cannot be reached ({reason}).") from None

    @staticmethod
    def _find_image_column(features: Mapping[str, Any]) -> str:
        for column, feature in features.items():
            if type(feature).__name__ == "Image":
                return column
        return "image"

    def _label(self, column: str, value: Any) -> str:
        names = self._names.get(column) or []
        if isinstance(value, int | np.integer) and 0 <= int(value) < len(names):
            return str(names[int(value)])
        return str(value)

    def _candidates(self) -> Iterator[tuple[str, str | None, Any]]:
        try:
            for index, row in enumerate(self._stream):
                identity = None
                if self.identity_column and row.get(self.identity_column) is not None:
                    identity = self._label(self.identity_column, row[self.identity_column])
                image = row.get(self.image_column) or {}
                path = image.get("path") if isinstance(image, dict) else None
                sample_id = f"{index:07d}_{Path(path).name}" if path else f"{index:07d}.png"
                yield sample_id, identity, row
        except DatasetUnavailableError:
            raise
        except (ConnectionError, OSError) as exc:
            raise DatasetUnavailableError(f"Streaming {self.dataset_id!r} failed ({exc}).") from None

    def worker_view(self) -> AuditDataset:
        view = copy.copy(self)
        view._stream = None  # the rows travel with the entries; labels need only the names
        return view

    def _load(self, sample_id: str, identity: str | None, record: Any) -> Sample:
        labels = {c: self._label(c, record[c]) for c in self.label_columns if c in record and record[c] is not None}
        image = record.get(self.image_column)
        data = image.get("bytes") if isinstance(image, dict) else None
        if data is None and isinstance(image, dict) and image.get("path"):
            data = Path(image["path"])
        try:
            if hasattr(image, "convert"):  # already decoded by `datasets` (no features to switch decoding off)
                from headshot_lab.io import as_rgb_array

                pixels = as_rgb_array(image)
            elif data is None:
                raise HeadshotLabError(f"{sample_id}: the row has no image.", code="no_image")
            else:
                pixels = _decode(data, sample_id)
        except HeadshotLabError as exc:
            return _error_sample(sample_id, identity, labels, exc)
        return Sample(id=sample_id, image=pixels, identity=identity, labels=labels, meta={"dataset": self.dataset_id})


# --------------------------------------------------------------------------------------------
# UTKFace (a script dataset on the Hub: its files, not `datasets.load_dataset`)
# --------------------------------------------------------------------------------------------

UTK_REPO = "nlphuji/utk_faces"
UTK_METADATA = "utk_dataset_metadata.csv"
UTK_ARCHIVE = "utk_faces_images.zip"
UTK_IMAGE_FOLDER = "utk_faces_images"


class UTKFaceDataset(ImageFolderDataset):
    """``nlphuji/utk_faces`` from its published files, as an image folder.

    The repo holds a loading script (``utk_faces.py``), which ``datasets`` ≥ 4 refuses to run, beside the data it
    reads: ``utk_dataset_metadata.csv`` (``image_name``, ``age`` and the other labels) and ``utk_faces_images.zip``
    (``utk_faces_images/<image_name>.chip.jpg``). Both are fetched with ``huggingface_hub.hf_hub_download``
    (cached; ``HF_HUB_OFFLINE=1`` uses the cache only), the archive is extracted once (member paths checked),
    and a ``metadata.csv`` in the image-folder layout (``file_name`` + every label column) is written next to it.
    UTKFace names no person, so each photo is its own identity.
    """

    def __init__(
        self,
        repo: str = UTK_REPO,
        *,
        revision: str | None = None,
        cache_dir: str | Path | None = None,
        label_columns: Sequence[str] = (),
        split: str | None = None,
    ) -> None:
        folder = self._fetch(repo, revision, cache_dir)
        super().__init__(folder)
        self.spec = f"hf:{repo}"
        self.description = f"{repo} (UTKFace: its metadata CSV and image archive) from the Hugging Face Hub"
        present = set(next(iter(self.metadata.values()), {}))
        missing = [c for c in label_columns if c not in present]
        notes = [f"columns not in {repo}: {', '.join(missing)} (ignored)"] if missing else []
        if split not in (None, "train", "test"):
            notes.append(f"{repo} has one split; split={split!r} ignored")
        if notes:
            self.notes = tuple(notes)

    @staticmethod
    def _fetch(repo: str, revision: str | None, cache_dir: str | Path | None) -> Path:
        import zipfile

        try:
            from huggingface_hub import hf_hub_download

            kwargs: dict[str, Any] = {"repo_type": "dataset", "revision": revision, "local_files_only": _offline_mode()}
            metadata = Path(hf_hub_download(repo, UTK_METADATA, **kwargs))
            archive = Path(hf_hub_download(repo, UTK_ARCHIVE, **kwargs))
        except Exception as exc:  # offline and not cached, no network, a missing file …
            reason = "the Hub is switched off (HF_HUB_OFFLINE=1) and it is not cached" if _offline_mode() else exc
            raise DatasetUnavailableError(f"The dataset {repo!r} cannot be reached ({reason}).") from None
        root = Path(cache_dir) if cache_dir else archive.parent / "headshot-lab-imagefolder"
        done = root / ".complete"
        stamp = f"{archive.stat().st_size}:{archive.stat().st_mtime_ns}"
        if not (done.is_file() and done.read_text(encoding="utf-8") == stamp):
            root.mkdir(parents=True, exist_ok=True)
            with zipfile.ZipFile(archive) as zipped:
                for item in zipped.infolist():
                    relative = Path(item.filename)
                    if item.is_dir() or relative.is_absolute() or ".." in relative.parts:
                        continue
                    if relative.parts and relative.parts[0] == UTK_IMAGE_FOLDER:
                        relative = Path(*relative.parts[1:])
                    target = root / relative
                    target.parent.mkdir(parents=True, exist_ok=True)
                    with zipped.open(item) as source, target.open("wb") as sink:
                        sink.write(source.read())
            _write_utk_metadata(metadata, root)
            done.write_text(stamp, encoding="utf-8")
        return root


def _write_utk_metadata(source: Path, root: Path) -> None:
    """UTKFace's CSV (``image_name`` …) → the image folder's ``metadata.csv`` (``file_name`` = the ``.chip.jpg``)."""
    with source.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    columns = [c for c in (rows[0] if rows else {}) if c and c not in {"image_name", "Unnamed: 0", ""}]
    with (root / "metadata.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["file_name", *columns], extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            name = str(row.get("image_name") or "").strip()
            if name:
                file_name = name if name.lower().endswith(tuple(IMAGE_SUFFIXES)) else f"{name}.chip.jpg"
                writer.writerow({"file_name": file_name, **{c: row.get(c, "") for c in columns}})


# --------------------------------------------------------------------------------------------
# The offline set
# --------------------------------------------------------------------------------------------


def _resize_max(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    import cv2

    scale = max_side / float(max(image.shape[:2]))
    if scale >= 1.0:
        return image, 1.0
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


class OfflineDataset(AuditDataset):
    """The bundled real photos, framed as headshots, plus **synthetic** tone variants.

    1. Each real photo is located with the audit backend (dlib); each face is cropped to a square of
       ``frame × face width`` around it (head and shoulders) and downscaled so its side is at most
       ``max_side``. The group photo gives six faces (six people). ``tom_hanks`` is a black-and-white
       photo: its skin tone cannot be measured (it stays in the set for identity, and is counted as
       such).
    2. For each real face whose tone can be measured, ``variants_per_face`` synthetic variants are made
       with :func:`headshot_lab.skin.shift_ita`: the skin is rotated to the ITA° centre of another ITA
       group (:data:`GROUP_TARGET_ITA`), cycling through the groups so every group I–VI has members.
       **These are synthetic** (label ``source=synthetic``, ``tone_offset`` in ``meta``): they widen the
       tone range the metrics are exercised on; they are not photos of people with those skin tones.
       A variant keeps its base photo's face geometry (``face_hint``) since no pixel moved.

    Args:
        faces: restrict to these real faces (``obama``, …, ``group_0`` … ``group_5``).
        people: ``"bundled"`` (the photos above) or ``"independent"``: one face of each of the 58 distinct
            people of :func:`headshot_lab.testing.photos.independent_faces` (the calibration set).
        variants_per_face: 0 … 5 synthetic variants per real face.
        max_side: longest side of each framed face.
        frame: crop side in face widths.
    """

    spec = "offline"
    notes = (
        "The offline set is 13 real photos of 10 people from registry packages (headshot_lab.testing.photos) "
        "plus synthetic tone variants (headshot_lab.skin.shift_ita to each ITA group's centre); the variants "
        "are synthetic and only widen the tone range the metrics are tested on.",
    )

    def __init__(
        self,
        *,
        faces: Sequence[str] | None = None,
        people: str = "bundled",
        variants_per_face: int = 5,
        max_side: int = 384,
        frame: float = 2.4,
    ) -> None:
        if not 0 <= int(variants_per_face) <= 5:
            raise HeadshotLabError("variants_per_face must be between 0 and 5.", code="bad_option")
        if people not in ("bundled", "independent"):
            raise HeadshotLabError("people must be 'bundled' or 'independent'.", code="bad_option")
        self.faces = list(faces) if faces else None
        self.people = people
        self.variants_per_face = int(variants_per_face)
        self.max_side = int(max_side)
        self.frame = float(frame)
        self.description = f"offline registry photos + {self.variants_per_face} synthetic tone variants per face"
        self._built: list[Sample] | None = None

    # -- building --------------------------------------------------------------------------

    def _frame_face(self, image: np.ndarray, face: Any) -> tuple[np.ndarray, dict[str, Any]]:
        left, top, right, bottom = face.box
        side = self.frame * max(right - left, bottom - top)
        cx, cy = (left + right) / 2.0, (top + bottom) / 2.0 + 0.1 * (bottom - top)
        x0, y0 = max(round(cx - side / 2), 0), max(round(cy - side / 2), 0)
        x1, y1 = min(round(cx + side / 2), image.shape[1]), min(round(cy + side / 2), image.shape[0])
        crop, scale = _resize_max(np.ascontiguousarray(image[y0:y1, x0:x1]), self.max_side)
        offset = np.array([x0, y0], dtype=np.float64)
        landmarks = (np.asarray(face.landmarks, dtype=np.float64) - offset) * scale
        box = [(left - x0) * scale, (top - y0) * scale, (right - x0) * scale, (bottom - y0) * scale]
        hint = {"box": [round(v) for v in box], "landmarks": landmarks.round(2).tolist()}
        return crop, hint

    def _real_faces(self) -> Iterator[tuple[str, str, np.ndarray, dict[str, Any]]]:
        from headshot_lab.faces import get_backend
        from headshot_lab.io import load_rgb
        from headshot_lab.testing.photos import PhotoSourceUnavailable, real_photo

        backend = get_backend("dlib")
        if self.people == "independent":
            yield from self._independent_faces(backend)
            return
        for name, identity in OFFLINE_PHOTOS.items():
            if self.faces and not any(f == name or (name == "group" and f.startswith("group_")) for f in self.faces):
                continue
            try:
                image = load_rgb(real_photo(name), min_side=0)
            except PhotoSourceUnavailable as exc:
                raise DatasetUnavailableError(f"The offline photos are not available: {exc}") from None
            detect_image, _ = _resize_max(image, 1280)
            faces = backend.detect(detect_image)
            # the group photo gives every face, in a stable left-to-right order; other photos their largest face
            faces = sorted(faces, key=lambda f: (f.box[0], f.box[1])) if name == "group" else faces[:1]
            for index, face in enumerate(faces):
                face_id = f"group_{index}" if name == "group" else name
                person = face_id if name == "group" else identity
                if self.faces and face_id not in self.faces:
                    continue
                yield face_id, person, *self._frame_face(detect_image, face)

    def _independent_faces(self, backend: Any) -> Iterator[tuple[str, str, np.ndarray, dict[str, Any]]]:
        """One face per distinct person: the detection with the largest IoU (≥ 0.3) with the listed box."""
        from headshot_lab.faces.detect import box_iou
        from headshot_lab.io import load_rgb
        from headshot_lab.testing.photos import PhotoSourceUnavailable, independent_faces, real_photo

        by_photo: dict[str, list[Any]] = {}
        for entry in independent_faces():
            if not self.faces or entry.person in self.faces:
                by_photo.setdefault(entry.photo, []).append(entry)
        for photo, entries in by_photo.items():
            try:
                image = load_rgb(real_photo(photo), min_side=0)
            except PhotoSourceUnavailable as exc:
                raise DatasetUnavailableError(f"The calibration photos are not available: {exc}") from None
            detect_image, scale = _resize_max(image, 1280)
            faces = backend.detect(detect_image)
            for entry in entries:
                listed = tuple(v * scale for v in entry.box)
                best = max(faces, key=lambda f: box_iou(f.box, listed), default=None)
                if best is not None and box_iou(best.box, listed) >= 0.3:
                    yield entry.person, entry.person, *self._frame_face(detect_image, best)

    def _variants(self, base: Sample, order: int) -> list[Sample]:
        from headshot_lab.errors import HeadshotLabError as _Error
        from headshot_lab.faces.mesh import face_mesh
        from headshot_lab.skin import measure_skin, shift_ita, skin_mask

        if self.variants_per_face == 0 or base.image is None:
            return []
        meshes = face_mesh(base.image, max_faces=1)
        if not meshes:
            return []
        try:
            tone = measure_skin(base.image, skin_mask(base.image, meshes[0]))
        except _Error:
            return []  # no measurable colour (e.g. a black-and-white photo): no tone variants
        import cv2

        geometry = skin_mask(base.image, meshes[0], exclude_extremes=False).astype(np.float32)
        weights = np.clip(cv2.GaussianBlur(geometry, (0, 0), 2.0) * 1.5, 0.0, 1.0)
        others = [g for g in GROUP_TARGET_ITA if g != tone.ita_group]
        start = order % len(others)
        chosen = [others[(start + k) % len(others)] for k in range(min(self.variants_per_face, len(others)))]
        variants = []
        for group in sorted(chosen):
            offset = GROUP_TARGET_ITA[group] - tone.ita
            stem = base.id.rsplit(".", 1)[0]
            variants.append(
                Sample(
                    id=f"{stem}__ita{GROUP_TARGET_ITA[group]:+.0f}.png",
                    image=shift_ita(base.image, weights, offset),
                    identity=base.identity,
                    labels={"source": "synthetic"},
                    meta={"synthetic": True, "base": base.id, "tone_offset": round(offset, 2), "target_group": group},
                    face_hint=base.face_hint,
                )
            )
        return variants

    def build(self) -> list[Sample]:
        """All samples (built once, then cached on the object)."""
        if self._built is None:
            samples: list[Sample] = []
            for order, (face_id, person, image, hint) in enumerate(self._real_faces()):
                base = Sample(
                    id=f"{face_id}.png",
                    image=image,
                    identity=person,
                    labels={"source": "real"},
                    meta={"synthetic": False},
                    face_hint=hint,
                )
                samples.append(base)
                samples.extend(self._variants(base, order))
            if not samples:
                raise DatasetUnavailableError("The offline set is empty (no face was found or none was selected).")
            self._built = samples
        return self._built

    def _candidates(self) -> Iterator[tuple[str, str | None, Any]]:
        for sample in self.build():
            yield sample.id, sample.identity, sample

    def worker_view(self) -> AuditDataset:
        view = copy.copy(self)
        view._built = None  # each entry carries its sample
        return view

    def _load(self, sample_id: str, identity: str | None, record: Any) -> Sample:
        return record


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def open_dataset(spec: str, options: Mapping[str, Any] | None = None) -> AuditDataset:
    """Open the dataset named by ``spec`` (table in the module docstring) with ``options``.

    Raises:
        DatasetUnavailableError: the dataset cannot be reached; the message names the offline alternatives.
    """
    options = dict(options or {})
    spec = str(spec).strip()
    if spec == "offline":
        return OfflineDataset(**options)
    if spec.startswith("imagefolder:"):
        return ImageFolderDataset(spec.split(":", 1)[1])
    if spec.removeprefix("hf:") == UTK_REPO:
        if options.get("revision") == "refs/convert/parquet":  # older configs: no parquet mirror is needed
            options.pop("revision")
        return UTKFaceDataset(UTK_REPO, **options)
    if spec.startswith("hf:"):
        return HubDataset(spec[3:], **options)
    if "/" in spec and not Path(spec).exists():
        return HubDataset(spec, **options)
    if Path(spec).is_dir():
        return ImageFolderDataset(spec)
    raise DatasetUnavailableError(
        f"Unknown dataset {spec!r}: use 'offline', 'imagefolder:PATH' or a Hub id such as 'HuggingFaceM4/FairFace'."
    )
