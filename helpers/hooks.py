"""Hooks: run a function whenever a layer computes its output (or that output's gradient) (notebooks 07 and 08).

PyTorch calls a *forward hook* after a module's forward with the module, its inputs and its output. For
the gradient of a layer's output we do not use module backward hooks: ``register_full_backward_hook``
fails on torchvision's ResNets (their ReLUs work in place), and the deprecated ``register_backward_hook``
gives wrong gradients on blocks with several inputs. Instead a forward hook registers a tensor hook on the
output itself (``output.register_hook``), as pytorch-grad-cam, torch-cam and captum do.

Every hook here removes its handles when its ``with`` block ends, also when the block raises: a hook
left behind keeps running (and keeping tensors alive) on every later forward pass.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from helpers.callbacks import Callback


class Hook:
    """Calls ``func`` on each forward of ``module`` (or its output's gradient), keeping ``stored`` (notebook 08).

    Forward: ``func(hook, module, inputs, output)``. With ``forward=False``: ``func(hook, module, grad)``
    where ``grad`` is the gradient of the loss with respect to the module's output, for the latest forward.
    Whatever ``func`` returns (unless None) becomes ``hook.stored``. ``calls`` counts the module's forward passes
    since the hook was put on (a module used twice in one pass, like torchvision's ReLU in a block, counts twice).
    """

    def __init__(self, module: nn.Module, func: Callable, forward: bool = True):
        self.module, self.func, self.forward, self.stored, self.calls = module, func, forward, None, 0
        self._tensor_handle = None
        self.handle = module.register_forward_hook(self._on_forward)

    def _on_forward(self, module: nn.Module, inputs, output) -> None:
        self.calls += 1
        if self.forward:
            result = self.func(self, module, inputs, output)
            if result is not None:
                self.stored = result
            return
        tensor = output[0] if isinstance(output, (tuple, list)) else output
        if not (torch.is_tensor(tensor) and tensor.requires_grad):
            return  # under torch.no_grad() there will be no gradient to catch
        if self._tensor_handle is not None:
            # Only the latest forward's gradient is kept; dropping the old hook also frees its tensor's graph.
            self._tensor_handle.remove()
        self._tensor_handle = tensor.register_hook(self._on_grad)

    def _on_grad(self, grad: torch.Tensor) -> None:
        result = self.func(self, self.module, grad)
        if result is not None:
            self.stored = result

    def remove(self) -> None:
        """Unregister from the module, and from the last output's gradient; safe to call twice (notebook 08)."""
        self.handle.remove()
        if self._tensor_handle is not None:
            self._tensor_handle.remove()
            self._tensor_handle = None

    def __enter__(self) -> Hook:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


class Hooks:
    """One ``Hook`` per module, all with the same ``func``; a list you can index and iterate (notebook 07)."""

    def __init__(self, modules: Iterable[nn.Module], func: Callable, forward: bool = True):
        self.hooks: list[Hook] = []
        try:
            for module in modules:
                self.hooks.append(Hook(module, func, forward))
        except BaseException:
            self.remove()  # a module that could not be hooked must not leave the others hooked
            raise

    @property
    def stored(self) -> list:
        """Each hook's ``stored``, in the order of the modules (notebook 08)."""
        return [hook.stored for hook in self.hooks]

    def __getitem__(self, index: int) -> Hook:
        return self.hooks[index]

    def __len__(self) -> int:
        return len(self.hooks)

    def __iter__(self):
        return iter(self.hooks)

    def remove(self) -> None:
        """Unregister every hook (notebook 08)."""
        for hook in self.hooks:
            hook.remove()

    def __enter__(self) -> Hooks:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


def hook_output(module: nn.Module, detach: bool = True, grad: bool = False, clone: bool = False) -> Hook:
    """A hook whose ``stored`` is the latest output of ``module``, or with ``grad=True`` its gradient (notebook 08).

    ``detach`` (the default) keeps the tensor without the graph behind it: storing the output itself would keep
    the whole batch's graph alive. A detached tensor still shares its memory with the output, so an in-place
    operation after the module (torchvision's ``out += identity``, an in-place ReLU) changes what was stored;
    ``clone=True`` keeps a copy instead, at the cost of the copy's memory.
    """
    def keep(value: torch.Tensor) -> torch.Tensor:
        value = value.detach() if detach else value
        return value.clone() if clone else value

    if grad:
        return Hook(module, lambda hook, m, g: keep(g), forward=False)
    return Hook(module, lambda hook, m, i, o: keep(o), forward=True)


class ActivationStats(Callback):
    """Per training batch and chosen layer: mean, std, fraction of zeros and a histogram of the outputs (notebook 07).

    ``near_zero`` counts outputs with ``|x| <= zero_threshold``. The default 0 counts exact zeros, which after a
    ReLU are the units that are off: a measure that does not depend on the layer's scale. (fastai's plot counts
    ``|x| < 0.5``, its histogram's first two bins of 40 over 0..10; on a layer whose outputs are all small that
    is about 1 from the first batch, so it cannot tell a dead layer from a quiet one.) The histogram has
    ``bins`` bins over ``hist_range``
    (0..10 as in fastai, made for outputs after a ReLU). ``plot_stats()`` draws the first three per batch;
    ``color_dim()`` draws the histograms over time, one column per batch (fastai's "colorful dimension").
    The hooks are registered at ``before_fit`` and removed at ``after_fit`` (which runs even after an error).
    """

    order = 80

    def __init__(self, modules: nn.Module | Sequence[nn.Module], bins: int = 40,
                 hist_range: tuple[float, float] = (0.0, 10.0), zero_threshold: float = 0.0):
        self.modules = [modules] if isinstance(modules, nn.Module) else list(modules)
        self.bins, self.hist_range, self.zero_threshold = bins, hist_range, zero_threshold
        self._stats, self._hists, self.hooks = [], [], None

    def before_fit(self) -> None:
        names = {id(m): name for name, m in self.learn.model.named_modules()}
        self.names = [names.get(id(m)) or f"{type(m).__name__} {i}" for i, m in enumerate(self.modules)]
        self._stats, self._hists = [], []
        self.hooks = Hooks(self.modules, self._record)

    def _record(self, hook: Hook, module: nn.Module, inputs, output: torch.Tensor) -> None:
        if not self.learn.training:
            return
        x = output.detach().float()
        # Kept as tensors on the device: reading them back every batch would make the GPU wait.
        hook.stored = (torch.stack([x.mean(), x.std(), (x.abs() <= self.zero_threshold).float().mean()]),
                       torch.histc(x, self.bins, *self.hist_range))

    def after_batch(self) -> None:
        if self.learn.training and self.hooks is not None:
            stored = self.hooks.stored
            if all(s is not None for s in stored):
                self._stats.append(torch.stack([s[0] for s in stored]))
                self._hists.append(torch.stack([s[1] for s in stored]))
            for hook in self.hooks:
                hook.stored = None

    def after_fit(self) -> None:
        if self.hooks is not None:
            self.hooks.remove()
            self.hooks = None

    # --- what was recorded -------------------------------------------------------------------------
    def _stat(self, column: int) -> np.ndarray:
        if not self._stats:
            return np.zeros((0, len(self.modules)))
        return torch.stack(self._stats)[:, :, column].cpu().numpy()

    @property
    def means(self) -> np.ndarray:
        """Mean output per batch (rows) and layer (columns) (notebook 07)."""
        return self._stat(0)

    @property
    def stds(self) -> np.ndarray:
        """Standard deviation of the outputs per batch and layer (notebook 07, via ``plot_stats``)."""
        return self._stat(1)

    @property
    def near_zero(self) -> np.ndarray:
        """Fraction of outputs with ``|x| <= zero_threshold`` per batch and layer (notebook 07).

        By default ``zero_threshold`` counts exact zeros.
        """
        return self._stat(2)

    @property
    def hists(self) -> np.ndarray:
        """Histogram counts, shape (layers, batches, bins) (notebook 07, via ``color_dim``)."""
        if not self._hists:
            return np.zeros((len(self.modules), 0, self.bins))
        return torch.stack(self._hists).permute(1, 0, 2).cpu().numpy()

    # --- plots -------------------------------------------------------------------------------------
    def plot_stats(self) -> np.ndarray:
        """Mean, standard deviation and fraction near zero of each layer's outputs, per training batch (notebook 07)."""
        fig, axes = plt.subplots(1, 3, figsize=(15, 4))
        zero_title = ("Fraction of activations exactly zero" if self.zero_threshold == 0
                      else f"Fraction of activations near zero (|x| <= {self.zero_threshold:g})")
        for values, ax, title in ((self.means, axes[0], "Mean of the activations"),
                                  (self.stds, axes[1], "Standard deviation of the activations"),
                                  (self.near_zero, axes[2], zero_title)):
            for layer, name in enumerate(getattr(self, "names", [f"layer {i}" for i in range(len(self.modules))])):
                ax.plot(values[:, layer], label=name)
            ax.set(title=title, xlabel="training batch", ylabel=title.split(" of")[0].split(" (")[0].lower())
            ax.legend(fontsize=8)
        fig.tight_layout()
        return axes

    def color_dim(self, layers: Sequence[int] | None = None) -> np.ndarray:
        """Each layer's histogram over time, a column per batch, colour log(1 + count) (notebook 07).

        fastai calls it the colorful dimension.
        """
        layers = list(range(len(self.modules))) if layers is None else list(layers)
        names = getattr(self, "names", [f"layer {i}" for i in range(len(self.modules))])
        fig, axes = plt.subplots(1, len(layers), figsize=(4 * len(layers), 3.5), squeeze=False)
        hists = self.hists
        low, high = self.hist_range
        for ax, layer in zip(axes[0], layers):
            # log1p: a few huge bins (the zeros after a ReLU) would otherwise wash out everything else.
            ax.imshow(np.log1p(hists[layer].T), origin="lower", aspect="auto", cmap="viridis",
                      extent=(0, hists.shape[1], low, high))
            ax.set(title=f"Histogram over time: {names[layer]}", xlabel="training batch", ylabel="activation value")
        fig.tight_layout()
        return axes[0]
