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
import io
import os
import signal
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.distributed as dist
from torch import nn

from helpers.device import set_seed
from helpers.distributed import (
    DistInfo,
    DistributedTraining,
    broadcast_value,
    distributed_loaders,
    setup_distributed,
    state_sha256,
)
from helpers.outputs import OutputNotWritableError, ensure_option_folder, refuse
from helpers.profiles import Profile, get_profile
from helpers.run_record import METRICS_FILE, WEIGHTS_FILE, EpochLog, command_line, jsonable, versions, write_results
from helpers.short_run import ShortRun
from helpers.train_cli import parse_args, recipe_for

# --- stopping on a signal ------------------------------------------------------------------------

class Terminated(KeyboardInterrupt):
    """SIGTERM, sent by torchrun when a worker fails or is interrupted, raised like Ctrl-C (python -m helpers.train)."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated(f"signal {signum}")


# --- the run --------------------------------------------------------------------------------------

def _say(info: DistInfo, *parts: object) -> None:
    if info.is_main:
        print(*parts, flush=True)


def _loaders(args: argparse.Namespace, profile: Profile, info: DistInfo, device: torch.device):
    """The pets DataLoaders; one process per machine fetches (or generates) the data, the others find it cached."""
    from helpers.data import pets_dataloaders, pets_path

    if info.local_rank == 0:
        path = pets_path(profile)
    if info.enabled:
        dist.barrier()
    if info.local_rank != 0:
        path = pets_path(profile)
    set_seed(args.seed)
    return pets_dataloaders(path, presize=profile.presize, size=profile.size, batch_size=args.batch_size,
                            seed=args.seed, num_workers=args.num_workers, cache=profile.cache,
                            decode=args.decode, device=device)


def _learner(args: argparse.Namespace, dls, info: DistInfo, device: torch.device) -> SimpleNamespace:
    """The Learner as the recipe starts it, with the callbacks for the recipe's fits (DDP, the epoch log)."""
    from helpers.learner import Learner
    from helpers.metrics import error_rate
    from helpers.models import create_cnn, resnet_split

    set_seed(args.seed)
    weights = None if args.weights == "none" else args.weights
    model = create_cnn(args.arch, n_out=len(dls.vocab), weights=weights)
    ddp_cb, train_dls = None, dls
    if info.enabled:
        train_dls, sampler = distributed_loaders(dls, args.batch_size, info, args.seed, args.num_workers)
        ddp_cb = DistributedTraining(info, device, sampler)
    log = EpochLog(info.world_size)

    # DDP holds its own reference to the model, so a splitter sees the plain model through `.module`.
    def splitter(m: nn.Module) -> list:
        return resnet_split(getattr(m, "module", m))

    learn = Learner(train_dls, model, splitter=splitter, metrics=[error_rate], precision=args.precision,
                    channels_last=args.channels_last, device=device, quiet=not info.is_main)
    if args.recipe in ("fine_tune", "manual") or (args.recipe == "one_cycle" and weights is not None):
        learn.freeze()  # fine_tune freezes itself too; the finder must see the model as the recipe starts
    # For the recipe's fits only: the finder must run without them.
    cbs = [log] if ddp_cb is None else [ddp_cb, log]
    if args.max_train_batches is not None:  # a smoke test's short epochs; validation still sees every item
        cbs.append(ShortRun(args.max_train_batches, validation=False))
    return SimpleNamespace(learn=learn, dls=dls, train_dls=train_dls, ddp_cb=ddp_cb, log=log, cbs=cbs,
                           pretrained=weights is not None)


def _learning_rate(args: argparse.Namespace, run: SimpleNamespace, info: DistInfo) -> tuple[float, float | None]:
    """``--lr``, or with ``--lr find`` the finder's valley, found by rank 0 and shared with every rank."""
    if args.lr != "find":
        return args.lr, None
    found = None
    if info.is_main:
        # Rank 0 alone, on the whole training set at the global batch size: exactly the one-process
        # finder. The others wait in broadcast_value. lr_find puts the weights back when it is done.
        run.learn.dls = run.dls
        try:
            found = float(run.learn.lr_find(show_plot=False)[0])
        finally:
            run.learn.dls = run.train_dls
    found = broadcast_value(found, info)
    _say(info, f"learning-rate finder: valley at {found:.2e}")
    return found, found


