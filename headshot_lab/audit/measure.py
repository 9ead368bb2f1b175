"""What the audit measures on one image: the analysis record plus the detectability features.

Both audits — the per-batch card (:mod:`headshot_lab.audit.batch`) and the suite (``eval``) — call
:func:`analyse_image`, which reads :func:`headshot_lab.analysis.analyse_photo`'s record of the main
face (so tone, texture, pose and identity come from one face, the mesh found around that face's box)
and adds the C2ST feature vector (:func:`headshot_lab.audit.detectability.image_features`).
The identity encoder is :data:`AUDIT_BACKEND` (dlib's 128-D ResNet), on purpose not the ArcFace
family that IP-Adapter-FaceID generators are conditioned on; its name goes into every report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from headshot_lab.analysis import AnalysisOptions, FaceAnalysis, FaceFinder, PhotoAnalysis, analyse_photo, judge_finder
from headshot_lab.audit.age import apparent_age
from headshot_lab.audit.detectability import image_features
from headshot_lab.errors import HeadshotLabError, ModelUnavailableError
from headshot_lab.faces import get_backend
from headshot_lab.faces.mesh import FaceMesh
from headshot_lab.skin import cells_to_list

if TYPE_CHECKING:
    from headshot_lab.faces.base import Face

#: The audit's identity backend (independent of ``HEADSHOT_LAB_FACE_BACKEND``).
AUDIT_BACKEND = "dlib"
#: Embedding size of :data:`AUDIT_BACKEND` (the zero block when ``embed_features`` finds no face).
AUDIT_EMBEDDING_DIM = 128


def encoder_name() -> str:
    """The audit identity encoder's name (written into every report)."""

    return str(get_backend(AUDIT_BACKEND).encoder)


def audit_finder() -> FaceFinder:
    """The audit's face finder: MediaPipe full-range ∪ :data:`AUDIT_BACKEND` (every face found, dlib embeddings)."""
    return judge_finder(AUDIT_BACKEND)


@dataclass
class AuditAnalysis:
    """One image as the audit sees it: the record, its main face, and the C2ST features.

    Attributes:
        photo: the analysis record (``None`` when the image could not be analysed at all).
        face: the main face of the record (``None``: no face found).
        age: apparent age of the main face in years (dlib's CC0 age network), ``None`` when not measured.
        features: the detectability feature vector.
        detector_score: a pretrained detector's "AI" score, when one is configured.
        errors: ``[{"stage", "code", "message"}]`` of the steps that failed.
    """

    photo: PhotoAnalysis | None = None
    face: FaceAnalysis | None = None
    age: float | None = None
    features: np.ndarray | None = None
    detector_score: float | None = None
    errors: list[dict[str, str]] = field(default_factory=list)

    @property
    def tone(self) -> Any:
        return None if self.face is None else self.face.tone

    @property
    def texture(self) -> float | None:
        return None if self.face is None else self.face.texture

    @property
    def embedding(self) -> np.ndarray | None:
        return None if self.face is None else self.face.embedding

    @property
    def mesh(self) -> FaceMesh | None:
        return None if self.face is None else self.face.mesh

    @property
    def skin(self) -> np.ndarray | None:
        """The skin mask (analysis-copy pixels)."""
        return None if self.face is None else self.face.skin_mask

    @property
    def pose(self) -> tuple[float, float, float] | None:
        pose = None if self.face is None else self.face.pose
        return None if pose is None else (pose.yaw, pose.pitch, pose.roll)

    def original_geometry(self) -> dict[str, Any]:
        """The main face's ``box``, ``landmarks``, ``landmarks5``, ``mesh`` and ``skin`` mask in original pixels."""
        face, photo = self.face, self.photo
        if face is None or photo is None:
            return {"box": None, "landmarks": None, "landmarks5": None, "mesh": None, "skin": None}
        scale = photo.scale

        def points(value: Any) -> Any:
            return None if value is None else np.asarray(value, dtype=np.float64) / scale

        mesh, skin = face.mesh, face.skin_mask
        if scale != 1.0 and mesh is not None:
            points3d = mesh.points3d.copy()
            points3d[:, :2] /= scale
            mesh = FaceMesh(
                points=mesh.points / scale,
                points3d=points3d,
                box=tuple(
                    min(round(v / scale), side)
                    for v, side in zip(mesh.box, (photo.width, photo.height, photo.width, photo.height), strict=True)
                ),  # type: ignore[arg-type]
                image_shape=(photo.height, photo.width),
            )
        if scale != 1.0 and skin is not None:
            import cv2

            skin = cv2.resize(skin.astype(np.uint8), (photo.width, photo.height), interpolation=cv2.INTER_NEAREST) > 0
        return {
            "box": tuple(round(v) for v in photo.box_original(face)),
            "landmarks": points(face.landmarks68),
            "landmarks5": points(face.landmarks5),
            "mesh": mesh,
            "skin": skin,
        }

    def measurements(self) -> dict[str, Any]:
        """The JSON-friendly part written into ``samples.jsonl``."""
        tone = self.tone
        face, photo = self.face, self.photo
        box = None if face is None or photo is None else [round(v) for v in photo.box_original(face)]
        return {
            "face_found": face is not None and face.embedding is not None,
            "faces": 0 if photo is None else photo.face_count,
            "box": box,
            "ita": None if tone is None else round(float(tone.ita), 4),
            "ita_light_corrected": None
            if tone is None or tone.ita_light_corrected is None
            else round(float(tone.ita_light_corrected), 4),
            "scene_grey_xy": None
            if tone is None or tone.scene_grey_xy is None
            else [round(float(v), 6) for v in tone.scene_grey_xy],
            "scene_grey_y": None if tone is None or tone.scene_grey_y is None else round(float(tone.scene_grey_y), 6),
            # The face-relative scene cells and the skin's linear colour: the within-scene skin shift's light estimate.
            "scene_cells": None if tone is None or tone.scene_cells is None else cells_to_list(tone.scene_cells),
            "skin_linear": None
            if tone is None or tone.skin_linear is None
            else [round(float(v), 6) for v in tone.skin_linear],
            "hash": None if photo is None else photo.metrics.get("hash"),
            "ita_group": None if tone is None else int(tone.ita_group),
            "lab": None if tone is None else [round(float(v), 3) for v in tone.lab],
            "monk": None if tone is None else int(tone.monk),
            "skin_pixels": None if tone is None else int(tone.skin_pixels),
            "texture": None if self.texture is None else round(float(self.texture), 6),
            "age": None if self.age is None else round(float(self.age), 3),
            "pose": None if self.pose is None else [round(float(v), 2) for v in self.pose],
            "detector_score": None if self.detector_score is None else round(float(self.detector_score), 6),
        }


