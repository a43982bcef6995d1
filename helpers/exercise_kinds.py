"""The kinds of exercise a notebook asks: a value, a function, code checked by assertions, a choice, a written answer.

Each kind shares the same surface (notebook 01): ``show()`` the question, ``check(answer)``, ``hint(n)``,
``solution()``, and ``evaluate(answer)``, which returns the verdict without showing or recording anything (for tests).
``check`` never raises for a learner's mistake (a wrong type, a wrong shape, a function that crashes): it says what
was wrong and what to do, so a notebook run keeps going. A correct answer also shows the exercise's ``explanation``:
why that is the answer, in a sentence or two.
"""
from __future__ import annotations

import copy
import inspect
import string
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from helpers import progress_record, verdict_display
from helpers.answers import (
    NOT_ATTEMPTED_MESSAGE,
    Tolerance,
    WrongKind,
    ____,
    compare,
    contains_placeholder,
    error_text,
    kind_name,
    short_repr,
)

__all__ = ["CheckResult", "Exercise", "ValueExercise", "FunctionExercise", "CodeExercise", "ChoiceExercise",
           "Reflection"]

HEADLINES = {"correct": "Correct!", "incorrect": "Not quite:", "not attempted": "", "error": "Could not check this "
                                                                                             "answer."}


@dataclass(frozen=True)
class CheckResult:
    """The verdict on one answer: status is "correct", "incorrect", "not attempted" or "error" (notebook 01)."""

    status: str
    message: str

    @property
    def passed(self) -> bool:
        """Whether the answer was right (notebook 00 onwards)."""
        return self.status == "correct"


class Exercise:
    """What every exercise shares: a prompt, numbered hints, a hidden solution, and check/evaluate (notebook 01)."""

    checkable = True
    solution_is_code = True

    def __init__(self, prompt: str, hints: Sequence[str] = (), solution: str = "", wrong_answers: Sequence[Any] = (),
                 right_answers: Sequence[Any] = (), explanation: str = ""):
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
        self.explanation = " ".join(explanation.split())
        # (notebook, key) under which checks, hints and solutions are recorded; set by progress_record.track_set.
        self.record_as: tuple[str, str] | None = None

    @property
    def reference_answer(self) -> Any:
        """An answer that passes this exercise, what the tests feed it (notebook 00 onwards)."""
        raise NotImplementedError

    def _judge(self, answer: Any) -> CheckResult:
        raise NotImplementedError

    def evaluate(self, answer: Any = ____) -> CheckResult:
        """The verdict on ``answer`` without showing or recording anything (notebook 00 onwards, via ``check``)."""
        if contains_placeholder(answer):
            return CheckResult("not attempted", NOT_ATTEMPTED_MESSAGE)
        try:
            return self._judge(answer)
        except WrongKind as problem:
            return CheckResult("error", f"Your answer has the wrong type: {problem}")
        except Exception as error:  # a learner's object misbehaving must never stop the notebook
            return CheckResult("error", f"Checking your answer raised {error_text(error)}. "
                                        "Is it the kind of object the exercise asks for?")

    def _record(self, **event: Any) -> None:
        if self.record_as is not None and self.checkable:
            progress_record.note(*self.record_as, **event)

    def check(self, answer: Any = ____) -> None:
        """Say if ``answer`` is right and why, or what is wrong and what to try; record it (notebook 00 onwards)."""
        result = self.evaluate(answer)
        text = result.message
        if result.passed and self.explanation:
            text += "\nWhy: " + self.explanation
        verdict_display.show(result.status, HEADLINES[result.status], text)
        if result.status != "not attempted":
            self._record(verdict=result.status)

    def hint(self, n: int = 1) -> None:
        """Show hint number ``n``, counting from 1 (notebook 00 onwards)."""
        if not self.hints:
            verdict_display.show("hint", "No hints:", "there are no hints for this exercise; .solution() shows the "
                                                      "answer.")
        elif not isinstance(n, int) or n < 1:
            verdict_display.show("hint", "Hints are numbered from 1:", f"try .hint(1) (there are {len(self.hints)}).")
        elif n > len(self.hints):
            verdict_display.show("hint", f"There are only {len(self.hints)} hint(s) for this exercise:",
                                 f"try .hint({len(self.hints)}), or .solution() to see the answer.")
        else:
            more = f" (.hint({n + 1}) gives another)" if n < len(self.hints) else ""
            verdict_display.show("hint", f"Hint {n} of {len(self.hints)}{more}:", self.hints[n - 1])
            self._record(hint=n)

    def solution_text(self) -> str:
        """The reference solution as text, what ``solution()`` shows (notebook 00 onwards)."""
        return self._solution

    def solution(self) -> None:
        """Show the reference solution; until this is called it is not shown anywhere (notebook 00 onwards)."""
        if self.solution_is_code:
            verdict_display.show("solution", "Solution:", code=self.solution_text())
        else:
            verdict_display.show("solution", "Solution:", self.solution_text())
        self._record(solution=True)

    def show(self) -> None:
        """Print the question (notebook 00 onwards)."""
        print(self.prompt)

    def __repr__(self) -> str:
        return f"{type(self).__name__}: {self.prompt}"


