"""Speed of presizing + one-grid batch augmentation vs the usual per-item torchvision v2 chain (notebook 02).

    python bench/augment.py                  # CPU (and CUDA when present), 256 pets-sized JPEGs, 3 epochs
    python bench/augment.py --device cuda    # only the GPU rows
    python bench/augment.py --quick          # a few-second smoke run (used by tests/test_augment.py)
    python bench/augment.py --json out.json  # also write the table: one record per row, with the numbers behind it

Every row starts from the same JPEG files on disk and ends with normalised float training tensors of the same
size, in batches, on the chosen device:

* per-item v2 chain: decode, RandomResizedCrop, flip, rotation, affine zoom, perspective, colour jitter, to tensor
  (each step interpolates again), through a DataLoader;
* presize + BatchAugment: decode, PresizeCrop to the presize (PIL), collate uint8, then BatchAugment on the device;
* decoded presize + BatchAugment: the full profile's item step on a CPU (``decode="workers"``): torchvision.io decodes,
  torch crops and resizes (``helpers.decoding``), the batch is collated channels-last, then BatchAugment;
* cached presize + BatchAugment: the presized images are kept between epochs (PresizeCache), so from the
  second epoch on only the square slice and the batch step remain;
* BatchAugment alone: the batch step on an already collated uint8 batch (what a GPU takes off the CPU).

The ratio column compares each row with the per-item chain measured in the same run on the same machine.
Epochs of the pipelines are interleaved and each row reports its fastest epoch (robust to a busy machine).
Each row's rate is its images over its seconds (the fastest epoch, or batch for the batch step alone).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers.augment import BatchAugment, PresizeCache, PresizeCrop, conventional_pipeline
from helpers.decoding import collate_channels_last, decode_images, presize_images, read_encoded
from helpers.outputs import writable_or_exit, written_whole


def make_jpegs(folder: Path, count: int, seed: int = 0) -> list[Path]:
    """Pets-sized JPEGs (about 500 x 375, a few portrait) cut from real photographs."""
    from skimage import data
    photos = [Image.fromarray(getattr(data, name)()) for name in ("astronaut", "coffee", "chelsea", "rocket")]
    rng = np.random.default_rng(seed)
    files = []
    for i in range(count):
        photo = photos[i % len(photos)]
        width, height = (500, 375) if i % 5 else (375, 500)
        scale = rng.uniform(0.6, 1.0)
        box_w, box_h = int(photo.width * scale), int(photo.height * scale)
        left, top = int(rng.integers(0, photo.width - box_w + 1)), int(rng.integers(0, photo.height - box_h + 1))
        path = folder / f"image_{i:04d}.jpg"
        photo.resize((width, height), Image.BILINEAR, box=(left, top, left + box_w, top + box_h)).save(path, quality=90)
        files.append(path)
    return files


class ChainDataset(Dataset):
    """The usual way: every item decoded and pushed through the whole v2 chain, every epoch."""

    def __init__(self, files: list[Path], size: int):
        self.files, self.pipeline = files, conventional_pipeline(size=size)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        return self.pipeline(Image.open(self.files[index]).convert("RGB")), 0


class PresizeDataset(Dataset):
    """Our item step: decode, square crop, resize to the presize; stays uint8."""

    def __init__(self, files: list[Path], presize: int):
        self.files, self.presize = files, PresizeCrop(presize, train=True)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        image = self.presize(Image.open(self.files[index]).convert("RGB"))
        return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1), 0


class DecodedPresizeDataset(Dataset):
    """The full profile's item step on a CPU: torchvision.io decodes, torch crops and resizes; stays uint8."""

    def __init__(self, files: list[Path], presize: int):
        self.files, self.presize = files, presize

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int):
        return presize_images(decode_images([read_encoded(self.files[index])]), self.presize, train=True)[0], 0


