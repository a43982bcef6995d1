"""Softmax and cross-entropy built from their parts, each equal to its ``torch.nn.functional`` twin (notebook 03).

The chain is: logits -> ``log_softmax`` (softmax, then log, computed stably) -> ``nll_loss`` (pick each
row's target column and negate) -> the mean. ``cross_entropy`` is exactly those two steps.
"""
from __future__ import annotations

import torch

__all__ = ["sigmoid", "binary_from_two", "where_loss", "logsumexp", "softmax", "log_softmax", "nll_loss",
           "cross_entropy"]

REDUCTIONS = ("none", "mean", "sum")


# ---- two classes ----------------------------------------------------------------------------------

def sigmoid(x: torch.Tensor) -> torch.Tensor:
    """1 / (1 + e^-x): squashes any number into (0, 1) (notebook 03)."""
    # For x = -1e4, exp(1e4) is inf and 1/inf is 0: the right limit, so no special case is needed.
    return 1 / (1 + torch.exp(-x))


def binary_from_two(acts: torch.Tensor) -> torch.Tensor:
    """The probability of the first of two classes, sigmoid(a0 - a1), column 0 of the softmax (notebook 03).

    Softmax only cares about differences between activations, so with two columns
    e^a0 / (e^a0 + e^a1) = 1 / (1 + e^-(a0 - a1)) = sigmoid(a0 - a1).
    """
    if acts.ndim < 1 or acts.shape[-1] != 2:
        raise ValueError(f"binary_from_two needs two activations per item (last dimension 2), got shape "
                         f"{tuple(acts.shape)}; for more classes use softmax(acts, dim=-1).")
    return sigmoid(acts[..., 0] - acts[..., 1])


def where_loss(probs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The two-class loss: mean of (1 - p) where the target is 1 and of p where it is 0 (notebook 03).

    ``probs`` is each item's probability of class 1 (a sigmoid output). ``torch.where`` chooses
    between exactly two tensors, because a condition is either true or false, and a single number p
    describes two classes only (the other one gets 1 - p). With three or more classes one number
    per item cannot say how likely each class is: we need one column per class and must *index* the
    target's column, which is what ``nll_loss`` on a softmax does.
    """
    if probs.shape != targets.shape:
        raise ValueError(f"where_loss needs one probability per target: probs has shape {tuple(probs.shape)}, "
                         f"targets {tuple(targets.shape)}.")
    if not bool(((targets == 0) | (targets == 1)).all()):
        raise ValueError("where_loss handles exactly two classes, so every target must be 0 or 1; "
                         "for more classes use cross_entropy(logits, targets).")
    return torch.where(targets == 1, 1 - probs, probs).mean()


# ---- softmax and its log -------------------------------------------------------------------------

def _check_dim(x: torch.Tensor, dim: int | None, name: str) -> int:
    if dim is None:
        raise ValueError(f"{name} needs to know which dimension holds the classes: pass dim=, e.g. "
                         f"{name}(x, dim=1) for a batch of rows of activations (or dim=-1 for the last).")
    rank = max(x.ndim, 1)  # torch treats a 0-d tensor as having one dimension here
    if not -rank <= dim < rank:
        raise IndexError(f"{name}: dim={dim} is out of range for a tensor of shape {tuple(x.shape)}; "
                         f"use a dim from {-rank} to {rank - 1}.")
    return dim


def _check_float(x: torch.Tensor, name: str) -> None:
    # ``name`` is the function the learner called, so the message points at their own line of code.
    if not x.is_floating_point():
        raise TypeError(f"{name} needs floating-point activations, got {x.dtype}; convert with x.float().")


def _working(x: torch.Tensor, dtype: torch.dtype | None, name: str) -> tuple[torch.Tensor, torch.dtype]:
    """The tensor to compute in, and the dtype to return: half types are summed in float32, as PyTorch does."""
    if dtype is not None:
        x = x.to(dtype)
    _check_float(x, name)
    out_dtype = x.dtype
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    return x, out_dtype


def logsumexp(x: torch.Tensor, dim: int, keepdim: bool = False) -> torch.Tensor:
    """log(sum(exp(x))) along ``dim`` without overflow: pull the largest value out first (notebook 03)."""
    biggest = x.amax(dim=dim, keepdim=True)
    # A row of all -inf would give -inf - -inf = nan; its logsumexp is -inf, so shift by 0 there instead.
    biggest = torch.where(torch.isfinite(biggest), biggest, torch.zeros_like(biggest))
    result = biggest + (x - biggest).exp().sum(dim=dim, keepdim=True).log()
    return result if keepdim else result.squeeze(dim)


def softmax(input: torch.Tensor, dim: int | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
    """exp(x) / exp(x).sum(dim): positive numbers that sum to 1 along ``dim`` (notebook 03).

    Subtracting each slice's maximum first changes nothing mathematically (it cancels between the
    top and the bottom) but keeps exp from overflowing: the largest term becomes e^0 = 1.
    """
    dim = _check_dim(input, dim, "softmax")
    x, out_dtype = _working(input, dtype, "softmax")
    shifted = x - x.amax(dim=dim, keepdim=True)
    exps = shifted.exp()
    return (exps / exps.sum(dim=dim, keepdim=True)).to(out_dtype)


def log_softmax(input: torch.Tensor, dim: int | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
    """log(softmax(x)) as x - logsumexp(x), finite where the log of a tiny softmax is not (notebook 03)."""
    dim = _check_dim(input, dim, "log_softmax")
    x, out_dtype = _working(input, dtype, "log_softmax")
    # Same as x - logsumexp(x), grouped so that the big maximum cancels exactly before anything is rounded:
    # for logits near 1e4 that keeps the small log-probabilities accurate to the last bit.
    shifted = x - x.amax(dim=dim, keepdim=True)
    return (shifted - shifted.exp().sum(dim=dim, keepdim=True).log()).to(out_dtype)


# ---- negative log likelihood and cross-entropy ---------------------------------------------------------

def _check_targets(input: torch.Tensor, target: torch.Tensor, ignore_index: int, name: str) -> None:
    if input.ndim == 0:
        raise ValueError(f"{name}: input is a single number; it needs one value per class, shape (classes,) "
                         "or (batch, classes).")
    if target.is_floating_point() or target.dtype == torch.bool:
        raise TypeError(f"{name}: target must hold class indices (integers), got {target.dtype}; "
                        "use target.long(), or target.argmax(dim=1) if you have one-hot rows.")
    expected = input.shape[:1] + input.shape[2:] if input.ndim > 1 else torch.Size([])
    if target.shape != expected:
        raise ValueError(f"{name}: input of shape {tuple(input.shape)} needs a target of shape {tuple(expected)} "
                         "(one class index per item, classes along dim 1), but target has shape "
                         f"{tuple(target.shape)}.")
    n_classes = input.shape[1] if input.ndim > 1 else input.shape[0]
    used = target[target != ignore_index]
    if used.numel() and (used.min() < 0 or used.max() >= n_classes):
        bad = used[(used < 0) | (used >= n_classes)][0].item()
        raise IndexError(f"{name}: target holds class index {bad}, but input has {n_classes} classes "
                         f"(valid indices are 0 to {n_classes - 1}); check the labels and the model's number of "
                         "outputs.")


def nll_loss(input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None, *,
             ignore_index: int = -100, reduction: str = "mean") -> torch.Tensor:
    """Minus the input's value in each item's target column, then reduced; takes no log itself (notebook 03).

    ``input`` is (batch, classes) or (batch, classes, d1, ...), usually from ``log_softmax``. With
    ``weight``, each item counts weight[target] times and "mean" divides by the total weight.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction={reduction!r} is not one of {REDUCTIONS}.")
    _check_targets(input, target, ignore_index, "nll_loss")
    _check_float(input, "nll_loss")  # torch refuses integer input too; without this it would return an integer
    if input.ndim == 1:  # one item: add the batch dimension, then drop it again at the end
        losses = nll_loss(input[None], target[None], weight, ignore_index=ignore_index, reduction=reduction)
        return losses.squeeze(0) if reduction == "none" else losses
    out_dtype = input.dtype
    if input.dtype in (torch.float16, torch.bfloat16):
        input = input.float()  # weigh and sum in float32, round once at the end, as PyTorch does
    keep = target != ignore_index
    safe_target = torch.where(keep, target, torch.zeros_like(target))  # any valid column; masked out below
    picked = input.gather(1, safe_target.unsqueeze(1)).squeeze(1)
    item_weight = keep.to(input.dtype) if weight is None else weight.to(input.dtype)[safe_target] * keep
    losses = -picked * item_weight
    if reduction == "none":
        return losses.to(out_dtype)
    if reduction == "sum":
        return losses.sum().to(out_dtype)
    return (losses.sum() / item_weight.sum()).to(out_dtype)


