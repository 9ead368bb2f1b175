"""Sharded runs merge into the same result as one run (eval.merge)."""

from __future__ import annotations

import json

import pytest

from eval.merge import merge_runs
from eval.runner import EvalConfig, run_eval
from headshot_lab.errors import HeadshotLabError


def _config(**changes) -> EvalConfig:
    base = {
        "name": "merge",
        "dataset": "offline",
        "dataset_options": {"faces": ["obama", "group_0", "group_1", "group_2", "group_3"], "variants_per_face": 0},
        "generators": ["null", "lighten:3"],
        "n_resamples": 300,
        "plots": False,
    }
    base.update(changes)
    return EvalConfig(**base)


@pytest.fixture(scope="module")
def runs(real_photos, tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    whole = run_eval(_config(), root / "whole", progress=False)
    for index in range(2):
        run_eval(_config(shard=f"{index}/2"), root / f"shard{index}", progress=False)
    merged = merge_runs([root / "shard0", root / "shard1"], root / "merged", progress=False)
    return root, whole, merged


def test_shards_split_the_sources(runs):
    root, whole, _ = runs
    counts = [json.loads((root / f"shard{i}" / "results.json").read_text())["n_sources"] for i in range(2)]
    assert sum(counts) == whole["n_sources"] == 5
    assert all(count > 0 for count in counts)


def test_merged_metrics_equal_the_single_run(runs):
    root, whole, merged = runs
    assert merged["n_sources"] == whole["n_sources"]
    for before, after in zip(whole["runs"], merged["runs"], strict=True):
        assert before["generator"] == after["generator"] and before["n"] == after["n"]
        for name in ("skin_delta_ita", "identity_cosine", "identity_delta", "texture_ratio"):
            assert after["metrics"][name]["overall"] == before["metrics"][name]["overall"]
            assert after["metrics"][name]["by_group"] == before["metrics"][name]["by_group"]
        assert after["flags"] == before["flags"]
        assert (
            after["metrics"]["detectability_auroc"]["overall"]["n"]
            == before["metrics"]["detectability_auroc"]["overall"]["n"]
        )
    lines = (root / "merged" / "samples.jsonl").read_text().splitlines()
    assert len(lines) == 5 * 2
    assert len(merged["shards"]) == 2
    assert "Merged from shards" in (root / "merged" / "report.md").read_text()


def test_overlapping_or_foreign_shards_are_refused(runs, tmp_path):
    root, _, _ = runs
    with pytest.raises(HeadshotLabError, match="two shards"):
        merge_runs([root / "shard0", root / "shard0"], tmp_path / "x", progress=False)
    foreign = json.loads((root / "shard1" / "results.json").read_text())
    foreign["config"]["generators"] = ["null"]
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "results.json").write_text(json.dumps(foreign))
    (tmp_path / "foreign" / "samples.jsonl").write_text("")
    with pytest.raises(HeadshotLabError, match="generators"):
        merge_runs([root / "shard0", tmp_path / "foreign"], tmp_path / "y", progress=False)
    with pytest.raises(HeadshotLabError, match="not an audit output"):
        merge_runs([tmp_path], tmp_path / "z", progress=False)
