"""The learning-rate finder: the suggestion rules on curves with known answers, and Learner.lr_find (notebook 04)."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from helpers.learner import Learner
from helpers.lr_finder import minimum, plot_lr_find, slide, steep, suggest, trim_curve, valley

LRS = 1e-7 * 10 ** (8 * np.arange(60) / 100)  # the finder's grid for num_it=100, first 60 points


def test_minimum_is_a_tenth_of_the_lowest_point():
    losses = (np.arange(60) - 37.0) ** 2
    lr, index = minimum(LRS, losses)
    assert index == 37 and lr == pytest.approx(LRS[37] / 10)


def test_steep_finds_the_sharpest_drop():
    losses = 3 - 0.01 * np.arange(60)
    losses[21:] -= 0.5  # the loss falls by 0.5 between points 20 and 21
    lr, index = steep(LRS, losses)
    assert index == 20 and lr == LRS[20]


def test_valley_on_a_flat_then_falling_then_rising_curve():
    # 10 flat points at 5, a strictly falling run of 30 points, then a rise.
    losses = np.concatenate([np.full(10, 5.0), np.linspace(4.9, 2.0, 30), np.linspace(2.5, 6.0, 20)])
    # The longest falling run: one flat point (any 5.0) then the 30 falling ones, 31 long, ending at index 39.
    # start = 39 - 31 = 8; a third is 31/3 = 10.33; index = 8 + 10 + int(5.17) = 23.
    lr, index = valley(LRS, losses)
    assert index == 23 and lr == LRS[23]


def test_slide_stops_where_the_slope_stops_changing():
    i = np.arange(60)
    # A straight descent (slope -0.01) down to index 39, then a parabola that steepens towards the end.
    losses = np.where(i <= 39, 1 - 0.01 * i, 0.61 + 0.01 * (i - 39.0) ** 2)
    # np.gradient is -0.01 on the straight part up to 38, 0 at the joint (39), then keeps growing; walking
    # left 15 apart, the slopes at r and r-15 first agree (within 0.005) at r=38, so the last l taken is 24.
    lr, index = slide(LRS, losses)
    assert index == 24 and lr == LRS[24]


def test_trim_curve_drops_ends_and_stops_at_nan():
    lrs, losses = np.arange(100.0), np.arange(100.0)
    kept_lrs, kept_losses = trim_curve(lrs, losses, num_it=100)
    assert kept_lrs[0] == 10 and kept_lrs[-1] == 94 and len(kept_losses) == 85
    losses[50] = math.nan
    kept_lrs, _ = trim_curve(lrs, losses, num_it=100)
    assert kept_lrs[-1] == 49


def test_trim_curve_too_short_says_what_to_try():
    with pytest.raises(ValueError, match="start_lr"):
        trim_curve(np.arange(8.0), np.arange(8.0), num_it=100)


def test_suggest_names_fields_after_the_rules():
    losses = (np.arange(100) - 60.0) ** 2
    lrs = 1e-7 * 10 ** (8 * np.arange(100) / 100)
    result = suggest(lrs, losses, 100, (minimum, steep))
    assert result._fields == ("minimum", "steep")
    assert result.minimum == pytest.approx(lrs[60] / 10)
    ax = plot_lr_find(list(lrs), list(losses), 100, (minimum, steep, valley, slide))
    assert ax.get_xscale() == "log" and ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    plt.close("all")


def all_tensors(learn):
    """Every tensor of the model (weights and BatchNorm buffers) and of the optimiser, in a fixed order."""
    out = list(learn.model.state_dict().values())
    opt = learn.opt.state_dict()
    for key in sorted(opt["state"]):
        out += [v for _, v in sorted(opt["state"][key].items()) if torch.is_tensor(v)]
    return out


def group_hypers(learn):
    """The optimiser's settings per parameter group (rates, betas, weight decay), without the parameters."""
    return [{k: v for k, v in g.items() if k != "params"} for g in learn.opt.state_dict()["param_groups"]]


def check_restored(learn, before_tensors, before_groups):
    after_tensors = all_tensors(learn)
    assert len(after_tensors) == len(before_tensors) > 20
    assert all(torch.equal(a, b) for a, b in zip(after_tensors, before_tensors))
    assert group_hypers(learn) == before_groups
    assert not learn.model.training


def test_lr_find_restores_every_tensor_bit_for_bit(toy_learner):
    learn = toy_learner()
    learn.fit_one_cycle(1, 1e-2)
    before_tensors = [t.clone() for t in all_tensors(learn)]
    before_groups = group_hypers(learn)
    learn.model.eval()
    learn.lr_find(num_it=20, show_plot=False)
    check_restored(learn, before_tensors, before_groups)


