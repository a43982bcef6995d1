"""The pointing game's baselines and a set that can tell: fixed points, and creatures at random places (notebook 08).

A heatmap's pointing-game score means something only next to what a map that ignores the picture scores. The
strongest such map always points at the same place: the **best fixed point**, chosen on training masks (the
location covered by the animal most often) and scored on the validation masks. On the tiny pets the animal sits
near the middle of every picture, so that point scores almost as high as any map can; ``scattered_scenes`` draws
the same creatures at random places and sizes, where no fixed point scores well and the game can tell a map that
looks at the animal from one that does not.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

from helpers.creatures import draw_creature
from helpers.tiny_pets import BREED_FEATURES, BREEDS

__all__ = ["coverage", "best_fixed_point", "best_fixed_cell", "point_rate", "constant_heatmap", "scattered_scenes"]


def _stack(masks: Sequence) -> np.ndarray:
    if len(masks) == 0:
        raise ValueError("no masks given: pass one H x W bool mask per picture.")
    shapes = {np.shape(m) for m in masks}
    if len(shapes) != 1:
        raise ValueError(f"masks of different shapes {sorted(shapes)}: resize them to the model's input first "
                         "(mask_as_seen(mask, size)).")
    return np.stack([np.asarray(m, dtype=bool) for m in masks])


def coverage(masks: Sequence) -> np.ndarray:
    """Per pixel, the fraction of masks that cover it (H x W): what a fixed point at that pixel scores (notebook 08)."""
    return _stack(masks).mean(axis=0)


def best_fixed_point(masks: Sequence) -> tuple[int, int]:
    """(row, column) of the pixel covered by the most masks: the best point that ignores the picture (notebook 08)."""
    share = coverage(masks)
    return tuple(int(v) for v in np.unravel_index(int(share.argmax()), share.shape))


def _cell_centre(cell: int, grid: tuple[int, int], size: tuple[int, int]) -> tuple[int, int]:
    # The same rule as helpers.cam.peak_point: the centre of the strongest cell.
    row, col = divmod(cell, grid[1])
    return int((row + 0.5) * size[0] / grid[0]), int((col + 0.5) * size[1] / grid[1])


def best_fixed_cell(masks: Sequence, grid: tuple[int, int]) -> tuple[int, int]:
    """The best fixed point a map on an ``grid`` (h, w) can point at: the best of its cells' centres (notebook 08)."""
    share = coverage(masks)
    centres = [_cell_centre(cell, grid, share.shape) for cell in range(grid[0] * grid[1])]
    return max(centres, key=lambda point: share[point])


def point_rate(point: tuple[int, int], masks: Sequence) -> float:
    """The pointing-game score of always pointing at ``point`` (row, column): the share of masks on it (notebook 08)."""
    stacked = _stack(masks)
    row, col = point
    if not (0 <= row < stacked.shape[1] and 0 <= col < stacked.shape[2]):
        raise ValueError(f"point {point} lies outside the {stacked.shape[1]} x {stacked.shape[2]} masks.")
    return float(stacked[:, row, col].mean())


def constant_heatmap(point: tuple[int, int], grid: tuple[int, int], size: tuple[int, int]) -> torch.Tensor:
    """A (h, w) map that ignores the picture: 1 in the cell of ``point``, 0 elsewhere (notebook 08's pointing game).

    ``point`` is a place in a ``size`` picture.
    """
    heat = torch.zeros(grid)
    heat[point[0] * grid[0] // size[0], point[1] * grid[1] // size[1]] = 1.0
    return heat


def _room(rng: np.random.Generator, side: int) -> Image.Image:
    """A plain wall with a few darker and lighter shapes, like the tiny pets' rooms."""
    background = tuple(int(v) for v in rng.integers(60, 200, size=3))
    image = Image.new("RGB", (side, side), background)
    clutter = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 8))):
        tone = tuple(int(min(255, max(0, v + rng.integers(-45, 46)))) for v in background)
        x0, y0 = rng.uniform(0, side, size=2)
        x1, y1 = x0 + rng.uniform(-side / 2, side / 2), y0 + rng.uniform(-side / 2, side / 2)
        if rng.random() < 0.5:
            clutter.line([(x0, y0), (x1, y1)], fill=tone, width=max(1, int(rng.integers(2, 12) * side / 300)))
        else:
            clutter.rectangle([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], fill=tone)
    return image


def scattered_scenes(n: int, seed: int = 0, side: int = 192, size: int = 64,
                     creature_size: tuple[float, float] = (0.14, 0.26),
                     ) -> tuple[torch.Tensor, list[np.ndarray], list[str]]:
    """``n`` square pictures, their masks at ``size`` and breeds: tiny-pets creatures placed at random (notebook 08).

    uint8, N x 3 x side x side; one creature each, at a random place and size.

    The creatures are drawn as the tiny pets draw them (``helpers.creatures.draw_creature``), breeds in turn,
    but anywhere in the picture that holds them whole, and smaller: ``creature_size`` (a fraction of the side)
    against the tiny pets' 0.24 to 0.29, so that there is room to move. The room is drawn as theirs, without
    the sensor grain.
    """
    if n < 1:
        raise ValueError(f"n is a number of pictures, at least 1; got {n}.")
    pictures, masks, breeds = [], [], []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        breed = BREEDS[i % len(BREEDS)]
        image = _room(rng, side)
        creature = draw_creature(BREED_FEATURES[breed], side * rng.uniform(*creature_size), rng)
        creature = creature.crop(creature.getchannel("A").getbbox())  # its canvas has wide empty margins
        left = int(rng.integers(0, max(1, side - creature.width)))
        top = int(rng.integers(0, max(1, side - creature.height)))
        image.paste(creature, (left, top), creature)
        mask = Image.new("L", (side, side), 0)
        mask.paste(creature.getchannel("A"), (left, top))
        pictures.append(torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1))
        masks.append(np.asarray(mask.resize((size, size), Image.BILINEAR)) >= 128)
        breeds.append(breed)
    return torch.stack(pictures), masks, breeds
