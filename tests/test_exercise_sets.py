"""Every exercise set in helpers/exercise_sets, and the notebooks that use them.

The sets arrive one notebook at a time; these tests iterate whatever modules exist, so a new
``nbNN.py`` is covered the moment it is added: its reference answers pass, its typical wrong
answers fail, the blank ``____`` reports "not attempted", and the notebook that uses it refers
only to exercises that exist and shows no solution.
"""
from __future__ import annotations

import importlib
import json
import pkgutil
import re
from pathlib import Path

import pytest

import helpers.exercise_sets
from helpers.exercises import ____, ChoiceExercise, Exercise, Questionnaire

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MODULE_NAMES = sorted(m.name for m in pkgutil.iter_modules(helpers.exercise_sets.__path__) if re.fullmatch(r"nb\d\d", m.name))


def load_set(name: str):
    return importlib.import_module(f"helpers.exercise_sets.{name}")


def exercises_of(module) -> list[tuple[str, Exercise]]:
    """The module's q1, q2, ... and its questionnaire's items, each with a label for messages."""
    found = [(f"{module.__name__}.{name}", value) for name, value in vars(module).items()
             if re.fullmatch(r"q\d+", name) and isinstance(value, Exercise)]
    quiz = getattr(module, "questionnaire", None)
    if isinstance(quiz, Questionnaire):
        found += [(f"{module.__name__}.questionnaire[{i}]", q) for i, q in enumerate(quiz, 1)]
    return found


def all_exercises() -> list[tuple[str, Exercise]]:
    return [pair for name in MODULE_NAMES for pair in exercises_of(load_set(name))]


def checkable_exercises() -> list[tuple[str, Exercise]]:
    return [(label, ex) for label, ex in all_exercises() if ex.checkable]


@pytest.mark.parametrize("name", MODULE_NAMES)
def test_each_set_has_exercises_and_a_questionnaire(name):
    module = load_set(name)
    assert isinstance(getattr(module, "questionnaire", None), Questionnaire), (
        f"helpers/exercise_sets/{name}.py should define `questionnaire = Questionnaire([...])`")
    assert len(module.questionnaire) >= 1, f"{name}.questionnaire is empty"
    assert any(re.fullmatch(r"q\d+", n) for n in vars(module)), f"{name} defines no exercises q1, q2, ..."


@pytest.mark.parametrize("label,exercise", checkable_exercises(), ids=lambda v: v if isinstance(v, str) else "")
def test_reference_answer_is_correct(label, exercise):
    result = exercise.evaluate(exercise.reference_answer)
    assert result.status == "correct", f"{label}: its own reference answer is judged {result.status}: {result.message}"


@pytest.mark.parametrize("label,exercise", checkable_exercises(), ids=lambda v: v if isinstance(v, str) else "")
def test_typical_wrong_answers_are_incorrect(label, exercise):
    assert len(exercise.wrong_answers) >= 2, f"{label}: give at least two typical wrong answers (wrong_answers=...)"
    for wrong in exercise.wrong_answers:
        result = exercise.evaluate(wrong)
        assert result.status == "incorrect", (
            f"{label}: the wrong answer {wrong!r} is judged {result.status} ({result.message})")
        assert result.message, f"{label}: a wrong answer should get a message that helps"


@pytest.mark.parametrize("label,exercise", all_exercises(), ids=lambda v: v if isinstance(v, str) else "")
def test_blank_is_not_attempted(label, exercise):
    assert exercise.evaluate(____).status == "not attempted", label
    assert exercise.prompt, f"{label} has no prompt"
    if not exercise.checkable:
        assert exercise.solution_text(), f"{label}: a written question needs a model answer"


# ---- the notebooks that use the sets --------------------------------------------------------------

def cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def outputs_text(cell: dict) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if "text" in out:
            parts.append("".join(out["text"]))
        parts.extend("".join(v) for k, v in out.get("data", {}).items() if k.startswith("text/"))
    return "".join(parts)


def set_imports(code: str) -> dict[str, str]:
    """{alias: set name} for lines like `from helpers.exercise_sets import nb03 as ex`."""
    return {alias or name: name for name, alias in
            re.findall(r"from\s+helpers\.exercise_sets\s+import\s+(nb\d\d)(?:\s+as\s+(\w+))?", code)}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_refers_only_to_exercises_that_exist(path):
    code = "\n".join(source(c) for c in cells(path) if c["cell_type"] == "code")
    for alias, name in set_imports(code).items():
        assert name in MODULE_NAMES, f"{path.name} imports helpers.exercise_sets.{name}, which does not exist"
        module = load_set(name)
        for attribute in sorted(set(re.findall(rf"\b{alias}\.(\w+)", code))):
            assert hasattr(module, attribute), f"{path.name} uses {alias}.{attribute}, which {name}.py does not define"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_shows_no_solution(path):
    code = "\n".join(source(c) for c in cells(path) if c["cell_type"] == "code")
    texts = [source(c) + outputs_text(c) for c in cells(path)]
    for name in set_imports(code).values():
        for label, exercise in exercises_of(load_set(name)):
            solution = exercise.solution_text().strip()
            if isinstance(exercise, ChoiceExercise):  # its first line repeats an option, which the notebook may list
                solution = solution.partition("\n")[2].strip()
            # Short solutions ("answer = 4") can appear innocently; a long one appearing is a leak.
            if len(solution) >= 40:
                assert not any(solution in text for text in texts), f"{path.name} shows the solution of {label}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_blank_exercises_report_not_attempted(path):
    """Committed notebooks carry exercises unattempted: a cell checking a blank stores the "not attempted" line."""
    for cell in cells(path):
        src = source(cell)
        if cell["cell_type"] != "code" or not re.search(r"(=|return)\s*____\s*$", src, re.M) or ".check(" not in src:
            continue
        assert "Not attempted yet" in outputs_text(cell) or "not checked automatically" in outputs_text(cell), (
            f"{path.name}: this exercise cell should store the 'not attempted' verdict:\n{src[:200]}")
