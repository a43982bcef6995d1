"""Exercises that check themselves, and the chapter's questionnaire (used from notebook 01 onwards).

A notebook carries each exercise unattempted::

    from helpers.exercise_sets import nb03 as ex
    answer = ____
    ex.q1.check(answer)      # prints: not attempted / correct / what is wrong
    ex.q1.hint()             # the first hint; hint(2) the second ...
    ex.q1.solution()         # only now is the reference shown

``check`` never raises for a learner's mistake (a wrong type, a wrong shape, a function that
crashes): it prints what was wrong and what to do, so a notebook run keeps going. ``evaluate``
returns the same verdict as a ``CheckResult`` without printing, for tests.
"""
from __future__ import annotations

import copy
import inspect
import math
import string
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["____", "CheckResult", "Exercise", "ValueExercise", "FunctionExercise", "CodeExercise",
           "ChoiceExercise", "Reflection", "Questionnaire"]


class _Placeholder:
    """The blank a learner fills in: equal only to itself, so it can never pass a check by accident."""

    _instance = None

    def __new__(cls):
        # One blank for the whole process, so `answer is ____` holds even after a re-import of this module's name.
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __eq__(self, other: object) -> bool:
        return other is self

    def __ne__(self, other: object) -> bool:
        return other is not self

    def __hash__(self) -> int:
        return hash("____")

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "____"

    __str__ = __repr__

    def __reduce__(self):
        return (_Placeholder, ())


____ = _Placeholder()

NOT_ATTEMPTED_MESSAGE = "Not attempted yet: replace ____ with your answer, then run the cell again."


@dataclass(frozen=True)
class CheckResult:
    """The verdict on one answer: status is "correct", "incorrect", "not attempted" or "error" (notebook 01)."""

    status: str
    message: str

    @property
    def passed(self) -> bool:
        return self.status == "correct"


class _WrongKind(Exception):
    """The answer is not the kind of object asked for; the text says what to give instead."""


def _contains_placeholder(answer: Any) -> bool:
    if answer is ____:
        return True
    if isinstance(answer, (list, tuple)):
        return any(_contains_placeholder(a) for a in answer)
    if isinstance(answer, Mapping):
        return any(_contains_placeholder(a) for a in answer.values())
    return False


def _short_repr(value: Any, limit: int = 120) -> str:
    text = repr(value).replace("\n", " ")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _kind_name(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, np.ndarray):
        return f"a NumPy array of shape {value.shape}"
    return f"a {type(value).__name__}"


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}".strip().rstrip(":")


# ---- comparing an answer with the expected value ------------------------------------------------

def _numeric_array(value: Any) -> np.ndarray | None:
    """The value as a float/complex NumPy array, or None when it is not numbers (strings, objects, ragged lists)."""
    if isinstance(value, (str, bytes)) or value is None:
        return None
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        # NumPy has no bfloat16; widening is exact for every float type torch has.
        value = value.to(torch.complex128 if value.is_complex() else torch.float64)
        return value.numpy()
    if isinstance(value, (list, tuple)):
        parts = [_numeric_array(v) for v in value]
        if any(p is None for p in parts):
            return None
        try:
            return np.array(parts) if parts else np.zeros((0,))
        except ValueError:  # ragged: parts of different shapes
            return None
    try:
        array = np.asarray(value)
    except Exception:
        return None
    if array.dtype.kind not in "biufc":
        return None
    return array.astype(np.complex128 if array.dtype.kind == "c" else np.float64)


def _format_number(x: Any) -> str:
    if isinstance(x, complex) or np.iscomplexobj(x):
        return str(complex(x))
    return f"{float(x):.6g}"


