"""pytest configuration shared by every test under tests/, and the small data and models the Learner tests share."""
from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from types import SimpleNamespace

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

# `make test` runs nbval over `tests` too, and nbval would collect the browser test's fixture notebook as if it
# were a course notebook. It is an input that test_browser.py opens in JupyterLab (on purpose, some copies of it
# are broken), not something to re-execute and compare.
collect_ignore_glob = ["browser/*.ipynb"]


def toy_dls(n_train: int = 96, n_valid: int = 48, batch_size: int = 16, seed: int = 0, after_batch=None):
    """Three Gaussian blobs in 10 dimensions, learnable in a few epochs; a stand-in for helpers.data.DataLoaders."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(3, 10, generator=g) * 3

    def make(n):
        y = torch.randint(0, 3, (n,), generator=g)
        return TensorDataset(centres[y] + torch.randn(n, 10, generator=g), y)

    train = DataLoader(make(n_train), batch_size=batch_size, shuffle=True, drop_last=True,
                       generator=torch.Generator().manual_seed(seed))
    valid = DataLoader(make(n_valid), batch_size=batch_size)
    return SimpleNamespace(train=train, valid=valid, vocab=["a", "b", "c"], after_batch=after_batch)


def toy_model() -> nn.Module:
    """Two hidden layers with BatchNorm (so freezing and no-decay groups have something to act on)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 16), nn.BatchNorm1d(16), nn.ReLU(),
                         nn.Linear(16, 16), nn.BatchNorm1d(16), nn.ReLU(),
                         nn.Linear(16, 3))


def image_dls(n: int = 16, batch_size: int = 8, n_classes: int = 3, size: int = 8, seed: int = 0):
    """Random 3-channel images and labels, the same set for training and validation (speed, not learning)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, size, size, generator=gen)
    y = torch.randint(0, n_classes, (n,), generator=gen)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size)
    return SimpleNamespace(train=loader, valid=loader, vocab=[chr(97 + i) for i in range(n_classes)],
                           after_batch=None)


# --- small helpers several test files share, as fixtures ---------------------------------------------------

def _free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def free_port() -> Callable[[], int]:
    """Call it for a TCP port on 127.0.0.1 that nothing listens on (a server, torchrun's rendezvous)."""
    return _free_port


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """torch on one thread for the test, and the caller's thread count back afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def n_params() -> Callable[[nn.Module], int]:
    """Call it for the number of parameters of a module."""
    return lambda module: sum(p.numel() for p in module.parameters())
