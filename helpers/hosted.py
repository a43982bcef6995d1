"""Where a notebook runs (Colab, Kaggle, a plain Jupyter) and what its first cell sets up there (the set-up cell).

The first cell of every notebook installs the course when ``import helpers`` fails, then calls ``setup_here()``:

* on Kaggle (``KAGGLE_KERNEL_RUN_TYPE`` is set) the data cache goes to ``/kaggle/working``, the one folder Kaggle
  keeps writable, and an attached copy of Oxford-IIIT Pet under ``/kaggle/input`` is used where it lies: the cache
  gets a finished ``oxford-iiit-pet`` folder whose entries are links into the read-only copy, so nothing is copied;
* on Colab the cache stays in ``~/.cache`` (deleted with the runtime) unless the learner asks for Google Drive
  (``setup_here(drive=True)`` or ``COURSE_DRIVE=1``): Colab then asks for permission; nothing is mounted silently;
* everywhere it prints one line: helpers' version, the device, the profile and the data cache, and it stops with
  a plain instruction when the install changed a library that this process had already imported.

The data cache is chosen through ``COURSE_DATA`` (``helpers.cache.cache_dir``); a value the learner set wins.
"""
from __future__ import annotations

import importlib.metadata as md
import importlib.util
import os
import sys
from pathlib import Path

from helpers.cache import CACHE_ENV, build_once, cache_dir, is_complete

KAGGLE_ENV = "KAGGLE_KERNEL_RUN_TYPE"  # set by Kaggle in every notebook session
KAGGLE_ROOT_ENV = "COURSE_KAGGLE_ROOT"  # stands in for /kaggle (tests)
DRIVE_ENV = "COURSE_DRIVE"
COLAB_MOUNT = "/content/drive"
PETS_FOLDER = "oxford-iiit-pet"  # the name the full profile's archive extracts to (helpers.cache.archive_stem)
PET_EXAMPLES = ("Abyssinian_1.jpg", "yorkshire_terrier_1.jpg")  # two file names every copy of the pets has
# Libraries a notebook process may hold in memory at an older version than the one pip just installed.
WATCHED = {"numpy": "numpy", "torch": "torch", "torchvision": "torchvision", "pandas": "pandas",
           "matplotlib": "matplotlib", "PIL": "pillow", "scipy": "scipy", "sklearn": "scikit-learn",
           "ipywidgets": "ipywidgets"}
RESTART = {"colab": "Runtime > Restart session", "kaggle": "Run > Restart & clear cell outputs",
           "local": "Kernel > Restart Kernel"}


def host() -> str:
    """``"kaggle"``, ``"colab"`` or ``"local"``: where this notebook runs (the set-up cell)."""
    if os.environ.get(KAGGLE_ENV):
        return "kaggle"
    try:
        if importlib.util.find_spec("google.colab") is not None:
            return "colab"
    except (ImportError, ValueError):  # no google package at all, or one without a spec
        pass
    return "local"


def kaggle_root() -> Path:
    """Kaggle's top folder: ``/kaggle``, or ``$COURSE_KAGGLE_ROOT`` in the tests (the set-up cell)."""
    return Path(os.environ.get(KAGGLE_ROOT_ENV) or "/kaggle")


def find_attached_pets(input_dir: Path | str, max_depth: int = 4) -> Path | None:
    """The folder of pet pictures in an attached dataset under ``input_dir``, or None (the set-up cell on Kaggle)."""
    input_dir = Path(input_dir)
    if not input_dir.is_dir():
        return None
    for folder, subfolders, files in os.walk(input_dir, followlinks=True):
        if all(name in files for name in PET_EXAMPLES):
            return Path(folder)
        if len(Path(folder).relative_to(input_dir).parts) >= max_depth:
            subfolders.clear()  # attached datasets are shallow; do not walk a whole mounted competition
        subfolders.sort()
    return None


def link_attached_pets(images: Path | str, cache: Path | str | None = None) -> Path:
    """Make ``<cache>/oxford-iiit-pet`` a finished dataset linking to ``images`` (the set-up cell on Kaggle).

    Its ``images`` links to the attached ``images``: read in place, not copied.
    """
    images, cache = Path(images), Path(cache) if cache is not None else cache_dir()

    def write(staging: Path) -> None:
        (staging / "images").symlink_to(images, target_is_directory=True)
        annotations = images.parent / "annotations"
        if annotations.is_dir():
            (staging / "annotations").symlink_to(annotations, target_is_directory=True)

    return build_once(cache / PETS_FOLDER, write, note=f"links to the read-only copy in {images}")