def _compare_numbers(answer: Any, expected: np.ndarray, rtol: float, atol: float) -> str | None:
    """None when the answer matches the expected numbers; otherwise what is wrong, without giving the answer away."""
    mine = _numeric_array(answer)
    if mine is None:
        want = "a number" if expected.ndim == 0 else f"numbers of shape {expected.shape} (a list, array or tensor)"
        raise _WrongKind(f"expected {want}, but your answer is {_kind_name(answer)}: {_short_repr(answer)}.")
    if mine.shape != expected.shape:
        if expected.ndim == 0:
            extra = " (use .item() to turn a one-element tensor into a number)" if mine.size == 1 else ""
            return f"expected a single number, but your answer has shape {mine.shape}{extra}."
        return f"your answer has shape {mine.shape}, but the expected answer has shape {expected.shape}."
    close = np.isclose(mine, expected, rtol=rtol, atol=atol, equal_nan=True)
    if close.all():
        return None
    if expected.ndim == 0:
        value = mine.item()
        if np.isnan(value):
            return "your answer is nan; the expected value is a number."
        if np.isnan(expected.item()):
            return f"your answer is {_format_number(value)}; think about what the operation gives outside its domain."
        if np.iscomplexobj(mine) or np.iscomplexobj(expected):
            return f"your answer {_format_number(value)} is not the expected value."
        direction = "too high" if value > expected.item() else "too low"
        return f"your answer {_format_number(value)} is {direction}."
    wrong = np.argwhere(~close)
    first = tuple(int(i) for i in wrong[0])
    index = first[0] if len(first) == 1 else first
    return (f"{len(wrong)} of {close.size} values differ from the expected ones; "
            f"the first is at index {index}, where yours is {_format_number(mine[first])}.")


def _compare(answer: Any, expected: Any, rtol: float, atol: float) -> str | None:
    """Compare any answer with any expected value: numbers with tolerance, structures part by part, the rest with ==."""
    if isinstance(expected, bool) or isinstance(expected, np.bool_):
        if not isinstance(answer, (bool, np.bool_)) and not (isinstance(answer, torch.Tensor) and answer.dtype == torch.bool and answer.numel() == 1):
            raise _WrongKind(f"expected True or False, but your answer is {_kind_name(answer)}: {_short_repr(answer)}.")
        return None if bool(answer) == bool(expected) else f"your answer {bool(answer)} is not right."
    numbers = _numeric_array(expected)
    if numbers is not None:
        return _compare_numbers(answer, numbers, rtol, atol)
    if isinstance(expected, str):
        if not isinstance(answer, str):
            raise _WrongKind(f"expected a string (text in quotes), but your answer is {_kind_name(answer)}: {_short_repr(answer)}.")
        return None if answer.strip() == expected.strip() else f"your answer {answer.strip()!r} is not the expected text."
    if isinstance(expected, (list, tuple)):
        if not isinstance(answer, (list, tuple)):
            raise _WrongKind(f"expected a list or tuple of {len(expected)} items, but your answer is {_kind_name(answer)}.")
        if len(answer) != len(expected):
            return f"your answer has {len(answer)} items, but the expected answer has {len(expected)}."
        for i, (mine, want) in enumerate(zip(answer, expected)):
            problem = _compare(mine, want, rtol, atol)
            if problem:
                return f"item {i}: {problem}"
        return None
    if isinstance(expected, Mapping):
        if not isinstance(answer, Mapping):
            raise _WrongKind(f"expected a dictionary, but your answer is {_kind_name(answer)}.")
        if set(answer) != set(expected):
            return f"your keys {sorted(map(str, answer))} are not the expected keys."
        for key in expected:
            problem = _compare(answer[key], expected[key], rtol, atol)
            if problem:
                return f"at key {key!r}: {problem}"
        return None
    return None if answer == expected else f"your answer {_short_repr(answer)} is not the expected value."


# ---- the exercise kinds ------------------------------------------------------------------------

