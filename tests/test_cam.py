"""CAM, Grad-CAM and the pointing game (helpers.cam, notebook 08), on small models built here."""
from __future__ import annotations

import gc

import pytest
import torch
from torch import nn
from torchvision.models.resnet import BasicBlock

from helpers import cam
from helpers.models import create_head

N_CLASSES = 5


# Tiny models: a second thread only adds spin-waiting (seconds per call on a busy 2-core machine).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def small_body() -> nn.Sequential:
    """A stem and one ResNet block (with torchvision's in-place ReLU): 16 channels on an 8 x 8 grid for 32-px input."""
    return nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.MaxPool2d(2), BasicBlock(16, 16))


def gap_linear_model(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(16, N_CLASSES))
    nn.init.normal_(head[-1].bias)  # a bias that is not zero, so the identity really includes it
    return nn.Sequential(small_body(), head).eval()


def course_head_model(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(small_body(), create_head(16, N_CLASSES)).eval()


def images(n: int = 4, seed: int = 1) -> torch.Tensor:
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


def no_hooks_left(model: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
               for m in model.modules())


# ---- CAM ----------------------------------------------------------------------------------------------------------

def test_cam_mean_plus_bias_is_the_logit():
    model, x = gap_linear_model(), images()
    assert cam.cam_is_exact(model)
    logits = model(x).detach()
    linear = model[1][-1]
    for target in range(N_CLASSES):
        maps = cam.class_activation_map(model, x, target=target)
        assert maps.shape == (4, 8, 8)
        torch.testing.assert_close(maps.mean(dim=(1, 2)) + linear.bias[target].detach(), logits[:, target],
                                   rtol=1e-5, atol=1e-5)


def test_cam_defaults_to_the_prediction_and_takes_one_image():
    model, x = gap_linear_model(), images()
    predicted = model(x).argmax(dim=1)
    torch.testing.assert_close(cam.class_activation_map(model, x), cam.class_activation_map(model, x, predicted))
    torch.testing.assert_close(cam.class_activation_map(model, x[1]), cam.class_activation_map(model, x)[1])


def test_cam_equals_the_head_applied_at_each_position_for_a_linear_head():
    model, x = gap_linear_model(), images()
    with torch.no_grad():
        features = model[0](x)
        per_position = cam._head_at_each_position(model[1], features)  # (N, h, w, classes)
    bias = model[1][-1].bias.detach()
    torch.testing.assert_close(cam.class_activation_map(model, x, target=2), per_position[..., 2] - bias[2],
                               rtol=1e-5, atol=1e-5)


def test_cam_with_the_course_head_is_only_an_approximation():
    model, x = course_head_model(), images()
    assert not cam.cam_is_exact(model)
    maps = cam.class_activation_map(model, x, target=0)
    logits = model(x).detach()
    assert maps.shape == (4, 8, 8)
    # The course's head has no final bias; its max pooling and ReLU break the identity.
    assert (maps.mean(dim=(1, 2)) - logits[:, 0]).abs().max() > 1e-2


def test_cam_leaves_the_model_as_it_was():
    model, x = gap_linear_model(), images()
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cam.class_activation_map(model, x)
    assert model.training
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key])  # BatchNorm's running statistics did not move


def test_bad_targets_and_models_say_what_to_do():
    model, x = gap_linear_model(), images()
    with pytest.raises(ValueError, match="out of range"):
        cam.class_activation_map(model, x, target=N_CLASSES)
    with pytest.raises(ValueError, match="one per image"):
        cam.class_activation_map(model, x, target=[0, 1])
    with pytest.raises(TypeError, match="Sequential"):
        cam.class_activation_map(model[0], x)
    with pytest.raises(ValueError, match="not part of model"):
        cam.grad_cam(model, nn.Conv2d(3, 3, 1), x)


# ---- Grad-CAM -----------------------------------------------------------------------------------------------------

