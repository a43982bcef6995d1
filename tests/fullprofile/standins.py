"""Stand-ins for what the full profile downloads, so its real code paths run on a machine without internet.

The full profile fetches the Oxford-IIIT Pet archive, the MNIST sample archive and torchvision's ImageNet
weights. None of them can be downloaded here, but each can be imitated closely enough that the course's own
code does not know the difference:

* ``make_pets_archive`` packs ``oxford-iiit-pet.tgz`` with the real layout (``images/Breed_N.jpg`` at about
  500x375, the annotation lists) and the real set's quirks, drawn from the course's synthetic pets;
* ``make_mnist_archive`` packs ``mnist_sample.tgz`` with fastai's layout (``train/3``, ``valid/7``, ``labels.csv``);
* ``serve`` hands a folder out over HTTP on 127.0.0.1, so ``untar_data`` downloads, verifies and extracts
  through the same code path as the real thing;
* ``make_standin_weights`` saves random weights under torch hub's cache names, where torchvision's own loader
  looks before it downloads (``$TORCH_HOME/hub/checkpoints/resnet34-b627a593.pth`` and so on).

Nothing here is shipped in the course: the tests build it in a temporary folder each run.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import sys
import tarfile
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torchvision import models as tvm

FULL_SIZES = ((500, 375), (375, 500), (500, 333), (448, 500), (500, 400))  # typical Oxford-IIIT Pet shapes


def head_md5(path: Path, n_bytes: int = 2**20) -> str:
    """MD5 of a file's first MiB: what fastai checks, besides the size, before trusting an archive."""
    with open(path, "rb") as f:
        return hashlib.md5(f.read(n_bytes)).hexdigest()


def checksum(path: Path) -> dict:
    """The size and first-MiB MD5 of an archive, in the form the course's download table uses."""
    return {"size": path.stat().st_size, "md5_first_mib": head_md5(path)}


