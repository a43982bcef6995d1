"""The tiny pets: a synthetic look-alike of Oxford-IIIT Pet that a small network can learn at 64 pixels (notebook 01).

37 breeds with the real names (cats capitalised, dogs lowercase), 42 pictures each, drawn from a seed in
seconds. Each breed is one combination of five visible cues (``helpers.creatures``: coat colour, pattern, ears,
body, tail). Every two breeds differ in at least two cues, except the look-alike pairs in ``LOOK_ALIKES``, which
differ in exactly one, on purpose, like the breeds the real set's confusion matrix mixes up:

* Ragdoll and Birman: only the body (long against compact);
* Siamese and Birman: only the coat colour (tan against cream);
* Bengal and Egyptian_Mau: only the coat colour (ginger against tan);
* american_pit_bull_terrier and staffordshire_bull_terrier: only the body (long against compact);
* american_pit_bull_terrier and american_bulldog: only the coat colour (brown against cream).

The real set's quirks are planted too: grayscale, CMYK and RGBA (a PNG named .jpg) files, a JPEG cut short
(``CORRUPT_FILE``), a file that is not an image (``NON_IMAGE_FILE``), and sizes from 170 to 380 pixels a side.
Like the real set, ``annotations/trimaps/NAME.png`` says where the animal is (1 animal, 2 background, 3 border);
``creature_masks`` reads them, for the real set too.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from helpers.cache import build_once, cache_dir
from helpers.creatures import Features, describe, draw_scene, trimap

CAT_BREEDS = ("Abyssinian", "Bengal", "Birman", "Bombay", "British_Shorthair", "Egyptian_Mau", "Maine_Coon",
              "Persian", "Ragdoll", "Russian_Blue", "Siamese", "Sphynx")
DOG_BREEDS = ("american_bulldog", "american_pit_bull_terrier", "basset_hound", "beagle", "boxer", "chihuahua",
              "english_cocker_spaniel", "english_setter", "german_shorthaired", "great_pyrenees", "havanese",
              "japanese_chin", "keeshond", "leonberger", "miniature_pinscher", "newfoundland", "pomeranian", "pug",
              "saint_bernard", "samoyed", "scottish_terrier", "shiba_inu", "staffordshire_bull_terrier",
              "wheaten_terrier", "yorkshire_terrier")
BREEDS = CAT_BREEDS + DOG_BREEDS
TINY_IMAGES_PER_BREED = 42  # 37 x 42 = 1554 pictures: 310 of them in a 20% validation set
TINY_VERSION = 2  # part of the cache folder's name: bump it whenever the drawing changes

# (colour, pattern, ears, body, tail): indices into helpers.creatures' COAT_COLOURS, PATTERNS, EARS, BODIES, TAILS.
# Cats all have pointed ears and no dog has, so cat against dog is easy; the look-alike pairs were set by hand,
# the other breeds picked so that they differ from every breed in at least two cues.
BREED_FEATURES: dict[str, Features] = {
    "Abyssinian": (2, 1, 0, 0, 0), "Bengal": (2, 2, 0, 1, 0), "Birman": (1, 4, 0, 0, 1), "Bombay": (0, 0, 0, 0, 0),
    "British_Shorthair": (4, 3, 0, 1, 0), "Egyptian_Mau": (5, 2, 0, 1, 0), "Maine_Coon": (4, 1, 0, 1, 1),
    "Persian": (0, 1, 0, 1, 0), "Ragdoll": (1, 4, 0, 1, 1), "Russian_Blue": (3, 0, 0, 1, 0),
    "Siamese": (5, 4, 0, 0, 1), "Sphynx": (2, 3, 0, 1, 1),
    "american_bulldog": (1, 0, 1, 1, 0), "american_pit_bull_terrier": (4, 0, 1, 1, 0),
    "basset_hound": (2, 1, 1, 1, 0), "beagle": (5, 3, 2, 0, 0), "boxer": (2, 0, 2, 1, 0),
    "chihuahua": (3, 3, 1, 0, 1), "english_cocker_spaniel": (3, 4, 2, 0, 1), "english_setter": (1, 2, 2, 1, 1),
    "german_shorthaired": (4, 2, 2, 1, 0), "great_pyrenees": (5, 0, 2, 0, 1), "havanese": (3, 3, 2, 1, 0),
    "japanese_chin": (5, 1, 2, 1, 0), "keeshond": (3, 2, 1, 1, 0), "leonberger": (0, 1, 1, 0, 1),
    "miniature_pinscher": (0, 4, 1, 0, 0), "newfoundland": (0, 0, 2, 1, 1), "pomeranian": (1, 1, 2, 0, 1),
    "pug": (5, 4, 2, 1, 1), "saint_bernard": (2, 1, 2, 1, 1), "samoyed": (1, 0, 1, 0, 1),
    "scottish_terrier": (1, 1, 1, 1, 1), "shiba_inu": (1, 4, 2, 0, 0), "staffordshire_bull_terrier": (4, 0, 1, 0, 0),
    "wheaten_terrier": (2, 2, 2, 0, 1), "yorkshire_terrier": (2, 0, 1, 1, 1),
}
# The pairs that differ in one cue only, and that cue: what most_confused should find (notebook 05).
LOOK_ALIKES = {("Birman", "Ragdoll"): "body", ("Birman", "Siamese"): "colour", ("Bengal", "Egyptian_Mau"): "colour",
               ("american_pit_bull_terrier", "staffordshire_bull_terrier"): "body",
               ("american_bulldog", "american_pit_bull_terrier"): "colour"}

# The real set's oddities, planted on purpose: (breed, number) -> the mode that file is saved in.
QUIRKS = {("Persian", 3): "L", ("pug", 5): "L", ("beagle", 7): "L",
          ("Bengal", 4): "RGBA", ("samoyed", 2): "RGBA",
          ("Siamese", 6): "CMYK", ("boxer", 8): "CMYK"}
CORRUPT_FILE = f"Egyptian_Mau_{TINY_IMAGES_PER_BREED + 1}.jpg"
NON_IMAGE_FILE = "Abyssinian_100.mat"
TRIMAPS = Path("annotations") / "trimaps"


def breed_cues(breed: str) -> str:
    """A breed's cues in words, e.g. ``breed_cues('Bengal')`` -> 'ginger spots, pointed ears, ...' (notebook 05).

    The full answer: 'ginger spots, pointed ears, long body, thin tail'.
    """
    if breed not in BREED_FEATURES:
        raise KeyError(f"no breed {breed!r} in the tiny pets; the breeds are helpers.data.BREEDS.")
    return describe(BREED_FEATURES[breed])


def write_pet(root: Path, breed: str, number: int, seed: int) -> Path:
    """Draw one tiny-pets picture and its trimap under ``root``, each from its own generator (notebook 01)."""
    rng = np.random.default_rng([seed, BREEDS.index(breed), number])
    width, height = (int(v) for v in rng.integers(170, 381, size=2))
    image, mask = draw_scene(BREED_FEATURES[breed], rng, width, height)
    path = root / "images" / f"{breed}_{number}.jpg"
    for folder in (path.parent, root / TRIMAPS):
        folder.mkdir(parents=True, exist_ok=True)
    quirk = QUIRKS.get((breed, number))
    if quirk == "RGBA":  # a PNG wearing a .jpg name, with a transparent corner
        rgba = image.convert("RGBA")
        rgba.paste((0, 0, 0, 0), (0, 0, rgba.width // 4, rgba.height // 4))
        rgba.save(path, format="PNG")
    elif quirk is not None:
        image.convert(quirk).save(path, format="JPEG", quality=90)
    else:
        image.save(path, format="JPEG", quality=90)
    trimap(mask).save(root / TRIMAPS / f"{breed}_{number}.png", format="PNG")
    return path


def _write_pets_tiny(root: Path, seed: int) -> None:
    (root / "images").mkdir(parents=True)
    (root / TRIMAPS).mkdir(parents=True)
    for breed in BREEDS:
        for number in range(1, TINY_IMAGES_PER_BREED + 1):
            write_pet(root, breed, number, seed)
    images = root / "images"
    # A file cut short mid-transfer: the header reads, the pixels do not.
    good = (images / "Egyptian_Mau_1.jpg").read_bytes()
    (images / CORRUPT_FILE).write_bytes(good[: len(good) * 2 // 5])
    # The real images folder also holds a few MATLAB files that are not pictures at all.
    (images / NON_IMAGE_FILE).write_bytes(b"MATLAB 5.0 MAT-file, not an image\n" + bytes(range(256)))


def pets_tiny(dest: Path | str | None = None, seed: int = 0) -> Path:
    """The synthetic pets: 37 breeds x 42 pictures with trimaps, made once and cached (notebook 01, via ``pets_path``).

    Returns the root.

    ``dest``: build there instead of the cache. An existing empty folder is filled; a folder that is not a
    finished dataset (no completion marker) is refused with an error.
    """
    default = cache_dir() / f"pets_tiny_v{TINY_VERSION}_seed{seed}"
    root = Path(dest) if dest is not None else default
    return build_once(root, lambda staging: _write_pets_tiny(staging, seed), rebuild=dest is None,
                      note=f"tiny pets v{TINY_VERSION}, seed {seed}")


# --- where the animal is ------------------------------------------------------------------------------

def creature_masks(path: Path | str, names: list[str] | None = None) -> dict[str, np.ndarray]:
    """Where the animal is in each picture: ``{file name: bool array H x W}``, True on the animal (notebook 08).

    Reads ``annotations/trimaps`` under the dataset root ``path`` (the tiny pets, or the real Oxford-IIIT Pet,
    whose trimaps have the same format); the uncertain border (3) counts as animal. ``names`` picks files,
    e.g. ``[p.name for p in valid_files]``; pictures without a trimap are left out.
    """
    folder = Path(path) / TRIMAPS
    if not folder.is_dir():
        raise FileNotFoundError(f"no trimaps under {folder}: pass the dataset root (the folder that holds images/ "
                                "and annotations/), e.g. pets_path(P).")
    wanted = [Path(name).stem for name in names] if names is not None else \
        sorted(p.stem for p in folder.glob("*.png") if not p.name.startswith("."))
    masks = {}
    for stem in wanted:
        trimap_file = folder / f"{stem}.png"
        if trimap_file.is_file():
            with Image.open(trimap_file) as values:
                masks[f"{stem}.jpg"] = np.asarray(values) != 2
    return masks


def creature_boxes(path: Path | str, names: list[str] | None = None) -> dict[str, tuple[int, int, int, int]]:
    """Each picture's animal box ``{file name: (left, top, right, bottom)}`` in pixels (notebook 08's pointing game)."""
    boxes = {}
    for name, mask in creature_masks(path, names).items():
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        if len(rows):
            boxes[name] = (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)
    return boxes


def mask_as_seen(mask: np.ndarray, size: int) -> np.ndarray:
    """A mask as the validation pipeline sees its picture: the short side's centre square, resized (notebook 08).

    Resized to ``size``.

    That is what ``PresizeCrop(train=False)`` followed by ``BatchAugment`` in eval mode does to the picture, so
    the result lines up pixel for pixel with the model's input (and with a heatmap upsampled to it).
    """
    height, width = mask.shape
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = Image.fromarray(mask[top:top + side, left:left + side].astype(np.uint8) * 255)
    return np.asarray(square.resize((size, size), Image.BILINEAR)) >= 128
