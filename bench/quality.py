"""Image quality of one resampling from the presized image vs the step-by-step v2 chain (notebook 02), over many draws.

    python bench/quality.py                 # 5 photos x 20 random transforms, 460 -> 224
    python bench/quality.py --draws 3       # a quick look

For each random geometric transform (crop, flip, rotation, zoom, perspective warp) of each real photograph,
three renders are compared (``helpers.augment.render_three``):

* ours: the presized 460-px square sampled once by ``grid_sample`` to 224 px;
* step by step: the usual chain of ``torchvision.transforms.v2.functional`` calls, each interpolating again;
* reference: the same transform from the full-resolution photo with 4 x 4 supersampling.

PSNR and SSIM against the reference are written to ``bench/results/quality.csv``, with a picture of one draw
side by side (``quality.png``). The ``_inside`` columns count only the pixels where the chain still had real
picture, which separates interpolation loss from the empty (black) zones.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import matplotlib
import pandas as pd
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers.augment import compare_quality, random_geometry, render_three
from helpers.data import SAMPLE_PHOTOS, sample_photo
from helpers.outputs import writable_or_exit, written_whole

RESULTS = Path(__file__).resolve().parent / "results"


def side_by_side(photo_name: str, path: Path, seed: int, size: int, presize: int) -> None:
    """One random transform of one photo, rendered the three ways, saved as a labelled figure."""
    images = render_three(sample_photo(photo_name), random_geometry(torch.Generator().manual_seed(seed)), size, presize)
    figure, axes = plt.subplots(1, 3, figsize=(12, 4.4))
    for ax, key, title in zip(axes, ("reference", "ours", "step_by_step"),
                              ("reference (full resolution, supersampled)", "ours: one resampling from 460 px",
                               "step by step: four v2 resamplings")):
        ax.imshow(images[key].permute(1, 2, 0).numpy())
        ax.set_title(title)
        ax.set_xlabel("x (pixels)")
        ax.set_ylabel("y (pixels)")
    figure.suptitle(f"One random augmentation of '{photo_name}', {size} px")
    figure.tight_layout()
    figure.savefig(path, dpi=80, format="png")  # the format said: the path may be a temporary name
    plt.close(figure)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--draws", type=int, default=20, help="random transforms per photo")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--presize", type=int, default=460)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for quality.csv and quality.png")
    args = parser.parse_args(argv)
    writable_or_exit(args.out, parser)  # before the draws, not after them

    start = time.perf_counter()
    photos = {name: sample_photo(name) for name in SAMPLE_PHOTOS}
    scores = compare_quality(photos, n_draws=args.draws, size=args.size, presize=args.presize, seed=args.seed)
    with written_whole(args.out / "quality.csv") as temporary:
        scores.to_csv(temporary, index=False)
    with written_whole(args.out / "quality.png") as temporary:
        side_by_side("chelsea", temporary, args.seed, args.size, args.presize)

    columns = [c for c in scores.columns if c.startswith(("psnr", "ssim"))]
    print(f"{len(scores)} draws ({len(photos)} photos x {args.draws}), {args.presize} -> {args.size} px, "
          f"{time.perf_counter() - start:.0f} s")
    print(scores.groupby("photo")[columns].mean().round(2).to_string())
    means = scores[columns].mean()
    wins = (scores.psnr_ours > scores.psnr_step_by_step).mean()
    print(f"\nmean PSNR: ours {means.psnr_ours:.2f} dB, step by step {means.psnr_step_by_step:.2f} dB "
          f"(inside the chain's picture: {means.psnr_ours_inside:.2f} vs {means.psnr_step_by_step_inside:.2f} dB); "
          f"mean SSIM {means.ssim_ours:.3f} vs {means.ssim_step_by_step:.3f}; ours ahead in {wins:.0%} of draws")
    return scores


if __name__ == "__main__":
    main()
