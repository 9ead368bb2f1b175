"""InstantID for SDXL on diffusers' core ``StableDiffusionXLControlNetPipeline`` (no remote code).

InstantID (Wang et al. 2024, ``InstantX/InstantID``) conditions SDXL on one photo with two parts:

1. **an IP-Adapter** (``ip-adapter.bin``): a perceiver *Resampler* projects the 512-D ArcFace embedding ``e`` to
   16 face tokens ``F = Resampler(e) ∈ ℝ^{16×2048}`` (``dim 1280, depth 4, heads 20, dim_head 64``), and every UNet
   cross-attention adds ``λ · softmax(Q·(W_k'F)ᵀ/√d)·W_v'F`` to its text attention (decoupled cross-attention,
   ``λ`` = :attr:`InstantIDOptions.scale`);
2. **IdentityNet** (``ControlNetModel/``): an SDXL ControlNet whose conditioning image is the 5-point keypoint map
   (:func:`draw_kps`) and whose cross-attention reads the **face tokens ``F`` instead of the text** — the key
   difference from an ordinary ControlNet (the reference pipeline calls it with ``encoder_hidden_states=F``).

diffusers 0.42.1's ``load_ip_adapter`` converts InstantID's ``image_proj`` (keys ``latents``, ``proj_in``,
``proj_out``, ``norm_out``, ``layers.{i}.{0,1}.*``: the IP-Adapter-Plus Resampler layout) into
``IPAdapterPlusImageProjection`` (heads ``= to_q.out/64 = 20``, 16 queries) and its ``ip_adapter`` keys
(``{1,3,5,…}.to_k_ip/to_v_ip``) into ``IPAdapterAttnProcessor2_0`` with 16 tokens, which computes the UNet's
part exactly as the reference's ``IPAttnProcessor``. The core ControlNet pipeline, though, passes the *text*
embeddings to the ControlNet, so :class:`IdentityNet` (a ``ControlNetModel`` subclass, so every ``isinstance``
check in the pipeline holds) swaps them for the face tokens it is given per call (:meth:`IdentityNet.face_tokens`).
The tokens are computed with the UNet's own projection from the same ``ip_adapter_image_embeds`` the pipeline
receives, batched the way diffusers batches them (``[neg]·n + [pos]·n``), see :func:`face_tokens`.

Needs: **SDXL only** (SD1.5 is refused: :func:`check_family`); one photo with a detectable face; the IdentityNet
(2.5 GB fp16) and the adapter (1.7 GB) from ``InstantX/InstantID`` (or ``HEADSHOT_LAB_INSTANTID_WEIGHTS``) on top of
SDXL (~10–12 GB VRAM at 1024² in fp16). The embedding and the 5 keypoints come from the ``insightface`` face backend;
InstantID was trained on ``antelopev2`` (``glintr100.onnx`` ArcFace + SCRFD-10G): use that pack for real likeness.
Licence: the InstantID code is Apache-2.0 and the Hub card says apache-2.0, but its README says the released
checkpoints are for research purposes and insightface's face models (needed for the keypoints and the embedding)
for non-commercial research only.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from headshot_lab.errors import FaceNotFoundError, HeadshotLabError, ModelUnavailableError

INSTANTID_REPO = "InstantX/InstantID"
IDENTITYNET_SUBFOLDER = "ControlNetModel"
INSTANTID_ADAPTER = "ip-adapter.bin"
#: Face tokens of the InstantID Resampler (``num_queries``).
INSTANTID_TOKENS = 16
#: ``draw_kps`` colours per keypoint (RGB): left eye, right eye, nose, mouth left, mouth right.
KPS_COLORS = ((255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255))
#: The four limbs: each eye and mouth corner to the nose tip (``limbSeq`` of the reference).
KPS_LIMBS = ((0, 2), (1, 2), (3, 2), (4, 2))


class InstantIDError(HeadshotLabError):
    """InstantID cannot run with this setup (SD1.5 base, weights of another layout, no face)."""

    code = "instantid_error"


@dataclass
class InstantIDOptions:
    """InstantID (SDXL): IdentityNet ControlNet + face IP-Adapter from one photo.

    Attributes:
        weights: Hub id or folder holding ``ControlNetModel/`` and ``ip-adapter.bin``; ``None`` =
            ``HEADSHOT_LAB_INSTANTID_WEIGHTS``, else ``InstantX/InstantID``.
        controlnet_subfolder: IdentityNet's folder in ``weights``.
        weight_name: the adapter file in ``weights``/``subfolder``.
        subfolder: the adapter's folder in ``weights``.
        scale: IP-Adapter strength ``λ`` (the reference's ``ip_adapter_scale``, 0.8).
        controlnet_scale: IdentityNet strength (``controlnet_conditioning_scale``, 0.8).
        pose_image: a photo whose face sets the keypoint layout (default: the selfie); never written to a
            manifest (the keypoint map it yields is saved instead).
    """

    weights: str | None = None
    controlnet_subfolder: str = IDENTITYNET_SUBFOLDER
    weight_name: str = INSTANTID_ADAPTER
    subfolder: str = ""
    scale: float = 0.8
    controlnet_scale: float = 0.8
    pose_image: Any = None

    @property
    def source(self) -> str:
        """``weights`` resolved: the option, else ``HEADSHOT_LAB_INSTANTID_WEIGHTS``, else ``InstantX/InstantID``."""
        from headshot_lab.config import get_settings

        return str(self.weights or get_settings().instantid_weights or INSTANTID_REPO)


#: Manifest lines record every field of :class:`InstantIDOptions` but these.
INSTANTID_NOT_IN_MANIFEST = {"pose_image": "a photo; the keypoint map it yields is saved as its own PNG"}


def check_family(family: str, base: str = "the base model") -> None:
    """Refuse a base that is not SDXL-class (IdentityNet and the adapter are SDXL-shaped: 2048-wide tokens)."""
    if family != "sdxl":
        raise InstantIDError(
            f"InstantID works with SDXL-class base models only, and {base} is {family}.",
            fix="Use an SDXL base (e.g. stabilityai/stable-diffusion-xl-base-1.0), or IP-Adapter-FaceID on SD1.5.",
            code="instantid_needs_sdxl",
        )


# ------------------------------------------------------------------------------------------- keypoints
def draw_kps(size: tuple[int, int], kps: np.ndarray, *, stickwidth: int = 4, radius: int = 10) -> Any:
    """The InstantID keypoint map: ``PIL.Image`` of ``size = (width, height)``, black, with the four limbs of
    :data:`KPS_LIMBS` as filled ellipses (major axis = limb length, minor = ``stickwidth``, coloured by the limb's
    first point), all limbs dimmed to 60 %, then the five points as discs of ``radius`` in :data:`KPS_COLORS`.
    (The reference ``draw_kps``, on a canvas of the given size.)"""
    import cv2
    from PIL import Image

    points = np.asarray(kps, dtype=np.float64).reshape(5, 2)
    width, height = int(size[0]), int(size[1])
    canvas: Any = np.zeros((height, width, 3), dtype=np.float64)
    for first, second in KPS_LIMBS:
        (x0, y0), (x1, y1) = points[first], points[second]
        length = math.hypot(x0 - x1, y0 - y1)
        angle = math.degrees(math.atan2(y0 - y1, x0 - x1))
        centre = (int((x0 + x1) / 2), int((y0 + y1) / 2))
        polygon = np.asarray(cv2.ellipse2Poly(centre, (int(length / 2), stickwidth), int(angle), 0, 360, 1))
        canvas = cv2.fillConvexPoly(canvas.copy(), polygon, KPS_COLORS[first])
    canvas = (canvas * 0.6).astype(np.uint8)
    for index, (x, y) in enumerate(points):
        canvas = cv2.circle(canvas.copy(), (int(x), int(y)), radius, KPS_COLORS[index], -1)
    return Image.fromarray(canvas.astype(np.uint8))


def keypoint_map(kps: np.ndarray, source_size: tuple[int, int], width: int, height: int) -> Any:
    """The keypoint map at the output size: drawn on a canvas of the photo's size (stroke sizes as in the
    reference, scaled by ``max(W, H)/1024``), centre-cropped to ``width:height`` and resized (bilinear), so the face
    sits where it sat in the photo."""
    from PIL import Image

    from headshot_lab.control import fit_to_aspect

    scale = max(source_size) / 1024.0
    drawn = draw_kps(source_size, kps, stickwidth=max(1, round(4 * scale)), radius=max(1, round(10 * scale)))
    cropped = fit_to_aspect(np.asarray(drawn), width, height)
    return Image.fromarray(cropped).resize((width, height), Image.Resampling.BILINEAR)


def face_keypoints(image: Any, backend: str = "insightface") -> tuple[np.ndarray, tuple[int, int]]:
    """The largest face's 5 keypoints (``landmarks5``, image-left eye first) and the photo's ``(width, height)``,
    from the ``backend`` face backend (insightface: the pack's SCRFD detector, or dlib's 68 points reduced to 5).

    Raises:
        FaceNotFoundError: no face with landmarks in the photo.
    """
    from headshot_lab.faces import get_backend, largest_face
    from headshot_lab.io import as_rgb_array, load_rgb

    pixels = load_rgb(image, min_side=0) if isinstance(image, str | Path) else as_rgb_array(image)
    face = largest_face(get_backend(backend).detect(pixels))
    if face is None or face.landmarks5 is None:
        raise FaceNotFoundError("No face was found in the photo, so InstantID has no keypoints to follow.")
    return np.asarray(face.landmarks5, dtype=np.float32), (int(pixels.shape[1]), int(pixels.shape[0]))


# ------------------------------------------------------------------------------------------- IdentityNet
def _identitynet_class() -> Any:
    from diffusers import ControlNetModel

    base: Any = ControlNetModel

    class IdentityNet(base):  # type: ignore[misc,valid-type]
        """InstantID's ControlNet: its cross-attention reads the face tokens set by :meth:`face_tokens`, not the
        text embeddings the pipeline passes (a ``ControlNetModel``, so the pipeline's ``isinstance`` checks hold)."""

        _face_tokens: Any = None

        @contextmanager
        def face_tokens(self, tokens: Any) -> Iterator[None]:
            """Route ``tokens`` ``[B, 16, D]`` into every call made inside the block."""
            self._face_tokens = tokens
            try:
                yield
            finally:
                self._face_tokens = None

        def forward(self, sample: Any, timestep: Any, encoder_hidden_states: Any = None, *args: Any, **kwargs: Any):  # type: ignore[override]
            return super().forward(sample, timestep, self._tokens_for(encoder_hidden_states), *args, **kwargs)

        def _tokens_for(self, text: Any) -> Any:
            tokens = self._face_tokens
            if tokens is None:
                raise InstantIDError(
                    "IdentityNet was called without face tokens.",
                    fix="Run it through HeadshotGenerator (or inside IdentityNet.face_tokens(...)).",
                )
            if text is not None and tokens.shape[0] != text.shape[0]:
                if tokens.shape[0] == 2 * text.shape[0]:  # guess mode: the conditional half only
                    tokens = tokens.chunk(2)[1]
                else:
                    raise InstantIDError(
                        f"IdentityNet got {tokens.shape[0]} face-token rows for a batch of {text.shape[0]}."
                    )
            return tokens.to(device=self.device, dtype=self.dtype)

    return IdentityNet


_IDENTITYNET: Any = None


def identitynet_class() -> Any:
    """The :class:`IdentityNet` class (built on first use so that importing this module does not import diffusers)."""
    global _IDENTITYNET
    if _IDENTITYNET is None:
        _IDENTITYNET = _identitynet_class()
    return _IDENTITYNET


def _hub_kwargs(source: str) -> dict[str, Any]:
    from headshot_lab.models import offline

    return {"local_files_only": offline() or Path(source).expanduser().is_dir()}


def _unavailable(what: str, source: str, exc: BaseException) -> ModelUnavailableError:
    return ModelUnavailableError(
        f"The InstantID {what} could not be loaded from {source} ({type(exc).__name__}).",
        fix=(
            f"Pass a folder holding {IDENTITYNET_SUBFOLDER}/ and {INSTANTID_ADAPTER}, or a Hub id you can reach "
            f"(default {INSTANTID_REPO}); set HEADSHOT_LAB_INSTANTID_WEIGHTS to choose it everywhere. With "
            "HF_HUB_OFFLINE=1 it must already be in the Hub cache."
        ),
    )


def identitynet_config(options: InstantIDOptions) -> dict[str, Any]:
    """IdentityNet's ``config.json`` (no weights), for the fit check against the base UNet."""
    from diffusers import ControlNetModel

    source = options.source
    try:
        return dict(
            ControlNetModel.load_config(source, subfolder=options.controlnet_subfolder or None, **_hub_kwargs(source))
        )
    except (OSError, ValueError) as exc:
        raise _unavailable("IdentityNet ControlNet", source, exc) from None


def load_identitynet(options: InstantIDOptions, *, dtype: Any = None) -> Any:
    """IdentityNet (:func:`identitynet_class`) from ``options.source``/``controlnet_subfolder``.

    Raises:
        ModelUnavailableError: it cannot be found or downloaded.
    """
    source = options.source
    kwargs: dict[str, Any] = {"subfolder": options.controlnet_subfolder or None, **_hub_kwargs(source)}
    if dtype is not None:
        kwargs["dtype"] = dtype
    try:
        return identitynet_class().from_pretrained(source, **kwargs)
    except (OSError, ValueError) as exc:
        raise _unavailable("IdentityNet ControlNet", source, exc) from None


def load_adapter(pipe: Any, options: InstantIDOptions) -> None:
    """``pipe.load_ip_adapter`` of InstantID's ``ip-adapter.bin`` (no image encoder: ArcFace embeddings are passed
    as ``ip_adapter_image_embeds``), then ``set_ip_adapter_scale(scale)``.

    Raises:
        ModelUnavailableError: the file cannot be found or downloaded.
        InstantIDError: the file is not an InstantID adapter (its projection is not the 16-token Resampler).
    """
    from diffusers.models.embeddings import IPAdapterPlusImageProjection

    source = options.source
    try:
        pipe.load_ip_adapter(
            source,
            subfolder=options.subfolder,
            weight_name=options.weight_name,
            image_encoder_folder=None,
            **_hub_kwargs(source),
        )
    except (OSError, ValueError) as exc:
        raise _unavailable("IP-Adapter", source, exc) from None
    except RuntimeError as exc:
        raise InstantIDError(
            f"The InstantID adapter {options.weight_name} does not fit the base model: {exc}",
            fix="Use InstantX/InstantID's ip-adapter.bin with an SDXL base.",
        ) from None
    projection = pipe.unet.encoder_hid_proj.image_projection_layers[0]
    if not isinstance(projection, IPAdapterPlusImageProjection) or projection.latents.shape[1] != INSTANTID_TOKENS:
        pipe.unload_ip_adapter()
        raise InstantIDError(
            f"{options.weight_name} is not an InstantID adapter (its image projection is {type(projection).__name__}).",
            fix=f"Use {INSTANTID_ADAPTER} from {INSTANTID_REPO}.",
        )
    pipe.set_ip_adapter_scale(float(options.scale))


def face_tokens(pipe: Any, image_embeds: Sequence[Any], *, num_images: int, guidance: bool) -> Any:
    """The face tokens IdentityNet reads, ``[B, 16, D]``: the UNet's IP-Adapter projection of the embeddings the
    pipeline will use, batched by the pipeline's own ``prepare_ip_adapter_image_embeds`` (so row ``b`` is the face
    tokens of the UNet's row ``b``: ``[Resampler(0)]·n + [Resampler(e)]·n`` under guidance)."""
    import torch

    batched = pipe.prepare_ip_adapter_image_embeds(None, list(image_embeds), pipe.unet.device, num_images, guidance)
    with torch.inference_mode():
        projected = pipe.unet.encoder_hid_proj(batched)[0]
    return projected.reshape(projected.shape[0], -1, projected.shape[-1])
