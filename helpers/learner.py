"""A small Learner: one training loop with events (notebooks 04-07).

The loop (``_fit``) goes through epochs, training batches and validation batches, and at each step fires
an *event* that callbacks can act on (``helpers.callbacks`` lists them). Everything that is not the loop
itself is a callback: the Recorder (``helpers.recorder``) and the progress display (``helpers.progress``), the
batch transform, the schedules (``ParamScheduler``), the range test (``helpers.lr_finder.LRFinder``) and the short
epochs of smoke runs (``helpers.short_run``). The rest of the class lives with its concern:

- ``helpers.fit_policies``: ``fit``, ``fit_one_cycle``, ``fine_tune``, ``freeze``, ``lr_find``, ``to_fp16``;
- ``helpers.evaluation``: ``validate``, ``get_preds``, ``predict``;
- ``helpers.optimiser``: the optimiser's set-up, ``set_hyper`` and ``hypers``.

Mixed precision stays a policy object the loop calls (``helpers.precision.Precision``): it wraps the
forward pass, the backward and the step, which no event sits around.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn

from helpers.callbacks import (
    EVENTS,
    BatchTransform,
    Callback,
    CancelBatchException,
    CancelEpochException,
    CancelFitException,
    CancelTrainException,
    CancelValidException,
    event_methods,
)
from helpers.device import get_device
from helpers.evaluation import Evaluation
from helpers.fit_policies import FitPolicies
from helpers.metrics import error_rate  # the notebooks' metric: `from helpers.learner import Learner, error_rate`
from helpers.optimiser import HyperParams, create_opt
from helpers.precision import Precision
from helpers.progress import ProgressCallback
from helpers.recorder import Recorder
from helpers.short_run import profile_callbacks

__all__ = ["Learner", "error_rate"]


class Learner(FitPolicies, Evaluation, HyperParams):
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
    ``COURSE_MAX_BATCHES=N`` before creating the Learner to stop every training and validation pass of a fit after
    N batches (quick smoke runs of the full profile; ``helpers.short_run.ShortRun``); a fit then runs at most
    ``SMOKE_MAX_EPOCHS`` epochs (its whole schedule squeezed into them) and the learning-rate finder at most
    ``SMOKE_FINDER_ITERS`` steps, while ``get_preds`` and ``validate`` still see every item.
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
        groups = self.splitter(self.model)
        self.n_groups = len(groups)
        self.opt = create_opt(self.model, groups, lr, wd, self.device, opt_func)
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
        self.add_cbs(defaults + profile_callbacks() + list(cbs))

    # --- callbacks ---------------------------------------------------------------------------------
    def add_cbs(self, cbs: Iterable[Callback] | Callback) -> Learner:
        """Attach callbacks (instances or classes) for every later fit (notebook 07)."""
        for cb in [cbs] if isinstance(cbs, (Callback, type)) else cbs:
            cb = cb() if isinstance(cb, type) else cb
            event_methods(cb)  # fails now, not mid-fit, on a misspelt event
            cb.learn = self
            self.cbs.append(cb)
        self._sort_handlers()
        return self

    def remove_cbs(self, cbs: Iterable[Callback] | Callback) -> Learner:
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

    def _phase(self, dl, training: bool) -> None:
        """One pass over ``dl``: training (with backward and step) or validation (no gradients)."""
        self.training, self.dl = training, dl
        self.n_iter = len(dl)  # a callback may lower it in before_train / before_validate (ShortRun)
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
