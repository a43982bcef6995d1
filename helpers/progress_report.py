"""``python -m helpers progress [--reset]``: each notebook's exercises solved, and the hints and solutions shown.

Read from the progress record (helpers/progress_record.py); ``--reset`` clears it.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import re
from collections.abc import Mapping
from typing import Any

import helpers.exercise_sets
from helpers.progress_record import exercises_in, load, record_path, reset

__all__ = ["summary_lines", "main"]


def _all_sets() -> dict[str, list[tuple[str, Any]]]:
    """{notebook: [(key, exercise)]} of the checked exercises of every set in helpers/exercise_sets."""
    sets = {}
    for module in sorted(m.name for m in pkgutil.iter_modules(helpers.exercise_sets.__path__)):
        if re.fullmatch(r"nb\d\d", module):
            namespace = vars(importlib.import_module(f"helpers.exercise_sets.{module}"))
            sets[module[2:]] = [(k, e) for k, e in exercises_in(namespace) if e.checkable]
    return sets


def summary_lines(record: Mapping[str, Any], sets: Mapping[str, list[tuple[str, Any]]]) -> list[str]:
    """One line per notebook: solved of total, hints and solutions shown (python -m helpers progress)."""
    lines = []
    for notebook, exercises in sets.items():
        entries = record.get(notebook, {})
        keys = [key for key, _ in exercises]
        solved = sum(bool(entries.get(k, {}).get("solved")) for k in keys)
        hints = sum(entries.get(k, {}).get("hints", 0) for k in keys)
        solutions = sum(entries.get(k, {}).get("solutions", 0) for k in keys)
        lines.append(f"notebook {notebook}: {solved:>2} of {len(keys):>2} solved, {hints} hints used, "
                     f"{solutions} solutions shown")
    return lines


def main(argv: list[str] | None = None) -> int:
    """``python -m helpers progress [--reset]``: print every notebook's count, or clear the record (notebook 00)."""
    parser = argparse.ArgumentParser(prog="python -m helpers progress",
                                     description="Show which exercises you solved in each notebook.")
    parser.add_argument("--reset", action="store_true", help="forget every recorded check, hint and solution")
    args = parser.parse_args(argv)
    if args.reset:
        print(f"Progress record cleared ({reset()}).")
        return 0
    path = record_path()
    record = load()
    print(f"Exercise progress ({path}{'' if path.exists() else ', nothing recorded yet'}):")
    for line in summary_lines(record, _all_sets()):
        print("  " + line)
    return 0
