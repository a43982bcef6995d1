"""pytest configuration for the whole suite: the order tests are handed out in, and the small data, models and
tools that several test files share, as fixtures (pytest finds them; no test imports this file).

Test ordering, for `make test`, which spreads the suite over every core with pytest-xdist: pytest-xdist
(``--dist loadscope --no-loadscope-reorder``) hands each worker one file at a time, in the order collected here: a
file's fixtures are built in one worker, and all the cells of a notebook run in one worker, in order, in one kernel.
Sorting the longest work first keeps a worker from being left alone at the end with a long file while the others
sit idle:

1. the browser test (it runs the widget notebooks in JupyterLab), then the full profile's runs of every notebook
   (slowest first, for ``make full``, which hands them out one at a time with ``--dist load --maxschedchunk 1``);
2. the notebooks, slowest first, by the execution times stored in their own cells by ``make notebooks``, and among
   them tests/test_other_kernels.py, which runs three of them again, ranked by their stored times together;
3. test files holding a test marked ``slow``;
4. everything else, in its usual order.

The sort is stable, so tests keep their order within a file; without xdist the order changes nothing else.
(``--dist loadgroup`` would let single tests move between workers, but it does not group tests with pytest 9.)
pytest calls this hook with every collected item, notebooks/ included, once this file is loaded, which every run
that names tests/ does; ``make nbval`` (notebooks alone, one process) needs no order.
"""
from __future__ import annotations

import importlib.util
import json
import os
import socket
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from functools import cache
from pathlib import Path
from types import ModuleType, SimpleNamespace

import matplotlib
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).resolve().parent.parent
# Figures are drawn off screen, whatever the machine's default backend (a test never opens a window).
matplotlib.use("Agg")

# `make test` runs nbval over `tests` too, and nbval would collect the browser test's fixture notebook as if it
# were a course notebook. It is an input that test_browser.py opens in JupyterLab (on purpose, some copies of it
# are broken), not something to re-execute and compare.
collect_ignore_glob = ["browser/*.ipynb"]


# --- the order of the suite ------------------------------------------------------------------------------

# How long each notebook's full-profile run on stand-ins took here (`make full`, seconds). Only the order matters:
# a stale figure costs a few seconds of a worker left waiting at the end, never a failure. The tiny runs' stored
# times give a different order (08 trains little in the tiny profile but explains every validation picture at
# 224 pixels in the full one), so they are no guide here.
FULL_PROFILE_SECONDS = {"08": 65, "05": 55, "06": 50, "04": 34, "07": 23, "02": 22, "01": 20, "09": 13, "00": 12,
                        "03": 10}


@cache
def stored_seconds(notebook: Path) -> float:
    """How long the stored run of a notebook took, from the timestamps nbclient keeps in each cell."""
    try:
        cells = json.loads(notebook.read_text())["cells"]
    except (OSError, ValueError, KeyError):
        return 0.0
    total = 0.0
    for cell in cells:
        timing = cell.get("metadata", {}).get("execution", {})
        if "iopub.execute_input" in timing and "shell.execute_reply" in timing:
            start = datetime.fromisoformat(timing["iopub.execute_input"].replace("Z", "+00:00"))
            end = datetime.fromisoformat(timing["shell.execute_reply"].replace("Z", "+00:00"))
            total += (end - start).total_seconds()
    return total


def pytest_collection_modifyitems(config, items):
    files_with_slow_tests = {item.path for item in items if item.get_closest_marker("slow")}

    def rank(item) -> tuple[int, float, float]:
        if item.get_closest_marker("browser"):
            return (0, 0.0, 0.0)
        if item.path.name == "test_full_profile.py":
            # `make full` (--dist load) spreads these single tests: the slowest notebooks go first there too.
            notebook = getattr(item, "callspec", None) and item.callspec.params.get("path")
            return (0, 1.0, -FULL_PROFILE_SECONDS.get(notebook.name[:2], 60) if notebook else 0.0)
        if item.path.suffix == ".ipynb":
            return (1, -stored_seconds(item.path), 0.0)
        if item.path.name == "test_other_kernels.py":
            notebooks = item.path.parent.parent / "notebooks"
            return (1, -sum(stored_seconds(notebooks / name) for name in item.module.SENSITIVE), 0.0)
        return (2, 0.0, 0.0) if item.path in files_with_slow_tests else (3, 0.0, 0.0)

    items.sort(key=rank)


# --- small data, models and tools several test files share ----------------------------------------------
# Factory fixtures: a test asks for `toy_dls` and calls it, `toy_dls(n_train=8)`, as often as it needs.

