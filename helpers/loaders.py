"""Datasets and loaders: files to ``(tensor, class)`` pairs, the two DataLoaders, the pets recipe (notebook 01)."""
from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.functional import pil_to_tensor

from helpers.augment import NO_AUGMENTATION, PETS_RECIPE, BatchAugment, PresizeCrop, presize_short_side, square_slice
from helpers.decoding import (
    DECODE_MODES,
    DeviceDecodedLoader,
    collate_channels_last,
    collate_payloads,
    decode_images,
    presize_images,
    read_encoded,
)
from helpers.device import dataloader_generator, get_device, seed_worker
from helpers.images import open_rgb
from helpers.images import why_unreadable as _why_unreadable
from helpers.labelling import PETS_PATTERN, RegexLabeller, get_image_files, make_vocab, random_split

_REPORTED: set[Path] = set()  # unreadable files already reported in this process


class ImageDataset(Dataset):
    """Image files and labels as ``(uint8 tensor 3xHxW, class index)`` pairs, unreadable ones skipped (notebook 01)."""

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
        news = [p for p, _ in self.skipped if p.resolve() not in _REPORTED]  # each broken file said once a session
        if news:
            _REPORTED.update(p.resolve() for p in news)
            names = ", ".join(p.name for p in news[:5])
            print(f"Skipped {len(self.skipped)} unreadable file(s) of {len(files)}: {names} "
                  "(find them with verify_images(files); delete or replace them).")

    def prepare(self, item: Path | str | Image.Image) -> torch.Tensor:
        """Open (if needed), convert to RGB and apply the item transform: a uint8 tensor 3xHxW (notebook 01)."""
        try:
            image = open_rgb(item)
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


class CachedImageDataset(ImageDataset):
    """An ``ImageDataset`` that decodes and presizes each picture once, then keeps it (notebooks 01 and 02).

    Made by ``pets_dataloaders(cache=True)``, with ``PresizeCrop``.

    A training item is kept the way notebook 02's ``PresizeCache`` keeps it, resized so that its short side is
    the presize, and every access slices a fresh random square out of it. A validation item is always the same
    centre square, so what ``prepare`` returns is kept as it is, bit for bit. Each picture is read the first
    time it is asked for, so the first epoch costs what an uncached one does and a run that stops early reads
    only what it used. The tiny profile uses this (``Profile.cache``): its pictures fit in memory many times over.
    """

    def __init__(self, files: Sequence[Path | str], labels: Sequence[str], vocab: Sequence[str], presize: int,
                 train: bool):
        super().__init__(files, labels, vocab, item_tfm=PresizeCrop(presize, train=train))
        self.kept: list[torch.Tensor | None] = [None] * len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        label, train = self._index[self.labels[index]], self.item_tfm.train
        if self.kept[index] is None:
            path = self.files[index]
            self.kept[index] = presize_short_side(path, self.item_tfm.size) if train else self.prepare(path)
        if train:
            return square_slice(self.kept[index], self.item_tfm.size, train=True), label
        return self.kept[index], label


class EncodedImageDataset(ImageDataset):
    """An ``ImageDataset`` whose workers decode with torchvision.io, or only read bytes (docs/full-profile-and-gpus.md).

    Reading only the bytes leaves the decoding to the GPU.

    ``presize=None``: each item is the file's payload (``read_encoded``), for ``DeviceDecodedLoader`` to decode and
    presize a whole batch on the GPU. A number: the worker decodes and presizes the picture itself, with the same
    two functions on its CPU (``decode_images``, ``presize_images``), faster than PIL's ``PresizeCrop``.
    """

    def __init__(self, files: Sequence[Path | str], labels: Sequence[str], vocab: Sequence[str],
                 presize: int | None, train: bool):
        super().__init__(files, labels, vocab)
        self.presize, self.train = presize, bool(train)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        payload, label = read_encoded(self.files[index]), self._index[self.labels[index]]
        if self.presize is None:
            return payload, label
        return presize_images(decode_images([payload]), self.presize, self.train)[0], label

    def __repr__(self) -> str:
        where = "bytes for the device" if self.presize is None else f"decoded and presized to {self.presize}"
        return f"EncodedImageDataset({len(self)} images, {len(self.vocab)} classes, {where})"


class DataLoaders:
    """A training and a validation DataLoader, the class names, and the batch transform for the device (notebook 01)."""

    def __init__(self, train: DataLoader, valid: DataLoader, vocab: Sequence[str] | None = None,
                 after_batch: torch.nn.Module | None = None):
        self.train, self.valid, self.after_batch = train, valid, after_batch
        self.vocab = list(vocab) if vocab is not None else None  # None: regression or tabular targets

    @property
    def n_classes(self) -> int:
        """The number of classes, ``len(vocab)`` (notebook 01's ``DataLoaders``)."""
        if self.vocab is None:
            raise AttributeError("these DataLoaders have no vocabulary (a regression or tabular task): "
                                 "there are no classes to count.")
        return len(self.vocab)

    def __repr__(self) -> str:
        classes = f"{len(self.vocab)} classes" if self.vocab is not None else "no vocabulary"
        return (f"DataLoaders(train={len(self.train.dataset)} items, valid={len(self.valid.dataset)} items, "
                f"{classes}, after_batch={self.after_batch!r})")


