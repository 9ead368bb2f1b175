"""Strip outputs from notebooks so that git holds code and prose only (outputs are made by running them).

    python scripts/strip_notebooks.py                 # strip every notebooks/*.ipynb in place
    python scripts/strip_notebooks.py --check         # exit 1 and name the notebooks that have outputs
    python scripts/strip_notebooks.py a.ipynb b.ipynb # only these

Removed: cell outputs, execution counts, and the per-cell/notebook metadata that changes on every run
(``execution``, ``collapsed``, ``scrolled``, widget state). The kernel spec and language info stay.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
VOLATILE_CELL_METADATA = ("execution", "collapsed", "scrolled", "ExecuteTime")
VOLATILE_NOTEBOOK_METADATA = ("widgets", "varInspector")


def has_outputs(notebook: object) -> bool:
    """Whether any code cell of ``notebook`` (an ``nbformat.NotebookNode``) has outputs or an execution count."""
    return any(
        cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None)
        for cell in notebook.cells  # type: ignore[attr-defined]
    )


def strip(notebook: object) -> bool:
    """Strip ``notebook`` in place; return whether anything changed."""
    changed = False
    for cell in notebook.cells:  # type: ignore[attr-defined]
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None):
            cell.outputs, cell.execution_count = [], None
            changed = True
        for key in VOLATILE_CELL_METADATA:
            if key in cell.metadata:
                del cell.metadata[key]
                changed = True
    for key in VOLATILE_NOTEBOOK_METADATA:
        if key in notebook.metadata:  # type: ignore[attr-defined]
            del notebook.metadata[key]  # type: ignore[attr-defined]
            changed = True
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    import nbformat

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: notebooks/*.ipynb)")
    parser.add_argument("--check", action="store_true", help="only report notebooks with outputs (exit 1 if any)")
    args = parser.parse_args(argv)
    paths = args.paths or sorted(NOTEBOOKS.glob("*.ipynb"))
    dirty = []
    for path in paths:
        notebook = nbformat.read(path, as_version=4)
        if args.check:
            if has_outputs(notebook):
                dirty.append(path)
        elif strip(notebook):
            nbformat.write(notebook, path)
            print(f"stripped {path}")
    if dirty:
        print("notebooks with outputs (run scripts/strip_notebooks.py):", *map(str, dirty), sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
