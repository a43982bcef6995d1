"""Where does the model look? Class activation maps, Grad-CAM and the pointing game, built on hooks (notebook 08).

Both maps are computed from what a layer outputs in the forward pass, caught with a forward hook
(``helpers.hooks.hook_output``, which here keeps a copy: see its ``clone``):

* **CAM** weights the body's feature map by the final linear layer's row for the target class. It is exact
  when the head is global average pooling followed by one linear layer: then the map's mean plus that
  layer's bias *is* the logit. With any other head (the course's two-layer head) the head is applied to
  each position of the feature map on its own, which is only an approximation of what it does to the
  whole map.
* **Grad-CAM** needs, besides the activations, the gradient of the target's logit with respect to them.
  It is caught by a tensor hook that the forward hook puts on the layer's output (module backward hooks
  are deprecated or clash with in-place ReLUs). Each channel gets the mean of its gradient as weight; the
  weighted sum of the channels, through a ReLU, is the map. It works on any layer with a spatial output.

Every hook is removed when a function returns or raises, and only detached copies are kept, so calling
these in a loop over a whole validation set does not grow memory.
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from helpers.hooks import hook_output

__all__ = ["class_activation_map", "cam_is_exact", "grad_cam", "show_heatmap", "resize_heatmap", "peak_point",
           "pointing_game", "binomial_noise"]

# Layers that leave "average pool, then one linear layer" a linear function of the average (eval mode).
_PASS_THROUGH = (nn.Flatten, nn.Dropout, nn.Identity)


# ---- shared pieces ------------------------------------------------------------------------------------------------

def _as_batch(x: torch.Tensor) -> tuple[torch.Tensor, bool]:
    if not isinstance(x, torch.Tensor) or x.dim() not in (3, 4):
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"x must be one normalised image (3 x H x W) or a batch (N x 3 x H x W), got {shape}; "
                         "pass the tensor the model takes as input (after the batch transform).")
    return (x[None], True) if x.dim() == 3 else (x, False)


def _targets(logits: torch.Tensor, target: int | Sequence[int] | torch.Tensor | None) -> torch.Tensor:
    """One class index per image: the prediction when ``target`` is None, else the class(es) given."""
    n, n_classes = logits.shape
    if target is None:
        return logits.argmax(dim=1)
    targets = torch.as_tensor(target, dtype=torch.long, device=logits.device).flatten()
    if targets.numel() == 1:
        targets = targets.expand(n)
    if targets.numel() != n:
        raise ValueError(f"target must be None, one class index or one per image; got {targets.numel()} "
                         f"indices for {n} images.")
    if targets.min() < 0 or targets.max() >= n_classes:
        raise ValueError(f"target {targets.tolist()} is out of range: the model has {n_classes} classes "
                         f"(0 to {n_classes - 1}); use dls.vocab.index(name) to turn a name into an index.")
    return targets


def _body_and_head(model: nn.Module) -> tuple[nn.Module, nn.Module]:
    if not (isinstance(model, nn.Sequential) and len(model) == 2):
        raise TypeError("class_activation_map expects nn.Sequential(body, head), as create_cnn builds it, "
                        f"got {type(model).__name__}; for any other model use grad_cam(model, layer, x).")
    return model[0], model[1]


def _final_linear(head: nn.Module) -> nn.Linear:
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise TypeError("the head has no nn.Linear layer, so there is no class weight to build a CAM from.")
    return linears[-1]


def cam_is_exact(model: nn.Module) -> bool:
    """True when the head is average pooling then one linear layer, where CAM is exact (notebook 08).

    Dropout and flatten layers aside.
    """
    _, head = _body_and_head(model)
    layers = list(head.children()) if isinstance(head, nn.Sequential) else [head]
    if not layers or not isinstance(layers[0], nn.AdaptiveAvgPool2d) or not isinstance(layers[-1], nn.Linear):
        return False
    output_size = layers[0].output_size
    global_pool = output_size in (1, (1, 1))
    return global_pool and all(isinstance(layer, _PASS_THROUGH) for layer in layers[1:-1])


def _head_at_each_position(head: nn.Module, features: torch.Tensor) -> torch.Tensor:
    """The head applied to every position's feature vector as if it filled the whole map: (N, h, w, classes)."""
    n, channels, height, width = features.shape
    # A 1x1 map holding one position's features: every pooling of it gives that vector back.
    columns = features.permute(0, 2, 3, 1).reshape(n * height * width, channels, 1, 1)
    return head(columns).reshape(n, height, width, -1)


