"""The pointing game's baselines (helpers.pointing, notebook 08): fixed points on planted masks, the scattered set."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import cam, pointing


def planted_masks(n: int, seed: int, size: int = 16) -> list[np.ndarray]:
    """Rectangles around a spot that moves a little: pixel (5, 9) is covered far more often than any other."""
    rng = np.random.default_rng(seed)
    masks = []
    for _ in range(n):
        mask = np.zeros((size, size), dtype=bool)
        top, left = 5 - int(rng.integers(0, 3)), 9 - int(rng.integers(0, 3))
        if rng.random() < 0.8:
            mask[top:top + 3, left:left + 3] = True
        else:
            mask[12:15, 1:4] = True
        masks.append(mask)
    return masks


def test_best_fixed_point_is_the_most_covered_pixel():
    masks = planted_masks(200, seed=0)
    share = pointing.coverage(masks)
    point = pointing.best_fixed_point(masks)
    assert share[point] == share.max()
    assert pointing.point_rate(point, masks) == pytest.approx(share.max())
    # by hand: count the masks on that pixel
    assert pointing.point_rate(point, masks) == sum(m[point] for m in masks) / len(masks)


def test_a_map_that_ignores_the_picture_scores_exactly_the_fixed_points_rate():
    train, valid = planted_masks(300, seed=1), planted_masks(150, seed=2)
    for grid in ((2, 2), (4, 4), (8, 8)):
        point = pointing.best_fixed_cell(train, grid)
        heat = pointing.constant_heatmap(point, grid, (16, 16))
        assert cam.peak_point(heat, (16, 16)) == point
        hits = cam.pointing_game([heat] * len(valid), valid)
        # exactly: the same pictures hit, so the same count (the rates differ only in float32 against float64)
        assert int(hits.sum()) == sum(bool(m[point]) for m in valid)
        assert float(hits.float().mean()) == pytest.approx(pointing.point_rate(point, valid), rel=1e-6)
        # and no other cell centre beats the chosen one on the training masks
        centres = [(int((r + 0.5) * 16 / grid[0]), int((c + 0.5) * 16 / grid[1]))
                   for r in range(grid[0]) for c in range(grid[1])]
        rates = [pointing.point_rate(centre, train) for centre in centres]
        assert pointing.point_rate(point, train) == max(rates)


def test_mistakes_are_named():
    with pytest.raises(ValueError, match="different shapes"):
        pointing.coverage([np.zeros((4, 4)), np.zeros((5, 5))])
    with pytest.raises(ValueError, match="outside"):
        pointing.point_rate((9, 0), [np.zeros((4, 4), dtype=bool)])
    with pytest.raises(ValueError, match="no masks"):
        pointing.best_fixed_point([])


def test_scattered_scenes_move_the_creature():
    pictures, masks, breeds = pointing.scattered_scenes(40, seed=3, side=96, size=32)
    assert pictures.shape == (40, 3, 96, 96) and pictures.dtype == torch.uint8
    assert len(masks) == len(breeds) == 40 and masks[0].shape == (32, 32)
    assert all(m.any() for m in masks)
    # a fixed point cannot do on them what it does on centred creatures
    assert pointing.coverage(masks).max() < 0.8
    again = pointing.scattered_scenes(2, seed=3, side=96, size=32)[0]
    assert torch.equal(again, pictures[:2])
