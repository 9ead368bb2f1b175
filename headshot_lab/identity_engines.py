"""The identity engines: how headshot-lab learns what a person looks like, and what each one needs.

One table (:data:`ENGINES`) is the single definition used by the command line (``generate --engine``), the app's
"How to learn your likeness" choice and the README's engine table (:func:`markdown_table`, checked against the
README by a test). An engine is *how the identity reaches the model*; the base family (SD1.5, SDXL, FLUX) is
*which model draws*; not every pair exists (:func:`engines_for`).

============  ===========================================================================================
``lora``      DreamBooth-LoRA trained on the person's photos (:mod:`headshot_lab.train`): the closest likeness,
              a training run per person; every family.
``faceid``    IP-Adapter-FaceID: the mean ArcFace embedding of the photos conditions the UNet; no training.
``faceid-plus`` IP-Adapter-FaceID-PlusV2: the embedding plus CLIP ViT-H features of the face crop (face
              structure, not only identity); no training; a little more memory.
``instantid`` InstantID (SDXL): an IdentityNet ControlNet fed the face embedding and the 5 face keypoints, plus
              an IP-Adapter; strong likeness from a single photo; no training.
============  ===========================================================================================

Memory figures are :func:`headshot_lab.testing.contracts.engine_vram_estimate` (generation: weights in bf16, one
image with classifier-free guidance at the native size, no offload; training:
:func:`~headshot_lab.testing.contracts.training_vram_estimate`), a lower bound without the CUDA context, not a GPU
measurement (``tests/test_engine_table.py`` checks the figures against the estimates).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from headshot_lab.errors import HeadshotLabError


@dataclass(frozen=True)
class IdentityEngine:
    """One way of carrying a person's identity into generation.

    Attributes:
        name: the value of ``--engine`` and of the app's choice.
        label: the app's words for visitors.
        families: the base families it works with.
        trains: it needs a training run (minutes on a GPU) before the first image.
        photos: how many photos it wants, in words.
        weights: what it loads besides the base model (Hub ids; the env var that overrides each is in the README).
        licence: the weights' terms, in words (the base model's own licence applies on top).
        zero_gpu: it fits ZeroGPU's short GPU calls (no training inside a request).
        memory: GPU memory, in words (the estimates of the module docstring).
    """

    name: str
    label: str
    families: tuple[str, ...]
    trains: bool
    photos: str
    weights: tuple[str, ...]
    licence: str
    zero_gpu: bool
    memory: str


FACEID_LICENCE = (
    "research only, not commercial (the IP-Adapter-FaceID weights were trained on InsightFace's "
    "non-commercial face models)"
)

ENGINES: dict[str, IdentityEngine] = {
    engine.name: engine
    for engine in (
        IdentityEngine(
            name="lora",
            label="Train on my photos (closest likeness; takes a while)",
            families=("sd15", "sdxl", "flux"),
            trains=True,
            photos="5–20 (works from 1; 10+ for the best likeness)",
            weights=(),
            licence="the base model's; the LoRA is yours",
            zero_gpu=False,
            memory=(
                "generation as the base alone: 2.2 GiB (SD1.5), 8.6 GiB (SDXL), 32.4 GiB (FLUX); "
                "training ≥ 2.5 / ≥ 8.6 / ≥ 36.1 GiB"
            ),
        ),
        IdentityEngine(
            name="faceid",
            label="Quick, no training (a little less like you)",
            families=("sd15", "sdxl"),
            trains=False,
            photos="1–20 (the embeddings are averaged)",
            weights=("h94/IP-Adapter-FaceID", "insightface buffalo_l (ArcFace)"),
            licence=FACEID_LICENCE,
            zero_gpu=True,
            memory="2.3 GiB (SD1.5), 9.3 GiB (SDXL)",
        ),
        IdentityEngine(
            name="faceid-plus",
            label="Quick, no training, closer face shape (needs more memory)",
            families=("sd15", "sdxl"),
            trains=False,
            photos="1–20 (the embeddings are averaged; the face crop of the first photo)",
            weights=(
                "h94/IP-Adapter-FaceID (plusv2 files)",
                "laion/CLIP-ViT-H-14-laion2B-s32B-b79K (image encoder)",
                "insightface buffalo_l (ArcFace)",
            ),
            licence=FACEID_LICENCE,
            zero_gpu=True,
            memory="3.5 GiB (SD1.5), 10.8 GiB (SDXL): + the CLIP image encoder",
        ),
        IdentityEngine(
            name="instantid",
            label="Quick, from one photo, strongest likeness without training (SDXL only)",
            families=("sdxl",),
            trains=False,
            photos="1 (the clearest frontal photo)",
            weights=("InstantX/InstantID (IdentityNet ControlNet + IP-Adapter)", "insightface antelopev2"),
            licence="InstantID weights Apache-2.0; the insightface face models they need are research only",
            zero_gpu=True,
            memory="11.7 GiB (SDXL): + IdentityNet and the adapter",
        ),
    )
}
ENGINE_NAMES = tuple(ENGINES)
TUNING_FREE = tuple(name for name, engine in ENGINES.items() if not engine.trains)


def get_engine(name: str) -> IdentityEngine:
    """The engine called ``name``, or a :class:`HeadshotLabError` naming the choices."""
    try:
        return ENGINES[name]
    except KeyError:
        raise HeadshotLabError(
            f"Unknown identity engine {name!r}.", fix=f"Use one of: {', '.join(ENGINE_NAMES)}.", code="bad_engine"
        ) from None


def engines_for(family: str, *, zero_gpu: bool = False) -> list[IdentityEngine]:
    """The engines that work with a base ``family`` (on ZeroGPU: those that fit its short GPU calls, first)."""
    found = [engine for engine in ENGINES.values() if family in engine.families]
    if zero_gpu:
        found.sort(key=lambda engine: not engine.zero_gpu)
    return found


def check_engine(name: str, family: str) -> IdentityEngine:
    """``name`` if it works with ``family``, else one plain message naming the engines that do."""
    engine = get_engine(name)
    if family not in engine.families:
        fitting = ", ".join(e.name for e in engines_for(family)) or "none"
        raise HeadshotLabError(
            f"The {name} engine does not work with this base model ({family}).",
            fix=f"With {family} use: {fitting}.",
            code="engine_family",
        )
    return engine


FAMILY_WORDS = {"sd15": "SD1.5", "sdxl": "SDXL", "flux": "FLUX"}


def markdown_table(engines: Iterable[IdentityEngine] | None = None) -> str:
    """The README's table of engines (one row each), from :data:`ENGINES`."""
    rows = [
        "| engine | base families | training | photos | loads besides the base | GPU memory | licence | ZeroGPU |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for engine in engines or ENGINES.values():
        families = ", ".join(FAMILY_WORDS.get(f, f) for f in engine.families)
        rows.append(
            f"| `{engine.name}` | {families} | {'yes' if engine.trains else 'no'} | {engine.photos} | "
            f"{'; '.join(engine.weights) or '—'} | {engine.memory} | {engine.licence} | "
            f"{'yes' if engine.zero_gpu else 'no (training)'} |"
        )
    return "\n".join(rows)


__all__ = [
    "ENGINES",
    "ENGINE_NAMES",
    "TUNING_FREE",
    "IdentityEngine",
    "check_engine",
    "engines_for",
    "get_engine",
    "markdown_table",
]