# ---- CAM ----------------------------------------------------------------------------------------------------------

def class_activation_map(model: nn.Module, x: torch.Tensor,
                         target: int | Sequence[int] | torch.Tensor | None = None) -> torch.Tensor:
    """CAM of ``nn.Sequential(body, head)`` for ``target``: (N, h, w), or (h, w) for one image (notebook 08).

    ``target`` defaults to the predicted class.

    Exact for an average-pool + linear head (``cam_is_exact``): ``map.mean() + bias[target] == logit``.
    Otherwise the head is applied to each position on its own and the final bias removed: an approximation.
    """
    body, head = _body_and_head(model)
    x, single = _as_batch(x)
    was_training = model.training
    model.eval()  # BatchNorm's running statistics must not move, and dropout must be off
    try:
        with torch.no_grad(), hook_output(body, clone=True) as features:
            logits = model(x)
            targets = _targets(logits, target)
            acts = features.stored
            if acts is None or acts.dim() != 4:
                raise TypeError("the body must output a feature map N x C x h x w; got "
                                f"{None if acts is None else tuple(acts.shape)}.")
            linear = _final_linear(head)
            if cam_is_exact(model):
                # The map by its definition: class weights (one per channel) times the channels, summed.
                maps = torch.einsum("nc,nchw->nhw", linear.weight[targets], acts)
            else:
                per_position = _head_at_each_position(head, acts)  # (N, h, w, classes)
                bias = linear.bias[targets] if linear.bias is not None else torch.zeros_like(targets, dtype=acts.dtype)
                index = targets[:, None, None, None].expand(-1, *per_position.shape[1:3], 1)
                maps = per_position.gather(3, index)[..., 0] - bias[:, None, None]
    finally:
        model.train(was_training)
    maps = maps.float().cpu()
    return maps[0] if single else maps


# ---- Grad-CAM -----------------------------------------------------------------------------------------------------

def grad_cam(model: nn.Module, layer: nn.Module, x: torch.Tensor,
             target: int | Sequence[int] | torch.Tensor | None = None, relu: bool = True) -> torch.Tensor:
    """Grad-CAM of ``layer`` for ``target``: (N, h, w), or (h, w) for one image (notebook 08).

    ``target`` defaults to the predicted class.

    ``relu(sum_c mean_ij(d logit / d A_cij) * A_c)``, unscaled (``show_heatmap`` stretches it for display).
    ``relu=False`` keeps the negative part too (the fastai book's version): then, on the body's output of an
    average-pool + linear head, the map's sum plus the bias is the logit.
    """
    if not any(m is layer for m in model.modules()):
        raise ValueError("layer is not part of model: pass a module of this model, e.g. model[0][-1] "
                         "(the body's last stage) or model[0][6][0].conv2.")
    x, single = _as_batch(x)
    # A leaf that needs a gradient, so every layer's output needs one too, even in a model whose
    # parameters are frozen. The parameters' own .grad are never touched (autograd.grad, not backward).
    x = x.detach().requires_grad_(True)
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad(), hook_output(layer, clone=True) as acts, \
                hook_output(layer, grad=True) as grads:
            logits = model(x)
            if acts.calls != 1:
                raise ValueError(
                    f"the layer ran {acts.calls} times in one forward pass; Grad-CAM needs a layer that runs once. "
                    "torchvision's blocks call their one ReLU module twice: hook the block itself, or one of its "
                    "convolutions or BatchNorm layers.")
            if acts.stored.dim() != 4:
                raise ValueError(f"the layer outputs shape {tuple(acts.stored.shape)}; Grad-CAM needs a map "
                                 "N x C x h x w, so pick a layer before the head's pooling.")
            targets = _targets(logits, target)
            # Images do not interact in eval mode, so one backward pass of the summed logits gives each
            # image the gradient of its own logit.
            score = logits.gather(1, targets[:, None]).sum()
            torch.autograd.grad(score, x)
        activation, gradient = acts.stored, grads.stored
    finally:
        model.train(was_training)
    if gradient is None:
        raise RuntimeError("no gradient reached the layer: is it on the path from the input to the logits?")
    weights = gradient.mean(dim=(2, 3), keepdim=True)      # one weight per channel
    maps = (weights * activation).sum(dim=1)
    if relu:
        maps = F.relu(maps)                                 # only what speaks *for* the class
    maps = maps.float().cpu()
    return maps[0] if single else maps


