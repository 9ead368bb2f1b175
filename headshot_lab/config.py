"""Settings, read from ``HEADSHOT_LAB_*`` environment variables.

===============================  ===========================================  =====================
variable                         meaning                                      default
===============================  ===========================================  =====================
``HEADSHOT_LAB_DATA_DIR``        where sessions, caches and outputs live      ``~/.cache/headshot-lab``
``HEADSHOT_LAB_TTL_HOURS``       hours before a session is purged (0–720)     ``24``
``HEADSHOT_LAB_MAX_PIXELS``      decompression-bomb cap, in pixels            ``40_000_000``
``HEADSHOT_LAB_MAX_JPEG_SCANS``  most scans of a JPEG opened (scan bombs)    ``32``
``HEADSHOT_LAB_MIN_SIDE``        smallest accepted photo side, in pixels      ``256``
``HEADSHOT_LAB_FACE_BACKEND``    default face backend                         ``dlib``
``HEADSHOT_LAB_INSIGHTFACE_DIR`` folder with an insightface model pack        unset
``HEADSHOT_LAB_BASE_MODEL``      diffusers base model (Hub id or local path)  unset
``HEADSHOT_LAB_DEVICE``          ``cpu``, ``cuda``, ``cuda:N``, ``mps``, ``auto``  ``auto``
``HEADSHOT_LAB_FACEID_WEIGHTS``  IP-Adapter-FaceID weights (Hub id or folder)  ``h94/IP-Adapter-FaceID``
``HEADSHOT_LAB_FACEID_WEIGHT_NAME`` the weights file in that repo/folder       the family's default
``HEADSHOT_LAB_FEW_STEP_LORA``   LCM-LoRA of the quick preview (id/path)      the family's LCM-LoRA
``HEADSHOT_LAB_CLIP_IMAGE_ENCODER`` CLIP ViT-H image encoder of FaceID-Plus   ``laion/CLIP-ViT-H-14-laion2B-s32B-b79K``
``HEADSHOT_LAB_INSTANTID_WEIGHTS`` InstantID weights (Hub id or folder)       ``InstantX/InstantID``
===============================  ===========================================  =====================
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar, overload

OptionsT = TypeVar("OptionsT")

ENV_PREFIX = "HEADSHOT_LAB_"


@overload
def _env(name: str) -> str | None: ...
@overload
def _env(name: str, default: str) -> str: ...
def _env(name: str, default: str | None = None) -> str | None:
    """``HEADSHOT_LAB_<name>`` from the environment (an empty value counts as unset), else ``default``."""
    value = os.environ.get(ENV_PREFIX + name)
    return value if value not in (None, "") else default


@dataclass(frozen=True)
class Settings:
    """All run-time settings. Build with :func:`get_settings`, override with ``replace``."""

    data_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "headshot-lab")
    ttl_hours: float = 24.0
    max_pixels: int = 40_000_000
    max_jpeg_scans: int = 32
    min_side: int = 256
    face_backend: str = "dlib"
    insightface_dir: Path | None = None
    base_model: str | None = None
    device: str = "auto"
    faceid_weights: str | None = None
    faceid_weight_name: str | None = None
    few_step_lora: str | None = None
    clip_image_encoder: str | None = None
    instantid_weights: str | None = None
    #: The tuning-free engines a ZeroGPU Space builds at start-up (only those run there); comma-separated in
    #: ``HEADSHOT_LAB_ZERO_GPU_ENGINES`` (each one's weights stay in memory: choose what the Space can hold).
    zero_gpu_engines: tuple[str, ...] = ("faceid",)

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def get_settings() -> Settings:
    """Read the settings from the environment (called fresh each time; cheap)."""
    defaults = Settings()
    insightface_dir = _env("INSIGHTFACE_DIR")
    return Settings(
        data_dir=Path(_env("DATA_DIR", str(defaults.data_dir))).expanduser(),
        ttl_hours=float(_env("TTL_HOURS", str(defaults.ttl_hours))),
        max_pixels=int(_env("MAX_PIXELS", str(defaults.max_pixels))),
        max_jpeg_scans=int(_env("MAX_JPEG_SCANS", str(defaults.max_jpeg_scans))),
        min_side=int(_env("MIN_SIDE", str(defaults.min_side))),
        face_backend=_env("FACE_BACKEND", defaults.face_backend),
        insightface_dir=Path(insightface_dir).expanduser() if insightface_dir else None,
        base_model=_env("BASE_MODEL"),
        device=_env("DEVICE", defaults.device),
        faceid_weights=_env("FACEID_WEIGHTS"),
        faceid_weight_name=_env("FACEID_WEIGHT_NAME"),
        few_step_lora=_env("FEW_STEP_LORA"),
        clip_image_encoder=_env("CLIP_IMAGE_ENCODER"),
        instantid_weights=_env("INSTANTID_WEIGHTS"),
        zero_gpu_engines=tuple(
            part.strip()
            for part in _env("ZERO_GPU_ENGINES", ",".join(defaults.zero_gpu_engines)).split(",")
            if part.strip()
        ),
    )


def resolve_options(cls: type[OptionsT], value: OptionsT | Mapping[str, Any] | None, *, what: str) -> OptionsT:
    """``None`` → ``cls()``; an instance → itself; a mapping → ``cls()`` with those fields replaced.

    Unknown field names raise one :class:`~headshot_lab.errors.HeadshotLabError` (code ``bad_option``)
    that names them, e.g. ``Unknown capture threshold(s): max_rol.``
    """
    from headshot_lab.errors import HeadshotLabError

    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    unknown = set(value) - {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    if unknown:
        raise HeadshotLabError(
            f"Unknown {what}(s): {', '.join(sorted(unknown))}.",
            fix=f"See {cls.__module__}.{cls.__qualname__} for the names.",
            code="bad_option",
        )
    return replace(cls(), **dict(value))  # type: ignore[type-var,arg-type]
