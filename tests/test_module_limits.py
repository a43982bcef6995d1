"""The style limits of the house rules, measured over helpers/: modules of at most 400 lines, functions of at most 60.

``helpers/exercise_sets/`` is exempt: its modules are declarations (questions, answers, hints), long where they
are data. Both limits count physical lines, docstrings and comments included, as a reader scrolls them.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

HELPERS = Path(__file__).resolve().parent.parent / "helpers"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
MODULES = sorted(p for p in HELPERS.rglob("*.py") if "exercise_sets" not in p.relative_to(HELPERS).parts)


def long_functions(source: str, limit: int = MAX_FUNCTION_LINES) -> list[tuple[str, int]]:
    """(qualified name, lines) of every function or method in ``source`` longer than ``limit`` lines."""
    found = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    first = min([child.lineno] + [d.lineno for d in child.decorator_list])
                    if child.end_lineno - first + 1 > limit:
                        found.append((name, child.end_lineno - first + 1))
                visit(child, f"{name}.")

    visit(ast.parse(source), "")
    return found


def test_the_measures_catch_what_they_should():
    body = "\n".join(f"        x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    source = f"def short():\n    return 1\n\n\nclass A:\n    def long(self):\n{body}\n"
    assert long_functions(source) == [("A.long", MAX_FUNCTION_LINES + 1)]
    assert long_functions(source, limit=MAX_FUNCTION_LINES + 1) == []


def test_helpers_has_modules_to_measure():
    assert len(MODULES) > 20 and HELPERS / "learner.py" in MODULES


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(HELPERS)))
def test_module_and_function_lengths(module: Path):
    source = module.read_text(encoding="utf-8")
    lines = len(source.splitlines())
    problems = [f"{lines} lines (at most {MAX_MODULE_LINES}): split it by concern"] if lines > MAX_MODULE_LINES else []
    problems += [f"{name} has {n} lines (at most {MAX_FUNCTION_LINES})" for name, n in long_functions(source)]
    assert not problems, f"helpers/{module.relative_to(HELPERS)}: " + "; ".join(problems)
