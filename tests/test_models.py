"""create_cnn's body and head, resnet_split's groups, the weight options and their errors (helpers.models)."""
from __future__ import annotations

import urllib.error

import pytest
import torch
from torch import nn
from torchvision import models as tvm

from helpers.models import AdaptiveConcatPool2d, body_features, create_cnn, create_head, resnet_split


def test_resnet34_with_37_outputs_has_fastais_parameter_count(n_params):
    model = create_cnn("resnet34", n_out=37)
    assert n_params(model) == 21_830_976


def test_head_layers_in_fastais_order():
    head = create_cnn("resnet10", n_out=5)[1]
    kinds = [type(m) for m in head]
    assert kinds == [AdaptiveConcatPool2d, nn.Flatten, nn.BatchNorm1d, nn.Dropout, nn.Linear, nn.ReLU,
                     nn.BatchNorm1d, nn.Dropout, nn.Linear]
    assert head[2].num_features == 1024 and head[4].in_features == 1024 and head[4].out_features == 512
    assert head[8].in_features == 512 and head[8].out_features == 5
    assert head[4].bias is None and head[8].bias is None
    assert (head[3].p, head[7].p) == (0.25, 0.5)


def test_resnet50_head_sees_4096_pooled_features():
    head = create_head(body_features(create_cnn("resnet50", 37)[0]), 37)
    assert head[2].num_features == 4096 and head[4].in_features == 4096


def test_concat_pool_puts_max_before_average():
    x = torch.arange(8.0).view(1, 2, 2, 2)
    pooled = AdaptiveConcatPool2d()(x).flatten()
    torch.testing.assert_close(pooled, torch.tensor([3.0, 7.0, 1.5, 5.5]))


def test_head_initialisation_matches_fastai():
    torch.manual_seed(0)
    head = create_head(512, 37)
    for bn in (head[2], head[6]):
        assert torch.all(bn.weight == 1) and torch.allclose(bn.bias, torch.full_like(bn.bias, 1e-3))
    # kaiming_normal_ (fan_in, gain sqrt(2)): std sqrt(2 / fan_in)
    big = head[4].weight
    assert abs(big.std().item() - (2 / 1024) ** 0.5) < 0.002
    assert abs(big.mean().item()) < 0.002


def test_body_is_the_resnet_before_pooling():
    body, head = create_cnn("resnet18", n_out=10)
    reference = tvm.resnet18(weights=None)
    assert [type(m) for m in body] == [type(m) for m in list(reference.children())[:-2]]
    out = create_cnn("resnet10", n_out=10).eval()(torch.rand(2, 3, 64, 64))
    assert out.shape == (2, 10)


def test_resnet_split_gives_three_groups_covering_every_parameter_once():
    model = create_cnn("resnet10", n_out=37)
    groups = resnet_split(model)
    assert len(groups) == 3
    ids = [id(p) for group in groups for p in group]
    assert len(ids) == len(set(ids)) == len(list(model.parameters()))
    body = model[0]
    assert {id(p) for p in groups[0]} == {id(p) for p in body[:6].parameters()}   # stem, layer1, layer2
    assert {id(p) for p in groups[1]} == {id(p) for p in body[6:].parameters()}   # layer3, layer4
    assert {id(p) for p in groups[2]} == {id(p) for p in model[1].parameters()}


def test_resnet_split_rejects_other_models():
    with pytest.raises(TypeError, match="create_cnn"):
        resnet_split(nn.Sequential(nn.Linear(2, 2)))


@pytest.mark.parametrize("kwargs, match", [
    (dict(arch="resnet35"), "unknown arch"),
    (dict(arch="resnet18", weights="imagnet"), "unknown weights"),
    (dict(arch="resnet34", weights="offline"), "only for resnet10"),
    (dict(arch="resnet10", weights="imagenet"), "no ImageNet weights for resnet10"),
    (dict(arch="resnet10", n_out=0), "positive int"),
])
def test_bad_arguments_say_what_to_do(kwargs, match):
    with pytest.raises(ValueError, match=match):
        create_cnn(**kwargs)


def test_imagenet_weights_offline_point_to_the_offline_backbone(monkeypatch):
    def no_network(self, *args, **kwargs):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(tvm.WeightsEnum, "get_state_dict", no_network)
    with pytest.raises(RuntimeError, match="weights='offline'"):
        create_cnn("resnet18", n_out=37, weights="imagenet")


def test_offline_weights_load_into_the_body():
    from helpers.backbone import load_backbone_state

    body = create_cnn("resnet10", n_out=37, weights="offline")[0]
    state = load_backbone_state()
    for name, value in body.state_dict().items():
        torch.testing.assert_close(value, state[name])
    # A pretrained first layer is not random noise: its filters differ from a fresh init's spread.
    fresh = create_cnn("resnet10", n_out=37)[0]
    assert not torch.allclose(body[0].weight, fresh[0].weight)


def test_single_linear_head_for_exact_class_activation_maps():
    model = create_cnn("resnet10", n_out=5, head_hidden=None).eval()
    head = model[1]
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 1 and linears[0].in_features == 512 and linears[0].out_features == 5
    assert not any(isinstance(m, (nn.BatchNorm1d, AdaptiveConcatPool2d)) for m in head.modules())
    # Exact CAM: the class scores equal the spatial mean of the linear map applied at every position.
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        features = model[0](x)
        cam = torch.einsum("kc,bchw->bkhw", linears[0].weight, features) + linears[0].bias[:, None, None]
        torch.testing.assert_close(cam.mean(dim=(2, 3)), model(x))
    assert len(resnet_split(model)) == 3


def test_models_and_backbone_do_not_import_each_other():
    import ast
    from pathlib import Path

    import helpers

    folder = Path(helpers.__file__).parent

    def imports(name: str) -> set[str]:
        tree = ast.parse((folder / f"{name}.py").read_text())
        return {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}

    assert "helpers.backbone" not in imports("models")
    assert "helpers.models" not in imports("offline_weights") and "helpers.backbone" not in imports("offline_weights")
