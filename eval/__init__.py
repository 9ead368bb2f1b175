"""The audit suite: ``python -m eval --config eval/configs/NAME.yaml --output-path DIR``.

One YAML per audit (``eval/configs``), datasets by spec (:mod:`eval.datasets`), generators and
canaries from a registry (:mod:`eval.generators`), a runner that analyses each source once
(:mod:`eval.runner`), shard merging (:mod:`eval.merge`), power analysis (:mod:`eval.power`) and
plots (:mod:`eval.plots`). The metrics themselves live in :mod:`headshot_lab.audit`.
"""

from __future__ import annotations

__all__ = ["EvalConfig", "load_config", "merge_runs", "run_eval"]


def __getattr__(name: str) -> object:
    # Lazy: `python -m eval --help` must not import numpy, dlib or mediapipe.
    if name in {"EvalConfig", "load_config", "run_eval"}:
        from eval import runner

        return getattr(runner, name)
    if name == "merge_runs":
        from eval.merge import merge_runs

        return merge_runs
    raise AttributeError(name)
