"""The Recorder: what a fit records, per batch and per epoch, and its plots (notebook 04)."""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from helpers.callbacks import Callback, GatherPreds


def metric_name(metric: Callable) -> str:
    """The table's column for a metric, also for partials and callable objects (notebook 04, via ``Recorder``).

    Those have no ``__name__`` of their own.
    """
    return (getattr(metric, "__name__", None) or getattr(getattr(metric, "func", None), "__name__", None)
            or type(metric).__name__)


def format_time(seconds: float) -> str:
    """mm:ss, as fastai's table shows an epoch's time (notebook 04, via ``Recorder``)."""
    return f"{int(seconds // 60):02d}:{int(seconds % 60):02d}"


class Recorder(Callback):
    """What a fit recorded: per batch losses, rates and momenta; per epoch the table (notebook 04).

    ``lrs[k]`` and ``moms[k]`` hold one value per parameter group at training batch k; ``losses[k]`` is that
    batch's loss and ``smooth_losses[k]`` its exponential moving average (beta 0.98, debiased). Each row of
    ``values`` is one epoch: ``train_loss`` is the smoothed loss at the epoch's end, then the validation loss
    and metrics over all validation items.
    """

    order = 50  # after callbacks that change the loss, before the LR finder reads the smoothed loss

    def __init__(self, beta: float = 0.98):
        self.beta = beta
        self.keep_next = False  # fine_tune's second phase continues the first one's record
        # Set here too: a callback may cancel before this one's before_ events run, and its after_ ones still do.
        self._valid, self._start, self._skipped_before = None, 0.0, 0
        self._gather = GatherPreds()  # the validation outputs, kept as get_preds keeps them
        self.reset()

    def reset(self) -> None:
        """Forget everything; each public fit starts a fresh record (notebook 04)."""
        self._losses, self._smooth_losses, self._pending = [], [], []
        self.lrs, self.moms, self.values = [], [], []
        self.skipped_steps = 0
        self._average, self._count = 0.0, 0

    def start_smoothing(self) -> None:
        """Restart the moving average, as fastai does at the start of every fit (notebook 04)."""
        self._flush()
        self._average, self._count = 0.0, 0

    def record_batch(self, loss: float | torch.Tensor, lrs: Sequence[float], moms: Sequence[float]) -> None:
        """Store one training batch, reading a tensor loss back only when asked (notebook 04).

        No host sync per step.
        """
        self._pending.append(loss.detach() if torch.is_tensor(loss) else torch.tensor(float(loss)))
        self.lrs.append([float(v) for v in lrs])
        self.moms.append([float(v) for v in moms])

    def _flush(self) -> None:
        if not self._pending:
            return
        # One transfer for all pending losses: on a GPU, reading each loss at its own step would stall the queue.
        for loss in torch.stack([t.float().cpu() if t.device.type == "mps" else t.float()
                                 for t in self._pending]).tolist():
            self._count += 1
            self._average = self.beta * self._average + (1 - self.beta) * loss
            # Dividing by 1 - beta^count removes the pull towards the average's starting value of 0.
            self._smooth_losses.append(self._average / (1 - self.beta**self._count))
            self._losses.append(loss)
        self._pending = []

    @property
    def losses(self) -> list[float]:
        """Each training batch's loss (notebook 04)."""
        self._flush()
        return self._losses

    @property
    def smooth_losses(self) -> list[float]:
        """The debiased moving average of the loss after each training batch (notebook 04)."""
        self._flush()
        return self._smooth_losses

    @property
    def smooth_loss(self) -> float:
        """The latest smoothed loss, NaN before this fit's first batch (notebook 04)."""
        self._flush()
        return self._smooth_losses[-1] if self._count else math.nan

    @property
    def values_df(self) -> pd.DataFrame:
        """The per-epoch table as a DataFrame (notebook 05)."""
        return pd.DataFrame(self.values)

    # --- the callback ------------------------------------------------------------------------------
    def before_fit(self) -> None:
        if not self.keep_next:
            self.reset()
        self.keep_next = False
        self.start_smoothing()
        self._valid = None

    def before_epoch(self) -> None:
        self._start, self._valid = time.perf_counter(), None
        self._skipped_before = self.skipped_steps

    def after_step(self) -> None:
        if self.learn.step_skipped:
            self.skipped_steps += 1

    def after_batch(self) -> None:
        learn = self.learn
        if learn.training and learn.loss is not None:
            self.record_batch(learn.loss, *learn.hypers())

    def before_validate(self) -> None:
        self._gather.learn = self.learn
        self._gather.before_validate()

    def after_loss(self) -> None:
        if self.learn.fitting and not self.learn.training:
            self._gather.learn = self.learn
            self._gather.after_loss()

    def after_validate(self) -> None:
        if self.learn.fitting and self._gather.preds:
            self._valid = self.learn.loss_and_metrics(*self._gather.result())
        self._gather.before_validate()  # let the outputs go

    def after_epoch(self) -> None:
        if self._valid is None:  # validation was skipped (the LR finder) or cancelled: no row
            return
        learn = self.learn
        valid_loss, *metric_values = self._valid
        row = {"epoch": learn.epoch, "train_loss": self.smooth_loss, "valid_loss": valid_loss}
        row.update({metric_name(m): v for m, v in zip(learn.metrics, metric_values)})
        if learn.precision.mode == "fp16":
            # Only fp16 can skip steps; fp32/bf16 tables keep their usual columns.
            row["skipped"] = self.skipped_steps - self._skipped_before
        row["time"] = format_time(time.perf_counter() - self._start)
        row["batches"] = len(self.losses)
        self.values.append(row)

    # --- plots -------------------------------------------------------------------------------------
    def plot_loss(self, skip_start: int = 5, with_valid: bool = True) -> plt.Axes:
        """Training loss per batch, raw and smoothed, and validation loss at each epoch's end (notebook 04).

        The validation loss is shown when it was recorded.
        """
        _, ax = plt.subplots(figsize=(6, 4))
        steps = np.arange(len(self.losses))
        ax.plot(steps[skip_start:], self.losses[skip_start:], alpha=0.3, label="train (per batch)")
        ax.plot(steps[skip_start:], self.smooth_losses[skip_start:], label="train (smoothed)")
        if with_valid and self.values and "valid_loss" in self.values[0]:
            ends = [row["batches"] - 1 for row in self.values]
            ax.plot(ends, [row["valid_loss"] for row in self.values], "o-", label="valid")
        ax.set(title="Loss during training", xlabel="batch", ylabel="loss")
        ax.legend()
        return ax

    def plot_sched(self) -> np.ndarray:
        """Learning rate and momentum of every parameter group against the batch number (notebook 04)."""
        _, axes = plt.subplots(1, 2, figsize=(10, 4))
        lrs, moms = np.array(self.lrs), np.array(self.moms)
        for group in range(lrs.shape[1] if lrs.ndim == 2 else 0):
            axes[0].plot(lrs[:, group], label=f"group {group}")
            axes[1].plot(moms[:, group], label=f"group {group}")
        axes[0].set(title="Learning rate", xlabel="batch", ylabel="learning rate")
        axes[1].set(title="Momentum (Adam's beta1)", xlabel="batch", ylabel="momentum")
        for ax in axes:
            ax.legend()
        return axes
