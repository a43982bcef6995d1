"""No closing exercise of notebooks 00 and 01 is passed by pasting a definition the notebook already shows.

For every exercise checked after a notebook's "Exercises" heading, the test reads the name the learner is asked to
define (``ex.qN.check(name)``). Where the lesson above defines a function or class of that name (not an exercise's
blank), that definition, executed on its own, must be rejected: the closing exercises extend the lesson.
"""
from __future__ import annotations

import ast
import importlib
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = {"00_digits_from_scratch.ipynb": "nb00", "01_pets_data.ipynb": "nb01"}
CHECK = re.compile(r"ex\.(q\d+)\.check\((\w+)\)")


def code_cells(cells: list[dict]) -> list[str]:
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


def split_at_exercises(name: str) -> tuple[list[dict], list[dict]]:
    cells = json.loads((ROOT / "notebooks" / name).read_text())["cells"]
    heading = [i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
               and re.search(r"^## (\d+\. )?Exercises", "".join(c["source"]), re.M)]
    assert heading, f"{name} has no '## Exercises' heading"
    return cells[:heading[0]], cells[heading[0]:]


def lesson_definitions(lesson: list[dict]) -> dict[str, ast.stmt]:
    """The lesson's top-level functions and classes by name, skipping the blanks of in-lesson exercises."""
    found = {}
    for source in code_cells(lesson):
        try:
            tree = ast.parse(source)
        except SyntaxError:  # IPython magics: no definitions of interest there
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and "____" not in ast.get_source_segment(source, node):
                found.setdefault(node.name, node)
    return found


def closing_checks(closing: list[dict]) -> list[tuple[str, str]]:
    return [match.groups() for source in code_cells(closing) for match in CHECK.finditer(source)]


CASES = [(nb, key, answer) for nb in NOTEBOOKS for key, answer in closing_checks(split_at_exercises(nb)[1])]


def test_every_notebook_has_function_exercises_at_the_end():
    for nb in NOTEBOOKS:
        assert any(nb == case[0] for case in CASES), f"{nb}: no ex.qN.check(name) after its Exercises heading"


@pytest.mark.parametrize("notebook,key,name", CASES)
def test_the_lesson_definition_of_the_same_name_is_rejected(notebook, key, name):
    exercise = getattr(importlib.import_module(f"helpers.exercise_sets.{NOTEBOOKS[notebook]}"), key)
    node = lesson_definitions(split_at_exercises(notebook)[0]).get(name)
    if node is None:
        return  # the lesson never wrote this name: the exercise asks for something new
    namespace = {"torch": torch, "nn": nn, "F": F, "math": math, "np": np, "re": re, "Path": Path}
    exec(compile(ast.Module(body=[node], type_ignores=[]), notebook, "exec"), namespace)
    status = exercise.evaluate(namespace[name]).status
    assert status != "correct", f"{notebook}: ex.{key} accepts the lesson's own {name}: it must ask for more"


def test_the_check_finds_a_pasted_definition():
    """The machinery itself: the lesson's mnist_loss, checked against an mnist_loss exercise, is found and accepted."""
    lesson, _ = split_at_exercises("00_digits_from_scratch.ipynb")
    node = lesson_definitions(lesson)["mnist_loss"]
    namespace = {"torch": torch}
    exec(compile(ast.Module(body=[node], type_ignores=[]), "nb00", "exec"), namespace)
    from helpers.exercise_sets import nb00
    assert nb00.q9.evaluate(namespace["mnist_loss"]).status == "correct"
