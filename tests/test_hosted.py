"""The set-up cell's host-specific part (helpers.hosted): Kaggle's working folder and attached pets, Colab's opt-in
Drive."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from PIL import Image

from helpers import hosted
from helpers.cache import is_complete
from helpers.labelling import get_image_files


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in (hosted.KAGGLE_ENV, hosted.KAGGLE_ROOT_ENV, hosted.DRIVE_ENV, "COURSE_DATA", "COURSE_DEVICE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    before = {name for name in sys.modules if name.split(".")[0] == "google"}
    yield monkeypatch
    for name in [n for n in sys.modules if n.split(".")[0] == "google" and n not in before]:
        del sys.modules[name]  # the stand-in google.colab must not outlive its test


def fake_colab(folder: Path) -> Path:
    """A stand-in google.colab whose drive.mount makes MyDrive and records the call in mounted.txt."""
    package = folder / "google" / "colab"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "drive.py").write_text(
        "from pathlib import Path\n"
        "def mount(point):\n"
        "    (Path(point) / 'MyDrive').mkdir(parents=True, exist_ok=True)\n"
        f"    (Path({str(folder)!r}) / 'mounted.txt').write_text(str(point))\n")
    return folder


def attached_pets(root: Path, per_breed: int = 2) -> Path:
    """A read-only stand-in for an attached Oxford-IIIT Pet dataset, laid out as Kaggle often nests it."""
    images = root / "input" / "the-oxford-pets" / "images" / "images"
    images.mkdir(parents=True)
    (root / "input" / "the-oxford-pets" / "images" / "annotations").mkdir()
    for breed in ("Abyssinian", "yorkshire_terrier", "Bengal"):
        for i in range(1, per_breed + 1):
            Image.new("RGB", (8, 8), (i * 40, 0, 0)).save(images / f"{breed}_{i}.jpg")
    for path in [*images.iterdir(), images]:
        path.chmod(0o555 if path.is_dir() else 0o444)  # Kaggle's inputs are read-only
    return images


def test_host_is_local_without_kaggle_or_colab(clean_env):
    assert hosted.host() == "local"


def test_host_recognises_kaggle_and_colab(clean_env, tmp_path):
    clean_env.syspath_prepend(str(fake_colab(tmp_path / "site")))
    assert hosted.host() == "colab"
    clean_env.setenv(hosted.KAGGLE_ENV, "Interactive")
    assert hosted.host() == "kaggle"


def test_kaggle_keeps_the_cache_in_working_and_reads_attached_pets_in_place(clean_env, tmp_path, capsys):
    root = tmp_path / "kaggle"
    images = attached_pets(root)
    clean_env.setenv(hosted.KAGGLE_ENV, "Interactive")
    clean_env.setenv(hosted.KAGGLE_ROOT_ENV, str(root))
    clean_env.setenv("COURSE_DEVICE", "cpu")
    hosted.setup_here()
    out = capsys.readouterr().out
    cache = root / "working" / "pets-course"
    assert os.environ["COURSE_DATA"] == str(cache) and f"data cache {cache}" in out.splitlines()[0]
    pets = cache / hosted.PETS_FOLDER
    assert is_complete(pets) and (pets / "images").is_symlink() and (pets / "images").resolve() == images.resolve()
    assert (pets / "annotations").is_symlink()
    from helpers.datasets import pets_path
    from helpers.profiles import get_profile
    assert pets_path(get_profile("full")) == pets  # no download: the linked folder counts as finished
    assert len(get_image_files(pets / "images")) == 6
    assert "linked, not copied" in out and "No GPU in this session" in out
    hosted.setup_here()  # a second run changes nothing
    assert "no copy of the pets is attached" not in capsys.readouterr().out


def test_kaggle_without_attached_pets_says_how_to_get_them(clean_env, tmp_path, capsys):
    clean_env.setenv(hosted.KAGGLE_ENV, "Batch")
    clean_env.setenv(hosted.KAGGLE_ROOT_ENV, str(tmp_path / "kaggle"))
    clean_env.setenv("COURSE_DEVICE", "cpu")
    hosted.setup_here()
    out = capsys.readouterr().out
    assert "no copy of the pets is attached" in out and "Internet" in out
    assert not (tmp_path / "kaggle" / "working" / "pets-course" / hosted.PETS_FOLDER).exists()


def test_colab_mounts_drive_only_when_asked(clean_env, tmp_path, capsys):
    site = fake_colab(tmp_path / "site")
    clean_env.syspath_prepend(str(site))
    clean_env.setenv("COURSE_DEVICE", "cpu")
    hosted.setup_here()
    assert not (site / "mounted.txt").exists() and "COURSE_DATA" not in os.environ
    assert "setup_here(drive=True)" in capsys.readouterr().out
    notes = hosted.use_colab(drive=True, mount_point=str(tmp_path / "drive"))
    assert (site / "mounted.txt").read_text() == str(tmp_path / "drive")
    assert os.environ["COURSE_DATA"] == str(tmp_path / "drive" / "MyDrive" / "pets-course")
    assert "Google Drive" in notes[0]


def test_a_library_changed_under_a_running_notebook_asks_for_a_restart(clean_env):
    import types
    clean_env.setitem(sys.modules, "pandas", types.SimpleNamespace(__version__="0.0.1"))
    with pytest.raises(RuntimeError, match=r"pandas \(running 0.0.1, installed .*Restart the runtime \(Kernel > "
                                           r"Restart"):
        hosted.setup_here()


def test_summary_line_names_device_profile_and_cache(clean_env, tmp_path):
    clean_env.setenv("COURSE_DATA", str(tmp_path / "cache"))
    clean_env.setenv("COURSE_DEVICE", "cpu")
    line = hosted.summary_line()
    assert "device cpu" in line and "profile " in line and f"data cache {tmp_path / 'cache'}" in line
