"""A small Learner: the training loop, one-cycle, the LR finder, freezing and fine_tune (notebooks 04 and 05).

Everything happens in ``_fit``: for each batch it sets the learning rates and momenta the schedule asks
for, runs one training step, and records what happened; after each epoch it validates and prints a row
of the table. The public methods only choose the schedule:

- ``fit(n, lr)``: constant rates;
- ``fit_one_cycle(n, lr_max)``: warm up then anneal along cosines (``helpers.schedule``);
- ``lr_find()``: an exponential ramp that stops when the loss blows up, then puts everything back;
- ``fine_tune(n)``: ``freeze``, one-cycle, ``unfreeze``, one-cycle with smaller rates for early layers.
"""
from __future__ import annotations

import copy
import math
import sys
import time
from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm.auto import tqdm

from helpers.device import get_device
from helpers.lr_finder import plot_lr_find, suggest, valley
from helpers.precision import Precision
from helpers.schedule import lr_for_groups, one_cycle, sched_exp

DEFAULT_MOM = 0.9  # Adam's beta1 whenever no momentum schedule runs (fit, lr_find)
SQR_MOM = 0.99     # Adam's beta2 as fastai sets it
EPS = 1e-5         # fastai's Adam eps (PyTorch's default is 1e-8)
NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d,
              nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d, nn.LayerNorm)


def accuracy(preds: torch.Tensor, targs: torch.Tensor) -> torch.Tensor:
    """Fraction of items whose highest-scoring class is the target (notebook 04)."""
    return (preds.argmax(dim=-1) == targs).float().mean()


def error_rate(preds: torch.Tensor, targs: torch.Tensor) -> torch.Tensor:
    """1 - accuracy: the fraction of items the model gets wrong (notebook 04)."""
    return 1 - accuracy(preds, targs)


def norm_params(model: nn.Module) -> list[nn.Parameter]:
    """Parameters of normalisation layers: they train even when frozen and get no weight decay (notebook 05)."""
    return [p for m in model.modules() if isinstance(m, NORM_TYPES) for p in m.parameters(recurse=False)]


def no_decay_params(model: nn.Module) -> list[nn.Parameter]:
    """Normalisation parameters and every bias: weight decay would only pull them towards zero (notebook 04)."""
    biases = [m.bias for m in model.modules()
              if not isinstance(m, NORM_TYPES) and isinstance(getattr(m, "bias", None), nn.Parameter)]
    return norm_params(model) + biases


class _StopFit(Exception):
    """Raised inside the loop to end a fit early and quietly (the LR finder's stop rule)."""


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    # Through the class hierarchy so that kernels subclassing Jupyter's shell (Colab's) count too.
    return any(cls.__name__ == "ZMQInteractiveShell" for cls in type(get_ipython()).__mro__)


def _show_progress_bar(quiet: bool) -> bool:
    """A live bar only where it renders: a notebook widget, or a terminal that understands ``\\r``."""
    if quiet:
        return False
    # In a CI log or a file every redraw would become another line; the epoch table already reports progress.
    return _in_notebook() or bool(getattr(sys.stderr, "isatty", lambda: False)())


def _metric_name(metric: Callable) -> str:
    """The table's column for a metric; partials and callable objects have no ``__name__`` of their own."""
    return (getattr(metric, "__name__", None) or getattr(getattr(metric, "func", None), "__name__", None)
            or type(metric).__name__)


def _format_time(seconds: float) -> str:
    return f"{int(seconds // 60):02d}:{int(seconds % 60):02d}"


