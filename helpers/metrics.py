"""Metrics: numbers a person reads to judge a model, computed over all validation items (notebooks 04 and 09).

Each takes the model's outputs and the targets of every validation item at once, ``(preds, targs) -> tensor``,
so a mean is a mean over items, not over batches of different sizes.
"""
from __future__ import annotations

import torch


def accuracy(preds: torch.Tensor, targs: torch.Tensor) -> torch.Tensor:
    """Fraction of items whose highest-scoring class is the target (notebook 00)."""
    return (preds.argmax(dim=-1) == targs).float().mean()


def error_rate(preds: torch.Tensor, targs: torch.Tensor) -> torch.Tensor:
    """1 - accuracy: the fraction of items the model gets wrong (notebook 04)."""
    return 1 - accuracy(preds, targs)


def _flat_pair(preds: torch.Tensor, targs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # A regression model outputs (n, 1) while targets are often (n,): broadcasting those would compare
    # every prediction with every target, an (n, n) matrix and a silently wrong number.
    if preds.numel() != targs.numel():
        raise ValueError(f"predictions ({tuple(preds.shape)}) and targets ({tuple(targs.shape)}) hold different "
                         "numbers of values; a regression metric needs one prediction per target.")
    return preds.reshape(-1).float(), targs.reshape(-1).float()


def rmse(preds: torch.Tensor, targs: torch.Tensor) -> torch.Tensor:
    """Root mean squared error, in the target's own units (notebook 00)."""
    preds, targs = _flat_pair(preds, targs)
    return ((preds - targs) ** 2).mean().sqrt()


def mae(preds: torch.Tensor, targs: torch.Tensor) -> torch.Tensor:
    """Mean absolute error: the typical size of a miss, less swayed by a few large ones than rmse (notebook 09)."""
    preds, targs = _flat_pair(preds, targs)
    return (preds - targs).abs().mean()


def rmspe(preds: torch.Tensor, targs: torch.Tensor) -> torch.Tensor:
    """Root mean squared *percentage* error: misses relative to the target, Kaggle's Rossmann metric (notebook 09)."""
    preds, targs = _flat_pair(preds, targs)
    if (targs == 0).any():
        raise ValueError("rmspe divides by each target, and some targets are 0; use rmse or mae for these data.")
    return (((targs - preds) / targs) ** 2).mean().sqrt()