def reference_grad_cam(model: nn.Module, layer: nn.Module, x: torch.Tensor, target: torch.Tensor) -> tuple:
    """Activations and gradients straight from torch.autograd.grad, no tensor hook."""
    kept = {}

    def keep(module, inputs, output):
        kept["a"] = output
        return output.clone()  # what runs on downstream is a copy, so in-place operations leave `output` alone

    handle = layer.register_forward_hook(keep)
    try:
        logits = model(x)
    finally:
        handle.remove()
    score = logits.gather(1, target[:, None]).sum()
    (gradient,) = torch.autograd.grad(score, kept["a"])
    weights = gradient.mean(dim=(2, 3))
    return weights, torch.relu((weights[:, :, None, None] * kept["a"]).sum(dim=1)).detach()


@pytest.mark.parametrize("where", ["body", "block", "bn2 inside the block", "stem conv"])
@pytest.mark.parametrize("make_model", [gap_linear_model, course_head_model], ids=["gap-linear", "course head"])
def test_grad_cam_channel_weights_match_autograd(make_model, where):
    model, x = make_model(), images()
    body = model[0]
    layer = {"body": body, "block": body[4], "bn2 inside the block": body[4].bn2, "stem conv": body[0]}[where]
    target = torch.tensor([0, 1, 2, 3])
    weights, expected = reference_grad_cam(model, layer, x, target)
    assert weights.abs().sum() > 0
    maps = cam.grad_cam(model, layer, x, target=target)
    torch.testing.assert_close(maps, expected, rtol=1e-4, atol=1e-6)
    assert no_hooks_left(model)


def test_grad_cam_on_the_last_layer_of_gap_linear_is_cam_up_to_scale():
    model, x = gap_linear_model(), images()
    for target in range(N_CLASSES):
        class_map = cam.class_activation_map(model, x, target=target)
        gradient_map = cam.grad_cam(model, model[0], x, target=target)
        height, width = class_map.shape[1:]
        # d logit / d A_cij = w_c / (h w) everywhere, so the channel weights are w_c / (h w).
        torch.testing.assert_close(gradient_map, torch.relu(class_map) / (height * width), rtol=1e-4, atol=1e-6)


def test_grad_cam_works_on_a_frozen_model_and_leaves_no_gradients():
    model, x = course_head_model(), images()
    for p in model.parameters():
        p.requires_grad_(False)
    maps = cam.grad_cam(model, model[0], x)
    assert maps.shape == (4, 8, 8) and not maps.requires_grad
    assert all(p.grad is None for p in model.parameters())
    model.requires_grad_(True)
    cam.grad_cam(model, model[0], x)
    assert all(p.grad is None for p in model.parameters()), "grad_cam must not fill the parameters' .grad"


def test_grad_cam_refuses_a_module_called_twice():
    model, x = gap_linear_model(), images()
    with pytest.raises(ValueError, match="ran 2 times"):
        cam.grad_cam(model, model[0][4].relu, x)  # torchvision's block calls its ReLU twice
    assert no_hooks_left(model)


def test_grad_cam_refuses_a_layer_without_a_map():
    model, x = course_head_model(), images()
    with pytest.raises(ValueError, match="N x C x h x w"):
        cam.grad_cam(model, model[1][4], x)
    assert no_hooks_left(model)


# ---- hooks and memory ---------------------------------------------------------------------------------------------

class Explodes(nn.Module):
    def forward(self, x):
        raise RuntimeError("boom")


def test_hooks_are_gone_after_an_exception():
    model, x = gap_linear_model(), images()
    model[1].insert(0, Explodes())
    model.train()
    with pytest.raises(RuntimeError, match="boom"):
        cam.class_activation_map(model, x)
    with pytest.raises(RuntimeError, match="boom"):
        cam.grad_cam(model, model[0][4].conv1, x)
    with pytest.raises(ValueError):
        cam.grad_cam(gap_linear_model(), model[0][4].conv1, x)  # a layer of another model
    assert no_hooks_left(model)
    assert model.training, "the model's mode is restored even when the forward pass raises"
    # and a good call afterwards sees only its own hooks: the stored tensors are fresh
    del model[1][0]
    assert cam.grad_cam(model, model[0], x).shape == (4, 8, 8)
    assert no_hooks_left(model)


