"""ControlNet conditioning: turn a reference photo into the image a ControlNet reads.

The reference is either a pose reference photo (any person; only the pose is used) or the person's
own selfie. It is first centre-cropped to the output's aspect ratio, so the geometry of the
conditioning matches the image to be generated, then a `controlnet-aux`_ detector draws the map:

==========  ==========================================  ===============================================
kind        detector                                    weights
==========  ==========================================  ===============================================
``face``    ``MediapipeFaceDetector`` (468-point mesh)  bundled with mediapipe — works offline
``pose``    ``OpenposeDetector`` (body keypoints)       ``lllyasviel/Annotators`` on the Hub (or folder)
``depth``   ``MidasDetector`` (DPT-hybrid depth)        ``lllyasviel/Annotators`` on the Hub (or folder)
``canny``   ``CannyDetector`` (edges)                   none — works offline
==========  ==========================================  ===============================================

Matching ControlNets: ``CrucibleAI/ControlNetMediaPipeFace`` (face; SD1.5 in its ``diffusion_sd15`` subfolder,
picked by the base's family — the repo root holds the SD2.1 one),
``lllyasviel/control_v11p_sd15_openpose`` (pose), ``lllyasviel/control_v11f1p_sd15_depth`` (depth),
``thibaud/controlnet-openpose-sdxl-1.0`` / ``diffusers/controlnet-depth-sdxl-1.0`` (SDXL).

.. _controlnet-aux: https://github.com/huggingface/controlnet_aux
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from headshot_lab.errors import FaceNotFoundError, HeadshotLabError, ModelUnavailableError

CONTROL_KINDS = ("face", "pose", "depth", "canny")
DEFAULT_ANNOTATORS = "lllyasviel/Annotators"
#: Shorter side the detectors work at (controlnet-aux's default); the map is resized to the output after.
DETECT_RESOLUTION = 512
#: A matching SD1.5 ControlNet per kind (SDXL users pass their own with --controlnet).
DEFAULT_CONTROLNETS = {
    "face": "CrucibleAI/ControlNetMediaPipeFace",
    "pose": "lllyasviel/control_v11p_sd15_openpose",
    "depth": "lllyasviel/control_v11f1p_sd15_depth",
    "canny": "lllyasviel/control_v11p_sd15_canny",
}


#: Repositories that keep one family's ControlNet in a subfolder: ``(repo, family) → subfolder``. The model card
#: of ``CrucibleAI/ControlNetMediaPipeFace`` loads the SD2.1 ControlNet from the repo root and the SD1.5 one with
#: ``ControlNetModel.from_pretrained("CrucibleAI/ControlNetMediaPipeFace", subfolder="diffusion_sd15")``.
CONTROLNET_SUBFOLDERS: dict[tuple[str, str], str] = {("CrucibleAI/ControlNetMediaPipeFace", "sd15"): "diffusion_sd15"}
#: Files controlnet-aux's ``OpenposeDetector.from_pretrained`` loads eagerly (body, hand and face models).
OPENPOSE_FILES = ("body_pose_model.pth", "hand_pose_model.pth", "facenet.pth")
MIDAS_FILE = "dpt_hybrid-midas-501f0c75.pt"


#: Config keys a FLUX ControlNet shares with the FLUX transformer it steers (widths, heads, RoPE axes, inputs).
FLUX_CONTROLNET_KEYS = (
    "joint_attention_dim",
    "pooled_projection_dim",
    "attention_head_dim",
    "num_attention_heads",
    "axes_dims_rope",
    "in_channels",
)


class ControlNetMismatchError(HeadshotLabError):
    """The ControlNet was made for another base-model family than the base it is paired with."""

    code = "controlnet_family_mismatch"


def controlnet_subfolder(model: str | os.PathLike[str], family: str | None) -> str | None:
    """The subfolder that holds ``family``'s ControlNet in ``model`` (:data:`CONTROLNET_SUBFOLDERS`), else ``None``."""
    if family is None:
        return None
    return CONTROLNET_SUBFOLDERS.get((str(model), family))