def cross_entropy(input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None, *,
                  ignore_index: int = -100, reduction: str = "mean", label_smoothing: float = 0.0) -> torch.Tensor:
    """log_softmax over the classes (dim 1) followed by nll_loss: PyTorch's CrossEntropyLoss by hand (notebook 03).

    The options after ``weight`` are keyword-only: torch's deprecated ``size_average`` and ``reduce`` sit
    between them positionally, and a positional call meant for torch must not land in the wrong place here.
    ``label_smoothing`` mixes in the loss against a uniform target, as torch does (book chapter 7).
    """
    _check_targets(input, target, ignore_index, "cross_entropy")  # so an error names the function the learner called
    _check_float(input, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing is a fraction in [0, 1], got {label_smoothing!r}.")
    class_dim = 1 if input.ndim > 1 else 0
    log_probs = log_softmax(input, dim=class_dim)
    nll = nll_loss(log_probs, target, weight, ignore_index=ignore_index, reduction=reduction)
    if label_smoothing == 0.0:
        return nll
    # The uniform part: minus the (weighted) sum of every class's log-probability, reduced like nll_loss.
    n_classes = input.shape[class_dim]
    log_probs = log_probs.float() if log_probs.dtype in (torch.float16, torch.bfloat16) else log_probs
    if weight is not None:
        shape = [1] * log_probs.ndim
        shape[class_dim] = n_classes
        log_probs = log_probs * weight.to(log_probs.dtype).view(shape)
    keep = target != ignore_index
    uniform = -log_probs.sum(dim=class_dim) * keep
    if reduction == "sum":
        uniform = uniform.sum()
    elif reduction == "mean":
        counted = keep.sum() if weight is None else weight.to(log_probs.dtype)[target[keep]].sum()
        uniform = uniform.sum() / counted
    return ((1 - label_smoothing) * nll + label_smoothing / n_classes * uniform).to(input.dtype)
