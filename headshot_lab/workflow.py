"""The service layer: one function per user action, under both the app and the command line.

``headshot_lab.ui`` (the Gradio app's :class:`~headshot_lab.ui.AppBackend`) and ``headshot_lab.cli`` (the
``headshot-lab`` commands) call these functions and only *format* what they return; every rule about what is
allowed, what is written and how it is labelled lives here, so the app and the command line behave the same.
Each function takes plain typed arguments (paths, names, numbers, small dataclasses) and returns a dataclass with
``to_dict()``; a refusal is a :class:`~headshot_lab.errors.HeadshotLabError` with a message and a fix.

======================  ==========================================  ================================================
user action             function                                    policy it owns
======================  ==========================================  ================================================
check photos            :func:`admit_photos`, :func:`check_photos`  consent first; 1–20 photos; copy-in problems
                                                                    join the checklist's report
train identity          :func:`train_identity`                      learn only from the usable photos: with
                                                                    ``check=``, the majority identity (those left
                                                                    out named in ``notes``), no majority → refused
FaceID identity         :func:`faceid_identity`                     the L2-normalised mean ArcFace embedding
generate                :func:`generate_headshots`                  checks before loading; every file labelled
                                                                    IPTC ``trainedAlgorithmicMedia`` where written
studio retouch          :func:`retouch_photos`                      every file labelled
                                                                    ``compositeWithTrainedAlgorithmicMedia``; with
                                                                    ``check=``, only the usable photos
select                  :func:`select_headshots`                    judged against the person's own photos
export (single / team)  :func:`export_single`, :func:`export_team`  known crops and formats; one style guide per
                                                                    kind in team mode; disclosure read back
audit batch             :func:`audit_batch`                         the audit card of a batch vs the person
delete session          :func:`delete_session`                      the folder *and* its published copies
purge                   :func:`purge_expired`                       expired sessions, their published copies and
                                                                    orphaned copies
======================  ==========================================  ================================================

Layers: UI and CLI → this module → the pipeline (train, generate, retouch, select, export), the audit and the
base (privacy, provenance). Nothing here imports ``headshot_lab.ui`` or ``headshot_lab.cli`` (the audit's one
temporary exception is marked ``TODO(coordinator)``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from headshot_lab import capture as capturing
from headshot_lab import export as exporting
from headshot_lab import faces, models
from headshot_lab import io as image_io
from headshot_lab import retouch as retouching
from headshot_lab import select as selecting
from headshot_lab import train as training
from headshot_lab.atomic import atomic_write
from headshot_lab.config import get_settings
from headshot_lab.errors import HeadshotLabError
from headshot_lab.generate import (
    FACEID_REPO,
    GENERATED_KIND,
    LCM_LORAS,
    ControlOptions,
    FaceIDOptions,
    HeadshotGenerator,
    Identity,
    SpeedOptions,
)
from headshot_lab.identity_engines import ENGINE_NAMES, TUNING_FREE, check_engine, get_engine
from headshot_lab.instantid import InstantIDOptions
from headshot_lab.privacy import DeletionRecord, SessionStore, validate_session_id
from headshot_lab.provenance import (
    digital_source_type,
    read_provenance,
    save_with_provenance,
    source_type_term,
    strongest_source_type,
)
from headshot_lab.reporting import Progress, report_progress
from headshot_lab.styles import load_style
from headshot_lab.train import TrainConfig
from headshot_lab.upscale import UpscaleOptions

if TYPE_CHECKING:
    from headshot_lab.audit.batch import BatchAudit
    from headshot_lab.select import ReferenceProfile, Selection


MIN_PHOTOS = 1
MAX_PHOTOS = 20
MAX_PICKS = 15
"""The most headshots a person keeps or exports in one go in the app."""
MAX_IMAGES_PER_RUN = 8
"""The most images the app generates per click (a shared GPU); the command line has no limit."""
IDENTITY_MODES = ENGINE_NAMES
"""How a likeness is learned: the identity engines (:data:`headshot_lab.identity_engines.ENGINES`)."""
POSE_CHOICES = ("none", "face", "pose", "depth", "canny")
FORMATS = exporting.FORMAT_CHOICES
RETOUCHED_KIND = "retouched"
PUBLISHED_DIR = "published"
FACEID_EMBEDDING_NAME = "faceid_embedding.npy"
ZIP_NAME = "headshots.zip"
ORPHAN_MIN_AGE_S = 60.0
"""Published copies younger than this are never treated as orphans (a request may be writing them)."""


def _error_dict(exc: HeadshotLabError) -> dict[str, str]:
    return exc.to_dict()


# ================================================================================== 1. check photos
def admit_photos(count: int, *, consent: bool) -> None:
    """Policy before anything is kept: consent is given, and 1–20 photos were handed over.

    Raises:
        HeadshotLabError: ``consent_required`` (nothing may be processed or kept), ``photo_count``.
    """
    if not consent:
        raise HeadshotLabError(
            "Please tick the consent box first.",
            fix="Your photos are only processed after you agree; unticked, nothing is kept.",
            code="consent_required",
        )
    if not MIN_PHOTOS <= count <= MAX_PHOTOS:
        raise HeadshotLabError(
            f"Upload {MIN_PHOTOS}–{MAX_PHOTOS} photos of yourself (you uploaded {count}).",
            fix="15–20 varied, sharp, well-lit photos give the best likeness; 1 is enough for studio retouch.",
            code="photo_count",
        )


@dataclass
class PhotoCheck:
    """The capture checklist's report (``CaptureReport.to_dict()``) with the copy-in problems merged in."""

    report: dict[str, Any]

    def photo(self, name: str) -> dict[str, Any]:
        """The report of one photo (``{}`` when it is not in the report)."""
        return next((p for p in self.report.get("photos", []) if p.get("path") == name), {})

    def usable(self, name: str) -> bool:
        """Policy: a photo is learned from (and retouched) only when the checklist found no blocking problem in it.

        Advisories (a bit soft, small, a colour cast, no colour, eyes closed …) never make a photo unusable; a
        photo of someone other than the set's majority identity, or of a set with no majority, is unusable.
        """
        return bool(self.photo(name).get("ok"))

    def usable_names(self) -> list[str]:
        """The photos every later step uses (training, retouch, the selection's references), in upload order."""
        return [p["path"] for p in self.report.get("photos", []) if p.get("ok")]

    def left_out(self) -> dict[str, str]:
        """``{name: why}`` for every photo that is left out, in plain words (its first blocking problem)."""
        out = {}
        for photo in self.report.get("photos", []):
            if photo.get("ok"):
                continue
            blocking = [p for p in photo.get("problems", []) if p.get("severity", "error") == "error"]
            out[photo["path"]] = blocking[0]["message"] if blocking else "It did not pass the checklist."
        return out

    def require_usable(self) -> list[str]:
        """The usable photo names; raises when the set as a whole is blocked or nothing is usable.

        Raises:
            HeadshotLabError: ``different_person`` (no majority identity), ``no_colour``, ``no_photos``.
        """
        set_errors = [p for p in self.report.get("set", {}).get("problems", []) if p.get("severity") == "error"]
        for code in ("different_person", "no_colour"):
            problem = next((p for p in set_errors if p.get("code") == code), None)
            if problem is not None:
                raise HeadshotLabError(problem["message"], fix=problem.get("fix", ""), code=code)
        names = self.usable_names()
        if not names:
            reasons = "\n".join(f"- {Path(name).name}: {why}" for name, why in self.left_out().items())
            raise HeadshotLabError(
                "None of your photos can be used yet." + (f"\n{reasons}" if reasons else ""),
                fix="Fix the problems listed under each photo and check again.",
                code="no_photos",
            )
        return names

    def to_dict(self) -> dict[str, Any]:
        return self.report


