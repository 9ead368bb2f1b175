"""The README's examples run as written (blocks marked ``<!-- readme-test: python|bash -->``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARKED_BLOCK = re.compile(r"<!-- readme-test: (python|bash) -->\s*```(?:python|bash)\n(.*?)```", re.S)


def marked_blocks() -> list[tuple[str, str]]:
    return MARKED_BLOCK.findall((ROOT / "README.md").read_text())


def test_readme_has_runnable_examples():
    kinds = [kind for kind, _ in marked_blocks()]
    assert kinds.count("python") >= 2 and kinds.count("bash") >= 1


@pytest.mark.parametrize("index", range(len(marked_blocks())))
def test_readme_block_runs_as_written(index, tmp_path, real_photos):
    kind, code = marked_blocks()[index]
    # Run from a copy-free scratch folder that looks like the repo root: outputs/ is relative.
    workdir = tmp_path / "repo"
    workdir.mkdir()
    (workdir / "outputs").mkdir()
    for name in (
        ".venv",
        "Makefile",
        "requirements.txt",
        "requirements-nodeps.txt",
        "constraints.txt",
        "pyproject.toml",
        "scripts",
        "headshot_lab",
    ):
        (workdir / name).symlink_to(ROOT / name)
    # `make X` must never re-install into the shared .venv from this scratch copy (that would point the editable
    # install at tmp_path): the install is `make setup`'s job, already done before the tests run.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "MAKEFLAGS": "-o .venv/.setup-stamp"}
    command = [sys.executable, "-c", code] if kind == "python" else ["bash", "-euo", "pipefail", "-c", code]
    result = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (
        f"README {kind} block {index} failed:\n{code}\n--- stderr ---\n{result.stderr[-4000:]}"
    )
    if kind == "python" and "measure_skin" in code:
        assert (
            "same person" in result.stdout
            and "ITA" in result.stdout
            and "compositeWithTrainedAlgorithmicMedia" in result.stdout
        )
