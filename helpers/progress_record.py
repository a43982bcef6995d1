"""The learner's progress record: which exercises were checked, solved, and how much help was shown (every notebook).

Every ``check`` of an attempted answer, every ``hint`` and every ``solution`` updates one small JSON file in the data
cache (``$COURSE_DATA/exercise_progress.json``), so the record survives kernel restarts and is shared by all
notebooks. It stays on this machine. Like Kaggle Learn's exercises, it counts checks, hints and solutions per
exercise; unlike them it keeps a blank ``____`` check out of the record, so running a notebook top to bottom (as CI
does) records nothing.

The file is rewritten whole (``helpers.outputs.written_whole``), so a reader never sees half of it. A record
that cannot be written never breaks a check: it warns once, then stays silent.
"""
from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from helpers import verdict_display
from helpers.outputs import written_whole

__all__ = ["RECORD_NAME", "record_path", "load", "note", "reset", "track_set", "exercises_in", "notebook_lines"]

RECORD_NAME = "exercise_progress.json"
_warned = False


def record_path() -> Path:
    """Where the record lives: ``exercise_progress.json`` in the data cache (notebook 00)."""
    # Imported here: helpers.cache brings torchvision, which an exercise set need not load until something is recorded.
    from helpers.cache import cache_dir

    return cache_dir() / RECORD_NAME


def _warn_once(message: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(message, RuntimeWarning, stacklevel=4)


def load() -> dict[str, dict[str, dict[str, Any]]]:
    """The record as {notebook: {exercise: entry}}; empty when there is none yet (notebook 00)."""
    try:
        data = json.loads(record_path().read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as error:
        # Kept aside, not overwritten: whatever can still be read in it stays the learner's.
        kept = record_path().with_suffix(".damaged.json")
        os.replace(record_path(), kept)
        _warn_once(f"Your exercise progress record was damaged ({error}); it is kept as {kept}, and a new record "
                   "starts now.")
        return {}
    notebooks = data.get("notebooks") if isinstance(data, dict) else None
    return notebooks if isinstance(notebooks, dict) else {}


def _write(notebooks: Mapping[str, Any]) -> None:
    with written_whole(record_path()) as temporary, open(temporary, "w", encoding="utf-8") as file:
        json.dump({"version": 1, "notebooks": notebooks}, file, indent=1, sort_keys=True)


def note(notebook: str, exercise: str, *, verdict: str | None = None, hint: int = 0, solution: bool = False) -> None:
    """Add one event to the record: a checked verdict, a hint number shown, or a solution shown (notebook 00).

    The file is read again just before it is written, so two kernels that take turns both keep their events.
    """
    try:
        notebooks = load()
        entry = notebooks.setdefault(notebook, {}).setdefault(exercise, {})
        for field, start in (("checks", 0), ("solved", False), ("hints", 0), ("solutions", 0)):
            entry.setdefault(field, start)
        if verdict is not None:
            entry["checks"] += 1
            entry["last_verdict"] = verdict
            entry["solved"] = entry["solved"] or verdict == "correct"
            entry["last_check"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        entry["hints"] = max(entry["hints"], hint)  # hints are numbered; seeing hint 2 twice is still two hints
        entry["solutions"] += int(solution)
        _write(notebooks)
    except Exception as error:  # a full disk or a read-only cache must never break a learner's check
        _warn_once(f"Your exercise progress cannot be saved ({type(error).__name__}: {error}); checks still work, "
                   "but nothing is remembered. Point COURSE_DATA at a folder you can write to (now "
                   f"{record_path().parent}).")


def reset() -> Path:
    """Forget every recorded check, hint and solution: ``python -m helpers progress --reset`` (notebook 00)."""
    path = record_path()
    path.unlink(missing_ok=True)
    return path


def exercises_in(namespace: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(key, exercise) for q1, q2, ... and each questionnaire item, in the notebook's order (notebooks 00 to 09)."""
    # Recognised by what they do, not by class: helpers.exercise_kinds imports this module, not the other way round.
    found = [(name, value) for name, value in namespace.items()
             if re.fullmatch(r"q\d+", name) and callable(getattr(value, "evaluate", None))]
    found.sort(key=lambda pair: int(pair[0][1:]))
    quiz = namespace.get("questionnaire")
    found += [(f"questionnaire[{i}]", q) for i, q in enumerate(quiz or [], 1)]
    return found


def track_set(namespace: dict[str, Any]) -> Callable[[], None]:
    """Name every exercise of an exercise set for the record; returns the set's ``progress()`` (notebooks 00 to 09).

    Called last in ``helpers/exercise_sets/nbNN.py`` as ``progress = track_set(globals())``.
    """
    notebook = namespace["__name__"].rpartition(".")[2].removeprefix("nb")
    exercises = exercises_in(namespace)
    for key, exercise in exercises:
        exercise.record_as = (notebook, key)

    def progress() -> None:
        """Show this notebook's exercises, each with a mark: [x] solved, [~] tried, [ ] not yet (notebooks 00 to 09)."""
        lines = notebook_lines(notebook, [(k, e) for k, e in exercises if e.checkable], load().get(notebook, {}))
        verdict_display.show("note", f"Notebook {notebook}:", lines[0], table="\n".join(lines[1:]))

    return progress


def notebook_lines(notebook: str, exercises: Iterable[tuple[str, Any]], entries: Mapping[str, Any]) -> list[str]:
    """A summary line, then one line per checkable exercise with its mark and the help it took (notebook 00)."""
    exercises = list(exercises)
    solved = sum(bool(entries.get(key, {}).get("solved")) for key, _ in exercises)
    lines = [f"{solved} of {len(exercises)} exercises solved. [x] solved, [~] tried, [ ] not tried yet."]
    for key, exercise in exercises:
        entry = entries.get(key, {})
        mark = "[x]" if entry.get("solved") else "[~]" if entry.get("checks") else "[ ]"
        help_taken = [f"{entry[f]} {f if entry[f] != 1 else f[:-1]}" for f in ("hints", "solutions") if entry.get(f)]
        prompt = exercise.prompt.splitlines()[0]
        prompt = prompt if len(prompt) <= 60 else prompt[:57] + "..."
        lines.append(f"{mark} {key:<18} {prompt}" + (f"  ({', '.join(help_taken)})" if help_taken else ""))
    return lines