def test_lr_find_interrupted_midway_still_restores_everything(toy_learner, raise_on_call):
    learn = toy_learner()
    learn.fit_one_cycle(1, 1e-2)
    before_tensors = [t.clone() for t in all_tensors(learn)]
    before_groups, before_lrs = group_hypers(learn), [g["lr"] for g in learn.opt.param_groups]
    learn.model.eval()
    learn.loss_func = raise_on_call(5)  # four range-test steps, then the learner presses stop
    with pytest.raises(KeyboardInterrupt):
        learn.lr_find(num_it=20, show_plot=False)
    assert len(learn.recorder.lrs) == 4
    check_restored(learn, before_tensors, before_groups)
    assert [g["lr"] for g in learn.opt.param_groups] == before_lrs
    assert all(p.grad is None for p in learn.model.parameters())


def test_lr_find_spans_epochs_with_an_exponential_schedule(toy_learner):
    learn = toy_learner()  # 6 training batches per epoch
    result = learn.lr_find(start_lr=1e-5, end_lr=1.0, num_it=20, stop_div=False, show_plot=False)
    assert len(learn.dls.train) == 6 and len(learn.recorder.lrs) == 20
    for k, group_lrs in enumerate(learn.recorder.lrs):
        np.testing.assert_allclose(group_lrs, [1e-5 * (1.0 / 1e-5) ** (k / 20)] * 3, rtol=1e-12)
    assert 1e-5 <= result.valley <= 1.0


def test_lr_find_stops_when_the_loss_blows_up(toy_learner, toy_dls):
    learn = toy_learner(dls=toy_dls(n_train=640))
    learn.lr_find(start_lr=1e-3, end_lr=1e6, num_it=100, show_plot=False)
    smooth = learn.recorder.smooth_losses
    assert len(smooth) < 100
    assert smooth[-1] > 4 * min(smooth[:-1]) or math.isnan(smooth[-1])
    assert all(s <= 4 * min(smooth[:i + 1]) for i, s in enumerate(smooth[:-1])), "it stops at the first blow-up"


def test_valley_on_two_points_picks_the_first_not_the_highest_rate():
    # fastai's index formula gives -1 here, which would wrap round to the highest rate.
    assert valley(np.array([1e-3, 1e-2]), np.array([2.0, 1.0])) == (1e-3, 0)
    assert valley(np.array([1e-3, 1e-2]), np.array([1.0, 2.0])) == (1e-3, 0)


def test_lr_find_with_a_hand_written_optimiser_restores_the_weights(toy_dls, toy_model):
    class SGD:
        def __init__(self, params, lr):
            self.params, self.lr = list(params), lr

        def step(self):
            for p in self.params:
                p.data -= p.grad * self.lr

        def zero_grad(self):
            for p in self.params:
                p.grad = None

    learn = Learner(toy_dls(), toy_model(), opt_func=SGD, device="cpu", quiet=True)
    before = [t.clone() for t in learn.model.state_dict().values()]
    learn.lr_find(num_it=12, show_plot=False)
    assert [lrs[-1] for lrs in learn.recorder.lrs] == pytest.approx(
        [1e-7 * (10 / 1e-7) ** (k / 12) for k in range(len(learn.recorder.lrs))], rel=1e-12)
    assert all(torch.equal(a, b) for a, b in zip(before, learn.model.state_dict().values()))


def test_plot_draws_each_dot_at_the_rate_its_label_names():
    lrs = np.logspace(-7, 1, 100)
    losses = 2.0 - np.tanh(np.log10(lrs) + 3) + np.where(lrs > 1e-1, (np.log10(lrs) + 1) ** 2 * 3, 0.0)
    fig, ax = plt.subplots()
    plot_lr_find(lrs, losses, 100, suggest_funcs=(minimum, steep, valley), ax=ax)
    dots = [line for line in ax.get_lines() if line.get_marker() == "o"]
    trimmed_lrs, trimmed_losses = trim_curve(lrs, losses, 100)
    for line, rule in zip(dots, (minimum, steep, valley)):
        lr, _ = rule(trimmed_lrs, trimmed_losses)
        assert line.get_xdata()[0] == pytest.approx(lr, rel=1e-12)
        assert line.get_label() == f"{rule.__name__}: {lr:.2e}"
    lowest = trimmed_lrs[np.argmin(trimmed_losses)]
    assert dots[0].get_xdata()[0] == pytest.approx(lowest / 10)  # not at the lowest point itself
    plt.close(fig)