def _scaled_hint(face: Face, scale: float) -> Face:
    """``face`` (original pixels) in analysis-copy pixels."""
    import dataclasses

    if scale == 1.0:
        return face

    def mul(points: Any) -> Any:
        return None if points is None else np.asarray(points, dtype=np.float64) * scale

    return dataclasses.replace(
        face,
        box=tuple(round(v * scale) for v in face.box),  # type: ignore[arg-type]
        landmarks=mul(face.landmarks),
        landmarks5=mul(face.landmarks5),
    )


def _apparent_age(photo: PhotoAnalysis, face: FaceAnalysis, errors: list[dict[str, str]]) -> float | None:
    """The main face's apparent age on the analysis copy; a missing age network is a note, not a failure."""

    try:  # the model is loaded (and its files checked) once per process: no per-image look-up
        return apparent_age(photo.small, face.to_face())
    except ModelUnavailableError:
        errors.append({"stage": "age", "code": "age_model_unavailable", "message": "the age network is not installed"})
        return None
    except Exception as exc:  # one face's failure is listed, never fatal
        errors.append({"stage": "age", "code": type(exc).__name__, "message": str(exc)[:300]})
        return None


def analyse_image(
    image: np.ndarray,
    *,
    hint_face: Face | None = None,
    hint_mesh: FaceMesh | None = None,
    embed_features: bool = False,
    finder: FaceFinder | None = None,
    measure_age: bool = True,
) -> AuditAnalysis:
    """Analyse one image for the audit: the record's main face + the detectability features.

    ``hint_face`` (a :class:`~headshot_lab.faces.Face` with 68 landmarks, original pixels) skips
    detection and ``hint_mesh`` (analysis-copy pixels) the mesh — only for images that share the
    hint's geometry exactly. Never raises for one bad image (the failure is in ``errors``), except
    :class:`~headshot_lab.errors.ModelUnavailableError`.
    """
    result = AuditAnalysis()
    options = AnalysisOptions(checklist=False)  # the same faces, tone, texture and embedding; no checklist stats
    finder = finder or audit_finder()
    try:
        scale = min(1.0, options.analysis_side / float(max(image.shape[:2])))
        hint = None if hint_face is None else _scaled_hint(hint_face, scale)
        result.photo = analyse_photo(image, backend=finder, options=options, face_hint=hint, mesh_hint=hint_mesh)
    except ModelUnavailableError:
        raise
    except Exception as exc:  # one image's failure is counted and listed in the report, never fatal
        code = exc.code if isinstance(exc, HeadshotLabError) else type(exc).__name__
        result.errors.append({"stage": "face", "code": code, "message": str(exc)[:300]})
        return result
    result.face = result.photo.primary
    if result.face is None:
        result.errors.append({"stage": "face", "code": "no_face", "message": "no face was found"})
    else:
        result.errors.extend(result.face.errors)
        if measure_age:
            result.age = _apparent_age(result.photo, result.face, result.errors)
    try:
        box = None if result.face is None else result.photo.box_original(result.face)
        embedding = result.embedding if embed_features else None
        result.features = image_features(image, box, embedding=embedding)
        if embed_features and embedding is None:
            result.features = np.concatenate([result.features, np.zeros(AUDIT_EMBEDDING_DIM)])
    except Exception as exc:
        result.errors.append({"stage": "features", "code": type(exc).__name__, "message": str(exc)[:300]})
    return result
