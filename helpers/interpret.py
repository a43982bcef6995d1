"""Where does the model go wrong? Confusion matrix, most-confused pairs and top losses (notebook 05)."""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from helpers.loaders import transform_mode


class ClassificationInterpretation:
    """Predictions, targets and per-item losses of one loader (the validation set by default) (notebook 05)."""

    def __init__(self, vocab: list[str], probs: torch.Tensor, targets: torch.Tensor, losses: torch.Tensor,
                 dl=None, after_batch=None):
        if not (len(probs) == len(targets) == len(losses)):
            raise ValueError(f"probs, targets and losses must cover the same items, got lengths "
                             f"{len(probs)}, {len(targets)} and {len(losses)}.")
        self.vocab, self.probs, self.targets, self.losses = list(vocab), probs, targets, losses
        self.preds = probs.argmax(dim=1)
        self.dl, self.after_batch = dl, after_batch

    @classmethod
    def from_learner(cls, learn, dl=None) -> ClassificationInterpretation:
        """Run ``learn.get_preds(with_loss=True)`` over ``dl`` and keep the results (notebook 05).

        ``dl`` is the validation loader by default.
        """
        dl = dl if dl is not None else learn.dls.valid
        probs, targets, losses = learn.get_preds(dl=dl, with_loss=True)
        return cls(learn.dls.vocab, probs, targets, losses, dl=dl, after_batch=getattr(learn, "after_batch", None))

    def confusion_matrix(self) -> pd.DataFrame:
        """Counts of (actual row, predicted column) pairs, labelled with the class names (notebook 05)."""
        n = len(self.vocab)
        # Each (actual, predicted) pair becomes one index actual * n + predicted; bincount tallies them.
        counts = torch.bincount(self.targets * n + self.preds, minlength=n * n).view(n, n)
        frame = pd.DataFrame(counts.numpy(), index=self.vocab, columns=self.vocab)
        frame.index.name, frame.columns.name = "actual", "predicted"
        return frame

    def most_confused(self, min_val: int = 1) -> list[tuple[str, str, int]]:
        """(actual, predicted, count) of mistakes made ``min_val`` times or more, most frequent first (notebook 05)."""
        matrix = self.confusion_matrix()
        pairs = [(actual, predicted, int(matrix.loc[actual, predicted]))
                 for actual in self.vocab for predicted in self.vocab
                 if actual != predicted and matrix.loc[actual, predicted] >= min_val]
        return sorted(pairs, key=lambda pair: -pair[2])  # sorted() is stable: ties keep vocab order

    def plot_confusion_matrix(self, normalize: bool = False, figsize: tuple[float, float] | None = None,
                              annotate: bool | None = None) -> plt.Axes:
        """The confusion matrix as a heat map, actual classes down the side (notebook 05)."""
        matrix = self.confusion_matrix().to_numpy().astype(float)
        if normalize:
            matrix = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        n = len(self.vocab)
        size = figsize or (max(4.0, 0.3 * n + 2), max(4.0, 0.3 * n + 2))
        _, ax = plt.subplots(figsize=size)
        image = ax.imshow(matrix, cmap="Blues")
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
        ax.set_xticks(range(n), self.vocab, rotation=90, fontsize=7 if n > 12 else 9)
        ax.set_yticks(range(n), self.vocab, fontsize=7 if n > 12 else 9)
        if annotate if annotate is not None else n <= 12:
            for row in range(n):
                for col in range(n):
                    text = f"{matrix[row, col]:.2f}" if normalize else f"{int(matrix[row, col])}"
                    ax.text(col, row, text, ha="center", va="center",
                            color="white" if matrix[row, col] > matrix.max() / 2 else "black", fontsize=8)
        ax.set(title="Confusion matrix" + (" (each row sums to 1)" if normalize else ""),
               xlabel="predicted", ylabel="actual")
        return ax

    def top_losses(self, k: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``k`` largest per-item losses and the item indices they belong to (notebook 05)."""
        k = len(self.losses) if k is None else min(k, len(self.losses))
        return self.losses.topk(k)

    def _image(self, index: int) -> np.ndarray:
        """Item ``index`` as the model saw it (through the batch transform in eval mode), HxWx3 in [0, 1]."""
        dataset = getattr(self.dl, "dataset", None)
        if dataset is None:
            raise TypeError("plot_top_losses needs the loader's dataset to fetch images; build the "
                            "interpretation with ClassificationInterpretation.from_learner(learn).")
        x = dataset[index][0][None]
        if self.after_batch is not None and hasattr(self.after_batch, "decode"):
            device = next(iter(self.after_batch.buffers()), torch.empty(0)).device
            with transform_mode(self.after_batch, train=False), torch.no_grad():
                x = self.after_batch.decode(self.after_batch(x.to(device)))
        elif x.dtype == torch.uint8:
            x = x.float() / 255
        return x[0].permute(1, 2, 0).clamp(0, 1).cpu().numpy()

    def plot_top_losses(self, k: int = 9, ncols: int = 3) -> np.ndarray:
        """The ``k`` items of highest loss, titled predicted / actual / loss / probability (notebook 05).

        The probability is the prediction's.
        """
        losses, indices = self.top_losses(k)
        nrows = max(1, math.ceil(len(indices) / ncols))
        fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 3.4 * nrows), squeeze=False)
        for ax in axes.flat:
            ax.axis("off")
        for ax, loss, index in zip(axes.flat, losses.tolist(), indices.tolist()):
            predicted = int(self.preds[index])
            ax.imshow(self._image(index))
            ax.set_title(f"{self.vocab[predicted]} / {self.vocab[int(self.targets[index])]}\n"
                         f"loss {loss:.2f} / prob {float(self.probs[index, predicted]):.2f}", fontsize=9)
        fig.suptitle("Top losses: predicted / actual / loss / probability of the prediction")
        fig.tight_layout()
        return axes
