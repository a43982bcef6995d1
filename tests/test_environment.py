"""The environment files agree with each other, and the install check catches a broken install."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import doctor

ROOT = Path(__file__).resolve().parent.parent


def requirement_lines() -> list[str]:
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def test_every_requirement_is_pinned_exactly():
    for line in requirement_lines():
        assert re.match(r"^[A-Za-z0-9_.\-\[\]]+==[^=\s]+$", line), f"requirements.txt: {line!r} is not an exact pin"


def test_torch_and_torchvision_are_a_matched_pair():
    pins = doctor.pinned_versions()
    torch_minor = tuple(int(x) for x in pins["torch"].split(".")[:2])
    vision_minor = tuple(int(x) for x in pins["torchvision"].split(".")[:2])
    # torchvision 0.N pairs with torch 2.(N-15): 0.29 <-> 2.14, 0.28 <-> 2.13, ...
    assert torch_minor == (2, vision_minor[1] - 15), (f"torch {pins['torch']} does not pair with torchvision "
                                                      f"{pins['torchvision']}")
    assert "+cpu" not in pins["torch"], "a +cpu torch build has no matching torchvision wheel in the registry"


def test_environment_yml_installs_requirements_txt():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    python = next(d for d in deps if isinstance(d, str) and d.startswith("python"))
    version = tuple(int(x) for x in python.split("=")[1].split(".")[:2])
    assert version >= (3, 10), "the course needs Python 3.10+"
    pip_lists = [d["pip"] for d in deps if isinstance(d, dict) and "pip" in d]
    assert pip_lists, "environment.yml should install the pip requirements"
    pip_items = pip_lists[0]
    assert "-r requirements.txt" in pip_items, "environment.yml must take its pins from requirements.txt"
    # Nothing pinned twice with different versions.
    pins = doctor.pinned_versions()
    for item in pip_items + [d for d in deps if isinstance(d, str)]:
        m = re.match(r"^([A-Za-z0-9_.\-]+)\s*==?\s*([^\s]+)$", item)
        if m and m.group(1).lower() in pins:
            assert pins[m.group(1).lower()] == m.group(2), (f"environment.yml pins {item} but requirements.txt pins "
                                                            f"{pins[m.group(1).lower()]}")


def test_installed_versions_match_the_pins():
    import importlib.metadata as md
    for name, wanted in doctor.pinned_versions().items():
        assert md.version(name).split("+")[0] == wanted, (f"{name} {md.version(name)} installed, {wanted} pinned: "
                                                          "run `make install`")


@pytest.mark.slow  # starts Python processes that import torch, or builds a data set
def test_doctor_passes_here(child_env):
    result = subprocess.run([sys.executable, "-m", "helpers", "doctor"], capture_output=True, text=True, timeout=120,
                            env=child_env())
    assert result.returncode == 0, result.stdout + result.stderr
    for label in ["torch", "torchvision", "device", "torch threads", "cpu kernels", "data cache", "profile"]:
        assert re.search(rf"^\s*{label}: ", result.stdout, re.M), f"doctor output lacks {label!r}:\n{result.stdout}"


def test_doctor_reports_broken_torchvision_ops(monkeypatch):
    import torch

    class BrokenOps:
        def __getattr__(self, name):
            raise RuntimeError("operator torchvision::nms does not exist")

    monkeypatch.setattr(torch.ops, "torchvision", BrokenOps(), raising=False)
    problems = doctor.check_install()
    assert any("matched pair" in p for p in problems), problems
    assert doctor.main(["doctor"]) == 1


def test_doctor_explains_a_torch_that_does_not_import(tmp_path):
    # A torch that fails on import, found first on the path: the doctor must still run and say what to do,
    # instead of a traceback from importing the helpers package.
    fake = tmp_path / "torch"
    fake.mkdir()
    (fake / "__init__.py").write_text('raise ImportError("libtorch_cpu.so: cannot open shared object file")\n')
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "helpers", "doctor"], capture_output=True, text=True,
                            timeout=120, cwd=ROOT, env=env)
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert "The install is broken" in result.stdout, result.stdout
    assert "cannot import torch (ImportError: libtorch_cpu.so" in result.stdout, result.stdout
    assert "rm -rf .venv && make install" in result.stdout


def test_doctor_names_a_bad_course_device(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_DEVICE", "gpu")
    assert doctor.main(["doctor"]) == 1
    assert "COURSE_DEVICE" in capsys.readouterr().out


def test_doctor_reports_version_mismatch(monkeypatch):
    monkeypatch.setattr(doctor, "pinned_versions", lambda: {"torch": "1.0.0"})
    assert any("pins 1.0.0" in p for p in doctor.check_install())


@pytest.mark.slow  # two fresh Pythons that import torch and torchvision
def test_a_process_that_imported_helpers_freezes_its_objects_at_exit(child_env):
    # The handler registered first runs last: by then helpers' own handler must have frozen the objects torch
    # and torchvision created, so that the final garbage collections skip them (seconds per kernel here).
    code = ("import atexit, gc\n"
            "atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count()))\n"
            "import helpers, torch, torchvision\n"
            "print('frozen before exit:', gc.get_freeze_count())\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=child_env(COURSE_FAST_EXIT=None))
    assert done.returncode == 0, done.stderr
    before, at_exit = (int(line.rsplit(":", 1)[1]) for line in done.stdout.splitlines())
    assert before == 0 and at_exit > 100_000, done.stdout
    # COURSE_FAST_EXIT=0 keeps Python's usual exit: nothing frozen.
    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                           env=child_env(COURSE_FAST_EXIT="0"))
    assert plain.returncode == 0, plain.stderr
    assert [int(line.rsplit(":", 1)[1]) for line in plain.stdout.splitlines()] == [0, 0], plain.stdout


# Settings that would hold torch, oneDNN or MKL to particular CPU kernels. What nbval compares must hold on the
# machine's own kernels (CONTRIBUTING.md, "Stored outputs"), and library code must not read a test-only setting.
KERNEL_PINS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS")


def test_no_cpu_kernels_are_pinned():
    files = [ROOT / "Makefile", ROOT / ".ci" / "run", ROOT / "tests" / "conftest.py", ROOT / "pyproject.toml",
             *sorted((ROOT / "bench").glob("*.py")), *sorted((ROOT / "helpers").rglob("*.py"))]
    for path in files:
        text = path.read_text()
        pinned = [setting for setting in KERNEL_PINS if setting in text]
        assert not pinned, f"{path.relative_to(ROOT)} names {pinned}: run on the machine's own CPU kernels"
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^test: .*\n\t(.+)", makefile, re.M)
    assert recipe and recipe.group(1).startswith("$(TINY_ENV) "), "make test does not use TINY_ENV"
