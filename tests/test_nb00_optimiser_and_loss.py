"""Notebook 00's hand-written pieces, taken from the notebook itself, against PyTorch's.

The notebook defines ``mnist_loss``, ``mnist_loss_on_probabilities`` and ``BasicOptim`` in its cells; these
tests pull exactly those definitions out of the committed notebook (nothing else in their cells runs), so
what learners read is what is tested.
"""
from __future__ import annotations

import ast
import copy
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers import losses

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "00_digits_from_scratch.ipynb"
WANTED = ("mnist_loss", "mnist_loss_on_probabilities", "BasicOptim")


def notebook_definitions() -> dict:
    """The notebook's top-level function and class definitions named in WANTED, executed on their own."""
    namespace = {"torch": torch, "nn": nn, "F": F}
    found = set()
    for cell in json.loads(NOTEBOOK.read_text())["cells"]:
        if cell["cell_type"] != "code":
            continue
        try:
            tree = ast.parse("".join(cell["source"]))
        except SyntaxError:  # the set-up cell's IPython magics: nothing of interest there
            continue
        for node in tree.body:
            if "____" in ast.get_source_segment("".join(cell["source"]), node):
                continue  # an in-lesson exercise's blank, not the notebook's reference
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in WANTED and node.name not in found:
                exec(compile(ast.Module(body=[node], type_ignores=[]), str(NOTEBOOK), "exec"), namespace)
                found.add(node.name)
    missing = set(WANTED) - found
    assert not missing, f"notebook 00 no longer defines {sorted(missing)}"
    return namespace


@pytest.fixture(scope="module")
def nb():
    return notebook_definitions()


def logit(p: torch.Tensor) -> torch.Tensor:
    return torch.log(p / (1 - p))


# ---- the loss -------------------------------------------------------------------------------------

def test_worked_values_of_the_book(nb):
    targets = torch.tensor([1, 0, 1])
    on_probabilities = nb["mnist_loss_on_probabilities"]
    assert on_probabilities(torch.tensor([0.9, 0.4, 0.2]), targets).item() == pytest.approx(0.4333, abs=1e-4)
    assert on_probabilities(torch.tensor([0.9, 0.4, 0.8]), targets).item() == pytest.approx(0.2333, abs=1e-4)
    # the same numbers through the sigmoid version, fed the raw outputs that give those probabilities
    assert nb["mnist_loss"](logit(torch.tensor([0.9, 0.4, 0.2])), targets).item() == pytest.approx(0.4333, abs=1e-4)


def test_mnist_loss_equals_torch_formulations(nb):
    gen = torch.Generator().manual_seed(0)
    preds = torch.randn(64, 1, generator=gen) * 3
    targets = torch.randint(0, 2, (64, 1), generator=gen).float()
    probs = torch.sigmoid(preds)
    expected = (targets * (1 - probs) + (1 - targets) * probs).mean()
    torch.testing.assert_close(nb["mnist_loss"](preds, targets), expected)
    torch.testing.assert_close(nb["mnist_loss"](preds, targets), losses.where_loss(probs, targets))


def test_mnist_loss_gradient_matches_autograd_of_an_independent_formula(nb):
    gen = torch.Generator().manual_seed(1)
    targets = torch.randint(0, 2, (16,), generator=gen).float()
    mine = (torch.randn(16, generator=gen)).requires_grad_()
    theirs = mine.detach().clone().requires_grad_()
    nb["mnist_loss"](mine, targets).backward()
    s = torch.sigmoid(theirs)
    (targets * (1 - s) + (1 - targets) * s).mean().backward()
    torch.testing.assert_close(mine.grad, theirs.grad)
    # and against the derivative written out: d/dx sigmoid = s (1 - s), sign -1 for a 3, +1 for a 7
    s = s.detach()
    torch.testing.assert_close(mine.grad, torch.where(targets == 1, -1.0, 1.0) * s * (1 - s) / 16)


def test_threshold_zero_before_the_sigmoid_is_half_after(nb):
    x = torch.linspace(-6, 6, 1001)
    assert torch.equal(x > 0, torch.sigmoid(x) > 0.5)


# ---- the optimiser --------------------------------------------------------------------------------

def small_model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 1))


@pytest.mark.parametrize("lr", [0.01, 0.3, 1.0])
def test_basic_optim_moves_weights_like_torch_sgd(nb, lr):
    mine, theirs = small_model(0), small_model(0)
    opt_mine = nb["BasicOptim"](mine.parameters(), lr)
    opt_theirs = torch.optim.SGD(theirs.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(2)
    for _ in range(10):
        x, y = torch.randn(8, 6, generator=gen), torch.randint(0, 2, (8, 1), generator=gen).float()
        for model, opt in ((mine, opt_mine), (theirs, opt_theirs)):
            nb["mnist_loss"](model(x), y).backward()
            opt.step()
            opt.zero_grad()
    for p, q in zip(mine.parameters(), theirs.parameters()):
        torch.testing.assert_close(p, q)


def test_zero_grad_clears_and_step_uses_only_the_current_gradient(nb):
    model = small_model(1)
    opt = nb["BasicOptim"](model.parameters(), 0.5)
    x = torch.randn(4, 6)
    model(x).sum().backward()
    opt.zero_grad()
    assert all(p.grad is None or not p.grad.any() for p in model.parameters())
    before = copy.deepcopy(model)
    model(x).sum().backward()
    expected = [p.detach() - 0.5 * p.grad for p in model.parameters()]
    opt.step()
    for p, e in zip(model.parameters(), expected):
        torch.testing.assert_close(p.detach(), e)
    assert any(not torch.equal(p, q) for p, q in zip(model.parameters(), before.parameters()))


def test_basic_optim_accepts_a_generator_and_keeps_every_parameter(nb):
    model = small_model(2)
    opt = nb["BasicOptim"](model.parameters(), 0.1)  # a generator: must be walked only once, into a list
    assert len(list(opt.params)) == len(list(model.parameters())) == 4
    assert opt.lr == 0.1


def test_basic_optim_in_the_learner_trains_like_a_plain_sgd_loop(nb):
    # Against a loop written out, not torch.optim.SGD inside the Learner: the Learner sets the momentum of
    # any optimiser group that has one (fit uses 0.9), so torch's SGD would not stay plain there.
    from torch.utils.data import DataLoader, TensorDataset

    from helpers.data import DataLoaders
    from helpers.learner import Learner

    gen = torch.Generator().manual_seed(3)
    x, y = torch.randn(64, 6, generator=gen), torch.randint(0, 2, (64, 1), generator=gen).float()
    train = DataLoader(TensorDataset(x, y), batch_size=16)  # no shuffling: both see the same batches
    dls = DataLoaders(train, DataLoader(TensorDataset(x, y), batch_size=64))
    learn = Learner(dls, small_model(4), loss_func=nb["mnist_loss"], opt_func=nb["BasicOptim"], device="cpu",
                    quiet=True)
    learn.fit(2, lr=0.5)
    assert isinstance(learn.opt, nb["BasicOptim"]) and learn.opt.lr == 0.5

    reference = small_model(4)
    opt = torch.optim.SGD(reference.parameters(), lr=0.5)
    for _ in range(2):
        for xb, yb in train:
            nb["mnist_loss"](reference(xb), yb).backward()
            opt.step()
            opt.zero_grad()
    for p, q in zip(learn.model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q)
