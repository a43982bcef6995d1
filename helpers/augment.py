"""Presizing: resize large once per item on the CPU, then augment whole batches in ONE resampling (notebook 02).

One import for everything the notebooks use about augmentation; each piece lives in a module of its own:

* ``helpers.presize``: ``PresizeCrop`` (item transform, PIL), a square crop of the short side resized to the presize
  (460 px), big on purpose so the batch step still has room to crop, rotate and zoom; and ``PresizeCache``;
* ``helpers.batch_augment``: ``BatchAugment`` (``nn.Module``, any device), every geometric augmentation composed
  into one sampling grid, then lighting and normalisation; the recipe (``AugmentRecipe``) and the coordinate maps;
* ``helpers.augment_quality``: the conventional per-item ``torchvision.transforms.v2`` chain for comparison, the
  step-by-step version of one chosen transform, and ``compare_quality`` (PSNR/SSIM against a reference).
"""
from __future__ import annotations

from helpers.augment_quality import (
                                     centre_square,
                                     chain_homography,
                                     compare_quality,
                                     conventional_pipeline,
                                     psnr,
                                     random_geometry,
                                     reference_render,
                                     render_three,
                                     step_by_step,
)
from helpers.batch_augment import (
                                     IMAGENET_MEAN,
                                     IMAGENET_STD,
                                     NO_AUGMENTATION,
                                     PADDING_MODES,
                                     PETS_RECIPE,
                                     AugmentRecipe,
                                     BatchAugment,
                                     adjust_lighting,
                                     affine_matrices,
                                     antialias_blur,
                                     apply_homography,
                                     crop_matrices,
                                     flip_matrices,
                                     grid_scale,
                                     homography_grid,
                                     resample,
                                     rotation_matrices,
                                     sampling_grid,
                                     warp_matrices,
                                     zoom_matrices,
)
from helpers.presize import PresizeCache, PresizeCrop, presize_short_side, square_slice

__all__ = [
    "centre_square", "chain_homography", "compare_quality", "conventional_pipeline", "psnr", "random_geometry",
    "reference_render", "render_three", "step_by_step", "IMAGENET_MEAN", "IMAGENET_STD", "NO_AUGMENTATION",
    "PADDING_MODES", "PETS_RECIPE", "AugmentRecipe", "BatchAugment", "adjust_lighting", "affine_matrices",
    "antialias_blur", "apply_homography", "crop_matrices", "flip_matrices", "grid_scale", "homography_grid",
    "resample", "rotation_matrices", "sampling_grid", "warp_matrices", "zoom_matrices", "PresizeCache", "PresizeCrop",
    "presize_short_side", "square_slice"
]
