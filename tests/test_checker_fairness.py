"""The exercise checkers are fair: every reasonable right answer passes, and no answer with a number changed does.

Every numeric reference answer of every exercise set is perturbed (its largest and its smallest non-zero value, each
doubled and each set to zero) and every checker must reject each perturbation; a FunctionExercise meets a function
whose outputs are perturbed that way. Then the kinds of object a learner may give for a number or a sequence, the
rounding a prompt asks for, and the cases named in issue 29.
"""
from __future__ import annotations

import copy
import importlib
import math
import pkgutil
import re
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import helpers.exercise_sets
from helpers.exercises import CodeExercise, Exercise, FunctionExercise, Questionnaire, ValueExercise

SETS = sorted(m.name for m in pkgutil.iter_modules(helpers.exercise_sets.__path__) if re.fullmatch(r"nb\d\d", m.name))


def exercises() -> list[tuple[str, Exercise]]:
    found = []
    for name in SETS:
        module = importlib.import_module(f"helpers.exercise_sets.{name}")
        found += [(f"{name}.{key}", value) for key, value in vars(module).items()
                  if re.fullmatch(r"q\d+", key) and isinstance(value, Exercise)]
        quiz = getattr(module, "questionnaire", None)
        if isinstance(quiz, Questionnaire):
            found += [(f"{name}.questionnaire[{i}]", q) for i, q in enumerate(quiz, 1)]
    return [(label, ex) for label, ex in found if ex.checkable]


# ---- perturbing a numeric answer -----------------------------------------------------------------------------------

def _element_changes(array: np.ndarray) -> Iterator[tuple[tuple, str]]:
    """(index, change) for the largest and the smallest non-zero value: doubled and set to zero."""
    finite = np.isfinite(array) & (array != 0)
    for index in np.argwhere(np.isnan(array))[:1]:
        yield tuple(index), "zero"
    if not finite.any():
        return
    magnitudes = np.where(finite, np.abs(array), np.nan)
    for index in {np.unravel_index(np.nanargmax(magnitudes), array.shape),
                  np.unravel_index(np.nanargmin(magnitudes), array.shape)}:
        yield tuple(int(i) for i in index), "double"
        yield tuple(int(i) for i in index), "zero"


def perturbations(value: Any) -> Iterator[tuple[str, Any]]:
    """(description, copy of ``value`` with one number doubled or set to zero), for every such change."""
    if isinstance(value, (bool, np.bool_, str, bytes)) or value is None:
        return
    if isinstance(value, (int, float, np.integer, np.floating)):
        if math.isnan(value):
            yield "nan set to zero", type(value)(0)
        elif value != 0:
            yield f"{value!r} doubled", value * 2
            yield f"{value!r} set to zero", type(value)(0)
        return
    if isinstance(value, (torch.Tensor, np.ndarray)):
        array = value.detach().cpu().double().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        if array.dtype.kind not in "iuf" or array.size == 0 or value.dtype == torch.bool:
            return
        for index, change in _element_changes(array):
            changed = value.clone() if isinstance(value, torch.Tensor) else value.copy()
            changed[index] = changed[index] * 2 if change == "double" else 0
            yield f"element {index} {'doubled' if change == 'double' else 'set to zero'}", changed
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            for description, changed in perturbations(item):
                items = list(value)
                items[i] = changed
                yield f"item {i}: {description}", type(value)(items) if isinstance(value, tuple) else items
    elif isinstance(value, Mapping):
        for key, item in value.items():
            for description, changed in perturbations(item):
                yield f"at {key!r}: {description}", {**value, key: changed}


def _perturbed_function(reference, change: int):
    """The reference with the ``change``-th perturbation applied to each output that has one."""
    def perturbed(*args, **kwargs):
        output = reference(*args, **kwargs)
        options = list(perturbations(output))
        return options[change % len(options)][1] if options else output
    return perturbed


def numeric_references() -> list[tuple[str, Exercise]]:
    return [(label, ex) for label, ex in exercises()
            if isinstance(ex, (ValueExercise, CodeExercise)) and any(True for _ in perturbations(ex.reference_answer))]


