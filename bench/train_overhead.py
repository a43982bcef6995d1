"""What ``python -m helpers.train`` costs over the notebook's Learner in one process, side by side in one run (issue
18).

    python bench/train_overhead.py               # 5 alternating rounds of a one-epoch tiny run; medians and ratio
    python bench/train_overhead.py --batches 10  # each epoch cut to 10 training batches (validation stays whole)
    python bench/train_overhead.py --quick       # 2 rounds of 3 training batches (a smoke run)

Both sides do the same work: build the tiny pets DataLoaders and the offline resnet10 exactly as notebook 05
does, then one frozen ``fit_one_cycle`` epoch and its validation. The notebook side is those cells; the script
side is ``helpers.train.run`` with the same settings, so it also pays for what the script adds: argument
handling, its epoch log, the weight digest, and writing metrics.json and model.pth (fsync'ed, then renamed).
Interpreter and ``import torch`` time are left out on both sides (a notebook kernel pays them too).
The two sides alternate round after round, so a busy machine slows both alike; we report medians of wall
time and of this process's CPU time (which other jobs on a shared machine disturb less).
Target: the script adds at most 5%.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

import helpers
from helpers import train
from helpers.data import pets_dataloaders, pets_path
from helpers.learner import Learner
from helpers.metrics import error_rate
from helpers.models import create_cnn, resnet_split
from helpers.run_record import EpochLog
from helpers.short_run import ShortRun

SEED, LR = 42, 1e-2


def notebook_side(max_batches: int | None) -> None:
    """Notebook 05's cells: loaders, model, Learner, freeze, one cycle of one epoch."""
    P = helpers.get_profile("tiny")
    helpers.set_seed(SEED)
    dls = pets_dataloaders(pets_path(P), presize=P.presize, size=P.size, batch_size=P.batch_size,
                           num_workers=P.num_workers, seed=SEED)
    helpers.set_seed(SEED)
    learn = Learner(dls, create_cnn(P.arch, n_out=len(dls.vocab), weights=P.weights), splitter=resnet_split,
                    metrics=[error_rate], device="cpu", quiet=True)
    learn.freeze()
    cbs = [EpochLog(), ShortRun(max_batches, validation=False)] if max_batches else None  # the script's cut
    learn.fit_one_cycle(1, LR, cbs=cbs)


def script_side(out: Path, max_batches: int | None) -> None:
    argv = ["--profile", "tiny", "--recipe", "one_cycle", "--epochs", "1", "--lr", str(LR), "--seed", str(SEED),
            "--device", "cpu", "--out", str(out)] + (["--max-train-batches", str(max_batches)] if max_batches else [])
    args = train.parse_args(argv)
    quiet = open(os.devnull, "w")
    stdout, sys.stdout = sys.stdout, quiet  # the notebook side is quiet=True; so is this one
    try:
        train.run(args, argv)
    finally:
        sys.stdout = stdout
        quiet.close()


def timed(func, *args) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    func(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="two rounds of three training batches")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--batches", type=int, default=None,
                        help="training batches per epoch on both sides (default: the whole epoch)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (1 is fastest on a busy shared machine; default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rounds = args.rounds or (2 if args.quick else 5)
    max_batches = args.batches or (3 if args.quick else None)
    os.environ.pop("COURSE_MAX_BATCHES", None)
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "run"
        notebook_side(max_batches)  # warm-up: data cache, first-call allocations, lazy imports
        script_side(out, max_batches)
        times = {"notebook": [], "script": []}
        for index in range(rounds):
            # Alternate which side goes first, so neither always follows the other.
            order = ("notebook", "script") if index % 2 == 0 else ("script", "notebook")
            for side in order:
                call = (notebook_side, max_batches) if side == "notebook" else (script_side, out, max_batches)
                times[side].append(timed(*call))
        written = sorted(p.name for p in out.iterdir())
    med = {side: (statistics.median(w for w, _ in values), statistics.median(c for _, c in values))
           for side, values in times.items()}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {rounds} alternating rounds, tiny profile "
          f"one_cycle(1) of resnet10{f', {max_batches} training batches' if max_batches else ''}; script wrote "
          f"{written}")
    print(f"{'side':<10} {'median wall s':>14} {'min':>8} {'max':>8} {'median CPU s':>13}")
    for side, values in times.items():
        walls = [w for w, _ in values]
        print(f"{side:<10} {med[side][0]:14.2f} {min(walls):8.2f} {max(walls):8.2f} {med[side][1]:13.2f}")
    print(f"script / notebook, wall: {med['script'][0] / med['notebook'][0]:.3f}x   "
          f"CPU: {med['script'][1] / med['notebook'][1]:.3f}x   (target <= 1.05x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
