"""Device choice, seeding and profiles (helpers.device, helpers.profiles)."""
from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

from helpers import get_device, get_profile, set_seed
from helpers.device import dataloader_generator, seed_worker


def test_device_falls_back_to_cpu_here(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert get_device() == torch.device("cpu")


def test_device_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert get_device().type == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert get_device().type == "cuda"


def test_asking_for_missing_cuda_says_what_to_do(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("COURSE_DEVICE", "cuda")
    with pytest.raises(RuntimeError, match="unset COURSE_DEVICE"):
        get_device()


@pytest.mark.parametrize("bad", ["gpu", "CUDA", "cuda:x", "meta"])
def test_unknown_course_device_lists_the_choices(monkeypatch, bad):
    monkeypatch.setenv("COURSE_DEVICE", bad)
    with pytest.raises(ValueError, match=r"COURSE_DEVICE=.*cpu\|cuda\|mps.*unset COURSE_DEVICE"):
        get_device()
    with pytest.raises(ValueError, match=r"prefer=.*cpu\|cuda\|mps.*leave prefer out"):
        get_device(prefer=bad)


def test_asking_for_missing_mps_says_what_to_do(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setenv("COURSE_DEVICE", "mps")
    with pytest.raises(RuntimeError, match="MPS is not available.*unset COURSE_DEVICE"):
        get_device()
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert get_device() == torch.device("mps")


def test_valid_choices_are_returned_as_asked(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("COURSE_DEVICE", "cuda:1")
    assert get_device() == torch.device("cuda", 1)
    assert get_device(prefer="cpu") == torch.device("cpu")  # the argument wins over the environment


def draw():
    return random.random(), np.random.rand(), torch.rand(1).item()


def test_set_seed_repeats_every_library():
    set_seed(7)
    first = draw()
    set_seed(7)
    assert draw() == first
    set_seed(8)
    assert draw() != first


def test_set_seed_prepares_cublas_and_silences_only_the_pooling_warning(monkeypatch):
    import warnings

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        set_seed(1)
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        warnings.warn("adaptive_avg_pool2d_backward_cuda does not have a deterministic implementation, but you "
                      "set 'torch.use_deterministic_algorithms(True, warn_only=True)'", UserWarning, stacklevel=1)
        warnings.warn("something else", UserWarning, stacklevel=1)
    torch.use_deterministic_algorithms(False)
    assert [str(w.message) for w in caught] == ["something else"]


def test_seed_worker_derives_numpy_seed_from_torch():
    torch.manual_seed(123)
    seed_worker(0)
    a = np.random.rand()
    torch.manual_seed(123)
    seed_worker(0)
    assert np.random.rand() == a


def test_dataloader_generator_repeats_shuffling():
    data = list(range(20))
    order = lambda: [int(x) for b in torch.utils.data.DataLoader(data, batch_size=5, shuffle=True,
                                                                 generator=dataloader_generator(3))
                     for x in b]
    assert order() == order()
    assert sorted(order()) == data


def test_profiles(monkeypatch):
    monkeypatch.delenv("COURSE_PROFILE", raising=False)
    assert get_profile().name == "tiny"
    monkeypatch.setenv("COURSE_PROFILE", "full")
    full = get_profile()
    assert (full.presize, full.size, full.batch_size, full.arch) == (460, 224, 64, "resnet34")
    assert get_profile("tiny").is_tiny
    with pytest.raises(ValueError, match="tiny.*full|full.*tiny"):
        get_profile("huge")


def test_results_are_checked_only_in_the_uncapped_tiny_profile(monkeypatch):
    monkeypatch.delenv("COURSE_MAX_BATCHES", raising=False)
    assert get_profile("tiny").checks_results
    assert not get_profile("full").checks_results  # the book's figures, not the tiny pets' thresholds
    monkeypatch.setenv("COURSE_MAX_BATCHES", "1")  # smoke runs and the browser test train too little
    assert not get_profile("tiny").checks_results
    monkeypatch.setenv("COURSE_MAX_BATCHES", " ")
    assert get_profile("tiny").checks_results
    monkeypatch.setenv("COURSE_MAX_BATCHES", "0")  # the Learner reads 0 as no cap: then results are checked too
    assert get_profile("tiny").checks_results


def test_batch_size_can_be_overridden_and_nonsense_is_refused(monkeypatch):
    monkeypatch.setenv("COURSE_BATCH_SIZE", "8")
    full = get_profile("full")
    assert (full.batch_size, full.size, full.presize) == (8, 224, 460)  # only the batch size changes
    monkeypatch.setenv("COURSE_BATCH_SIZE", "1")
    with pytest.raises(ValueError, match="COURSE_BATCH_SIZE='1'.*at least 2"):
        get_profile("tiny")
    monkeypatch.setenv("COURSE_BATCH_SIZE", "lots")
    with pytest.raises(ValueError, match="COURSE_BATCH_SIZE"):
        get_profile("tiny")
    monkeypatch.delenv("COURSE_BATCH_SIZE")
    assert get_profile("tiny").batch_size == 32