def _toy_dls(n_train: int = 96, n_valid: int = 48, batch_size: int = 16, seed: int = 0,
             after_batch=None) -> SimpleNamespace:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(3, 10, generator=g) * 3

    def make(n):
        y = torch.randint(0, 3, (n,), generator=g)
        return TensorDataset(centres[y] + torch.randn(n, 10, generator=g), y)

    train = DataLoader(make(n_train), batch_size=batch_size, shuffle=True, drop_last=True,
                       generator=torch.Generator().manual_seed(seed))
    valid = DataLoader(make(n_valid), batch_size=batch_size)
    return SimpleNamespace(train=train, valid=valid, vocab=["a", "b", "c"], after_batch=after_batch)


def _toy_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(10, 16), nn.BatchNorm1d(16), nn.ReLU(),
                         nn.Linear(16, 16), nn.BatchNorm1d(16), nn.ReLU(),
                         nn.Linear(16, 3))


def _three_groups(model: nn.Module) -> list[list[nn.Parameter]]:
    return [list(model[0:3].parameters()), list(model[3:6].parameters()), list(model[6:].parameters())]


def _image_dls(n: int = 16, batch_size: int = 8, n_classes: int = 3, size: int = 8, seed: int = 0) -> SimpleNamespace:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, size, size, generator=gen)
    y = torch.randint(0, n_classes, (n,), generator=gen)
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size)
    return SimpleNamespace(train=loader, valid=loader, vocab=[chr(97 + i) for i in range(n_classes)],
                           after_batch=None)


@pytest.fixture(scope="session")
def toy_dls() -> Callable[..., SimpleNamespace]:
    """Call it for three Gaussian blobs in 10 dimensions, learnable in a few epochs (a stand-in for DataLoaders)."""
    return _toy_dls


@pytest.fixture(scope="session")
def toy_model() -> Callable[[], nn.Module]:
    """Call it for two hidden layers with BatchNorm (so freezing and no-decay groups have something to act on)."""
    return _toy_model


@pytest.fixture(scope="session")
def toy_learner() -> Callable[..., object]:
    """Call it for a quiet CPU Learner on the blobs, with three splitter groups and the error rate as metric."""
    from helpers.learner import Learner, error_rate

    def make(dls: SimpleNamespace | None = None, **kwargs) -> Learner:
        kwargs.setdefault("quiet", True)
        return Learner(dls or _toy_dls(), _toy_model(), splitter=_three_groups, device="cpu",
                       metrics=[error_rate], **kwargs)

    return make


class RaiseOnCall:
    """A loss function that raises KeyboardInterrupt on its n-th call, like a learner pressing stop."""

    def __init__(self, n: int):
        self.n, self.calls = n, 0

    def __call__(self, preds: torch.Tensor, targs: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        if self.calls == self.n:
            raise KeyboardInterrupt
        return nn.functional.cross_entropy(preds, targs)


@pytest.fixture(scope="session")
def raise_on_call() -> type[RaiseOnCall]:
    """The class of a loss that raises KeyboardInterrupt on its n-th call: `raise_on_call(3)`."""
    return RaiseOnCall


@pytest.fixture(scope="session")
def image_dls() -> Callable[..., SimpleNamespace]:
    """Call it for random 3-channel images and labels, the same set for training and validation (speed, not
    learning)."""
    return _image_dls


def _free_port() -> int:
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


def _child_env(**settings: str | None) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    for key, value in settings.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


@pytest.fixture(scope="session")
def child_env() -> Callable[..., dict[str, str]]:
    """Call it for the environment of a Python child process that imports this checkout's helpers: this process's
    environment, unbuffered output, the repository first on PYTHONPATH, then the settings given (None removes one),
    e.g. `child_env(COURSE_DATA=str(tmp_path))`."""
    return _child_env


@pytest.fixture(scope="session")
def load_script() -> Callable[[str], ModuleType]:
    """Call it with a script's path in the repository, `load_script("bench/models.py")`, for the script imported as a
    module (once per session). bench/ and tools/ are not packages: nothing is added to sys.path."""
    loaded: dict[str, ModuleType] = {}

    def load(relative: str) -> ModuleType:
        if relative not in loaded:
            path = ROOT / relative
            name = f"{path.parent.name}_{path.stem}"
            spec = importlib.util.spec_from_file_location(name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module  # dataclasses and pickling look a module up by name
            spec.loader.exec_module(module)
            loaded[relative] = module
        return loaded[relative]

    return load