def _train(args: argparse.Namespace, run: SimpleNamespace, lr: float) -> None:
    """The recipe's fits, as a notebook would call them."""
    learn, cbs = run.learn, run.cbs
    if args.recipe == "fine_tune":
        learn.fine_tune(args.epochs, base_lr=lr, freeze_epochs=args.freeze_epochs, cbs=cbs)
    elif args.recipe == "one_cycle":
        learn.fit_one_cycle(args.epochs, lr, cbs=cbs)
    else:  # manual
        learn.fit_one_cycle(args.freeze_epochs, lr, cbs=cbs)
        learn.unfreeze()
        learn.fit_one_cycle(args.epochs, slice(*args.unfrozen_lrs), cbs=cbs)


def _same_weights_everywhere(model: nn.Module, info: DistInfo) -> list[str]:
    """Each rank's weight digest; different digests are a bug, and then nothing is written."""
    digests = [state_sha256(model)]
    if info.enabled:
        digests = [None] * info.world_size
        dist.all_gather_object(digests, state_sha256(model))
        if len(set(digests)) != 1:
            raise RuntimeError(f"the ranks ended with different weights ({digests}); nothing was written. "
                               "This is a bug in the distributed set-up: please report it.")
    return digests


def _metrics(args, argv, info, device, run, profile, lr, found, digests, started) -> dict:
    """Everything metrics.json records about the run: what was asked, what was done, what came out."""
    from helpers.precision import device_name

    log, dls = run.log, run.dls
    valid_count = run.ddp_cb.valid_count if run.ddp_cb is not None else log.valid_count
    return {
        "status": "complete",
        "command": command_line(argv, info),
        "args": {k: jsonable(v) for k, v in vars(args).items()},
        "recipe": {"name": args.recipe, "call": recipe_for(profile, args.recipe).call,
                   "freeze_epochs": args.freeze_epochs if args.recipe != "one_cycle" else 0,
                   "epochs": args.epochs, "lr": lr, "lr_found": found,
                   "unfrozen_lrs": jsonable(args.unfrozen_lrs), "pretrained": run.pretrained},
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
        "batch_size": {"global": args.batch_size, "per_process": args.batch_size // info.world_size},
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


def _announce(args: argparse.Namespace, info: DistInfo, device: torch.device, dls) -> None:
    per_process = args.batch_size // info.world_size
    _say(info, f"{args.recipe} of {args.arch} ({args.weights} weights), {args.profile} profile, {args.precision}"
               f"{', channels-last' if args.channels_last else ''} on {device.type}; batch {args.batch_size}"
               + (f" = {info.world_size} processes x {per_process} ({info.backend})" if info.enabled else "")
               + f"; {len(dls.train.dataset)} training and {len(dls.valid.dataset)} validation images")


def run(args: argparse.Namespace, argv: Sequence[str] = ()) -> dict:
    """Train one recipe as ``args`` says; rank 0 writes the metrics, all ranks return them (python -m helpers.train)."""
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
        dls = _loaders(args, profile, info, device)
        trained = _learner(args, dls, info, device)
        lr, found = _learning_rate(args, trained, info)
        if info.enabled:
            set_seed(args.seed + info.rank)  # each rank its own augmentation draws
        _announce(args, info, device, dls)
        _train(args, trained, lr)
        digests = _same_weights_everywhere(trained.learn.model, info)
        metrics = _metrics(args, argv, info, device, trained, profile, lr, found, digests, started)
        if info.is_main:
            write_results(Path(args.out), metrics, trained.learn.model)
            _say(info, f"final error_rate {metrics['final_error_rate']:.4f} on {metrics['valid_count']} validation "
                       f"images (of {metrics['valid_size']}); {metrics['images_per_second']} training images/s; "
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
    """Parse, train, write; exit status 130 after Ctrl-C, with nothing written (python -m helpers.train)."""
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