# ---- showing a map ------------------------------------------------------------------------------------------------

def resize_heatmap(heatmap: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A (h, w) map stretched to ``size`` (H, W) with bilinear interpolation (notebook 08)."""
    heatmap = torch.as_tensor(heatmap, dtype=torch.float32)
    if heatmap.dim() != 2:
        raise ValueError(f"heatmap must be one map (h x w), got shape {tuple(heatmap.shape)}; index a batch first.")
    return F.interpolate(heatmap[None, None], size=tuple(size), mode="bilinear", align_corners=False)[0, 0]


def _image_array(image) -> np.ndarray:
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu()
        if image.dim() == 4 and len(image) == 1:
            image = image[0]
        if image.dim() == 3 and image.shape[0] in (1, 3):
            image = image.permute(1, 2, 0)
        image = image.numpy()
    array = np.asarray(image)
    if array.dtype == np.uint8:
        array = array / 255
    if array.ndim != 3 or array.shape[2] not in (1, 3):
        raise ValueError(f"image must be 3 x H x W, H x W x 3 or a PIL image, got shape {array.shape}.")
    return np.clip(array, 0, 1)


def show_heatmap(image, heatmap: torch.Tensor, ax: plt.Axes | None = None, alpha: float = 0.5,
                 cmap: str = "magma", title: str | None = None) -> plt.Axes:
    """The picture with the map, stretched to its size and scaled to [0, 1], laid over it (notebook 08)."""
    picture = _image_array(image)
    height, width = picture.shape[:2]
    heat = resize_heatmap(heatmap, (height, width))
    low, high = heat.min(), heat.max()
    heat = (heat - low) / (high - low) if high > low else torch.zeros_like(heat)
    if ax is None:
        _, ax = plt.subplots(figsize=(3, 3))
    ax.imshow(picture)
    ax.imshow(heat.numpy(), alpha=alpha, cmap=cmap, vmin=0, vmax=1)
    ax.set(xticks=[], yticks=[])
    if title is not None:
        ax.set_title(title, fontsize=9)
    return ax


# ---- the pointing game --------------------------------------------------------------------------------------------

def peak_point(heatmap: torch.Tensor, size: tuple[int, int]) -> tuple[int, int]:
    """(row, column) in an image of ``size`` (H, W) at the centre of the map's strongest cell (notebook 08).

    The centre of the cell rather than the peak of a resized map: stretching a 2 x 2 map bilinearly gives
    flat corners, whose first pixel would always be an image corner.
    """
    heatmap = torch.as_tensor(heatmap)
    if heatmap.dim() != 2:
        raise ValueError(f"heatmap must be one map (h x w), got shape {tuple(heatmap.shape)}.")
    rows, cols = heatmap.shape
    cell = int(heatmap.argmax())
    row, col = divmod(cell, cols)
    height, width = size
    return int((row + 0.5) * height / rows), int((col + 0.5) * width / cols)


def pointing_game(heatmaps: torch.Tensor | Sequence[torch.Tensor], masks: Sequence) -> torch.Tensor:
    """One bool per image: does the map's peak (``peak_point``) fall on the object's mask (H x W bool)? (notebook 08)"""
    if len(heatmaps) != len(masks):
        raise ValueError(f"got {len(heatmaps)} heatmaps but {len(masks)} masks: give one mask per image.")
    hits = []
    for heatmap, mask in zip(heatmaps, masks):
        mask = torch.as_tensor(np.asarray(mask), dtype=torch.bool)
        row, col = peak_point(heatmap, tuple(mask.shape))
        hits.append(bool(mask[row, col]))
    return torch.tensor(hits, dtype=torch.bool)


def binomial_noise(p: float, n: int) -> float:
    """Two binomial standard errors of a rate ``p`` measured on ``n`` items: 2 sqrt(p (1 - p) / n) (notebook 08)."""
    if n < 1:
        raise ValueError(f"n must be a positive count of items, got {n}.")
    return 2 * float(np.sqrt(p * (1 - p) / n))
