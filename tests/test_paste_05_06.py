"""Notebooks 05 and 06: the in-lesson exercises come before the notebook's own version, and no closing exercise
is passed by pasting what the notebook shows (a function it defines, or a value it prints)."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers.exercise_sets import nb05, nb06
from helpers.exercises import CodeExercise, Exercise, FunctionExercise, ValueExercise

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = {"05": (ROOT / "notebooks" / "05_transfer_learning.ipynb", nb05),
             "06": (ROOT / "notebooks" / "06_deeper_models_mixed_precision.ipynb", nb06)}
# In-lesson exercises: (exercise name, the function or value the notebook writes after it).
IN_LESSON = {"05": {"pool": "class ConcatPool", "freeze": "for module in body.modules()",
                    "rates": "for lr in (slice"},
             "06": {"largest": "largest = (2 - 2.0**-10)", "lost": "nonzero = grad_logits[grad_logits != 0]",
                    "mixed_step": "def mixed_step("}}


def cells(nb: str) -> list[dict]:
    return json.loads(NOTEBOOKS[nb][0].read_text())["cells"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def outputs_text(nb: str) -> str:
    parts = []
    for cell in cells(nb):
        for out in cell.get("outputs", []):
            parts.append("".join(out.get("text", "")))
            parts.append("".join(out.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def check_cell_index(nb: str, name: str) -> int:
    hits = [i for i, c in enumerate(cells(nb)) if f"ex.{name}.check(" in source(c)]
    assert len(hits) == 1, f"notebook {nb} should check ex.{name} in exactly one cell, found {len(hits)}"
    return hits[0]


@pytest.mark.parametrize("nb,name", [(nb, name) for nb in IN_LESSON for name in IN_LESSON[nb]])
def test_in_lesson_exercise_comes_before_the_notebooks_version(nb, name):
    exercise = getattr(NOTEBOOKS[nb][1], name)
    assert isinstance(exercise, Exercise)
    asked = check_cell_index(nb, name)
    shown = [i for i, c in enumerate(cells(nb)) if source(c).startswith(IN_LESSON[nb][name])
             or ("\n" + IN_LESSON[nb][name]) in source(c)]
    shown = [i for i in shown if i != asked and "____" not in source(cells(nb)[i])]
    assert shown, f"notebook {nb} never shows its own version of ex.{name} ({IN_LESSON[nb][name]!r})"
    assert asked < min(shown), f"ex.{name} is asked in cell {asked}, after the notebook's own version in {min(shown)}"


@pytest.mark.parametrize("nb,name", [(nb, name) for nb in IN_LESSON for name in IN_LESSON[nb]])
def test_in_lesson_checker_accepts_right_and_rejects_wrong(nb, name):
    exercise = getattr(NOTEBOOKS[nb][1], name)
    assert exercise.explanation, f"ex.{name} needs an explanation"
    assert exercise.wrong_answers and exercise.right_answers
    for answer in (exercise.reference_answer, *exercise.right_answers):
        assert exercise.evaluate(answer).passed, (f"ex.{name} rejects a right answer: "
                                                  f"{exercise.evaluate(answer).message}")
    for answer in exercise.wrong_answers:
        assert not exercise.evaluate(answer).passed, f"ex.{name} accepts a wrong answer"


def closing(module) -> list[tuple[str, Exercise]]:
    return [(n, e) for n, e in vars(module).items() if re.fullmatch(r"q\d+", n) and isinstance(e, Exercise)]


def asked_name(exercise: Exercise) -> str | None:
    found = re.search(r"def (\w+)\(", exercise._solution)
    return found.group(1) if found else None


def pasted_definitions_that_pass(notebook_cells: list[dict], exercise: Exercise) -> list[str]:
    """The notebook's own definitions of the function an exercise asks for that its checker accepts."""
    name = asked_name(exercise)
    passing = []
    for cell in notebook_cells:
        text = source(cell)
        if re.search(rf"^def {name}\(", text, re.M) and "____" not in text:
            namespace = {"torch": torch, "F": F, "nn": nn, "math": math}
            exec(compile(text, "notebook cell", "exec"), namespace)  # only the definitions matter
            if exercise.evaluate(namespace[name]).passed:
                passing.append(text)
    return passing


@pytest.mark.parametrize("nb", list(NOTEBOOKS))
def test_no_closing_function_exercise_is_passed_by_the_notebooks_own_definition(nb):
    for label, exercise in closing(NOTEBOOKS[nb][1]):
        if isinstance(exercise, (FunctionExercise, CodeExercise)):
            assert asked_name(exercise), f"{nb}.{label}: its solution should define the function it asks for"
            assert not pasted_definitions_that_pass(cells(nb), exercise), (
                f"{nb}.{label} is passed by pasting the notebook's own {asked_name(exercise)}")


def test_the_paste_check_catches_a_planted_definition():
    """A notebook cell that defined 06's closing survives_float16 would be caught."""
    planted = {"cell_type": "code", "source": "def survives_float16(value):\n"
               "    stored = torch.tensor(value, dtype=torch.float16).item()\n"
               "    return stored != 0 and math.isfinite(stored)\n"}
    assert pasted_definitions_that_pass(cells("06") + [planted], nb06.q3)
    assert not pasted_definitions_that_pass(cells("06"), nb06.q3)


@pytest.mark.parametrize("nb", list(NOTEBOOKS))
def test_no_closing_value_exercise_is_printed_by_the_notebook(nb):
    printed = outputs_text(nb)
    for label, exercise in closing(NOTEBOOKS[nb][1]):
        if not isinstance(exercise, ValueExercise):
            continue
        values = exercise.expected if isinstance(exercise.expected, (list, tuple)) else [exercise.expected]
        if len(values) == 1 and len(f"{values[0]:g}".strip("-0.").replace(".", "")) < 3:
            continue  # a number of one or two digits (0.5, 16) is printed for other reasons everywhere
        forms = {str([f"{v:.0e}" for v in values]), ", ".join(f"{v:g}" for v in values)}
        if len(values) == 1 and abs(values[0]) >= 1000:
            forms |= {f"{values[0]:,.0f}", f"{values[0]:.0f}"}
        for form in forms:
            assert form not in printed, f"{nb}.{label}'s answer {form} is printed in the notebook's outputs"


def test_the_notebooks_own_mixed_step_passes_the_in_lesson_check():
    """The reference the notebook shows after the exercise is itself a right answer."""
    planted = nb06.mixed_step
    namespace = {"torch": torch, "F": F, "nn": nn, "math": math}
    definition = next(source(c) for c in cells("06")
                      if source(c).startswith("def mixed_step(") and "____" not in source(c))
    exec(compile(definition.split("\n\ndevice =")[0], "notebook 06", "exec"), namespace)
    assert planted.evaluate(namespace["mixed_step"]).passed, "the notebook's reference passes the in-lesson check"
