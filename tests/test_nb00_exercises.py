"""Notebook 00's exercise checkers accept reasonable correct answers written differently from the reference.

``tests/test_exercise_sets.py`` already checks every set's reference answer, typical wrong answers and the
blank; here each checker meets the other ways a learner may well write a right answer.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers.exercise_sets import nb00 as ex


def correct(exercise, answer) -> None:
    result = exercise.evaluate(answer)
    assert result.status == "correct", f"{answer!r} judged {result.status}: {result.message}"


def incorrect(exercise, answer) -> str:
    result = exercise.evaluate(answer)
    assert result.status == "incorrect", f"{answer!r} judged {result.status}: {result.message}"
    return result.message


# ---- q8 (in the lesson): rmse ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("rmse", [
    lambda a, b: F.mse_loss(a, b).sqrt(),
    lambda a, b: torch.sqrt(((a - b) ** 2).sum() / a.numel()),
    lambda a, b: (a - b).pow(2).mean() ** 0.5,
    lambda a, b: torch.linalg.vector_norm(a - b) / math.sqrt(a.numel()),
    lambda a, b: float(np.sqrt(np.mean((a.numpy() - b.numpy()) ** 2))),  # a plain float is fine too
], ids=["mse_loss", "sum/numel", "pow", "norm", "numpy"])
def test_q8_accepts_other_rmse(rmse):
    correct(ex.q8, rmse)


# ---- q2: shape --------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(100,), [100], torch.Size([100]), np.array([100]), torch.tensor([100])])
def test_q2_accepts_shape_spellings(shape):
    correct(ex.q2, shape)


# ---- q9 (in the lesson): mnist_loss ---------------------------------------------------------------------------------

def _explicit(p, t):
    s = torch.sigmoid(p)
    return (t * (1 - s) + (1 - t) * s).mean()


def _by_hand_sigmoid(p, t):
    s = 1 / (1 + torch.exp(-p))
    return torch.where(t == 1, 1 - s, s).mean()


def _flipped_condition(p, t):
    s = p.sigmoid()
    return torch.where(t == 0, s, 1 - s).mean()


def _float_targets(p, t):
    s = p.sigmoid()
    return torch.where(t.float() > 0.5, 1 - s, s).mean()


@pytest.mark.parametrize("loss", [_explicit, _by_hand_sigmoid, _flipped_condition, _float_targets])
def test_q9_accepts_other_losses(loss):
    correct(ex.q9, loss)


# ---- q4: gradient -----------------------------------------------------------------------------------

def _autograd_answer():
    x = torch.tensor([1.0, 2.0, -1.0], requires_grad=True)
    (x ** 3).sum().backward()
    return x.grad


@pytest.mark.parametrize("answer", [[3.0, 12.0, 3.0], [3, 12, 3], (3.0, 12.0, 3.0), np.array([3.0, 12.0, 3.0]),
                                    _autograd_answer(), torch.tensor([3.0, 12.0, 3.0], dtype=torch.float64)])
def test_q4_accepts_gradient_spellings(answer):
    correct(ex.q4, answer)


# ---- q11 (in the lesson): the optimiser ------------------------------------------------------------------------------

class WithNoGrad:
    def __init__(self, params, lr):
        self.params = list(params)
        self.lr = lr

    def step(self):
        with torch.no_grad():
            for p in self.params:
                p -= self.lr * p.grad

    def zero_grad(self):
        for p in self.params:
            p.grad.zero_()


class WithAdd:
    def __init__(self, params, lr):
        self.params, self.lr = tuple(params), lr

    def step(self, closure=None):
        for p in self.params:
            if p.grad is not None:
                p.data.add_(p.grad, alpha=-self.lr)

    def zero_grad(self, set_to_none=True):
        for p in self.params:
            p.grad = None


class SubclassOfTorch(torch.optim.Optimizer):
    def __init__(self, params, lr):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.sub_(group["lr"] * p.grad)


def sgd_factory(params, lr):
    return torch.optim.SGD(params, lr=lr)


@pytest.mark.parametrize("optimiser", [WithNoGrad, WithAdd, SubclassOfTorch, sgd_factory],
                         ids=["no_grad", "add_", "torch-subclass", "factory-function"])
def test_q11_accepts_other_optimisers(optimiser):
    correct(ex.q11, optimiser)


def test_q11_says_what_is_wrong():
    assert "cleared" in incorrect(ex.q11, ex._NeverClears)
    assert "sign" in incorrect(ex.q11, ex._AddsTheGradient)


def test_q11_an_instance_instead_of_the_class_is_explained():
    model = nn.Linear(2, 1)
    message = incorrect(ex.q11, ex._ReferenceOptim(model.parameters(), 0.1))
    assert "class itself" in message


def test_q11_missing_method_is_explained():
    class OnlyStep:
        def __init__(self, params, lr):
            self.params, self.lr = list(params), lr

        def step(self):
            pass

    assert "zero_grad" in incorrect(ex.q11, OnlyStep)


# ---- q6, q7 -----------------------------------------------------------------------------------------

def test_q6_accepts_counting_in_code():
    model = nn.Sequential(nn.Linear(784, 50), nn.ReLU(), nn.Linear(50, 10))
    for answer in (sum(p.numel() for p in model.parameters()), 39760.0, torch.tensor(39760), np.int64(39760)):
        correct(ex.q6, answer)


def test_q7_accepts_computed_accuracy():
    outputs, targets = torch.tensor([-0.2, 0.3, 1.5, -2.0]), torch.tensor([1, 1, 0, 0])
    for answer in (((outputs > 0).long() == targets).float().mean(), 1 / 2, np.float32(0.5),
                   ((torch.sigmoid(outputs) > 0.5).long() == targets).float().mean().item()):
        correct(ex.q7, answer)


# ---- the questionnaire's checked items ----------------------------------------------------------------

def test_questionnaire_checked_items_accept_other_spellings():
    quiz = ex.questionnaire
    for answer in ([2 * x for x in [1, 2, 3, 4, 5] if x % 2 == 1], (2, 6, 10), torch.tensor([2, 6, 10])):
        correct(quiz[4], answer)
    for answer in (3, torch.zeros(6131, 28, 28).ndim, 3.0):
        correct(quiz[6], answer)
    for answer in ([[10, 12], [16, 18]], np.array([[10, 12], [16, 18]]),
                   (torch.arange(1, 10).view(3, 3) * 2)[1:, 1:].float()):
        correct(quiz[9], answer)
    for answer in ("a", "A", "a)", "the validation set"):
        correct(quiz[11], answer)
    for answer in (list(zip([1, 2, 3, 4], "abcd")), [[1, "a"], [2, "b"], [3, "c"], [4, "d"]],
                   tuple(zip([1, 2, 3, 4], "abcd"))):
        correct(quiz[26], answer)
    x = torch.tensor([-2.0, -1.0, 0.0, 1.0, 2.0])
    for answer in (F.relu(x), x.clamp(min=0), [0, 0, 0, 1, 2], torch.maximum(x, torch.tensor(0.0))):
        correct(quiz[34], answer)


# ---- q1: all ten digits by pixel similarity ---------------------------------------------------------

def _nearest_by_loop(images, means):
    return torch.tensor([min(range(len(means)), key=lambda k: (image - means[k]).abs().mean().item())
                         for image in images])


def _nearest_by_cdist(images, means):
    return torch.cdist(images.flatten(1), means.flatten(1), p=1).argmin(1)


@pytest.mark.parametrize("nearest", [_nearest_by_loop, _nearest_by_cdist])
def test_q1_accepts_other_nearest_means(nearest):
    correct(ex.q1, nearest)


# ---- q3: the softmax loss for ten digits --------------------------------------------------------------

def _by_exp(z, t):
    probs = z.exp() / z.exp().sum(1, keepdim=True)
    return -probs.log()[range(len(t)), t].mean()


def _by_gather(z, t):
    return -F.log_softmax(z, dim=-1).gather(1, t[:, None]).mean()


@pytest.mark.parametrize("loss", [F.cross_entropy, _by_exp, _by_gather])
def test_q3_accepts_other_softmax_losses(loss):
    correct(ex.q3, loss)


# ---- q5: momentum ------------------------------------------------------------------------------------

def momentum_factory(params, lr, mom=0.9):
    return torch.optim.SGD(params, lr=lr, momentum=mom)


class MomentumWithNoGrad:
    def __init__(self, params, lr, mom=0.9):
        self.params, self.lr, self.mom = list(params), lr, mom
        self.v = [None] * len(self.params)

    def step(self):
        with torch.no_grad():
            for i, p in enumerate(self.params):
                self.v[i] = p.grad.clone() if self.v[i] is None else self.mom * self.v[i] + p.grad
                p -= self.lr * self.v[i]

    def zero_grad(self):
        for p in self.params:
            p.grad.zero_()


@pytest.mark.parametrize("optimiser", [momentum_factory, MomentumWithNoGrad])
def test_q5_accepts_other_momentum_optimisers(optimiser):
    correct(ex.q5, optimiser)


def test_q5_rejects_the_plain_optimiser_of_the_lesson():
    assert "third argument" in incorrect(ex.q5, ex._ReferenceOptim)


# ---- q10: one epoch by hand ---------------------------------------------------------------------------

def _epoch_with_no_grad(model, lr, params, batches):
    for xb, yb in batches:
        ex._mnist_loss(model(xb), yb).backward()
        with torch.no_grad():
            for p in params:
                p -= lr * p.grad
                p.grad.zero_()


def _epoch_with_sgd(model, lr, params, batches):
    opt = torch.optim.SGD(params, lr=lr)
    for xb, yb in batches:
        ex._mnist_loss(model(xb), yb).backward()
        opt.step()
        opt.zero_grad()


@pytest.mark.parametrize("epoch", [_epoch_with_no_grad, _epoch_with_sgd])
def test_q10_accepts_other_epochs(epoch):
    correct(ex.q10, epoch)
