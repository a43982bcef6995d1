"""What ``python -m helpers.train`` records and writes: epochs, versions, command, ``metrics.json``, ``model.pth``.

Each epoch (``EpochLog``), the versions, the command, and ``metrics.json`` beside ``model.pth``, both written whole and
renamed together.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import shlex
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from helpers.callbacks import Callback
from helpers.distributed import DistInfo
from helpers.outputs import interrupts_deferred, publish, sweep_temporary_files, temporary_sibling

METRICS_FILE = "metrics.json"
WEIGHTS_FILE = "model.pth"


# --- what a run records ---------------------------------------------------------------------------

def versions() -> dict[str, str | None]:
    """The versions that decide the numbers (python -m helpers.train; docs/training-script.md).

    Python, torch (with CUDA/cuDNN), torchvision, numpy, helpers.
    """
    import numpy
    import torchvision

    import helpers

    return {"python": platform.python_version(), "torch": torch.__version__, "torchvision": torchvision.__version__,
            "numpy": numpy.__version__, "helpers": helpers.__version__, "cuda": torch.version.cuda,
            "cudnn": str(torch.backends.cudnn.version()) if torch.backends.cudnn.is_available() else None,
            "platform": platform.platform()}


def jsonable(value: Any) -> Any:
    """A value as JSON can hold it: paths as text, tuples as lists (python -m helpers.train)."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def command_line(argv: Sequence[str], info: DistInfo) -> str:
    """The command that reproduces this run, torchrun included for several processes (python -m helpers.train)."""
    launcher = (f"torchrun --nproc_per_node={int(os.environ.get('LOCAL_WORLD_SIZE', info.world_size))} "
                if info.enabled else "python ")
    return launcher + "-m helpers.train " + " ".join(shlex.quote(a) for a in argv)


# --- a callback: what each epoch did -------------------------------------------------------------

class EpochLog(Callback):
    """Records each epoch for metrics.json (python -m helpers.train; docs/training-script.md).

    Phase, losses, error rate, training time and images per second.
    """

    order = 60  # after the Recorder (50) has added the epoch's row

    def __init__(self, world_size: int = 1):
        self.world_size = world_size
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


def write_results(out: Path, metrics: dict, model: nn.Module) -> None:
    """metrics.json and model.pth, each written whole, then renamed together (python -m helpers.train).

    Each is complete under a temporary name first.

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
                os.fsync(f.fileno())  # both on disk before either is renamed (publish's own flush is then cheap)
        # A Ctrl-C here waits until both renames are done: never new metrics beside old weights.
        with interrupts_deferred():
            (out / METRICS_FILE).unlink(missing_ok=True)
            publish(weights_tmp, out / WEIGHTS_FILE)
            publish(metrics_tmp, out / METRICS_FILE)