def rounding_sentence(decimals: int) -> str:
    """What a prompt asking for a rounded value says, so the learner knows what passes (notebook 00 onwards)."""
    if decimals == 0:
        return "Round to a whole number (decimals are fine too)."
    places = "decimal place" if decimals == 1 else "decimal places"
    return f"Round to {decimals} {places} (more are fine too)."


class ValueExercise(Exercise):
    """An answer compared with an expected value: numbers within a tolerance, structures by part (notebook 00 onwards).

    ``decimals`` asks for a rounded value and says so in the prompt; ``shape_matters`` compares size-1 axes too;
    integers are compared exactly.
    """

    def __init__(self, prompt: str, expected: Any, hints: Sequence[str] = (), solution: str = "",
                 rtol: float = 1e-4, floor: float = 1e-6, decimals: int | None = None, shape_matters: bool = False,
                 wrong_answers: Sequence[Any] = (), right_answers: Sequence[Any] = (), explanation: str = ""):
        super().__init__(prompt, hints, solution, wrong_answers, right_answers, explanation)
        if decimals is not None:
            self.prompt += ("\n" if "\n" in self.prompt else " ") + rounding_sentence(decimals)
        self.expected = expected
        self.tolerance = Tolerance(rtol=rtol, floor=floor, decimals=decimals, shape_matters=shape_matters)

    @property
    def reference_answer(self) -> Any:
        return self.expected

    def _judge(self, answer: Any) -> CheckResult:
        problem = compare(answer, self.expected, self.tolerance)
        if problem:
            return CheckResult("incorrect", problem[0].upper() + problem[1:] + " Try .hint() if you are stuck.")
        return CheckResult("correct", "That is the expected value.")

    def solution_text(self) -> str:
        return self._solution or f"answer = {short_repr(self.expected, 400)}"


def _call_description(name: str, args: tuple, kwargs: dict) -> str:
    parts = [short_repr(a, 80) for a in args] + [f"{k}={short_repr(v, 80)}" for k, v in kwargs.items()]
    return f"{name}({', '.join(parts)})"


class FunctionExercise(Exercise):
    """A function the learner writes, run on test cases and compared with a reference function (notebook 01).

    Each test case is a tuple of positional arguments, a dict of keyword arguments, or a single
    argument on its own. Arguments are copied before every call, so a function that changes its
    input in place cannot spoil the comparison.
    """

    def __init__(self, prompt: str, reference: Callable, test_cases: Sequence[Any], hints: Sequence[str] = (),
                 solution: str = "", wrong_answers: Sequence[Any] = (), rtol: float = 1e-4, floor: float = 1e-6,
                 right_answers: Sequence[Any] = (), explanation: str = "", shape_matters: bool = False):
        super().__init__(prompt, hints, solution, wrong_answers, right_answers, explanation)
        if not callable(reference):
            raise TypeError(f"FunctionExercise needs a callable reference, got {kind_name(reference)}.")
        if not test_cases:
            raise ValueError("FunctionExercise needs at least one test case.")
        self.reference = reference
        self.test_cases = tuple(test_cases)
        self.tolerance = Tolerance(rtol=rtol, floor=floor, shape_matters=shape_matters)

    @property
    def reference_answer(self) -> Any:
        return self.reference

    @staticmethod
    def arguments(case: Any) -> tuple[tuple, dict]:
        """A test case as (positional arguments, keyword arguments) (notebook 00 onwards)."""
        if isinstance(case, tuple):
            return case, {}
        if isinstance(case, dict):
            return (), case
        return (case,), {}

    def _judge(self, answer: Any) -> CheckResult:
        if not callable(answer):
            raise WrongKind(f"expected a function, but your answer is {kind_name(answer)}. "
                            "Define it with `def`, then pass the function itself, without calling it (no parentheses).")
        name = getattr(answer, "__name__", "your_function")
        for number, case in enumerate(self.test_cases, 1):
            args, kwargs = self.arguments(case)
            call = _call_description(name, args, kwargs)
            expected = self.reference(*copy.deepcopy(args), **copy.deepcopy(kwargs))
            try:
                got = answer(*copy.deepcopy(args), **copy.deepcopy(kwargs))
            except Exception as error:
                return CheckResult("error", f"Your function raised {error_text(error)} on test case {number}: {call}.")
            if contains_placeholder(got):
                return CheckResult("not attempted", "Not attempted yet: your function still returns ____; "
                                                    "replace it with your code, then run the cell again.")
            try:
                problem = compare(got, expected, self.tolerance)
            except WrongKind as wrong:
                return CheckResult("error", f"On test case {number}, {call}, your function returned the wrong type: "
                                            f"{wrong}")
            if problem:
                return CheckResult("incorrect", f"Test case {number} of {len(self.test_cases)} fails: for {call}, "
                                                f"{problem} Expected {short_repr(expected)}.")
        return CheckResult("correct", f"Your function passes all {len(self.test_cases)} test cases.")

    def solution_text(self) -> str:
        if self._solution:
            return self._solution
        try:
            return textwrap.dedent(inspect.getsource(self.reference)).strip()
        except (OSError, TypeError):
            return f"(see {getattr(self.reference, '__qualname__', repr(self.reference))})"