def check_photos(
    sources: Mapping[str, Any],
    *,
    unreadable: Mapping[str, Mapping[str, str]] | None = None,
    notes: Mapping[str, Sequence[Mapping[str, str]]] | None = None,
    on_photo: Callable[[int, int], None] | None = None,
) -> PhotoCheck:
    """Run the capture checklist on ``{name: path or bytes}``.

    Policy: a file that could not even be read keeps its own error (``unreadable[name]``, the error of the
    copy-in) instead of the checklist's "empty file"; warnings found while copying a photo in (``notes[name]``,
    e.g. "only the first frame of an animation is used") are added to that photo's problems.
    """
    report = capturing.check_photos(dict(sources), progress=on_photo).to_dict()
    by_name = {photo["path"]: photo for photo in report["photos"]}
    for name, error in (unreadable or {}).items():
        if name in by_name:
            by_name[name].update(ok=False, problems=[{**error, "severity": "error"}])
    for name, extra in (notes or {}).items():
        if name in by_name and not (unreadable and name in unreadable):
            by_name[name]["problems"].extend(dict(note) for note in extra)
    return PhotoCheck(report)


# ================================================================================== 2. identities
@dataclass
class IdentityResult:
    """A learned identity: a LoRA (``mode="lora"``) or an ArcFace embedding for a tuning-free engine
    (``mode`` = ``faceid``, ``faceid-plus`` or ``instantid``: :data:`~headshot_lab.identity_engines.TUNING_FREE`).

    Attributes:
        mode: the identity engine (:data:`IDENTITY_MODES`).
        path: the LoRA ``.safetensors`` file or the ``.npy`` embedding.
        photos: how many photos it was learned from.
        seconds: wall time.
        steps, resumed_from, card_path, card: LoRA training facts (the LoRA card, as ``lora_card.json``).
        encoder: FaceID: the embedding model.
        skipped: FaceID: photos in which no face was found.
        notes: training notes.
    """

    mode: str
    path: Path
    photos: int
    seconds: float = 0.0
    steps: int = 0
    resumed_from: int | None = None
    card_path: Path | None = None
    card: dict[str, Any] = field(default_factory=dict)
    encoder: str | None = None
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ref(self) -> dict[str, str]:
        """``{"mode", "path"}``: what :meth:`GenerateRequest.for_identity` takes back."""
        return {"mode": self.mode, "path": str(self.path)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "path": str(self.path),
            "photos": self.photos,
            "seconds": round(self.seconds, 2),
            "steps": self.steps,
            "resumed_from": self.resumed_from,
            "card_path": None if self.card_path is None else str(self.card_path),
            "card": self.card,
            "encoder": self.encoder,
            "skipped": list(self.skipped),
            "notes": list(self.notes),
        }


def require_learnable(photos: Sequence[Any] | Mapping[str, Any]) -> None:
    """Policy: an identity is learned only from photos that passed the checklist; none left → ``no_photos``."""
    if not photos:
        raise HeadshotLabError(
            "None of your photos passed the checklist, so there is nothing to learn from.",
            fix="Fix the problems listed under each photo in tab 1 and check again.",
            code="no_photos",
        )


