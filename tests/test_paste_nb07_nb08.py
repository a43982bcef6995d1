"""Closing exercises of notebooks 07 and 08 cannot be passed by pasting a function the notebook defines (issue 31)."""
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

from helpers.exercise_kinds import CodeExercise, FunctionExercise

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = {"nb07": "07_inside_a_cnn.ipynb", "nb08": "08_heatmaps.ipynb"}


def notebook_functions(notebook: str) -> dict[str, str]:
    """Every top-level function the notebook's code cells define: {name: its source}."""
    cells = json.loads((ROOT / "notebooks" / notebook).read_text())["cells"]
    found = {}
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        try:
            tree = ast.parse(source)
        except SyntaxError:  # IPython magics
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                found[node.name] = ast.get_source_segment(source, node)
    return found


def closing_function_exercises(module) -> list[tuple[str, str, object]]:
    """(exercise name, function name the prompt asks for, exercise) for the closing q1, q2, ... that ask for code."""
    found = []
    for name, value in vars(module).items():
        if re.fullmatch(r"q\d+", name) and isinstance(value, (FunctionExercise, CodeExercise)):
            asked = re.search(r"Write (?:a class )?`(\w+)", value.prompt)
            if asked:  # a CodeExercise may ask for a value (a matrix), not a function
                found.append((name, asked.group(1), value))
    return found


@pytest.mark.parametrize("set_name", sorted(NOTEBOOKS))
def test_closing_exercises_reject_the_notebooks_own_definitions(set_name):
    module = importlib.import_module(f"helpers.exercise_sets.{set_name}")
    defined = notebook_functions(NOTEBOOKS[set_name])
    assert defined, "the notebook should define functions (is the path right?)"
    for name, asked, exercise in closing_function_exercises(module):
        if asked not in defined:
            continue  # the notebook never wrote it: pasting is impossible
        namespace = {"torch": torch, "F": F, "nn": nn, "np": np, "math": math}
        exec(defined[asked], namespace)
        assert not exercise.evaluate(namespace[asked]).passed, (
            f"{set_name}.{name} is passed by the notebook's own {asked}(): it must extend the lesson")


@pytest.mark.parametrize("set_name", sorted(NOTEBOOKS))
def test_in_lesson_exercises_come_before_the_notebooks_version(set_name):
    """An in-lesson function exercise is checked in a cell above the cell that defines the same function."""
    cells = json.loads((ROOT / "notebooks" / NOTEBOOKS[set_name]).read_text())["cells"]
    module = importlib.import_module(f"helpers.exercise_sets.{set_name}")
    in_lesson = [name for name, value in vars(module).items()
                 if isinstance(value, (FunctionExercise, CodeExercise)) and not re.fullmatch(r"q\d+", name)
                 and not name.startswith("_")]
    assert len(in_lesson) >= 3, f"{set_name} should have at least three exercises inside the lesson"
    sources = ["".join(c["source"]) for c in cells]
    for name in in_lesson:
        checks = [i for i, s in enumerate(sources) if f"ex.{name}.check(" in s]
        assert checks, f"ex.{name} is never checked in the notebook"
        asked = re.search(r"Write (?:a class )?`(\w+)", getattr(module, name).prompt).group(1)
        defs = [i for i, s in enumerate(sources) if re.search(rf"^(def|class) {asked}\b", s, re.M)]
        assert all(checks[0] < i for i in defs), f"ex.{name} comes after the notebook's own {asked}"
