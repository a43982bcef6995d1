"""``python -m helpers.train``: the chapter's recipes as one command, in one process or several (notebooks 05 and 06).

    python -m helpers.train --profile tiny --epochs 1          # a minute on a laptop CPU
    python -m helpers.train --profile full                     # resnet34, fine_tune(2): the book's first model
    python -m helpers.train --profile full --recipe manual     # 3 frozen epochs, then 12 with discriminative rates
    python -m helpers.train --profile full --arch resnet50 --precision fp16 --freeze-epochs 3 --epochs 6
    torchrun --nproc_per_node=4 -m helpers.train --profile full    # the same recipe on 4 GPUs

It builds the pets DataLoaders and a ``create_cnn`` model the way notebooks 05 and 06 do, trains them with the
Learner (which prints its usual epoch table), and writes two files into ``--out``: ``metrics.json`` (what was run
and what came out) and ``model.pth`` (the final ``state_dict``). ``--out`` is checked first: a folder that cannot
be written is refused in seconds, not after the training. Each file is written under a temporary name and renamed
when complete, so an interrupted run (Ctrl-C, or a kill) never leaves a half-written result under a final name.

With several processes (``torchrun``) the model is wrapped in ``DistributedDataParallel``; each process trains on
its own part of every batch (a ``DistributedSampler``), and the choices that matter are spelled out in
``helpers.distributed``, where they are made, and in ``metrics.json``: the batch size is the *global* one, batch
normalisation uses per-process statistics, and validation is sharded, gathered and scored once over the whole
validation set.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import hashlib
import io
import json
import math
import os
import platform
import shlex
import signal
import sys
import textwrap
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.distributed as dist
from torch import nn

from helpers.callbacks import Callback, CancelTrainException
from helpers.device import set_seed
from helpers.distributed import (DistInfo, DistributedTraining, broadcast_value, distributed_loaders,
                                  setup_distributed, state_sha256)
from helpers.outputs import (OutputNotWritableError, ensure_option_folder, refuse, sweep_temporary_files,
                             temporary_sibling)
from helpers.profiles import PROFILES, Profile, get_profile

METRICS_FILE = "metrics.json"
WEIGHTS_FILE = "model.pth"
PRECISIONS = ("fp32", "fp16", "bf16")


# --- the recipes ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Recipe:
    """One of the chapter's training recipes and its default epochs and learning rates (notebook 05).

    ``lr`` is the rate ``--lr`` replaces: fine_tune's ``base_lr``, one_cycle's ``lr_max``, and the frozen
    phase's rate in the manual recipe, whose unfrozen phase uses ``unfrozen_lrs`` (a slice across the groups).
    """

    freeze_epochs: int
    epochs: int
    lr: float
    unfrozen_lrs: tuple[float, float] | None = None
    call: str = ""  # the Learner calls it makes, as a notebook would write them


# The full profile holds the book's calls; the tiny one holds notebook 05's values, scaled down so that a laptop
# CPU trains the offline resnet10 in about a minute.
RECIPES: dict[str, dict[str, Recipe]] = {
    "full": {
        "fine_tune": Recipe(freeze_epochs=1, epochs=2, lr=2e-3, call="learn.fine_tune(2)"),
        "one_cycle": Recipe(freeze_epochs=0, epochs=3, lr=3e-3, call="learn.fit_one_cycle(3, 3e-3)"),
        "manual": Recipe(freeze_epochs=3, epochs=12, lr=3e-3, unfrozen_lrs=(1e-6, 1e-4),
                         call="learn.fit_one_cycle(3, 3e-3); learn.unfreeze(); "
                              "learn.fit_one_cycle(12, lr_max=slice(1e-6, 1e-4))"),
    },
    "tiny": {
        "fine_tune": Recipe(freeze_epochs=1, epochs=5, lr=1e-2, call="learn.fine_tune(5, base_lr=1e-2)"),
        "one_cycle": Recipe(freeze_epochs=0, epochs=3, lr=1e-2, call="learn.fit_one_cycle(3, 1e-2)"),
        "manual": Recipe(freeze_epochs=2, epochs=3, lr=1e-2, unfrozen_lrs=(1e-4, 5e-3),
                         call="learn.fit_one_cycle(2, 1e-2); learn.unfreeze(); "
                              "learn.fit_one_cycle(3, lr_max=slice(1e-4, 5e-3))"),
    },
}
RECIPE_HELP = {
    "fine_tune": "freeze the body, one cycle on the head for --freeze-epochs, unfreeze, then --epochs cycles "
                 "with rates from lr/200 (first group) to lr/2 (head): fastai's fine_tune",
    "one_cycle": "fit_one_cycle(--epochs, lr) on the model as vision_learner leaves it: the head (and the "
                 "BatchNorm layers) only when the body is pretrained, every layer with --weights none",
    "manual": "the chapter's own two steps: fit_one_cycle(--freeze-epochs, lr) frozen, unfreeze, then "
              "fit_one_cycle(--epochs, slice(*--unfrozen-lrs)): discriminative learning rates",
}


def recipe_for(profile: Profile | str, name: str) -> Recipe:
    """The default epochs and rates of recipe ``name`` in a profile (notebook 05)."""
    profile_name = profile if isinstance(profile, str) else profile.name
    if name not in RECIPES[profile_name]:
        raise ValueError(f"unknown recipe {name!r}: choose one of {', '.join(RECIPES[profile_name])}.")
    return RECIPES[profile_name][name]


# --- the command line -----------------------------------------------------------------------------

def _learning_rate(text: str) -> float | str:
    if text.strip().lower() == "find":
        return "find"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a learning rate: give a number such as 2e-3, or "
                                         "'find' to use the learning-rate finder's valley.") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"a learning rate must be a positive number, got {text}.")
    return value


def _rate_range(text: str) -> tuple[float, float]:
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give two rates separated by a comma, e.g. 1e-6,1e-4 "
                                         "(first group, last group).") from None
    if not 0 < low <= high:
        raise argparse.ArgumentTypeError(f"{text!r}: need 0 < first rate <= last rate.")
    return low, high


def _whole_number_from(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number.") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}.")
        return value
    return parse


_positive_int, _non_negative_int = _whole_number_from(1), _whole_number_from(0)


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m helpers.train`` command line; every default left as None comes from the profile or recipe."""
    recipes = "\n".join(textwrap.fill(RECIPE_HELP[name], 100, initial_indent=f"  {name:<11}",
                                       subsequent_indent=" " * 13) for name in RECIPES["full"])
    defaults = "\n".join(
        f"  {profile:<5} {name:<10} freeze-epochs {r.freeze_epochs}, epochs {r.epochs}, lr {r.lr:g}"
        + (f", unfrozen-lrs {r.unfrozen_lrs[0]:g},{r.unfrozen_lrs[1]:g}" if r.unfrozen_lrs else "")
        + f"\n{'':19}call: {r.call}"
        for profile in RECIPES for name, r in RECIPES[profile].items())
    parser = argparse.ArgumentParser(
        prog="python -m helpers.train",
        description="Train a pets classifier with one of the chapter's recipes and write metrics.json and "
                    "model.pth. Run it with torchrun to use several GPUs (or CPU processes).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"recipes:\n{recipes}\n\nrecipe defaults per profile:\n{defaults}\n\n"
               "examples:\n"
               "  python -m helpers.train --profile tiny --epochs 1\n"
               "  python -m helpers.train --profile full                      # resnet34 fine_tune(2)\n"
               "  python -m helpers.train --profile full --recipe manual\n"
               "  python -m helpers.train --profile full --arch resnet50 --precision fp16 --freeze-epochs 3 "
               "--epochs 6\n"
               "  torchrun --nproc_per_node=4 -m helpers.train --profile full --channels-last\n\n"
               "several processes: --batch-size is the global batch, split evenly between the processes, so "
               "the recipe's learning rates, steps per epoch and schedule stay those of one process.")
    parser.add_argument("--profile", choices=sorted(PROFILES), default=None,
                        help="tiny: the synthetic pets and the offline resnet10, sized for a CPU; full: the real "
                             "Oxford-IIIT Pet (downloaded once) and ImageNet weights, for a GPU "
                             "(default: $COURSE_PROFILE, else tiny)")
    parser.add_argument("--recipe", choices=list(RECIPES["full"]), default="fine_tune",
                        help="which of the chapter's training recipes to run (default: fine_tune; see below)")
    parser.add_argument("--arch", default=None,
                        help="resnet10 (tiny only), resnet18, resnet34, resnet50, resnet101 or resnet152 "
                             "(default: the profile's, resnet10 tiny / resnet34 full)")
    parser.add_argument("--weights", choices=("imagenet", "offline", "none"), default=None,
                        help="pretrained body: imagenet (torchvision's download), offline (the committed "
                             "resnet10 backbone) or none (random) (default: the profile's)")
    parser.add_argument("--epochs", type=_positive_int, default=None,
                        help="epochs with every layer training (fine_tune, manual) or the epochs of the one "
                             "cycle (one_cycle) (default: the recipe's)")
    parser.add_argument("--freeze-epochs", type=_non_negative_int, default=None,
                        help="epochs with the body frozen before unfreezing (fine_tune, manual) "
                             "(default: the recipe's)")
    parser.add_argument("--lr", type=_learning_rate, default=None,
                        help="fine_tune's base_lr, one_cycle's lr_max or the manual recipe's frozen rate; a "
                             "number, or 'find' for the learning-rate finder's valley on the model as the recipe "
                             "starts it (default: the recipe's)")
    parser.add_argument("--unfrozen-lrs", type=_rate_range, default=None, metavar="FIRST,LAST",
                        help="manual recipe: the rates of the first and last parameter group after unfreezing "
                             "(default: the recipe's, 1e-6,1e-4 in the full profile)")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="fp32, or mixed precision: fp16 (loss scaling; for GPUs) or bf16 (GPUs from Ampere "
                             "on, CPUs with bfloat16 instructions) (default: fp32)")
    parser.add_argument("--channels-last", action="store_true",
                        help="store images and weights channels-last (NHWC): faster convolutions on GPU tensor cores")
    parser.add_argument("--batch-size", type=_positive_int, default=None,
                        help="images per optimiser step over all processes; each of N processes takes "
                             "batch-size/N (default: the profile's, 64 full / 32 tiny)")
    parser.add_argument("--seed", type=int, default=42, help="seed of the split, the model's head and the shuffling "
                                                               "(default: 42, as in the notebooks)")
    parser.add_argument("--num-workers", type=_non_negative_int, default=None,
                        help="DataLoader worker processes per training process (default: the profile's, shared "
                             "out between the processes torchrun starts on one machine)")
    parser.add_argument("--decode", choices=("device", "workers", "pil"), default=None,
                        help="full profile: where pictures are decoded and presized: device (workers read bytes, "
                             "the GPU decodes each batch), workers (torchvision.io in the workers) or pil "
                             "(the book's PIL PresizeCrop) (default: device on CUDA, workers elsewhere)")
    parser.add_argument("--device", choices=("cpu", "cuda", "mps"), default=None,
                        help="where to train (default: $COURSE_DEVICE, else cuda, mps, cpu in that order); "
                             "with torchrun each process takes the GPU numbered by its LOCAL_RANK")
    parser.add_argument("--max-train-batches", type=_positive_int, default=None, metavar="N",
                        help="smoke tests only: end each training epoch after N batches (the schedule still "
                             "counts whole epochs); validation always covers the whole validation set")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for metrics.json and model.pth (default: artifacts/train-PROFILE-RECIPE-ARCH)")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line and fill every default that depends on the profile and the recipe."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        profile = get_profile(args.profile)
    except ValueError as error:  # a bad $COURSE_PROFILE
        parser.error(str(error))
    args.profile = profile.name
    recipe = recipe_for(profile, args.recipe)
    args.arch = args.arch or profile.arch
    if args.weights is None:
        args.weights = profile.weights if (args.arch == profile.arch or profile.weights != "offline") else "imagenet"
    if args.epochs is None:
        args.epochs = recipe.epochs
    if args.freeze_epochs is None:
        args.freeze_epochs = recipe.freeze_epochs
    if args.lr is None:
        args.lr = recipe.lr
    if args.unfrozen_lrs is None:
        args.unfrozen_lrs = recipe.unfrozen_lrs
    if args.batch_size is None:
        args.batch_size = profile.batch_size
    if args.num_workers is None:
        # The profile's workers are for one process; torchrun's N processes on one machine share its cores.
        local_processes = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        args.num_workers = (profile.num_workers if local_processes <= 1 or profile.num_workers == 0 else
                            max(1, min(profile.num_workers, (os.cpu_count() or 1) // local_processes)))
    if args.out is None:
        args.out = Path("artifacts") / f"train-{args.profile}-{args.recipe}-{args.arch}"
    if args.recipe == "one_cycle" and args.freeze_epochs:
        parser.error("--freeze-epochs belongs to fine_tune and manual; one_cycle trains the model as it is "
                     "(frozen when pretrained). Use --recipe manual for frozen epochs followed by unfrozen ones.")
    if args.recipe != "manual" and args.unfrozen_lrs is not None:
        parser.error("--unfrozen-lrs belongs to the manual recipe (fine_tune derives its rates from --lr).")
    if args.recipe in ("fine_tune", "manual") and args.freeze_epochs == 0:
        parser.error(f"{args.recipe} starts with frozen epochs: give --freeze-epochs 1 or more, or use "
                     "--recipe one_cycle to train without a frozen phase.")
    from helpers.models import ARCHS  # imported here: --help should not wait for torchvision
    if args.arch not in ARCHS:
        parser.error(f"unknown --arch {args.arch!r}: choose one of {', '.join(ARCHS)}.")
    if args.arch == "resnet10" and args.weights == "imagenet":
        parser.error("resnet10 has no ImageNet weights: use --weights offline (tiny profile) or none, or an "
                     "--arch from resnet18 up.")
    if args.weights == "offline" and args.arch != "resnet10":
        parser.error(f"the offline backbone exists for resnet10 only, not {args.arch}: use --weights imagenet "
                     "(needs internet once) or none.")
    return args


# --- writing files that are never half-written ----------------------------------------------------

@contextlib.contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) and SIGTERM until the block ends, so a group of renames happens entirely or not at all."""
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks; the window is two renames long
        yield
        return
    held = {signal.SIGINT, signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class Terminated(KeyboardInterrupt):
    """SIGTERM (what torchrun sends its workers when one fails or is interrupted), raised like Ctrl-C."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated(f"signal {signum}")


# --- what a run records ---------------------------------------------------------------------------

def versions() -> dict[str, str | None]:
    """The versions that decide the numbers: Python, torch (with CUDA/cuDNN), torchvision, numpy, helpers."""
    import numpy
    import torchvision

    import helpers

    return {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "numpy": numpy.__version__, "helpers": helpers.__version__, "cuda": torch.version.cuda,
            "cudnn": str(torch.backends.cudnn.version()) if torch.backends.cudnn.is_available() else None,
            "platform": platform.platform()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def command_line(argv: Sequence[str], info: DistInfo) -> str:
    """The command that reproduces this run, torchrun included when there were several processes."""
    launcher = (f"torchrun --nproc_per_node={int(os.environ.get('LOCAL_WORLD_SIZE', info.world_size))} "
                if info.enabled else "python ")
    return launcher + "-m helpers.train " + " ".join(shlex.quote(a) for a in argv)


# --- a callback: what each epoch did ---------------------------------------------------------------------------------------------------

class EpochLog(Callback):
    """Records each epoch for metrics.json: phase, losses, error rate, training time and images per second."""

    order = 60  # after the Recorder (50) has added the epoch's row

    def __init__(self, world_size: int = 1, max_train_batches: int | None = None):
        self.world_size, self.max_train_batches = world_size, max_train_batches
        self.rows, self.valid_count = [], 0
        self.train_images, self.train_seconds = 0, 0.0

    def _sync(self) -> None:
        if self.learn.device.type == "cuda":  # GPU work is queued: wait for it before reading the clock
            torch.cuda.synchronize(self.learn.device)

    def before_fit(self) -> None:
        model = getattr(self.learn.model, "module", self.learn.model)
        self.phase = "unfrozen" if all(p.requires_grad for p in model.parameters()) else "frozen"
        self.rows_before = len(self.learn.recorder.values)

    def before_epoch(self) -> None:
        self.epoch_start, self.epoch_images, self.epoch_valid = time.perf_counter(), 0, 0

    def before_train(self) -> None:
        self._sync()
        self.train_start = time.perf_counter()

    def before_batch(self) -> None:
        # --max-train-batches: a smoke test's short epoch; validation still sees every item.
        if self.learn.training and self.max_train_batches is not None and self.learn.iter >= self.max_train_batches:
            raise CancelTrainException

    def after_batch(self) -> None:
        if self.learn.training:
            self.epoch_images += len(self.learn.yb[0]) * self.world_size
        else:
            self.epoch_valid += len(self.learn.yb[0])

    def after_train(self) -> None:
        self._sync()
        self.epoch_train_seconds = time.perf_counter() - self.train_start

    def after_epoch(self) -> None:
        values = self.learn.recorder.values
        if len(values) <= self.rows_before:
            return  # no validation this epoch (the LR finder): nothing to record
        self.rows_before = len(values)
        row = {k: v for k, v in values[-1].items() if k not in ("epoch", "time", "batches")}
        self.train_images += self.epoch_images
        self.train_seconds += self.epoch_train_seconds
        self.valid_count = self.epoch_valid
        self.rows.append({"epoch": len(self.rows), "phase": self.phase, **row,
                          "seconds": round(time.perf_counter() - self.epoch_start, 3),
                          "train_seconds": round(self.epoch_train_seconds, 3),
                          "images_per_second": round(self.epoch_images / max(self.epoch_train_seconds, 1e-9), 2)})


# --- the run --------------------------------------------------------------------------------------

def _say(info: DistInfo, *parts: object) -> None:
    if info.is_main:
        print(*parts, flush=True)


def run(args: argparse.Namespace, argv: Sequence[str] = ()) -> dict:
    """Train one recipe as ``args`` says; rank 0 writes and returns the metrics (other ranks return them too)."""
    from helpers.data import pets_dataloaders, pets_path
    from helpers.learner import Learner
    from helpers.metrics import error_rate
    from helpers.models import create_cnn, resnet_split
    from helpers.precision import device_name

    started = time.time()
    info, device = setup_distributed(args.device)
    quiet_rank = contextlib.ExitStack()
    if not info.is_main:  # only rank 0 speaks; errors (stderr) still show on every rank
        quiet_rank.enter_context(contextlib.redirect_stdout(io.StringIO()))
        quiet_rank.enter_context(warnings.catch_warnings())
        warnings.simplefilter("ignore")
    try:
        _check_out(Path(args.out), info)  # in seconds, before the data and the training it would otherwise lose
        if args.batch_size % info.world_size:
            raise ValueError(f"--batch-size {args.batch_size} is the global batch and must split evenly between "
                             f"the {info.world_size} processes: use a multiple of {info.world_size}.")
        profile = get_profile(args.profile)
        # One process per machine fetches (or generates) the data; the others wait, then find it in the cache.
        if info.local_rank == 0:
            path = pets_path(profile)
        if info.enabled:
            dist.barrier()
        if info.local_rank != 0:
            path = pets_path(profile)

        set_seed(args.seed)
        dls = pets_dataloaders(path, presize=profile.presize, size=profile.size, batch_size=args.batch_size,
                               seed=args.seed, num_workers=args.num_workers, cache=profile.cache,
                               decode=args.decode, device=device)
        set_seed(args.seed)
        weights = None if args.weights == "none" else args.weights
        model = create_cnn(args.arch, n_out=len(dls.vocab), weights=weights)
        pretrained = weights is not None

        ddp_cb, train_dls = None, dls
        if info.enabled:
            train_dls, sampler = distributed_loaders(dls, args.batch_size, info, args.seed, args.num_workers)
            ddp_cb = DistributedTraining(info, device, sampler)
        log = EpochLog(info.world_size, args.max_train_batches)

        # DDP holds its own reference to the model, so a splitter sees the plain model through `.module`.
        def splitter(m: nn.Module) -> list:
            return resnet_split(getattr(m, "module", m))

        learn = Learner(train_dls, model, splitter=splitter, metrics=[error_rate], precision=args.precision,
                        channels_last=args.channels_last, device=device, quiet=not info.is_main)
        if args.recipe in ("fine_tune", "manual") or (args.recipe == "one_cycle" and pretrained):
            learn.freeze()  # fine_tune freezes itself too; the finder below must see the model as the recipe starts

        lr, found = args.lr, None
        if lr == "find":
            if info.is_main:
                # Rank 0 alone, on the whole training set at the global batch size: exactly the one-process
                # finder. The others wait in broadcast_value. lr_find puts the weights back when it is done.
                learn.dls = dls
                try:
                    found = float(learn.lr_find(show_plot=False)[0])
                finally:
                    learn.dls = train_dls
            found = lr = broadcast_value(found, info)
            _say(info, f"learning-rate finder: valley at {lr:.2e}")

        if info.enabled:
            set_seed(args.seed + info.rank)  # each rank its own augmentation draws
        per_process = args.batch_size // info.world_size
        _say(info, f"{args.recipe} of {args.arch} ({args.weights} weights), {args.profile} profile, {args.precision}"
                   f"{', channels-last' if args.channels_last else ''} on {device.type}; batch {args.batch_size}"
                   + (f" = {info.world_size} processes x {per_process} ({info.backend})" if info.enabled else "")
                   + f"; {len(dls.train.dataset)} training and {len(dls.valid.dataset)} validation images")

        # For the recipe's fits only: the finder above must run without them.
        cbs = [log] if ddp_cb is None else [ddp_cb, log]
        if args.recipe == "fine_tune":
            learn.fine_tune(args.epochs, base_lr=lr, freeze_epochs=args.freeze_epochs, cbs=cbs)
        elif args.recipe == "one_cycle":
            learn.fit_one_cycle(args.epochs, lr, cbs=cbs)
        else:  # manual
            learn.fit_one_cycle(args.freeze_epochs, lr, cbs=cbs)
            learn.unfreeze()
            learn.fit_one_cycle(args.epochs, slice(*args.unfrozen_lrs), cbs=cbs)

        digests = [state_sha256(learn.model)]
        if info.enabled:
            digests = [None] * info.world_size
            dist.all_gather_object(digests, state_sha256(learn.model))
            if len(set(digests)) != 1:
                raise RuntimeError(f"the ranks ended with different weights ({digests}); nothing was written. "
                                   "This is a bug in the distributed set-up: please report it.")
        valid_count = ddp_cb.valid_count if ddp_cb is not None else log.valid_count
        metrics = {
            "status": "complete",
            "command": command_line(argv, info),
            "args": {k: _jsonable(v) for k, v in vars(args).items()},
            "recipe": {"name": args.recipe, "call": recipe_for(profile, args.recipe).call,
                       "freeze_epochs": args.freeze_epochs if args.recipe != "one_cycle" else 0,
                       "epochs": args.epochs, "lr": lr, "lr_found": found,
                       "unfrozen_lrs": _jsonable(args.unfrozen_lrs), "pretrained": pretrained},
            "profile": dataclasses.asdict(profile),
            "epochs": log.rows,
            "final_error_rate": log.rows[-1]["error_rate"] if log.rows else None,
            "final_valid_loss": log.rows[-1]["valid_loss"] if log.rows else None,
            "valid_size": len(dls.valid.dataset),
            "valid_count": valid_count,
            "train_size": len(dls.train.dataset),
            "vocab": list(dls.vocab),
            "images_per_second": round(log.train_images / log.train_seconds, 2) if log.train_seconds else None,
            "train_seconds": round(log.train_seconds, 3),
            "world_size": info.world_size,
            "backend": info.backend,
            "device": str(device),
            "device_name": device_name(device),
            "batch_size": {"global": args.batch_size, "per_process": per_process},
            "learning_rate_rule": "none: --batch-size is the global batch, split between the processes, so each "
                                  "step averages the gradient of the same number of images whatever the process "
                                  "count, and the recipe's rates and schedule apply unchanged",
            "batchnorm": ("per-process batch statistics; running statistics averaged over the processes after "
                          "each epoch's training" if info.enabled else "one process"),
            "weights_file": WEIGHTS_FILE,
            "weights_sha256_per_rank": digests,
            "versions": versions(),
            "started_utc": datetime.datetime.fromtimestamp(started, datetime.timezone.utc).isoformat(timespec="seconds"),
            "seconds": round(time.time() - started, 1),
        }
        if info.is_main:
            write_results(Path(args.out), metrics, learn.model)
            _say(info, f"final error_rate {metrics['final_error_rate']:.4f} on {valid_count} validation images "
                       f"(of {metrics['valid_size']}); {metrics['images_per_second']} training images/s; "
                       f"wrote {Path(args.out) / METRICS_FILE} and {Path(args.out) / WEIGHTS_FILE}")
        if info.enabled:
            dist.barrier()  # nobody leaves (and tears down the group) before rank 0 has written
        return metrics
    finally:
        quiet_rank.close()
        if info.enabled and dist.is_initialized():
            dist.destroy_process_group()


def _check_out(out: Path, info: DistInfo) -> None:
    """Rank 0 makes sure ``--out`` can be written; if not, every rank raises the same error together."""
    problem = None
    if info.is_main:
        try:
            ensure_option_folder(out, "--out")
        except OutputNotWritableError as error:
            problem = str(error)
    problem = broadcast_value(problem, info)
    if problem is not None and info.enabled:
        # Every rank stops now. torchrun sends SIGTERM to the others once one has ended, which must neither cut
        # rank 0 off before it has said why nor give the others a traceback: let each end on its own.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if problem is not None:
        raise OutputNotWritableError(problem)


def write_results(out: Path, metrics: dict, model: nn.Module) -> None:
    """metrics.json and model.pth, each complete under a temporary name first, then both renamed together.

    metrics.json marks a finished pair: it is removed before model.pth is replaced and comes back last, so even
    a SIGKILL between the renames, which no handler can defer, never leaves metrics beside other weights.
    """
    out.mkdir(parents=True, exist_ok=True)
    for name in (WEIGHTS_FILE, METRICS_FILE):
        sweep_temporary_files(out / name)  # what a run killed during its own write left
    weights = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, weights)
    weights_bytes = weights.getvalue()
    metrics = {**metrics, "weights_sha256_file": hashlib.sha256(weights_bytes).hexdigest()}
    text = (json.dumps(metrics, indent=2) + "\n").encode()
    with temporary_sibling(out / WEIGHTS_FILE) as weights_tmp, temporary_sibling(out / METRICS_FILE) as metrics_tmp:
        for temporary, data in ((weights_tmp, weights_bytes), (metrics_tmp, text)):
            with open(temporary, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        # A Ctrl-C here waits until both renames are done: never new metrics beside old weights.
        with interrupts_deferred():
            (out / METRICS_FILE).unlink(missing_ok=True)
            os.replace(weights_tmp, out / WEIGHTS_FILE)
            os.replace(metrics_tmp, out / METRICS_FILE)


def _interrupt_behind(error: BaseException) -> KeyboardInterrupt | None:
    """The Ctrl-C (or SIGTERM) that ``error`` is, or that was being handled when ``error`` happened, if any."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, KeyboardInterrupt):
            return error
        seen.add(id(error))
        error = error.__context__
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m helpers.train``: parse, train, write; exit status 130 after Ctrl-C (nothing written)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    # torchrun stops its workers with SIGTERM: make that unwind like Ctrl-C, so temporary files are removed.
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        run(args, argv)
    except OutputNotWritableError as error:  # --out, or the data cache: one line, not a traceback
        if int(os.environ.get("RANK", "0")) == 0:
            refuse(error, "python -m helpers.train")
        return 2
    except BaseException as error:
        interrupt = _interrupt_behind(error)
        if interrupt is None:
            raise
        if int(os.environ.get("RANK", "0")) == 0:
            what = "terminated" if isinstance(interrupt, Terminated) else "interrupted"
            print(f"\n{what}: nothing was written to {args.out} (files already there, if any, are from an "
                  "earlier complete run).", file=sys.stderr, flush=True)
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


if __name__ == "__main__":
    sys.exit(main())
