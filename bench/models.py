"""Training speed and memory of resnet18/34/50/101 in fp32 and mixed precision, with and without channels_last.

    python bench/models.py                        # CPU: 64 px, batches of 8 (a few minutes on 2 cores)
    python bench/models.py --device cuda --size 224 --batch-size 64
    python bench/models.py --quick                # resnet18 only, 32 px: a smoke test of a few seconds

Each configuration trains on random data: a few warm-up steps, then timed steps of forward, backward and
optimizer step, through ``helpers.precision.Precision``, the policy the Learner itself follows. The configurations of
one architecture run back to back, and the whole sweep repeats for
several rounds, so a noisy (shared) machine slows every configuration alike and the ratios hold.
The table goes to the screen and, with a plot, to --out (default bench/results/). Notebook 06 explains it.

Memory ("step_mem_mb") is what training steps need on top of what was allocated before them (the weights
and the optimizer state, float32 in every configuration), so it counts activations and the float32 gradients:
on CUDA, torch.cuda.max_memory_allocated minus memory_allocated; on the CPU, the peak resident set
(VmHWM, reset through /proc/self/clear_refs) minus the resident set before the step, after handing freed
memory back to the OS with glibc's malloc_trim. That is where fp32 and mixed precision differ: activations.
"""
from __future__ import annotations

import argparse
import ctypes
import math
import platform
import statistics
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from helpers.outputs import writable_or_exit, written_whole
from helpers.precision import Precision, cpu_supports_native_bf16, device_name, mixed_precision_dtypes

ROOT = Path(__file__).resolve().parent.parent
ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101")
N_CLASSES = 37


@dataclass(frozen=True)
class Config:
    arch: str
    precision: str        # "fp32", "bf16" or "fp16"
    channels_last: bool

    @property
    def label(self) -> str:
        return f"{self.precision}{' +CL' if self.channels_last else ''}"


# --- memory: one figure per training step, comparable between configurations ---------------------

def _malloc_trim() -> None:
    # Freed tensors stay in glibc's arenas (and so in the resident set) until trimmed; trimming first
    # makes "resident before the step" mean what is really in use.
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _proc_status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status")


class StepMemory:
    """Peak memory of a block of training steps beyond what was allocated before it, in MB."""

    def __init__(self, device: torch.device):
        self.device = device
        self.available = device.type == "cuda" or Path("/proc/self/clear_refs").exists()

    def __enter__(self) -> StepMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.before = torch.cuda.memory_allocated(self.device)
        elif self.available:
            _malloc_trim()
            try:
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")  # resets VmHWM (the peak resident set) to the current resident set
            except OSError:
                self.available = False
            self.before = _proc_status_kb("VmRSS") * 1024 if self.available else 0
        return self

    def __exit__(self, *exc) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.peak = torch.cuda.max_memory_allocated(self.device)
        else:
            self.peak = _proc_status_kb("VmHWM") * 1024 if self.available else self.before

    @property
    def megabytes(self) -> float:
        return (self.peak - self.before) / 2**20 if self.available else float("nan")


# --- one configuration -----------------------------------------------------------------------------

def make_model(arch: str) -> nn.Module:
    """A torchvision ResNet without weights (random weights train exactly as fast)."""
    return getattr(torchvision.models, arch)(weights=None, num_classes=N_CLASSES)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def forward_flops_per_image(model: nn.Module, size: int) -> float:
    """FLOPs of one image's forward pass (multiply and add counted separately); training costs ~3x."""
    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, size, size))
    model.train(was_training)
    return float(counter.get_total_flops())


def training_step(model: nn.Module, optimizer: torch.optim.Optimizer, policy: Precision, x: torch.Tensor,
                  y: torch.Tensor) -> float:
    """One step as the Learner takes it: the course's own mixed-precision policy, float32 loss; returns the loss."""
    with policy.autocast():
        out = model(x)
    # The loss (a log of a sum of exponentials) is where low precision hurts most, so it stays float32.
    loss = nn.functional.cross_entropy(out.float(), y)
    optimizer.zero_grad(set_to_none=True)
    policy.backward(loss)
    policy.step(optimizer)
    return loss.item()  # .item() waits for the device, so the timer sees finished work


