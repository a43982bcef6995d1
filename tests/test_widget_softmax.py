"""The softmax explorer of notebook 03, driven headlessly: move sliders, check what it drew."""
from __future__ import annotations

import math

import pytest
import torch

from helpers.widgets import SoftmaxExplorer


def entropy(probs: list[float]) -> float:
    return -sum(p * math.log(p) for p in probs if p > 0)


def test_starts_with_the_chapter_activations():
    explorer = SoftmaxExplorer()
    assert explorer.state["logits"] == pytest.approx([0.02, -2.49, 1.25])
    assert explorer.state["probs"] == pytest.approx([0.2221, 0.0180, 0.7599], abs=1e-4)
    assert "course-widget" in explorer.widget._dom_classes
    assert bytes(explorer.image.value).startswith(b"\x89PNG")


def test_moving_a_logit_redraws_and_probabilities_sum_to_one():
    explorer = SoftmaxExplorer(logits=(1.0, 2.0, 3.0, 0.0), labels=("3", "7", "1", "0"))
    before_image, before_draws = explorer.image.value, explorer.state["draws"]
    explorer.logit_sliders[0].value = 6.0
    assert explorer.state["draws"] == before_draws + 1
    assert explorer.image.value != before_image
    assert sum(explorer.state["probs"]) == pytest.approx(1.0)
    assert max(range(4), key=explorer.state["probs"].__getitem__) == 0
    expected = torch.softmax(torch.tensor([6.0, 2.0, 3.0, 0.0], dtype=torch.float64), dim=0)
    assert explorer.state["probs"] == pytest.approx(expected.tolist())
    assert "exp(logit/T)" in explorer.table.value and "+6.00" in explorer.table.value


def test_temperature_sharpens_and_flattens():
    explorer = SoftmaxExplorer(logits=(0.5, -1.0, 2.0))
    at_one = entropy(explorer.state["probs"])
    explorer.temperature.value = 0.1
    cold = explorer.state["probs"]
    assert entropy(cold) < at_one and max(cold) > 0.99
    explorer.temperature.value = 10.0
    hot = explorer.state["probs"]
    assert entropy(hot) > at_one and max(hot) - min(hot) < 0.2
    assert sum(hot) == pytest.approx(1.0) and sum(cold) == pytest.approx(1.0)


def test_adding_the_same_amount_to_every_logit_changes_nothing():
    explorer = SoftmaxExplorer(logits=(0.0, 1.0))
    before = explorer.state["probs"]
    explorer.logit_sliders[0].value = 5.0
    explorer.logit_sliders[1].value = 6.0
    assert explorer.state["probs"] == pytest.approx(before)


def test_bad_construction_is_a_clear_error():
    with pytest.raises(ValueError, match="2 to 5 logits"):
        SoftmaxExplorer(logits=(1.0,))
    with pytest.raises(ValueError, match="one label per logit"):
        SoftmaxExplorer(logits=(1.0, 2.0), labels=("a",))


def test_leaving_the_explorer_last_in_a_cell_shows_its_widget(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    explorer = SoftmaxExplorer()
    explorer._ipython_display_()  # what Jupyter calls for the value at the end of a cell
    assert shown == [explorer.widget]
