"""What a fit records and shows: the Recorder and the progress bar and table, both callbacks (notebook 04)."""
from __future__ import annotations

import math
import sys
import time
from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from helpers.callbacks import Callback


def metric_name(metric: Callable) -> str:
    """The table's column for a metric; partials and callable objects have no ``__name__`` of their own."""
    return (getattr(metric, "__name__", None) or getattr(getattr(metric, "func", None), "__name__", None)
            or type(metric).__name__)


def format_time(seconds: float) -> str:
    """mm:ss, as fastai's table shows an epoch's time."""
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
        self._valid, self._preds, self._targets, self._start, self._skipped_before = None, [], [], 0.0, 0
        self.reset()

    def reset(self) -> None:
        """Forget everything (each public fit starts a fresh record)."""
        self._losses, self._smooth_losses, self._pending = [], [], []
        self.lrs, self.moms, self.values = [], [], []
        self.skipped_steps = 0
        self._average, self._count = 0.0, 0

    def start_smoothing(self) -> None:
        """Restart the moving average, as fastai does at the start of every fit."""
        self._flush()
        self._average, self._count = 0.0, 0

    def record_batch(self, loss: float | torch.Tensor, lrs: Sequence[float], moms: Sequence[float]) -> None:
        """Store one training batch; a tensor loss is read back only when someone asks (no host sync per step)."""
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
        """Each training batch's loss."""
        self._flush()
        return self._losses

    @property
    def smooth_losses(self) -> list[float]:
        """The debiased moving average of the loss after each training batch."""
        self._flush()
        return self._smooth_losses

    @property
    def smooth_loss(self) -> float:
        """The latest smoothed loss (NaN before the first batch of this fit)."""
        self._flush()
        return self._smooth_losses[-1] if self._count else math.nan

    @property
    def values_df(self) -> pd.DataFrame:
        """The per-epoch table as a DataFrame."""
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
        self._preds, self._targets = [], []

    def after_loss(self) -> None:
        if not self.learn.training and self.learn.fitting:
            self._preds.append(self.learn.pred.detach())
            self._targets.append(tuple(y.detach() for y in self.learn.yb))

    def after_validate(self) -> None:
        if self.learn.fitting and self._preds:
            preds = torch.cat(self._preds)
            targets = tuple(torch.cat(column) for column in zip(*self._targets))
            self._valid = self.learn.loss_and_metrics(preds, targets)
        self._preds, self._targets = [], []

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
        """Training loss per batch (raw and smoothed) and, when recorded, validation loss at each epoch's end."""
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
        """Learning rate and momentum of every parameter group against the batch number."""
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


# --- progress ---------------------------------------------------------------------------------------

def in_notebook() -> bool:
    """True inside a Jupyter kernel (Colab's included), where output can be HTML that updates in place."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    # Through the class hierarchy so that kernels subclassing Jupyter's shell (Colab's) count too.
    return any(cls.__name__ == "ZMQInteractiveShell" for cls in type(get_ipython()).__mro__)


def _bar_bundle(done: int, total: int, text: str) -> dict[str, str]:
    """The bar as HTML, and as the same words for readers that show text only (a plain-text export)."""
    html = (f'<div><progress value="{done}" max="{max(total, 1)}" style="width:300px;height:1em"></progress> '
            f"<span>{text}</span></div>")
    return {"text/html": html, "text/plain": text}


class ProgressCallback(Callback):
    """Shows a fit: a bar over the training batches, and a table row per epoch (notebook 04).

    In a notebook the bar is one output (HTML, with a plain-text twin) updated in place; at the end of the
    fit it says where the fit ended, "finished at epoch 2/2, batch 14/14", so a stored notebook shows that and
    never a frozen "0%" widget. The table is a DataFrame updated in place. In a terminal the bar is tqdm's and goes away, the table is printed lines;
    in a log file (no terminal) only the lines. ``Learner(quiet=True)`` shows nothing.
    """

    order = 70  # after the Recorder has added the epoch's row
    refresh_s = 0.2  # an HTML update per batch would flood the notebook's message queue

    def __init__(self):
        # Set here too: a callback may cancel the fit before this one's before_fit runs; after_fit still does.
        self.active = self.notebook = self.terminal = False
        self.bar = self.bar_handle = self.table_handle = None
        self.rows = self.first_row = self.done = self.total = 0
        self.last_draw = 0.0

    def before_fit(self) -> None:
        learn = self.learn
        self.active = not learn.quiet
        self.notebook = self.active and in_notebook()
        self.terminal = self.active and not self.notebook and bool(getattr(sys.stderr, "isatty", lambda: False)())
        self.rows, self.table_handle, self.bar, self.bar_handle = 0, None, None, None
        # The Recorder (order 50) has already run its before_fit, so this is after any reset.
        self.first_row = len(learn.recorder.values)
        self.done, self.total, self.last_draw = 0, 0, 0.0
        if self.notebook:
            from IPython.display import display
            self.bar_handle = display(_bar_bundle(0, 1, "starting"), raw=True, display_id=True)

    def before_train(self) -> None:
        if self.terminal:
            self.bar = tqdm(total=self.learn.n_iter, desc=f"epoch {self.learn.epoch + 1}/{self.learn.n_epoch}",
                            leave=False, file=sys.stderr)
        self.done, self.total = 0, self.learn.n_iter

    def before_batch(self) -> None:
        if self.learn.training:
            # Counted here, not in after_batch: a callback that stops the fit in after_batch (the LR finder)
            # would otherwise leave the final state one batch short.
            self.done = self.learn.iter + 1

    def after_batch(self) -> None:
        if not self.learn.training or not self.active:
            return
        if self.bar is not None:
            self.bar.update()
        elif self.notebook and time.perf_counter() - self.last_draw > self.refresh_s:
            self._draw()

    def after_train(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def _text(self) -> str:
        return f"epoch {self.learn.epoch + 1}/{self.learn.n_epoch}, batch {self.done}/{self.total}"

    def _draw(self, final: bool = False) -> None:
        self.last_draw = time.perf_counter()
        text = self._text()
        if final:
            ended = self.learn.epoch + 1 == self.learn.n_epoch and self.done == self.total
            text = f"{'finished' if ended else 'stopped'} at {text}"
        self.bar_handle.update(_bar_bundle(self.done, self.total, text), raw=True)

    def after_epoch(self) -> None:
        values = self.learn.recorder.values
        if not self.active or len(values) <= self.first_row + self.rows:
            return  # no new row: validation was skipped (the LR finder) or cancelled
        # Each fit shows its own rows (fine_tune's two phases are two fits sharing one record).
        rows = [{k: v for k, v in row.items() if k != "batches"} for row in values[self.first_row:]]
        self.rows = len(rows)
        if self.notebook:
            from IPython.display import display
            table = pd.DataFrame(rows)
            if self.table_handle is None:
                self.table_handle = display(table, display_id=True)
            else:
                self.table_handle.update(table)
            return
        if self.rows == 1:
            print("  ".join(f"{k:>10}" for k in rows[-1]))
        print("  ".join(f"{v:>10.6f}" if isinstance(v, float) else f"{v:>10}" for v in rows[-1].values()),
              flush=True)

    def after_fit(self) -> None:
        self.after_train()
        if self.bar_handle is not None:
            self._draw(final=True)
