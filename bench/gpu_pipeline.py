"""Training images per second of the full profile, by where the pictures are decoded, beside the model's ceiling.

    python bench/gpu_pipeline.py --cores 2 --workers 2          # a host like a free Colab runtime: 2 cores
    python bench/gpu_pipeline.py                                # every core (8 workers at most)
    python bench/gpu_pipeline.py --device cpu --per-breed 2 --size 64 --presize 128 --epochs 1   # a check here

One process trains the full profile's model (resnet34, 224-pixel crops of 460-pixel presized pictures, batches
of 64, BatchAugment on the device) on stand-in pets at the real sizes (``tests/fullprofile/standins.py``: about
500x375 JPEGs, with the real set's grey-scale and CMYK files), once per way of feeding it:

* ``pil``: today's path before this module: each worker opens the picture with PIL and presizes it (``PresizeCrop``);
* ``workers``: each worker decodes with torchvision.io and presizes with torch (``decode="workers"``);
* ``device``: workers read bytes; each batch is decoded by nvJPEG and presized on the GPU (``decode="device"``);
* ``resident``: one presized batch kept on the device and fed again and again: no loading at all, the ceiling.

Each row trains one warm-up epoch (worker start-up, cuDNN's autotuning) and then ``--epochs`` timed epochs with
the body frozen and as many unfrozen, and reports its best epoch per phase; validation is skipped (it is not
what is measured). The ratio column divides by the ``pil`` row of the same run, and ``of ceiling`` by ``resident``.
Random weights: the speed of a step does not depend on what the weights are.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the stand-ins live with the tests that use them

from helpers.callbacks import Callback, CancelValidException  # noqa: E402
from helpers.data import pets_dataloaders, pets_tiny  # noqa: E402
from helpers.learner import Learner  # noqa: E402
from helpers.models import create_cnn, resnet_split  # noqa: E402
from helpers.outputs import writable_or_exit, written_whole  # noqa: E402

PATHS = ("pil", "workers", "device", "resident")


class TrainTimer(Callback):
    """Times each epoch's training pass (waiting for the GPU at both ends) and skips validation."""

    def __init__(self):
        self.epochs: list[tuple[int, float]] = []

    def _sync(self) -> None:
        if self.learn.device.type == "cuda":
            torch.cuda.synchronize(self.learn.device)

    def before_train(self) -> None:
        self._sync()
        self.start, self.images = time.perf_counter(), 0

    def after_batch(self) -> None:
        if self.learn.training:
            self.images += len(self.learn.yb[0])

    def after_train(self) -> None:
        self._sync()
        self.epochs.append((self.images, time.perf_counter() - self.start))

    def before_validate(self) -> None:
        raise CancelValidException


class ResidentLoader:
    """One batch kept on the device, yielded ``length`` times: training with no input pipeline at all."""

    def __init__(self, batch: tuple[torch.Tensor, torch.Tensor], length: int, dataset):
        self.batch, self.length, self.dataset = batch, length, dataset

    def __iter__(self):
        return (self.batch for _ in range(self.length))

    def __len__(self) -> int:
        return self.length


def standin_images(folder: Path, per_breed: int) -> Path:
    """Stand-in pets at the real sizes, extracted: the folder of images (built once per ``folder``)."""
    from fullprofile.standins import make_pets_archive

    images = folder / "extracted" / "oxford-iiit-pet" / "images"
    if images.is_dir():
        return images
    archive = make_pets_archive(folder / "mirror", pets_tiny(folder / "tiny"), per_breed=per_breed)
    with tarfile.open(archive) as tar:
        tar.extractall(folder / "extracted", filter="data")
    return folder / "extracted" / "oxford-iiit-pet" / "images"


