"""Getting the pets into tensors (notebook 01): one import for everything the notebooks use about data.

Each concern lives in its own module, each small enough to read in one sitting; this module re-exports them,
so ``from helpers.data import pets_tiny, pets_dataloaders, show_batch`` keeps working:

* ``helpers.cache``: the data cache, downloads with checksums, folders built once (completion markers);
* ``helpers.creatures``: drawing a creature from its five cues, and its mask;
* ``helpers.tiny_pets``: the synthetic pets (breeds, look-alike pairs, quirks), and where each animal is;
* ``helpers.datasets``: the pets, the MNIST sample and sample photos, by profile;
* ``helpers.images``: opening images as RGB, and finding the ones PIL cannot decode;
* ``helpers.labelling``: finding image files, labels from names, splits;
* ``helpers.loaders``: ``ImageDataset``, ``CachedImageDataset``, ``DataLoaders``, ``pets_dataloaders``,
``transform_mode``;
* ``helpers.inspection``: ``show_batch`` and ``summary``.
"""
from __future__ import annotations

from helpers.cache import (
                           CACHE_ENV,
                           COMPLETE_MARKER,
                           DownloadError,
                           UnfinishedFolderError,
                           build_once,
                           cache_dir,
                           file_hashes,
                           first_mib_md5,
                           is_complete,
                           mark_complete,
                           untar_data,
)
from helpers.creatures import BODIES, COAT_COLOURS, COLOUR_NAMES, CUES, EARS, PATTERNS, TAILS, describe
from helpers.datasets import (
                           MNIST_SAMPLE,
                           MNIST_SAMPLE_URL,
                           PETS,
                           PETS_URL,
                           SAMPLE_PHOTOS,
                           Download,
                           fetch,
                           mnist_path,
                           mnist_sample,
                           pets_path,
                           resolve,
                           sample_photo,
)
from helpers.images import open_rgb, verify_images
from helpers.inspection import PipelineError, show_batch, summary
from helpers.labelling import IMAGE_EXTENSIONS, PETS_PATTERN, RegexLabeller, get_image_files, make_vocab, random_split
from helpers.loaders import (
                           CachedImageDataset,
                           DataLoaders,
                           ImageDataset,
                           make_loaders,
                           pets_dataloaders,
                           transform_mode,
)
from helpers.tiny_pets import (
                           BREED_FEATURES,
                           BREEDS,
                           CAT_BREEDS,
                           CORRUPT_FILE,
                           DOG_BREEDS,
                           LOOK_ALIKES,
                           NON_IMAGE_FILE,
                           QUIRKS,
                           TINY_IMAGES_PER_BREED,
                           breed_cues,
                           creature_boxes,
                           creature_masks,
                           mask_as_seen,
                           pets_tiny,
                           write_pet,
)

__all__ = [
    "CACHE_ENV", "COMPLETE_MARKER", "DownloadError", "UnfinishedFolderError", "build_once", "cache_dir",
    "file_hashes", "first_mib_md5", "is_complete", "mark_complete", "untar_data",
    "BODIES", "COAT_COLOURS", "COLOUR_NAMES", "CUES", "EARS", "PATTERNS", "TAILS", "describe",
    "MNIST_SAMPLE", "MNIST_SAMPLE_URL", "PETS", "PETS_URL", "SAMPLE_PHOTOS", "Download", "fetch", "resolve",
    "mnist_path", "mnist_sample", "pets_path", "sample_photo",
    "PipelineError", "show_batch", "summary",
    "IMAGE_EXTENSIONS", "PETS_PATTERN", "RegexLabeller", "get_image_files", "make_vocab", "open_rgb",
    "random_split", "verify_images",
    "CachedImageDataset", "DataLoaders", "ImageDataset", "make_loaders", "pets_dataloaders", "transform_mode",
    "BREED_FEATURES", "BREEDS", "CAT_BREEDS", "CORRUPT_FILE", "DOG_BREEDS", "LOOK_ALIKES", "NON_IMAGE_FILE",
    "QUIRKS", "TINY_IMAGES_PER_BREED", "breed_cues", "creature_boxes", "creature_masks", "mask_as_seen",
    "pets_tiny", "write_pet",
]