def test_perturbations_change_one_number_each():
    found = dict(perturbations([1e-6, 1e-5, 1e-4, 1e-3]))
    assert found["item 0: 1e-06 doubled"] == [2e-6, 1e-5, 1e-4, 1e-3]
    assert found["item 3: 0.001 set to zero"] == [1e-6, 1e-5, 1e-4, 0.0]
    tensor = dict(perturbations(torch.tensor([[0.0, -3.0], [0.5, 2.0]])))
    assert torch.equal(tensor["element (0, 1) doubled"], torch.tensor([[0.0, -6.0], [0.5, 2.0]]))
    assert torch.equal(tensor["element (1, 0) set to zero"], torch.tensor([[0.0, -3.0], [0.0, 2.0]]))
    assert not list(perturbations(("a", True)))


@pytest.mark.parametrize("label,exercise", numeric_references(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_perturbed_reference_answer_is_rejected(label, exercise):
    reference = exercise.reference_answer
    for description, changed in perturbations(copy.deepcopy(reference)):
        result = exercise.evaluate(changed)
        assert result.status != "correct", f"{label} accepts its reference with {description}: {changed!r}"


def function_exercises() -> list[tuple[str, FunctionExercise]]:
    return [(label, ex) for label, ex in exercises() if isinstance(ex, FunctionExercise)]


@pytest.mark.parametrize("label,exercise", function_exercises(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_function_with_perturbed_outputs_is_rejected(label, exercise):
    outputs = [exercise.reference(*copy.deepcopy(a), **copy.deepcopy(k)) for a, k in map(exercise.arguments,
                                                                                           exercise.test_cases)]
    kinds = max((len(list(perturbations(o))) for o in outputs), default=0)
    if kinds == 0:
        pytest.skip(f"{label} returns no numbers (text, booleans): its wrong answers are tested instead")
    for change in range(min(kinds, 4)):
        result = exercise.evaluate(_perturbed_function(exercise.reference, change))
        assert result.status != "correct", f"{label} accepts a function whose outputs have change {change}"


def test_every_numeric_set_is_covered():
    """Most exercises with a number for an answer are in the perturbation test (a guard against skipping them all)."""
    assert len(numeric_references()) >= 35
    assert len(function_exercises()) >= 20


# ---- the kinds of object a learner may give ------------------------------------------------------------------------

@pytest.mark.parametrize("answer", [0.25, 1 / 4, np.float32(0.25), np.float64(0.25), torch.tensor(0.25),
                                    torch.tensor([0.25]), torch.tensor([[0.25]]), np.array([0.25]),
                                    torch.tensor(0.25, dtype=torch.float16)],
                         ids=lambda a: type(a).__name__ + str(getattr(a, "shape", "")))
def test_a_number_may_come_in_any_form(answer):
    assert ValueExercise("a quarter", expected=0.25).evaluate(answer).passed


@pytest.mark.parametrize("answer", [[1e-6, 1e-5, 1e-4, 1e-3], (1e-6, 1e-5, 1e-4, 1e-3),
                                    np.array([1e-6, 1e-5, 1e-4, 1e-3]),
                                    torch.tensor([1e-6, 1e-5, 1e-4, 1e-3]), torch.tensor([[1e-6, 1e-5, 1e-4, 1e-3]]),
                                    [torch.tensor(1e-6), 1e-5, np.float64(1e-4), torch.tensor([1e-3])]],
                         ids=["list", "tuple", "array", "tensor", "row tensor", "mixed"])
def test_a_sequence_may_come_in_any_form(answer):
    assert ValueExercise("rates", expected=[1e-6, 1e-5, 1e-4, 1e-3]).evaluate(answer).passed


def test_learning_rates_are_compared_relatively():
    """Issue 29: with an absolute tolerance of 1e-6, [0, 1e-5, 1e-4, 1e-3] passed for slice(1e-6, 1e-3)."""
    from helpers.exercise_sets import nb05

    question = nb05.questionnaire[4]
    assert question.evaluate([1e-6, 1e-5, 1e-4, 1e-3]).passed
    for wrong in ([0, 1e-5, 1e-4, 1e-3], [2e-6, 1e-5, 1e-4, 1e-3], [1e-6, 1e-5, 1e-4, 2e-3]):
        assert question.evaluate(wrong).status == "incorrect", wrong


def test_the_floor_scales_with_the_expected_values():
    tiny = ValueExercise("tiny", expected=torch.tensor([3e-9, 0.0, 1e-9], dtype=torch.float64))
    assert tiny.evaluate([3e-9, 1e-16, 1e-9]).passed          # float noise around an expected zero
    assert not tiny.evaluate([3e-9, 0.0, 0.0]).passed
    assert not tiny.evaluate([3e-9, 1e-9, 1e-9]).passed
    big = ValueExercise("big", expected=torch.tensor([4e9, 0.0]))
    assert big.evaluate([4e9, 1e3]).passed and not big.evaluate([4e9, 1e4]).passed


def test_integers_are_exact_and_a_shape_is_compared_only_when_asked():
    count = ValueExercise("how many", expected=2_125_312)
    assert count.evaluate(2125312.0).passed and not count.evaluate(2_125_312 + 37).passed
    loose = ValueExercise("three values", expected=[1.0, 2.0, 3.0])
    strict = ValueExercise("a (3,) tensor, not (1, 3)", expected=torch.tensor([1.0, 2.0, 3.0]), shape_matters=True)
    assert loose.evaluate(torch.tensor([[1.0, 2.0, 3.0]])).passed
    assert "shape" in strict.evaluate(torch.tensor([[1.0, 2.0, 3.0]])).message
    assert not loose.evaluate([[1.0, 2.0], [3.0, 4.0]]).passed  # sizes differ: never reshaped


def test_a_rounded_answer_passes_at_the_rounding_the_prompt_asks_for_and_no_coarser():
    from helpers.exercise_sets import nb03

    question = nb03.q5  # log(2) = 0.693147...
    assert "Round to 3 decimal places" in question.prompt
    for right in (0.693, 0.6931, math.log(2), torch.tensor(0.69315)):
        assert question.evaluate(right).passed, right
    for wrong in (0.69, 0.694, 0.7, 0.692):
        assert question.evaluate(wrong).status == "incorrect", wrong


@pytest.mark.parametrize("label,exercise", [(label, e) for label, e in exercises()
                                            if isinstance(e, ValueExercise) and e.tolerance.decimals is not None],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_every_rounded_question_says_how_to_round_and_accepts_that_rounding(label, exercise):
    digits = exercise.tolerance.decimals
    said = "Round to a whole number" if digits == 0 else f"Round to {digits} decimal"
    assert said in exercise.prompt, f"{label} must say to how many decimals to round"
    rounded = _round_all(exercise.expected, digits)
    assert exercise.evaluate(rounded).passed, f"{label} rejects its answer rounded to {digits} decimals: {rounded}"
    coarser = _round_all(exercise.expected, digits - 1)
    if not exercise.evaluate(coarser).passed:  # one digit fewer fails, unless that rounding happens to land close
        assert exercise.evaluate(coarser).status == "incorrect"


def _round_all(value: Any, digits: int) -> Any:
    if isinstance(value, torch.Tensor):
        return value.double().round(decimals=digits)
    if isinstance(value, (list, tuple)):
        return type(value)(_round_all(v, digits) for v in value)
    return round(float(value), digits)


# ---- the cases issue 29 names ----------------------------------------------------------------------------------------

def test_nb07_batchnorm_needs_eps_where_it_matters():
    from helpers.exercise_sets import nb07

    def no_eps(x, gamma, beta, eps=1e-5):
        mean, var = x.mean((0, 2, 3), keepdim=True), x.var((0, 2, 3), unbiased=False, keepdim=True)
        return (x - mean) / var.sqrt() * gamma[:, None, None] + beta[:, None, None]

    result = nb07.batchnorm_train.evaluate(no_eps)
    assert result.status == "incorrect" and "Test case 4" in result.message

    def by_the_layer(x, gamma, beta, eps=1e-5):
        layer = nn.BatchNorm2d(x.shape[1], eps=eps).train()
        with torch.no_grad():
            layer.weight.copy_(gamma)
            layer.bias.copy_(beta)
            return layer(x)

    assert nb07.batchnorm_train.evaluate(by_the_layer).passed


def test_nb07_running_statistics_as_the_layer_holds_them():
    from helpers.exercise_sets import nb07

    bn = nn.BatchNorm2d(1)
    values = torch.tensor([2.0 - math.sqrt(2.5), 2.0 + math.sqrt(2.5)]).view(2, 1, 1, 1)  # mean 2, unbiased variance 5
    bn(values)
    assert nb07.q2.evaluate((bn.running_mean, bn.running_var)).passed
    assert nb07.q2.evaluate((bn.running_mean.item(), bn.running_var.item())).passed


def test_nb09_embedding_question_states_the_na_convention():
    from helpers.exercise_sets import nb09

    assert "#na#" in nb09.q1.prompt
