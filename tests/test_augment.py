"""Tests of helpers.augment: the one-grid composition, one resampling per image, dtypes, errors, quality."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from helpers.augment import (
    BatchAugment,
    PresizeCache,
    PresizeCrop,
    affine_matrices,
    apply_homography,
    compare_quality,
    conventional_pipeline,
    sampling_grid,
    warp_matrices,
)

ROOT = Path(__file__).resolve().parent.parent


def plain(aug: BatchAugment, x: torch.Tensor, **changes) -> torch.Tensor:
    """Apply identity params with some entries changed, without lighting, and undo the normalisation."""
    params = aug.identity_params(x)
    for name, value in changes.items():
        params[name] = torch.as_tensor(value, dtype=params[name].dtype).expand_as(params[name]).clone()
    return aug.decode(aug.transform(x, params, lighting=False))


@pytest.fixture
def batch() -> torch.Tensor:
    return torch.rand(4, 3, 48, 48, generator=torch.Generator().manual_seed(0))


def test_identity_params_give_the_plain_centre_resize():
    x = torch.rand(2, 3, 40, 64)
    out = plain(BatchAugment(size=32), x)
    expected = F.interpolate(x[..., 12:52], size=32, mode="bilinear", align_corners=False)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_a_pure_flip_equals_torch_flip_of_the_resized_image(batch):
    aug = BatchAugment(size=24)
    torch.testing.assert_close(plain(aug, batch, flip=True), torch.flip(plain(aug, batch), dims=[-1]),
                               atol=1e-5, rtol=0)


def test_rotation_by_90_degrees_matches_rot90(batch):
    out = plain(BatchAugment(size=48), batch, rotate=90.0)
    torch.testing.assert_close(out, torch.rot90(batch, 1, dims=(-2, -1)), atol=1e-4, rtol=0)
    # a non-square input: the centre square turns, not a stretched picture
    wide = torch.rand(1, 3, 30, 50)
    torch.testing.assert_close(plain(BatchAugment(size=30), wide, rotate=-90.0),
                               torch.rot90(wide[..., 10:40], -1, dims=(-2, -1)), atol=1e-4, rtol=0)


def test_crop_scale_and_centre_pick_the_right_corner():
    x = torch.rand(1, 3, 64, 64)
    out = plain(BatchAugment(size=16), x, crop_scale=0.25, crop_centre=[-1.0, 1.0])  # bottom-left quarter
    expected = F.interpolate(x[..., 32:, :32], size=16, mode="bilinear", align_corners=False)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)


def test_the_fast_grid_equals_affine_grid_then_warp(batch):
    aug = BatchAugment(size=20)
    params = aug.make_params(batch, generator=torch.Generator().manual_seed(3))
    matrix = affine_matrices(params, 48, 48)
    slow = apply_homography(F.affine_grid(matrix[:, :2], [4, 3, 20, 20], align_corners=False),
                            warp_matrices(params["warp"]))
    torch.testing.assert_close(sampling_grid(params, 48, 48, 20), slow, atol=1e-5, rtol=0)


def test_each_image_goes_through_exactly_one_grid_sample_and_no_interpolate(monkeypatch, batch):
    sampled, interpolated = [], []
    real_grid_sample = F.grid_sample
    monkeypatch.setattr(F, "grid_sample", lambda x, *a, **k: sampled.append(len(x)) or real_grid_sample(x, *a, **k))
    monkeypatch.setattr(F, "interpolate", lambda *a, **k: interpolated.append(1))
    for antialias in (False, True):
        sampled.clear()
        aug = BatchAugment(size=16, antialias=antialias, chunk_size=3)
        aug(torch.cat([batch, batch]).mul(255).to(torch.uint8))
        assert sum(sampled) == 8, f"8 images should be sampled once each, got chunks {sampled}"
        sampled.clear()
        aug.eval()(batch)
        assert sum(sampled) == 4, f"eval mode: 4 images, one resize each, got chunks {sampled}"
    assert not interpolated


def test_samples_in_a_batch_get_different_params(batch):
    params = BatchAugment(p_affine=1.0, p_lighting=1.0).make_params(batch)
    for name in ("rotate", "zoom", "crop_scale", "brightness", "contrast"):
        assert params[name].unique().numel() == len(batch), name
    assert params["warp"].unique().numel() == params["warp"].numel()


def test_each_transform_has_its_own_chance_as_in_fastai():
    many = torch.zeros(4000, 3, 8, 8, dtype=torch.uint8)
    params = BatchAugment(size=4, p_affine=0.5, p_lighting=0.5).make_params(many, torch.Generator().manual_seed(0))
    rotated, zoomed = params["rotate"] != 0, params["zoom"] != 1
    brighter, contrasted = params["brightness"] != 0.5, params["contrast"] != 1
    for switched_on in (rotated, zoomed, brighter, contrasted, params["warp"][:, 0] != 0):
        assert abs(switched_on.float().mean() - 0.5) < 0.04
    # Independent coins: both on about a quarter of the time (a shared coin would give a half).
    assert abs((rotated & zoomed).float().mean() - 0.25) < 0.04
    assert abs((brighter & contrasted).float().mean() - 0.25) < 0.04


def test_generator_makes_draws_repeatable_and_train_mode_random(batch):
    aug = BatchAugment(size=16)
    first = aug.make_params(batch, torch.Generator().manual_seed(7))
    second = aug.make_params(batch, torch.Generator().manual_seed(7))
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not torch.equal(aug(batch), aug(batch))


def test_eval_mode_is_deterministic_and_has_no_lighting(batch):
    aug = BatchAugment(size=16).eval()
    torch.testing.assert_close(aug(batch), aug(batch), atol=0, rtol=0)
    expected = (F.interpolate(batch, size=16, mode="bilinear", align_corners=False) - aug.mean) / aug.std
    torch.testing.assert_close(aug(batch), expected, atol=1e-5, rtol=0)


def test_dtype_and_device_rules(batch):
    aug = BatchAugment(size=8)
    as_bytes = (batch * 255).to(torch.uint8)
    assert aug(as_bytes).dtype == torch.float32
    assert aug(batch.double()).dtype == torch.float64
    assert aug(batch.bfloat16()).dtype == torch.bfloat16
    assert aug(batch).device == batch.device
    out = aug.eval()(as_bytes)
    assert out.shape == (4, 3, 8, 8)
    decoded = aug.decode(out)
    assert 0 <= decoded.min() and decoded.max() <= 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_device_is_preserved_on_cuda(batch):
    aug = BatchAugment(size=8).cuda()
    assert aug((batch * 255).to(torch.uint8).cuda()).device.type == "cuda"
    left_on_cpu = BatchAugment(size=8)  # a module never moved still follows the batch
    assert left_on_cpu((batch * 255).to(torch.uint8).cuda()).device.type == "cuda"


@pytest.mark.parametrize("bad, error, words", [
    (torch.rand(3, 8, 8), ValueError, "x[None]"),
    (torch.rand(2, 8, 8, 3), ValueError, "permute"),
    (torch.rand(2, 1, 8, 8), ValueError, "3 colour channels"),
    (torch.rand(8, 8), ValueError, "4-d batch"),
    (torch.randint(0, 255, (2, 3, 8, 8)), TypeError, "uint8"),
    ([[1, 2]], TypeError, "torch.Tensor"),
])
def test_bad_batches_raise_clear_errors(bad, error, words):
    with pytest.raises(error, match=words.replace("[", r"\[").replace("]", r"\]")):
        BatchAugment(size=8)(bad)


def test_bad_settings_and_params_raise_clear_errors(batch):
    with pytest.raises(ValueError, match="min_scale"):
        BatchAugment(min_scale=0)
    with pytest.raises(ValueError, match="min_zoom"):
        BatchAugment(min_zoom=1.2, max_zoom=1.1)
    aug = BatchAugment(size=8)
    with pytest.raises(ValueError, match="another batch size"):
        aug.transform(batch[:2], aug.make_params(batch))
    with pytest.raises(KeyError, match="make_params"):
        aug.transform(batch, {"flip": torch.zeros(4, dtype=torch.bool)})


def test_presize_crop_is_square_centred_for_valid_and_random_for_train():
    image = Image.new("RGB", (300, 200))
    image.paste((255, 0, 0), (0, 0, 50, 200))  # a red band on the left, outside the centre square
    valid = PresizeCrop(64, train=False)
    assert valid(image).size == (64, 64)
    assert valid.crop_box(300, 200) == (50, 0, 250, 200)
    boxes = {PresizeCrop(64, train=True).crop_box(300, 200) for _ in range(50)}
    assert len(boxes) > 5 and all(b[2] - b[0] == 200 and b[3] - b[1] == 200 for b in boxes)
    with pytest.raises(TypeError, match="PIL"):
        valid(torch.zeros(3, 8, 8))


def test_presize_cache_resizes_once_and_slices_per_access():
    images = [Image.new("RGB", (90, 60), (10, 20, 30)), Image.new("RGB", (40, 80), (200, 100, 0))]
    cache = PresizeCache(images, labels=[0, 1], presize=32, train=True)
    assert [tuple(im.shape) for im in cache.images] == [(3, 32, 48), (3, 64, 32)]
    x, y = cache[1]
    assert x.shape == (3, 32, 32) and x.dtype == torch.uint8 and y == 1
    assert x[:, 0, 0].tolist() == [200, 100, 0]


def test_conventional_pipeline_gives_normalised_tensors_of_the_same_size():
    out = conventional_pipeline(size=32)(Image.new("RGB", (80, 60), (120, 60, 200)))
    assert out.shape == (3, 32, 32) and out.dtype == torch.float32


def test_ours_beats_the_step_by_step_chain_on_psnr():
    from skimage import data
    photos = {"astronaut": Image.fromarray(data.astronaut()), "coffee": Image.fromarray(data.coffee())}
    table = compare_quality(photos, n_draws=3, size=96, presize=200, ssim=False)
    assert (table.psnr_ours > table.psnr_step_by_step).all()
    # also where the chain had real picture: the gain is not only the black corners
    assert (table.psnr_ours_inside > table.psnr_step_by_step_inside + 3).all()


@pytest.mark.slow  # starts a Python process that imports torch
def test_bench_quick_measures_every_row_on_the_same_images(tmp_path, child_env):
    out = tmp_path / "augment.json"
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "augment.py"), "--quick", "--device", "cpu",
                             "--json", str(out)], env=child_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    settings, rows = report["settings"], report["rows"]
    assert settings == {"images": 16, "epochs": 2, "batch_size": 8, "size": 64, "presize": 128, "workers": 0}
    assert [(row["device"], row["pipeline"], row["when"]) for row in rows] == [
        ("cpu", "per-item v2 chain", "every epoch"), ("cpu", "presize + BatchAugment", "every epoch"),
        ("cpu", "decoded presize + BatchAugment", "every epoch"),
        ("cpu", "cached presize + BatchAugment", "first epoch (builds cache)"),
        ("cpu", "cached presize + BatchAugment", "later epochs"),
        ("cpu", "BatchAugment alone (uint8 batch in)", "per batch")]
    # Every pipeline is timed on a whole epoch of the same images; the batch step alone on one batch.
    assert [row["images"] for row in rows] == [settings["images"]] * 5 + [settings["batch_size"]]
    base = rows[0]["images"] / rows[0]["seconds"]
    lines = result.stdout.splitlines()
    for row in rows:
        assert math.isfinite(row["seconds"]) and row["seconds"] > 0, row
        assert row["images/s"] == pytest.approx(row["images"] / row["seconds"], rel=1e-12)
        assert row["ratio"] == pytest.approx(row["images/s"] / base, rel=1e-12)
        # the printed table shows the measured numbers
        printed = [line.split() for line in lines if row["pipeline"] in line and row["when"] in line]
        assert any(line[-2:] == [f"{row['images/s']:.0f}", f"{row['ratio']:.2f}x"] for line in printed), row
    assert rows[0]["ratio"] == 1.0


def test_padding_mode_chooses_what_fills_the_outside():
    x = torch.full((1, 3, 16, 16), 200, dtype=torch.uint8)
    outputs = {}
    for mode in ("reflection", "zeros", "border"):
        augment = BatchAugment(size=16, padding_mode=mode, p_lighting=0.)
        params = augment.identity_params(x)
        params["zoom"] = torch.tensor([0.5])  # zoom out: half of the output shows outside the picture
        outputs[mode] = augment.decode(augment.transform(x, params, lighting=False))
        assert f"padding_mode={mode!r}" in repr(augment)
    corner = (0, 0, 0, 0)
    assert outputs["zeros"][corner] < 0.1
    assert abs(outputs["reflection"][corner] - 200 / 255) < 0.02 and abs(outputs["border"][corner] - 200 / 255) < 0.02
    with pytest.raises(ValueError, match="padding_mode"):
        BatchAugment(size=16, padding_mode="wrap")