def make_loaders(train_ds: Dataset, valid_ds: Dataset, vocab: Sequence[str], batch_size: int = 64,
                 num_workers: int = 0, seed: int = 42, after_batch: torch.nn.Module | None = None,
                 multiprocessing_context: str | None = None, collate_fn: Callable | None = None) -> DataLoaders:
    """Wrap two datasets in torch DataLoaders: shuffled, seeded training batches; ordered validation (notebook 01)."""
    common = dict(num_workers=num_workers, pin_memory=torch.cuda.is_available(), worker_init_fn=seed_worker,
                  persistent_workers=num_workers > 0, collate_fn=collate_fn,
                  multiprocessing_context=multiprocessing_context if num_workers else None)
    # drop_last: a last batch of one or two images would give BatchNorm a noisy, unrepresentative step.
    train = DataLoader(train_ds, batch_size=batch_size, shuffle=True, drop_last=len(train_ds) > batch_size,
                       generator=dataloader_generator(seed), **common)
    valid = DataLoader(valid_ds, batch_size=batch_size, shuffle=False, **common)
    return DataLoaders(train, valid, vocab, after_batch)


def _images_folder(path: Path) -> Path:
    return path / "images" if (path / "images").is_dir() else path


def pets_dataloaders(path: Path | str, presize: int = 460, size: int = 224, batch_size: int = 64,
                     valid_pct: float = 0.2, seed: int = 42, num_workers: int = 0, augment: bool = True,
                     cache: bool = False, decode: str | None = None,
                     device: torch.device | str | None = None) -> DataLoaders:
    """The pets recipe: labels from names, a seeded split, presizing per item, augmentation per batch (notebook 01).

    ``cache=True`` decodes and presizes each image once and keeps it in memory (``CachedImageDataset``): what
    the tiny profile does (96 MB). The full profile's 7,390 pictures at 460 pixels would need about 6 GB, so it
    reads them from disk every epoch, decoding them where ``decode`` says (``helpers.decoding``): ``"device"``
    (workers read bytes, each batch is decoded and presized on ``device``; the default on CUDA), ``"workers"``
    (torchvision.io and torch in the workers; the default elsewhere) or ``"pil"`` (notebook 02's ``PresizeCrop``).
    """
    device = torch.device(device) if device is not None else get_device()
    decode = decode or ("device" if device.type == "cuda" else "workers")
    if decode not in DECODE_MODES:
        raise ValueError(f"decode={decode!r} is not a way to decode: use one of {DECODE_MODES} (or leave it out "
                         "for the default: 'device' on CUDA, 'workers' elsewhere).")
    files = get_image_files(_images_folder(Path(path)))
    labels = RegexLabeller(PETS_PATTERN).label_all(files)
    vocab = make_vocab(labels)
    train_idx, valid_idx = random_split(len(files), valid_pct, seed)

    def dataset(indices: list[int], train: bool) -> ImageDataset:
        chosen_files, chosen_labels = [files[i] for i in indices], [labels[i] for i in indices]
        if cache:
            return CachedImageDataset(chosen_files, chosen_labels, vocab, presize, train=train)
        if decode == "pil":
            return ImageDataset(chosen_files, chosen_labels, vocab, item_tfm=PresizeCrop(presize, train=train))
        return EncodedImageDataset(chosen_files, chosen_labels, vocab,
                                   presize=None if decode == "device" else presize, train=train)

    train_ds, valid_ds = dataset(train_idx, train=True), dataset(valid_idx, train=False)
    after_batch = BatchAugment.from_recipe(size, PETS_RECIPE if augment else NO_AUGMENTATION)
    on_device = decode == "device" and not cache
    collate = None if cache or decode == "pil" else collate_payloads if on_device else collate_channels_last
    dls = make_loaders(train_ds, valid_ds, vocab, batch_size, num_workers, seed, after_batch, collate_fn=collate)
    if on_device:
        dls.train = DeviceDecodedLoader(dls.train, presize, train=True, device=device)
        dls.valid = DeviceDecodedLoader(dls.valid, presize, train=False, device=device)
    return dls


@contextmanager
def transform_mode(module: torch.nn.Module | None, train: bool) -> Iterator[torch.nn.Module | None]:
    """Run a batch transform in train or eval mode, then put it back (notebook 05).

    Train mode augments at random; eval mode takes the centre and resizes.

    ``with transform_mode(dls.after_batch, train=False): x = dls.after_batch(batch)``: the previous mode comes
    back even if the body raises. ``None`` (no batch transform) is allowed and does nothing.
    """
    if module is None:
        yield module
        return
    was_training = module.training
    module.train(train)
    try:
        yield module
    finally:
        module.train(was_training)
