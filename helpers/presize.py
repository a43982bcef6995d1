"""The item transform of presizing: a square crop of the short side, resized once on the CPU (notebook 02).

``PresizeCrop`` works on PIL images; ``PresizeCache`` decodes and resizes each image once and slices a square per epoch.
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from helpers.images import open_rgb

# --- the item transform (CPU, PIL) --------------------------------------------------------------

class PresizeCrop:
    """Square crop of the short side, resized to ``size`` (notebook 02).

    At a random place when ``train``, the centre otherwise.
    """

    def __init__(self, size: int = 460, train: bool = True):
        if int(size) < 1:
            raise ValueError(f"PresizeCrop size must be a positive number of pixels, got {size!r}.")
        self.size, self.train = int(size), bool(train)

    def crop_box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of the square this call would crop (notebook 02)."""
        side = min(width, height)
        if self.train:  # Python's random: seeded by set_seed, and per worker by seed_worker
            left, top = random.randint(0, width - side), random.randint(0, height - side)
        else:
            left, top = (width - side) // 2, (height - side) // 2
        return left, top, left + side, top + side

    def __call__(self, image: Image.Image) -> Image.Image:
        if not isinstance(image, Image.Image):
            raise TypeError(f"PresizeCrop works on PIL images, got {type(image).__name__}; "
                            "open the file with PIL.Image.open(path).convert('RGB') first.")
        # resize(box=...) crops and resizes in one antialiased PIL call: no intermediate image.
        return image.resize((self.size, self.size), Image.BILINEAR, box=self.crop_box(*image.size))

    def __repr__(self) -> str:
        return f"PresizeCrop(size={self.size}, train={self.train})"


def presize_short_side(item: Path | str | Image.Image, presize: int) -> Tensor:
    """Open an image and resize it so that its short side is ``presize``: a uint8 tensor 3xHxW (notebook 02)."""
    image = open_rgb(item)  # transparency on white, as in training
    scale = presize / min(image.size)
    size = (max(presize, round(image.width * scale)), max(presize, round(image.height * scale)))
    image = image.resize(size, Image.BILINEAR)
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1)


def square_slice(image: Tensor, side: int, train: bool) -> Tensor:
    """A ``side`` x ``side`` square of a presized image: random when ``train``, else central (notebook 02)."""
    height, width = image.shape[-2:]
    if train:  # Python's random, like PresizeCrop: seeded by set_seed
        top, left = random.randint(0, height - side), random.randint(0, width - side)
    else:
        top, left = (height - side) // 2, (width - side) // 2
    return image[:, top:top + side, left:left + side].contiguous()


class PresizeCache(torch.utils.data.Dataset):
    """Decode and resize each image ONCE (short side to ``presize``); each epoch only slices a square (notebook 02).

    The slice position is drawn afresh on every access when ``train``, exactly as ``PresizeCrop`` would,
    but cutting a square out of a stored tensor is a copy, not a resampling, so it costs almost nothing.
    """

    def __init__(self, items: list, labels: list[int] | None = None, presize: int = 460, train: bool = True):
        self.presize, self.train = int(presize), bool(train)
        self.labels = list(labels) if labels is not None else [0] * len(items)
        self.images = [presize_short_side(item, self.presize) for item in items]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        return square_slice(self.images[index], self.presize, self.train), self.labels[index]
