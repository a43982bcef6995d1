"""What the Learner costs over a hand-written loop, measured side by side in one run (notebook 04).

    python bench/learner.py            # several alternating rounds; medians and ratios
    python bench/learner.py --quick    # a smoke run (used by the test suite)
    python bench/learner.py --json out.json   # also write every round's seconds and steps, and the ratios

Both sides train copies of the same small CNN on the same in-memory tensors (so data loading does not
hide the loop's own cost) with the same AdamW settings, one epoch plus a validation pass each. They run
alternately, round after round, so a noisy shared machine slows both alike; we report medians.
The Learner runs with its default callbacks (Recorder, progress, which is silent here) firing all fourteen
events; one more row adds a callback that handles every event, to show what dispatching costs.
Targets: the Learner adds at most 5% to an epoch, and ``lr_find(num_it=100)`` costs at most 1.1x the
time of 100 plain training steps. Each measurement also counts the training steps it took (the Learner's from its
recorder), so the two sides of a ratio are seen to do the same work.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers.callbacks import EVENTS, Callback
from helpers.learner import Learner
from helpers.optimiser import EPS, SQR_MOM
from helpers.outputs import writable_or_exit, written_whole


def make_data(n_train: int, n_valid: int, size: int, batch_size: int) -> SimpleNamespace:
    g = torch.Generator().manual_seed(0)
    def dataset(n):
        return TensorDataset(torch.randn(n, 3, size, size, generator=g), torch.randint(0, 10, (n,), generator=g))
    train = DataLoader(dataset(n_train), batch_size=batch_size, shuffle=True, drop_last=True,
                       generator=torch.Generator().manual_seed(0))
    return SimpleNamespace(train=train, valid=DataLoader(dataset(n_valid), batch_size=batch_size),
                           vocab=list("0123456789"))


def make_model() -> nn.Module:
    torch.manual_seed(0)
    def block(c_in, c_out):
        return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out),
                             nn.ReLU())
    return nn.Sequential(block(3, 32), block(32, 64), block(64, 128), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(128, 10))


def hand_loop(model: nn.Module, dls, max_steps: int | None = None, validate: bool = True) -> tuple[float, int]:
    """The plain PyTorch loop we compare against: train (recording each loss), then validate. Returns (seconds,
    training steps)."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, SQR_MOM), eps=EPS, weight_decay=0.01)
    start, steps, losses = time.perf_counter(), 0, []
    model.train()
    while True:
        for x, y in dls.train:
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.item())
            steps += 1
            if max_steps is not None and steps == max_steps:
                break
        if max_steps is None or steps == max_steps:
            break
    if validate:
        model.eval()
        with torch.no_grad():
            for x, y in dls.valid:
                nn.functional.cross_entropy(model(x), y).item()
    return time.perf_counter() - start, steps


class EveryEvent(Callback):
    """A callback with a method for each of the fourteen events, each doing nothing."""


for _event in EVENTS:
    setattr(EveryEvent, _event, lambda self: None)


def learner_epoch(model: nn.Module, dls, cbs=()) -> tuple[float, int]:
    learn = Learner(dls, model, device="cpu", quiet=True, cbs=cbs)
    start = time.perf_counter()
    learn.fit(1, 1e-3)
    return time.perf_counter() - start, len(learn.recorder.losses)