def usable_sources(check: PhotoCheck, sources: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """``({name: source} of the usable photos, {name: why} of those left out)``: the one verdict, applied.

    Raises:
        HeadshotLabError: as :meth:`PhotoCheck.require_usable` (no majority identity, no colour, nothing usable).
    """
    usable = set(check.require_usable())
    left_out = {name: why for name, why in check.left_out().items() if name in sources}
    return {name: source for name, source in sources.items() if name in usable}, left_out


def left_out_notes(left_out: Mapping[str, str]) -> list[str]:
    """One plain line per photo left out: ``"biden.jpg was left out: biden.jpg looks like a different person …"``."""
    return [f"{Path(name).name} was left out: {why}" for name, why in left_out.items()]


def train_identity(
    photos: str | Path | Sequence[Any] | Mapping[str, Any],
    out_dir: str | Path,
    config: TrainConfig | None = None,
    *,
    base: str | None = None,
    class_images: str | Path | None = None,
    class_image_cache: str | Path | None = None,
    resume: bool = True,
    device: str | None = None,
    progress: bool = True,
    check: PhotoCheck | None = None,
) -> IdentityResult:
    """DreamBooth-LoRA on ``photos`` (a folder, a list of paths/arrays, or ``{name: path}``) into ``out_dir``.

    Policy: learn only from what is given (the app gives the photos that passed the checklist); an empty list is
    refused before any model loads. With ``check`` (the checklist's verdict on ``{name: path}`` photos) only the
    usable photos are learned from — the majority identity; a set with no majority is refused in plain words —
    and each photo left out is named, with why, in the result's ``notes``.
    """
    left: dict[str, str] = {}
    if check is not None and isinstance(photos, Mapping):
        photos, left = usable_sources(check, photos)
    if isinstance(photos, Mapping):
        photos = list(photos.values())
    if not isinstance(photos, str | Path):
        require_learnable(photos)
    result = training.train_identity_lora(
        photos if isinstance(photos, str | Path) else list(photos),
        base,
        out_dir,
        config,
        class_images=class_images,
        class_image_cache=class_image_cache,
        resume=resume,
        device=device,
        progress=progress,
    )
    card = {k: v for k, v in result.card.items() if k != "photos_sha256"}
    return IdentityResult(
        mode="lora",
        path=result.lora_path,
        photos=int((result.card.get("photos") or {}).get("count", 0)),
        seconds=result.seconds,
        steps=result.steps,
        resumed_from=result.resumed_from,
        card_path=result.card_path,
        card=card,
        notes=left_out_notes(left) + list(result.card.get("notes", [])),
    )


def faceid_identity(
    photos: Sequence[Any] | Mapping[str, Any], out: str | Path, *, device: str | None = None, engine: str = "faceid"
) -> IdentityResult:
    """The tuning-free identity (IP-Adapter-FaceID, FaceID-Plus, InstantID): one ArcFace embedding written as ``.npy``.

    ``e = m / ‖m‖₂`` with ``m = (1/N) Σᵢ aᵢ`` the mean of the ArcFace embeddings ``aᵢ`` of the largest face in
    each photo (the ``insightface`` backend; photos without a face are skipped and named). ``out`` is the
    ``.npy`` file, or a folder (then ``out/faceid_embedding.npy``). ``device="cpu"`` keeps ArcFace on the CPU
    (ZeroGPU: no GPU request for seconds of work); default ``HEADSHOT_LAB_DEVICE``. ``engine`` (one of
    :data:`~headshot_lab.identity_engines.TUNING_FREE`) is recorded as the result's ``mode``: the engine the
    embedding is for (FaceID-Plus and InstantID also read a photo of the person when generating).

    Raises:
        ModelUnavailableError: the insightface model pack is missing (names ``HEADSHOT_LAB_INSIGHTFACE_DIR``).
        HeadshotLabError: ``no_face`` when no photo shows a face; ``bad_engine`` for an engine that trains.
    """
    if get_engine(engine).trains:
        raise HeadshotLabError(
            f"The {engine} engine learns by training, not from an embedding.",
            fix="Use train_identity.",
            code="bad_engine",
        )
    started = time.perf_counter()
    named = (
        dict(photos)
        if isinstance(photos, Mapping)
        else {str(p) if isinstance(p, str | Path) else f"photo-{i}": p for i, p in enumerate(photos)}
    )
    require_learnable(named)
    options = {"device": device} if device else {}
    backend = faces.get_backend("insightface", **options)  # ModelUnavailableError names HEADSHOT_LAB_INSIGHTFACE_DIR
    embeddings, skipped = [], []
    for name, photo in named.items():
        if isinstance(photo, str | Path | bytes):
            pixels = image_io.load_rgb(photo, min_side=0)
        else:
            pixels = image_io.as_rgb_array(photo)
        face = faces.largest_face(backend.analyze(pixels))
        if face is None or face.embedding is None:
            skipped.append(name)
            continue
        embeddings.append(np.asarray(face.embedding, dtype=np.float32).reshape(-1))
    if not embeddings:
        raise HeadshotLabError(
            "No face was found in your photos by the ArcFace model.",
            fix="Use photos where your face is clearly visible, facing the camera.",
            code="no_face",
        )
    mean = np.mean(embeddings, axis=0)
    mean /= max(float(np.linalg.norm(mean)), 1e-12)
    target = Path(out)
    if target.suffix.lower() != ".npy":
        target = target / FACEID_EMBEDDING_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(target) as handle:
        np.save(handle, mean.astype(np.float32))
    return IdentityResult(
        mode=engine,
        path=target,
        photos=len(embeddings),
        seconds=time.perf_counter() - started,
        encoder=str(getattr(backend, "encoder", "insightface")),
        skipped=skipped,
    )


# ================================================================================== 3. generate
@dataclass
class GenerateRequest:
    """What to generate (every knob of the app's tab 3 and of ``headshot-lab generate``).

    Attributes:
        style, n, seed: the style preset (name or ``.yaml``), how many images, the first seed (``None``:
            the style's, else random).
        lora, lora_scale: the identity LoRA (file or training folder) and its strength.
        face_embedding: an ArcFace embedding (``.npy``, from :func:`faceid_identity`); turns the tuning-free
            ``engine`` on (IP-Adapter-FaceID unless ``engine`` says otherwise).
        selfie: a photo of the person (the embedding when none is given; FaceID-Plus's face crop; InstantID's
            keypoints; the ControlNet map's default).
        engine: the identity engine (:data:`IDENTITY_MODES`); ``None`` = ``lora`` with a LoRA, else ``faceid``
            when an embedding or FaceID weights are given. ``faceid-plus`` runs FaceID-PlusV2
            (:mod:`headshot_lab.faceid_plus`), ``instantid`` InstantID (:mod:`headshot_lab.instantid`, SDXL only).
        faceid_weights: IP-Adapter-FaceID weights (Hub id/folder); ``None`` = off unless ``face_embedding``
            is given (then ``h94/IP-Adapter-FaceID``).
        clip_encoder: FaceID-Plus's CLIP ViT-H image encoder (``None``: ``HEADSHOT_LAB_CLIP_IMAGE_ENCODER``, else
            ``laion/CLIP-ViT-H-14-laion2B-s32B-b79K``).
        instantid_weights: InstantID's weights (``None``: ``HEADSHOT_LAB_INSTANTID_WEIGHTS``, else
            ``InstantX/InstantID``).
        pose, controlnet, control_image, control_scale: a ControlNet of kind ``pose`` (``"none"`` = off).
        steps, guidance_scale, width, height: sampler overrides (``None``: the style's).
        detail_face, detail_strength: the face-detail pass (:mod:`headshot_lab.detail`; strength ``None``: the
            style's ``detail_strength``).
        hires_fix, hires_scale, hires_strength: the hires fix (:mod:`headshot_lab.hires`).
        hires_upscale_model: the hires fix's upscale step by a super-resolution model (path / Hub file;
            ``None``: Lanczos); see :class:`headshot_lab.upscale.HiresUpscaler`.
        upscale, upscale_model: enlarge each image 2× or 4× (``None``: no upscale) with a super-resolution
            model (path / Hub file; ``None``: ``HEADSHOT_LAB_UPSCALE_MODEL``, else a labelled Lanczos).
    """

    style: str = "corporate"
    n: int = 4
    seed: int | None = None
    lora: str | Path | None = None
    lora_scale: float = 1.0
    face_embedding: str | Path | None = None
    selfie: Any = None
    faceid_weights: str | None = None
    faceid_weight_name: str | None = None
    faceid_scale: float = 0.7
    engine: str | None = None
    clip_encoder: str | None = None
    instantid_weights: str | None = None
    pose: str = "none"
    controlnet: str | None = None
    control_image: Any = None
    control_scale: float = 0.8
    steps: int | None = None
    guidance_scale: float | None = None
    width: int | None = None
    height: int | None = None
    detail_face: bool = False
    detail_strength: float | None = None
    hires_fix: bool = False
    hires_scale: float = 2.0
    hires_strength: float | None = None
    hires_upscale_model: str | None = None

    def detail_options(self) -> Any:
        """:class:`headshot_lab.detail.DetailOptions` when the face-detail pass is on, else ``None``."""
        if not self.detail_face:
            return None
        from headshot_lab.detail import DetailOptions

        options = DetailOptions(strength=self.detail_strength)
        options.validate()
        return options

    def hires_options(self) -> Any:
        """:class:`headshot_lab.hires.HiresOptions` when the hires fix is on, else ``None``."""
        if not self.hires_fix:
            return None
        from headshot_lab.hires import HiresOptions

        options = HiresOptions(scale=float(self.hires_scale), strength=self.hires_strength)
        options.validate()
        return options

    def hires_upscaler(self, device: str | None = None) -> Any:
        """The hires fix's upscale hook: a :class:`~headshot_lab.upscale.HiresUpscaler` when a model is named."""
        model = (self.hires_upscale_model or "").strip()
        if not (self.hires_fix and model):
            return None
        from headshot_lab.upscale import HiresUpscaler

        return HiresUpscaler(model, device=device)

    upscale: int | None = None
    upscale_model: str | None = None

    @classmethod
    def for_identity(cls, identity: Mapping[str, Any] | None, **kwargs: Any) -> GenerateRequest:
        """A request for a learned identity (:attr:`IdentityResult.ref`: ``{"mode", "path"}``)."""
        if identity:
            path = identity.get("path") or identity.get("embedding")
            mode = identity.get("mode") or "lora"
            key = "face_embedding" if mode in TUNING_FREE else "lora"
            kwargs.setdefault(key, path)
            kwargs.setdefault("engine", mode)
        return cls(**kwargs)

    @property
    def chosen_engine(self) -> str:
        """:attr:`engine`, else ``lora`` with a LoRA, ``faceid`` with an embedding or FaceID weights, else ``lora``
        (the base alone: nothing of the person)."""
        if self.engine:
            return get_engine(self.engine).name
        if self.lora:
            return "lora"
        return "faceid" if (self.face_embedding is not None or self.faceid_weights) else "lora"

    @property
    def has_identity(self) -> bool:
        """A LoRA, an embedding, or a tuning-free engine with a selfie to embed."""
        if self.lora or self.face_embedding is not None:
            return True
        tuning_free = self.chosen_engine in TUNING_FREE and (self.engine or self.faceid_weights)
        return bool(tuning_free and self.selfie is not None)

    def faceid_options(self) -> FaceIDOptions | None:
        """IP-Adapter-FaceID (engine ``faceid``) or FaceID-PlusV2 (``faceid-plus``); ``None`` for the others."""
        engine = self.chosen_engine
        if engine not in ("faceid", "faceid-plus") or not (
            self.engine or self.faceid_weights is not None or self.face_embedding is not None
        ):
            return None
        return FaceIDOptions(
            weights=(self.faceid_weights or "").strip() or FACEID_REPO,
            weight_name=self.faceid_weight_name,
            scale=self.faceid_scale,
            variant="plusv2" if engine == "faceid-plus" else "auto",
            clip_encoder=(self.clip_encoder or "").strip() or None,
        )

    def instantid_options(self) -> InstantIDOptions | None:
        """InstantID's setup for engine ``instantid``, else ``None``."""
        if self.chosen_engine != "instantid":
            return None
        return InstantIDOptions(weights=(self.instantid_weights or "").strip() or None)

    def control_options(self) -> ControlOptions | None:
        if self.pose == "none":
            return None
        image = self.control_image if self.control_image is not None else self.selfie
        return ControlOptions(model=str(self.controlnet).strip(), kind=self.pose, image=image, scale=self.control_scale)

    def identity(self) -> Identity:
        embedding = None if self.face_embedding is None else np.load(self.face_embedding)
        if self.lora:
            return Identity.from_lora(self.lora, self.lora_scale, selfie=self.selfie, face_embedding=embedding)
        return Identity(selfie=self.selfie, face_embedding=embedding)


class GeneratorCache:
    """Loaded :class:`HeadshotGenerator` s, reused while the setup (base, FaceID, ControlNet, speed) stays.

    At most ``capacity`` stay loaded (the least recently used goes first, its GPU memory freed); the app keeps
    one on a dedicated GPU and the preloaded ones on ZeroGPU. :meth:`release` frees them all (before a
    training, which needs the GPU's memory for itself).
    """

    def __init__(self, capacity: int = 1) -> None:
        self._lock = threading.Lock()
        self.capacity = max(int(capacity), 1)
        self._entries: dict[tuple[Any, ...], HeadshotGenerator] = {}

    @staticmethod
    def key(
        faceid: FaceIDOptions | None,
        control: ControlOptions | None,
        *,
        base: str | None = None,
        speed: SpeedOptions | None = None,
        device: str | None = None,
        instantid: InstantIDOptions | None = None,
    ) -> tuple[Any, ...]:
        """What makes two setups the same generator (the device as resolved now: ``HEADSHOT_LAB_DEVICE``)."""
        return (
            models.resolve_base(base),
            None
            if faceid is None
            else (faceid.weights, faceid.weight_name, faceid.scale, faceid.variant, faceid.clip_encoder),
            None if control is None else (control.model, control.kind, control.scale),
            None if speed is None else tuple(sorted(vars(speed).items())),
            device or get_settings().device,
            None
            if instantid is None
            else (
                instantid.source,
                instantid.weight_name,
                instantid.subfolder,
                instantid.scale,
                instantid.controlnet_scale,
            ),
        )

    def cached(
        self,
        faceid: FaceIDOptions | None,
        control: ControlOptions | None,
        *,
        base: str | None = None,
        speed: SpeedOptions | None = None,
        device: str | None = None,
        instantid: InstantIDOptions | None = None,
    ) -> HeadshotGenerator | None:
        """The loaded generator of this setup, or ``None`` (nothing is loaded)."""
        key = self.key(faceid, control, base=base, speed=speed, device=device, instantid=instantid)
        with self._lock:
            return self._entries.get(key)

    def get(
        self,
        faceid: FaceIDOptions | None,
        control: ControlOptions | None,
        *,
        base: str | None = None,
        speed: SpeedOptions | None = None,
        device: str | None = None,
        progress: bool = True,
        instantid: InstantIDOptions | None = None,
    ) -> HeadshotGenerator:
        key = self.key(faceid, control, base=base, speed=speed, device=device, instantid=instantid)
        with self._lock:
            generator = self._entries.pop(key, None)
            if generator is None:
                while len(self._entries) >= self.capacity:  # the least recently used leaves before a new one loads
                    _free(self._entries.pop(next(iter(self._entries))))
                generator = HeadshotGenerator(
                    base,
                    speed=speed,
                    faceid=faceid,
                    control=control,
                    device=device,
                    progress=progress,
                    instantid=instantid,
                )
            self._entries[key] = generator  # the most recently used last
            return generator

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def release(self) -> int:
        """Forget every loaded generator and free its memory (GPU cache included); returns how many."""
        with self._lock:
            entries, self._entries = list(self._entries.values()), {}
        count = len(entries)
        for generator in entries:
            _free(generator)
        del entries
        _empty_device_cache()
        return count


def _free(generator: HeadshotGenerator) -> None:
    """Drop a generator's pipeline (its weights on the GPU go with the last reference)."""
    generator.pipe = None


def _empty_device_cache() -> None:
    """``gc.collect()`` and, when CUDA is up, ``torch.cuda.empty_cache()`` (memory back to the driver)."""
    import gc
    import sys

    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


@dataclass
class GenerateOutcome:
    """What :func:`generate_headshots` wrote: images (each labelled), the manifest and its records."""

    images: list[Path]
    manifest: Path
    records: list[dict[str, Any]]
    seconds: float
    style: str
    base: str
    kind: str = GENERATED_KIND

    @property
    def blocked(self) -> list[int]:
        """Indices of the images the base's safety checker flagged (``nsfw_flagged``: it returns them black)."""
        return [i for i, record in enumerate(self.records) if record.get("nsfw_flagged")]

    def to_dict(self) -> dict[str, Any]:
        return {
            "images": [str(p) for p in self.images],
            "manifest": str(self.manifest),
            "seconds": round(self.seconds, 2),
            "style": self.style,
            "base": self.base,
            "kind": self.kind,
            "records": [
                {k: r.get(k) for k in ("file", "seed", "style", "steps", "guidance_scale")} for r in self.records
            ],
        }


def base_family(base: str | None = None) -> str:
    """``"sd15"`` or ``"sdxl"``: the family of ``base`` (default ``HEADSHOT_LAB_BASE_MODEL``); reads only its
    ``model_index.json``. Raises :class:`~headshot_lab.errors.ModelUnavailableError` when none is reachable."""
    return models.locate_base(base).family


def few_step_lora(family: str) -> str:
    """The LCM-LoRA of the few-step path: ``HEADSHOT_LAB_FEW_STEP_LORA``, else the family's published one."""
    return get_settings().few_step_lora or LCM_LORAS[family]


def sampling_defaults(style: str) -> tuple[int, float]:
    """The style's sampler ``(steps, guidance_scale)``."""
    look = load_style(style)
    return int(look.steps), float(look.guidance_scale)


def check_generate_request(
    request: GenerateRequest,
    *,
    base: str | None = None,
    require_identity: bool = False,
    max_images: int | None = None,
) -> None:
    """The cheap refusals of :func:`generate_headshots`, in its order, before any model loads (the app runs them
    before it asks for a GPU)."""
    load_style(request.style)
    n = int(request.n)
    if max_images is not None and not 1 <= n <= max_images:
        raise HeadshotLabError(
            f"Ask for 1–{max_images} images at a time (not {request.n}).", fix="Use e.g. 4.", code="bad_option"
        )
    models.resolve_base(base)  # the plain "no base model" message before anything else
    if require_identity and not request.has_identity:
        raise HeadshotLabError(
            "Your identity has not been learned yet.",
            fix="Run “Learn identity” (tab 2) first — or use studio retouch, which needs no training.",
            code="no_identity",
        )
    if request.pose not in POSE_CHOICES:
        raise HeadshotLabError(
            f"Unknown pose control {request.pose!r}.",
            fix=f"Use one of {', '.join(POSE_CHOICES)}.",
            code="bad_option",
        )
    if request.pose != "none" and not str(request.controlnet or "").strip():
        raise HeadshotLabError(
            f"A {request.pose} ControlNet needs a ControlNet model.",
            fix="Give a Hub id or folder of a ControlNet for your base model, or choose pose “none”.",
            code="controlnet_missing",
        )
    engine = get_engine(request.chosen_engine)
    if set(engine.families) != set(models.FAMILIES):  # e.g. InstantID on SD1.5: said before any loading
        check_engine(engine.name, base_family(base))
    if engine.name in ("faceid-plus", "instantid") and request.selfie is None:
        raise HeadshotLabError(
            f"The {engine.name} engine needs a photo of the person (it reads the face itself, not only the embedding).",
            fix="Give a selfie (--selfie PHOTO), or use the faceid engine.",
            code="engine_needs_photo",
        )


def generate_headshots(
    request: GenerateRequest,
    out_dir: str | Path,
    *,
    base: str | None = None,
    speed: SpeedOptions | None = None,
    device: str | None = None,
    generators: GeneratorCache | None = None,
    require_identity: bool = False,
    max_images: int | None = None,
    progress: bool = True,
) -> GenerateOutcome:
    """Generate ``request.n`` headshots into ``out_dir`` (+ ``manifest.jsonl``).

    Policy, in this order (cheap refusals before any model loads): the style exists; ``1 ≤ n ≤ max_images``
    (the app: :data:`MAX_IMAGES_PER_RUN`); a base model is set (the plain "no base model" message first);
    with ``require_identity`` (the app) an identity was learned; a pose control names its ControlNet. Every
    image is labelled IPTC ``trainedAlgorithmicMedia`` by the generator itself as it is written
    (:meth:`HeadshotGenerator.write_outputs`), so no unlabelled file exists at any moment.
    """
    check_generate_request(request, base=base, require_identity=require_identity, max_images=max_images)
    identity = request.identity()
    faceid, control = request.faceid_options(), request.control_options()
    detail, hires = request.detail_options(), request.hires_options()
    cache = generators or GeneratorCache()
    generator = cache.get(
        faceid, control, base=base, speed=speed, device=device, progress=progress, instantid=request.instantid_options()
    )
    seed = None if request.seed in (None, "", -1) else int(request.seed)
    result = generator(
        identity,
        request.style,
        int(request.n),
        seed,
        out_dir,
        steps=request.steps or None,
        guidance_scale=request.guidance_scale,
        width=request.width,
        height=request.height,
        detail=detail,
        hires=hires,
        upscaler=request.hires_upscaler(device),
        upscale=UpscaleOptions(int(request.upscale), request.upscale_model) if request.upscale else None,
    )
    return GenerateOutcome(
        images=list(result.images),
        manifest=result.manifest,
        records=list(result.records),
        seconds=result.seconds,
        style=load_style(request.style).name,
        base=generator.base.source,
    )


# ================================================================================== 4. studio retouch
@dataclass
class RetouchOutput:
    """One retouched photo: its source name, the files written (image, then crops) and the retouch facts."""

    source: str
    paths: list[Path]
    facts: dict[str, Any]
    delta_ita: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"photo": self.source, "paths": [str(p) for p in self.paths], "retouch": self.facts}


