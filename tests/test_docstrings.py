"""The house rule on docstrings, over helpers/: "a one-line docstring naming the notebook that teaches it".

Every public function and class of a module, and every public method of a public class, has a docstring whose
summary (its first paragraph) is one line and ends by naming, in parentheses, the notebook that teaches it
("(notebook 05)", "(notebooks 04 and 05)") or, for what no notebook teaches, where it is used (one of
``ENTRY_POINTS``: "(python -m helpers.train)", "(torchrun; docs/training-script.md)", "(the set-up cell)").
Every module has a docstring with a one-line summary; in ``helpers/exercise_sets/``, whose modules are
declarations, only that is checked.

A method needs no docstring of its own where it fills in a documented protocol: a callback's events (listed and
explained once in helpers/callbacks.py), ``forward`` and ``extra_repr`` of a torch module, and a method that
overrides a documented method of a base class in helpers/ (``inspect.getdoc`` and ``help()`` show that one).
Read with ast, so nothing is imported.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

HELPERS = Path(__file__).resolve().parent.parent / "helpers"
MODULES = sorted(HELPERS.rglob("*.py"))
DECLARATIONS = "exercise_sets"  # modules of questions and answers: module docstrings only

# Where something no notebook teaches is used; one of these must appear in the closing parentheses.
ENTRY_POINTS = ("python -m helpers", "torchrun", "set-up cell", "docs/", "bench/")
NOTEBOOK = re.compile(r"^notebooks? \d\d\b")
TORCH_PROTOCOL = {"forward", "extra_repr"}


def summary(doc: str) -> str:
    """The first paragraph of a docstring, as written (line breaks kept)."""
    return re.split(r"\n[ \t]*\n", doc.strip(), maxsplit=1)[0]


def closing_parentheses(text: str) -> str | None:
    """The contents of the parenthesised group that ends ``text`` (before a final full stop), or None."""
    text = text.rstrip().removesuffix(".")
    if not text.endswith(")"):
        return None
    depth = 0
    for i in range(len(text) - 1, -1, -1):
        depth += {")": 1, "(": -1}.get(text[i], 0)
        if depth == 0:
            return text[i + 1:-1]
    return None


def names_where(text: str) -> bool:
    """Whether a one-line summary ends by naming a notebook or an entry point."""
    where = closing_parentheses(text)
    return where is not None and (bool(NOTEBOOK.match(where)) or any(e in where for e in ENTRY_POINTS))


def problem(doc: str | None) -> str | None:
    """What is wrong with a public thing's docstring, or None."""
    if not doc or not doc.strip():
        return "no docstring"
    first = summary(doc)
    if "\n" in first:
        return "summary wraps onto more lines (shorten it; move detail into the body after a blank line)"
    if not names_where(first):
        return "summary does not end with (notebook NN) or an entry point such as (python -m helpers ...)"
    return None


def callback_events() -> set[str]:
    """The event names of helpers/callbacks.py's ``EVENTS``, read from its source."""
    for node in ast.parse((HELPERS / "callbacks.py").read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "EVENTS" for t in node.targets):
            return set(ast.literal_eval(node.value))
    raise AssertionError("helpers/callbacks.py no longer defines EVENTS")


def class_table() -> dict[str, tuple[list[str], dict[str, str | None]]]:
    """Every class of helpers/ by name: its base names and its methods' docstrings."""
    table = {}
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases = [b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "") for b in node.bases]
                methods = {m.name: ast.get_docstring(m) for m in node.body
                           if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef))}
                table[node.name] = (bases, methods)
    return table


CLASSES = class_table()
EVENTS = callback_events()


def ancestors(name: str) -> list[str]:
    """The base classes of class ``name``, nearest first, as far as helpers/ and ``nn.Module`` go."""
    found, todo = [], list(CLASSES.get(name, ([], {}))[0])
    while todo:
        base = todo.pop(0)
        if base not in found:
            found.append(base)
            todo += CLASSES.get(base, ([], {}))[0]
    return found


def inherits_documentation(cls: str, method: str) -> bool:
    """Whether ``cls.method`` fills in a documented protocol (see the module docstring)."""
    bases = ancestors(cls)
    if method in EVENTS and "Callback" in bases:
        return True
    if method in TORCH_PROTOCOL and bases and any(b in {"Module", "Sequential"} for b in bases):
        return True
    return any(CLASSES.get(base, ([], {}))[1].get(method) for base in bases)


def public_api(source: str) -> list[tuple[str, str | None, bool]]:
    """(qualified name, docstring, may inherit) of every public function and class, and public method of those."""
    found = []
    for node in ast.parse(source).body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or node.name.startswith("_"):
            continue
        found.append((node.name, ast.get_docstring(node), False))
        if isinstance(node, ast.ClassDef):
            for m in node.body:
                if isinstance(m, (ast.FunctionDef, ast.AsyncFunctionDef)) and not m.name.startswith("_"):
                    doc = ast.get_docstring(m)
                    found.append((f"{node.name}.{m.name}", doc, doc is None and inherits_documentation(node.name,
                                                                                                   m.name)))
    return found


def test_the_rule_catches_what_it_should():
    assert problem('Mark a finished folder complete (notebook 01).') is None
    assert problem("Train one recipe (python -m helpers.train; docs/training-script.md).\n\nMore.") is None
    assert problem("The profile ``tiny`` (notebooks 01 and 05)") is None
    assert problem(None) == "no docstring"
    assert problem("Mark a finished folder complete, a long sentence\n(notebook 01).").startswith("summary wraps")
    assert problem("Mark a finished folder complete.").startswith("summary does not end")
    assert problem("Mark it (notebook 01): then more words.").startswith("summary does not end")
    assert problem("Mark it (see the notebook).").startswith("summary does not end")
    source = ('class A:\n    """A thing (notebook 01)."""\n    def run(self):\n        pass\n'
              '    def _private(self):\n        pass\n\ndef _hidden():\n    pass\n')
    assert public_api(source) == [("A", "A thing (notebook 01).", False), ("A.run", None, False)]


def test_overrides_and_events_inherit_their_documentation():
    assert "after_fit" in EVENTS and inherits_documentation("Recorder", "after_fit")
    assert inherits_documentation("TabularModel", "forward")
    assert inherits_documentation("ChoiceExercise", "reference_answer")  # documented on Exercise
    assert not inherits_documentation("Recorder", "plot_loss")
    assert not inherits_documentation("DataLoaders", "n_classes")


@pytest.mark.parametrize("module", MODULES, ids=lambda p: str(p.relative_to(HELPERS)))
def test_module_docstring_summary_is_one_line(module: Path):
    doc = ast.get_docstring(ast.parse(module.read_text(encoding="utf-8")), clean=False)
    assert doc and doc.strip(), f"helpers/{module.relative_to(HELPERS)} has no module docstring"
    assert "\n" not in summary(doc), (f"helpers/{module.relative_to(HELPERS)}: the module docstring's summary wraps "
                                      f"onto more lines: {summary(doc)!r}")


@pytest.mark.parametrize("module", [m for m in MODULES if DECLARATIONS not in m.relative_to(HELPERS).parts],
                         ids=lambda p: str(p.relative_to(HELPERS)))
def test_public_docstrings_follow_the_house_rule(module: Path):
    problems = [f"{name}: {why}" for name, doc, inherits in public_api(module.read_text(encoding="utf-8"))
                if not inherits and (why := problem(doc))]
    assert not problems, f"helpers/{module.relative_to(HELPERS)}:\n  " + "\n  ".join(problems)
