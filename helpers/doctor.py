"""``python -m helpers doctor``: is this install able to run the course? (README, "Start").

It prints versions, the device, threads, the dataset cache (its size, and any folders that interrupted
builds left, with the command that removes them) and the profile, and exits non-zero with a message that
says what to do when something the notebooks need is broken. ``python -m helpers clean`` removes those
leftovers.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.metadata as md
import os
import platform
import re
from pathlib import Path

REQUIRED = ["torch", "torchvision", "numpy", "PIL", "matplotlib", "pandas", "ipywidgets", "tqdm"]
REPO_ROOT = Path(__file__).resolve().parent.parent
RECREATE = "Recreate the environment: `rm -rf .venv && make install`."


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else ""


def pinned_versions(requirements: Path = REPO_ROOT / "requirements.txt") -> dict[str, str]:
    """The ``name==version`` pins of requirements.txt, keyed by lower-case name (python -m helpers doctor)."""
    pins = {}
    if requirements.exists():
        for line in requirements.read_text().splitlines():
            m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+)", line)
            if m:
                pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def check_install() -> list[str]:
    """Every problem found, each a sentence that says what to do; empty when all is well (python -m helpers doctor)."""
    problems, failed = [], []
    for name in REQUIRED:
        try:
            importlib.import_module(name)
        except Exception as e:  # an import can fail with far more than ImportError
            failed.append(name)
            problems.append(f"cannot import {name} ({type(e).__name__}: {_first_line(e)}). {RECREATE}")
    # Without torch this check would only repeat the import error. A torchvision that does not import is
    # still checked: the usual cause is operators built for another torch, which the message below explains.
    if "torch" not in failed:
        try:
            import torch
            import torchvision  # noqa: F401
            boxes = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
            torch.ops.torchvision.nms(boxes, torch.tensor([1.0]), 0.5)
        except Exception as e:
            problems.append(
                "torchvision's compiled operators do not load with this torch "
                f"({type(e).__name__}: {_first_line(e)}). torch and torchvision must be "
                f"a matched pair, as pinned in requirements.txt. {RECREATE}")
    for name, wanted in pinned_versions().items():
        try:
            have = md.version(name)
        except md.PackageNotFoundError:
            continue  # the import checks above report what matters
        if name in ("torch", "torchvision") and have.split("+")[0] != wanted.split("+")[0]:
            problems.append(f"{name} {have} is installed but requirements.txt pins {wanted}; "
                            "run `rm -rf .venv && make install`.")
    return problems


def report() -> list[tuple[str, str]]:
    """The facts the doctor prints, as (label, value) rows (python -m helpers doctor)."""
    import torch

    from helpers.device import get_device
    from helpers.profiles import get_profile

    rows = [("python", platform.python_version()), ("platform", platform.platform())]
    for dist in ["torch", "torchvision", "numpy", "pillow", "matplotlib", "pandas", "ipywidgets", "jupyterlab",
                 "nbval"]:
        try:
            rows.append((dist, md.version(dist)))
        except md.PackageNotFoundError:
            rows.append((dist, "not installed"))
    device = get_device()
    rows.append(("device", str(device) + (f" ({torch.cuda.get_device_name(0)})" if device.type == "cuda" else "")))
    rows.append(("torch threads", f"{torch.get_num_threads()} (cpu count {os.cpu_count()})"))
    # Which vector kernels torch picked on this CPU: their sums round differently, one reason notebooks print few
    # digits.
    rows.append(("cpu kernels", torch.backends.cpu.get_cpu_capability()))
    rows.extend(cache_rows())
    profile = get_profile()
    rows.append(("profile", f"{profile.name} (set COURSE_PROFILE=tiny|full)"))
    return rows


CLEAN_COMMAND = "python -m helpers clean"


def _size(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:,.1f} MB" if n_bytes < 2**30 else f"{n_bytes / 2**30:,.2f} GB"


def cache_rows() -> list[tuple[str, str]]:
    """The data cache: where, what and how big, and what interrupted writers left (python -m helpers doctor).

    The leftovers row names the command that removes them.
    """
    from helpers.cache import cache_dir, disk_usage, leftovers

    try:
        root = cache_dir()
        present = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")) \
            if root.is_dir() else []
        rows = [("data cache", f"{root} ({', '.join(present) if present else 'empty'}), "
                               f"{_size(disk_usage(root)) if root.is_dir() else '0 MB'} in all")]
        left = leftovers(root)
        if left:
            rows.append(("leftovers", f"{len(left)} leftover(s) of interrupted builds, downloads or writes, "
                                      f"{_size(sum(disk_usage(p) for p in left))}: {', '.join(p.name for p in left)}. "
                                      f"Remove them with `{CLEAN_COMMAND}` when no notebook or training run is "
                                      "fetching data (otherwise the next call for the same data removes them "
                                      "once they are an hour old)"))
        else:
            rows.append(("leftovers", "none"))
        return rows
    except Exception as e:
        return [("data cache", f"unknown ({type(e).__name__}: {e})")]


def clean() -> int:
    """Delete the data cache's leftovers of interrupted builds and downloads (python -m helpers clean)."""
    from helpers.cache import cache_dir, disk_usage, remove_leftovers
    from helpers.cache import leftovers as find_leftovers

    found = find_leftovers()
    sizes = sum(disk_usage(p) for p in found)
    removed = remove_leftovers()
    for path in removed:
        print(f"removed {path}")
    print(f"clean: {len(removed)} leftover(s) removed from {cache_dir()}, {_size(sizes)} freed.")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Print the report, or each problem and what to do; exit status 0 when all is well (python -m helpers doctor)."""
    parser = argparse.ArgumentParser(prog="python -m helpers", description="Check the course install.")
    parser.add_argument("command", choices=["doctor", "clean"],
                        help="doctor: print versions and check the install; clean: delete what interrupted "
                             "downloads and dataset builds left in the data cache")
    if parser.parse_args(argv).command == "clean":
        return clean()
    problems = check_install()
    if problems:
        print("The install is broken:")
        for p in problems:
            print(f"  - {p}")
        return 1
    try:
        rows = report()
    except (ValueError, RuntimeError) as e:  # the install works but a setting does not, e.g. COURSE_DEVICE=gpu
        print(f"The install works, but the course cannot run with these settings: {e}")
        return 1
    for label, value in rows:
        print(f"{label:>14}: {value}")
    print("doctor: all good.")
    return 0
