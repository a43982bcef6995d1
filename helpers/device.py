"""Which device to train on, and how to make runs repeatable (used by every notebook, set up in 01)."""
from __future__ import annotations

import os
import random

import numpy as np
import torch


def get_device(prefer: str | None = None) -> torch.device:
    """The best device here: cuda, then Apple's mps, then the cpu (``COURSE_DEVICE`` overrides)."""
    choice = prefer or os.environ.get("COURSE_DEVICE")
    if choice:
        device = torch.device(choice)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {choice!r} was asked for, but CUDA is not available here; "
                               "unset COURSE_DEVICE or pass prefer='cpu'.")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def set_seed(seed: int = 42, deterministic: bool = True) -> None:
    """Seed Python, NumPy and torch; with ``deterministic`` ask cuDNN and torch for repeatable kernels."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        # Some CUDA ops have no deterministic version; warn_only keeps them usable instead of raising.
        torch.use_deterministic_algorithms(True, warn_only=True)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn`` for DataLoader: give each worker process its own repeatable NumPy/Python seed.

    torch already seeds each worker with ``base_seed + worker_id``; we pass that on to the other
    libraries, which would otherwise start every worker from the same (forked) state.
    """
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


def dataloader_generator(seed: int = 42) -> torch.Generator:
    """A seeded generator for a DataLoader's shuffling, so the batch order repeats from run to run."""
    g = torch.Generator()
    g.manual_seed(seed)
    return g