@dataclass
class Failure:
    """A photo an action could not handle, with the error a person can act on."""

    source: str
    error: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        return {"photo": self.source, **self.error}


@dataclass
class RetouchBatch:
    """Every photo retouched (:class:`RetouchOutput`) and every one refused (:class:`Failure`)."""

    style: str
    outputs: list[RetouchOutput] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "style": self.style,
            "kind": RETOUCHED_KIND,
            "outputs": [o.to_dict() for o in self.outputs],
            "errors": [f.to_dict() for f in self.failures],
        }

    def require_any(self) -> None:
        """Raise ``no_person`` (listing each photo's reason) when no photo could be retouched."""
        if self.outputs:
            return
        lines = "\n".join(f"- {f.source}: **{f.error['message']}** — {f.error.get('fix', '')}" for f in self.failures)
        raise HeadshotLabError(
            "No photo could be retouched." + (f"\n{lines}" if lines else ""),
            fix="Use a photo of one person, from the chest up, facing the camera.",
            code="no_person",
        )


def retouched_stem(name: str, style: str) -> str:
    """The command line's file stem for a retouched photo: ``{safe stem}-{style}-retouched``."""
    stem = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in Path(name).stem) or "photo"
    return f"{stem}-{style}-retouched"


def retouch_photos(
    photos: Mapping[str, Any],
    style: str,
    out_dir: str | Path,
    *,
    light: float | None = None,
    white_balance: bool = True,
    format: str = "png",
    crops: Sequence[str] = (),
    stem: Callable[[str, str], str] = retouched_stem,
    min_side: int | None = None,
    progress: Progress | None = None,
    check: PhotoCheck | None = None,
) -> RetouchBatch:
    """Studio-retouch every ``{name: photo}`` (new backdrop, refined matte, even light; no generative model).

    Policy: an unknown style fails before any work; a photo that cannot be retouched (no person, several
    people …) is reported in ``failures`` and the others go on; every file written — the image and each crop
    — is labelled as a retouched photo (IPTC ``compositeWithTrainedAlgorithmicMedia``) by
    :func:`~headshot_lab.provenance.save_with_provenance` as it is written. ``stem(name, style)`` names the
    files (default :func:`retouched_stem`); ``min_side`` is passed to the loader (the app: 0, its checklist has
    already judged the size). With ``check`` (the checklist's verdict on these photos) only the usable photos
    are retouched, the one verdict every step shares: a photo with a blocking problem (another person, several
    faces, …) is listed in ``failures`` with the checklist's reason, and a set with no majority identity is
    refused (:meth:`PhotoCheck.require_usable`).
    """
    style_name, _ = retouching.resolve_backdrop(style)  # fail fast on an unknown style
    left_out: dict[str, str] = {}
    if check is not None:
        usable = set(check.require_usable())
        left_out = {name: why for name, why in check.left_out().items() if name in photos}
        photos = {name: photo for name, photo in photos.items() if name in usable}
    if not photos:
        raise HeadshotLabError(
            "None of your photos can be retouched.", fix="Upload readable photos first.", code="no_photos"
        )
    out = Path(out_dir)
    suffix = "." + format.lower().lstrip(".")
    batch = RetouchBatch(style=style_name)
    for name, why in left_out.items():
        batch.failures.append(
            Failure(name, {"code": "left_out", "message": f"Left out: {why}", "fix": "See the photo checklist."})
        )
    for index, (name, photo) in enumerate(photos.items()):
        report_progress(progress, index / len(photos), f"Retouching {name}")
        try:
            loaded = image_io.load_photo(photo, min_side=min_side) if isinstance(photo, str | Path | bytes) else photo
            label = loaded.digital_source_type if isinstance(loaded, image_io.Photo) else None  # never weakened
            pixels = loaded.pixels if isinstance(loaded, image_io.Photo) else loaded
            strength = retouching.DEFAULT_LIGHT if light is None else float(light)
            result = retouching.retouch(pixels, style, light=strength, white_balance=white_balance)
            base = out / stem(name, style_name)
            target = base.with_name(base.name + suffix)
            paths = [save_with_provenance(result.image, target, RETOUCHED_KIND, source_type=label)]
            for crop in crops:
                cropped = exporting.crop_image(result.image, crop)
                target = base.with_name(f"{base.name}-{cropped.crop}{suffix}")
                paths.append(save_with_provenance(cropped.pixels[..., :3], target, RETOUCHED_KIND, source_type=label))
        except HeadshotLabError as exc:
            batch.failures.append(Failure(name, _error_dict(exc)))
            continue
        record = result.to_dict()
        record["digital_source_type"] = source_type_term(
            strongest_source_type(digital_source_type(RETOUCHED_KIND), label)
        )
        batch.outputs.append(RetouchOutput(name, paths, record, result.delta_ita))
    report_progress(progress, 1.0, "Done")
    return batch