class Exercise:
    """What every exercise shares: a prompt, numbered hints, a hidden solution, and check/evaluate (notebook 01)."""

    checkable = True

    def __init__(self, prompt: str, hints: Sequence[str] = (), solution: str = "", wrong_answers: Sequence[Any] = (),
                 right_answers: Sequence[Any] = ()):
        if isinstance(hints, str):
            hints = (hints,)  # one hint written as a plain string is still one hint, not a hint per letter
        # cleandoc, not dedent: a prompt usually starts right after the opening quotes, unindented.
        self.prompt = inspect.cleandoc(prompt)
        self.hints = tuple(hints)
        self._solution = inspect.cleandoc(solution)
        self.wrong_answers = tuple(wrong_answers)
        # Other correct answers a learner may reasonably give (another form, another method): the tests check that
        # each passes, so a checker that only accepts its own reference shows up.
        self.right_answers = tuple(right_answers)

    @property
    def reference_answer(self) -> Any:
        """An answer that passes this exercise (what the tests feed it)."""
        raise NotImplementedError

    def _judge(self, answer: Any) -> CheckResult:
        raise NotImplementedError

    def evaluate(self, answer: Any = ____) -> CheckResult:
        """The verdict on ``answer`` without printing anything."""
        if _contains_placeholder(answer):
            return CheckResult("not attempted", NOT_ATTEMPTED_MESSAGE)
        try:
            return self._judge(answer)
        except _WrongKind as problem:
            return CheckResult("error", f"Your answer has the wrong type: {problem}")
        except Exception as error:  # a learner's object misbehaving must never stop the notebook
            return CheckResult("error", f"Checking your answer raised {_error_text(error)}. "
                                        "Is it the kind of object the exercise asks for?")

    def check(self, answer: Any = ____) -> None:
        """Print whether ``answer`` is right, and if not, what is wrong and what to try."""
        result = self.evaluate(answer)
        headline = {"correct": "Correct!", "incorrect": "Not quite:", "not attempted": "",
                    "error": "Could not check this answer."}[result.status]
        print(f"{headline} {result.message}".strip())

    def hint(self, n: int = 1) -> None:
        """Print hint number ``n`` (counting from 1)."""
        if not self.hints:
            print("There are no hints for this exercise; .solution() shows the answer.")
        elif not isinstance(n, int) or n < 1:
            print(f"Hints are numbered from 1: try .hint(1) (there are {len(self.hints)}).")
        elif n > len(self.hints):
            print(f"There are only {len(self.hints)} hint(s) for this exercise: try .hint({len(self.hints)}), "
                  "or .solution() to see the answer.")
        else:
            more = f" (.hint({n + 1}) gives another)" if n < len(self.hints) else ""
            print(f"Hint {n} of {len(self.hints)}{more}: {self.hints[n - 1]}")

    def solution_text(self) -> str:
        """The reference solution as text (what ``solution()`` prints)."""
        return self._solution

    def solution(self) -> None:
        """Print the reference solution; until this is called it is not shown anywhere."""
        print("Solution:\n" + textwrap.indent(self.solution_text(), "    "))

    def show(self) -> None:
        """Print the question."""
        print(self.prompt)

    def __repr__(self) -> str:
        return f"{type(self).__name__}: {self.prompt}"


class ValueExercise(Exercise):
    """An answer compared with an expected value: numbers within a tolerance, arrays/tensors shape first (notebook 01)."""

    def __init__(self, prompt: str, expected: Any, hints: Sequence[str] = (), solution: str = "",
                 rtol: float = 1e-4, atol: float = 1e-6, wrong_answers: Sequence[Any] = (),
                 right_answers: Sequence[Any] = ()):
        super().__init__(prompt, hints, solution, wrong_answers, right_answers)
        self.expected = expected
        self.rtol, self.atol = rtol, atol

    @property
    def reference_answer(self) -> Any:
        return self.expected

    def _judge(self, answer: Any) -> CheckResult:
        problem = _compare(answer, self.expected, self.rtol, self.atol)
        if problem:
            return CheckResult("incorrect", problem[0].upper() + problem[1:] + " Try .hint() if you are stuck.")
        return CheckResult("correct", "That is the expected value.")

    def solution_text(self) -> str:
        return self._solution or f"answer = {_short_repr(self.expected, 400)}"


