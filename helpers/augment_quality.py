"""Measuring presizing: the per-item chain, the step-by-step version, and ``compare_quality`` (notebook 02).

The conventional per-item ``torchvision.transforms.v2`` chain, the step-by-step version of one chosen transform, and
``compare_quality``, which scores both against a high-quality reference.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor, nn
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from helpers.batch_augment import IMAGENET_MEAN, IMAGENET_STD, PETS_RECIPE, AugmentRecipe, homography_grid, resample
from helpers.presize import PresizeCrop


def conventional_pipeline(size: int = 224, recipe: AugmentRecipe = PETS_RECIPE, mean: tuple = IMAGENET_MEAN,
                          std: tuple = IMAGENET_STD) -> nn.Module:
    """The per-item ``torchvision.transforms.v2`` chain people usually write: each step interpolates (notebook 02)."""
    r, bilinear = recipe, v2.InterpolationMode.BILINEAR
    return v2.Compose([
        v2.RandomResizedCrop(size, scale=(r.min_scale, 1.0), ratio=(1.0, 1.0), antialias=True),
        v2.RandomHorizontalFlip(0.5 if r.do_flip else 0.0),
        v2.RandomApply([v2.RandomRotation(r.max_rotate, interpolation=bilinear)], p=r.p_affine),
        v2.RandomApply([v2.RandomAffine(0, scale=(r.min_zoom, r.max_zoom), interpolation=bilinear)], p=r.p_affine),
        v2.RandomPerspective(r.max_warp, p=r.p_affine),
        v2.RandomApply([v2.ColorJitter(brightness=r.max_lighting, contrast=r.max_lighting)], p=r.p_lighting),
        v2.PILToTensor(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(mean, std),
    ])


def random_geometry(generator: torch.Generator | None = None, recipe: AugmentRecipe = PETS_RECIPE) -> dict:
    """One random geometric transform, in the terms of the step-by-step chain (every part switched on) (notebook 02)."""
    def uniform(low: float, high: float) -> float:
        return float(low + (high - low) * torch.rand((), generator=generator))
    r = recipe
    return {"crop_scale": uniform(r.min_scale, 1), "crop_centre": (uniform(-1, 1), uniform(-1, 1)),
            "flip": bool(torch.rand((), generator=generator) < 0.5), "rotate": uniform(-r.max_rotate, r.max_rotate),
            "zoom": uniform(r.min_zoom, r.max_zoom),
            "warp": (uniform(-r.max_warp, r.max_warp), uniform(-r.max_warp, r.max_warp))}


def step_by_step(image: Tensor, geometry: dict, size: int = 224, antialias: bool = True) -> Tensor:
    """Apply ``geometry`` to a float ``3 x N x N`` image the conventional way, one resampling per step (notebook 02).

    The steps: crop-resize, flip, rotate, zoom, warp.

    Each step is its own ``torchvision.transforms.v2.functional`` call, so the picture is interpolated four
    times, and rotation and warp fill what they uncover with black (the "empty zones").
    """
    bilinear = v2.InterpolationMode.BILINEAR
    full = image.shape[-1]
    side = max(1, round(math.sqrt(geometry["crop_scale"]) * full))
    left, top = (round((c + 1) / 2 * (full - side)) for c in geometry["crop_centre"])
    x = TF.resized_crop(image, top, left, side, side, [size, size], interpolation=bilinear, antialias=antialias)
    if geometry["flip"]:
        x = TF.horizontal_flip(x)
    x = TF.rotate(x, geometry["rotate"], interpolation=bilinear)
    x = TF.affine(x, angle=0.0, translate=[0, 0], scale=geometry["zoom"], shear=[0.0, 0.0], interpolation=bilinear)
    corners = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
    tilt_h, tilt_v = geometry["warp"]

    def to_pixels(u: float, v: float) -> list[int]:  # v2's perspective takes whole-pixel corner positions
        return [round((u + 1) / 2 * (size - 1)), round((v + 1) / 2 * (size - 1))]

    start = [to_pixels(u, v) for u, v in corners]
    end = [to_pixels(u * (1 + tilt_v * v), v * (1 + tilt_h * u)) for u, v in corners]
    return TF.perspective(x, start, end, interpolation=bilinear)


def chain_homography(geometry: dict, size: int = 224, full: int = 512) -> tuple[Tensor, Tensor]:
    """The output -> input 3x3 map the step-by-step chain applies, and where it shows real picture (notebook 02).

    Rather than re-deriving torchvision's conventions, run the chain on an image whose pixels hold their own
    (x, y) coordinates: bilinear interpolation reproduces a linear ramp exactly, so the output says where each
    pixel came from. A least-squares fit over the uncovered pixels gives the map; a third channel of ones
    shows where the chain had to fill in black.
    """
    steps = (torch.arange(full, dtype=torch.float32) * 2 + 1) / full - 1
    coordinates = torch.stack([steps.expand(full, full), steps[:, None].expand(full, full), torch.ones(full, full)])
    traced = step_by_step(coordinates, geometry, size, antialias=False)
    traced = traced.double()
    inside = traced[2] > 1 - 1e-5
    fit = inside.clone()
    fit[:2], fit[-2:], fit[:, :2], fit[:, -2:] = False, False, False, False
    out_steps = (torch.arange(size, dtype=torch.float64) * 2 + 1) / size - 1
    u, v = out_steps.expand(size, size)[fit], out_steps[:, None].expand(size, size)[fit]
    x, y = traced[0][fit], traced[1][fit]
    one, zero = torch.ones_like(u), torch.zeros_like(u)
    system = torch.cat([torch.stack([u, v, one, zero, zero, zero, -u * x, -v * x], 1),
                        torch.stack([zero, zero, zero, u, v, one, -u * y, -v * y], 1)])
    solution = torch.linalg.lstsq(system, torch.cat([x, y])[:, None]).solution[:, 0]
    return torch.cat([solution, solution.new_ones(1)]).reshape(3, 3).float(), inside


def reference_render(image: Tensor, matrix: Tensor, size: int = 224, supersample: int = 4) -> Tensor:
    """The transform done as well as we can: ``supersample``^2 samples per pixel of the full image (notebook 02).

    Taken from the full-resolution image and averaged.
    """
    grid = homography_grid(matrix[None], size * supersample)
    dense = F.grid_sample(image[None], grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return F.avg_pool2d(dense, supersample)[0]


def psnr(image: Tensor, reference: Tensor, mask: Tensor | None = None) -> float:
    """Peak signal-to-noise ratio in dB of a [0, 1] image against a reference, optionally in ``mask`` (notebook 02)."""
    squared = (image.float() - reference.float()) ** 2
    mse = squared[:, mask].mean() if mask is not None else squared.mean()
    return float(10 * torch.log10(1 / mse.clamp(min=1e-12)))


def centre_square(photo: Image.Image) -> Image.Image:
    """The centre square of the short side, at full resolution (notebook 02)."""
    return photo.crop(PresizeCrop(train=False).crop_box(*photo.size))


def render_three(photo: Image.Image, geometry: dict, size: int = 224, presize: int = 460,
                 antialias: bool = False) -> dict:
    """One geometric transform three ways: ours, step by step, and the reference (notebook 02).

    Ours is one resampling from the presized image.
    """
    base = centre_square(photo.convert("RGB"))
    full = torch.from_numpy(np.asarray(base).copy()).permute(2, 0, 1).float() / 255
    presized = PresizeCrop(presize, train=False)(base)
    small = torch.from_numpy(np.asarray(presized).copy()).permute(2, 0, 1).float() / 255
    matrix, inside = chain_homography(geometry, size, full=base.width)
    ours = resample(small[None], homography_grid(matrix[None], size), antialias=antialias)[0]
    return {"ours": ours.clamp(0, 1), "step_by_step": step_by_step(full, geometry, size).clamp(0, 1),
            "reference": reference_render(full, matrix, size).clamp(0, 1), "inside": inside, "matrix": matrix}


def compare_quality(photos: dict[str, Image.Image], n_draws: int = 10, size: int = 224, presize: int = 460,
                    seed: int = 0, antialias: bool = False, ssim: bool = True) -> pd.DataFrame:
    """PSNR/SSIM against the reference, ours vs the step-by-step chain, over random transforms (notebook 02).

    Each photo gets its own random transforms.

    ``psnr_*_inside`` only counts pixels where the chain had real picture, separating interpolation loss from
    the empty zones.
    """
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for name, photo in photos.items():
        for draw in range(n_draws):
            images = render_three(photo, random_geometry(generator), size, presize, antialias)
            reference, inside = images["reference"], images["inside"]
            row = {"photo": name, "draw": draw}
            for method in ("ours", "step_by_step"):
                row[f"psnr_{method}"] = psnr(images[method], reference)
                row[f"psnr_{method}_inside"] = psnr(images[method], reference, inside)
                if ssim:
                    from skimage.metrics import structural_similarity
                    row[f"ssim_{method}"] = float(structural_similarity(
                        images[method].numpy(), reference.numpy(), data_range=1.0, channel_axis=0))
            rows.append(row)
    return pd.DataFrame(rows)