class Recorder:
    """What a fit recorded: per batch losses, rates and momenta; per epoch the table (notebook 04).

    ``lrs[k]`` and ``moms[k]`` hold one value per parameter group at batch k; ``losses[k]`` is that
    batch's loss and ``smooth_losses[k]`` its exponential moving average (beta 0.98, debiased).
    """

    def __init__(self, beta: float = 0.98):
        self.beta = beta
        self.reset()

    def reset(self) -> None:
        """Forget everything (each public fit starts a fresh record)."""
        self.lrs, self.moms, self.losses, self.smooth_losses, self.values = [], [], [], [], []
        self.skipped_steps = 0
        self.start_smoothing()

    def start_smoothing(self) -> None:
        """Restart the moving average, as fastai does at the start of every fit."""
        self._average, self._count = 0.0, 0

    def record_batch(self, loss: float, lrs: Sequence[float], moms: Sequence[float]) -> None:
        """Store one training batch."""
        self._count += 1
        self._average = self.beta * self._average + (1 - self.beta) * loss
        # Dividing by 1 - beta^count removes the pull towards the average's starting value of 0.
        self.smooth_losses.append(self._average / (1 - self.beta**self._count))
        self.losses.append(loss)
        self.lrs.append([float(v) for v in lrs])
        self.moms.append([float(v) for v in moms])

    @property
    def smooth_loss(self) -> float:
        """The latest smoothed loss (NaN before the first batch)."""
        return self.smooth_losses[-1] if self._count else math.nan

    @property
    def values_df(self) -> pd.DataFrame:
        """The per-epoch table as a DataFrame."""
        return pd.DataFrame(self.values)

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


class _EpochTable:
    """Shows the per-epoch rows as they arrive: an updating HTML table in Jupyter, plain lines elsewhere."""

    def __init__(self, quiet: bool):
        self.quiet, self.rows, self.handle = quiet, [], None

    def add(self, row: dict) -> None:
        self.rows.append(row)
        if self.quiet:
            return
        shown = {k: v for k, v in row.items() if k != "batches"}
        if _in_notebook():
            from IPython.display import display
            table = pd.DataFrame([{k: v for k, v in r.items() if k != "batches"} for r in self.rows])
            if self.handle is None:
                self.handle = display(table, display_id=True)
            else:
                self.handle.update(table)
            return
        if len(self.rows) == 1:
            print("  ".join(f"{k:>10}" for k in shown))
        print("  ".join(f"{v:>10.6f}" if isinstance(v, float) else f"{v:>10}" for v in shown.values()), flush=True)


