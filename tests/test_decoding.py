"""Decoding with torchvision.io and presizing with torch (helpers.decoding): the same pictures as PIL's path, every
quirk."""
from __future__ import annotations

import io
import math

import pytest
import torch
from PIL import Image
from torchvision.transforms.functional import pil_to_tensor

from helpers import decoding
from helpers.augment import PresizeCrop
from helpers.data import CORRUPT_FILE, pets_dataloaders, pets_tiny
from helpers.images import open_rgb
from helpers.loaders import EncodedImageDataset
from helpers.tiny_pets import QUIRKS


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.float() - b.float()) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(255 ** 2 / mse)


def pil_presized(path, presize: int) -> torch.Tensor:
    return pil_to_tensor(PresizeCrop(presize, train=False)(open_rgb(path)))


def ours_presized(path, presize: int) -> torch.Tensor:
    return decoding.presize_images(decoding.decode_images([decoding.read_encoded(path)]), presize, train=False)[0]


@pytest.fixture(scope="module")
def pets_root():
    return pets_tiny(seed=0)  # the course's cached copy: only read here


@pytest.fixture(scope="module")
def quirk_files(pets_root):
    files = {quirk: pets_root / "images" / f"{breed}_{number}.jpg" for (breed, number), quirk in QUIRKS.items()}
    files["RGB"] = next((pets_root / "images").glob("Abyssinian_1*.jpg"))
    return files


def test_payload_kinds(quirk_files):
    # nvJPEG takes RGB and grey JPEGs as bytes; CMYK and the PNG named .jpg arrive decoded, by PIL, on white.
    assert decoding.read_encoded(quirk_files["RGB"]).dim() == 1
    assert decoding.read_encoded(quirk_files["L"]).dim() == 1
    cmyk, rgba = decoding.read_encoded(quirk_files["CMYK"]), decoding.read_encoded(quirk_files["RGBA"])
    assert cmyk.shape[0] == 3 and cmyk.dtype == torch.uint8
    assert torch.equal(rgba, pil_to_tensor(open_rgb(quirk_files["RGBA"])))


@pytest.mark.parametrize("quirk", ["RGB", "L", "CMYK", "RGBA"])
def test_same_pictures_as_pil_within_resampling(quirk_files, quirk):
    # Decoders and resamplers differ in their last bits; 40 dB is far above what any visible difference gives
    # (a picture shifted by one pixel scores about 25 dB here), and a wrong crop or channel order scores < 20.
    ours, theirs = ours_presized(quirk_files[quirk], 96), pil_presized(quirk_files[quirk], 96)
    assert ours.shape == theirs.shape == (3, 96, 96) and ours.dtype == torch.uint8
    assert psnr(ours, theirs) > 40
    assert psnr(ours.flip(-1), theirs) < 30  # the check can fail: a mirrored picture is told apart


def test_random_squares_move_along_the_long_side():
    wide = torch.arange(3 * 40 * 100, dtype=torch.float32).reshape(3, 40, 100).to(torch.uint8)
    crops = {tuple(decoding.presize_images([wide], 40, train=True)[0, 0, 0, :3].tolist()) for _ in range(20)}
    assert len(crops) > 1
    centre = decoding.presize_images([wide], 40, train=False)[0]
    assert torch.equal(centre, wide[:, :, 30:70])  # same size: a copy, not a resampling


def test_a_refused_batch_is_decoded_one_picture_at_a_time(quirk_files, monkeypatch):
    good = decoding.read_encoded(quirk_files["RGB"])
    real = decoding.decode_jpeg

    def picky(data, **kwargs):  # refuses any batch, and one picture on its own: PIL has to take that one
        if isinstance(data, list) or data.data_ptr() == good.data_ptr():
            raise RuntimeError("refused")
        return real(data, **kwargs)

    monkeypatch.setattr(decoding, "decode_jpeg", picky)
    grey = decoding.read_encoded(quirk_files["L"])
    images = decoding.decode_images([good, grey])
    assert torch.equal(images[0], pil_to_tensor(open_rgb(Image.open(io.BytesIO(good.numpy().tobytes())))))
    assert torch.equal(images[1], real(grey, mode=decoding.ImageReadMode.RGB))


def test_loaders_decode_where_asked(pets_root):
    common = dict(presize=64, size=32, batch_size=16, device="cpu")
    on_device = pets_dataloaders(pets_root, decode="device", **common)
    in_workers = pets_dataloaders(pets_root, decode="workers", **common)
    assert isinstance(on_device.valid, decoding.DeviceDecodedLoader) and len(on_device.valid) == len(in_workers.valid)
    assert isinstance(in_workers.valid.dataset, EncodedImageDataset)
    assert CORRUPT_FILE in {p.name for p, _ in in_workers.valid.dataset.skipped + in_workers.train.dataset.skipped}
    # One code path: the batch decoded "on the device" (here the CPU) equals the one decoded in the workers.
    for (x_dev, y_dev), (x_wk, y_wk) in zip(on_device.valid, in_workers.valid):
        assert torch.equal(x_dev, x_wk) and torch.equal(y_dev, y_wk)
        assert x_dev.is_contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match="decode="):
        pets_dataloaders(pets_root, decode="gpu", **common)


def test_device_loader_passes_errors_on(pets_root, monkeypatch):
    dls = pets_dataloaders(pets_root, presize=32, size=16, batch_size=8, decode="device", device="cpu")
    monkeypatch.setattr(EncodedImageDataset, "__getitem__", lambda self, index: (_ for _ in ()).throw(OSError("disk "
                                                                                                              "gone")))
    with pytest.raises(OSError, match="disk gone"):
        next(iter(dls.valid))