# ================================================================================== 5. select
def reference_profile(references: Mapping[str, Any] | Sequence[Any], *, backend: str | None = None) -> ReferenceProfile:
    """The person's own photos, measured once (what every candidate is judged against)."""
    if not references:
        raise HeadshotLabError(
            "There are no usable selfies to compare with.",
            fix="Give the person's own photos (--reference, or upload them in tab 1).",
            code="no_reference",
        )
    return selecting.ReferenceProfile.from_images(references, backend=backend)


def check_selection(count: int, top_k: int | None, *, max_keep: int | None = None) -> None:
    """Policy before anything is measured: there are candidates; ``1 ≤ top_k ≤ max_keep`` when a limit is set.

    Raises:
        HeadshotLabError: ``no_outputs``, ``bad_option``.
    """
    if not count:
        raise HeadshotLabError(
            "There is nothing to select from yet.",
            fix="Generate or retouch headshots in tab 3 first.",
            code="no_outputs",
        )
    if max_keep is not None and (top_k is None or not 1 <= int(top_k) <= max_keep):
        raise HeadshotLabError(f"Keep 1–{max_keep} headshots (not {top_k}).", fix="Use e.g. 8.", code="bad_option")


def select_headshots(
    candidates: Mapping[str, Any] | Sequence[Any],
    references: ReferenceProfile | Mapping[str, Any] | Sequence[Any],
    *,
    top_k: int | None = None,
    max_keep: int | None = None,
    backend: str | None = None,
    sources: Mapping[str, str] | None = None,
    new_scene: Collection[str] = (),
) -> Selection:
    """Filter and rank candidate headshots against the person's own photos; keep at most ``top_k``.

    Policy: :func:`check_selection` (the app's limit: :data:`MAX_PICKS`); every candidate is judged against the
    person's own photos (a :class:`~headshot_lab.select.ReferenceProfile`, measured here when not given); a
    candidate made from one photo (``sources[candidate] = photo``) has its skin shift measured against that
    photo, as the audit card does; ``new_scene`` names the ones put onto a new backdrop (compared as
    photographed, as :func:`audit_batch` does).
    """
    check_selection(len(candidates), top_k, max_keep=max_keep)
    if isinstance(references, selecting.ReferenceProfile):
        profile = references
    else:
        profile = reference_profile(references, backend=backend)
    keep = None if top_k is None else int(top_k)
    return selecting.select_candidates(
        candidates, profile, top_k=keep, backend=backend, sources=sources, new_scene=new_scene
    )


