"""Apple Silicon and spawn: precision on a simulated mps device (notebook 06), and every course loader under spawn."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import torch.amp.autocast_mode

import helpers
from helpers.precision import Precision, mixed_precision_dtypes, mps_precision_problem, pick_mixed_precision

NB06 = Path(__file__).resolve().parent.parent / "notebooks" / "06_deeper_models_mixed_precision.ipynb"


@pytest.fixture(params=["macos14", "macos13", "no-mps-autocast"])
def mac(request, monkeypatch):
    """A simulated Apple-silicon Mac: mps available, no CUDA; its macOS and torch as the parameter says."""
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(torch.backends.mps, "is_macos_or_newer", lambda major, minor=0: request.param == "macos14")
    autocast = request.param != "no-mps-autocast"
    real = torch.amp.autocast_mode.is_autocast_available
    monkeypatch.setattr(torch.amp.autocast_mode, "is_autocast_available",
                        lambda device: autocast if device == "mps" else real(device))
    return request.param


EXPECTED = {"macos14": ["fp16", "bf16"], "macos13": ["fp16"], "no-mps-autocast": []}


def test_get_device_still_prefers_cuda_then_mps_then_cpu(mac):
    assert helpers.get_device().type == "mps"


def test_precision_on_mps_uses_what_torch_supports_and_otherwise_says_why(mac, capsys):
    assert mixed_precision_dtypes("mps") == EXPECTED[mac]
    for mode in ("fp16", "bf16"):
        policy = Precision(mode, "mps")
        printed = capsys.readouterr().out
        if mode in EXPECTED[mac]:
            assert policy.mode == mode and policy.dtype == {"fp16": torch.float16, "bf16": torch.bfloat16}[mode]
            assert printed == ""
        else:
            assert policy.mode == "fp32" and policy.dtype is None and policy.requested == mode
            assert "training in fp32 instead" in printed and mps_precision_problem(mode) in printed
    assert Precision("fp32", "mps").mode == "fp32"


def test_pick_mixed_precision_on_mps(mac, capsys):
    chosen = pick_mixed_precision("mps")
    assert chosen == (EXPECTED[mac] or ["fp32"])[0]
    assert ("training in fp32" in capsys.readouterr().out) == (chosen == "fp32")


def test_pick_mixed_precision_elsewhere_is_unchanged(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert pick_mixed_precision("cpu") == "bf16" and pick_mixed_precision("cuda") == "fp16"


def test_notebook_06_choice_runs_on_a_simulated_mac(mac, capsys):
    """Notebook 06's own lines that choose the precision, run on the simulated Mac, give a Precision that works."""
    cells = ["".join(c["source"]) for c in json.loads(NB06.read_text())["cells"] if c["cell_type"] == "code"]
    source = next(s for s in cells if re.search(r"^precision = ", s, re.M))
    choice = [ln for ln in source.splitlines() if re.match(r"(on_gpu|device|precision) = ", ln)]
    names = {"helpers": helpers, "pick_mixed_precision": pick_mixed_precision,
             "mixed_precision_dtypes": mixed_precision_dtypes}
    exec("\n".join(choice), names)
    policy = Precision(names["precision"], helpers.get_device())
    assert policy.mode in EXPECTED[mac] + ["fp32"]


# --- spawn: what macOS and Windows use to start DataLoader workers ---------------------------------------

def first_batches(dls, splits: tuple[str, ...] = ("train",)) -> list:
    # Each spawned worker imports torch afresh (seconds on a shared CPU): the training loader suffices where the
    # validation loader holds the same dataset class.
    batches = []
    for dl in (getattr(dls, split) for split in splits):
        dl.multiprocessing_context = "spawn"  # each worker is a fresh interpreter: the dataset must pickle
        batches.append(next(iter(dl)))
    return batches


@pytest.mark.slow  # starts Python processes that import torch, or builds a data set
@pytest.mark.parametrize("cache", [False, True], ids=["from-disk", "cached"])
def test_pets_loaders_work_with_spawned_workers(cache):
    from helpers.data import pets_dataloaders, pets_tiny

    dls = pets_dataloaders(pets_tiny(), presize=32, size=16, batch_size=4, num_workers=1, cache=cache)
    (x, y), *valid = first_batches(dls, ("train", "valid") if cache else ("train",))
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.uint8 and len(y) == 4
    assert all(xv.shape[1:] == (3, 32, 32) for xv, _ in valid)


@pytest.mark.slow  # starts a Python process that imports torch (the spawned worker)
def test_tabular_loaders_work_with_spawned_workers():
    from helpers.data import make_loaders
    from helpers.tabular import TabularDataset

    n = 12
    ds = TabularDataset(torch.zeros(n, 2, dtype=torch.long), torch.randn(n, 3), torch.randn(n, 1))
    dls = make_loaders(ds, ds, vocab=None, batch_size=4, num_workers=1, multiprocessing_context="spawn")
    [(cat, cont, y)] = first_batches(dls)
    assert cat.shape == (4, 2) and cont.shape == (4, 3) and y.shape == (4, 1)
