"""fastai's tabular model: embeddings, embedding dropout, LinBnDrop blocks and a sigmoid range (notebook 09)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from helpers.tabular_procs import TabularProcessor

__all__ = ["emb_sz_rule", "get_emb_szs", "sigmoid_range", "SigmoidRange", "LinBnDrop", "TabularModel"]

def emb_sz_rule(n_cat: int) -> int:
    """fastai's embedding width for ``n_cat`` levels (#na# counted): min(600, round(1.6 n^0.56)) (notebook 09)."""
    return min(600, round(1.6 * n_cat ** 0.56))


def get_emb_szs(processor: TabularProcessor, sz_dict: dict[str, int] | None = None) -> list[tuple[int, int]]:
    """``(levels, width)`` per categorical column, by ``emb_sz_rule`` unless ``sz_dict`` names one (notebook 09)."""
    sz_dict = sz_dict or {}
    unknown = set(sz_dict) - set(processor.cat_names)
    if unknown:
        raise KeyError(f"sz_dict names {sorted(unknown)}, which are not categorical columns {processor.cat_names}.")
    return [(len(v), sz_dict.get(n, emb_sz_rule(len(v)))) for n, v in processor.vocab.items()]


def sigmoid_range(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """A sigmoid stretched to (low, high): the model can approach either end but never pass it (notebook 09)."""
    return torch.sigmoid(x) * (high - low) + low


class SigmoidRange(nn.Module):
    """``sigmoid_range`` as a layer, the last one of a TabularModel given a ``y_range`` (notebook 09)."""

    def __init__(self, low: float, high: float):
        super().__init__()
        self.low, self.high = float(low), float(high)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return sigmoid_range(x, self.low, self.high)

    def extra_repr(self) -> str:
        return f"low={self.low:.4g}, high={self.high:.4g}"


class LinBnDrop(nn.Sequential):
    """Linear, then the activation, BatchNorm1d and Dropout: fastai's block with ``lin_first=True`` (notebook 09).

    With BatchNorm after it, the Linear layer has no bias: BatchNorm subtracts the mean anyway, and adds its own.
    """

    def __init__(self, n_in: int, n_out: int, bn: bool = True, p: float = 0.0, act: nn.Module | None = None):
        layers: list[nn.Module] = [nn.Linear(n_in, n_out, bias=not bn)]
        if act is not None:
            layers.append(act)
        if bn:
            norm = nn.BatchNorm1d(n_out)
            nn.init.constant_(norm.bias, 1e-3)  # fastai's BatchNorm starts its bias just above zero
            layers.append(norm)
        if p != 0:
            layers.append(nn.Dropout(p))
        super().__init__(*layers)


class TabularModel(nn.Module):
    """fastai's tabular model: embeddings, BatchNorm, LinBnDrop blocks and a final Linear (notebook 09).

    Embedding dropout, BatchNorm of the continuous columns, LinBnDrop blocks, a final Linear, and SigmoidRange when
    ``y_range`` is given.

    Attribute names (``embeds``, ``emb_drop``, ``bn_cont``, ``layers``) and the parameter count are fastai's.
    """

    def __init__(self, emb_szs: Sequence[tuple[int, int]], n_cont: int, out_sz: int, layers: Sequence[int],
                 ps: float | Sequence[float] | None = None, embed_p: float = 0.0,
                 y_range: tuple[float, float] | None = None, use_bn: bool = True, bn_final: bool = False):
        super().__init__()
        layers = list(layers)
        if ps is None:
            ps = [0.0] * len(layers)
        elif isinstance(ps, (int, float)):
            ps = [float(ps)] * len(layers)
        ps = list(ps)
        if len(ps) != len(layers):
            raise ValueError(f"ps has {len(ps)} dropout probabilities for {len(layers)} hidden layers: give one per "
                             "layer.")
        self.embeds = nn.ModuleList([nn.Embedding(n, width) for n, width in emb_szs])
        for embedding in self.embeds:
            nn.init.trunc_normal_(embedding.weight, std=0.01, a=-0.02, b=0.02)  # fastai's small initial embeddings
        self.emb_drop = nn.Dropout(embed_p)
        self.bn_cont = nn.BatchNorm1d(n_cont) if n_cont else None
        self.n_emb, self.n_cont = sum(width for _, width in emb_szs), n_cont
        sizes = [self.n_emb + n_cont, *layers, out_sz]
        blocks = [LinBnDrop(sizes[i], sizes[i + 1], bn=use_bn, p=p, act=nn.ReLU(inplace=True))
                  for i, p in enumerate(ps)]
        blocks.append(LinBnDrop(sizes[-2], sizes[-1], bn=bn_final))  # the output layer: no activation, no dropout
        if y_range is not None:
            blocks.append(SigmoidRange(*y_range))
        self.layers = nn.Sequential(*blocks)

    def forward(self, x_cat: torch.Tensor, x_cont: torch.Tensor | None = None) -> torch.Tensor:
        parts = []
        if self.n_emb:
            if x_cat.shape[1] != len(self.embeds):
                raise ValueError(f"x_cat has {x_cat.shape[1]} columns but the model has {len(self.embeds)} embeddings.")
            embedded = torch.cat([emb(x_cat[:, i]) for i, emb in enumerate(self.embeds)], dim=1)
            parts.append(self.emb_drop(embedded))
        if self.n_cont:
            parts.append(self.bn_cont(x_cont))
        return self.layers(torch.cat(parts, dim=1))

