"""The layer contracts of ``make lint`` (import-linter) hold, and fail on a planted forbidden import."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(not LINT_IMPORTS.exists(), reason="import-linter is installed by `make setup`")


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=root, capture_output=True, text=True, timeout=300, check=False
    )


def _copy_tree(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("headshot_lab", "eval"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


def test_contracts_hold_on_the_repo(tmp_path):
    result = _lint_imports(_copy_tree(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "planted", "contract"),
    [
        ("headshot_lab/io.py", "import eval.runner", "never imports the audit suite"),
        ("headshot_lab/analysis.py", "import headshot_lab.select", "Layers"),
        ("headshot_lab/audit/fairness.py", "import headshot_lab.ui.state", "Layers"),
    ],
)
def test_a_planted_forbidden_import_breaks_the_contract(tmp_path, module, planted, contract):
    root = _copy_tree(tmp_path)
    with (root / module).open("a", encoding="utf-8") as handle:
        handle.write(f"\n{planted}  # planted by the test\n")
    result = _lint_imports(root)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout and contract in result.stdout.split("Broken contracts")[-1]
