"""The learning-rate finder: the callback that runs the range test, its rules of thumb and its plot (notebook 04).

``Learner.lr_find`` trains with ``LRFinder`` attached: a rate that grows exponentially each batch, a stop
when the smoothed loss blows up, and everything put back afterwards. The functions here read the curve. Each takes the
recorded rates and smoothed losses, already
trimmed by ``trim_curve`` as fastai trims them, and returns ``(suggested_lr, index)``: the rate it
suggests and the index of the point to mark on the plot.
"""
from __future__ import annotations

import copy
import math
from collections import namedtuple
from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np

from helpers.callbacks import Callback, CancelFitException, CancelValidException
from helpers.schedule import sched_exp


class LRFinder(Callback):
    """The range test as a callback: exponential rates, stop on blow-up, restore everything after (notebook 04).

    Before the fit it saves the weights, the optimiser (its state and every group's rate and momentum) and
    the loss scaler; ``after_fit``, which runs even after an error or Ctrl-C, loads them back.
    """

    order = 60  # after the Recorder (50) has added this batch's smoothed loss

    def __init__(self, start_lr: float = 1e-7, end_lr: float = 10, num_it: int = 100, stop_div: bool = True,
                 mom: float | None = None):
        self.start_lr, self.end_lr, self.num_it, self.stop_div, self.mom = start_lr, end_lr, num_it, stop_div, mom

    def before_fit(self) -> None:
        learn = self.learn
        opt_state = getattr(learn.opt, "state_dict", None)
        self.saved = {"model": copy.deepcopy(learn.model.state_dict()),
                      "opt": copy.deepcopy(opt_state()) if opt_state else None,
                      "scaler": copy.deepcopy(learn.precision.state_dict())}
        self.best = math.inf
        if self.mom is not None:
            learn.set_hyper("mom", self.mom)

    def before_batch(self) -> None:
        if self.learn.training:
            self.learn.set_hyper("lr", sched_exp(self.start_lr, self.end_lr, self.learn.train_iter / self.num_it))

    def after_batch(self) -> None:
        if not self.learn.training:
            return
        smooth = self.learn.recorder.smooth_loss
        self.best = min(self.best, smooth)
        # train_iter counts the batches before this one. Stopping on NaN too: nothing after it is usable.
        if self.learn.train_iter + 1 >= self.num_it or (
                self.stop_div and (smooth > 4 * self.best or math.isnan(smooth))):
            raise CancelFitException

    def before_validate(self) -> None:
        raise CancelValidException  # the range test only trains

    def after_fit(self) -> None:
        learn = self.learn
        learn.model.load_state_dict(self.saved["model"])
        if self.saved["opt"] is not None:
            learn.opt.load_state_dict(self.saved["opt"])
        learn.precision.load_state_dict(self.saved["scaler"])


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
    # fastai's formula goes below 0 when the run starts at the first point and is short (two points), and
    # index -1 would pick the highest rate of all: the first point is the right answer there.
    index = max(start + int(third) + int(third / 2), 0)
    return float(lrs[index]), index


def slide(lrs: np.ndarray, losses: np.ndarray, lr_diff: int = 15, thresh: float = 0.005,
          adjust_value: float = 1.0) -> tuple[float, int]:
    """Walk left from the end until the slope 15 points apart stops changing: the flat bottom's end (notebook 04)."""
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
        lr, _ = func(trimmed_lrs, trimmed_losses)
        # Draw each dot at the rate its label names: `minimum` suggests a tenth of the rate at its lowest point.
        at = float(np.interp(np.log(lr), np.log(trimmed_lrs), trimmed_losses))
        ax.plot(lr, at, "o", color=colour, label=f"{func.__name__}: {lr:.2e}")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("smoothed training loss")
    ax.set_title("Learning-rate finder")
    ax.legend()
    return ax
