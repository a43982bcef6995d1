"""``python -m helpers lab|test`` (Windows, no make) runs what the Makefile's lab and test targets run."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from helpers import launch

MAKEFILE = (Path(__file__).resolve().parent.parent / "Makefile").read_text()


def make_variable(name: str) -> str:
    value = re.search(rf"^{name}\s*:?=\s*(.*)$", MAKEFILE, re.M).group(1)
    return re.sub(r"\$\((\w+)\)", lambda m: make_variable(m.group(1)), value)


def test_test_settings_match_the_makefile():
    assert dict(kv.split("=", 1) for kv in make_variable("TINY_ENV").split()) == launch.TINY_ENV
    assert make_variable("NBVAL").split() == launch.NBVAL
    recipe = re.search(r"^test: .*\n((?:\t.*\n)+)", MAKEFILE, re.M).group(1).replace("\\\n", " ")
    options = recipe.split("$(NBVAL)", 1)[1].split()
    assert sorted(options) == sorted(launch.PYTEST_OPTIONS + ["-n", "$(TEST_WORKERS)", "$(PYTEST_ARGS)"])
    command = launch.suite_command(["-x"], workers="0")
    assert command[1:5] == ["-m", "pytest", "tests", "notebooks"] and command[-3:] == ["-n", "0", "-x"]


def test_lab_and_test_run_from_the_command_line(child_env):
    # --dry-run prints the command the real run would start: the settings, then the command line.
    settings = " ".join(f"{k}={v}" for k, v in launch.TINY_ENV.items())
    suite = subprocess.list2cmdline(launch.suite_command(["-x"], "0"))
    expected = {"lab": ([], subprocess.list2cmdline(launch.lab_command())),
                "test": (["--workers", "0", "-x"], f"{settings} {suite}")}
    for name, (options, command) in expected.items():
        done = subprocess.run([sys.executable, "-m", "helpers", name, "--dry-run", *options], capture_output=True,
                              text=True, timeout=120, env=child_env())
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [f"(in {launch.REPO}) {command}"], done.stdout