def flagged_crops(
    rejected: Sequence[Mapping[str, Any]],
    files: Mapping[str, tuple[str | Path, str]],
    out_dir: str | Path,
    *,
    size: int = 320,
) -> list[tuple[Path, str]]:
    """Write a zoomed crop of every flagged region (:func:`headshot_lab.select.flagged_crop`) into ``out_dir``.

    ``rejected``: a selection report's ``"rejected"`` entries (``Selection.to_dict(regions=True)``; an entry's
    ``"name"`` or ``"path"`` is a key of ``files``); ``files``: ``{name: (image file, kind)}``. Each crop is labelled
    as its image is (a crop of an AI image is an AI image). Returns ``[(crop file, "name: reason")]``.
    """
    out = Path(out_dir)
    written: list[tuple[Path, str]] = []
    for entry in rejected:
        name = str(entry.get("name") or entry.get("path") or "")
        regions = [r for r in entry.get("reasons", []) if r.get("region")]
        if name not in files or not regions:
            continue
        path, kind = files[name]
        pixels = image_io.load_rgb(path, min_side=0)
        for index, reason in enumerate(regions):
            zoom = selecting.flagged_crop(pixels, reason["region"], size=size)
            target = out / f"{Path(path).stem}-{index}-{reason['code']}.png"
            out.mkdir(parents=True, exist_ok=True)
            save_with_provenance(zoom, target, kind)
            written.append((target, f"{name}: {reason['message']}"))
    return written


