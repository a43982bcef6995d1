"""The learning-rate finder's rules of thumb and its plot (notebook 04).

``Learner.lr_find`` trains with a rate that grows exponentially each batch and records the smoothed
loss. The functions here read that curve. Each takes the recorded rates and smoothed losses, already
trimmed by ``trim_curve`` as fastai trims them, and returns ``(suggested_lr, index)``: the rate it
suggests and the index of the point to mark on the plot.
"""
from __future__ import annotations

from collections import namedtuple
from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np


def trim_curve(lrs: Sequence[float], losses: Sequence[float], num_it: int) -> tuple[np.ndarray, np.ndarray]:
    """Drop the first ``num_it // 10`` points and the last 5, and stop at the first NaN loss (notebook 04)."""
    # The start is noisy (the smoothing has seen few batches) and the end is the blow-up itself.
    lrs = np.asarray(lrs, dtype=float)[num_it // 10:-5]
    losses = np.asarray(losses, dtype=float)[num_it // 10:-5]
    nans = np.flatnonzero(np.isnan(losses))
    if len(nans):
        lrs, losses = lrs[:nans[0]], losses[:nans[0]]
    if len(losses) < 2:
        raise ValueError(f"the finder recorded too few usable points ({len(losses)}) to suggest a rate: it probably "
                         "diverged right away. Try a smaller start_lr, a larger num_it, or stop_div=False.")
    return lrs, losses


def minimum(lrs: np.ndarray, losses: np.ndarray) -> tuple[float, int]:
    """A tenth of the rate at the lowest loss: at the minimum itself the rate is already too high (notebook 04)."""
    index = int(np.argmin(losses))
    return float(lrs[index]) / 10, index


def steep(lrs: np.ndarray, losses: np.ndarray) -> tuple[float, int]:
    """The rate where the loss falls fastest per unit of log(rate) (notebook 04)."""
    slopes = np.diff(losses) / np.diff(np.log(lrs))
    index = int(np.argmin(slopes))
    return float(lrs[index]), index


def valley(lrs: np.ndarray, losses: np.ndarray) -> tuple[float, int]:
    """A point a little past the start of the longest descent, fastai's default suggestion (notebook 04)."""
    n = len(losses)
    # run_length[i]: length of the longest strictly decreasing subsequence of losses that ends at i.
    run_length = [1] * n
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j]:
                run_length[i] = max(run_length[i], run_length[j] + 1)
    end = int(np.argmax(run_length))  # the first index with the longest run
    start = end - run_length[end]
    third = (end - start) / 3
    # Skip a third of the descent and then half of another third: past the flat start, before the bottom.
    index = start + int(third) + int(third / 2)
    return float(lrs[index]), index


def slide(lrs: np.ndarray, losses: np.ndarray, lr_diff: int = 15, thresh: float = 0.005,
          adjust_value: float = 1.0) -> tuple[float, int]:
    """Walk left from the end until the slope 15 points apart stops changing: the end of the flat bottom (notebook 04)."""
    slope = np.gradient(np.asarray(losses, dtype=float))
    n = len(losses)
    right, left = n - 1, n - 1 - lr_diff
    chosen = max(left, 0)
    while left >= 0 and abs(slope[right] - slope[left]) > thresh:
        chosen = left
        right, left = right - 1, left - 1
    return float(lrs[chosen]) * adjust_value, chosen


def suggest(lrs: Sequence[float], losses: Sequence[float], num_it: int,
            suggest_funcs: Sequence[Callable] = (valley,)) -> tuple:
    """Trim the curve, then apply each rule; returns a namedtuple with one field per rule (notebook 04)."""
    lrs, losses = trim_curve(lrs, losses, num_it)
    SuggestedLRs = namedtuple("SuggestedLRs", [f.__name__ for f in suggest_funcs])
    return SuggestedLRs(*[f(lrs, losses)[0] for f in suggest_funcs])


def plot_lr_find(lrs: Sequence[float], losses: Sequence[float], num_it: int,
                 suggest_funcs: Sequence[Callable] = (valley,), ax: plt.Axes | None = None) -> plt.Axes:
    """The smoothed loss against the rate (log scale) with each rule's point marked (notebook 04)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    ax.plot(lrs[num_it // 10:-5], losses[num_it // 10:-5], color="tab:blue")
    trimmed_lrs, trimmed_losses = trim_curve(lrs, losses, num_it)
    colours = ["tab:orange", "tab:green", "tab:red", "tab:purple"]
    for func, colour in zip(suggest_funcs, colours * 2):
        lr, index = func(trimmed_lrs, trimmed_losses)
        ax.plot(trimmed_lrs[index], trimmed_losses[index], "o", color=colour, label=f"{func.__name__}: {lr:.2e}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("smoothed training loss")
    ax.set_title("Learning-rate finder")
    ax.legend()
    return ax
