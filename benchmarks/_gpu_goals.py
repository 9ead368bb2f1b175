"""GPU benchmark goals (issue 8) and the ``goals`` summary block of the report.

Each goal names the family, the section and the figure it is judged on. :func:`evaluate` fills in the
measured value and ``goal_met`` (``None`` when the figure was not measured in this run: section not
run, family not run, or the configuration failed). The goal fields are also written next to the
figure itself, and a ``reason`` says why a goal was not measured. The goals are for full-size models on an H100: ``comparable`` is true only for a full
run on CUDA; a ``--tiny`` CPU dry run fills every field but proves only the wiring.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Locator = Callable[[dict[str, Any]], tuple[dict[str, Any] | None, str]]


@dataclass(frozen=True)
class Goal:
    """``measured ≤ limit`` for the figure ``locate(family report)`` returns (``(holder dict, key)``)."""

    name: str
    family: str
    section: str
    what: str
    limit: float
    unit: str
    locate: Locator


def _row(section: str, config: str, key: str) -> Locator:
    def locate(family: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
        rows = family.get(section) or []
        return next((r for r in rows if r.get("config") == config), None), key

    return locate


def _field(section: str, key: str) -> Locator:
    def locate(family: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
        block = family.get(section)
        return (block if isinstance(block, dict) else None), key

    return locate


GOALS: tuple[Goal, ...] = (
    Goal(
        "sdxl_30_steps_bf16",
        "sdxl",
        "generation",
        "SDXL, 30 steps, bf16, 1024², batch 1: seconds per image",
        1.5,
        "s",
        _row("generation", "bf16", "per_image_s"),
    ),
    Goal(
        "sdxl_4_steps_bf16",
        "sdxl",
        "generation",
        "SDXL few-step path (LCM-LoRA + LCMScheduler), 4 steps, bf16, 1024², batch 1: seconds per image",
        0.25,
        "s",
        _row("generation", "few_step_bf16", "per_image_s"),
    ),
    *(
        Goal(
            f"{family}_batch_40_end_to_end",
            family,
            "batch",
            f"{family}: 40 headshots with identity LoRA + ControlNet, then filter and rank: total seconds "
            "(total_est_s, see the batch section)",
            90.0,
            "s",
            _field("batch", "total_est_s"),
        )
        for family in ("sdxl", "sd15")
    ),
    Goal(
        "sd15_lora_training",
        "sd15",
        "training",
        "SD1.5 identity LoRA on 15 photos with the product's defaults: full-run seconds",
        240.0,
        "s",
        _field("training", "full_run_s"),
    ),
    Goal(
        "sdxl_lora_training",
        "sdxl",
        "training",
        "SDXL identity LoRA on 15 photos with the product's defaults: full-run seconds",
        480.0,
        "s",
        _field("training", "full_run_s"),
    ),
    Goal(
        "sdxl_training_peak_vram",
        "sdxl",
        "training",
        "SDXL identity LoRA with prior preservation, class-image phase included: peak GPU memory reserved "
        "(16 GB = 14.9 GiB, so a 16 GB card works)",
        14.9,
        "GiB",
        _field("training", "peak_vram_reserved_gib"),
    ),
    Goal(
        "sdxl_offload_peak_vram",
        "sdxl",
        "offload",
        "SDXL 1024² with model CPU offload: peak GPU memory reserved (torch.cuda.max_memory_reserved)",
        12.0,
        "GiB",
        _row("offload", "offload_model", "peak_vram_reserved_gib"),
    ),
)


def evaluate(families: dict[str, dict[str, Any]], *, comparable: bool) -> dict[str, Any]:
    """The ``goals`` block; also writes ``goal``/``goal_met`` next to each measured figure."""
    rows = []
    for goal in GOALS:
        holder, key = goal.locate(families.get(goal.family, {}))
        value = holder.get(key) if holder is not None else None
        met = bool(value <= goal.limit) if isinstance(value, int | float) else None
        if holder is not None and value is not None:
            holder[f"{key}_goal"] = goal.limit
            holder[f"{key}_goal_met"] = met
        reason = None
        if met is None:
            error = (holder or {}).get("error")
            if error:
                reason = (
                    f"failed at {holder.get('failed_stage', goal.section)}: {error.get('code')}: {error.get('message')}"
                )
            else:
                reason = f"{goal.family} {goal.section} not run" if holder is None else f"no value for {key}"
                if holder is not None and "vram" in key:
                    reason += " (GPU memory is measured on CUDA only)"
        rows.append(
            {
                "goal": goal.name,
                "family": goal.family,
                "section": goal.section,
                "what": goal.what,
                "limit": goal.limit,
                "unit": goal.unit,
                "measured": value,
                "goal_met": met,
                "status": "not measured" if met is None else ("met" if met else "missed"),
                "reason": reason,
                "comparable": comparable,
            }
        )
    judged = [r["goal_met"] for r in rows if r["goal_met"] is not None]
    return {
        "comparable": comparable,
        "note": (
            "full-size models on a CUDA GPU: the figures can be judged against the goals"
            if comparable
            else "tiny models on CPU (--tiny): goal_met only shows the code path, not the product's speed"
        ),
        "measured": len(judged),
        "met": sum(judged),
        "all_measured_met": all(judged) if judged else None,
        "goals": rows,
    }
