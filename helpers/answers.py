"""Comparing a learner's answer with the expected one, fairly (the exercises of notebooks 00 to 09).

Numbers are compared with a relative tolerance. The only absolute slack is a ``floor`` that is a fraction of the
largest expected magnitude, so it absorbs float noise around an expected zero but can never make an answer with one
value doubled or set to zero pass, whatever the scale (learning rates of 1e-6 as much as parameter counts). A question
that asks for a rounded value passes ``decimals``: then exactly that rounding, or anything more precise, passes.

The kind of object is forgiven: a number may come as a Python number, a NumPy scalar, a 0-d or a one-element tensor;
a sequence as a list, tuple, array or tensor. Axes of size 1 are ignored unless the question is about a shape.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = ["____", "NOT_ATTEMPTED_MESSAGE", "Tolerance", "WrongKind", "compare", "contains_placeholder",
           "numeric_array"]


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


class WrongKind(Exception):
    """The answer is not the kind of object asked for; the text says what to give instead (notebooks 00-09)."""


@dataclass(frozen=True)
class Tolerance:
    """How close a number must be: relative, with a floor, or to ``decimals`` places (notebooks 00-09: ``check``).

    ``rtol`` of each value, plus ``floor`` times the largest expected magnitude; or, with ``decimals``, within half
    a unit of that decimal place (the rounding the prompt asks for).
    """

    rtol: float = 1e-4
    floor: float = 1e-6
    decimals: int | None = None
    shape_matters: bool = False

    def allowed(self, expected: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """The largest accepted distance from each expected value (notebooks 00-09: ``check``).

        ``scale`` is what the floor is a fraction of.
        """
        if self.decimals is not None:
            # The relative 1e-9 lets a value that sits exactly on a rounding boundary pass either way.
            return np.full(expected.shape, 0.5 * 10.0 ** -self.decimals * (1 + 1e-9))
        return self.rtol * np.abs(expected) + self.floor * scale


def _largest(array: np.ndarray) -> float:
    finite = np.abs(array[np.isfinite(array)])
    return float(finite.max()) if finite.size else 0.0


def floor_scale(expected: Any, numbers: np.ndarray) -> np.ndarray:
    """The magnitude each value's floor is a fraction of (notebooks 00-09: ``check``).

    The largest of its tensor or array (one quantity), or of its own item when the expected value is a list or
    tuple, whose items may be different quantities (a learning rate next to a batch index).
    """
    if isinstance(expected, (list, tuple)) and numbers.ndim >= 1 and len(expected) == len(numbers):
        return np.stack([np.full(part.shape, _largest(part)) for part in numbers]) if len(numbers) else numbers
    return np.full(numbers.shape, _largest(numbers))


EXACT = Tolerance(rtol=0.0, floor=0.0)


def contains_placeholder(answer: Any) -> bool:
    """Whether the answer is, or holds, the blank ``____`` (notebook 01)."""
    if answer is ____:
        return True
    if isinstance(answer, (list, tuple)):
        return any(contains_placeholder(a) for a in answer)
    if isinstance(answer, Mapping):
        return any(contains_placeholder(a) for a in answer.values())
    return False


def short_repr(value: Any, limit: int = 120) -> str:
    """The value's repr on one line, cut to ``limit`` characters, for messages (notebook 01)."""
    text = " ".join(repr(value).replace("\n", " ").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def kind_name(value: Any) -> str:
    """What kind of object the value is, in words ("a tensor of shape (2, 3)"), for messages (notebook 01)."""
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, np.ndarray):
        return f"a NumPy array of shape {value.shape}"
    return f"a {type(value).__name__}"


def error_text(error: BaseException) -> str:
    """An exception as "TypeError: what it said", for messages (notebook 01)."""
    return f"{type(error).__name__}: {error}".strip().rstrip(":")


def numeric_array(value: Any) -> np.ndarray | None:
    """The value as a float/complex NumPy array, or None when it is not numbers (notebooks 00-09: ``check``).

    Strings, objects and ragged lists are not numbers.
    """
    if isinstance(value, (str, bytes)) or value is None:
        return None
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        # NumPy has no bfloat16; widening is exact for every float type torch has.
        return value.to(torch.complex128 if value.is_complex() else torch.float64).numpy()
    if isinstance(value, (list, tuple)):
        parts = [numeric_array(v) for v in value]
        if any(p is None for p in parts):
            return None
        if len({p.shape for p in parts}) > 1:
            # (tensor([0.2]), 1.4): one-element parts count as numbers; other mixes are ragged.
            parts = [p.reshape(()) if p.size == 1 else p for p in parts]
        try:
            return np.array(parts) if parts else np.zeros((0,))
        except ValueError:
            return None
    try:
        array = np.asarray(value)
    except Exception:
        return None
    if array.dtype.kind not in "biufc":
        return None
    return array.astype(np.complex128 if array.dtype.kind == "c" else np.float64)


def is_integral(value: Any) -> bool:
    """Whether the expected value is made of integers, which are compared exactly (notebooks 00-09: ``check``).

    Integers are counts, sizes and indices.
    """
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, np.integer)):
        return True
    if isinstance(value, torch.Tensor):
        return not value.dtype.is_floating_point and not value.dtype.is_complex and value.dtype != torch.bool
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "iu"
    if isinstance(value, (list, tuple)):
        return len(value) > 0 and all(is_integral(v) for v in value)
    return False


