"""No closing exercise of notebook 09 is passed by pasting a function the notebook itself defines."""
import ast
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from helpers import tabular
from helpers.exercise_kinds import FunctionExercise
from helpers.exercise_sets import nb09

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "09_tabular.ipynb"
IN_LESSON = {"widths", "forward", "city_mean"}  # written before the notebook shows its own version


def _function_exercises() -> dict[str, tuple[str, FunctionExercise]]:
    found = {}
    for attr, value in vars(nb09).items():
        if isinstance(value, FunctionExercise):
            match = re.search(r"Write `(\w+)\(", value.prompt)
            assert match, f"nb09.{attr}'s prompt does not name the function it asks for ('Write `name(...)`')."
            found[match.group(1)] = (attr, value)
    return found


def _notebook_definitions() -> dict[str, str]:
    """Every function a code cell of the notebook defines in full (cells holding a ____ blank are the learner's)."""
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    defined = {}
    for cell in cells:
        source = "".join(cell["source"])
        if cell["cell_type"] != "code" or "____" in source or source.lstrip().startswith(("%", "!")):
            continue
        try:
            tree = ast.parse(source)
        except SyntaxError:  # IPython-only syntax: not a plain function definition to paste
            continue
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                defined[node.name] = ast.get_source_segment(source, node)
    return defined


def test_the_prompts_and_the_notebook_are_read():
    names = _function_exercises()
    assert {"my_rmspe", "categorify", "tabular_forward", "city_mean_forecast"} <= set(names)
    assert {"tabular_learner", "verdict", "validation_errors"} <= set(_notebook_definitions())


@pytest.mark.parametrize("name", sorted(_function_exercises()))
def test_no_closing_exercise_is_passed_by_a_function_of_the_notebook(name):
    attr, exercise = _function_exercises()[name]
    if attr in IN_LESSON:
        pytest.skip("an in-lesson exercise comes before the notebook's own version, which is the answer")
    definitions = _notebook_definitions()
    if name not in definitions:
        return  # the notebook never writes this function: nothing to paste
    namespace = {"np": np, "pd": pd, "torch": torch, "nn": nn, "tabular": tabular}
    exec(definitions[name], namespace)
    assert not exercise.evaluate(namespace[name]).passed, f"pasting the notebook's {name} passes nb09.{attr}"