def check_controlnet_fits(
    controlnet_config: dict[str, Any] | Any,
    unet_config: dict[str, Any] | Any,
    *,
    controlnet: str = "the ControlNet",
    base: str = "the base model",
) -> None:
    """Raise :class:`ControlNetMismatchError` unless the ControlNet's wiring matches the base UNet's.

    A ControlNet adds its residuals to the UNet's down/mid blocks and reads the same text embeddings, so it fits
    only when ``cross_attention_dim`` (768 SD1.5, 1024 SD2.x, 2048 SDXL), ``block_out_channels`` and
    ``addition_embed_type`` (``text_time`` for SDXL) agree. diffusers checks none of these: a mismatch fails
    only mid-generation with a matmul shape error.
    """

    def get(config: Any, key: str) -> Any:
        value = config.get(key) if isinstance(config, dict) else getattr(config, key, None)
        return list(value) if isinstance(value, list | tuple) else value

    # A FLUX transformer (or FLUX ControlNet) has a joint_attention_dim (the T5 width) and no cross_attention_dim:
    # a FLUX ControlNet adds its residuals to the transformer's hidden states, so the width and the RoPE layout
    # must agree as well as the text widths.
    flux = (
        get(unet_config, "joint_attention_dim") is not None or get(controlnet_config, "joint_attention_dim") is not None
    )
    keys = FLUX_CONTROLNET_KEYS if flux else ("cross_attention_dim", "block_out_channels", "addition_embed_type")
    problems = [
        f"{key} {get(controlnet_config, key)} vs {get(unet_config, key)}"
        for key in keys
        if get(controlnet_config, key) != get(unet_config, key)
    ]
    if problems:
        raise ControlNetMismatchError(
            f"{controlnet} does not fit {base}: it was made for another kind of base model ({'; '.join(problems)}).",
            fix=(
                "Use a ControlNet made for this base-model family (SD1.5: lllyasviel/control_v11p_sd15_* or "
                "CrucibleAI/ControlNetMediaPipeFace, subfolder diffusion_sd15; SDXL: e.g. "
                "diffusers/controlnet-canny-sdxl-1.0; FLUX.1: a FluxControlNetModel such as "
                "InstantX/FLUX.1-dev-Controlnet-Canny), or a base of the ControlNet's family."
            ),
        )


@dataclass(frozen=True)
class Conditioning:
    """A conditioning image and where it came from.

    Attributes:
        kind: one of :data:`CONTROL_KINDS`.
        image: RGB ``PIL.Image`` of exactly the output size.
        sha256: hash of the conditioning pixels (written into the manifest).
    """

    kind: str
    image: Image.Image

    @property
    def sha256(self) -> str:
        return pixels_sha256(np.asarray(self.image))