class CodeExercise(Exercise):
    """An answer checked by ``checker(answer)``, whose AssertionError says what is wrong (notebook 00 onwards)."""

    def __init__(self, prompt: str, checker: Callable[[Any], Any], reference: Any = None, hints: Sequence[str] = (),
                 solution: str = "", wrong_answers: Sequence[Any] = (), right_answers: Sequence[Any] = (),
                 explanation: str = ""):
        super().__init__(prompt, hints, solution, wrong_answers, right_answers, explanation)
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

    solution_is_code = False

    def __init__(self, prompt: str, options: Sequence[Any], answer: Any, hints: Sequence[str] = (),
                 solution: str = "", wrong_answers: Sequence[Any] = (), right_answers: Sequence[Any] = (),
                 explanation: str = ""):
        super().__init__(prompt, hints, solution, wrong_answers, right_answers, explanation)
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
        """The letter of the right option (notebook 00 onwards)."""
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
        """The options as printed, one line each, lettered (notebook 00 onwards)."""
        return [f"  {letter}) {option}" for letter, option in zip(self.letters, self.options)]

    def show(self) -> None:
        print("\n".join([self.prompt, *self.option_lines()]))

    def __repr__(self) -> str:
        return "\n".join([f"{type(self).__name__}: {self.prompt}", *self.option_lines()])

    def _judge(self, answer: Any) -> CheckResult:
        chosen = self._find(answer)
        if chosen is None:
            raise WrongKind(f"{short_repr(answer)} is not one of the choices; answer with a letter from "
                            f"{', '.join(repr(letter) for letter in self.letters)} (as a string, in quotes).")
        if chosen == self.answer_index:
            return CheckResult("correct", f"{self.letters[chosen]}) is right.")
        return CheckResult("incorrect", f"{self.letters[chosen]}) is not the best choice. Try .hint() if you are "
                                        "stuck.")

    def solution_text(self) -> str:
        line = f"{self.answer}) {self.options[self.answer_index]}"
        return line + ("\n" + self._solution if self._solution else "")


class Reflection(Exercise):
    """A question to answer in your own words: shown, not checked; ``solution()`` shows a model answer (notebook 01)."""

    checkable = False
    solution_is_code = False

    def __init__(self, prompt: str, model_answer: str):
        super().__init__(prompt, hints=(), solution=model_answer)
        self.model_answer = self._solution

    @property
    def reference_answer(self) -> Any:
        return self.model_answer

    def _judge(self, answer: Any) -> CheckResult:
        if not isinstance(answer, str):
            raise WrongKind(f"write your answer as text in quotes; got {kind_name(answer)}.")
        if not answer.strip():
            return CheckResult("not attempted", "Not attempted yet: write your answer in the quotes, then run the cell "
                                                "again.")
        return CheckResult("correct", "Noted. This one is not checked automatically: "
                                      "compare your answer with the model answer from .solution().")

    def check(self, answer: Any = ____) -> None:
        result = self.evaluate(answer)
        if result.status == "not attempted":
            verdict_display.show("not attempted", "", "This question is not checked automatically: answer it in "
                                                      "your own words, then compare with .solution().")
        elif result.status == "correct":
            verdict_display.show("note", "", result.message)  # no "Correct!": nothing was checked
        else:
            super().check(answer)

    def solution(self) -> None:
        verdict_display.show("solution", "Model answer:", textwrap.fill(self.model_answer, 96))