def format_number(x: Any) -> str:
    """A number with six significant digits, for messages (notebook 01)."""
    if isinstance(x, complex) or np.iscomplexobj(x):
        return str(complex(x))
    return f"{float(x):.6g}"


def _shapes_problem(mine: np.ndarray, expected: np.ndarray, tol: Tolerance) -> tuple[np.ndarray, str | None]:
    """The answer reshaped to the expected shape when only size-1 axes differ; else what is wrong with its shape."""
    if mine.shape == expected.shape:
        return mine, None
    if not tol.shape_matters and mine.size == expected.size and np.squeeze(mine).shape == np.squeeze(expected).shape:
        return mine.reshape(expected.shape), None
    if expected.ndim == 0:
        return mine, f"expected a single number, but your answer has shape {mine.shape}."
    return mine, f"your answer has shape {mine.shape}, but the expected answer has shape {expected.shape}."


def _scalar_problem(value: Any, expected: Any) -> str:
    if np.isnan(value):
        return "your answer is nan; the expected value is a number."
    if np.isnan(expected):
        return f"your answer is {format_number(value)}; think about what the operation gives outside its domain."
    if np.iscomplexobj(value) or np.iscomplexobj(expected):
        return f"your answer {format_number(value)} is not the expected value."
    return f"your answer {format_number(value)} is {'too high' if value > expected else 'too low'}."


def compare_numbers(answer: Any, expected: np.ndarray, tol: Tolerance, scale: np.ndarray | None = None) -> str | None:
    """None when the answer matches the expected numbers, else what is wrong, not the answer (notebooks 00-09)."""
    scale = np.full(expected.shape, _largest(expected)) if scale is None else scale
    mine = numeric_array(answer)
    if mine is None:
        want = "a number" if expected.ndim == 0 else f"numbers of shape {expected.shape} (a list, array or tensor)"
        raise WrongKind(f"expected {want}, but your answer is {kind_name(answer)}: {short_repr(answer)}.")
    mine, problem = _shapes_problem(mine, expected, tol)
    if problem:
        return problem
    with np.errstate(invalid="ignore"):
        distance = np.abs(mine - expected)
        close = (distance <= tol.allowed(expected, scale)) | (np.isnan(mine) & np.isnan(expected)) | (mine == expected)
    if close.all():
        return None
    if expected.ndim == 0:
        return _scalar_problem(mine.item(), expected.item())
    wrong = np.argwhere(~close)
    first = tuple(int(i) for i in wrong[0])
    index = first[0] if len(first) == 1 else first
    return (f"{len(wrong)} of {close.size} values differ from the expected ones; "
            f"the first is at index {index}, where yours is {format_number(mine[first])}.")


def _compare_bool(answer: Any, expected: Any) -> str | None:
    one_bool_tensor = isinstance(answer, torch.Tensor) and answer.dtype == torch.bool and answer.numel() == 1
    if not isinstance(answer, (bool, np.bool_)) and not one_bool_tensor:
        raise WrongKind(f"expected True or False, but your answer is {kind_name(answer)}: {short_repr(answer)}.")
    return None if bool(answer) == bool(expected) else f"your answer {bool(answer)} is not right."


def _compare_items(answer: Any, expected: Any, tol: Tolerance) -> str | None:
    if isinstance(expected, (list, tuple)):
        if not isinstance(answer, (list, tuple)):
            raise WrongKind(f"expected a list or tuple of {len(expected)} items, but your answer is "
                            f"{kind_name(answer)}.")
        if len(answer) != len(expected):
            return f"your answer has {len(answer)} items, but the expected answer has {len(expected)}."
        pairs = [(f"item {i}", a, e) for i, (a, e) in enumerate(zip(answer, expected))]
    else:
        if not isinstance(answer, Mapping):
            raise WrongKind(f"expected a dictionary, but your answer is {kind_name(answer)}.")
        if set(answer) != set(expected):
            return f"your keys {sorted(map(str, answer))} are not the expected keys."
        pairs = [(f"at key {key!r}", answer[key], expected[key]) for key in expected]
    for where, mine, want in pairs:
        problem = compare(mine, want, tol)
        if problem:
            return f"{where}: {problem}"
    return None


def compare(answer: Any, expected: Any, tol: Tolerance) -> str | None:
    """Compare any answer with any expected value: None when they match, else what is wrong (notebooks 00-09).

    Numbers are compared with a tolerance, structures part by part, the rest with ==.
    """
    if isinstance(expected, (bool, np.bool_)):
        return _compare_bool(answer, expected)
    numbers = numeric_array(expected)
    if numbers is not None:
        exact = is_integral(expected) and tol.decimals is None
        return compare_numbers(answer, numbers, EXACT if exact else tol, floor_scale(expected, numbers))
    if isinstance(expected, str):
        if not isinstance(answer, str):
            raise WrongKind(f"expected a string (text in quotes), but your answer is {kind_name(answer)}: "
                            f"{short_repr(answer)}.")
        return (None if answer.strip() == expected.strip()
                else f"your answer {answer.strip()!r} is not the expected text.")
    if isinstance(expected, (list, tuple, Mapping)):
        return _compare_items(answer, expected, tol)
    return None if answer == expected else f"your answer {short_repr(answer)} is not the expected value."
