"""No closing exercise of notebooks 02-04 is passed by pasting a function the notebook already wrote (issue 30).

For every function exercise checked after a notebook's "## Exercises" heading, each function the notebook defined
before that heading with the same parameters is run through the checker and must be rejected: the same-named ones
the rule is about, and any other with the same signature, so a look-alike under another name cannot pass either.
The exercises inside the lesson, in turn, must each come before the notebook's own version of what they ask.
"""
from __future__ import annotations

import ast
import importlib
import inspect
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers.exercise_kinds import FunctionExercise

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
NAMES = ("02_presizing.ipynb", "03_cross_entropy.ipynb", "04_lr_finder.ipynb")
CHECK = re.compile(r"ex\.(\w+)\.check\((\w+)\)")


def code_cells(name: str) -> tuple[list[str], list[str]]:
    """The code of the cells before the "## Exercises" heading, and of those after it."""
    cells = json.loads((NOTEBOOKS / name).read_text())["cells"]
    heading = next(i for i, c in enumerate(cells)
                   if c["cell_type"] == "markdown" and "".join(c["source"]).lstrip().startswith("## Exercises"))
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    lesson = ["".join(c["source"]) for c in cells[:heading] if c["cell_type"] == "code"]
    return lesson, code[len(lesson):]


def definitions(cells: list[str]) -> dict[str, list[str]]:
    """Every top-level function the cells define with a body (not a blank `return ____`), by name."""
    found: dict[str, list[str]] = {}
    for cell in cells:
        cell = re.sub(r"^(\s*)[%!].*$", r"\1pass", cell, flags=re.M)  # IPython magics are not Python
        for node in ast.parse(cell).body:
            text = ast.get_source_segment(cell, node) or ""
            if isinstance(node, ast.FunctionDef) and "____" not in text and not node.args.vararg:
                found.setdefault(node.name, []).append(text)
    return found


def compiled(text: str):
    namespace = {"torch": torch, "F": F, "nn": nn, "np": np, "math": math}
    exec(text, namespace)
    return next(v for k, v in namespace.items() if callable(v) and k not in ("torch", "F", "nn", "np", "math"))


def arity(function) -> int:
    return len([p for p in inspect.signature(function).parameters.values() if p.default is inspect.Parameter.empty])


@pytest.mark.parametrize("name", NAMES)
def test_no_closing_function_exercise_is_passed_by_an_earlier_definition(name):
    module = importlib.import_module(f"helpers.exercise_sets.nb{name[:2]}")
    lesson, closing = code_cells(name)
    earlier = definitions(lesson)
    checked = 0
    for key, function_name in CHECK.findall("\n".join(closing)):
        exercise = getattr(module, key)
        if not isinstance(exercise, FunctionExercise):
            continue
        reference_arity = arity(exercise.reference)
        for defined_name, texts in earlier.items():
            for text in texts:
                try:
                    candidate = compiled(text)
                except Exception:  # needs the notebook's state to exist at all: it cannot be pasted on its own
                    continue
                if defined_name != function_name and arity(candidate) != reference_arity:
                    continue
                checked += 1
                assert not exercise.evaluate(candidate).passed, (
                    f"{name}: ex.{key} is passed by pasting the notebook's own `{defined_name}`:\n{text}")
    # (checked counts the candidates tried; a set whose notebook wrote no such function has nothing to paste)


@pytest.mark.parametrize("name", NAMES)
def test_at_least_three_exercises_inside_the_lesson_each_before_the_notebooks_version(name):
    lesson, _ = code_cells(name)
    inside = [(i, key, fn) for i, cell in enumerate(lesson) for key, fn in CHECK.findall(cell)]
    assert len(inside) >= 3, f"{name}: {len(inside)} exercises inside the lesson, at least three wanted"
    for index, key, function_name in inside:
        assert "return ____" in lesson[index], f"{name}: the in-lesson exercise ex.{key} should be a blank to fill"
        later = [i for i, cell in enumerate(lesson) if re.search(rf"^def {function_name}\(", cell, re.M) and i != index]
        assert not later or min(later) > index, (
            f"{name}: ex.{key} comes after the notebook's own `{function_name}`; put it before, where the concept is "
            "taught")
