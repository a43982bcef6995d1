"""Learning-rate and momentum schedules: cosine pieces, one-cycle, the finder's exponential ramp (notebook 04).

A schedule is a function of the position in training, ``pos`` in [0, 1]: batch k of a fit that runs
N batches in all sits at ``pos = k / N``. The start, middle and end values may be NumPy arrays with one
entry per parameter group; the formulas then work group by group.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

Number = float | np.ndarray


def sched_cos(start: Number, end: Number, pos: float) -> Number:
    """Half a cosine wave from ``start`` (pos 0) to ``end`` (pos 1), flat at both ends (notebook 04)."""
    return start + (1 + math.cos(math.pi * (1 - pos))) * (end - start) / 2


def sched_exp(start: Number, end: Number, pos: float) -> Number:
    """Exponential ramp from ``start`` to ``end``: equal steps on a log scale, as the LR finder uses (notebook 04)."""
    return start * (end / start) ** pos


def combined_cos(pct: float, start: Number, middle: Number, end: Number) -> Callable[[float], Number]:
    """One-cycle shape: cosine from start to middle over the first ``pct`` of training, then to end (notebook 04)."""
    if not 0 <= pct <= 1:
        raise ValueError(f"pct (the fraction of training spent warming up) must lie in [0, 1], got {pct}; "
                         "fit_one_cycle's default pct_start is 0.25.")

    def schedule(pos: float) -> Number:
        if pos < pct or pct == 1:  # pct == 1: all warm-up, and the annealing piece would divide by zero
            return sched_cos(start, middle, min(pos / pct, 1.0))
        return sched_cos(middle, end, (pos - pct) / (1 - pct))

    return schedule


def even_mults(start: float, stop: float, n: int) -> list[float]:
    """``n`` values from ``start`` to ``stop`` evenly spaced on a log scale (notebook 04)."""
    if n == 1:
        return [stop]
    step = (stop / start) ** (1 / (n - 1))
    return [start * step**i for i in range(n)]


def lr_for_groups(lr: float | slice | Sequence[float], n_groups: int) -> list[float]:
    """One learning rate per parameter group from a float, a ``slice`` or a list (notebooks 04 and 05).

    A float goes to every group; ``slice(a, b)`` spreads from a (first group) to b (last group)
    geometrically; ``slice(b)`` gives b/10 to every group but the last, which gets b.
    """
    if isinstance(lr, slice):
        if lr.stop is None:
            raise ValueError(f"{lr} has no upper rate: write slice(max_lr) or slice(min_lr, max_lr).")
        if lr.start is None:
            return [lr.stop / 10] * (n_groups - 1) + [lr.stop]
        return even_mults(lr.start, lr.stop, n_groups)
    if isinstance(lr, (list, tuple, np.ndarray)):
        if len(lr) != n_groups:
            raise ValueError(f"got {len(lr)} learning rates for {n_groups} parameter groups: "
                             "give one per group, a single float, or a slice.")
        return [float(v) for v in lr]
    if isinstance(lr, (int, float)):
        return [float(lr)] * n_groups
    raise TypeError(f"a learning rate must be a float, a slice or a list of floats, not {type(lr).__name__}.")


def one_cycle(lr_max: Number, pct_start: float = 0.25, div: float = 25.0, div_final: float = 1e5,
              moms: tuple[float, float, float] = (0.95, 0.85, 0.95)) -> tuple[Callable, Callable]:
    """The learning-rate and momentum schedules ``fit_one_cycle`` follows (notebook 04)."""
    lr_max = np.asarray(lr_max, dtype=float)
    lr_schedule = combined_cos(pct_start, lr_max / div, lr_max, lr_max / div_final)
    mom_schedule = combined_cos(pct_start, *moms)
    return lr_schedule, mom_schedule