# ================================================================================== 6. export
@dataclass
class ExportItem:
    """One image to export: its file, its provenance kind, and the file-name stem (default: its own)."""

    source: str | Path
    kind: str = GENERATED_KIND
    stem: str | None = None
    name: str | None = None

    @property
    def label(self) -> str:
        return self.name or Path(self.source).name


@dataclass
class ExportOutcome:
    """Every file an export wrote, read back: ``disclosures`` holds ``{"file", "kind", "disclosure"}`` per file."""

    images: list[Any] = field(default_factory=list)  # headshot_lab.export.ExportedImage
    disclosures: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    consistency: list[dict[str, Any]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    zip_path: Path | None = None

    @property
    def paths(self) -> list[Path]:
        return [image.path for image in self.images]

    def to_dict(self) -> dict[str, Any]:
        return {
            "images": [image.to_dict() for image in self.images],
            "files": list(self.disclosures),
            "notes": list(self.notes),
            "team_consistency": list(self.consistency),
            "errors": [f.to_dict() for f in self.failures],
            "zip": None if self.zip_path is None else str(self.zip_path),
        }

    def require_any(self) -> None:
        """Raise the first failure's error when nothing at all could be exported."""
        if self.images or not self.failures:
            return
        first = self.failures[0]
        raise HeadshotLabError(
            f"{first.source}: {first.error['message']}", fix=first.error.get("fix", ""), code=first.error["code"]
        )


def _check_export(items: Sequence[ExportItem], crops: Sequence[str], format: str, max_items: int | None) -> list[str]:
    """Policy shared by both exports: something to export, at most ``max_items``, known crops and format."""
    if not items:
        raise HeadshotLabError(
            "No headshots are picked.", fix="Run “Select” first, or tick the headshots to export.", code="no_picks"
        )
    if max_items is not None and len(items) > max_items:
        raise HeadshotLabError(
            f"Export at most {max_items} headshots (you picked {len(items)}).",
            fix="Untick some.",
            code="too_many_picks",
        )
    chosen = list(dict.fromkeys(c for c in crops or () if c))
    unknown = [c for c in chosen if c not in exporting.CROP_NAMES]
    if not chosen or unknown:
        raise HeadshotLabError(
            f"Choose at least one known crop{f' (unknown: {unknown})' if unknown else ''}.",
            fix=f"Crops: {', '.join(exporting.CROP_NAMES)}.",
            code="unknown_crop",
        )
    if format not in FORMATS:
        raise HeadshotLabError(f"Unknown format {format!r}.", fix=f"Use {', '.join(FORMATS)}.", code="bad_format")
    return chosen


def _unique_stems(items: Sequence[ExportItem]) -> list[str]:
    """Each item's stem; a stem seen before gets ``-2``, ``-3`` … (two photos with one name: keep both)."""
    seen: dict[str, int] = {}
    stems = []
    for item in items:
        stem = item.stem or Path(item.source).stem
        seen[stem] = seen.get(stem, 0) + 1
        stems.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return stems


def _finish(outcome: ExportOutcome, out: Path, zip_name: str | None) -> ExportOutcome:
    """Read every written file's disclosure back (what the person gets) and zip them when asked."""
    for path in outcome.paths:
        meta = read_provenance(path, c2pa=False)
        outcome.disclosures.append({"file": path.name, "kind": meta.get("kind"), "disclosure": meta.get("disclosure")})
    if zip_name and outcome.images:
        outcome.zip_path = exporting.zip_exports(outcome.paths, out / zip_name)
    return outcome


def export_single(
    items: Sequence[ExportItem],
    out_dir: str | Path,
    crops: Sequence[str] = ("square", "circle"),
    *,
    format: str = "jpeg",
    zip_name: str | None = None,
    max_items: int | None = None,
    progress: Progress | None = None,
    print_size: tuple[float, float, int] | None = None,
    refuse_short_print: bool = False,
) -> ExportOutcome:
    """Write each image in each crop, every file with its disclosure metadata (IPTC per ``item.kind``).

    Policy: :func:`_check_export`; an image that cannot be exported is reported in ``failures`` and the others
    go on; notes (no face, upscaled, extended backdrop) name their image; the disclosure of every file is read
    back from the file itself. ``print_size`` ``(width_in, height_in, dpi)`` replaces the default 4×5 in at
    300 dpi of the ``print`` crop (:func:`headshot_lab.export.print_crop`); with ``refuse_short_print`` an image
    with too little real detail for it is a failure instead of a warning.
    """
    names = _check_export(items, crops, format, max_items)
    chosen: list[str | exporting.CropSpec] = [
        exporting.print_crop(*print_size) if name == "print" and print_size else name for name in names
    ]
    out = Path(out_dir)
    outcome = ExportOutcome()
    for index, (item, stem) in enumerate(zip(items, _unique_stems(items), strict=True)):
        report_progress(progress, index / len(items), f"Exporting {item.label}")
        try:
            result = exporting.export_headshots(
                item.source,
                out,
                chosen,
                format=format,
                kind=item.kind,
                stem=stem,
                refuse_short_print=refuse_short_print,
            )
        except HeadshotLabError as exc:
            outcome.failures.append(Failure(item.label, _error_dict(exc)))
            continue
        outcome.images += result.images
        outcome.notes += [f"{item.label}: {note}" for note in result.notes]  # per-file notes: in ``images``
    return _finish(outcome, out, zip_name)


def export_team(
    items: Sequence[ExportItem],
    out_dir: str | Path,
    crop: str = "square",
    *,
    format: str = "jpeg",
    zip_name: str | None = None,
    max_items: int | None = None,
    guide: exporting.StyleGuide | None = None,
) -> ExportOutcome:
    """Team mode: one crop, one backdrop and one colour grade (:class:`~headshot_lab.export.StyleGuide`) for all.

    Policy: images are grouped by provenance kind (a generated and a retouched headshot never share a label);
    each group of two or more gets the style guide and a consistency score (backdrop ΔE, face-scale and
    eye-line spread); a lone image of its kind is exported in the team crop only.
    """
    (chosen,) = _check_export(items, [crop], format, max_items)
    out = Path(out_dir)
    outcome = ExportOutcome()
    style = guide or exporting.StyleGuide(crop=chosen)
    for kind in dict.fromkeys(item.kind for item in items):
        group = [(item, stem) for item, stem in zip(items, _unique_stems(items), strict=True) if item.kind == kind]
        if len(group) >= 2:
            team = exporting.export_team(
                {stem: item.source for item, stem in group}, out, style, format=format, kind=kind
            )
            outcome.images += list(team.images.values())
            outcome.consistency.append({"kind": kind, **team.consistency.to_dict()})
        else:
            ((item, stem),) = group
            result = exporting.export_headshots(item.source, out, [chosen], format=format, kind=kind, stem=stem)
            outcome.images += result.images
    outcome.notes.append(f"Team mode: one crop ({chosen}), one backdrop and one colour grade for everyone.")
    return _finish(outcome, out, zip_name)


# ================================================================================== 7. audit
def pair_by_stem(outputs: Iterable[str], references: Iterable[str]) -> dict[str, str]:
    """``{output: reference}``: each output paired with the reference whose file stem it starts with (longest)."""
    refs = list(references)
    pairs = {}
    for name in outputs:
        match = max((r for r in refs if Path(name).stem.startswith(Path(r).stem)), key=len, default=None)
        if match:
            pairs[name] = match
    return pairs


def audit_batch(
    references: Mapping[str, Any],
    outputs: Mapping[str, Any],
    *,
    sources: Mapping[str, str] | None = None,
    out_dir: str | Path | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    new_scene: Collection[str] = (),
) -> BatchAudit:
    """The audit card of a batch of outputs against the person's own photos (``report.md``, ``results.json``).

    Policy: there must be outputs; an output made from one photo (``sources[output] = reference``) is compared
    with that photo; ``new_scene`` names outputs put onto a new backdrop (their skin is compared as photographed).
    """
    from headshot_lab.audit.batch import audit_batch as run_audit

    if not outputs:
        raise HeadshotLabError(
            "There is nothing to audit yet.", fix="Generate or retouch headshots first.", code="no_outputs"
        )
    return run_audit(
        references, outputs, sources=sources or {}, out_dir=out_dir, seed=seed, progress=progress, new_scene=new_scene
    )


# ================================================================================== 8. delete & purge
def publish_key(session_id: str) -> str:
    """Folder name of a session's published copies: ``sha256(id)[:32]`` (the id cannot be recovered)."""
    return hashlib.sha256(session_id.encode()).hexdigest()[:32]


def default_publish_root(store: SessionStore) -> Path:
    """Where the app publishes copies to show/download: ``$GRADIO_TEMP_DIR/published`` (default under the data dir)."""
    gradio_dir = Path(os.environ.get("GRADIO_TEMP_DIR") or store.data_dir / "gradio")
    return gradio_dir / PUBLISHED_DIR


def published_dir(publish_root: str | Path, session_id: str) -> Path:
    return Path(publish_root) / publish_key(session_id)


def _remove_tree(folder: Path) -> int:
    """Delete ``folder``; return how many files it held (0 when it did not exist)."""
    if not folder.is_dir():
        return 0
    count = sum(1 for p in folder.rglob("*") if p.is_file())
    shutil.rmtree(folder, ignore_errors=True)
    return count


@dataclass
class Deletion:
    """One deleted session: the deletion-log record (counts only, no id) and the published copies removed."""

    record: DeletionRecord | None
    published_files: int = 0

    @property
    def files(self) -> int:
        return 0 if self.record is None else self.record.files

    @property
    def bytes(self) -> int:
        return 0 if self.record is None else self.record.bytes

    def to_dict(self) -> dict[str, Any]:
        base = self.record.to_dict() if self.record is not None else {"files": 0, "bytes": 0}
        return {**base, "published_files": self.published_files}


def delete_session(
    session_id: str,
    *,
    store: SessionStore | None = None,
    publish_root: str | Path | None = None,
    reason: str = "user",
    missing_ok: bool = False,
) -> Deletion:
    """ "Delete my data now": the session folder *and* its published copies, logged without the id.

    Policy: a malformed id is refused before anything is touched; the published copies go even when the
    session folder is already gone (they are the person's data too); then the folder (the store renames it
    away atomically, deletes it and logs the counts).

    Raises:
        InvalidSessionIdError: malformed id.
        SessionNotFoundError: no such session, unless ``missing_ok``.
    """
    store = store or SessionStore()
    validate_session_id(session_id)
    root = Path(publish_root) if publish_root is not None else default_publish_root(store)
    published = _remove_tree(published_dir(root, session_id))
    record = store.delete_session(session_id, reason=reason, missing_ok=missing_ok)
    return Deletion(record, published)


@dataclass
class Purge:
    """What :func:`purge_expired` removed. ``session_ids`` is for the caller's own bookkeeping, never printed."""

    purged: int
    remaining: int
    published_removed: int
    session_ids: list[str] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"purged": self.purged, "remaining": self.remaining, "published_removed": self.published_removed}