def make_policy(precision: str, device: torch.device) -> Precision:
    """helpers.precision's policy, without its "slower on this CPU" hint: measuring that is this script's job."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return Precision(precision, device)


def time_config(model: nn.Module, cfg: Config, device: torch.device, size: int, batch_size: int,
                warmup: int, steps: int) -> tuple[float, float]:
    """Seconds per training step (median of the timed steps) and the step memory in MB."""
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model.to(memory_format=fmt)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    policy = make_policy(cfg.precision, device)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, 3, size, size, generator=gen).to(device).contiguous(memory_format=fmt)
    y = torch.randint(0, N_CLASSES, (batch_size,), generator=gen).to(device)
    for _ in range(warmup):
        training_step(model, optimizer, policy, x, y)
    times = []
    with StepMemory(device) as memory:
        for _ in range(steps):
            start = time.perf_counter()
            loss = training_step(model, optimizer, policy, x, y)
            times.append(time.perf_counter() - start)
    if not math.isfinite(loss):
        raise RuntimeError(f"{cfg.arch} {cfg.label}: the loss became {loss}; the benchmark is meaningless.")
    del optimizer, policy
    return statistics.median(times), memory.megabytes


# --- the sweep -------------------------------------------------------------------------------------

def run(archs, precisions, device: torch.device, size: int, batch_size: int,
        warmup: int, steps: int, rounds: int) -> pd.DataFrame:
    """Every configuration, interleaved over rounds; one row per configuration (medians over rounds)."""
    configs = [Config(a, p, cl) for a in archs for p in precisions for cl in (False, True)]
    seconds = {c: [] for c in configs}
    memory = {c: [] for c in configs}
    static = {}
    for r in range(rounds):
        # Alternate the order each round so a slow drift of the machine does not favour one end.
        order = archs if r % 2 == 0 else archs[::-1]
        for arch in order:
            torch.manual_seed(0)
            model = make_model(arch).to(device).train()
            if arch not in static:
                static[arch] = (count_parameters(model), forward_flops_per_image(make_model(arch), size))
            arch_configs = [c for c in configs if c.arch == arch]
            for cfg in (arch_configs if r % 2 == 0 else arch_configs[::-1]):
                step_s, mem_mb = time_config(model, cfg, device, size, batch_size, warmup, steps)
                seconds[cfg].append(step_s)
                memory[cfg].append(mem_mb)
                print(f"  round {r + 1}/{rounds} {arch:<9} {cfg.label:<9} {batch_size / step_s:8.1f} img/s",
                      file=sys.stderr, flush=True)
            del model
    rows = []
    for cfg in configs:
        step_s = statistics.median(seconds[cfg])
        params, flops = static[cfg.arch]
        rows.append(dict(
            arch=cfg.arch, precision=cfg.precision, channels_last=cfg.channels_last,
            images_per_s=batch_size / step_s, step_ms=1000 * step_s,
            spread_pct=100 * (max(seconds[cfg]) - min(seconds[cfg])) / step_s,
            step_mem_mb=max(memory[cfg]), params_m=params / 1e6, fwd_gflops_per_image=flops / 1e9,
        ))
    return pd.DataFrame(rows)


def ratios(df: pd.DataFrame) -> dict[str, float]:
    """The issue's two targets: resnet50 mixed+channels_last over fp32, and resnet101's cost over resnet50's."""
    def ips(arch, precision, channels_last):
        row = df[(df.arch == arch) & (df.precision == precision) & (df.channels_last == channels_last)]
        return float(row.images_per_s.iloc[0]) if len(row) else float("nan")
    out = {}
    for p in sorted(set(df.precision) - {"fp32"}):
        out[f"resnet50 {p}+channels_last / fp32 (speed-up)"] = ips("resnet50", p, True) / ips("resnet50", "fp32", False)
        out[f"resnet101 / resnet50 time per image ({p}+channels_last)"] = (ips("resnet50", p, True)
                                                                           / ips("resnet101", p, True))
    out["resnet101 / resnet50 time per image (fp32)"] = ips("resnet50", "fp32", False) / ips("resnet101", "fp32", False)
    return {k: v for k, v in out.items() if v == v}  # drop the ones whose architectures were not run


