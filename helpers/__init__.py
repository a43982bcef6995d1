"""Helpers for the pet-breeds course: each module is one idea taught in one notebook.

Notebooks import what they need, e.g. ``from helpers.data import pets_tiny``.
Only the small, always-needed pieces are re-exported here.
"""
from __future__ import annotations

import atexit
import gc
import importlib
from typing import Any

__version__ = "0.1.0"
__all__ = ["get_device", "set_seed", "seed_worker", "Profile", "get_profile", "__version__"]

# The re-exports are imported on first use, not here: `python -m helpers doctor` imports this package, and
# it must still run (and say how to repair the install) when torch itself is broken.
_LAZY = {"get_device": "helpers.device", "set_seed": "helpers.device", "seed_worker": "helpers.device",
         "Profile": "helpers.profiles", "get_profile": "helpers.profiles"}


FAST_EXIT_ENV = "COURSE_FAST_EXIT"


def fast_exit() -> bool:
    """Skip the interpreter's last garbage collection at exit, unless ``COURSE_FAST_EXIT=0`` (notebook 00).

    At exit Python runs its garbage collector over every object still alive, and torch and torchvision leave
    millions: 2 to 3 seconds per process, paid at every kernel restart, every notebook test and every training
    subprocess. ``gc.freeze()`` at exit moves them out of the collector's sight; the operating system frees the
    memory anyway. The cost: objects caught in reference cycles are not finalised at exit (their ``__del__`` and
    weakref callbacks do not run), which matters only to code that relies on that to flush or clean up. Set
    ``COURSE_FAST_EXIT=0`` before importing helpers to keep Python's usual exit. Returns whether it is on.
    """
    import os

    if os.environ.get(FAST_EXIT_ENV, "1").strip() == "0":
        return False
    # atexit runs handlers last-in first-out, so the ones registered after this one still run before it.
    atexit.register(gc.freeze)
    return True


FAST_EXIT = fast_exit()  # on by default: the one thing importing helpers changes in the interpreter


def __getattr__(name: str) -> Any:
    """Import a re-exported name from its module the first time it is asked for (notebook 01)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'helpers' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value  # later look-ups find it directly
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
