"""The notebooks: committed without outputs, and each one runs top to bottom, offline, on the tiny models.

Executed with nbclient on a ``python3`` kernel (ipykernel from this venv), with ``HF_HUB_OFFLINE=1``, a
temporary ``HEADSHOT_LAB_DATA_DIR``, a temporary working directory and matplotlib's inline backend (the
figures must appear as outputs). The notebooks check their own
claims with ``assert`` cells (a canary must raise its flag, the null generator none, a manifest line must
regenerate its image bit for bit), so a notebook that runs is a notebook whose statements held.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
NAMES = ("01_quickstart", "02_fairness_audit", "03_identity_drift")
#: Text each notebook must print or show when it ran (on top of its own asserts).
EXPECTED = {
    "01_quickstart": ["regenerated bit for bit: True", "different_person", "retouched: AI-edited photo"],
    "02_fairness_audit": ["skin_lightening", "skin_darkening", "delta_ita_by_group.png"],
    "03_identity_drift": ["face found: False", "identity_blend:0.5"],
}


def strip_module():
    spec = importlib.util.spec_from_file_location("strip_notebooks", ROOT / "scripts" / "strip_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def read(name: str):
    import nbformat

    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)


def test_the_three_notebooks_exist_and_are_valid():
    import nbformat

    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == sorted(NAMES)
    for name in NAMES:
        notebook = read(name)
        nbformat.validate(notebook)
        assert notebook.metadata.kernelspec.name == "python3"
        assert notebook.cells[0].cell_type == "markdown" and notebook.cells[0].source.startswith("# ")


def test_committed_notebooks_have_no_outputs():
    strip = strip_module()
    for name in NAMES:
        notebook = read(name)
        assert not strip.has_outputs(notebook), f"{name} has outputs: run scripts/strip_notebooks.py"
        for cell in notebook.cells:
            assert "execution" not in cell.metadata
    assert strip.main(["--check"]) == 0


def test_strip_removes_outputs_and_run_metadata(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    strip = strip_module()
    cell = new_code_cell("print(1)", execution_count=3, outputs=[new_output("stream", name="stdout", text="1\n")])
    cell.metadata["execution"] = {"iopub.status.busy": "2026-01-01T00:00:00Z"}
    path = tmp_path / "dirty.ipynb"
    nbformat.write(new_notebook(cells=[cell], metadata={"widgets": {"state": {}}}), path)
    assert strip.main(["--check", str(path)]) == 1
    assert strip.main([str(path)]) == 0
    clean = nbformat.read(path, as_version=4)
    assert not strip.has_outputs(clean)
    assert clean.cells[0].source == "print(1)" and "execution" not in clean.cells[0].metadata
    assert "widgets" not in clean.metadata
    assert strip.main(["--check", str(path)]) == 0


def outputs_text(notebook) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                parts.append(output.text)
            for mime in ("text/plain", "text/markdown"):
                parts.append(str(output.get("data", {}).get(mime, "")))
    return "\n".join(parts)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_offline(name, real_photos, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # The repo root on the kernel's path: ``eval`` is imported from the checkout, whatever the working directory.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("HEADSHOT_LAB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("HEADSHOT_LAB_BASE_MODEL", raising=False)
    notebook = read(name)
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError (with the cell and traceback) when a cell fails
    text = outputs_text(notebook)
    for expected in EXPECTED[name]:
        assert expected in text, f"{name}: {expected!r} not in the outputs"
    images = [o for c in notebook.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert images, f"{name} showed no figure"
