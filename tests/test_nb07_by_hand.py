"""Notebook 07's by-hand versions against PyTorch: kernels, output sizes, the matrix form, BatchNorm, dropout.

The notebook teaches these functions in its own cells; the same formulas are written out here so that a
change of PyTorch's behaviour (or a slip in the notebook's explanation) fails a quick unit test, not only nbval.
"""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn


def apply_kernel(picture: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    k = kernel.shape[0]
    rows, cols = picture.shape[0] - k + 1, picture.shape[1] - k + 1
    out = torch.zeros(rows, cols, dtype=picture.dtype)
    for i in range(rows):
        for j in range(cols):
            out[i, j] = (picture[i:i + k, j:j + k] * kernel).sum()
    return out


def conv_out_size(n: int, k: int, s: int = 1, p: int = 0) -> int:
    return (n + 2 * p - k) // s + 1


def conv_matrix(kernel: torch.Tensor, n: int) -> torch.Tensor:
    k = kernel.shape[0]
    m = n - k + 1
    matrix = torch.zeros(m * m, n * n, dtype=kernel.dtype)
    for i in range(m):
        for j in range(m):
            for a in range(k):
                for b in range(k):
                    matrix[i * m + j, (i + a) * n + (j + b)] = kernel[a, b]
    return matrix


def batchnorm_train(x, gamma, beta, eps=1e-5):
    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * gamma.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1)


def batchnorm_eval(x, running_mean, running_var, gamma, beta, eps=1e-5):
    return ((x - running_mean.view(1, -1, 1, 1)) / torch.sqrt(running_var.view(1, -1, 1, 1) + eps)
            * gamma.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1))


def dropout(x, p=0.5, training=True):
    if not training or p == 0:
        return x
    return x * torch.bernoulli(torch.full_like(x, 1 - p)) / (1 - p)


GEN = torch.Generator().manual_seed(0)


# --- kernels ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_kernel_by_hand_equals_conv2d(k):
    picture, kernel = torch.rand(9, 11, generator=GEN), torch.randn(k, k, generator=GEN)
    torch.testing.assert_close(apply_kernel(picture, kernel), F.conv2d(picture[None, None], kernel[None, None])[0, 0])


def test_edge_kernels_detect_what_they_are_named_after():
    top = torch.tensor([[-1., -1, -1], [0, 0, 0], [1, 1, 1]])
    square = torch.zeros(10, 10)
    square[3:7, 3:7] = 1
    for kernel, side in [(top, (3, 5)), (-top, (6, 5)), (top.T, (5, 3)), (-top.T, (5, 6))]:
        out = F.conv2d(square[None, None], kernel[None, None], padding=1)[0, 0]
        assert out[side] == out.max() > 0


def test_stacked_kernels_are_output_channels_and_expand_is_a_view():
    kernels = torch.randn(4, 3, 3, generator=GEN)
    batch = torch.rand(2, 1, 8, 8, generator=GEN)
    out = F.conv2d(batch, kernels[:, None])
    assert out.shape == (2, 4, 6, 6)
    torch.testing.assert_close(out[1, 3], apply_kernel(batch[1, 0], kernels[3]))
    grid = torch.randn(3, 3, generator=GEN)
    rgb = grid.expand(1, 3, 3, 3)
    assert rgb.data_ptr() == grid.data_ptr() and rgb.stride()[:2] == (0, 0)
    picture = torch.rand(1, 3, 6, 6, generator=GEN)
    torch.testing.assert_close(F.conv2d(picture, rgb)[0, 0], sum(apply_kernel(picture[0, c], grid) for c in range(3)))


# --- shapes ----------------------------------------------------------------------------------------------

def test_output_size_formula_on_many_cases():
    checked = 0
    for n in range(1, 30):
        for k in (1, 2, 3, 4, 5, 7):
            for s in (1, 2, 3):
                for p in range(4):
                    if n + 2 * p < k:
                        continue
                    out = F.conv2d(torch.zeros(1, 1, n, n), torch.zeros(1, 1, k, k), stride=s, padding=p)
                    assert out.shape[-1] == conv_out_size(n, k, s, p), (n, k, s, p)
                    checked += 1
    assert checked > 1500


