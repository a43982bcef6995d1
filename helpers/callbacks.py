"""Callbacks: small objects the Learner calls at named points of its loop (notebooks 00, 07 and 09).

The Learner's loop is fixed; everything else (recording, progress, schedules, the LR finder, activation
statistics) hooks into it. At each *event* the Learner calls the method of that name on every attached
callback, in increasing ``order``. A callback reads and may change what the loop is working on through
``self.learn``: ``xb`` (a tuple of inputs), ``yb`` (a tuple of targets), ``pred``, ``loss``, ``training``,
``epoch``, ``iter``, ``n_epoch``, ``pct_train``.

The events of one fit, in the order they happen::

    before_fit
      before_epoch                                   (for each epoch)
        before_train
          before_batch, after_pred, after_loss,      (for each training batch)
          after_backward, after_step, after_batch
        after_train
        before_validate
          before_batch, after_pred, after_loss,      (for each validation batch: no backward, no step)
          after_batch
        after_validate
      after_epoch
    after_fit

A callback stops part of the loop by raising a ``Cancel...Exception``. As in fastai, each is caught by the
block it names, whose ``after_`` event still runs: ``CancelBatchException`` skips the rest of one batch,
``CancelTrainException`` / ``CancelValidException`` the rest of that phase, ``CancelEpochException`` the rest
of the epoch, ``CancelFitException`` the rest of the fit. ``after_fit`` runs even when the fit is
interrupted by an error or Ctrl-C, so callbacks that must put something back (the LR finder) do it there.

One hook is not an event: a callback may define ``gather_valid(preds, targets) -> (preds, targets)``. Whatever
gathers a validation pass's outputs (``GatherPreds``: the Recorder's table, ``validate``, ``get_preds``) hands its
outputs and targets through it before scoring them. ``helpers.distributed.DistributedTraining`` uses it to join
every process's shard, so the loss and metrics are computed once over the whole validation set.
"""
from __future__ import annotations

import torch

EVENTS = ("before_fit", "before_epoch", "before_train", "before_batch", "after_pred", "after_loss",
          "after_backward", "after_step", "after_batch", "after_train", "before_validate", "after_validate",
          "after_epoch", "after_fit")


class CancelFitException(Exception):
    """Raised by a callback to end the whole fit; ``after_fit`` still runs (notebook 07)."""


class CancelEpochException(Exception):
    """Raised by a callback to skip the rest of this epoch (training and validation) (notebook 07)."""


class CancelTrainException(Exception):
    """Raised by a callback to skip the rest of this epoch's training batches; validation still runs (notebook 04)."""


class CancelValidException(Exception):
    """Raised by a callback to skip this epoch's validation (the LR finder does) (notebook 07)."""


class CancelBatchException(Exception):
    """Raised by a callback to skip the rest of this batch, e.g. its backward and step (notebook 07)."""


class Callback:
    """Base class: define methods named after events; lower ``order`` runs first (notebook 04).

    ``self.learn`` is the Learner the callback is attached to (set by ``Learner.add_cbs``).
    """

    order: int = 0
    learn = None

    def __repr__(self) -> str:
        return type(self).__name__


def event_methods(cb: Callback) -> dict[str, object]:
    """The bound methods of ``cb`` named after events; a misspelt event name is an error (notebook 07)."""
    names = [name for name in dir(cb) if name.startswith(("before_", "after_")) and callable(getattr(cb, name))]
    unknown = [name for name in names if name not in EVENTS]
    if unknown:
        # Without this check a typo such as `after_epcoh` would just never be called.
        raise ValueError(f"{type(cb).__name__} defines {unknown}, which are not events of the Learner. "
                         f"The events are: {', '.join(EVENTS)}.")
    return {name: getattr(cb, name) for name in names}


class BatchTransform(Callback):
    """Runs the loaders' batch transform (augmentation, normalisation) on the device (notebook 02).

    The transform is an ``nn.Module`` whose train/eval mode decides whether it augments; this callback puts it
    in the right mode for each phase, so nothing else has to remember to switch it.
    """

    order = -10  # before any other callback looks at the inputs: they see what the model will see

    def __init__(self, transform: torch.nn.Module):
        self.transform = transform

    def before_train(self) -> None:
        self.transform.train()

    def before_validate(self) -> None:
        self.transform.eval()

    def before_batch(self) -> None:
        first, *rest = self.learn.xb
        self.learn.xb = (self.transform(first), *rest)


class GatherPreds(Callback):
    """Keeps every validation batch's outputs and targets (``get_preds`` and ``validate`` use it) (notebook 05)."""

    order = 40

    def __init__(self):
        self.preds, self.targets = [], []

    def before_validate(self) -> None:
        self.preds, self.targets = [], []

    def after_loss(self) -> None:
        if not self.learn.training:
            self.preds.append(self.learn.pred.detach())
            self.targets.append(tuple(y.detach() for y in self.learn.yb))

    def result(self) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """All outputs concatenated, and one concatenated tensor per target (notebook 05)."""
        if not self.preds:
            raise ValueError("no batch was gathered: the loader is empty (or COURSE_MAX_BATCHES is 0).")
        preds, targets = torch.cat(self.preds), tuple(torch.cat(column) for column in zip(*self.targets))
        for cb in getattr(self.learn, "cbs", ()):
            gather_valid = getattr(cb, "gather_valid", None)
            if gather_valid is not None:  # the gathering hook (module docstring): e.g. every process's shard
                preds, targets = gather_valid(preds, targets)
        return preds, targets


class ParamScheduler(Callback):
    """Sets hyper-parameters before each training batch from schedules of ``learn.pct_train`` (notebook 04).

    ``scheds`` maps a hyper-parameter (``"lr"`` or ``"mom"``) to a function of the position in training,
    0 at the first batch of the fit; it may return one value or one per parameter group.
    """

    order = 60

    def __init__(self, scheds: dict):
        self.scheds = scheds

    def before_batch(self) -> None:
        if self.learn.training:
            for name, schedule in self.scheds.items():
                self.learn.set_hyper(name, schedule(self.learn.pct_train))
