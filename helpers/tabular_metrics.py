"""Judging a tabular regression: RMSPE on a log target, the sigmoid's range, noise that respects clusters (notebook 09).

Percentage errors are heavy-tailed and the rows of one city move together, so the noise of a difference between
two models is measured by resampling whole cities (``city_bootstrap``), not by treating rows as independent.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch

from helpers.metrics import rmspe  # sqrt(mean(((targ - pred) / targ)^2)), shared with the Learner's metrics

__all__ = ["rmspe", "exp_rmspe", "log_y_range", "rmspe_margin", "squared_pct_errors", "city_bootstrap"]

def exp_rmspe(preds: torch.Tensor, targs: torch.Tensor) -> torch.Tensor:
    """RMSPE on the original scale for a model that predicts log(target): fastai's ``exp_rmspe`` (notebook 09)."""
    return rmspe(torch.exp(preds), torch.exp(targs))


def log_y_range(y: Sequence[float] | np.ndarray | pd.Series, headroom: float = 1.2) -> tuple[float, float]:
    """``(0, log(max(y) * headroom))``: the sigmoid's top just above the largest target (notebook 09).

    As in fastai's Rossmann example.

    A sigmoid only reaches its ends at infinity, so a range that stopped exactly at the maximum would make
    the largest targets unreachable.
    """
    top = float(np.max(np.asarray(y, dtype=np.float64)))
    if not top > 0:
        raise ValueError(f"the largest target is {top}: a log target needs positive values.")
    return 0.0, math.log(top * headroom)


def rmspe_margin(preds_a: torch.Tensor, preds_b: torch.Tensor, targs: torch.Tensor) -> tuple[float, float]:
    """How much better A is than B on the same rows, and the noise of that number (notebook 09).

    Both are on the squared scale, RMSPE squared (the mean squared percentage error), compared row by row:
    ``margin = mean(sq_b - sq_a)`` is positive when A is better, and ``noise`` is two standard errors of that
    mean, the same rule as for two error rates. A margin below the noise is no evidence either way.
    """
    preds_a, preds_b, targs = (t.reshape(-1).double() for t in (preds_a, preds_b, targs))
    diff = ((targs - preds_b) / targs) ** 2 - ((targs - preds_a) / targs) ** 2
    return float(diff.mean()), float(2 * diff.std() / math.sqrt(len(diff)))


def squared_pct_errors(preds: Sequence[float] | np.ndarray | torch.Tensor,
                       targs: Sequence[float] | np.ndarray | torch.Tensor) -> np.ndarray:
    """Each row's ((targ - pred) / targ) ** 2, on the original scale; their mean is RMSPE squared (notebook 09)."""
    preds = np.asarray(preds, dtype=np.float64).reshape(-1)
    targs = np.asarray(targs, dtype=np.float64).reshape(-1)
    if preds.shape != targs.shape:
        raise ValueError(f"{preds.size} predictions for {targs.size} targets: give one prediction per row.")
    if (targs == 0).any():
        raise ValueError("a percentage error divides by the target, and some targets are 0.")
    return ((targs - preds) / targs) ** 2


def city_bootstrap(sq_errors: dict[str, np.ndarray], groups: Sequence | np.ndarray | pd.Series,
                   n_boot: int = 1000, seed: int = 0) -> dict[str, np.ndarray]:
    """Each model's MSPE (RMSPE squared) on ``n_boot`` resamples of whole cities, with replacement (notebook 09).

    The groups resampled are the cities.

    ``sq_errors`` maps a model's name to its per-row squared percentage errors (``squared_pct_errors``); every model
    sees the same resamples, so differences between them are paired. Two standard deviations of a difference
    across resamples are the noise to give ``helpers.verdict.compare``.
    """
    groups = np.asarray(groups)
    names, codes = np.unique(groups, return_inverse=True)
    if len(names) < 2:
        raise ValueError(f"a bootstrap by group needs at least two groups; these rows come from {len(names)}.")
    counts = np.bincount(codes, minlength=len(names)).astype(np.float64)
    rng = np.random.default_rng(seed)
    # How often each group is drawn in each resample: (n_boot, groups). A resample's MSPE is then a weighted mean.
    draws = rng.integers(0, len(names), size=(n_boot, len(names)))
    times = np.stack([np.bincount(d, minlength=len(names)) for d in draws]).astype(np.float64)
    out = {}
    for model, errors in sq_errors.items():
        errors = np.asarray(errors, dtype=np.float64).reshape(-1)
        if errors.shape != codes.shape:
            raise ValueError(f"{model!r} has {errors.size} errors for {codes.size} rows: one per row, please.")
        sums = np.bincount(codes, weights=errors, minlength=len(names))
        out[model] = (times @ sums) / (times @ counts)
    return out
