"""A notebook's part of the chapter's questionnaire, numbered from 1 like the printed list (notebooks 00 to 09)."""
from __future__ import annotations

import textwrap
from collections.abc import Iterator, Sequence

from helpers.answers import kind_name
from helpers.exercise_kinds import ChoiceExercise, Exercise, Reflection

__all__ = ["Questionnaire"]


class Questionnaire:
    """The questions in order; ``quiz[3]`` is question 3 (notebook 01)."""

    def __init__(self, questions: Sequence[Exercise]):
        questions = list(questions)
        for i, q in enumerate(questions, 1):
            if not isinstance(q, Exercise):
                raise TypeError(f"questionnaire item {i} is {kind_name(q)}; wrap it in an exercise, "
                                "e.g. Reflection(prompt, model_answer).")
        self.questions = questions

    def __len__(self) -> int:
        return len(self.questions)

    def __iter__(self) -> Iterator[Exercise]:
        return iter(self.questions)

    def __getitem__(self, number: int) -> Exercise:
        if not isinstance(number, int) or not 1 <= number <= len(self.questions):
            raise IndexError(f"questions are numbered 1 to {len(self.questions)}; got {number!r}.")
        return self.questions[number - 1]

    def show(self) -> None:
        """Print the numbered questions, saying which ones are checked (notebook 00 onwards)."""
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
        """Print every model answer, numbered (notebook 00 onwards)."""
        for number, q in enumerate(self.questions, 1):
            print(f"{number}. {q.prompt.splitlines()[0]}")
            print(textwrap.indent(textwrap.fill(q.solution_text(), 92) if isinstance(q, Reflection)
                                  else q.solution_text(), "     "))

    def __repr__(self) -> str:
        return f"Questionnaire with {len(self.questions)} questions: call .show() to list them."
