"""Helpers for the pet-breeds course: each module is one idea taught in one notebook.

Notebooks import what they need, e.g. ``from helpers.data import pets_tiny``.
Only the small, always-needed pieces are re-exported here.
"""
from helpers.device import get_device, set_seed, seed_worker
from helpers.profiles import Profile, get_profile

__version__ = "0.1.0"
__all__ = ["get_device", "set_seed", "seed_worker", "Profile", "get_profile", "__version__"]
