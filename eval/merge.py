"""Merge shards: ``python -m eval merge DIR1 DIR2 ... --output-path DIR``.

Each shard directory holds ``results.json`` (for its config), ``samples.jsonl`` and ``features.npz``.
The merge concatenates the per-sample records and feature rows and recomputes every aggregate
(bootstrap CIs, the two-sample test, flags, power) on the union, so a sharded audit gives the same
kind of ``results.json`` as a single run. Shards must come from the same config (name, dataset,
generators) and must not overlap. Identity metrics are computed inside each shard; that is exact
because ``--shard`` keeps every photo of one person in the same shard.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eval.runner import EvalConfig, aggregate, read_samples, write_outputs, write_samples
from headshot_lab.errors import HeadshotLabError

#: Config fields that must agree between shards.
MUST_MATCH = ("name", "dataset", "dataset_options", "generators", "group_by", "generator_options")


def _load_shard(directory: Path) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    results_file = directory / "results.json"
    if not results_file.is_file() or not (directory / "samples.jsonl").is_file():
        raise HeadshotLabError(
            f"{directory}: not an audit output (results.json and samples.jsonl are needed).",
            fix="Pass the --output-path folders of `python -m eval` runs.",
            code="bad_shard",
        )
    results = json.loads(results_file.read_text(encoding="utf-8"))
    records, _, features = read_samples(directory)
    return results, records, list(results.get("skipped") or []), features


def merge_features(parts: Sequence[dict[str, Any]], specs: Sequence[str]) -> dict[str, Any]:
    """Concatenate ``features.npz`` contents (rows keep their ids)."""

    def stack(key: str) -> np.ndarray:
        arrays = [p[key] for p in parts if key in p and p[key].size]
        return np.vstack(arrays) if arrays else np.zeros((0, 0))

    def ids(key: str) -> np.ndarray:
        return (
            np.concatenate([np.asarray(p.get(key, np.zeros(0, dtype=str)), dtype=str) for p in parts])
            if parts
            else np.zeros(0, dtype=str)
        )

    merged: dict[str, Any] = {
        "source_ids": ids("source_ids"),
        "source": stack("source"),
        "specs": np.asarray(list(specs), dtype=str),
    }
    for k, _ in enumerate(specs):
        merged[f"ids_{k}"] = ids(f"ids_{k}")
        merged[f"out_{k}"] = stack(f"out_{k}")
    return merged


def merge_runs(directories: Sequence[str | Path], output_path: str | Path, *, progress: bool = True) -> dict[str, Any]:
    """Merge shard outputs into ``output_path`` (see the module docstring); returns the merged results."""
    if len(directories) < 1:
        raise HeadshotLabError("Name at least one shard folder to merge.", code="bad_option")
    shards = [_load_shard(Path(d)) for d in directories]
    base = shards[0][0]["config"]
    for directory, (results, *_rest) in zip(directories, shards, strict=True):
        for key in MUST_MATCH:
            if results["config"].get(key) != base.get(key):
                raise HeadshotLabError(
                    f"{directory}: its config differs in {key!r} from {directories[0]}; only shards of one audit merge.",
                    code="shard_mismatch",
                )
    seen: set[tuple[str, str]] = set()
    records: list[dict[str, Any]] = []
    for directory, (_, shard_records, _, _) in zip(directories, shards, strict=True):
        for record in shard_records:
            key = (record["id"], record["generator"])
            if key in seen:
                raise HeadshotLabError(
                    f"{directory}: sample {record['id']} ({record['generator']}) is in two shards; shards must not overlap.",
                    code="shard_overlap",
                )
            seen.add(key)
            records.append(record)
    known = {f.name for f in dataclasses.fields(EvalConfig)}
    config = EvalConfig(**{k: v for k, v in base.items() if k in known})
    config.shard = None
    features = merge_features([s[3] for s in shards], config.generators)
    skipped = [item for s in shards for item in s[2]]
    notes = list(dict.fromkeys(note for s in shards for note in s[0].get("notes") or []))
    payload = aggregate(
        records,
        features,
        config,
        skipped=skipped,
        n_sources=sum(int(s[0].get("n_sources") or 0) for s in shards),
        notes=notes,
        progress=progress,
    )
    payload["shards"] = [
        f"{s[0].get('shard') or '?'} ({Path(d).name})" for d, s in zip(directories, shards, strict=True)
    ]
    directory = Path(output_path)
    write_samples(directory, records, skipped, features)
    write_outputs(directory, payload, plots=config.plots)
    return payload
