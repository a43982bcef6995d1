"""Test ordering for `make test`, which spreads the suite over every core with pytest-xdist.

pytest-xdist (``--dist loadscope --no-loadscope-reorder``) hands each worker one file at a time, in the order
collected here: a file's fixtures are built in one worker, and all the cells of a notebook run in one worker, in
order, in one kernel. Sorting the longest work first keeps a worker from being left alone at the end with a long
file while the others sit idle:

1. the browser test (it runs the widget notebooks in JupyterLab), then the full profile's runs of every notebook
   (slowest first, for ``make full``, which hands them out one at a time with ``--dist load --maxschedchunk 1``);
2. the notebooks, slowest first, by the execution times stored in their own cells by ``make notebooks``, and among
   them tests/test_other_kernels.py, which runs three of them again, ranked by their stored times together;
3. test files holding a test marked ``slow``;
4. everything else, in its usual order.

The sort is stable, so tests keep their order within a file; without xdist the order changes nothing else.
(``--dist loadgroup`` would let single tests move between workers, but it does not group tests with pytest 9.)
"""
from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from pathlib import Path

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
