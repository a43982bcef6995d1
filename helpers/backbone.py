"""The offline pretrained backbone: a resnet10 body that learnt creatures' cues, never their breeds (notebook 05).

No ImageNet weights can be downloaded offline, yet the tiny profile must still show transfer learning. So the
course ships its own pretrained body, learnt on a SOURCE task that shares the pets' visual vocabulary but not
their labels: pictures of creatures whose five cues (coat colour, coat pattern, ears, body, tail; see
``helpers.creatures``) are drawn independently at random, 360 combinations, most of which are no breed at all.
The network learns to name each cue. It never sees a breed label, so fine-tuning on the tiny pets is honest
transfer: the body knows what stripes, floppy ears and a long body look like, and the pets task is left to
learn which combination of them makes a Bengal.

``python -m helpers.backbone`` draws 2048 source pictures from a fixed seed, pretrains for 700 steps of 32
(12 minutes on the development machine's 2 vCPUs while other jobs shared them), and rewrites the
committed weights and checksum in ``helpers/assets``; ``load_backbone_state`` verifies that checksum.
Training on the CPU with a fixed seed and one thread is deterministic: on the development machine (torch
2.14.1) the command rebuilt the committed file byte for byte. Another torch version or CPU may round differently.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from helpers.augment import BatchAugment, PresizeCrop
from helpers.creatures import CUES, N_VALUES, draw_scene
from helpers.models import create_cnn
from helpers.offline_weights import (  # re-exported: callers import these names from helpers.backbone
    CHECKSUM_FILE,  # noqa: F401
    WEIGHTS_FILE,
    file_sha256,  # noqa: F401
    load_backbone_state,  # noqa: F401
    save_backbone,
)
from helpers.outputs import writable_or_exit

IMAGE_SIZE = 64      # the tiny profile's model input, so the features are learnt at the scale they are used
POOL_PRESIZE = 96    # source pictures are stored presized, and cropped/augmented per batch like the pets
# The course normalises inputs with ImageNet's statistics everywhere; pretraining does the same.
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
# Fixed: the sums inside convolutions then run in one order on any machine (and one thread shares a busy CPU best).
THREADS = 1


# --- the source task ----------------------------------------------------------------------------------
def random_cues(n: int, seed: int) -> torch.Tensor:
    """``n`` random creatures' cues ``(n, 5)``, each uniform and independent (python -m helpers.backbone; notebook 05).

    Each cue is uniform over its values and independent of the others.
    """
    rng = np.random.default_rng([seed, 1])
    return torch.from_numpy(np.stack([rng.integers(0, k, size=n) for k in N_VALUES], axis=1)).long()


def make_source_pool(n: int, seed: int, presize: int = POOL_PRESIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` source pictures, uint8 ``(n, 3, presize, presize)``, and their cues ``(n, 5)`` (notebook 05).

    Each is a whole scene (clutter, noise, one creature) of a random size, square-cropped and presized as the
    pets are, so the creature sits at the scale the tiny profile trains at.
    """
    cues = random_cues(n, seed)
    crop = PresizeCrop(presize, train=False)
    images = torch.empty(n, 3, presize, presize, dtype=torch.uint8)
    for i in range(n):
        rng = np.random.default_rng([seed, 2, i])
        width, height = (int(v) for v in rng.integers(110, 171, size=2))
        picture, _ = draw_scene(tuple(cues[i].tolist()), rng, width, height)
        images[i] = torch.from_numpy(np.asarray(crop(picture)).copy()).permute(2, 0, 1)
    return images, cues


def make_source_batch(n: int, seed: int, size: int = IMAGE_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` source pictures in [0, 1] ``(n, 3, size, size)`` and their cues ``(n, 5)``, to look at (notebook 05)."""
    images, cues = make_source_pool(n, seed)
    augment = BatchAugment(size=size).eval()
    return augment.decode(augment(images)), cues


def cue_losses(logits: torch.Tensor, cues: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed cross-entropy over the five cues, and the accuracy on each cue (notebook 05)."""
    loss, accuracies = logits.new_zeros(()), []
    for chunk, target in zip(logits.split(N_VALUES, dim=1), cues.unbind(dim=1)):
        loss = loss + F.cross_entropy(chunk, target)
        accuracies.append((chunk.argmax(dim=1) == target).float().mean())
    return loss, torch.stack(accuracies)


# --- training ---------------------------------------------------------------------------------------
def pretrain(steps: int = 700, batch_size: int = 32, lr: float = 5e-3, seed: int = 0, pool_size: int = 2048,
             log_every: int = 25, valid_size: int = 512) -> tuple[nn.Module, dict]:
    """Train a resnet10 to name random creatures' five cues (python -m helpers.backbone; notebook 05).

    Returns its body and the validation accuracies.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        torch.manual_seed(seed)
        start = time.perf_counter()
        pool_x, pool_y = make_source_pool(pool_size, seed)
        valid_x, valid_y = make_source_pool(valid_size, seed + 10**6)  # creatures the training never sees
        print(f"drew {pool_size} + {valid_size} source pictures in {time.perf_counter() - start:.0f}s", flush=True)
        model = create_cnn("resnet10", n_out=sum(N_VALUES), weights=None)
        augment = BatchAugment(size=IMAGE_SIZE)  # the pets' own augmentation: crops, turns, zoom, warp, lighting
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, eps=1e-5)
        schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.25)
        order = torch.Generator().manual_seed(seed)
        draws = torch.Generator().manual_seed(seed + 1)
        model.train()
        for step in range(steps):
            index = torch.randint(pool_size, (batch_size,), generator=order)
            x = augment.transform(pool_x[index], augment.make_params(pool_x[index], generator=draws))
            loss, accuracies = cue_losses(model(x), pool_y[index])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
            if (step + 1) % log_every == 0 or step + 1 == steps:
                print(f"step {step + 1}/{steps}  loss {loss.item():.3f}  train accuracy "
                      f"{dict(zip(CUES, [round(a, 2) for a in accuracies.tolist()]))}  "
                      f"{time.perf_counter() - start:.0f}s", flush=True)
        model.eval()
        with torch.no_grad():
            _, accuracies = cue_losses(model(augment.eval()(valid_x)), valid_y)
        report = dict(zip(CUES, accuracies.tolist()))
        print(f"validation accuracy: { {k: round(v, 3) for k, v in report.items()} }", flush=True)
        return model[0], report
    finally:
        torch.set_num_threads(threads)


def main(argv: list[str] | None = None) -> None:
    """Command line: retrain the offline backbone and rewrite helpers/assets (notebook 05)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=700)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--pool-size", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=WEIGHTS_FILE)
    args = parser.parse_args(argv)
    if args.out.is_dir():
        parser.error(f"--out names the weights file to write (e.g. resnet10_creatures.pth), but {args.out} is a "
                     "folder.")
    writable_or_exit(args.out.parent, parser)  # now, not after minutes of pretraining
    body, _ = pretrain(args.steps, args.batch_size, args.lr, args.seed, args.pool_size)
    digest = save_backbone(body, args.out, args.out.with_suffix(".sha256"))
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB), sha256 {digest}")


if __name__ == "__main__":
    main()
