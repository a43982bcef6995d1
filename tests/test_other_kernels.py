"""The stored outputs hold on other CPU kernels and thread counts, not only on the machine that wrote them.

`make test` compares every notebook with its stored outputs on this machine's own kernels, one torch thread per
worker. Here the notebooks whose outputs depend most on the order of float sums (04's finder curve, 06's float16
gradient errors, 08's trained model) run again, in a fresh pytest with nbval, on torch's portable kernels
(``ATEN_CPU_CAPABILITY=default``: no AVX2 or AVX-512 code in torch's own operators) and two threads, and are
compared with the same stored outputs. A compared digit that hangs on torch's kernels or on the thread count fails
here, on whatever machine runs the suite. (MKL and oneDNN, behind matrix products and convolutions, keep choosing
their own code; CONTRIBUTING.md, "Stored outputs", says how a notebook stays clear of their digits too.)
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SENSITIVE = ("04_lr_finder.ipynb", "06_deeper_models_mixed_precision.ipynb", "08_heatmaps.ipynb")
OTHER_KERNELS = {"ATEN_CPU_CAPABILITY": "default", "OMP_NUM_THREADS": "2"}
# pytest-xdist keeps every core busy, so two more threads share them with other work: threads that wait for each
# other must sleep, not spin (spinning, a training step took 6 times as long here). It changes no result.
THREAD_WAITING = {"OMP_WAIT_POLICY": "PASSIVE"}


def other_kernels_env() -> dict[str, str]:
    return {**os.environ, **OTHER_KERNELS, **THREAD_WAITING,
            "COURSE_PROFILE": "tiny", "COURSE_DEVICE": "cpu", "CUDA_VISIBLE_DEVICES": ""}


@pytest.mark.slow  # starts Python processes that import torch, or builds a data set
def test_the_other_kernels_reach_torch():
    # Without this the run below could silently compare on the very kernels the main run used.
    code = "import torch; print(torch.backends.cpu.get_cpu_capability(), torch.get_num_threads())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=other_kernels_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["DEFAULT", OTHER_KERNELS["OMP_NUM_THREADS"]], done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("name", SENSITIVE)
def test_sensitive_notebook_matches_its_stored_outputs_on_other_kernels(name):
    command = [sys.executable, "-m", "pytest", str(ROOT / "notebooks" / name), "--nbval", "--nbval-current-env",
               "--nbval-sanitize-with", str(ROOT / "tests" / "nbval_sanitize.cfg"), "-p", "no:cacheprovider",
               "-p", "no:xdist", "-q", "--timeout", "600"]
    done = subprocess.run(command, cwd=ROOT, env=other_kernels_env(), capture_output=True, text=True, timeout=850)
    assert done.returncode == 0, (
        f"{name} with {OTHER_KERNELS}: its stored outputs no longer match. Print what the lesson needs at the "
        "precision it needs, or tag the cell nbval-ignore-output and assert the claim with a tolerance "
        "(CONTRIBUTING.md, \"Stored outputs\")\n" + done.stdout[-6000:] + done.stderr[-2000:])
