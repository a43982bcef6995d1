"""Decoding and presizing with torchvision.io and torch: per item in the workers, or per batch on the GPU.

Used by the full profile (docs/full-profile-and-gpus.md).

The book's pipeline (notebook 02's ``PresizeCrop``) opens every picture with PIL in a worker process and resizes
it there. On a host with few cores beside a fast GPU that is the bottleneck: decoding a 500x375 JPEG and
resizing it take a few milliseconds of one core each, so two cores feed a few hundred pictures a second to a GPU
that could train on thousands. This module keeps the same steps (decode, square crop of the short side, resize
to the presize) but runs them where they are cheapest:

* ``decode="device"`` (the default on CUDA): workers only read each file's bytes; ``DeviceDecodedLoader`` decodes
  a whole batch at once with ``torchvision.io.decode_jpeg`` on the GPU (nvJPEG) and crops and resizes there;
* ``decode="workers"`` (the default on a CPU): each worker does the same with the same two functions on the CPU,
  which is faster than PIL (libjpeg-turbo through torchvision, and torch's vectorised antialiased resize).

Pictures nvJPEG cannot take (PNG, CMYK, anything that is not a plain RGB or grey JPEG) are decoded by PIL in the
worker with ``open_rgb``, as every other path does, and join the batch already decoded.
"""
from __future__ import annotations

import io
import random
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from torchvision.io import ImageReadMode, decode_jpeg
from torchvision.transforms.functional import pil_to_tensor

from helpers.images import open_rgb

DECODE_MODES = ("device", "workers", "pil")


def read_encoded(path: Path | str) -> Tensor:
    """A picture as nvJPEG takes it: a JPEG's bytes, else PIL's decoding (GPU input; docs/full-profile-and-gpus.md).

    RGB and grey JPEGs come as the file's bytes (1-D uint8); other pictures are decoded by PIL (3xHxW).

    The two kinds are told apart by their number of dimensions, so a batch can mix them (the full profile).
    """
    data = Path(path).read_bytes()
    with Image.open(io.BytesIO(data)) as image:  # reads the header only
        if image.format == "JPEG" and image.mode in ("RGB", "L"):
            return torch.frombuffer(bytearray(data), dtype=torch.uint8)
        return pil_to_tensor(open_rgb(image))


def decode_images(payloads: Sequence[Tensor], device: torch.device | str = "cpu") -> list[Tensor]:
    """Decode every JPEG payload in one batched call on ``device`` (GPU input pipeline; docs/full-profile-and-gpus.md).

    The 1-D payloads are JPEG bytes; the ones already decoded are moved to ``device``.

    A batch that nvJPEG refuses as a whole is decoded one picture at a time, and a picture it still refuses is
    decoded by PIL, so one odd file never costs the batch.
    """
    device = torch.device(device)
    encoded = [i for i, p in enumerate(payloads) if p.dim() == 1]
    images: list[Tensor | None] = [p.to(device, non_blocking=True) if p.dim() == 3 else None for p in payloads]
    if encoded:
        try:
            decoded = decode_jpeg([payloads[i] for i in encoded], mode=ImageReadMode.RGB, device=device)
        except RuntimeError:
            decoded = [_decode_one(payloads[i], device) for i in encoded]
        for i, image in zip(encoded, decoded):
            images[i] = image
    return images


def _decode_one(payload: Tensor, device: torch.device) -> Tensor:
    try:
        return decode_jpeg(payload, mode=ImageReadMode.RGB, device=device)
    except RuntimeError:
        return pil_to_tensor(open_rgb(Image.open(io.BytesIO(payload.numpy().tobytes())))).to(device)


def square_box(height: int, width: int, train: bool) -> tuple[int, int, int]:
    """(top, left, side) of the short side's square: at a random place when ``train``, else the centre (notebook 02)."""
    side = min(height, width)
    if train:  # Python's random, as PresizeCrop draws it: seeded by set_seed, and per worker by seed_worker
        return random.randint(0, height - side), random.randint(0, width - side), side
    return (height - side) // 2, (width - side) // 2, side


