"""Hygiene of the committed notebooks: what nbval cannot see by itself.

nbval re-executes each notebook and compares outputs; these tests check that the stored outputs are
worth comparing: run top to bottom from a fresh kernel, nothing unexecuted, no warnings or stray
tracebacks, and every cell whose output nbval ignores still asserts what matters.
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code" and "".join(c["source"]).strip()]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks/NN_topic.ipynb found"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_run_in_order_from_a_fresh_kernel(path):
    counts = [c.get("execution_count") for c in code_cells(load(path))]
    assert counts == list(range(1, len(counts) + 1)), (
        f"{path.name}: execution counts {counts} are not 1..{len(counts)}; "
        "re-run it with `make notebooks NB=notebooks/" + path.name + "` (fresh kernel, top to bottom).")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_warnings_or_unexpected_errors_stored(path):
    for i, cell in enumerate(code_cells(load(path)), 1):
        raises = ("NBVAL_RAISES_EXCEPTION" in source(cell)
                  or "raises-exception" in cell.get("metadata", {}).get("tags", []))
        for out in cell.get("outputs", []):
            if out["output_type"] == "error":
                assert raises, (f"{path.name} cell {i}: a stored traceback ({out.get('ename')}) in a cell not marked "
                                "NBVAL_RAISES_EXCEPTION")
            if out["output_type"] == "stream" and out["name"] == "stderr":
                text = "".join(out["text"])
                assert "Warning" not in text and "warn(" not in text, (f"{path.name} cell {i}: a stored warning: "
                                                                       f"{text[:200]}")
        if raises:
            assert any(o["output_type"] == "error" for o in cell.get("outputs", [])), (
                f"{path.name} cell {i} is marked NBVAL_RAISES_EXCEPTION but stores no error")


def last_statement(src: str) -> ast.stmt | None:
    """The cell's last top-level statement (comments, magics and help lines aside), or None."""
    # IPython's own syntax is not Python: magics (%), shell commands (!) and help (`name?`, `name??`).
    lines = [ln for ln in src.splitlines() if not ln.lstrip().startswith(("%", "!")) and not ln.rstrip().endswith("?")]
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        return None
    return tree.body[-1] if tree.body else None


VERDICT_CALLS = ("compare", "compare_seeds")  # helpers.verdict: each asserts the claim it prints


def ends_with_assertion(src: str) -> bool:
    """True when the cell's last top-level statement is an assert, or a verdict helper's call (which asserts)."""
    last = last_statement(src)
    if isinstance(last, ast.Assert):
        return True
    call = last.value if isinstance(last, ast.Expr) else last.value if isinstance(last, ast.Assign) else None
    if isinstance(call, ast.Call):
        name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", None)
        return name in VERDICT_CALLS
    return False


def is_setup_cell(cell: dict) -> bool:
    """The set-up cell (tools/setup_cell.py): its output is the machine's, and it checks nothing of the lesson."""
    return "course-setup" in cell.get("metadata", {}).get("tags", [])


def output_ignored(cell: dict) -> bool:
    """True when nbval does not compare the cell's output: its nbval-ignore-output tag says so."""
    return "nbval-ignore-output" in cell.get("metadata", {}).get("tags", [])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_ignored_outputs_end_with_an_assertion(path):
    for i, cell in enumerate(code_cells(load(path)), 1):
        src = source(cell)
        # One mechanism, out of the learner's way: the tag (cell metadata), not nbval's comment in the code.
        assert "NBVAL_IGNORE_OUTPUT" not in src, (
            f"{path.name} cell {i}: replace the NBVAL_IGNORE_OUTPUT comment with the cell tag nbval-ignore-output")
        if output_ignored(cell) and not is_setup_cell(cell):
            assert ends_with_assertion(src), (
                f"{path.name} cell {i}: nbval ignores this cell's output (tag nbval-ignore-output), so it must "
                f"end with an assert on what matters in it:\n{src[:300]}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_course_conventions(path):
    nb = load(path)
    # The set-up cell (tools/setup_cell.py, tested in test_setup_cell.py) comes first; the lesson starts after it.
    cells = [c for c in code_cells(nb) if "course-setup" not in c.get("metadata", {}).get("tags", [])]
    first = source(cells[0])
    assert "get_profile" in first, (f"{path.name}: the first code cell after the set-up cell should choose the "
                                    "profile with helpers.get_profile()")
    markdown = "\n".join(source(c) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert markdown.lstrip().startswith("# "), f"{path.name}: start with a title heading"
    assert "## Questionnaire" in markdown, f"{path.name}: end with its part of the chapter's questionnaire"
    assert nb["metadata"].get("kernelspec", {}).get("name") == "python3", f"{path.name}: kernelspec should be python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_raising_cells_let_run_all_go_on(path):
    # Without the tag, JupyterLab's Run All stops at the first deliberate error and a learner never reaches
    # the cells after it. The comment tells the reader (and nbval) that the error is meant.
    for i, cell in enumerate(code_cells(load(path)), 1):
        if "NBVAL_RAISES_EXCEPTION" in source(cell):
            assert "raises-exception" in cell.get("metadata", {}).get("tags", []), (
                f"{path.name} cell {i}: a cell that raises on purpose needs the raises-exception tag; "
                "re-run it with `make notebooks NB=notebooks/" + path.name + "`, which adds it")


def ends_with_a_shown_value(src: str) -> bool:
    """True when the cell ends with a bare value (a name, an attribute, an index, a tuple...), which Jupyter shows."""
    last = last_statement(src)
    if src.rstrip().endswith(";"):  # a trailing semicolon hides the value
        return False
    # Calls may return None (print, plt.show, check()), so only plain values are sure to show something.
    return isinstance(last, ast.Expr) and isinstance(last.value, (ast.Name, ast.Attribute, ast.Subscript, ast.Tuple,
                                                                  ast.BinOp, ast.Compare, ast.JoinedStr))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_cells_that_show_a_value_kept_their_output(path):
    for i, cell in enumerate(code_cells(load(path)), 1):
        if ends_with_a_shown_value(source(cell)):
            assert any(o["output_type"] in ("execute_result", "display_data") for o in cell.get("outputs", [])), (
                f"{path.name} cell {i} ends with a value but stores no output; were the outputs cleared? "
                "Store them again with `make notebooks NB=notebooks/" + path.name + "`.")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_stored_empty_progress_bar(path):
    # GitHub and nbviewer show what was stored, not the live widget: a bar saved at "0%" reads as a run that never
    # started. Progress must be stored in its final state (text or HTML), or not at all.
    for i, cell in enumerate(code_cells(load(path)), 1):
        for out in cell.get("outputs", []):
            texts = ["".join(out.get("text", ""))] + ["".join(v) for k, v in out.get("data", {}).items()
                                                      if k.startswith("text/")]
            assert not any(re.search(r"(^|\s)0%\|", text) for text in texts), (
                f"{path.name} cell {i}: a progress bar is stored at 0%")