def pixels_sha256(pixels: np.ndarray) -> str:
    """SHA-256 over the shape and the raw bytes of an array (stable across file formats)."""
    array = np.ascontiguousarray(pixels)
    digest = hashlib.sha256(repr((array.shape, str(array.dtype))).encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


def fit_to_aspect(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Centre-crop ``image`` to the ``width:height`` aspect ratio (no resizing)."""
    rows, cols = image.shape[:2]
    target = width / height
    if cols / rows > target:
        new_cols = max(1, round(rows * target))
        left = (cols - new_cols) // 2
        return image[:, left : left + new_cols]
    new_rows = max(1, round(cols / target))
    top = (rows - new_rows) // 2
    return image[top : top + new_rows]


def _controlnet_aux() -> Any:
    """``import controlnet_aux`` without the wall of timm registry warnings its import prints."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import controlnet_aux
    return controlnet_aux


def _hub_detector(kind: str, annotators: str) -> Any:
    """OpenPose / MiDaS from ``annotators`` (Hub id or folder), or one clear error when unreachable."""
    controlnet_aux = _controlnet_aux()
    cls = controlnet_aux.OpenposeDetector if kind == "pose" else controlnet_aux.MidasDetector
    local_only = os.path.isdir(annotators) or os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}
    try:
        return cls.from_pretrained(annotators, local_files_only=local_only)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelUnavailableError(
            f"The {kind} detector needs weights from {annotators}, which could not be loaded ({type(exc).__name__}).",
            fix=(
                f"Connect to the Hub once (unset HF_HUB_OFFLINE) so {annotators} is cached, or pass a local folder "
                f"holding {_detector_files(kind)}; or use --control-kind face or canny, which work offline."
            ),
        ) from None


def _detector_files(kind: str) -> str:
    """The weight files the ``kind`` detector needs, in words (OpenPose loads all three of its models)."""
    return " + ".join(OPENPOSE_FILES) if kind == "pose" else MIDAS_FILE


def detect_map(image: np.ndarray, kind: str, *, annotators: str = DEFAULT_ANNOTATORS) -> np.ndarray:
    """Run the ``kind`` detector on an RGB ``uint8`` image; returns the ``(H, W, 3)`` ``uint8`` map."""
    resolution = DETECT_RESOLUTION
    if kind == "face":
        result = _controlnet_aux().MediapipeFaceDetector()(
            image, max_faces=1, output_type="np", detect_resolution=resolution, image_resolution=resolution
        )
    elif kind == "canny":
        result = _controlnet_aux().CannyDetector()(
            image, output_type="np", detect_resolution=resolution, image_resolution=resolution
        )
    elif kind in {"pose", "depth"}:
        detector = _hub_detector(kind, annotators)
        result = detector(image, detect_resolution=resolution, image_resolution=resolution, output_type="np")
    else:
        raise HeadshotLabError(
            f"Unknown control kind {kind!r}.", fix=f"Choose one of {', '.join(CONTROL_KINDS)}.", code="bad_control_kind"
        )
    result = np.asarray(result)
    if result.ndim == 2:
        result = np.repeat(result[..., None], 3, axis=2)
    return np.ascontiguousarray(result[..., :3], dtype=np.uint8)


def conditioning_image(
    image: Any,
    kind: str = "face",
    *,
    width: int,
    height: int,
    annotators: str = DEFAULT_ANNOTATORS,
) -> Conditioning:
    """The conditioning image for a ControlNet of ``kind``, at exactly ``width × height``.

    Args:
        image: the reference (path, array, PIL image or :class:`~headshot_lab.io.Photo`).
        kind: ``face``, ``pose``, ``depth`` or ``canny`` (see the module table).
        width, height: the output size of the generation.
        annotators: Hub id or folder of the OpenPose / MiDaS weights.

    Raises:
        FaceNotFoundError: ``face`` or ``pose`` found nothing to draw in the reference.
        ModelUnavailableError: ``pose`` / ``depth`` weights cannot be reached.
    """
    from headshot_lab.io import as_rgb_array, load_rgb

    if kind not in CONTROL_KINDS:
        raise HeadshotLabError(
            f"Unknown control kind {kind!r}.", fix=f"Choose one of {', '.join(CONTROL_KINDS)}.", code="bad_control_kind"
        )
    pixels = load_rgb(image, min_side=0) if isinstance(image, str | Path) else as_rgb_array(image)
    cropped = fit_to_aspect(pixels, width, height)
    drawn = detect_map(cropped, kind, annotators=annotators)
    if kind in {"face", "pose"} and int(drawn.max(initial=0)) == 0:
        what = "face" if kind == "face" else "person (pose)"
        raise FaceNotFoundError(
            f"No {what} was found in the ControlNet reference image, so there is nothing to condition on.",
            fix="Use a reference photo with one clearly visible person facing the camera, or leave out ControlNet.",
        )
    resized = Image.fromarray(drawn).resize((width, height), Image.Resampling.BILINEAR)
    return Conditioning(kind=kind, image=resized.convert("RGB"))


def _controlnet_kwargs(source: str, family: str | None, subfolder: str | None) -> dict[str, Any]:
    from headshot_lab.models import offline

    kwargs: dict[str, Any] = {"local_files_only": offline() or os.path.isdir(source)}
    chosen = subfolder if subfolder is not None else controlnet_subfolder(source, family)
    if chosen:
        kwargs["subfolder"] = chosen
    return kwargs


def controlnet_config(
    model: str | os.PathLike[str], *, family: str | None = None, subfolder: str | None = None
) -> dict[str, Any]:
    """The ControlNet's ``config.json`` (no weights), from the family's subfolder where the repo has one."""
    from diffusers import ControlNetModel

    source = str(model)
    try:
        return dict(ControlNetModel.load_config(source, **_controlnet_kwargs(source, family, subfolder)))
    except (OSError, ValueError) as exc:
        raise _controlnet_unavailable(source, exc) from None


def load_controlnet(
    model: str | os.PathLike[str],
    *,
    dtype: Any = None,
    family: str | None = None,
    subfolder: str | None = None,
) -> Any:
    """``ControlNetModel.from_pretrained(model)`` with one clear error when it cannot be reached.

    ``family`` (the base's) picks the subfolder of a repo that holds several families' ControlNets
    (:data:`CONTROLNET_SUBFOLDERS`: ``CrucibleAI/ControlNetMediaPipeFace`` keeps SD1.5 in ``diffusion_sd15``,
    SD2.1 at the root); ``subfolder`` overrides it. For a FLUX base the model is a ``FluxControlNetModel``
    (InstantX/XLabs-style, e.g. ``InstantX/FLUX.1-dev-Controlnet-Canny``; note the dev licence of those).
    """
    from diffusers import ControlNetModel, FluxControlNetModel

    source = str(model)
    kwargs = _controlnet_kwargs(source, family, subfolder)
    if dtype is not None:
        kwargs["dtype"] = dtype
    cls: Any = FluxControlNetModel if family == "flux" else ControlNetModel
    try:
        return cls.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        raise _controlnet_unavailable(source, exc) from None


def _controlnet_unavailable(source: str, exc: BaseException) -> ModelUnavailableError:
    return ModelUnavailableError(
        f"The ControlNet {source} could not be loaded ({type(exc).__name__}).",
        fix=(
            "Pass a Hub id you can download (e.g. "
            f"{DEFAULT_CONTROLNETS['face']} for SD1.5 face landmarks) or a local diffusers ControlNet folder; "
            "with HF_HUB_OFFLINE=1 it must already be in the Hub cache."
        ),
    )
