"""The two ways to run the course: ``tiny`` (offline, CPU, minutes) and ``full`` (real pets on a GPU); see notebook 01.

Every notebook starts with ``P = get_profile()``. Choose the profile with the environment variable
``COURSE_PROFILE=full`` or by writing ``get_profile("full")`` in that first cell. ``COURSE_BATCH_SIZE=N``
overrides the profile's batch size (a GPU with less memory; the full profile's smoke run on a CPU).
``COURSE_MAX_BATCHES=N`` (read by the Learner) cuts every training pass short, and then no notebook asserts what
training achieved (``Profile.checks_results``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace

PROFILE_ENV = "COURSE_PROFILE"
BATCH_SIZE_ENV = "COURSE_BATCH_SIZE"
MAX_BATCHES_ENV = "COURSE_MAX_BATCHES"  # the Learner's cap on batches per pass (max_batches below)


@dataclass(frozen=True)
class Profile:
    """Every size and setting that differs between a laptop run and the real thing (notebook 01)."""

    name: str
    presize: int        # side of the square each image is resized to on the CPU (item transform)
    size: int           # side of the square the batch augmentation produces (model input)
    batch_size: int
    arch: str           # the ResNet notebooks 04-05 fine-tune
    weights: str        # "offline": the backbone shipped in helpers/assets; "imagenet": torchvision's download
    big_arch: str       # the deeper model of notebook 06
    epochs: int         # the epoch count the notebooks' main fits use
    num_workers: int
    cache: bool         # keep the presized images in memory between epochs (pets_dataloaders, notebook 02)

    @property
    def is_tiny(self) -> bool:
        """Whether this is the tiny profile (notebook 00)."""
        return self.name == "tiny"

    @property
    def checks_results(self) -> bool:
        """Whether notebooks assert what training achieved: in the tiny profile, trained in full (notebook 04).

        The thresholds in those assertions were measured on the tiny pets. The full profile's are the book's, and
        a run capped by ``COURSE_MAX_BATCHES`` (the smoke runs, the browser test) trains too little to meet any.
        """
        return self.is_tiny and max_batches() is None


def max_batches() -> int | None:
    """``COURSE_MAX_BATCHES`` as a number, or None: the cap on batches per phase in smoke runs (notebook 04)."""
    value = os.environ.get(MAX_BATCHES_ENV, "").strip()
    if not value:
        return None
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"{MAX_BATCHES_ENV}={value!r} is not a whole number: set it to N > 0 to stop every "
                         "epoch after N batches, or unset it.") from None
    return n if n > 0 else None


PROFILES = {
    # Small enough for a laptop CPU: a minute or two for most notebooks, under four for notebook 05.
    "tiny": Profile(name="tiny", presize=128, size=64, batch_size=32, arch="resnet10", weights="offline",
                    big_arch="resnet50", epochs=1, num_workers=0, cache=True),
    # The book's settings: Resize(460), 224-pixel crops, batches of 64, ImageNet-pretrained resnet34.
    "full": Profile(name="full", presize=460, size=224, batch_size=64, arch="resnet34", weights="imagenet",
                    big_arch="resnet50", epochs=2, num_workers=min(8, os.cpu_count() or 1), cache=False),
}


def get_profile(name: str | None = None) -> Profile:
    """The profile named here, else in ``$COURSE_PROFILE``, else ``tiny`` (notebook 00 onwards).

    ``$COURSE_BATCH_SIZE`` overrides its batch size.
    """
    chosen = (name or os.environ.get(PROFILE_ENV) or "tiny").strip().lower()
    if chosen not in PROFILES:
        raise ValueError(f"unknown profile {chosen!r}: use one of {sorted(PROFILES)} "
                         f"(set {PROFILE_ENV}=tiny or {PROFILE_ENV}=full, or pass the name to get_profile).")
    profile = PROFILES[chosen]
    batch_size = os.environ.get(BATCH_SIZE_ENV, "").strip()
    if batch_size:
        if not batch_size.isdigit() or int(batch_size) < 2:
            # BatchNorm needs at least two items per batch to compute a variance in training.
            raise ValueError(f"{BATCH_SIZE_ENV}={batch_size!r} is not a batch size: set it to a whole number of at "
                             f"least 2 (e.g. {BATCH_SIZE_ENV}=32 for a GPU with less memory), or unset it to use "
                             f"the profile's {profile.batch_size}.")
        profile = replace(profile, batch_size=int(batch_size))
    return profile