def _add_bytes(archive: tarfile.TarFile, name: str, content: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(content)
    archive.addfile(info, io.BytesIO(content))


def _jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def make_pets_archive(folder: Path, tiny_root: Path, per_breed: int = 2, seed: int = 0) -> Path:
    """Pack ``folder/oxford-iiit-pet.tgz`` from the tiny pets at ``tiny_root``, enlarged to the real set's sizes."""
    rng = np.random.default_rng(seed)
    sources = sorted((tiny_root / "images").glob("*.jpg"))
    by_breed: dict[str, list[Path]] = {}
    for path in sources:
        breed = path.stem.rsplit("_", 1)[0]
        by_breed.setdefault(breed, []).append(path)
    names, lines = [], []
    folder.mkdir(parents=True, exist_ok=True)
    archive_path = folder / "oxford-iiit-pet.tgz"
    with tarfile.open(archive_path, "w:gz") as archive:
        for class_id, breed in enumerate(sorted(by_breed, key=str.lower), start=1):
            readable = []
            for path in by_breed[breed]:
                try:
                    with Image.open(path) as im:
                        im.load()
                    readable.append(path)
                except OSError:
                    continue  # the tiny set's deliberately broken file; the archive gets its own below
            for number, path in enumerate(readable[:per_breed], start=1):
                with Image.open(path) as im:
                    picture = im.convert("RGB").resize(FULL_SIZES[rng.integers(len(FULL_SIZES))], Image.BICUBIC)
                name = f"{breed}_{number}"
                _add_bytes(archive, f"oxford-iiit-pet/images/{name}.jpg", _jpeg(picture))
                # The real trimaps: 1 on the animal, 2 background, 3 the uncertain border; nearest keeps the values.
                with Image.open(tiny_root / "annotations" / "trimaps" / f"{path.stem}.png") as trimap:
                    _add_bytes(archive, f"oxford-iiit-pet/annotations/trimaps/{name}.png",
                               _png(trimap.resize(picture.size, Image.NEAREST)))
                species = 1 if breed[0].isupper() else 2  # cats are capitalised, as in the real list.txt
                names.append(name)
                lines.append(f"{name} {class_id} {species} {number}")
        # The real images folder holds three .mat files and a few grey-scale and CMYK JPEGs.
        _add_bytes(archive, "oxford-iiit-pet/images/Abyssinian_100.mat", b"MATLAB 5.0 MAT-file\n" + bytes(256))
        grey = Image.fromarray(rng.integers(0, 255, (375, 500), dtype=np.uint8), mode="L")
        _add_bytes(archive, "oxford-iiit-pet/images/Egyptian_Mau_90.jpg", _jpeg(grey))
        cmyk = Image.new("CMYK", (500, 375), (30, 60, 90, 0))
        _add_bytes(archive, "oxford-iiit-pet/images/beagle_90.jpg", _jpeg(cmyk))
        for name in ("Egyptian_Mau_90", "beagle_90"):  # every real JPEG has a trimap: an oval animal here
            rows, cols = np.ogrid[:375, :500]
            oval = ((rows - 187) / 120) ** 2 + ((cols - 250) / 160) ** 2 <= 1
            trimap = Image.fromarray(np.where(oval, 1, 2).astype(np.uint8), mode="L")
            _add_bytes(archive, f"oxford-iiit-pet/annotations/trimaps/{name}.png", _png(trimap))
        listing = "#Image CLASS-ID SPECIES BREED ID\n" + "\n".join(lines) + "\n"
        _add_bytes(archive, "oxford-iiit-pet/annotations/list.txt", listing.encode())
        _add_bytes(archive, "oxford-iiit-pet/annotations/trainval.txt", "\n".join(lines[::2]).encode() + b"\n")
        _add_bytes(archive, "oxford-iiit-pet/annotations/test.txt", "\n".join(lines[1::2]).encode() + b"\n")
    return archive_path


def make_mnist_archive(folder: Path, mnist_root: Path, per_digit: int = 60) -> Path:
    """Pack ``folder/mnist_sample.tgz`` in fastai's layout from the course's MNIST sample at ``mnist_root``."""
    folder.mkdir(parents=True, exist_ok=True)
    archive_path = folder / "mnist_sample.tgz"
    rows = ["name,label"]
    with tarfile.open(archive_path, "w:gz") as archive:
        for split in ("train", "valid"):
            for digit in ("3", "7"):
                files = sorted((mnist_root / split / digit).glob("*.png"))[:per_digit]
                for path in files:
                    arcname = f"{split}/{digit}/{path.name}"
                    _add_bytes(archive, f"mnist_sample/{arcname}", path.read_bytes())
                    if split == "train":
                        rows.append(f"{arcname},{digit}")
        _add_bytes(archive, "mnist_sample/labels.csv", ("\n".join(rows) + "\n").encode())
    return archive_path


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest's output clean
        pass


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        # torchvision's download_url opens the URL once to follow redirects and closes it unread, so the server
        # sees that connection reset mid-file. Expected; anything else is still reported.
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on 127.0.0.1 (a free port) for the length of the ``with`` block; yields the base
    URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = _QuietServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


STANDIN_ARCHS = ("resnet18", "resnet34", "resnet50", "resnet101")


def weights_file_name(arch: str) -> str:
    """The file name torchvision's default ImageNet weights for ``arch`` are cached under (e.g.
    resnet34-b627a593.pth)."""
    weights = tvm.get_model_weights(getattr(tvm, arch)).DEFAULT
    return weights.url.rsplit("/", 1)[-1]


def make_standin_weights(torch_home: Path, archs: tuple[str, ...] = STANDIN_ARCHS, seed: int = 0) -> list[Path]:
    """Random ImageNet-shaped weights under torch hub's real file names in ``torch_home`` (set TORCH_HOME to it)."""
    checkpoints = torch_home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    written = []
    for arch in archs:
        torch.manual_seed(seed)
        target = checkpoints / weights_file_name(arch)
        if not target.exists():
            torch.save(getattr(tvm, arch)(weights=None).state_dict(), target)
        written.append(target)
    return written
