"""``benchmarks/team_roster.py`` runs end to end in a tiny mode and writes the documented JSON (no timing thresholds)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_team_roster_benchmark_tiny(real_photos, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "team_roster.py"),
            "--people",
            "2",
            "--engines",
            "local-1,local-2",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    payload = json.loads((tmp_path / "team_roster.json").read_text())
    assert payload["benchmark"] == "team_roster" and payload["people"] == 2 and payload["same_states"] is True
    assert set(payload["runs"]) == {"local-1", "local-2"} and payload["baseline"] == "local-1"
    for run in payload["runs"].values():
        assert run["people"] == 2 and run["done"] + run["skipped"] + run["failed"] == 2
        assert run["wall_s"] > 0 and run["peak_rss_mb"] > 50 and run["people_per_s"] > 0
    assert payload["runs"]["local-1"]["speedup_vs_baseline"] == 1.0
