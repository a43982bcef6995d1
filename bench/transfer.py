"""Does the offline backbone transfer? The course's workflow on the tiny pets, pretrained body against random weights.

Both runs use the tiny profile (presize 128, size 64, batches of 32), the same seed and the same loaders:

* pretrained: ``create_cnn("resnet10", weights="offline")``, the finder's valley, then ``fine_tune(5)``;
* from scratch: random weights, the finder's valley, then ``fit_one_cycle(6)`` (one epoch more, no freezing).

It prints each error rate with two binomial standard errors, the margin between them and the noise of that
margin, and whether the targets hold (pretrained at most 0.15, from scratch at least twice the pretrained).

    python bench/transfer.py --threads 1     # both runs: 12 minutes on the development machine's 2 shared vCPUs
    python bench/transfer.py --only scratch  # one of them
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

import helpers
from helpers.data import pets_dataloaders
from helpers.learner import Learner, error_rate
from helpers.models import create_cnn, resnet_split
from helpers.offline_weights import load_backbone_state
from helpers.tiny_pets import pets_tiny


def two_se(p: float, n: int) -> float:
    """Two binomial standard errors of an error rate ``p`` measured on ``n`` images."""
    return 2 * math.sqrt(max(p * (1 - p), 0.0) / n)


def run(pretrained: bool, weights: Path | None = None, seed: int = 42,
        confusions: bool = False) -> tuple[float, float, int]:
    """One run of the workflow; returns (error rate, the finder's valley, validation size)."""
    profile = helpers.get_profile("tiny")
    helpers.set_seed(seed)
    dls = pets_dataloaders(pets_tiny(), presize=profile.presize, size=profile.size, batch_size=profile.batch_size)
    committed = pretrained and weights is None
    model = create_cnn(profile.arch, n_out=len(dls.vocab), weights="offline" if committed else None)
    if pretrained and weights is not None:  # try a candidate backbone before committing it
        model[0].load_state_dict(load_backbone_state(weights, weights.with_suffix(".sha256")))
    learn = Learner(dls, model, splitter=resnet_split, metrics=[error_rate], device="cpu", quiet=True)
    if pretrained:
        learn.freeze()  # as fastai's vision_learner leaves a pretrained model: the finder tries the head's rates
    lr = float(learn.lr_find(show_plot=False)[0])
    if pretrained:
        learn.fine_tune(5, base_lr=lr)
    else:
        learn.fit_one_cycle(6, lr)
    if confusions:
        print_confusions(learn)
    return float(learn.validate()[1]), lr, len(dls.valid.dataset)


def print_confusions(learn: Learner, top: int = 8) -> None:
    """The most confused pairs (actual, predicted, count), and which of them are the planted look-alikes."""
    from collections import Counter

    from helpers.tiny_pets import LOOK_ALIKES

    preds, targets = learn.get_preds()
    vocab = learn.dls.vocab
    pairs = Counter((vocab[t], vocab[p]) for t, p in zip(targets.tolist(), preds.argmax(1).tolist()) if t != p)
    planted = {frozenset(pair) for pair in LOOK_ALIKES}
    on_pairs = sum(n for pair, n in pairs.items() if frozenset(pair) in planted)
    print(f"  most confused: {[(a, b, n) for (a, b), n in pairs.most_common(top)]}")
    print(f"  {on_pairs} of {sum(pairs.values())} errors are between the planted look-alike pairs")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("pretrained", "scratch"), default=None)
    parser.add_argument("--weights", type=Path, default=None, help="a candidate backbone (.pth beside its .sha256)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--confusions", action="store_true", help="also print the most confused pairs")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {platform.machine()}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; load average {os.getloadavg()[0]:.1f} at start")
    results = {}
    for name in ("pretrained", "scratch"):
        if args.only not in (None, name):
            continue
        start = time.perf_counter()
        error, lr, n = run(name == "pretrained", args.weights, confusions=args.confusions)
        results[name] = error
        recipe = "fine_tune(5)" if name == "pretrained" else "fit_one_cycle(6)"
        print(f"{name:>10}: valley {lr:.2e}, {recipe}: error {error:.3f} +- {two_se(error, n):.3f} "
              f"(2 SE, {n} validation images)  {time.perf_counter() - start:.0f}s", flush=True)
    if len(results) == 2:
        pretrained, scratch = results["pretrained"], results["scratch"]
        margin = scratch - pretrained
        noise = 2 * math.sqrt((pretrained * (1 - pretrained) + scratch * (1 - scratch)) / n)
        print(f"margin (scratch - pretrained) {margin:.3f}, noise (2 SE of the difference) {noise:.3f}; "
              f"ratio scratch/pretrained {scratch / max(pretrained, 1e-9):.1f}x")
        print(f"targets: pretrained <= 0.15: {pretrained <= 0.15}; scratch >= 2x pretrained: "
              f"{scratch >= 2 * pretrained}; "
              f"margin > noise: {margin > noise}")


if __name__ == "__main__":
    main()