def live_tensors() -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if issubclass(type(obj), torch.Tensor))


def test_memory_is_stable_over_a_hundred_calls():
    psutil = pytest.importorskip("psutil")
    model, x = course_head_model(), images(2)
    layer = model[0][4].conv2
    maps = []
    for _ in range(3):  # warm up: allocator pools, lazily created buffers
        cam.class_activation_map(model, x)
        cam.grad_cam(model, layer, x)
    tensors_before = live_tensors()
    rss_before = psutil.Process().memory_info().rss
    for _ in range(100):
        maps.append(cam.class_activation_map(model, x)[0].clone())
        heat = cam.grad_cam(model, layer, x)
        assert heat.grad_fn is None and not heat.requires_grad
    del heat
    maps.clear()
    assert live_tensors() <= tensors_before, "tensors (and the graphs behind them) pile up between calls"
    grown = (psutil.Process().memory_info().rss - rss_before) / 2**20
    assert grown < 50, f"memory grew by {grown:.0f} MiB over 100 calls"
    assert no_hooks_left(model)


# ---- the pointing game --------------------------------------------------------------------------------------------

class OneQuadrant(nn.Module):
    """Zeroes every feature outside the top-left quadrant of the map: the model cannot see anything else."""

    def forward(self, x):
        keep = torch.zeros_like(x)
        keep[..., : x.shape[-2] // 2, : x.shape[-1] // 2] = 1
        return x * keep


def one_quadrant_model() -> nn.Sequential:
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 8, 3, padding=1)
    nn.init.uniform_(conv.weight, 0.01, 0.1)
    body = nn.Sequential(conv, nn.ReLU(), nn.AvgPool2d(4), OneQuadrant())
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 2))
    nn.init.uniform_(head[-1].weight, 0.1, 1.0)
    return nn.Sequential(body, head).eval()


def quadrant_mask(size: int, top: bool, left: bool) -> torch.Tensor:
    mask = torch.zeros(size, size, dtype=torch.bool)
    rows = slice(0, size // 2) if top else slice(size // 2, size)
    cols = slice(0, size // 2) if left else slice(size // 2, size)
    mask[rows, cols] = True
    return mask


def test_pointing_game_on_a_model_that_sees_one_quadrant():
    model = one_quadrant_model()
    x = torch.rand(20, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    top_left = [quadrant_mask(32, True, True)] * 20
    elsewhere = [quadrant_mask(32, top, left) for top, left in [(True, False), (False, True), (False, False)] * 7][:20]
    for maps in (cam.class_activation_map(model, x, target=0), cam.grad_cam(model, model[0], x, target=0)):
        assert maps.shape[1:] == (8, 8)
        assert cam.pointing_game(maps, top_left).all()
        assert not cam.pointing_game(maps, elsewhere).any()
    area = torch.stack(top_left).float().mean().item()
    assert area == 0.25  # the random baseline: a random point lands on the quadrant a quarter of the time


def test_peak_point_is_the_centre_of_the_strongest_cell():
    heat = torch.zeros(2, 2)
    heat[1, 0] = 1
    assert cam.peak_point(heat, (64, 64)) == (48, 16)
    assert cam.peak_point(torch.eye(3), (30, 60)) == (5, 10)


def test_show_heatmap_and_noise():
    import matplotlib.pyplot as plt

    image = torch.rand(3, 32, 32)
    ax = cam.show_heatmap(image, torch.rand(4, 4), title="t")
    assert ax.get_title() == "t" and len(ax.images) == 2
    assert ax.images[1].get_array().shape == (32, 32)
    cam.show_heatmap((image * 255).to(torch.uint8), torch.zeros(2, 2), ax=ax)  # a flat map must not divide by zero
    plt.close("all")
    assert cam.binomial_noise(0.5, 100) == pytest.approx(0.1)