def plot(df: pd.DataFrame, title: str, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")  # a script: no window, just the file
    import matplotlib.pyplot as plt

    labels = df.precision + df.channels_last.map({True: " +CL", False: ""})
    table = df.assign(config=labels)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, column, ylabel in ((axes[0], "images_per_s", "training images per second"),
                               (axes[1], "step_mem_mb", "step memory (MB)")):
        wide = table.pivot(index="arch", columns="config", values=column)
        wide = wide.reindex(index=list(dict.fromkeys(df.arch)), columns=list(dict.fromkeys(labels)))
        wide.plot.bar(ax=ax, rot=0)
        ax.set_xlabel("architecture")
        ax.set_ylabel(ylabel)
        ax.set_title(ylabel)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")  # the format said: the path may be a temporary name
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--archs", default=",".join(ARCHS), help="comma-separated torchvision ResNets")
    parser.add_argument("--size", type=int, default=None, help="image side (default 64 on cpu, 224 on cuda)")
    parser.add_argument("--batch-size", type=int, default=None, help="default 8 on cpu, 64 on cuda")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps per configuration and round")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per configuration and round")
    parser.add_argument("--rounds", type=int, default=3, help="times the whole sweep repeats (interleaved)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (default: torch's choice; 1 is steadier on a crowded machine)")
    parser.add_argument("--precisions", default=None,
                        help="comma-separated subset of fp32,bf16,fp16 (default: fp32 and the device's mixed "
                             "precisions)")
    parser.add_argument("--tf32", choices=("default", "on", "off"), default="default",
                        help="CUDA: let fp32 convolutions and matrix products use TF32 tensor cores (on) or not (off); "
                             "default keeps PyTorch's settings (on for cuDNN convolutions, off for matrix products)")
    parser.add_argument("--quick", action="store_true", help="resnet18 only, 32 px, batch 4, 1 round: a smoke test")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results", help="folder for the CSV and PNG")
    args = parser.parse_args(argv)
    writable_or_exit(args.out, parser)  # before the sweep, not after it

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda was asked for, but CUDA is not available here; use --device cpu.")
    on_gpu = device.type == "cuda"
    if on_gpu:
        # Let cuDNN time its kernels for each shape once: channels_last and fp16 rely on picking the fast ones.
        torch.backends.cudnn.benchmark = True
        if args.tf32 != "default":
            # TF32 keeps fp32's range with a 10-bit mantissa; NVIDIA's "fp32" baselines on A100 and later use it.
            torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = args.tf32 == "on"
    archs = ["resnet18"] if args.quick else [a.strip() for a in args.archs.split(",") if a.strip()]
    unknown = [a for a in archs if not hasattr(torchvision.models, a)]
    if unknown:
        parser.error(f"unknown architecture(s) {unknown}; use torchvision names such as {', '.join(ARCHS)}.")
    size = args.size or (32 if args.quick else 224 if on_gpu else 64)
    batch_size = args.batch_size or (4 if args.quick else 64 if on_gpu else 8)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 5 if on_gpu else 2)
    steps = args.steps or (2 if args.quick else 20 if on_gpu else 4)
    rounds = 1 if args.quick else args.rounds
    precisions = ["fp32", *mixed_precision_dtypes(device)]
    if args.precisions:
        asked = [p.strip() for p in args.precisions.split(",") if p.strip()]
        unusable = [p for p in asked if p not in precisions]
        if unusable:
            parser.error(f"precision(s) {unusable} cannot run on {device.type} here; choose from "
                         f"{', '.join(precisions)}.")
        precisions = asked

    machine = device_name(device)
    print(f"machine: {machine} | torch {torch.__version__} | {platform.python_implementation()} "
          f"{platform.python_version()}")
    if on_gpu:
        print(f"fp32 may use TF32 tensor cores: cudnn.allow_tf32={torch.backends.cudnn.allow_tf32}, "
              f"cuda.matmul.allow_tf32={torch.backends.cuda.matmul.allow_tf32}")
    else:
        print(f"threads: {torch.get_num_threads()} | native bf16 instructions (avx512_bf16/amx_bf16): "
              f"{cpu_supports_native_bf16()}")
    print(f"{size} px, batch {batch_size}, {warmup} warm-up + {steps} timed steps x {rounds} round(s); "
          "AdamW", flush=True)

    df = run(archs, precisions, device, size, batch_size, warmup, steps, rounds)
    df.insert(0, "device", device.type)
    df["size"], df["batch_size"], df["machine"], df["torch"] = size, batch_size, machine, torch.__version__

    shown = df.drop(columns=["device", "size", "batch_size", "machine", "torch"])
    print(shown.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    for name, value in ratios(df).items():
        print(f"{name}: {value:.2f}x")

    tf32 = "" if args.tf32 == "default" else "_tf32" + args.tf32
    stem = f"models_{device.type}{'_quick' if args.quick else ''}{tf32}"
    with written_whole(args.out / f"{stem}.csv") as temporary:
        df.to_csv(temporary, index=False)
    with written_whole(args.out / f"{stem}.png") as temporary:
        plot(df, f"{machine}: {size} px, batch {batch_size}, torch {torch.__version__}", temporary)
    print(f"wrote {args.out / (stem + '.csv')} and {args.out / (stem + '.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