def use_kaggle() -> list[str]:
    """Keep the data cache in Kaggle's working folder and use attached pets (the set-up cell on Kaggle)."""
    root = kaggle_root()
    os.environ.setdefault(CACHE_ENV, str(root / "working" / "pets-course"))
    notes = [f"Kaggle: the data cache is {cache_dir()}, in the one writable folder (it outlives the session only "
             "when the notebook's Persistence option keeps files)."]
    target = cache_dir() / PETS_FOLDER
    pictures = None if is_complete(target) else find_attached_pets(root / "input")
    if pictures is not None:
        link_attached_pets(pictures)
        notes.append(f"Kaggle: the full profile reads the pets attached in {pictures} (linked, not copied).")
    elif not is_complete(target):
        notes.append("Kaggle: no copy of the pets is attached; the full profile downloads them (812 MB), which needs "
                     "Internet on in the notebook's settings (Kaggle asks for a verified phone number). Or add the "
                     "Oxford-IIIT Pet dataset with 'Add Input' and run this cell again.")
    return notes


def use_colab(drive: bool | None = None, mount_point: str = COLAB_MOUNT) -> list[str]:
    """Keep the data cache on Google Drive only when asked (the set-up cell on Colab).

    Asking is ``drive=True`` or ``COURSE_DRIVE=1``.
    """
    if drive is None:
        drive = os.environ.get(DRIVE_ENV, "").strip().lower() in ("1", "true", "yes")
    if not drive:
        return [f"Colab: the data cache {cache_dir()} is deleted with the runtime. To keep the full profile's "
                "812 MB download, run setup_here(drive=True): Colab asks to connect your Google Drive."]
    if os.environ.get(CACHE_ENV):
        return [f"Colab: COURSE_DATA is already set, so the data cache stays {cache_dir()}; Drive was not mounted."]
    from google.colab import drive as google_drive  # only importable on Colab

    google_drive.mount(mount_point)
    os.environ[CACHE_ENV] = str(Path(mount_point) / "MyDrive" / "pets-course")
    return [f"Colab: the data cache is {cache_dir()} on your Google Drive; it stays between sessions."]


def stale_modules() -> list[str]:
    """Libraries imported here whose installed version has changed since; a restart loads them (the set-up cell)."""
    stale = []
    for module, dist in WATCHED.items():
        loaded = getattr(sys.modules.get(module), "__version__", None)
        if loaded is None:
            continue
        try:
            installed = md.version(dist)
        except md.PackageNotFoundError:
            continue
        # torch reports its build ("2.14.1+cu130") where the installed metadata may not: compare the release.
        if str(loaded).split("+")[0] != installed.split("+")[0]:
            stale.append(f"{dist} (running {loaded}, installed {installed})")
    return stale


def summary_line() -> str:
    """One line: helpers' version, the device, the profile and the data cache, as the doctor says (the set-up cell)."""
    import torch

    import helpers
    from helpers.device import get_device
    from helpers.profiles import get_profile

    device = get_device()
    name = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    return (f"helpers {helpers.__version__} | device {device}{name} | profile {get_profile().name} | "
            f"data cache {cache_dir()}")


def setup_here(drive: bool | None = None) -> None:
    """What every notebook's first cell runs after ``import helpers``: the data cache, then a summary (the set-up cell).

    The data cache is the host's; the summary is one line.
    """
    where = host()
    stale = stale_modules()
    if stale:
        raise RuntimeError(f"The install just changed {', '.join(stale)}, already loaded in this notebook. Restart "
                           f"the runtime ({RESTART[where]}) and run this cell again; nothing is reinstalled then.")
    notes = use_kaggle() if where == "kaggle" else use_colab(drive) if where == "colab" else []
    line = summary_line()
    from helpers.device import get_device

    if where != "local" and get_device().type == "cpu":
        notes.append("No GPU in this session: the tiny profile runs anyway; for the full profile pick a GPU "
                     "(Colab: Runtime > Change runtime type; Kaggle: Settings > Accelerator).")
    print(line, *notes, sep="\n")  # printed, not returned: the cell shows it once