def time_epoch(loader: DataLoader, device: torch.device, augment: BatchAugment | None = None) -> float:
    """Seconds for one epoch, until the last batch is on the device and augmented."""
    start = time.perf_counter()
    for x, _ in loader:
        x = x.to(device, non_blocking=True)
        if augment is not None:
            x = augment(x)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def bench_device(device: torch.device, files: list[Path], args) -> list[dict]:
    n = len(files)
    loader_args = dict(batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
                       pin_memory=device.type == "cuda", drop_last=False)
    augment = BatchAugment(size=args.size).to(device).train()
    holder = {"length": n}
    loaders = {"per-item v2 chain": (DataLoader(ChainDataset(files, args.size), **loader_args), None),
               "presize + BatchAugment": (DataLoader(PresizeDataset(files, args.presize), **loader_args), augment),
               "decoded presize + BatchAugment": (DataLoader(DecodedPresizeDataset(files, args.presize),
                                                             collate_fn=collate_channels_last, **loader_args), augment),
               "cached presize + BatchAugment": (DataLoader(_LazyCache(holder), **loader_args), augment)}
    # Epochs of the three pipelines take turns, round after round, and each keeps its fastest epoch: on a
    # shared machine a burst of someone else's work then slows one round of everybody, not one pipeline.
    seconds = {name: [] for name in loaders}
    for round_ in range(args.epochs):
        for name in (list(loaders) if round_ % 2 == 0 else list(loaders)[::-1]):
            loader, step = loaders[name]
            if "cached" in name and round_ == 0:
                start = time.perf_counter()
                holder["cache"] = PresizeCache(files, presize=args.presize)
                first = time.perf_counter() - start + time_epoch(loader, device, step)
                continue
            seconds[name].append(time_epoch(loader, device, step))
    # (pipeline, when, images, seconds): the fastest epoch of each; building the cache is timed with its epoch.
    rows = [("per-item v2 chain", "every epoch", n, min(seconds["per-item v2 chain"])),
            ("presize + BatchAugment", "every epoch", n, min(seconds["presize + BatchAugment"])),
            ("decoded presize + BatchAugment", "every epoch", n, min(seconds["decoded presize + BatchAugment"])),
            ("cached presize + BatchAugment", "first epoch (builds cache)", n, first)]
    if seconds["cached presize + BatchAugment"]:
        rows.append(("cached presize + BatchAugment", "later epochs", n, min(seconds["cached presize + BatchAugment"])))

    batch = torch.stack([holder["cache"][i % n][0] for i in range(args.batch_size)]).to(device)
    steps = max(2, args.epochs * n // args.batch_size)
    augment(batch)  # warm-up (CUDA context, kernel selection)
    best = float("inf")
    for _ in range(steps):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        augment(batch)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    rows.append(("BatchAugment alone (uint8 batch in)", "per batch", args.batch_size, best))
    base = rows[0][2] / rows[0][3]
    return [{"device": str(device), "pipeline": p, "when": w, "images": images, "seconds": s,
             "images/s": images / s, "ratio": images / s / base} for p, w, images, s in rows]


class _LazyCache(Dataset):
    """Reads the PresizeCache built at the start of the first timed epoch, so that building it is timed."""

    def __init__(self, holder: dict):
        self.holder = holder

    def __len__(self) -> int:
        return self.holder["length"]

    def __getitem__(self, index: int):
        return self.holder["cache"][index]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", action="append",
                        help="cpu or cuda (repeatable); default: cpu, plus cuda if present")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--epochs", type=int, default=3, help="rounds; every pipeline runs one epoch per round")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--presize", type=int, default=460)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers (the same for every row)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads for the batch step (default: "
                                                                  "torch's)")
    parser.add_argument("--quick", action="store_true", help="tiny smoke run: 16 images, 2 epochs, 64 px from 128 px")
    parser.add_argument("--json", type=Path, default=None, help="also write the settings, machine and rows here")
    args = parser.parse_args(argv)
    if args.json:
        writable_or_exit(args.json.parent, parser, "--json")
    if args.quick:
        args.images, args.epochs, args.batch_size, args.size, args.presize = 16, 2, 8, 64, 128
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    for name in devices:
        if name.startswith("cuda") and not torch.cuda.is_available():
            parser.error("--device cuda was asked for, but CUDA is not available on this machine.")

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as folder:
        files = make_jpegs(Path(folder), args.images)
        rows = []
        for name in devices:
            rows += bench_device(torch.device(name), files, args)

    import pandas as pd
    machine = (f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
               f"{torch.get_num_threads()} threads")
    if any(name.startswith("cuda") for name in devices):
        machine += f", {torch.cuda.get_device_name()}"
    print(f"{args.images} JPEGs (~500x375) -> {args.size}px training tensors, batch {args.batch_size}, "
          f"presize {args.presize}, {args.epochs} epochs, {args.workers} workers; {machine}")
    table = pd.DataFrame(rows).drop(columns=["images", "seconds"])
    print(table.to_string(index=False, formatters={"images/s": "{:.0f}".format, "ratio": "{:.2f}x".format}))
    if args.json:
        settings = {key: getattr(args, key) for key in ("images", "epochs", "batch_size", "size", "presize", "workers")}
        with written_whole(args.json) as temporary:
            temporary.write_text(json.dumps({"machine": machine, "settings": settings, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
