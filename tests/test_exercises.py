"""helpers.exercises: every checker kind accepts its reference, rejects wrong answers, and never crashes on a bad
one."""
from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch

from helpers.exercises import (
    ChoiceExercise,
    CodeExercise,
    FunctionExercise,
    Questionnaire,
    Reflection,
    ValueExercise,
    ____,
)

# ---- the placeholder ------------------------------------------------------------------------------

def test_placeholder_equals_only_itself():
    assert ____ == ____
    assert not (____ == 0) and not (____ == "") and not (____ == None)  # noqa: E711
    assert ____ != 0
    assert repr(____) == "____"
    assert copy.deepcopy(____) is ____
    assert pickle.loads(pickle.dumps(____)) is ____


# ---- value exercises --------------------------------------------------------------------------------

def test_value_scalar_accepts_within_tolerance_and_rejects_others():
    ex = ValueExercise("What is 1/3?", expected=1 / 3)
    assert ex.evaluate(0.33333).status == "correct"
    assert ex.evaluate(torch.tensor(1 / 3)).status == "correct"
    assert ex.evaluate(np.float32(1 / 3)).status == "correct"
    low, high = ex.evaluate(0.3), ex.evaluate(0.5)
    assert low.status == high.status == "incorrect"
    assert "too low" in low.message and "too high" in high.message


def test_value_not_attempted_and_wrong_types():
    ex = ValueExercise("What is 1/3?", expected=1 / 3)
    assert ex.evaluate(____).status == "not attempted"
    assert ex.evaluate().status == "not attempted"
    text = ex.evaluate("0.333")
    assert text.status == "error" and "wrong type" in text.message and "a number" in text.message
    assert ex.evaluate(torch.tensor([1 / 3])).status == "correct"  # a one-element tensor is a number
    pair = ex.evaluate(torch.tensor([1 / 3, 1 / 3]))
    assert pair.status == "incorrect" and "single number" in pair.message


