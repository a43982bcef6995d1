"""The Learner's optimiser: fastai's AdamW set-up, parameter groups, and reading and setting rates (notebook 04).

``create_opt`` builds ``torch.optim.AdamW`` as fastai sets its Adam: decoupled weight decay, ``eps=1e-5``,
``betas=(mom, 0.99)``, no weight decay on normalisation-layer parameters or biases, and one pair of optimiser
groups (with and without decay) per splitter group. ``HyperParams`` gives the Learner ``set_hyper`` and ``hypers``,
which the schedules and the Recorder use whatever the optimiser.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from helpers.schedule import lr_for_groups

DEFAULT_MOM = 0.9  # Adam's beta1 whenever no momentum schedule runs (fit, lr_find)
SQR_MOM = 0.99     # Adam's beta2 as fastai sets it
EPS = 1e-5         # fastai's Adam eps (PyTorch's default is 1e-8)
NORM_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm,  # SyncBatchNorm: multi-GPU runs
              nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d, nn.LayerNorm)


def norm_params(model: nn.Module) -> list[nn.Parameter]:
    """Parameters of normalisation layers: they train even when frozen and get no weight decay (notebook 05)."""
    return [p for m in model.modules() if isinstance(m, NORM_TYPES) for p in m.parameters(recurse=False)]


def no_decay_params(model: nn.Module) -> list[nn.Parameter]:
    """Normalisation parameters and every bias: weight decay would only pull them towards zero (notebook 04)."""
    biases = [m.bias for m in model.modules()
              if not isinstance(m, NORM_TYPES) and isinstance(getattr(m, "bias", None), nn.Parameter)]
    return norm_params(model) + biases


def create_opt(model: nn.Module, groups: list, lr: float | slice, wd: float, device: torch.device,
               opt_func: Callable | None = None):
    """The optimiser for ``groups`` (the splitter's): ``opt_func(params, lr)``, or fastai's AdamW (notebook 04)."""
    first_lr = lr_for_groups(lr, len(groups))[-1]
    if opt_func is not None:
        # A plain list for one group, so a hand-written optimiser that loops over parameters works.
        params = list(groups[0]) if len(groups) == 1 else [
            {"params": list(g), "splitter_group": i} for i, g in enumerate(groups)]
        return opt_func(params, first_lr)
    no_decay = {id(p) for p in no_decay_params(model)}
    param_groups = []
    for index, params in enumerate(groups):
        for decay in (True, False):
            chosen = [p for p in params if (id(p) not in no_decay) == decay]
            if chosen:
                param_groups.append({"params": chosen, "weight_decay": wd if decay else 0.0,
                                     "splitter_group": index})
    # On the CPU the fused kernel updates every tensor in one pass: about 40 ms less per step for resnet10
    # on one core, with the same arithmetic up to rounding. GPUs keep PyTorch's default (foreach).
    fused = device.type == "cpu" or None
    return torch.optim.AdamW(param_groups, lr=first_lr, betas=(DEFAULT_MOM, SQR_MOM), eps=EPS, fused=fused)


class HyperParams:
    """The Learner's view of its optimiser's rates and momenta, one value per splitter group (notebook 04).

    Needs ``self.opt`` and ``self.n_groups``.
    """

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
        """The rate and momentum of each splitter group now, NaN where it has none (notebook 04, via ``plot_sched``)."""
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