def learner_lr_find(model: nn.Module, dls, num_it: int) -> tuple[float, int]:
    learn = Learner(dls, model, device="cpu", quiet=True)
    start = time.perf_counter()
    learn.lr_find(num_it=num_it, stop_div=False, show_plot=False)
    return time.perf_counter() - start, len(learn.recorder.lrs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few seconds: tiny data, two rounds")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (1 is steadier on a crowded machine)")
    parser.add_argument("--json", type=Path, default=None, help="also write the measurements and ratios here")
    args = parser.parse_args(argv)
    if args.json:
        writable_or_exit(args.json.parent, parser, "--json")
    if args.threads:
        torch.set_num_threads(args.threads)
    if os.environ.pop("COURSE_MAX_BATCHES", None) is not None:
        # It would cut the Learner's side short and leave the hand loop's whole: the ratios would compare unequal work.
        print("note: COURSE_MAX_BATCHES is ignored here: both sides run every step", file=sys.stderr)
    rounds = args.rounds or (2 if args.quick else 7)
    num_it = 12 if args.quick else 100
    dls = make_data(n_train=128 if args.quick else 1024, n_valid=64 if args.quick else 256,
                    size=16 if args.quick else 32, batch_size=32)
    base = make_model()
    hand_loop(copy.deepcopy(base), dls)  # warm-up: first calls pay one-off allocation costs
    measure = {"hand loop, 1 epoch": lambda: hand_loop(copy.deepcopy(base), dls),
               "Learner.fit, 1 epoch": lambda: learner_epoch(copy.deepcopy(base), dls),
               "Learner.fit + EveryEvent": lambda: learner_epoch(copy.deepcopy(base), dls, [EveryEvent()]),
               f"hand loop, {num_it} steps": lambda: hand_loop(copy.deepcopy(base), dls, max_steps=num_it,
                                                               validate=False),
               f"lr_find(num_it={num_it})": lambda: learner_lr_find(copy.deepcopy(base), dls, num_it)}
    times = {name: [] for name in measure}
    steps = {name: [] for name in measure}
    for _ in range(rounds):
        for name, run in measure.items():
            seconds, taken = run()
            times[name].append(seconds)
            steps[name].append(taken)
    medians = {name: statistics.median(values) for name, values in times.items()}
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average {load:.1f} on {os.cpu_count()} CPUs (shared: read the ratios, not the seconds)")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {rounds} alternating rounds, "
          f"{len(dls.train)} batches of 32 per epoch")
    print(f"{'measurement':<28} {'median s':>9} {'min s':>8} {'max s':>8}")
    for name, values in times.items():
        print(f"{name:<28} {medians[name]:9.3f} {min(values):8.3f} {max(values):8.3f}")
    # Each round measures both sides back to back, so the ratio within a round cancels the machine's slow drifts;
    # the median of those paired ratios is steadier than a ratio of medians on a shared machine.
    def paired(name: str, baseline: str) -> float:
        return statistics.median(a / b for a, b in zip(times[name], times[baseline]))

    fit_ratio = paired("Learner.fit, 1 epoch", "hand loop, 1 epoch")
    every_ratio = paired("Learner.fit + EveryEvent", "hand loop, 1 epoch")
    find_ratio = paired(f"lr_find(num_it={num_it})", f"hand loop, {num_it} steps")
    print("median of the per-round ratios:")
    print(f"Learner / hand loop (1 epoch):     {fit_ratio:.3f}x  (target <= 1.05x)")
    print(f"  with a callback on every event:  {every_ratio:.3f}x")
    print(f"lr_find / {num_it} training steps:      {find_ratio:.3f}x  (target <= 1.10x)")
    if args.json:
        ratios = [("Learner.fit, 1 epoch", "hand loop, 1 epoch", fit_ratio, 1.05),
                  ("Learner.fit + EveryEvent", "hand loop, 1 epoch", every_ratio, None),
                  (f"lr_find(num_it={num_it})", f"hand loop, {num_it} steps", find_ratio, 1.10)]
        report = {"load_average": load, "cpus": os.cpu_count(), "torch": torch.__version__,
                  "threads": torch.get_num_threads(), "rounds": rounds, "batches_per_epoch": len(dls.train),
                  "rows": [{"measurement": name, "seconds": values, "steps": steps[name], "median": medians[name],
                            "min": min(values), "max": max(values)} for name, values in times.items()],
                  "ratios": [{"numerator": num, "denominator": den, "median_of_rounds": value, "target": target}
                             for num, den, value, target in ratios]}
        with written_whole(args.json) as temporary:
            temporary.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
