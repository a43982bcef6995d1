"""helpers.hooks: forward and gradient hooks that are always removed, and ActivationStats (notebooks 07 and 08)."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from helpers.hooks import ActivationStats, Hook, Hooks, hook_output
from helpers.learner import Learner


def small_cnn() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 3))


def n_hooks(module: nn.Module) -> int:
    return len(module._forward_hooks)


def test_hook_output_stores_the_detached_output_and_is_removed_after_with():
    model = small_cnn()
    x = torch.randn(2, 3, 8, 8)
    with hook_output(model[1]) as hook:
        model(x)
        assert n_hooks(model[1]) == 1
    torch.testing.assert_close(hook.stored, torch.relu(model[0](x)))
    assert not hook.stored.requires_grad
    assert n_hooks(model[1]) == 0
    before = hook.stored
    model(torch.randn(2, 3, 8, 8))
    assert hook.stored is before, "a removed hook ran again"


def test_hooks_are_removed_when_the_body_raises():
    model = small_cnn()
    layers = [model[0], model[2]]
    with pytest.raises(RuntimeError, match="boom"):
        with Hooks(layers, lambda hook, m, i, o: o.shape) as hooks:
            model(torch.randn(1, 3, 8, 8))
            assert hooks.stored == [torch.Size([1, 8, 8, 8])] * 2
            raise RuntimeError("boom")
    assert all(n_hooks(m) == 0 for m in layers)
    with pytest.raises(RuntimeError, match="boom"):
        with hook_output(model[4], grad=True):
            raise RuntimeError("boom")
    assert n_hooks(model[4]) == 0


def test_hooks_built_halfway_are_removed():
    model = small_cnn()
    with pytest.raises(AttributeError):
        Hooks([model[0], "not a module"], lambda *args: None)
    assert n_hooks(model[0]) == 0


@pytest.mark.parametrize("index", [2, 4])
def test_gradient_hook_equals_autograd_grad(index):
    model = small_cnn()
    x = torch.randn(3, 3, 8, 8)
    with hook_output(model[index], detach=False) as activation, hook_output(model[index], grad=True) as gradient:
        score = model(x)[:, 1].sum()
        expected, = torch.autograd.grad(score, activation.stored, retain_graph=True)
        score.backward()
    torch.testing.assert_close(gradient.stored, expected)
    assert not torch.equal(expected, torch.zeros_like(expected))


def test_gradient_hook_matches_autograd_on_a_torchvision_resnet_with_inplace_relus():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=4).eval()
    x = torch.randn(2, 3, 32, 32)
    with hook_output(model.layer4, detach=False) as activation, hook_output(model.layer4, grad=True) as gradient:
        score = model(x)[:, 2].sum()
        expected, = torch.autograd.grad(score, activation.stored, retain_graph=True)
        score.backward()
    torch.testing.assert_close(gradient.stored, expected)
    assert len(model.layer4._forward_hooks) == 0


def test_hook_func_receives_hook_module_inputs_output():
    model = small_cnn()
    calls = []

    def func(hook, module, inputs, output):
        calls.append((hook, module, inputs[0].shape, output.shape))

    with Hook(model[0], func) as hook:
        model(torch.randn(2, 3, 8, 8))
    assert calls == [(hook, model[0], torch.Size([2, 3, 8, 8]), torch.Size([2, 8, 8, 8]))]
    assert hook.stored is None  # func returned None: nothing stored


def test_activation_stats_records_what_it_says(image_dls):
    dls = image_dls(n=16, batch_size=4)
    model = small_cnn()
    stats = ActivationStats([model[1], model[3]], bins=20, hist_range=(0.0, 4.0), zero_threshold=0.1)
    learn = Learner(dls, model, cbs=[stats], device="cpu", quiet=True)
    seen = []
    with Hooks([model[1], model[3]], lambda hook, m, i, o: seen.append(o.detach().clone()) if m.training else None):
        learn.fit(1, 1e-3)
    n_batches = len(dls.train)
    assert stats.means.shape == stats.stds.shape == stats.near_zero.shape == (n_batches, 2)
    assert stats.hists.shape == (2, n_batches, 20)
    # what the Hooks above saw, batch by batch (training only): layer 1 then layer 3 in each forward
    for batch in range(n_batches):
        for layer in range(2):
            out = seen[2 * batch + layer]
            assert stats.means[batch, layer] == pytest.approx(out.mean().item(), rel=1e-5)
            assert stats.stds[batch, layer] == pytest.approx(out.std().item(), rel=1e-5)
            assert stats.near_zero[batch, layer] == pytest.approx((out.abs() <= 0.1).float().mean().item())
            np.testing.assert_array_equal(stats.hists[layer, batch], torch.histc(out, 20, 0.0, 4.0).numpy())
    assert stats.names == ["1", "3"]
    assert all(len(m._forward_hooks) == 0 for m in model), "the stats hooks are gone after the fit"
    axes = stats.plot_stats()
    assert all(ax.get_title() and ax.get_xlabel() and ax.get_ylabel() for ax in axes)
    axes = stats.color_dim()
    assert len(axes) == 2 and all(ax.get_title() and ax.get_xlabel() == "training batch" for ax in axes)
    plt.close("all")


def test_activation_stats_hooks_are_removed_when_the_fit_fails(image_dls):
    dls = image_dls()
    model = small_cnn()

    def bad_loss(preds, targets):
        raise RuntimeError("bad loss")

    learn = Learner(dls, model, loss_func=bad_loss, cbs=[ActivationStats(model[1])], device="cpu", quiet=True)
    with pytest.raises(RuntimeError, match="bad loss"):
        learn.fit(1)
    assert len(model[1]._forward_hooks) == 0


def test_clone_keeps_what_the_module_output_although_an_in_place_operation_follows():
    # The trap notebook 08 shows: a detached output is a view, and an in-place ReLU after the module rewrites it.
    conv = nn.Conv2d(3, 4, 3, padding=1)
    model = nn.Sequential(conv, nn.ReLU(inplace=True))
    x = torch.randn(2, 3, 8, 8)
    expected = conv(x).detach().clone()
    assert (expected < 0).any(), "the test needs negative outputs for the ReLU to rewrite"
    with hook_output(conv) as view, hook_output(conv, clone=True) as copy, torch.no_grad():
        model(x)
    torch.testing.assert_close(copy.stored, expected)
    assert (view.stored >= 0).all(), "the view was expected to be rewritten by the in-place ReLU"
    assert not copy.stored.requires_grad


def test_calls_count_every_forward_of_the_module():
    relu = nn.ReLU()
    model = nn.Sequential(nn.Linear(4, 4), relu, nn.Linear(4, 4), relu)  # one module used twice per pass
    with hook_output(relu) as hook:
        assert hook.calls == 0
        model(torch.randn(1, 4))
        assert hook.calls == 2
        model(torch.randn(1, 4))
        assert hook.calls == 4