def remove_orphaned_copies(
    store: SessionStore, publish_root: str | Path | None = None, *, min_age_s: float = ORPHAN_MIN_AGE_S
) -> int:
    """Delete published-copy folders whose session no longer exists; return how many folders went.

    Anything younger than ``min_age_s`` is left alone (it may belong to a request in flight).
    """
    root = Path(publish_root) if publish_root is not None else default_publish_root(store)
    if not root.is_dir():
        return 0
    now = time.time()
    live = {publish_key(session.id) for session in store.list_sessions()}
    removed = 0
    for entry in root.iterdir():
        try:
            if entry.is_dir() and entry.name not in live and now - entry.stat().st_mtime > min_age_s:
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
        except FileNotFoundError:  # removed meanwhile by another thread's deletion
            continue
    return removed


def purge_expired(
    *, store: SessionStore | None = None, publish_root: str | Path | None = None, min_age_s: float = ORPHAN_MIN_AGE_S
) -> Purge:
    """Delete every session past its retention time, with its published copies, and any orphaned copies.

    Policy: the same for the app's purge loop and ``headshot-lab purge`` — a purged session leaves nothing
    behind in the published folder either.
    """
    store = store or SessionStore()
    root = Path(publish_root) if publish_root is not None else default_publish_root(store)
    before = {session.id for session in store.list_sessions()}
    purged = store.purge_expired()
    after = {session.id for session in store.list_sessions()}
    gone = sorted(before - after)
    published = 0
    for session_id in gone:
        folder = published_dir(root, session_id)
        if folder.is_dir():
            _remove_tree(folder)
            published += 1
    published += remove_orphaned_copies(store, root, min_age_s=min_age_s)
    return Purge(purged=purged, remaining=len(after), published_removed=published, session_ids=gone)