class Learner:
    """Model + data + loss + optimiser, and the loop that trains them (notebook 04).

    The optimiser is ``torch.optim.AdamW`` set like fastai's default Adam: decoupled weight decay ``wd``
    (0.01), ``eps=1e-5``, ``betas=(mom, 0.99)`` where beta1 follows the momentum schedule, and no weight
    decay on normalisation-layer parameters or biases. It gets one parameter group per splitter group
    (each split in two, with and without decay); the recorder reports one rate per splitter group.
    """

    def __init__(self, dls, model: nn.Module, loss_func: Callable = nn.CrossEntropyLoss(),
                 opt_func: Callable | None = None, lr: float | slice = 1e-3,
                 splitter: Callable[[nn.Module], list] | None = None, metrics: Sequence[Callable] = (),
                 wd: float = 0.01, precision: str = "fp32", channels_last: bool = False,
                 device: torch.device | str | None = None, quiet: bool = False):
        self.dls, self.loss_func, self.lr, self.wd = dls, loss_func, lr, wd
        self.metrics = list(metrics)
        self.splitter = splitter or (lambda m: [list(m.parameters())])
        self.device = torch.device(device) if device is not None else get_device()
        self.channels_last, self.quiet = channels_last, quiet
        self.model = model.to(self.device)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.after_batch = getattr(dls, "after_batch", None)
        if self.after_batch is not None:
            self.after_batch = self.after_batch.to(self.device)
        self.precision = Precision(precision, self.device)
        self.recorder = Recorder()
        self.opt = self._create_opt(opt_func)

    # --- the optimiser -----------------------------------------------------------------------------
    def _create_opt(self, opt_func: Callable | None) -> torch.optim.Optimizer:
        groups = self.splitter(self.model)
        no_decay = {id(p) for p in no_decay_params(self.model)}
        param_groups = []
        for index, params in enumerate(groups):
            for decay in (True, False):
                chosen = [p for p in params if (id(p) not in no_decay) == decay]
                if chosen:
                    param_groups.append({"params": chosen, "weight_decay": self.wd if decay else 0.0,
                                         "splitter_group": index})
        self.n_groups = len(groups)
        if opt_func is None:
            return torch.optim.AdamW(param_groups, lr=1e-3, betas=(DEFAULT_MOM, SQR_MOM), eps=EPS)
        return opt_func(param_groups, lr=1e-3)

    def _set_hypers(self, lrs: Sequence[float], moms: Sequence[float]) -> None:
        for group in self.opt.param_groups:
            index = group["splitter_group"]
            group["lr"] = float(lrs[index])
            if "betas" in group:
                group["betas"] = (float(moms[index]), group["betas"][1])
            elif "momentum" in group:
                group["momentum"] = float(moms[index])

    def _per_group(self, value: float | Sequence[float]) -> np.ndarray:
        return np.broadcast_to(np.asarray(value, dtype=float), (self.n_groups,))

    def _check_train_batches(self) -> None:
        # Without this an empty loader trains nothing in silence, or divides by zero in lr_find.
        if len(self.dls.train) == 0:
            raise ValueError("the training DataLoader has no batches: check the dataset is not empty and that "
                             "batch_size / drop_last leave at least one batch.")

    # --- one batch ---------------------------------------------------------------------------------
    def _prepare(self, x: torch.Tensor, y: torch.Tensor, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Move a batch to the device and run the batch transform (augmentation + normalisation) there."""
        x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
        if self.after_batch is not None:
            self.after_batch.train(train)
            x = self.after_batch(x)
        if self.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        with self.precision.autocast():
            preds = self.model(x)
        return preds.float()  # the loss and metrics see float32 whatever the precision

    def _train_step(self, x: torch.Tensor, y: torch.Tensor) -> float:
        x, y = self._prepare(x, y, train=True)
        loss = self.loss_func(self._forward(x), y)
        self.precision.backward(loss)
        if not self.precision.step(self.opt):
            self.recorder.skipped_steps += 1
        self.opt.zero_grad(set_to_none=True)
        return loss.item()

    # --- the loop ----------------------------------------------------------------------------------
    def _fit(self, n_epoch: int, hypers_at: Callable[[int], tuple], validate: bool = True,
             stop_after: Callable[[int], bool] | None = None) -> None:
        """Train ``n_epoch`` epochs; ``hypers_at(k)`` gives (lrs, moms) per group for global batch k."""
        if n_epoch < 1:
            raise ValueError(f"n_epoch must be at least 1, got {n_epoch}.")
        self._check_train_batches()
        was_training = self.model.training
        self.recorder.start_smoothing()
        table, k = _EpochTable(self.quiet or not validate), 0
        try:
            for epoch in range(n_epoch):
                start, skipped_before = time.perf_counter(), self.recorder.skipped_steps
                self.model.train()
                # A bar updated by hand: tqdm.auto wrapping the loader itself would call iter() on it twice,
                # which draws an extra shuffle from the loader's generator (and starts workers twice).
                with tqdm(total=len(self.dls.train), desc=f"epoch {epoch + 1}/{n_epoch}", leave=False,
                          disable=not _show_progress_bar(self.quiet)) as bar:
                    for x, y in self.dls.train:
                        lrs, moms = hypers_at(k)
                        self._set_hypers(lrs, moms)
                        loss = self._train_step(x, y)
                        self.recorder.record_batch(loss, lrs, moms)
                        k += 1
                        bar.update()
                        if stop_after is not None and stop_after(k):
                            raise _StopFit
                if validate:
                    valid_loss, *metric_values = self.validate()
                    row = {"epoch": epoch, "train_loss": self.recorder.smooth_loss, "valid_loss": valid_loss}
                    row.update({_metric_name(m): v for m, v in zip(self.metrics, metric_values)})
                    if self.precision.mode == "fp16":
                        # Only fp16 can skip steps; fp32/bf16 tables keep their usual columns.
                        row["skipped"] = self.recorder.skipped_steps - skipped_before
                    row["time"] = _format_time(time.perf_counter() - start)
                    row["batches"] = len(self.recorder.losses)
                    self.recorder.values.append(row)
                    table.add(row)
        except _StopFit:
            pass
        finally:
            # Also after an interrupt: drop half-made gradients and put the model back as it was.
            self.opt.zero_grad(set_to_none=True)
            self.model.train(was_training)

    def fit(self, n_epoch: int, lr: float | slice | None = None) -> None:
        """Train ``n_epoch`` epochs at constant rates (a float, or a slice across the groups) (notebook 04)."""
        lrs = np.array(lr_for_groups(self.lr if lr is None else lr, self.n_groups))
        moms = self._per_group(DEFAULT_MOM)
        self.recorder.reset()
        self._fit(n_epoch, lambda k: (lrs, moms))

    def fit_one_cycle(self, n_epoch: int, lr_max: float | slice | None = None, div: float = 25.0,
                      div_final: float = 1e5, pct_start: float = 0.25,
                      moms: tuple[float, float, float] = (0.95, 0.85, 0.95), _keep_record: bool = False) -> None:
        """Train with the one-cycle policy: rates warm up to ``lr_max`` then anneal, momentum does the opposite (notebook 04)."""
        lr_max = np.array(lr_for_groups(self.lr if lr_max is None else lr_max, self.n_groups))
        lr_schedule, mom_schedule = one_cycle(lr_max, pct_start, div, div_final, moms)
        total = n_epoch * len(self.dls.train)
        if not _keep_record:
            self.recorder.reset()
        self._fit(n_epoch, lambda k: (lr_schedule(k / total), self._per_group(mom_schedule(k / total))))

    # --- evaluation --------------------------------------------------------------------------------
    def _outputs(self, dl) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's outputs and targets over a whole loader, in eval mode, without gradients."""
        was_training = self.model.training
        self.model.eval()
        preds, targs = [], []
        try:
            with torch.no_grad():
                for x, y in dl:
                    x, y = self._prepare(x, y, train=False)
                    preds.append(self._forward(x))
                    targs.append(y)
        finally:
            self.model.train(was_training)
        return torch.cat(preds), torch.cat(targs)

    def validate(self, dl=None) -> list[float]:
        """``[loss, *metrics]`` over the validation set (or ``dl``), each a mean over all items (notebook 04)."""
        preds, targs = self._outputs(dl if dl is not None else self.dls.valid)
        # One call over every item weights each item equally, as fastai's batch-size-weighted means do.
        return [float(self.loss_func(preds, targs))] + [float(m(preds, targs)) for m in self.metrics]

    def get_preds(self, dl=None, with_loss: bool = False) -> tuple[torch.Tensor, ...]:
        """Softmax probabilities and targets for every item of ``dl`` (default: validation), on the CPU (notebook 05)."""
        preds, targs = self._outputs(dl if dl is not None else self.dls.valid)
        probs = preds.softmax(dim=-1).cpu()
        if not with_loss:
            return probs, targs.cpu()
        if not hasattr(self.loss_func, "reduction"):
            raise TypeError("get_preds(with_loss=True) needs a loss with a `reduction` attribute (such as "
                            "nn.CrossEntropyLoss()) so it can compute one loss per item.")
        per_item = copy.copy(self.loss_func)
        per_item.reduction = "none"
        return probs, targs.cpu(), per_item(preds, targs).cpu()

    def predict(self, item) -> tuple[str, int, torch.Tensor]:
        """Label, class index and probabilities for one image (a path or a PIL image) (notebook 05)."""
        dataset = getattr(self.dls.valid, "dataset", None)
        if not hasattr(dataset, "prepare"):
            raise TypeError("predict needs dls.valid.dataset.prepare(item) to turn an image into a tensor; "
                            "build the loaders with helpers.data.pets_dataloaders or an ImageDataset.")
        x = dataset.prepare(item)[None]
        y = torch.zeros(1, dtype=torch.long)
        preds, _ = self._outputs([(x, y)])
        probs = preds.softmax(dim=-1)[0].cpu()
        index = int(probs.argmax())
        return self.dls.vocab[index], index, probs

    # --- freezing and transfer learning ------------------------------------------------------------
    def freeze_to(self, n: int) -> None:
        """Train only the parameter groups from ``n`` on, plus every normalisation layer (notebook 05)."""
        groups = self.splitter(self.model)
        if len(groups) < 2 and n != 0:
            # With one group the head is the whole model: "freezing" would train everything without a word.
            raise ValueError(
                "freeze() / freeze_to() / fine_tune() need several parameter groups, but this Learner has one "
                "(no splitter was given, or it returned one group), so there is no body to freeze apart from the "
                "head. Pass splitter=resnet_split (from helpers.models) for a create_cnn model, or another splitter "
                "that returns several groups; to train the whole model instead, use fit_one_cycle.")
        always = {id(p) for p in norm_params(self.model)}
        for frozen in groups[:n]:
            for p in frozen:
                p.requires_grad_(id(p) in always)
        for trainable in groups[n:]:
            for p in trainable:
                p.requires_grad_(True)
        # Adam's moments belong to the old set of trainable weights: start them afresh.
        self.opt.state.clear()

    def freeze(self) -> None:
        """Train only the last group (the head) and the normalisation layers (notebook 05)."""
        self.freeze_to(-1)

    def unfreeze(self) -> None:
        """Train every parameter (notebook 05)."""
        self.freeze_to(0)

    def fine_tune(self, epochs: int, base_lr: float = 2e-3, freeze_epochs: int = 1, lr_mult: float = 100,
                  pct_start: float = 0.3, div: float = 5.0) -> None:
        """fastai's recipe: head only for ``freeze_epochs``, then everything with smaller early rates (notebook 05)."""
        self.freeze()
        self.fit_one_cycle(freeze_epochs, slice(base_lr), pct_start=0.99)
        base_lr /= 2
        self.unfreeze()
        self.fit_one_cycle(epochs, slice(base_lr / lr_mult, base_lr), pct_start=pct_start, div=div,
                           _keep_record=True)

    # --- the learning-rate finder ------------------------------------------------------------------
    def lr_find(self, start_lr: float = 1e-7, end_lr: float = 10, num_it: int = 100, stop_div: bool = True,
                suggest_funcs: Sequence[Callable] = (valley,), show_plot: bool = True) -> tuple:
        """Range test: raise the rate exponentially each batch, record the loss, then restore everything (notebook 04)."""
        num_it = max(num_it, 6)  # fewer points leave nothing after trimming
        self._check_train_batches()
        n_epoch = num_it // len(self.dls.train) + 1
        saved = {"model": copy.deepcopy(self.model.state_dict()), "opt": copy.deepcopy(self.opt.state_dict()),
                 "scaler": copy.deepcopy(self.precision.state_dict())}
        moms = self._per_group(DEFAULT_MOM)
        best = math.inf

        def diverged_or_done(k: int) -> bool:
            nonlocal best
            smooth = self.recorder.smooth_loss
            best = min(best, smooth)
            # Stopping on NaN too: nothing after it is usable and trim_curve would cut it anyway.
            return k >= num_it or (stop_div and (smooth > 4 * best or math.isnan(smooth)))

        self.recorder.reset()
        try:
            self._fit(n_epoch, lambda k: (self._per_group(sched_exp(start_lr, end_lr, k / num_it)), moms),
                      validate=False, stop_after=diverged_or_done)
        finally:
            self.model.load_state_dict(saved["model"])
            self.opt.load_state_dict(saved["opt"])
            self.precision.load_state_dict(saved["scaler"])
        lrs = [group_lrs[-1] for group_lrs in self.recorder.lrs]
        suggestions = suggest(lrs, self.recorder.smooth_losses, num_it, suggest_funcs)
        if show_plot:
            plot_lr_find(lrs, self.recorder.smooth_losses, num_it, suggest_funcs)
        return suggestions

    # --- precision ---------------------------------------------------------------------------------
    def to_fp16(self) -> "Learner":
        """Mixed precision with float16 and loss scaling (best on a CUDA GPU) (notebook 06)."""
        self.precision = Precision("fp16", self.device)
        return self

    def to_bf16(self) -> "Learner":
        """Mixed precision with bfloat16, no loss scaling needed (CUDA or CPU) (notebook 06)."""
        self.precision = Precision("bf16", self.device)
        return self

    def to_fp32(self) -> "Learner":
        """Back to plain float32 training (notebook 06)."""
        self.precision = Precision("fp32", self.device)
        return self
