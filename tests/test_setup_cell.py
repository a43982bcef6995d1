"""The set-up cell: written once (tools/setup_cell.txt), the first code cell of every notebook, inserted
idempotently."""
from __future__ import annotations

import ast
import copy
import sys
from pathlib import Path

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import setup_cell  # noqa: E402  (tools/ is not a package)

sys.path.remove(str(ROOT / "tools"))
NOTEBOOKS = setup_cell.notebooks()
FIX = "run `python tools/setup_cell.py`, then re-execute the notebooks (`make notebooks`)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_starts_with_the_same_setup_cell(path):
    nb = nbformat.read(path, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    assert first.source == setup_cell.cell_source(), f"{path.name}: the first code cell is not the set-up cell; {FIX}"
    assert {setup_cell.TAG, setup_cell.IGNORE_TAG} <= set(first.metadata.get("tags", [])), f"{path.name}: {FIX}"
    title = next(c for c in nb.cells if c.cell_type == "markdown").source.splitlines()
    assert title[2] == setup_cell.follows_line(path), f"{path.name}: no 'Follows:' line under the title; {FIX}"


def test_the_cell_is_short_valid_ipython_and_names_the_repository():
    source = setup_cell.cell_source()
    assert len(source.splitlines()) <= 32 and "@REPOSITORY@" not in source
    # pyproject.toml's Repository URL, which every notebook's copy installs from (checked above)
    assert setup_cell.repository_url().startswith("https://") and f'"git+{setup_cell.repository_url()}"' in source
    ast.parse(TransformerManager().transform_cell(source))  # %pip inside the except block is IPython's syntax
    assert "--constraint" in source and all(name in source for name in ("torch", "torchvision", "numpy"))


def test_every_notebook_has_a_follows_line_in_the_one_mapping():
    assert sorted(setup_cell.FOLLOWS) == sorted(p.name[:2] for p in NOTEBOOKS)


def test_inserting_twice_changes_nothing_and_an_edited_template_replaces_the_copy():
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    for cell in nb.cells:  # as the notebooks are before the first insertion
        if setup_cell.TAG in cell.metadata.get("tags", []):
            nb.cells.remove(cell)
    source, follows = setup_cell.cell_source(), setup_cell.follows_line(NOTEBOOKS[0])
    n_cells = len(nb.cells)
    assert "inserted the set-up cell" in setup_cell.apply(nb, source, follows)
    once = copy.deepcopy(nb)
    assert setup_cell.apply(nb, source, follows) == [] and nb == once
    assert len(nb.cells) == n_cells + 1
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert first_code.source == source and first_code.id == setup_cell.TAG
    first_code.outputs = [nbformat.v4.new_output("stream", text="old output\n")]
    assert setup_cell.apply(nb, source + "\n# changed", follows) == ["updated the set-up cell (its output was cleared)"]
    assert first_code.outputs == [] and first_code.source.endswith("# changed")
    title = next(c for c in nb.cells if c.cell_type == "markdown").source
    assert title.count("**Follows:**") == 1
    nbformat.validate(nb)