def test_value_tensor_checks_shape_then_values():
    expected = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    ex = ValueExercise("The matrix", expected=expected)
    assert ex.evaluate(expected.clone()).status == "correct"
    assert ex.evaluate([[1, 2], [3, 4]]).status == "correct"
    assert ex.evaluate(np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)).status == "correct"
    assert ex.evaluate(expected.to(torch.bfloat16)).status == "correct"
    assert ex.evaluate(expected.requires_grad_()).status == "correct"
    shape = ex.evaluate(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert shape.status == "incorrect" and "(4,)" in shape.message and "(2, 2)" in shape.message
    values = ex.evaluate(torch.tensor([[1.0, 2.0], [3.0, 5.0]]))
    assert values.status == "incorrect" and "1 of 4" in values.message and "(1, 1)" in values.message
    ragged = ex.evaluate([[1, 2], [3]])
    assert ragged.status == "error" and "wrong type" in ragged.message


def test_value_nan_bool_and_string():
    nan = ValueExercise("What is log(-2)?", expected=float("nan"))
    assert nan.evaluate(torch.tensor(-2.0).log()).status == "correct"
    assert nan.evaluate(0.69).status == "incorrect"
    assert nan.evaluate(float("-inf")).status == "incorrect"
    flag = ValueExercise("Is it?", expected=True)
    assert flag.evaluate(True).status == "correct"
    assert flag.evaluate(False).status == "incorrect"
    assert flag.evaluate("yes").status == "error"
    word = ValueExercise("Which?", expected="softmax")
    assert word.evaluate(" softmax ").status == "correct"
    assert word.evaluate("sigmoid").status == "incorrect"
    assert word.evaluate(3).status == "error"


def test_value_structures_compare_part_by_part():
    ex = ValueExercise("Name and shape", expected=("images", (3, 2)))
    assert ex.evaluate(["images", [3, 2]]).status == "correct"
    assert "Item 1" in ex.evaluate(("images", (2, 3))).message
    assert ex.evaluate(("labels", (3, 2))).status == "incorrect"
    assert ex.evaluate(("images",)).status == "incorrect"
    assert ex.evaluate(ValueExercise).status == "error"


def test_a_list_holding_a_placeholder_is_not_attempted():
    ex = ValueExercise("Three numbers", expected=[1, 2, 3])
    assert ex.evaluate([1, ____, 3]).status == "not attempted"


def test_check_prints_one_deterministic_line(capsys):
    ex = ValueExercise("What is 2+2?", expected=4)
    ex.check(____)
    ex.check(4)
    ex.check(5)
    ex.check("four")
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("Not attempted yet")
    assert out[1].startswith("Correct!")
    assert out[2].startswith("Not quite:") and "too high" in out[2]
    assert out[3].startswith("Could not check this answer.") and "wrong type" in out[3]


# ---- function exercises ------------------------------------------------------------------------------

def reference_softmax(x: torch.Tensor) -> torch.Tensor:
    return torch.softmax(x, dim=-1)


CASES = [torch.tensor([0.0, 1.0, 2.0]), (torch.tensor([[1.0, -1.0], [0.5, 0.5]]),)]


def test_function_accepts_the_reference_and_equivalent_code():
    ex = FunctionExercise("Write softmax", reference=reference_softmax, test_cases=CASES)
    assert ex.evaluate(reference_softmax).status == "correct"
    assert ex.evaluate(lambda x: x.exp() / x.exp().sum(-1, keepdim=True)).status == "correct"


def test_function_rejects_wrong_functions_and_names_the_failing_case():
    ex = FunctionExercise("Write softmax", reference=reference_softmax, test_cases=CASES)
    no_keepdim = ex.evaluate(lambda x: x.exp() / x.exp().sum())
    assert no_keepdim.status == "incorrect" and "Test case 2 of 2" in no_keepdim.message
    plain_exp = ex.evaluate(lambda x: x.exp())
    assert plain_exp.status == "incorrect" and "Test case 1 of 2" in plain_exp.message
    assert "tensor([0., 1., 2.])" in plain_exp.message


def test_function_bad_answers_get_clear_messages():
    ex = FunctionExercise("Write softmax", reference=reference_softmax, test_cases=CASES)
    called = ex.evaluate(reference_softmax(torch.zeros(3)))
    assert called.status == "error" and "without calling it" in called.message
    raising = ex.evaluate(lambda x: 1 / 0)
    assert raising.status == "error" and "ZeroDivisionError" in raising.message and "test case 1" in raising.message
    wrong_type = ex.evaluate(lambda x: "probabilities")
    assert wrong_type.status == "error" and "wrong type" in wrong_type.message
    assert ex.evaluate(lambda x: ____).status == "not attempted"


def test_function_inputs_are_copied_so_in_place_changes_do_not_leak():
    def zero_then_softmax(x):
        result = torch.softmax(x, dim=-1)
        x.zero_()
        return result

    data = torch.tensor([1.0, 2.0])
    ex = FunctionExercise("softmax", reference=reference_softmax, test_cases=[data])
    assert ex.evaluate(zero_then_softmax).status == "correct"
    assert torch.equal(data, torch.tensor([1.0, 2.0]))


def test_function_keyword_cases_and_solution_from_source(capsys):
    ex = FunctionExercise("Scale", reference=lambda x, factor=2: x * factor, test_cases=[{"x": 3, "factor": 4}, 5])
    assert ex.evaluate(lambda x, factor=2: factor * x).status == "correct"
    assert ex.evaluate(lambda x, factor=2: x + factor).status == "incorrect"
    softmax = FunctionExercise("Write softmax", reference=reference_softmax, test_cases=CASES)
    softmax.solution()
    assert "def reference_softmax" in capsys.readouterr().out


# ---- code exercises -------------------------------------------------------------------------------

def check_split(answer):
    train, valid = answer
    assert len(set(train) & set(valid)) == 0, "the training and validation sets share items; they must not overlap."
    assert len(train) + len(valid) == 10, f"together the sets should hold all 10 items, not {len(train) + len(valid)}."


def test_code_exercise_passes_the_reference_and_reports_the_assertion():
    ex = CodeExercise("Split 10 items", checker=check_split, reference=([0, 1, 2, 3, 4, 5, 6, 7], [8, 9]))
    assert ex.evaluate(ex.reference_answer).status == "correct"
    overlap = ex.evaluate(([0, 1, 2, 3, 4, 5, 6, 7, 8], [8, 9]))
    assert overlap.status == "incorrect" and "overlap" in overlap.message
    short = ex.evaluate(([0, 1], [8, 9]))
    assert short.status == "incorrect" and "not 4" in short.message
    unpack = ex.evaluate(42)
    assert unpack.status == "error" and "TypeError" in unpack.message


# ---- choices and reflections --------------------------------------------------------------------

def test_choice_by_letter_or_text():
    ex = ChoiceExercise("Which activation gives probabilities that sum to 1?", ["sigmoid", "softmax", "relu"],
                        answer="softmax")
    assert ex.answer == "b"
    assert ex.evaluate("b").status == "correct"
    assert ex.evaluate("B)").status == "correct"
    assert ex.evaluate("Softmax").status == "correct"
    assert ex.evaluate("a").status == "incorrect"
    assert ex.evaluate("relu").status == "incorrect"
    nonsense = ex.evaluate("z")
    assert nonsense.status == "error" and "'a', 'b', 'c'" in nonsense.message
    assert ex.evaluate(1).status == "error"


def test_choice_answer_by_index_and_non_string_options():
    assert ChoiceExercise("Pick", ["x", "y"], answer=1).answer == "b"
    flag = ChoiceExercise("True or false?", [True, False], answer=False)
    assert flag.evaluate(False).status == "correct"
    assert flag.evaluate(True).status == "incorrect"
    assert flag.evaluate(0).status == "error"  # 0 is not the option False
    with pytest.raises(ValueError, match="neither a letter"):
        ChoiceExercise("Pick", ["x", "y"], answer="w")


def test_reflection_is_shown_not_checked(capsys):
    ex = Reflection("Why presize?", model_answer="So the GPU crops from a large image once.")
    assert not ex.checkable
    assert ex.evaluate(____).status == "not attempted"
    assert ex.evaluate("   ").status == "not attempted"
    assert ex.evaluate(3).status == "error"
    ex.check()
    ex.solution()
    out = capsys.readouterr().out
    assert "not checked automatically" in out and "So the GPU crops" in out


# ---- hints and solutions ---------------------------------------------------------------------------

def test_hints_are_numbered_with_a_clear_end(capsys):
    ex = ValueExercise("2+2", expected=4, hints=["Count on your fingers.", "It is even."], solution="answer = 2 + 2")
    ex.hint()
    ex.hint(2)
    ex.hint(3)
    ex.hint(0)
    ValueExercise("2+2", expected=4).hint()
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Hint 1 of 2 (.hint(2) gives another): Count on your fingers."
    assert out[1] == "Hint 2 of 2: It is even."
    assert "only 2 hint(s)" in out[2] and ".solution()" in out[2]
    assert "numbered from 1" in out[3]
    assert "no hints" in out[4]


def test_solution_is_printed_only_when_asked(capsys):
    ex = ValueExercise("2+2", expected=4, solution="answer = 2 + 2")
    ex.check(5)
    assert "2 + 2" not in capsys.readouterr().out
    ex.solution()
    assert "answer = 2 + 2" in capsys.readouterr().out


def test_keyboard_interrupt_is_not_swallowed():
    def interrupted(x):
        raise KeyboardInterrupt

    ex = FunctionExercise("f", reference=lambda x: x, test_cases=[1])
    with pytest.raises(KeyboardInterrupt):
        ex.evaluate(interrupted)


# ---- the questionnaire -----------------------------------------------------------------------------

def test_questionnaire_is_numbered_from_one(capsys):
    quiz = Questionnaire([
        Reflection("Why take the log?", "It turns products into sums."),
        ChoiceExercise("Which one?", ["a thing", "another"], answer="a"),
        ValueExercise("log(1)?", expected=0.0),
    ])
    assert len(quiz) == 3 and quiz[3].evaluate(0.0).passed
    with pytest.raises(IndexError, match="numbered 1 to 3"):
        quiz[0]
    quiz.show()
    out = capsys.readouterr().out
    assert out.startswith("1. Why take the log?") and "3. log(1)?" in out and "a) a thing" in out
    quiz.solutions()
    assert "It turns products into sums." in capsys.readouterr().out
    with pytest.raises(TypeError, match="Reflection"):
        Questionnaire(["a bare string"])
