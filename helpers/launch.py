"""``python -m helpers lab`` and ``python -m helpers test``: ``make lab`` and ``make test`` without make.

For Windows, where make is rare (docs/platforms.md).

Both need a clone of the course repository (the notebooks and tests are not part of the installed package).
``test`` sets what the Makefile's TINY_ENV sets, so that nbval compares the stored outputs under the same
conditions; anything after the command goes to pytest (e.g. ``python -m helpers test -n 0``).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The Makefile's TINY_ENV and NBVAL (tests/test_launch.py keeps the two in step).
TINY_ENV = {"COURSE_PROFILE": "tiny", "COURSE_DEVICE": "cpu", "OMP_NUM_THREADS": "1"}
NBVAL = ["--nbval", "--nbval-current-env", "--nbval-sanitize-with", "tests/nbval_sanitize.cfg"]
PYTEST_OPTIONS = ["-p", "no:cacheprovider", "-rs", "--timeout", "900", "--dist", "loadscope", "--no-loadscope-reorder"]


def lab_command() -> list[str]:
    """JupyterLab on the notebooks folder, from this Python (python -m helpers lab).

    Root in a container needs --allow-root.
    """
    command = [sys.executable, "-m", "jupyterlab", "--notebook-dir=notebooks"]
    if hasattr(os, "getuid") and os.getuid() == 0:
        command.append("--allow-root")
    return command


def suite_command(extra: list[str], workers: str = "auto") -> list[str]:
    """The whole suite as ``make test`` runs it: unit tests and nbval on every notebook (python -m helpers test)."""
    return [sys.executable, "-m", "pytest", "tests", "notebooks", *NBVAL, *PYTEST_OPTIONS, "-n", workers, *extra]


def main(argv: list[str] | None = None) -> int:
    """Run ``lab`` or ``test`` from the repository root; ``--dry-run`` prints it (python -m helpers lab / test)."""
    parser = argparse.ArgumentParser(prog="python -m helpers", description="make lab / make test without make.")
    parser.add_argument("command", choices=["lab", "test"])
    parser.add_argument("--dry-run", action="store_true", help="print the command and its settings, run nothing")
    parser.add_argument("--workers", default=os.environ.get("TEST_WORKERS", "auto"),
                        help="pytest-xdist workers for test (auto: one per core; 0: one process)")
    args, extra = parser.parse_known_args(argv)
    if not (REPO / "notebooks").is_dir() or not (REPO / "tests").is_dir():
        print(f"`python -m helpers {args.command}` runs in a clone of the course repository, and this helpers "
              f"({Path(__file__).parent}) was installed without one. Clone the repository, install it with "
              "`python -m pip install -r requirements.txt` and `python -m pip install --no-deps -e .`, and run "
              "the command there.")
        return 2
    command = lab_command() if args.command == "lab" else suite_command(extra, args.workers)
    env = dict(os.environ, **(TINY_ENV if args.command == "test" else {}))
    if args.dry_run:
        settings = " ".join(f"{k}={v}" for k, v in TINY_ENV.items()) if args.command == "test" else ""
        print(f"(in {REPO}) {settings} {subprocess.list2cmdline(command)}".replace(")  ", ") "))
        return 0
    return subprocess.call(command, cwd=REPO, env=env)