def psnr_against_pil(images: Path, device: torch.device, presize: int) -> dict:
    """How far the presized pictures of the decoded path are from PIL's, in dB: centre squares, every readable file."""
    from torchvision.transforms.functional import pil_to_tensor

    from helpers.augment import PresizeCrop
    from helpers.decoding import decode_images, presize_images, read_encoded
    from helpers.images import open_rgb, why_unreadable
    from helpers.labelling import get_image_files

    values = []
    for file in get_image_files(images):
        if why_unreadable(file) is None:
            reference = pil_to_tensor(PresizeCrop(presize, train=False)(open_rgb(file))).float()
            ours = presize_images(decode_images([read_encoded(file)], device), presize, train=False)[0].cpu().float()
            mse = float(((reference - ours) ** 2).mean())
            values.append(99.0 if mse == 0 else 10 * torch.log10(torch.tensor(255.0 ** 2 / mse)).item())
    values.sort()
    return {"pictures": len(values), "min_db": round(values[0], 1), "median_db": round(values[len(values) // 2], 1)}


def measure(path: str, images: Path, args, device: torch.device) -> dict:
    """Train a warm-up epoch, then ``args.epochs`` frozen and unfrozen epochs; the best images/s of each phase."""
    decode = "device" if path == "resident" else path
    dls = pets_dataloaders(images, presize=args.presize, size=args.size, batch_size=args.batch_size,
                           num_workers=args.workers, decode=decode, device=device)
    if path == "resident":
        xb, yb = next(iter(dls.train))
        dls.train = ResidentLoader((xb.to(device), yb.to(device)), len(dls.train), dls.train.dataset)
    torch.manual_seed(0)
    model = create_cnn(args.arch, n_out=len(dls.vocab), weights=None)
    learn = Learner(dls, model, splitter=resnet_split, precision=args.precision,
                    channels_last=args.channels_last, device=device, quiet=True)
    timer = TrainTimer()
    learn.freeze()
    learn.fit(1 + args.epochs, 1e-3, cbs=[timer])  # the first epoch warms up
    frozen = timer.epochs[1:]
    timer.epochs = []
    learn.unfreeze()
    learn.fit(1 + args.epochs, 1e-4, cbs=[timer])
    unfrozen = timer.epochs[1:]
    train_images = len(dls.train.dataset)
    best = {phase: max(n / s for n, s in runs) for phase, runs in (("frozen", frozen), ("unfrozen", unfrozen))}
    return {"path": path, **{f"{k}_images_per_second": round(v, 1) for k, v in best.items()},
            "train_images": train_images}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--paths", default=",".join(PATHS), help=f"comma-separated, from {', '.join(PATHS)}")
    parser.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: min(8, cores))")
    parser.add_argument("--cores", type=int, default=None,
                        help="run on the first N CPU cores only, workers included (as taskset -c 0,...,N-1 does)")
    parser.add_argument("--per-breed", type=int, default=40, help="stand-in pictures per breed (at most 41)")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per phase, after one warm-up")
    parser.add_argument("--arch", default="resnet34")
    parser.add_argument("--precision", default="fp16")
    parser.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--presize", type=int, default=460)
    parser.add_argument("--json", type=Path, default=None, help="also write the rows and the machine here")
    parser.add_argument("--images", type=Path, default=None, help="build the stand-ins here once and reuse them")
    parser.add_argument("--psnr", action="store_true", help="first compare the decoded path's pictures with PIL's")
    args = parser.parse_args(argv)
    paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    if any(p not in PATHS for p in paths):
        parser.error(f"--paths takes {', '.join(PATHS)}; got {args.paths!r}.")
    if args.json:
        writable_or_exit(args.json.parent, parser, "--json")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda was asked for, but CUDA is not available here (use --device cpu for a check).")
    if args.cores:  # before any worker starts: they inherit it
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:args.cores])
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    torch.set_num_threads(cores)
    args.workers = min(8, cores) if args.workers is None else args.workers

    with tempfile.TemporaryDirectory() as folder:
        images = standin_images(args.images or Path(folder), args.per_breed)
        quality = psnr_against_pil(images, device, args.presize) if args.psnr else None
        if quality:
            print(f"decoded on {device.type} and presized with torch, against PIL's PresizeCrop: PSNR "
                  f"{quality['min_db']} dB at worst, {quality['median_db']} dB median, over {quality['pictures']} "
                  "pictures", flush=True)
        rows = [measure(path, images, args, device) for path in paths]

    machine = {"cores": cores, "workers": args.workers, "python": platform.python_version(),
               "torch": torch.__version__, "device": torch.cuda.get_device_name(device) if device.type == "cuda"
               else platform.processor() or platform.machine(), "arch": args.arch, "precision": args.precision,
               "channels_last": args.channels_last, "batch_size": args.batch_size}
    print(f"{rows[0]['train_images']} stand-in training pictures (~500x375) -> {args.size}px, {args.arch} "
          f"{args.precision}{' channels-last' if args.channels_last else ''}, batch {args.batch_size}; "
          f"{cores} CPU cores, {args.workers} workers; {machine['device']}; torch {torch.__version__}")
    base = {phase: next((r[f"{phase}_images_per_second"] for r in rows if r["path"] == "pil"), None)
            for phase in ("frozen", "unfrozen")}
    ceiling = {phase: next((r[f"{phase}_images_per_second"] for r in rows if r["path"] == "resident"), None)
               for phase in ("frozen", "unfrozen")}
    print(f"{'path':<9} {'phase':<9} {'images/s':>9} {'vs pil':>7} {'of ceiling':>10}")
    for row in rows:
        for phase in ("frozen", "unfrozen"):
            speed = row[f"{phase}_images_per_second"]
            ratio = f"{speed / base[phase]:.2f}x" if base[phase] else "-"
            share = f"{speed / ceiling[phase]:.0%}" if ceiling[phase] else "-"
            print(f"{row['path']:<9} {phase:<9} {speed:9.0f} {ratio:>7} {share:>10}")
    if args.json:
        with written_whole(args.json) as temporary:
            temporary.write_text(json.dumps({"machine": machine, "psnr_against_pil": quality, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
