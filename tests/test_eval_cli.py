"""``python -m eval``: usage, clear errors, no tracebacks for user errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "GLOG_minloglevel": "2"}


def _eval(*args: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "eval", *args], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=timeout
    )


def test_help_lists_the_options():
    done = _eval("--help")
    assert done.returncode == 0
    for option in (
        "--config",
        "--output-path",
        "--limit",
        "--seed",
        "--generator",
        "--dataset",
        "--num-proc",
        "--shard",
    ):
        assert option in done.stdout


def test_generators_are_listed():
    done = _eval("generators")
    assert done.returncode == 0
    assert {"null", "lighten", "identity_blend", "folder"} <= set(done.stdout.split())


def test_missing_config_is_a_clear_error(tmp_path):
    done = _eval("--config", "no-such-config", "--output-path", str(tmp_path))
    assert done.returncode == 1
    assert "error: Config no-such-config not found" in done.stderr and "offline" in done.stderr
    assert "Traceback" not in done.stderr


def test_bad_generator_spec_is_a_clear_error(tmp_path):
    done = _eval("--config", "offline", "--output-path", str(tmp_path), "--generator", "lighten:lots")
    assert done.returncode == 1 and "not a number" in done.stderr and "Traceback" not in done.stderr


def test_unreachable_hub_dataset_names_the_offline_alternatives(tmp_path):
    done = _eval("--config", "eval/configs/fairface.yaml", "--output-path", str(tmp_path), "--limit", "2")
    assert done.returncode == 1
    assert "HuggingFaceM4/FairFace" in done.stderr
    assert "imagefolder:PATH" in done.stderr and "eval/configs/offline.yaml" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "results.json").exists()


def test_merge_needs_audit_folders(tmp_path):
    done = _eval("merge", str(tmp_path), "--output-path", str(tmp_path / "out"))
    assert done.returncode == 1 and "not an audit output" in done.stderr


def test_every_config_file_loads():
    from eval.runner import load_config

    names = sorted(p.stem for p in (REPO / "eval" / "configs").glob("*.yaml"))
    assert {"offline", "fairface", "utkface", "lfw"} <= set(names)
    for name in names:
        config = load_config(REPO / "eval" / "configs" / f"{name}.yaml")
        assert config.generators and config.dataset
