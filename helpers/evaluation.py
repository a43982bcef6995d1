"""Evaluating a Learner: the loss and metrics over a whole set, predictions for a loader or one item (notebooks 04-05).

Every path goes through the same validation pass of the loop, with ``GatherPreds`` attached, so what ``validate``,
``get_preds`` and ``predict`` see is exactly what the model saw during validation (the batch transform included).
"""
from __future__ import annotations

import copy
import functools
from collections.abc import Callable

import torch
from torch import nn

from helpers.callbacks import GatherPreds

ACTIVATIONS = {"softmax": functools.partial(torch.softmax, dim=-1), "sigmoid": torch.sigmoid,
               "identity": lambda x: x}


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


class Evaluation:
    """``validate``, ``get_preds`` and ``predict``: the Learner's methods that use a model (notebooks 04 and 05)."""

    def _gather(self, dl) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """The model's outputs and targets over a whole loader, in eval mode, through the callbacks."""
        was_training = self.model.training
        gather = GatherPreds()
        try:
            with self.added_cbs([gather]):
                self._phase(dl, training=False)
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
        """Predictions and targets for every item of ``dl`` (default: validation), on the CPU (notebooks 00, 03-05, 09).

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
        """``(decoded, index or values, predictions)`` for one item (notebook 04's ``Learner``; no notebook calls it).

        The item may be an image path, a PIL image or a tensor.

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
