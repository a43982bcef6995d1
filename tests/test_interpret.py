"""Confusion matrix, most_confused and top losses on hand-made predictions and on a real Learner (helpers.interpret)."""
from __future__ import annotations

from types import SimpleNamespace

import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from helpers.interpret import ClassificationInterpretation
from helpers.learner import Learner

VOCAB = ["Bengal", "beagle", "pug"]


def one_hot_probs(preds: list[int], n: int = 3, confidence: float = 0.8) -> torch.Tensor:
    probs = torch.full((len(preds), n), (1 - confidence) / (n - 1))
    probs[torch.arange(len(preds)), torch.tensor(preds)] = confidence
    return probs


def make_interp() -> ClassificationInterpretation:
    targets = torch.tensor([0, 0, 0, 1, 1, 1, 1, 2, 2, 2])
    preds = [0, 1, 1, 1, 2, 2, 2, 2, 0, 2]
    probs = one_hot_probs(preds)
    losses = torch.nn.functional.nll_loss(probs.log(), targets, reduction="none")
    return ClassificationInterpretation(VOCAB, probs, targets, losses)


def test_confusion_matrix_counts_actual_rows_and_predicted_columns():
    matrix = make_interp().confusion_matrix()
    assert list(matrix.index) == VOCAB and list(matrix.columns) == VOCAB
    assert matrix.to_numpy().tolist() == [[1, 2, 0], [0, 1, 3], [1, 0, 2]]
    assert matrix.to_numpy().sum() == 10


def test_most_confused_sorted_by_count_and_filtered_by_min_val():
    interp = make_interp()
    assert interp.most_confused() == [("beagle", "pug", 3), ("Bengal", "beagle", 2), ("pug", "Bengal", 1)]
    assert interp.most_confused(min_val=2) == [("beagle", "pug", 3), ("Bengal", "beagle", 2)]
    assert interp.most_confused(min_val=4) == []


def test_top_losses_are_the_wrong_ones_first():
    interp = make_interp()
    losses, indices = interp.top_losses(6)
    assert torch.all(losses[:-1] >= losses[1:])
    wrong = set(torch.nonzero(interp.preds != interp.targets).flatten().tolist())
    assert set(indices.tolist()) == wrong


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="same items"):
        ClassificationInterpretation(VOCAB, one_hot_probs([0, 1]), torch.tensor([0]), torch.zeros(2))


def test_plots_have_titles_and_labels_on_a_real_learner():
    torch.manual_seed(0)
    x = torch.rand(12, 3, 8, 8)  # float pictures in [0, 1]: shown as they are (no batch transform here)
    y = torch.arange(12) % 3
    ds = TensorDataset(x, y)
    dls = SimpleNamespace(train=DataLoader(ds, batch_size=4), valid=DataLoader(ds, batch_size=4), vocab=VOCAB)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 3))
    learn = Learner(dls, model, loss_func=nn.CrossEntropyLoss(), device="cpu", quiet=True)
    interp = ClassificationInterpretation.from_learner(learn)
    assert interp.confusion_matrix().to_numpy().sum() == 12
    ax = interp.plot_confusion_matrix()
    assert ax.get_title() and ax.get_xlabel() == "predicted" and ax.get_ylabel() == "actual"
    axes = interp.plot_top_losses(4, ncols=2)
    titles = [a.get_title() for a in axes.flat if a.get_title()]
    assert len(titles) == 4 and all("loss" in t and "prob" in t for t in titles)
    first_index = int(interp.top_losses(1)[1])
    predicted = VOCAB[int(interp.preds[first_index])]
    assert titles[0].startswith(f"{predicted} / {VOCAB[int(interp.targets[first_index])]}")
    plt.close("all")
