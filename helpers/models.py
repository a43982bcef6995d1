"""A pretrained body plus a new head: ``create_cnn`` and the three parameter groups of ``resnet_split`` (notebook 05).

A torchvision ResNet ends with average pooling and a 1000-way linear layer for ImageNet. For a new task we
keep everything before the pooling (the *body*, which holds what pretraining learned) and put a freshly
initialised *head* on top, built the way fastai builds it so the numbers match the book.
"""
from __future__ import annotations

import urllib.error
from collections.abc import Callable

import torch
from torch import nn
from torchvision import models as tvm
from torchvision.models.resnet import BasicBlock

from helpers.offline_weights import load_backbone_state

ARCHS = ("resnet10", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
WEIGHTS = (None, "imagenet", "offline")


def resnet10(weights=None) -> tvm.ResNet:
    """The tiny profile's ResNet: one BasicBlock per stage, about 4.9M parameters (notebook 05)."""
    if weights is not None:
        raise ValueError("torchvision has no ImageNet weights for resnet10; use weights='offline' "
                         "(the course's own pretrained backbone) or weights=None.")
    return tvm.ResNet(BasicBlock, [1, 1, 1, 1])


def torchvision_resnet(arch: str, imagenet: bool = False) -> tvm.ResNet:
    """A whole torchvision ResNet (resnet10 is ours), with ImageNet weights when ``imagenet`` (notebook 05).

    Offline, asking for ImageNet weights is a clear error.
    """
    if arch == "resnet10":
        return resnet10()
    builder: Callable[..., tvm.ResNet] = getattr(tvm, arch)
    if not imagenet:
        return builder(weights=None)
    # e.g. ResNet34_Weights.DEFAULT: the best ImageNet weights torchvision has for this architecture.
    weights_enum = tvm.get_model_weights(builder).DEFAULT
    try:
        return builder(weights=weights_enum)
    except (urllib.error.URLError, OSError) as error:
        raise RuntimeError(
            f"could not download the ImageNet weights for {arch} ({weights_enum.url}): {error}. "
            "This needs internet once (they are then cached by torch.hub). Offline, use the tiny profile "
            "(helpers.get_profile('tiny')), i.e. create_cnn('resnet10', weights='offline'), or weights=None "
            "to start from random weights.") from error


def create_body(arch: str = "resnet34", weights: str | None = None) -> nn.Sequential:
    """A ResNet up to its pooling layer: the stem (conv, bn, relu, maxpool) and layer1-4 (notebooks 05, 07)."""
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}: choose one of {', '.join(ARCHS)}.")
    if weights not in WEIGHTS:
        raise ValueError(f"unknown weights {weights!r}: use None (random), 'imagenet' (torchvision's download) "
                         "or 'offline' (the committed tiny-profile backbone, resnet10 only).")
    if weights == "offline" and arch != "resnet10":
        raise ValueError(f"the offline backbone exists only for resnet10, not {arch}: use "
                         f"create_cnn('resnet10', weights='offline'), or weights='imagenet' for {arch} "
                         "(needs internet once).")
    if weights == "imagenet" and arch == "resnet10":
        raise ValueError("torchvision has no ImageNet weights for resnet10: use weights='offline' for it, "
                         "or an arch from resnet18 up with weights='imagenet'.")
    resnet = torchvision_resnet(arch, imagenet=weights == "imagenet")
    body = nn.Sequential(*list(resnet.children())[:-2])  # drop avgpool and fc
    if weights == "offline":
        body.load_state_dict(load_backbone_state())
    return body


def body_features(body: nn.Module) -> int:
    """Number of channels the body outputs (512 for resnet10/18/34, 2048 for resnet50 and up) (notebook 05)."""
    last_conv = [m for m in body.modules() if isinstance(m, nn.Conv2d)][-1]
    return last_conv.out_channels


class AdaptiveConcatPool2d(nn.Module):
    """Max pooling and average pooling side by side (max first), doubling the features (notebooks 05, 07)."""

    def __init__(self, output_size: int = 1):
        super().__init__()
        self.max_pool = nn.AdaptiveMaxPool2d(output_size)
        self.avg_pool = nn.AdaptiveAvgPool2d(output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.max_pool(x), self.avg_pool(x)], dim=1)


def create_head(n_features: int, n_out: int, hidden: int | None = 512, dropout: float = 0.5) -> nn.Sequential:
    """fastai's head: concat pool, flatten, then two BatchNorm-Dropout-Linear blocks with a ReLU between (notebook 05).

    ``hidden=None`` gives the single-layer head instead: average pooling, dropout and one linear layer. Its
    class score is then an average over positions of a linear map of the features, so a class activation map
    (notebook 08) explains it exactly.
    """
    if hidden is None:
        head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout / 2),
                             nn.Linear(n_features, n_out))
        init_head(head)
        return head
    pooled = 2 * n_features
    head = nn.Sequential(
        AdaptiveConcatPool2d(),
        nn.Flatten(),
        nn.BatchNorm1d(pooled),
        nn.Dropout(dropout / 2),
        nn.Linear(pooled, hidden, bias=False),  # no bias: the BatchNorm before it already has one
        nn.ReLU(inplace=True),
        nn.BatchNorm1d(hidden),
        nn.Dropout(dropout),
        nn.Linear(hidden, n_out, bias=False),
    )
    init_head(head)
    return head


def init_head(head: nn.Module) -> None:
    """Kaiming-normal linear weights; BatchNorm weight 1 and bias 1e-3, as fastai initialises its head (notebook 05)."""
    for module in head.modules():
        if isinstance(module, nn.Linear):
            nn.init.kaiming_normal_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm1d):
            nn.init.ones_(module.weight)
            # A small positive bias keeps the units after it from starting exactly at zero.
            nn.init.constant_(module.bias, 1e-3)


def create_cnn(arch: str = "resnet34", n_out: int = 37, weights: str | None = None,
               head_hidden: int | None = 512) -> nn.Sequential:
    """``nn.Sequential(body, head)``: a (pre)trained ResNet body and a new head with ``n_out`` outputs (notebook 05).

    ``head_hidden=None``: the single linear head (average pooling, one linear layer), for exact class activation maps.
    """
    if not isinstance(n_out, int) or n_out < 1:
        raise ValueError(f"n_out is the number of classes and must be a positive int, got {n_out!r} "
                         "(use len(dls.vocab)).")
    body = create_body(arch, weights)
    return nn.Sequential(body, create_head(body_features(body), n_out, hidden=head_hidden))


def resnet_split(model: nn.Sequential) -> list[list[nn.Parameter]]:
    """Three parameter groups: stem + layer1 + layer2, layer3 + layer4, head (notebook 05)."""
    if not (isinstance(model, nn.Sequential) and len(model) == 2 and len(model[0]) == 8):
        raise TypeError("resnet_split expects the nn.Sequential(body, head) that create_cnn builds "
                        "(a body of 8 children: conv1, bn1, relu, maxpool, layer1-4).")
    body, head = model[0], model[1]
    return [list(body[:6].parameters()), list(body[6:].parameters()), list(head.parameters())]
