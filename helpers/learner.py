"""A small Learner: one training loop with events, and the methods that choose what runs in it (notebooks 04-07).

The loop (``_fit``) goes through epochs, training batches and validation batches, and at each step fires
an *event* that callbacks can act on (``helpers.callbacks`` lists them). Everything that is not the loop
itself is a callback: the Recorder and the progress display (``helpers.progress``), the batch transform,
the schedules (``ParamScheduler``) and the range test (``helpers.lr_finder.LRFinder``). The public methods
only choose callbacks:

- ``fit(n, lr)``: constant rates;
- ``fit_one_cycle(n, lr_max)``: warm up then anneal along cosines (``helpers.schedule``);
- ``lr_find()``: an exponential ramp that stops when the loss blows up, then puts everything back;
- ``fine_tune(n)``: ``freeze``, one-cycle, ``unfreeze``, one-cycle with smaller rates for early layers.

Mixed precision stays a policy object the loop calls (``helpers.precision.Precision``): it wraps the
forward pass, the backward and the step, which no event sits around.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import math
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from helpers.callbacks import (EVENTS, BatchTransform, Callback, CancelBatchException, CancelEpochException,
                               CancelFitException, CancelTrainException, CancelValidException, GatherPreds,
                               ParamScheduler, event_methods)
from helpers.device import get_device
from helpers.lr_finder import LRFinder, plot_lr_find, suggest, valley
from helpers.metrics import accuracy, error_rate, mae, rmse, rmspe  # noqa: F401 (old imports keep working)
from helpers.precision import Precision
from helpers.profiles import max_batches
from helpers.progress import ProgressCallback, Recorder
from helpers.schedule import lr_for_groups, one_cycle

DEFAULT_MOM = 0.9  # Adam's beta1 whenever no momentum schedule runs (fit, lr_find)
SQR_MOM = 0.99     # Adam's beta2 as fastai sets it
EPS = 1e-5         # fastai's Adam eps (PyTorch's default is 1e-8)
NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm,  # SyncBatchNorm: multi-GPU runs
              nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d, nn.LayerNorm)
ACTIVATIONS = {"softmax": functools.partial(torch.softmax, dim=-1), "sigmoid": torch.sigmoid,
               "identity": lambda x: x}


def norm_params(model: nn.Module) -> list[nn.Parameter]:
    """Parameters of normalisation layers: they train even when frozen and get no weight decay (notebook 05)."""
    return [p for m in model.modules() if isinstance(m, NORM_TYPES) for p in m.parameters(recurse=False)]


def no_decay_params(model: nn.Module) -> list[nn.Parameter]:
    """Normalisation parameters and every bias: weight decay would only pull them towards zero (notebook 04)."""
    biases = [m.bias for m in model.modules()
              if not isinstance(m, NORM_TYPES) and isinstance(getattr(m, "bias", None), nn.Parameter)]
    return norm_params(model) + biases


def default_activation(loss_func: Callable) -> str:
    """Which activation turns the model's outputs into predictions for this loss (notebook 05).

    Softmax for cross-entropy, sigmoid for binary cross-entropy on logits, identity otherwise (regression,
    or a loss we cannot recognise: pass ``act=`` to ``get_preds`` then).
    """
    declared = getattr(loss_func, "activation", None)  # a loss may say it, as fastai's losses do
    if isinstance(declared, str):
        return declared
    if isinstance(loss_func, nn.CrossEntropyLoss) or loss_func is nn.functional.cross_entropy:
        return "softmax"
    if isinstance(loss_func, nn.BCEWithLogitsLoss) or loss_func is nn.functional.binary_cross_entropy_with_logits:
        return "sigmoid"
    return "identity"


# Under COURSE_MAX_BATCHES (a smoke run) every line of the loop still runs, in far fewer steps:
SMOKE_FINDER_ITERS = 8  # the finder's steps: it trims the last 5, and 3 points still make a curve to suggest from
SMOKE_MAX_EPOCHS = 2    # epochs per fit or fit_one_cycle: enough to cross from one epoch to the next


def epochs_to_run(n_epoch: int) -> int:
    """``n_epoch``, or at most ``SMOKE_MAX_EPOCHS`` in a smoke run (``COURSE_MAX_BATCHES`` set) (notebook 04)."""
    return min(n_epoch, SMOKE_MAX_EPOCHS) if max_batches() else n_epoch


class Learner:
    """Model + data + loss + optimiser, and the loop that trains them (notebook 04).

    ``dls`` has ``train`` and ``valid`` loaders (``vocab`` and ``after_batch`` are optional). The first
    ``n_inp`` elements of each batch are the model's inputs, the rest its targets: ``model(*xb)`` and
    ``loss_func(pred, *yb)``. The default loss is cross-entropy.

    The default optimiser is ``torch.optim.AdamW`` set like fastai's Adam: decoupled weight decay ``wd``
    (0.01), ``eps=1e-5``, ``betas=(mom, 0.99)`` where beta1 follows the momentum schedule, and no weight
    decay on normalisation-layer parameters or biases. It gets one parameter group per splitter group
    (each split in two, with and without decay); the recorder reports one rate per splitter group. On the
    CPU it uses PyTorch's fused implementation (one kernel for all parameters), the fastest there.
    ``opt_func`` may be any callable ``(params, lr)`` returning an object with ``step()`` and
    ``zero_grad()`` (a hand-written SGD); it gets the parameters (a list, or one dict per splitter group).

    Callbacks (``cbs``) act at the loop's events (``helpers.callbacks``). Set the environment variable
    ``COURSE_MAX_BATCHES=N`` to stop every training and validation pass of a fit after N batches (quick smoke
    runs of the full profile); a fit then runs at most ``SMOKE_MAX_EPOCHS`` epochs (its whole schedule squeezed
    into them) and the learning-rate finder at most ``SMOKE_FINDER_ITERS`` steps, while ``get_preds`` and
    ``validate`` still see every item.
    """

    def __init__(self, dls, model: nn.Module, loss_func: Callable | None = None,
                 opt_func: Callable | None = None, lr: float | slice = 1e-3,
                 splitter: Callable[[nn.Module], list] | None = None, metrics: Sequence[Callable] = (),
                 cbs: Iterable[Callback] = (), n_inp: int = 1, wd: float = 0.01, precision: str = "fp32",
                 channels_last: bool = False, device: torch.device | str | None = None, quiet: bool = False):
        # A fresh loss per Learner: a default argument would be one object shared by every Learner.
        self.dls, self.loss_func = dls, loss_func if loss_func is not None else nn.CrossEntropyLoss()
        self.lr, self.wd, self.n_inp, self.metrics = lr, wd, n_inp, list(metrics)
        self.splitter = splitter or (lambda m: [list(m.parameters())])
        self.device = torch.device(device) if device is not None else get_device()
        self.channels_last, self.quiet = channels_last, quiet
        self.model = model.to(self.device)
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.precision = Precision(precision, self.device)
        self.opt = self._create_opt(opt_func)
        self.training, self.fitting, self.step_skipped = False, False, False
        self.xb, self.yb, self.pred, self.loss = (), (), None, None
        self.epoch, self.iter, self.n_epoch, self.n_iter, self.train_iter, self.pct_train = 0, 0, 1, 0, 0, 0.0
        self.cbs, self._handlers = [], {event: [] for event in EVENTS}
        self.recorder = Recorder()
        self.after_batch = getattr(dls, "after_batch", None)
        defaults = [self.recorder, ProgressCallback()]
        if self.after_batch is not None:
            self.after_batch = self.after_batch.to(self.device)
            defaults.append(BatchTransform(self.after_batch))
        self.add_cbs(defaults + list(cbs))

    # --- callbacks ---------------------------------------------------------------------------------
    def add_cbs(self, cbs: Iterable[Callback] | Callback) -> "Learner":
        """Attach callbacks (instances or classes) for every later fit (notebook 07)."""
        for cb in [cbs] if isinstance(cbs, (Callback, type)) else cbs:
            cb = cb() if isinstance(cb, type) else cb
            event_methods(cb)  # fails now, not mid-fit, on a misspelt event
            cb.learn = self
            self.cbs.append(cb)
        self._sort_handlers()
        return self

    def remove_cbs(self, cbs: Iterable[Callback] | Callback) -> "Learner":
        """Detach callbacks (notebook 07)."""
        for cb in [cbs] if isinstance(cbs, Callback) else list(cbs):
            self.cbs.remove(cb)
        self._sort_handlers()
        return self

    @contextlib.contextmanager
    def added_cbs(self, cbs: Iterable[Callback] | None):
        """Callbacks attached for the duration of a ``with`` block (``fit(..., cbs=)`` uses it) (notebook 07)."""
        cbs = list(cbs or [])
        self.add_cbs(cbs)
        try:
            yield self
        finally:
            self.remove_cbs(cbs)

    def _sort_handlers(self) -> None:
        # Sorted once here rather than at every event: the loop fires several events per batch.
        ordered = sorted(self.cbs, key=lambda cb: cb.order)  # stable: equal orders run in the order added
        methods = [event_methods(cb) for cb in ordered]
        self._handlers = {event: [m[event] for m in methods if event in m] for event in EVENTS}

    def fire(self, event: str) -> None:
        """Call every attached callback's method for ``event``, lowest ``order`` first (notebook 07)."""
        for handler in self._handlers[event]:
            handler()

    def _with_events(self, body: Callable[[], None], name: str, cancel: type[Exception]) -> None:
        # As in fastai: a cancel exception ends the block, and the block's after_ event runs all the same.
        try:
            self.fire(f"before_{name}")
            body()
        except cancel:
            pass
        self.fire(f"after_{name}")

    # --- the optimiser -----------------------------------------------------------------------------
    def _create_opt(self, opt_func: Callable | None):
        groups = self.splitter(self.model)
        self.n_groups = len(groups)
        first_lr = lr_for_groups(self.lr, self.n_groups)[-1]
        if opt_func is not None:
            # A plain list for one group, so a hand-written optimiser that loops over parameters works.
            params = list(groups[0]) if self.n_groups == 1 else [
                {"params": list(g), "splitter_group": i} for i, g in enumerate(groups)]
            return opt_func(params, first_lr)
        no_decay = {id(p) for p in no_decay_params(self.model)}
        param_groups = []
        for index, params in enumerate(groups):
            for decay in (True, False):
                chosen = [p for p in params if (id(p) not in no_decay) == decay]
                if chosen:
                    param_groups.append({"params": chosen, "weight_decay": self.wd if decay else 0.0,
                                         "splitter_group": index})
        # On the CPU the fused kernel updates every tensor in one pass: about 40 ms less per step for resnet10
        # on one core, with the same arithmetic up to rounding. GPUs keep PyTorch's default (foreach).
        fused = self.device.type == "cpu" or None
        return torch.optim.AdamW(param_groups, lr=first_lr, betas=(DEFAULT_MOM, SQR_MOM), eps=EPS, fused=fused)

    def _groups(self):
        """(splitter group index, optimiser group) pairs; an optimiser without groups has none."""
        for i, group in enumerate(getattr(self.opt, "param_groups", None) or []):
            yield group.get("splitter_group", min(i, self.n_groups - 1)), group

    def set_hyper(self, name: str, value: float | Sequence[float]) -> None:
        """Set ``"lr"`` or ``"mom"`` (one value, or one per splitter group) on every optimiser group (notebook 04)."""
        values = np.broadcast_to(np.asarray(value, dtype=float), (self.n_groups,))
        if not hasattr(self.opt, "param_groups"):
            if name == "lr" and hasattr(self.opt, "lr"):  # a hand-written optimiser with a single rate
                self.opt.lr = float(values[-1])
            return
        for index, group in self._groups():
            if name == "lr":
                group["lr"] = float(values[index])
            elif "betas" in group:
                group["betas"] = (float(values[index]), group["betas"][1])
            elif "momentum" in group:
                group["momentum"] = float(values[index])

    def hypers(self) -> tuple[list[float], list[float]]:
        """The rate and momentum of each splitter group as the optimiser holds them now (NaN where it has none)."""
        lrs, moms = [math.nan] * self.n_groups, [math.nan] * self.n_groups
        if not hasattr(self.opt, "param_groups"):
            return [float(getattr(self.opt, "lr", math.nan))] * self.n_groups, moms
        seen = set()
        for index, group in self._groups():
            if index not in seen:  # each splitter group is two optimiser groups with the same rates
                seen.add(index)
                lrs[index] = group["lr"]
                moms[index] = group["betas"][0] if "betas" in group else group.get("momentum", math.nan)
        return lrs, moms

    def _check_train_batches(self) -> None:
        # Without this an empty loader trains nothing in silence, or divides by zero in lr_find.
        if len(self.dls.train) == 0:
            raise ValueError("the training DataLoader has no batches: check the dataset is not empty and that "
                             "batch_size / drop_last leave at least one batch.")

    # --- one batch ---------------------------------------------------------------------------------
    def _split_batch(self, batch) -> None:
        """Move a batch to the device and split it into inputs ``xb`` and targets ``yb``."""
        batch = [b.to(self.device, non_blocking=True) if torch.is_tensor(b) else b for b in batch]
        self.xb, self.yb = tuple(batch[:self.n_inp]), tuple(batch[self.n_inp:])

    def _one_batch(self) -> None:
        if self.channels_last:
            self.xb = tuple(x.contiguous(memory_format=torch.channels_last) if torch.is_tensor(x) and x.dim() == 4
                            else x for x in self.xb)
        with self.precision.autocast():
            self.pred = self.model(*self.xb)
        if torch.is_tensor(self.pred) and self.pred.is_floating_point():
            self.pred = self.pred.float()  # the loss and metrics see float32 whatever the precision
        self.fire("after_pred")
        if self.yb:
            self.loss = self.loss_func(self.pred, *self.yb)
        elif self.training:
            raise ValueError(f"a training batch needs targets after its {self.n_inp} input(s), but this batch has "
                             "nothing after them: check n_inp and what the dataset returns.")
        self.fire("after_loss")
        if not self.training:
            return
        self.precision.backward(self.loss)
        self.fire("after_backward")
        self.step_skipped = not self.precision.step(self.opt)
        self.fire("after_step")
        self.opt.zero_grad()

    def _all_batches(self, dl) -> None:
        for self.iter, batch in enumerate(dl):
            if self.iter >= self.n_iter:
                break
            self._split_batch(batch)
            self.loss = None
            if self.training:
                self.pct_train = self.train_iter / (self.n_epoch * self.n_iter)
            self._with_events(self._one_batch, "batch", CancelBatchException)
            if self.training:
                self.train_iter += 1

    def _phase(self, dl, training: bool, capped: bool = True) -> None:
        """One pass over ``dl``: training (with backward and step) or validation (no gradients).

        ``capped``: a fit's passes stop after ``COURSE_MAX_BATCHES`` batches; ``get_preds`` and ``validate``
        promise every item, so they are never cut short.
        """
        self.training, self.dl = training, dl
        self.n_iter = min(len(dl), max_batches() or len(dl)) if capped else len(dl)
        self.model.train(training)
        if training:
            self._with_events(lambda: self._all_batches(dl), "train", CancelTrainException)
        else:
            with torch.no_grad():
                self._with_events(lambda: self._all_batches(dl), "validate", CancelValidException)

    # --- the loop ----------------------------------------------------------------------------------
    def _do_epoch(self) -> None:
        self._phase(self.dls.train, training=True)
        self._phase(self.dls.valid, training=False)

    def _fit(self, n_epoch: int, cbs: Iterable[Callback] | None = None, keep_record: bool = False) -> None:
        """Train ``n_epoch`` epochs with the attached callbacks plus ``cbs`` (for this fit only)."""
        if n_epoch < 1:
            raise ValueError(f"n_epoch must be at least 1, got {n_epoch}.")
        self._check_train_batches()
        was_training = self.model.training
        self.recorder.keep_next = keep_record
        with self.added_cbs(cbs):
            self.n_epoch, self.train_iter, self.pct_train, self.fitting = n_epoch, 0, 0.0, True
            try:
                try:
                    self.fire("before_fit")
                    for self.epoch in range(n_epoch):
                        self._with_events(self._do_epoch, "epoch", CancelEpochException)
                except CancelFitException:
                    pass
                finally:
                    # Also after an error or Ctrl-C: callbacks that put things back (the LR finder) do it here.
                    self.fire("after_fit")
            finally:
                # Drop half-made gradients and put the model back in the mode it was in.
                self.opt.zero_grad()
                self.model.train(was_training)
                self.training = self.fitting = False

    def fit(self, n_epoch: int, lr: float | slice | None = None, cbs: Iterable[Callback] | None = None) -> None:
        """Train ``n_epoch`` epochs at constant rates (a float, or a slice across the groups) (notebook 04)."""
        self.set_hyper("lr", lr_for_groups(self.lr if lr is None else lr, self.n_groups))
        self.set_hyper("mom", DEFAULT_MOM)
        self._fit(epochs_to_run(n_epoch), cbs)

    def fit_one_cycle(self, n_epoch: int, lr_max: float | slice | None = None, div: float = 25.0,
                      div_final: float = 1e5, pct_start: float = 0.25,
                      moms: tuple[float, float, float] = (0.95, 0.85, 0.95),
                      cbs: Iterable[Callback] | None = None, _keep_record: bool = False) -> None:
        """Train with the one-cycle policy: rates warm up to ``lr_max`` then anneal, momentum does the opposite (notebook 04)."""
        lr_max = np.array(lr_for_groups(self.lr if lr_max is None else lr_max, self.n_groups))
        lr_schedule, mom_schedule = one_cycle(lr_max, pct_start, div, div_final, moms)
        scheduler = ParamScheduler({"lr": lr_schedule, "mom": mom_schedule})
        self._fit(epochs_to_run(n_epoch), [scheduler, *(cbs or [])], keep_record=_keep_record)

    # --- evaluation --------------------------------------------------------------------------------
    def _gather(self, dl) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """The model's outputs and targets over a whole loader, in eval mode, through the callbacks."""
        was_training = self.model.training
        gather = GatherPreds()
        try:
            with self.added_cbs([gather]):
                self._phase(dl, training=False, capped=False)
        finally:
            self.model.train(was_training)
            self.training = False
        return gather.result()

    def loss_and_metrics(self, preds: torch.Tensor, targets: tuple[torch.Tensor, ...]) -> list[float]:
        """``[loss, *metrics]`` over all the given items at once, as floats (notebook 04)."""
        # One call over every item weights each item equally, as fastai's batch-size-weighted means do.
        return [float(self.loss_func(preds, *targets))] + [float(m(preds, *targets)) for m in self.metrics]

    def validate(self, dl=None) -> list[float]:
        """``[loss, *metrics]`` over the validation set (or ``dl``), each a mean over all items (notebook 04)."""
        return self.loss_and_metrics(*self._gather(dl if dl is not None else self.dls.valid))

    def get_preds(self, dl=None, with_loss: bool = False, act: str | Callable | None = None) -> tuple:
        """Predictions and targets for every item of ``dl`` (default: validation), on the CPU (notebook 05).

        ``act`` turns outputs into predictions: ``"softmax"``, ``"sigmoid"``, ``"identity"`` or a function;
        by default the one that goes with the loss (``default_activation``). With ``with_loss``, a third
        tensor holds each item's loss.
        """
        preds, targets = self._gather(dl if dl is not None else self.dls.valid)
        act = act or default_activation(self.loss_func)
        if not callable(act) and act not in ACTIVATIONS:
            raise ValueError(f"act={act!r} is not an activation the Learner knows: use one of "
                             f"{sorted(ACTIVATIONS)}, or pass a function.")
        out = (act if callable(act) else ACTIVATIONS[act])(preds).cpu()
        shown_targets = targets[0].cpu() if len(targets) == 1 else tuple(t.cpu() for t in targets)
        if not with_loss:
            return out, shown_targets
        if not hasattr(self.loss_func, "reduction"):
            raise TypeError("get_preds(with_loss=True) needs a loss with a `reduction` attribute (such as "
                            "nn.CrossEntropyLoss()) so it can compute one loss per item.")
        per_item = copy.copy(self.loss_func)
        per_item.reduction = "none"
        return out, shown_targets, per_item(preds, *targets).cpu()

    def predict(self, item) -> tuple:
        """``(decoded, index or values, predictions)`` for one item (an image path, a PIL image, a tensor) (notebook 05).

        Classification: (label, class index, probabilities); binary with one output: (label or bool, 0/1,
        probability); regression: (value, value, outputs).
        """
        dataset = getattr(self.dls.valid, "dataset", None)
        if hasattr(dataset, "prepare"):
            xb = (dataset.prepare(item)[None],)
        elif torch.is_tensor(item) or (isinstance(item, tuple) and all(torch.is_tensor(x) for x in item)):
            xb = tuple(x[None] for x in (item if isinstance(item, tuple) else (item,)))
        else:
            raise TypeError("predict needs dls.valid.dataset.prepare(item) to turn an image into a tensor; "
                            "build the loaders with helpers.data.pets_dataloaders or an ImageDataset, or pass "
                            "the item as a tensor (a tuple of n_inp tensors).")
        if len(xb) != self.n_inp:
            raise ValueError(f"predict got {len(xb)} input(s) but the Learner has n_inp={self.n_inp}.")
        raw, _ = self._gather([xb])  # a loader of one batch, through the same path as validation
        name = default_activation(self.loss_func)
        out = ACTIVATIONS[name](raw)[0].cpu()
        vocab = getattr(self.dls, "vocab", None)
        if name == "softmax":
            index = int(out.argmax())
            return (vocab[index] if vocab else index), index, out
        if name == "sigmoid" and out.numel() == 1:
            index = int(out.item() > 0.5)
            return (vocab[index] if vocab and len(vocab) == 2 else bool(index)), index, out
        value = out.item() if out.numel() == 1 else out
        return value, value, out

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
        state = getattr(self.opt, "state", None)
        if hasattr(state, "clear"):
            state.clear()

    def freeze(self) -> None:
        """Train only the last group (the head) and the normalisation layers (notebook 05)."""
        self.freeze_to(-1)

    def unfreeze(self) -> None:
        """Train every parameter (notebook 05)."""
        self.freeze_to(0)

    def fine_tune(self, epochs: int, base_lr: float = 2e-3, freeze_epochs: int = 1, lr_mult: float = 100,
                  pct_start: float = 0.3, div: float = 5.0, cbs: Iterable[Callback] | None = None) -> None:
        """fastai's recipe: head only for ``freeze_epochs``, then everything with smaller early rates (notebook 05)."""
        self.freeze()
        self.fit_one_cycle(freeze_epochs, slice(base_lr), pct_start=0.99, cbs=cbs)
        base_lr /= 2
        self.unfreeze()
        self.fit_one_cycle(epochs, slice(base_lr / lr_mult, base_lr), pct_start=pct_start, div=div, cbs=cbs,
                           _keep_record=True)

    # --- the learning-rate finder ------------------------------------------------------------------
    def lr_find(self, start_lr: float = 1e-7, end_lr: float = 10, num_it: int = 100, stop_div: bool = True,
                suggest_funcs: Sequence[Callable] = (valley,), show_plot: bool = True) -> tuple:
        """Range test: raise the rate exponentially each batch, record the loss, then restore everything (notebook 04)."""
        num_it = max(num_it, 6)  # fewer points leave nothing after trimming
        if max_batches():  # a smoke run: the same code over the same range of rates, in a few steps
            num_it = min(num_it, SMOKE_FINDER_ITERS)
        self._check_train_batches()
        per_epoch = min(len(self.dls.train), max_batches() or len(self.dls.train))
        self._fit(num_it // per_epoch + 1, [LRFinder(start_lr, end_lr, num_it, stop_div, mom=DEFAULT_MOM)])
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
