"""Files of the course repository that notebook 06 reads, also from an install without the repository (notebook 06).

The recorded benchmark (bench/results/models_cpu.csv) ships with the package as helpers/assets/models_cpu.csv
(tests/test_packaging.py keeps the two identical). A script such as bench/models.py exists only in a clone:
``repository_file`` says whether it is there, so a notebook can say what it skips instead of failing.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

ASSETS = Path(__file__).resolve().parent / "assets"
REPO = Path(__file__).resolve().parent.parent


def recorded_benchmark(name: str = "models_cpu.csv") -> pd.DataFrame:
    """A recorded result of bench/models.py, as shipped with helpers (notebook 06)."""
    path = ASSETS / name
    if not path.is_file():
        shipped = sorted(p.name for p in ASSETS.glob("*.csv"))
        raise FileNotFoundError(f"no recorded benchmark {name!r} ships with helpers; choose one of {shipped}.")
    return pd.read_csv(path)


def repository_file(relative: str) -> Path | None:
    """``relative`` (e.g. ``"bench/models.py"``) in the clone helpers came from, or None without one (notebook 06)."""
    path = REPO / relative
    return path if (REPO / "pyproject.toml").is_file() and path.is_file() else None
