"""The full profile, run here on stand-ins: every notebook executes at the full profile's sizes.

The full profile (the real Oxford-IIIT Pet, ImageNet weights, 224-pixel inputs, the book's recipes) needs a GPU
and internet, so neither this machine nor CI can run it for real. What they can do is run its code paths on
stand-ins (see ``fullprofile/standins.py``): archives with the real names and layout served from 127.0.0.1 and
checked against their own checksums exactly the way the real ones are, and random weights under torch hub's real
file names. Training is capped with ``COURSE_MAX_BATCHES``, which the Learner honours; outputs are not compared
(they are not the stored tiny-profile ones), but every cell runs, so every assertion that does not depend on
accuracy still holds, and a notebook whose full-profile branch is broken fails here.

Everything here runs in ``make test``; ``make full`` runs this file alone. Batches are cut to 2 images
(``COURSE_BATCH_SIZE``) at the full profile's image sizes: at 224 pixels with batches of 64 one training step of
resnet34 takes about half a minute on one CPU core, and the notebooks hold dozens of steps.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat
import pytest
from fullprofile.standins import checksum, make_mnist_archive, make_pets_archive, make_standin_weights, serve
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MAX_BATCHES = "1"  # per epoch, train and validation alike: enough to run every line of the loop
# The full profile's sizes (460-pixel presizing, 224-pixel inputs, its architectures) with batches of 2: at the
# profile's 64, one training step of resnet34 at 224 pixels takes about half a minute on one CPU core.
BATCH_SIZE = "2"

# Claims about accuracy hold only where models learn (the tiny profile trained in full, or real data in the full
# one): the notebooks guard those assertions with `P.checks_results`, so the same cells run here and still check
# everything else.


@pytest.fixture(scope="module")
def full_profile_env(tmp_path_factory):
    """Stand-in archives served on 127.0.0.1, stand-in weights in a private TORCH_HOME, a private data cache."""
    from helpers.data import mnist_sample, pets_tiny

    base = tmp_path_factory.mktemp("full-profile")
    mirror = base / "mirror"
    pets = make_pets_archive(mirror, pets_tiny())
    mnist = make_mnist_archive(mirror, mnist_sample())
    checksums = base / "checksums.json"
    checksums.write_text(json.dumps({p.name: checksum(p) for p in (pets, mnist)}, indent=1))
    torch_home = base / "torch"
    make_standin_weights(torch_home)
    with serve(mirror) as url:
        env = {"COURSE_PROFILE": "full", "COURSE_DEVICE": "cpu", "COURSE_DATA": str(base / "cache"),
               "COURSE_DATA_MIRROR": url, "COURSE_DATA_CHECKSUMS": str(checksums), "TORCH_HOME": str(torch_home),
               "COURSE_MAX_BATCHES": MAX_BATCHES, "COURSE_BATCH_SIZE": BATCH_SIZE, "CUDA_VISIBLE_DEVICES": "",
               "MPLBACKEND": "agg", "OMP_NUM_THREADS": "1"}
        yield env


def run_full(path: Path, env: dict, monkeypatch, timeout: int = 600) -> float:
    """Execute a notebook top to bottom in a fresh kernel with ``env`` (None: unset); raise on the first unexpected
    error."""
    for key, value in env.items():  # the kernel inherits this process's environment
        if value is None:
            monkeypatch.delenv(key, raising=False)
        else:
            monkeypatch.setenv(key, value)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}}, allow_errors=False)
    start = time.perf_counter()
    client.execute()  # cells tagged raises-exception may raise; any other error stops here
    return time.perf_counter() - start


@pytest.mark.full_profile
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_in_the_full_profile(path, full_profile_env, monkeypatch):
    seconds = run_full(path, full_profile_env, monkeypatch)
    print(f"{path.name}: {seconds:.1f} s in the full profile on stand-ins")


def _notebook(*sources: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    return nb


@pytest.mark.full_profile
def test_a_broken_full_profile_cell_fails_the_smoke_run(tmp_path, full_profile_env, monkeypatch):
    # The smoke run must not pass vacuously: a cell that only breaks in the full profile has to fail it.
    path = tmp_path / "99_broken.ipynb"
    nbformat.write(_notebook("import helpers\nP = helpers.get_profile()",
                             "if not P.is_tiny:\n    raise RuntimeError('the full profile is broken here')"), path)
    with pytest.raises(CellExecutionError, match="the full profile is broken here"):
        run_full(path, full_profile_env, monkeypatch)


@pytest.mark.full_profile
def test_the_smoke_run_really_is_the_full_profile(tmp_path, full_profile_env, monkeypatch):
    # Downloads the stand-in pets through untar_data, verifies them, and builds the full profile's loaders.
    path = tmp_path / "98_check.ipynb"
    nbformat.write(_notebook(
        "import os, helpers\nfrom helpers.data import pets_dataloaders, pets_path\nP = helpers.get_profile()\n"
        "assert P.name == 'full' and P.size == 224 and P.presize == 460\n"
        "root = pets_path(P)\nassert root.name == 'oxford-iiit-pet', root\n"
        "assert str(root).startswith(os.environ['COURSE_DATA']), root\n"
        "dls = pets_dataloaders(root, presize=P.presize, size=P.size, batch_size=P.batch_size)\n"
        "x, y = next(iter(dls.train))\nx = dls.after_batch.train()(x)\n"
        "assert tuple(x.shape[1:]) == (3, 224, 224), x.shape\nassert len(dls.vocab) == 37, len(dls.vocab)"), path)
    run_full(path, full_profile_env, monkeypatch)


# --- the pieces of the smoke run, each checked on its own ------------------------------------------------------

@pytest.fixture(scope="module")
def standin_mirror(tmp_path_factory):
    """The stand-in archives, their checksum table, and a copy of the pets archive cut in half, served on 127.0.0.1."""
    from helpers.data import mnist_sample, pets_tiny

    base = tmp_path_factory.mktemp("mirror")
    pets = make_pets_archive(base / "whole", pets_tiny())
    make_mnist_archive(base / "whole", mnist_sample())
    table = {p.name: checksum(p) for p in (base / "whole").iterdir()}
    (base / "cut").mkdir()
    (base / "cut" / pets.name).write_bytes(pets.read_bytes()[: pets.stat().st_size // 2])
    with serve(base) as url:
        yield url, table, base


def _use_mirror(monkeypatch, tmp_path, url: str, table: dict) -> None:
    checksums = tmp_path / "checksums.json"
    checksums.write_text(json.dumps(table))
    monkeypatch.setenv("COURSE_DATA_MIRROR", url)
    monkeypatch.setenv("COURSE_DATA_CHECKSUMS", str(checksums))
    monkeypatch.setenv("COURSE_DATA", str(tmp_path / "cache"))


@pytest.mark.slow  # starts Python processes that import torch, or builds a data set
def test_standin_pets_arrive_through_the_real_download_path(standin_mirror, tmp_path, monkeypatch):
    from helpers.data import PETS, get_image_files, is_complete, pets_path
    from helpers.profiles import get_profile

    url, table, _ = standin_mirror
    _use_mirror(monkeypatch, tmp_path, url + "/whole", table)
    root = pets_path(get_profile("full"))
    assert root == tmp_path / "cache" / "oxford-iiit-pet" and is_complete(root)
    files = get_image_files(root / "images")
    breeds = {f.stem.rsplit("_", 1)[0] for f in files if f.suffix == ".jpg"}
    assert len(breeds) == 37, sorted(breeds)
    assert (root / "annotations" / "list.txt").is_file()
    trimaps = {p.stem for p in (root / "annotations" / "trimaps").glob("*.png")}
    assert {f.stem for f in files if f.suffix == ".jpg"} <= trimaps, "every picture has its trimap, as in the real set"
    from PIL import Image
    with Image.open(next(f for f in files if f.name.startswith("Abyssinian_1"))) as im:
        assert max(im.size) >= 448, im.size  # full-size pictures, not the tiny ones
    assert table[PETS.file_name]["size"] != PETS.size  # it was checked against the stand-in's own numbers


def test_standin_with_a_wrong_checksum_is_refused_and_nothing_is_kept(standin_mirror, tmp_path, monkeypatch):
    from helpers.data import PETS, DownloadError, pets_path
    from helpers.profiles import get_profile

    url, table, _ = standin_mirror
    wrong = {**table, PETS.file_name: {**table[PETS.file_name], "md5_first_mib": "0" * 32}}
    _use_mirror(monkeypatch, tmp_path, url + "/whole", wrong)
    with pytest.raises(DownloadError, match="first MiB"):
        pets_path(get_profile("full"))
    assert not any((tmp_path / "cache").iterdir()), "a refused download left something in the cache"


def test_a_cut_standin_transfer_is_refused_and_nothing_is_kept(standin_mirror, tmp_path, monkeypatch):
    from helpers.data import DownloadError, pets_path
    from helpers.profiles import get_profile

    url, table, _ = standin_mirror
    _use_mirror(monkeypatch, tmp_path, url + "/cut", table)
    with pytest.raises(DownloadError, match="bytes instead of"):
        pets_path(get_profile("full"))
    assert not any((tmp_path / "cache").iterdir())


def test_standin_mnist_sample_has_fastais_layout(standin_mirror, tmp_path, monkeypatch):
    from helpers.data import mnist_path
    from helpers.profiles import get_profile

    url, table, _ = standin_mirror
    _use_mirror(monkeypatch, tmp_path, url + "/whole", table)
    root = mnist_path(get_profile("full"))
    assert root.name == "mnist_sample"
    for split in ("train", "valid"):
        for digit in ("3", "7"):
            assert any((root / split / digit).glob("*.png")), (split, digit)
    assert (root / "labels.csv").read_text().startswith("name,label")


def test_a_broken_checksum_table_says_what_to_fix(tmp_path, monkeypatch):
    from helpers.data import PETS, resolve

    (tmp_path / "bad.json").write_text("{not json")
    monkeypatch.setenv("COURSE_DATA_CHECKSUMS", str(tmp_path / "bad.json"))
    with pytest.raises(ValueError, match="COURSE_DATA_CHECKSUMS"):
        resolve(PETS)


@pytest.mark.slow  # starts Python processes that import torch, or builds a data set
def test_standin_weights_load_through_torchvisions_own_code(tmp_path, monkeypatch):
    import torch
    from torchvision import models as tvm

    from helpers.models import create_body

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    [saved] = make_standin_weights(tmp_path, archs=("resnet18",))
    assert saved.name == "resnet18-f37072fd.pth"  # the name torch hub caches the real file under
    model = tvm.resnet18(weights=tvm.ResNet18_Weights.DEFAULT)  # the real loader: no download, the cached file
    expected = torch.load(saved)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in expected.items())
    body = create_body("resnet18", weights="imagenet")  # the course's path to the same weights
    assert torch.equal(body[0].weight, expected["conv1.weight"])