def _call_description(name: str, args: tuple, kwargs: dict) -> str:
    parts = [_short_repr(a, 80) for a in args] + [f"{k}={_short_repr(v, 80)}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"


class FunctionExercise(Exercise):
    """A function the learner writes, run on test cases and compared with a reference function (notebook 01).

    Each test case is a tuple of positional arguments, a dict of keyword arguments, or a single
    argument on its own. Arguments are copied before every call, so a function that changes its
    input in place cannot spoil the comparison.
    """

    def __init__(self, prompt: str, reference: Callable, test_cases: Sequence[Any], hints: Sequence[str] = (),
                 solution: str = "", wrong_answers: Sequence[Any] = (), rtol: float = 1e-4, atol: float = 1e-6,
                 right_answers: Sequence[Any] = ()):
        super().__init__(prompt, hints, solution, wrong_answers, right_answers)
        if not callable(reference):
            raise TypeError(f"FunctionExercise needs a callable reference, got {_kind_name(reference)}.")
        if not test_cases:
            raise ValueError("FunctionExercise needs at least one test case.")
        self.reference = reference
        self.test_cases = tuple(test_cases)
        self.rtol, self.atol = rtol, atol

    @property
    def reference_answer(self) -> Any:
        return self.reference

    @staticmethod
    def _arguments(case: Any) -> tuple[tuple, dict]:
        if isinstance(case, tuple):
            return case, {}
        if isinstance(case, dict):
            return (), case
        return (case,), {}

    def _judge(self, answer: Any) -> CheckResult:
        if not callable(answer):
            raise _WrongKind(f"expected a function, but your answer is {_kind_name(answer)}. "
                             "Define it with `def`, then pass the function itself, without calling it (no parentheses).")
        name = getattr(answer, "__name__", "your_function")
        for number, case in enumerate(self.test_cases, 1):
            args, kwargs = self._arguments(case)
            call = _call_description(name, args, kwargs)
            expected = self.reference(*copy.deepcopy(args), **copy.deepcopy(kwargs))
            try:
                got = answer(*copy.deepcopy(args), **copy.deepcopy(kwargs))
            except Exception as error:
                return CheckResult("error", f"Your function raised {_error_text(error)} on test case {number}: {call}.")
            if _contains_placeholder(got):
                return CheckResult("not attempted", "Not attempted yet: your function still returns ____; "
                                                    "replace it with your code, then run the cell again.")
            try:
                problem = _compare(got, expected, self.rtol, self.atol)
            except _WrongKind as wrong:
                return CheckResult("error", f"On test case {number}, {call}, your function returned the wrong type: {wrong}")
            if problem:
                return CheckResult("incorrect", f"Test case {number} of {len(self.test_cases)} fails: for {call}, "
                                                f"{problem} Expected {_short_repr(expected)}.")
        return CheckResult("correct", f"Your function passes all {len(self.test_cases)} test cases.")

    def solution_text(self) -> str:
        if self._solution:
            return self._solution
        try:
            return textwrap.dedent(inspect.getsource(self.reference)).strip()
        except (OSError, TypeError):
            return f"(see {getattr(self.reference, '__qualname__', repr(self.reference))})"


class CodeExercise(Exercise):
    """An answer checked by custom assertions: ``checker(answer)`` raises AssertionError saying what is wrong (notebook 01)."""

    def __init__(self, prompt: str, checker: Callable[[Any], Any], reference: Any = None, hints: Sequence[str] = (),
                 solution: str = "", wrong_answers: Sequence[Any] = (), right_answers: Sequence[Any] = ()):
        super().__init__(prompt, hints, solution, wrong_answers, right_answers)
        self.checker = checker
        self.reference = reference

    @property
    def reference_answer(self) -> Any:
        return self.reference

    def _judge(self, answer: Any) -> CheckResult:
        try:
            self.checker(answer)
        except AssertionError as failed:
            text = str(failed).strip() or "your answer does not pass the check."
            return CheckResult("incorrect", text + " Try .hint() if you are stuck.")
        return CheckResult("correct", "Your answer passes every check.")


class ChoiceExercise(Exercise):
    """Pick one of several options, answering with its letter ("b") or its exact text (notebook 01).

    ``answer`` names the right option by letter, by its text, or by its position counting from 0.
    """

    def __init__(self, prompt: str, options: Sequence[Any], answer: Any, hints: Sequence[str] = (),
                 solution: str = "", wrong_answers: Sequence[Any] = (), right_answers: Sequence[Any] = ()):
        super().__init__(prompt, hints, solution, wrong_answers, right_answers)
        self.options = list(options.values()) if isinstance(options, Mapping) else list(options)
        if not 2 <= len(self.options) <= 26:
            raise ValueError(f"ChoiceExercise needs 2 to 26 options, got {len(self.options)}.")
        self.letters = list(string.ascii_lowercase[: len(self.options)])
        if isinstance(answer, int) and not isinstance(answer, bool):
            if not 0 <= answer < len(self.options):
                raise ValueError(f"answer index {answer} is outside the {len(self.options)} options.")
            self.answer_index = answer
        else:
            found = self._find(answer)
            if found is None:
                raise ValueError(f"answer {answer!r} is neither a letter {self.letters} nor one of the options.")
            self.answer_index = found

    @property
    def answer(self) -> str:
        """The letter of the right option."""
        return self.letters[self.answer_index]

    @property
    def reference_answer(self) -> Any:
        return self.answer

    def _find(self, answer: Any) -> int | None:
        if isinstance(answer, str):
            key = answer.strip()
            if key.lower().rstrip(")") in self.letters:
                return self.letters.index(key.lower().rstrip(")"))
            for i, option in enumerate(self.options):
                if isinstance(option, str) and option.strip().lower() == key.lower():
                    return i
            return None
        for i, option in enumerate(self.options):
            # `type(...) is` keeps True from matching an option 1
            if type(option) is type(answer) and option == answer:
                return i
        return None

    def option_lines(self) -> list[str]:
        return [f"  {letter}) {option}" for letter, option in zip(self.letters, self.options)]

    def show(self) -> None:
        print("\n".join([self.prompt, *self.option_lines()]))

    def __repr__(self) -> str:
        return "\n".join([f"{type(self).__name__}: {self.prompt}", *self.option_lines()])

    def _judge(self, answer: Any) -> CheckResult:
        chosen = self._find(answer)
        if chosen is None:
            raise _WrongKind(f"{_short_repr(answer)} is not one of the choices; answer with a letter from "
                             f"{', '.join(repr(l) for l in self.letters)} (as a string, in quotes).")
        if chosen == self.answer_index:
            return CheckResult("correct", f"{self.letters[chosen]}) is right.")
        return CheckResult("incorrect", f"{self.letters[chosen]}) is not the best choice. Try .hint() if you are stuck.")

    def solution_text(self) -> str:
        line = f"{self.answer}) {self.options[self.answer_index]}"
        return line + ("\n" + self._solution if self._solution else "")


class Reflection(Exercise):
    """A question to answer in your own words: shown, not checked; ``solution()`` prints a model answer (notebook 01)."""

    checkable = False

    def __init__(self, prompt: str, model_answer: str):
        super().__init__(prompt, hints=(), solution=model_answer)
        self.model_answer = self._solution

    @property
    def reference_answer(self) -> Any:
        return self.model_answer

    def _judge(self, answer: Any) -> CheckResult:
        if not isinstance(answer, str):
            raise _WrongKind(f"write your answer as text in quotes; got {_kind_name(answer)}.")
        if not answer.strip():
            return CheckResult("not attempted", "Not attempted yet: write your answer in the quotes, then run the cell again.")
        return CheckResult("correct", "Noted. This one is not checked automatically: "
                                      "compare your answer with the model answer from .solution().")

    def check(self, answer: Any = ____) -> None:
        result = self.evaluate(answer)
        if result.status == "not attempted":
            print("This question is not checked automatically: answer it in your own words, "
                  "then compare with .solution().")
        elif result.status == "correct":
            print(result.message)  # no "Correct!": nothing was checked
        else:
            super().check(answer)

    def solution(self) -> None:
        print("Model answer:\n" + textwrap.indent(textwrap.fill(self.model_answer, 96), "    "))


class Questionnaire:
    """A notebook's part of the chapter's questionnaire; numbered from 1 like the printed list: ``quiz[3]`` (notebook 01)."""

    def __init__(self, questions: Sequence[Exercise]):
        questions = list(questions)
        for i, q in enumerate(questions, 1):
            if not isinstance(q, Exercise):
                raise TypeError(f"questionnaire item {i} is {_kind_name(q)}; wrap it in an exercise, "
                                "e.g. Reflection(prompt, model_answer).")
        self.questions = questions

    def __len__(self) -> int:
        return len(self.questions)

    def __iter__(self):
        return iter(self.questions)

    def __getitem__(self, number: int) -> Exercise:
        if not isinstance(number, int) or not 1 <= number <= len(self.questions):
            raise IndexError(f"questions are numbered 1 to {len(self.questions)}; got {number!r}.")
        return self.questions[number - 1]

    def show(self) -> None:
        """Print the numbered questions, saying which ones are checked."""
        for number, q in enumerate(self.questions, 1):
            label = "" if q.checkable else "  (written answer: compare with .solution())"
            lines = q.prompt.splitlines()
            print(f"{number}. {lines[0]}" + ("" if len(lines) > 1 else label))
            for line in lines[1:]:
                print(f"   {line}")
            if isinstance(q, ChoiceExercise):
                for line in q.option_lines():
                    print(f"  {line}")
            if len(lines) > 1 and label:
                print(f"  {label.strip()}")

    def solutions(self) -> None:
        """Print every model answer, numbered."""
        for number, q in enumerate(self.questions, 1):
            print(f"{number}. {q.prompt.splitlines()[0]}")
            print(textwrap.indent(textwrap.fill(q.solution_text(), 92) if isinstance(q, Reflection)
                                  else q.solution_text(), "     "))

    def __repr__(self) -> str:
        return f"Questionnaire with {len(self.questions)} questions: call .show() to list them."