def test_stride_two_chain_and_parameter_counts():
    sides = [28]
    while sides[-1] > 1:
        sides.append(conv_out_size(sides[-1], 3, 2, 1))
    assert sides == [28, 14, 7, 4, 2, 1]
    assert sum(p.numel() for p in nn.Conv2d(1, 4, 3).parameters()) == 40
    assert sum(p.numel() for p in nn.Conv2d(3, 16, 5).parameters()) == 16 * 3 * 25 + 16


# --- the matrix form -------------------------------------------------------------------------------------

@pytest.mark.parametrize("n, k", [(4, 3), (6, 3), (5, 2), (7, 5)])
def test_convolution_is_a_matrix_product(n, k):
    kernel, picture = torch.randn(k, k, generator=GEN), torch.rand(n, n, generator=GEN)
    matrix = conv_matrix(kernel, n)
    m = n - k + 1
    assert matrix.shape == (m * m, n * n)
    assert ((matrix != 0).sum(dim=1) == (kernel != 0).sum()).all()       # every row: the same weights, shifted
    torch.testing.assert_close((matrix @ picture.flatten()).view(m, m),
                               F.conv2d(picture[None, None], kernel[None, None])[0, 0])
    patches = F.unfold(picture[None, None], kernel_size=k)[0]
    torch.testing.assert_close((kernel.flatten() @ patches).view(m, m), (matrix @ picture.flatten()).view(m, m))


# --- batch normalisation ---------------------------------------------------------------------------------

def test_batchnorm_train_eval_and_running_statistics():
    bn = nn.BatchNorm2d(3)
    assert (bn.momentum, bn.eps) == (0.1, 1e-5)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([1.5, 0.5, 2.0]))
        bn.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    running_mean, running_var = torch.zeros(3), torch.ones(3)
    for step in range(6):
        x = torch.randn(8, 3, 5, 5, generator=GEN) * 2 + 1
        out = bn.train()(x)
        torch.testing.assert_close(out, batchnorm_train(x, bn.weight, bn.bias))
        # the 0.9 convention: 0.9 is the weight of the old value, 1 - PyTorch's momentum
        running_mean = 0.9 * running_mean + (1 - 0.9) * x.mean(dim=(0, 2, 3))
        running_var = 0.9 * running_var + (1 - 0.9) * x.var(dim=(0, 2, 3), unbiased=True)
        torch.testing.assert_close(bn.running_mean, running_mean)
        torch.testing.assert_close(bn.running_var, running_var)
        if step == 0:
            torch.testing.assert_close(bn.running_var, 0.9 + 0.1 * x.var(dim=(0, 2, 3), unbiased=True))
            assert not torch.allclose(bn.running_var, 0.9 + 0.1 * x.var(dim=(0, 2, 3), unbiased=False))
    with torch.no_grad():
        x = torch.randn(4, 3, 5, 5, generator=GEN)
        torch.testing.assert_close(bn.eval()(x), batchnorm_eval(x, bn.running_mean, bn.running_var, bn.weight, bn.bias))
        torch.testing.assert_close(bn(x[:1]), bn(x)[:1])   # eval: independent of the rest of the batch


def test_batchnorm_momentum_none_and_untracked():
    cumulative = nn.BatchNorm2d(2, momentum=None)
    batches = [torch.randn(4, 2, 3, 3, generator=GEN) for _ in range(5)]
    for b in batches:
        cumulative(b)
    torch.testing.assert_close(cumulative.running_mean, torch.stack([b.mean(dim=(0, 2, 3)) for b in batches]).mean(0))
    untracked = nn.BatchNorm2d(2, track_running_stats=False).eval()
    torch.testing.assert_close(untracked(batches[0]), batchnorm_train(batches[0], untracked.weight, untracked.bias))


# --- dropout ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("p", [0.2, 0.5])
def test_dropout_by_hand_matches_nn_dropout_in_distribution(p):
    ones = torch.ones(400_000)
    torch.manual_seed(0)
    for out in (dropout(ones, p), nn.Dropout(p).train()(ones)):
        zeroed = (out == 0).float().mean().item()
        assert abs(zeroed - p) < 4 * math.sqrt(p * (1 - p) / ones.numel())
        kept = out[out != 0]
        torch.testing.assert_close(kept, torch.full_like(kept, 1 / (1 - p)))
        assert abs(out.mean().item() - 1) < 0.01
    assert torch.equal(nn.Dropout(p).eval()(ones), ones) and torch.equal(dropout(ones, p, training=False), ones)
