"""IP-Adapter-FaceID **Plus / PlusV2**: the ArcFace embedding plus CLIP ViT-H features of the aligned face crop.

Plain FaceID projects the 512-D ArcFace embedding ``e`` to 4 tokens, ``T = LN(W₂·GELU(W₁·e))``. Plus adds a
perceiver resampler that lets those tokens read the CLIP ViT-H/14 image encoder's **penultimate hidden states**
``C ∈ ℝ^{257×1280}`` of the face crop (diffusers' ``IPAdapterFaceIDPlusImageProjection``):

``O = LN_out(P_out(Resampler(T, P_in·C)))``, and for **PlusV2** (``shortcut=True``) ``O = T + s·O`` with the
shortcut scale ``s`` (1.0 in the model card's examples).

diffusers 0.42.1 loads the weights (``load_ip_adapter(..., image_encoder_folder=None)``: the file's
``image_proj.perceiver_resampler.*`` keys select that projection) but leaves ``C`` to the caller: the projection
reads ``self.clip_embeds`` (shape ``[B, 1, 257, 1280]``, one row per row of the id embeddings it is given). This
module supplies it:

* :func:`load_clip_image_encoder` — ``CLIPVisionModelWithProjection`` by Hub id or folder
  (default ``laion/CLIP-ViT-H-14-laion2B-s32B-b79K``, or ``HEADSHOT_LAB_CLIP_IMAGE_ENCODER``);
* :func:`face_crop` — the face aligned to the ArcFace template at 224 px (insightface's
  ``norm_crop(image, kps, 224)``, as in the IP-Adapter-FaceID-Plus reference);
* :func:`clip_face_features` — ``[C(0), C(crop)]``: the unconditional features of an all-zero pixel tensor (the
  reference's ``image_encoder(torch.zeros_like(clip_image))``) and the face's;
* :class:`FaceClipHook` — a forward pre-hook on the projection that sets ``clip_embeds`` for every call from the
  rows of id embeddings it receives: a row that is all zeros is the classifier-free-guidance *unconditional* row
  (``[zeros, e]`` is how the generator, the hires fix and the face-detail pass build them, and how diffusers
  batches them: ``[neg]·n + [pos]·n``), so it gets ``C(0)``, every other row ``C(crop)``. One rule covers any batch
  size, with or without guidance, so no caller has to know the projection needs it.

Needs: one photo (a selfie with a detectable face) and, on top of SD1.5/SDXL + FaceID, the CLIP ViT-H image
encoder (632 M parameters: ~1.3 GB in fp16). Licence: the ``h94/IP-Adapter-FaceID`` weights are for
non-commercial research only (their model card), as are insightface's ArcFace packs; the CLIP encoder is MIT.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from headshot_lab.errors import HeadshotLabError, ModelUnavailableError

CLIP_VIT_H = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"
ENV_CLIP_ENCODER = "HEADSHOT_LAB_CLIP_IMAGE_ENCODER"
#: ``faceid`` (ArcFace only), ``plus`` (+ CLIP features), ``plusv2`` (+ the shortcut ``O = T + s·O``).
FACEID_VARIANTS = ("auto", "faceid", "plus", "plusv2")
#: Side of the aligned face crop fed to the CLIP image encoder (the reference's ``norm_crop(..., 224)``).
CLIP_CROP_SIZE = 224


class FaceIDPlusError(HeadshotLabError):
    """A FaceID-Plus setting that cannot work (weights of another variant, no face crop, …)."""

    code = "faceid_plus_error"


def resolve_variant(requested: str, weight_name: str, projection: Any) -> str:
    """The variant actually loaded: ``requested`` unless ``auto``; else ``plusv2`` / ``plus`` when the loaded
    projection is the Plus one (``plusv2`` when the file name says so; the key layout of v1 and v2 is the same),
    ``faceid`` otherwise.

    Raises:
        FaceIDPlusError: ``requested`` disagrees with the weights' layout.
    """
    from diffusers.models.embeddings import IPAdapterFaceIDPlusImageProjection

    if requested not in FACEID_VARIANTS:
        raise FaceIDPlusError(
            f"Unknown FaceID variant {requested!r}.", fix=f"Use one of {', '.join(FACEID_VARIANTS)}.", code="bad_option"
        )
    is_plus = isinstance(projection, IPAdapterFaceIDPlusImageProjection)
    if requested == "auto":
        if not is_plus:
            return "faceid"
        return "plusv2" if "plusv2" in weight_name.lower().replace("-", "").replace("_", "") else "plus"
    if (requested != "faceid") != is_plus:
        layout = "FaceID-Plus" if is_plus else "plain FaceID"
        raise FaceIDPlusError(
            f"The IP-Adapter weights {weight_name} have the {layout} layout, but variant {requested!r} was asked for.",
            fix="Leave the variant on 'auto', or pass the weights of the variant you want.",
        )
    return requested


def resolve_clip_encoder(source: str | None = None) -> str:
    """The CLIP image encoder to load: ``source``, else ``HEADSHOT_LAB_CLIP_IMAGE_ENCODER``, else :data:`CLIP_VIT_H`."""
    from headshot_lab.config import get_settings

    return str(source or get_settings().clip_image_encoder or CLIP_VIT_H)


def load_clip_image_encoder(source: str | os.PathLike[str], *, dtype: Any = None) -> Any:
    """``CLIPVisionModelWithProjection.from_pretrained(source)`` (Hub id or folder) with one clear error.

    Raises:
        ModelUnavailableError: the encoder cannot be found or downloaded (names the env var to set).
    """
    from transformers import CLIPVisionModelWithProjection

    from headshot_lab.models import offline

    text = str(source)
    kwargs: dict[str, Any] = {"local_files_only": offline() or Path(text).expanduser().is_dir()}
    if dtype is not None:
        kwargs["dtype"] = dtype
    try:
        encoder = CLIPVisionModelWithProjection.from_pretrained(text, **kwargs)
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(
            f"The CLIP image encoder {text} for IP-Adapter-FaceID-Plus could not be loaded ({type(exc).__name__}).",
            fix=(
                f"Pass a local CLIPVisionModelWithProjection folder or a Hub id you can reach (default {CLIP_VIT_H}); "
                f"set {ENV_CLIP_ENCODER} to choose it everywhere. With HF_HUB_OFFLINE=1 it must be in the Hub cache."
            ),
        ) from None
    return encoder.eval()


def face_crop(pixels: np.ndarray, landmarks5: np.ndarray, size: int = CLIP_CROP_SIZE) -> np.ndarray:
    """The face aligned to the ArcFace template at ``size`` px (``size % 112 == 0``: template · size/112, exactly
    insightface's ``norm_crop``), ``uint8`` RGB."""
    from headshot_lab.faces.align import align_face

    if landmarks5 is None:
        raise FaceIDPlusError(
            "The face has no 5-point landmarks, which the FaceID-Plus face crop needs.",
            fix="Use the insightface face backend (its detector, or dlib's 68 points reduced to 5).",
        )
    return align_face(np.asarray(pixels), np.asarray(landmarks5), size=size)


def clip_pixel_values(encoder: Any, crop: np.ndarray) -> Any:
    """CLIP preprocessing of the crop at the encoder's input size (resize, centre crop, CLIP mean/std): ``[1,3,S,S]``."""
    from transformers import CLIPImageProcessor

    side = int(encoder.config.image_size)
    processor = CLIPImageProcessor(size={"shortest_edge": side}, crop_size={"height": side, "width": side})
    return processor(images=np.asarray(crop), return_tensors="pt").pixel_values


def clip_face_features(encoder: Any, crop: np.ndarray) -> np.ndarray:
    """``[C(0), C(crop)]`` as ``float32`` ``[2, T, H]``: the penultimate hidden states (``hidden_states[-2]``) of
    an all-zero pixel tensor (the unconditional row) and of the face crop (``T = (S/patch)² + 1`` tokens)."""
    import torch

    parameter = next(encoder.parameters())
    pixels = clip_pixel_values(encoder, crop).to(parameter.device, dtype=parameter.dtype)
    with torch.inference_mode():
        batch = torch.cat([torch.zeros_like(pixels), pixels])
        hidden = encoder(batch, output_hidden_states=True).hidden_states[-2]
    return hidden.float().cpu().numpy()


@dataclass
class FaceClipHook:
    """Sets ``projection.clip_embeds`` before each forward from the id-embedding rows (see the module docstring).

    ``features``: ``[2, T, H]`` (``C(0)``, ``C(crop)``); ``shortcut`` (PlusV2) and ``shortcut_scale`` are set on
    the projection once.
    """

    projection: Any
    shortcut: bool = False
    shortcut_scale: float = 1.0

    def __post_init__(self) -> None:
        self.features: Any = None
        self.projection.shortcut = bool(self.shortcut)
        self.projection.shortcut_scale = float(self.shortcut_scale)
        self._handle = self.projection.register_forward_pre_hook(self._before_forward)

    def set(self, features: np.ndarray | Any) -> None:
        """Use these ``[2, T, H]`` features for the following calls."""
        import torch

        tensor = torch.as_tensor(np.asarray(features, dtype=np.float32))
        if tensor.ndim != 3 or tensor.shape[0] != 2:
            raise FaceIDPlusError(f"FaceID-Plus CLIP features must have shape [2, T, H], got {tuple(tensor.shape)}.")
        self.features = tensor

    def rows(self, id_embeds: Any) -> Any:
        """``clip_embeds`` for ``id_embeds`` ``[B, …]``: ``[B, 1, T, H]`` with row ``b`` = ``C(0)`` if
        ``id_embeds[b] ≡ 0`` else ``C(crop)``."""
        import torch

        if self.features is None:
            raise FaceIDPlusError(
                "FaceID-Plus was called without the CLIP features of the face.",
                fix="Generate with a selfie (the face crop is encoded once per call).",
            )
        weight = self.projection.proj_in.weight
        features = self.features.to(weight.device, dtype=weight.dtype)
        batch = id_embeds.shape[0]
        unconditional = (id_embeds.reshape(batch, -1) == 0).all(dim=1).to(weight.device)
        chosen = torch.where(unconditional[:, None, None], features[0:1], features[1:2])
        return chosen.unsqueeze(1)

    def _before_forward(self, module: Any, args: tuple[Any, ...]) -> None:
        module.clip_embeds = self.rows(args[0])

    def remove(self) -> None:
        self._handle.remove()
        self.projection.clip_embeds = None
