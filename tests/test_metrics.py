"""helpers.metrics on hand-worked values, and the shape mistake a regression metric must refuse (notebooks 04, 09)."""
from __future__ import annotations

import pytest
import torch

from helpers.metrics import accuracy, error_rate, mae, rmse, rmspe


def test_accuracy_and_error_rate():
    preds = torch.tensor([[2.0, 1.0], [0.0, 3.0], [5.0, 1.0], [0.0, 1.0]])
    targs = torch.tensor([0, 1, 1, 1])
    assert accuracy(preds, targs).item() == pytest.approx(0.75)
    assert error_rate(preds, targs).item() == pytest.approx(0.25)


def test_regression_metrics_by_hand():
    preds = torch.tensor([[1.0], [2.0], [4.0], [8.0]])  # a model's (n, 1) output
    targs = torch.tensor([2.0, 2.0, 2.0, 10.0])         # misses: -1, 0, 2, -2
    assert rmse(preds, targs).item() == pytest.approx((9 / 4) ** 0.5)
    assert mae(preds, targs).item() == pytest.approx(5 / 4)
    # relative misses: -0.5, 0, 1, -0.2
    assert rmspe(preds, targs).item() == pytest.approx(((0.25 + 0 + 1 + 0.04) / 4) ** 0.5)


def test_regression_metrics_refuse_mismatched_shapes_and_zero_targets():
    with pytest.raises(ValueError, match="one prediction per target"):
        rmse(torch.zeros(4, 2), torch.zeros(4))
    with pytest.raises(ValueError, match="targets are 0"):
        rmspe(torch.ones(2), torch.tensor([1.0, 0.0]))
