"""Which device to train on, and how to make runs repeatable (used by every notebook, set up in 01)."""
from __future__ import annotations

import os
import random
import warnings

import numpy as np
import torch

DEVICE_TYPES = ("cpu", "cuda", "mps")


def _mps_available() -> bool:
    # torch builds without Apple support may lack torch.backends.mps altogether.
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def get_device(prefer: str | None = None) -> torch.device:
    """The best device here: cuda, then Apple's mps, then the cpu; ``COURSE_DEVICE`` overrides (notebook 05)."""
    choice = prefer or os.environ.get("COURSE_DEVICE")
    if choice:
        # Say how to fix it where the learner wrote it: the environment variable or the argument.
        source = f"prefer={choice!r}" if prefer else f"COURSE_DEVICE={choice!r}"
        unset = "leave prefer out" if prefer else "unset COURSE_DEVICE"
        fallback = f"{unset} or pass prefer='cpu'"
        try:
            device = torch.device(choice)
        except RuntimeError:  # torch's own message lists twenty device types the course never uses
            device = None
        if device is None or device.type not in DEVICE_TYPES:
            raise ValueError(f"{source} is not a device the course can use: use one of {'|'.join(DEVICE_TYPES)} "
                             f"(or cuda:N for the N-th GPU), or {unset} to let get_device() choose.")
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {choice!r} was asked for, but CUDA is not available here; {fallback}.")
        if device.type == "mps" and not _mps_available():
            raise RuntimeError(f"device {choice!r} was asked for, but Apple's MPS is not available here (it needs "
                               f"an Apple-silicon Mac); {fallback}.")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def set_seed(seed: int = 42, deterministic: bool = True) -> None:
    """Seed Python, NumPy and torch, and optionally ask for repeatable kernels (notebook 00).

    With ``deterministic``, cuDNN and torch are asked for repeatable kernels.
    """
    if deterministic:
        # cuBLAS reads this when it creates its first handle, i.e. at the first matmul on the GPU: it must be
        # in place before any CUDA work, so it comes first (and the notebooks call set_seed first).
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        # Some CUDA ops have no deterministic version (the backward of adaptive average pooling, which every
        # ResNet head runs): warn_only keeps them usable. Its warning would repeat in every training cell of the
        # full profile on a GPU, so it is silenced here, where that choice is made; the rest stays deterministic.
        torch.use_deterministic_algorithms(True, warn_only=True)
        warnings.filterwarnings("ignore", message=r".*does not have a deterministic implementation",
                                category=UserWarning)


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn`` giving each DataLoader worker its own repeatable seed (notebook 01, via ``DataLoaders``).

    Seeds NumPy and Python in each worker process.

    torch already seeds each worker with ``base_seed + worker_id``; we pass that on to the other
    libraries, which would otherwise start every worker from the same (forked) state.
    """
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


def dataloader_generator(seed: int = 42) -> torch.Generator:
    """A seeded generator for a DataLoader's shuffling, so batch order repeats (notebook 01, via ``DataLoaders``)."""
    g = torch.Generator()
    g.manual_seed(seed)
    return g
