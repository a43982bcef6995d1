"""Exercises that check themselves, and the chapter's questionnaire (used from notebook 00 onwards).

A notebook carries each exercise unattempted::

    from helpers.exercise_sets import nb03 as ex
    answer = ____
    ex.q1.check(answer)      # not attempted / correct, and why / what is wrong
    ex.q1.hint()             # the first hint; hint(2) the second ...
    ex.q1.solution()         # only now is the reference shown
    ex.progress()            # this notebook's exercises, each marked solved, tried or not yet

This module gathers the public names from the modules that implement them: ``helpers.answers`` (the blank and how
answers are compared), ``helpers.exercise_kinds`` (the kinds of exercise), ``helpers.questionnaire``,
``helpers.verdict_display`` (how verdicts look) and ``helpers.progress_record`` (what is remembered).
"""
from __future__ import annotations

from helpers.answers import NOT_ATTEMPTED_MESSAGE, Tolerance, ____
from helpers.exercise_kinds import (
    CheckResult,
    ChoiceExercise,
    CodeExercise,
    Exercise,
    FunctionExercise,
    Reflection,
    ValueExercise,
)
from helpers.progress_record import track_set
from helpers.questionnaire import Questionnaire

__all__ = ["____", "NOT_ATTEMPTED_MESSAGE", "CheckResult", "Tolerance", "Exercise", "ValueExercise",
           "FunctionExercise", "CodeExercise", "ChoiceExercise", "Reflection", "Questionnaire", "track_set"]