def presize_images(images: Sequence[Tensor], presize: int, train: bool) -> Tensor:
    """Crop each short-side square and resize it to ``presize`` (GPU input pipeline; docs/full-profile-and-gpus.md).

    Antialiased bilinear; returns uint8 B x 3 x P x P.

    What ``PresizeCrop`` does with PIL, on any device. Squares of the same side (most pets are 500x375) are
    resized together, one call per side. The result is stored channels-last (each pixel's three values side by
    side, as decoders write them): torch's uint8 resize and ``grid_sample`` are fastest on that layout.
    """
    if not images:
        raise ValueError("presize_images needs at least one picture.")
    groups: dict[int, list[tuple[int, Tensor]]] = defaultdict(list)
    for index, image in enumerate(images):
        top, left, side = square_box(*image.shape[-2:], train)
        groups[side].append((index, image.permute(1, 2, 0)[top:top + side, left:left + side]))  # H x W x 3
    out = torch.empty(len(images), 3, presize, presize, dtype=torch.uint8, device=images[0].device,
                      memory_format=torch.channels_last)
    for members in groups.values():
        indices, crops = zip(*members)
        out[list(indices)] = _resize(torch.stack(crops).permute(0, 3, 1, 2), presize)
    return out


def _resize(batch: Tensor, size: int) -> Tensor:
    if batch.shape[-1] == size:
        return batch
    if batch.device.type == "cpu":  # torch's fast uint8 path on the CPU (the one torchvision's resize uses)
        return F.interpolate(batch, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    resized = F.interpolate(batch.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return resized.round_().clamp_(0, 255).to(torch.uint8)


def collate_channels_last(batch: list[tuple[Tensor, int]]) -> tuple[Tensor, Tensor]:
    """Stack presized pictures into a channels-last uint8 batch, and their targets (docs/full-profile-and-gpus.md).

    Used by the full profile on a CPU.

    The default collate would also transpose every picture to channels-first, a copy the batch step then pays for.
    """
    images, targets = zip(*batch)
    return torch.stack([image.permute(1, 2, 0) for image in images]).permute(0, 3, 1, 2), torch.tensor(targets)


def collate_payloads(batch: list[tuple[Tensor, int]]) -> tuple[list[Tensor], Tensor]:
    """A batch of payloads of different lengths, and the targets (GPU input pipeline; docs/full-profile-and-gpus.md).

    The payloads stay a list; the targets become one tensor.
    """
    payloads, targets = zip(*batch)
    return list(payloads), torch.tensor(targets)


class DeviceDecodedLoader:
    """A DataLoader whose batches are decoded and presized on ``device`` (docs/full-profile-and-gpus.md).

    It wraps a DataLoader of ``(payloads, targets)``.

    It iterates like the loader it wraps, yielding ``(uint8 B x 3 x P x P, targets)`` on the device, so the
    Learner, ``show_batch`` and the batch augmentation see what they see with any other loader. Anything else
    (``dataset``, ``batch_size``, ``sampler``) is the wrapped loader's. The decoding runs in the training process,
    between steps: handing nvJPEG a batch costs the host milliseconds, which a host with few cores feels
    (docs/full-profile-and-gpus.md has the measurements).
    """

    def __init__(self, loader: torch.utils.data.DataLoader, presize: int, train: bool, device: torch.device | str):
        self.loader, self.presize, self.train, self.device = loader, int(presize), bool(train), torch.device(device)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        for payloads, targets in self.loader:
            images = decode_images(payloads, self.device)
            yield presize_images(images, self.presize, self.train), targets.to(self.device, non_blocking=True)

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str):
        if name == "loader":  # not set yet (unpickling): no recursion through __getattr__
            raise AttributeError(name)
        return getattr(self.loader, name)

    def __repr__(self) -> str:
        return f"DeviceDecodedLoader({len(self.loader.dataset)} items, presize={self.presize}, device={self.device})"
