"""Verdicts, hints and solutions: coloured HTML in Jupyter with the same words as the plain text that terminals,
nbval and GitHub's view of stored outputs show."""
from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from helpers import progress_record, verdict_display
from helpers.exercises import ValueExercise, ____

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA", str(tmp_path / "cache"))
    monkeypatch.setattr(progress_record, "_warned", False)


def words(text: str) -> str:
    """What a message says, from its HTML (tags dropped, entities decoded) or its plain text, spacing aside."""
    return re.sub(r"\s+", "", html.unescape(re.sub(r"<[^>]+>", "", text.replace("<br>", " "))))


@pytest.mark.parametrize("kind", sorted(verdict_display.KINDS))
def test_html_and_plain_text_say_the_same_words(kind):
    message = verdict_display.render(kind, "Label:", "a < b & the rest,\nsecond line", code="x = [i for i in 'ab']")
    assert words(message["text/html"]) == words(message["text/plain"])
    assert message["text/plain"].startswith("Label: a < b & the rest,\nsecond line\n    x = ")


def test_each_kind_has_its_own_colour_and_the_solution_is_highlighted():
    colours = {verdict_display.KINDS[k][0] for k in ("correct", "incorrect", "error", "hint", "solution")}
    assert len(colours) == 5
    solution = verdict_display.render("solution", "Solution:", code="def f(x):\n    return x + 1")["text/html"]
    assert "border-left:4px solid " + verdict_display.KINDS["solution"][0] in solution
    assert solution.count('<span style="color') >= 3  # keyword, name, number coloured by Pygments
    with pytest.raises(ValueError, match="unknown message kind"):
        verdict_display.render("cheerful", "Hi")


def test_outside_jupyter_the_plain_text_is_printed(capsys):
    exercise = ValueExercise("2 + 2?", expected=4, hints=["Count."], solution="answer = 2 + 2",
                             explanation="Two and two make four.")
    exercise.check(____)
    exercise.check(4)
    exercise.hint()
    exercise.solution()
    assert capsys.readouterr().out.splitlines() == [
        "Not attempted yet: replace ____ with your answer, then run the cell again.",
        "Correct! That is the expected value.", "Why: Two and two make four.",
        "Hint 1 of 1: Count.", "Solution:", "    answer = 2 + 2"]


def test_in_jupyter_one_display_carries_both_forms(monkeypatch):
    shown = []
    monkeypatch.setattr(verdict_display, "_in_jupyter", lambda: True)
    monkeypatch.setattr("IPython.display.display", lambda data, raw=False: shown.append((data, raw)))
    exercise = ValueExercise("2 + 2?", expected=4, explanation="Two and two make four.")
    exercise.check(5)
    exercise.check(4)
    (wrong, raw), (right, _) = shown
    assert raw and set(wrong) == {"text/plain", "text/html"}
    assert wrong["text/plain"].startswith("Not quite: Your answer 5 is too high.")
    assert verdict_display.KINDS["incorrect"][0] in wrong["text/html"]
    assert "Why: Two and two make four." in right["text/plain"] and "Two and two make four." in right["text/html"]


@pytest.mark.slow
def test_a_real_kernel_stores_html_and_the_same_plain_text(tmp_path, monkeypatch):
    """What a notebook stores: one display_data per message, text/plain and text/html side by side."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    cells = ["from helpers.exercise_sets import nb07 as ex\nfrom helpers.exercises import ____",
             "ex.q1.check(____)", "ex.q1.check(1216)", "ex.q1.hint()", "ex.q1.solution()"]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    # The kernel inherits this process's environment (monkeypatch gives it back afterwards).
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.setenv("COURSE_DATA", str(tmp_path / "cache"))
    nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    outputs = [cell.outputs for cell in notebook.cells[1:]]
    for output in outputs:
        assert [o.output_type for o in output] == ["display_data"]
        data = output[0].data
        assert words(data["text/html"]) == words(data["text/plain"])
    texts = [o[0].data["text/plain"] for o in outputs]
    assert texts[0].startswith("Not attempted yet") and texts[1].startswith("Correct!")
    assert texts[2].startswith("Hint 1 of 2") and texts[3].startswith("Solution:\n    answer = 16 * 3 * 5 * 5 + 16")
