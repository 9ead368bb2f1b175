"""The README's examples run as written (blocks marked ``<!-- readme-test: python|bash -->``)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The files the Makefile's setup stamp depends on (``$(STAMP): ...``).
SETUP_PREREQUISITES = (
    "requirements.txt",
    "requirements-nodeps.txt",
    "constraints.txt",
    "pyproject.toml",
    "scripts/install_system_deps.sh",
)
MARKED_BLOCK = re.compile(r"<!-- readme-test: (python|bash) -->\s*```(?:python|bash)\n(.*?)```", re.S)


def marked_blocks() -> list[tuple[str, str]]:
    return MARKED_BLOCK.findall((ROOT / "README.md").read_text())


def test_setup_prerequisites_are_the_makefiles():
    rule = re.search(r"^\$\(STAMP\):(.*)$", (ROOT / "Makefile").read_text(), re.M)
    assert rule and rule.group(1).split() == list(SETUP_PREREQUISITES)


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
    for name in (".venv", "Makefile", "headshot_lab"):
        (workdir / name).symlink_to(ROOT / name)
    (workdir / "scripts").mkdir()
    for path in (ROOT / "scripts").iterdir():
        (workdir / "scripts" / path.name).symlink_to(path)
    # `make X` must never re-install into the shared .venv from this scratch copy (that would point the editable
    # install, and the console scripts' first line, at tmp_path): the install is `make setup`'s job, done before the
    # tests run. So the setup stamp's prerequisites are copies here, dated before the stamp (GNU make's `-o` cannot
    # be passed through MAKEFLAGS, and it would follow a symlink to a file edited since the last setup).
    stamp = ROOT / ".venv" / ".setup-stamp"
    before = (stamp.stat().st_mtime if stamp.exists() else 0) - 1
    for name in SETUP_PREREQUISITES:
        target = workdir / name
        if target.is_symlink():
            target.unlink()
        shutil.copyfile(ROOT / name, target)
        os.utime(target, (before, before))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
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
