"""Tests for helpers.data: the tiny pets and their quirks, labels, splits, datasets, loaders, summary, clear errors."""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import data
from helpers.augment import BatchAugment, PresizeCrop
from helpers.data import (
    PETS_PATTERN,
    DataLoaders,
    ImageDataset,
    PipelineError,
    RegexLabeller,
    get_image_files,
    make_loaders,
    make_vocab,
    mnist_sample,
    pets_dataloaders,
    pets_tiny,
    random_split,
    sample_photo,
    show_batch,
    summary,
    verify_images,
)


@pytest.fixture(scope="session")
def pets_root() -> Path:
    # The course's own cached copy (built once by whichever test or notebook asks first): the tests here only
    # read it, and test_whole_set_repeats_for_a_seed_and_is_quick builds a second one to compare it with.
    return pets_tiny(seed=0)


@pytest.fixture(scope="session")
def pet_files(pets_root) -> list[Path]:
    return get_image_files(pets_root / "images")


# --- the tiny pets ------------------------------------------------------------------------------------

def test_layout_has_every_breed_with_real_name_casing(pets_root, pet_files):
    assert len(data.BREEDS) == 37 and len(data.CAT_BREEDS) == 12
    labels = RegexLabeller(PETS_PATTERN).label_all(pet_files)
    counts = {breed: labels.count(breed) for breed in set(labels)}
    assert set(counts) == set(data.BREEDS)
    assert all(count >= data.TINY_IMAGES_PER_BREED for count in counts.values())
    assert all(b[0].isupper() for b in data.CAT_BREEDS) and all(b == b.lower() for b in data.DOG_BREEDS)
    # the non-image file is in the folder, but get_image_files leaves it out
    assert (pets_root / "images" / "Abyssinian_100.mat").exists()
    assert not any(f.suffix == ".mat" for f in pet_files)


def test_images_have_varied_sizes_and_aspect_ratios(pet_files):
    sizes = []
    for f in pet_files[::7]:
        with Image.open(f) as image:
            sizes.append(image.size)
    assert all(150 <= side <= 500 for size in sizes for side in size)
    ratios = [w / h for w, h in sizes]
    assert min(ratios) < 0.8 and max(ratios) > 1.25, "expected portrait and landscape pictures"


def test_planted_quirks(pets_root, pet_files):
    modes, formats = {}, {}
    for f in pet_files:
        if f.name == data.CORRUPT_FILE:
            continue
        with Image.open(f) as image:
            modes[f.name], formats[f.name] = image.mode, image.format
    assert sum(m == "L" for m in modes.values()) >= 2
    assert sum(m == "CMYK" for m in modes.values()) >= 2
    assert sum(m == "RGBA" for m in modes.values()) >= 2
    assert formats["Bengal_4.jpg"] == "PNG"  # a PNG wearing a .jpg name
    assert verify_images(pet_files) == [pets_root / "images" / data.CORRUPT_FILE]


def test_breeds_are_distinct_cue_combinations_with_documented_look_alike_pairs():
    features = data.BREED_FEATURES
    assert len(set(features.values())) == 37 and all(len(f) == len(data.CUES) for f in features.values())
    assert all(features[b][2] == 0 for b in data.CAT_BREEDS)   # cats: pointed ears
    assert all(features[b][2] != 0 for b in data.DOG_BREEDS)
    # Every two breeds differ in at least two cues, except the look-alike pairs, which differ in exactly the
    # one cue LOOK_ALIKES names (the story notebook 05's most_confused tells).
    one_cue = {}
    for i, a in enumerate(data.BREEDS):
        for b in data.BREEDS[i + 1:]:
            differ = [cue for cue, x, y in zip(data.CUES, features[a], features[b]) if x != y]
            if len(differ) < 2:
                one_cue[tuple(sorted((a, b)))] = differ[0]
    assert one_cue == {tuple(sorted(pair)): cue for pair, cue in data.LOOK_ALIKES.items()}
    assert data.breed_cues("Bengal") == "ginger spots, pointed ears, long body, thin tail"


def test_generation_is_byte_identical_for_a_seed(pets_root, tmp_path):
    # Each file has its own generator, so regenerating a few (quirky ones included) must reproduce them exactly.
    for breed, number in [("Abyssinian", 1), ("Persian", 3), ("Bengal", 4), ("Siamese", 6), ("yorkshire_terrier", 16)]:
        again = data.write_pet(tmp_path, breed, number, seed=0)
        assert again.read_bytes() == (pets_root / "images" / again.name).read_bytes(), again.name
        trimap = Path("annotations", "trimaps", again.stem + ".png")
        assert (tmp_path / trimap).read_bytes() == (pets_root / trimap).read_bytes()
    other = data.write_pet(tmp_path / "seed1", "Abyssinian", 1, seed=1)
    assert other.read_bytes() != (pets_root / "images" / "Abyssinian_1.jpg").read_bytes()


@pytest.mark.slow  # regenerates all 1,554 pictures: about 20 s on 2 idle cores
def test_whole_set_repeats_for_a_seed(pets_root, tmp_path):
    # pets_root is seed 0 in the course's cache; a fresh generation elsewhere must hash the same, file for file.
    again = pets_tiny(tmp_path / "seed0", seed=0)
    assert again != pets_root
    assert data.file_hashes(again) == data.file_hashes(pets_root)


def test_enough_validation_images(pet_files):
    train, valid = random_split(len(pet_files), 0.2, seed=42)
    assert len(valid) >= 300 and len(pet_files) >= 37 * 40


def test_pets_tiny_reuses_the_cache(pets_root):
    before = data.file_hashes(pets_root)
    stamp = (pets_root / "images" / "pug_1.jpg").stat().st_mtime_ns
    assert pets_tiny(pets_root, seed=0) == pets_root
    assert data.file_hashes(pets_root) == before
    assert (pets_root / "images" / "pug_1.jpg").stat().st_mtime_ns == stamp
    assert data.is_complete(pets_root)


def test_failed_generation_leaves_nothing_behind(tmp_path):
    def write(folder: Path) -> None:
        (folder / "half.jpg").write_bytes(b"half")
        raise KeyboardInterrupt  # the user stopping the cell mid-way

    with pytest.raises(KeyboardInterrupt):
        data.build_once(tmp_path / "pets", write)
    assert list(tmp_path.iterdir()) == []
    # A process killed outright cannot clean up: its old staging folder is swept by the next call.
    stale = tmp_path / ".pets.killed.tmp"
    stale.mkdir()
    os.utime(stale, (0, 0))
    data.build_once(tmp_path / "pets", lambda folder: (folder / "ok.txt").write_text("ok"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pets"]
    assert data.is_complete(tmp_path / "pets")


def test_an_existing_empty_folder_is_filled(tmp_path):
    empty = tmp_path / "mine"
    empty.mkdir()
    assert data.build_once(empty, lambda folder: (folder / "ok.txt").write_text("ok")) == empty
    assert (empty / "ok.txt").read_text() == "ok" and data.is_complete(empty)


def test_an_unfinished_folder_is_refused_or_rebuilt(tmp_path):
    partial = tmp_path / "partial"
    (partial / "images").mkdir(parents=True)
    (partial / "images" / "pug_1.jpg").write_bytes(b"half")  # e.g. a copy stopped mid-way
    with pytest.raises(data.UnfinishedFolderError, match="not a finished dataset.*Delete it"):
        pets_tiny(partial)
    with pytest.raises(data.UnfinishedFolderError):
        mnist_sample(partial)
    assert (partial / "images" / "pug_1.jpg").read_bytes() == b"half"  # refused, not touched
    # A folder the cache owns is simply built again.
    data.build_once(partial, lambda folder: (folder / "ok.txt").write_text("ok"), rebuild=True)
    assert sorted(p.name for p in partial.iterdir()) == [data.COMPLETE_MARKER, "ok.txt"]


def test_masks_are_recorded_for_every_readable_picture(pets_root, pet_files):
    masks = data.creature_masks(pets_root)
    readable = [f for f in pet_files if f.name != data.CORRUPT_FILE]
    assert sorted(masks) == sorted(f.name for f in readable)
    for f in readable[::97]:
        with Image.open(f) as image:
            assert masks[f.name].shape == (image.height, image.width) and masks[f.name].dtype == bool
        assert 0.05 < masks[f.name].mean() < 0.6  # an animal, not the whole picture
    # The animal is where it was drawn: its pixels differ from the background's.
    some = readable[0]
    picture = np.asarray(Image.open(some).convert("RGB"), dtype=np.float32)
    mask = masks[some.name]
    assert abs(picture[mask].mean(axis=0) - picture[~mask].mean(axis=0)).max() > 10
    box = data.creature_boxes(pets_root, [some.name])[some.name]
    rows, cols = np.nonzero(mask)
    assert box == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
    seen = data.mask_as_seen(mask, 64)
    assert seen.shape == (64, 64) and 0.05 < seen.mean() < 0.8
    with pytest.raises(FileNotFoundError, match="dataset root"):
        data.creature_masks(pets_root / "images")


# --- files, labels, vocabulary, split ----------------------------------------------------------------

def test_labeller_and_vocab(pet_files):
    labeller = RegexLabeller(PETS_PATTERN)
    assert labeller(Path("x/great_pyrenees_173.jpg")) == "great_pyrenees"
    assert labeller("British_Shorthair_9.jpg") == "British_Shorthair"
    vocab = make_vocab(labeller.label_all(pet_files))
    assert vocab == sorted(data.BREEDS)
    assert vocab[:12] == sorted(data.CAT_BREEDS)  # case-sensitive: capitals sort first


def test_labeller_error_lists_every_non_matching_name():
    labeller = RegexLabeller(PETS_PATTERN)
    with pytest.raises(ValueError, match="2 file name") as caught:
        labeller.label_all(["pug_1.jpg", "notes.txt", "beagle.jpg", "boxer_3.jpg"])
    assert "'notes.txt'" in str(caught.value) and "'beagle.jpg'" in str(caught.value)
    assert "re.match" in str(caught.value)
    with pytest.raises(ValueError, match="no group"):
        RegexLabeller(r"^.+_\d+\.jpg$")
    with pytest.raises(ValueError, match=r"not a valid regular expression.*re\.compile\(pattern\)"):
        RegexLabeller(r"^(.+_\d+\.jpg$")


def test_random_split_is_seeded_disjoint_and_matches_fastai():
    train, valid = random_split(100, valid_pct=0.2, seed=42)
    assert len(valid) == 20 and len(train) == 80
    assert sorted(train + valid) == list(range(100))
    assert random_split(100, 0.2, 42) == (train, valid)
    assert random_split(100, 0.2, 7) != (train, valid)
    torch.manual_seed(42)  # fastai's RandomSplitter: global seed, randperm, first 20% is validation
    assert valid == torch.randperm(100)[:20].tolist()
    with pytest.raises(ValueError, match="between 0 and 1"):
        random_split(100, valid_pct=20)
    with pytest.raises(ValueError, match="cannot split"):
        random_split(1)


def test_get_image_files_errors_say_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        get_image_files(tmp_path / "nope")
    with pytest.raises(ValueError, match="it is empty"):
        get_image_files(tmp_path)
    (tmp_path / "readme.txt").write_text("hi")
    with pytest.raises(ValueError, match="readme.txt"):
        get_image_files(tmp_path)


# --- datasets, loaders -------------------------------------------------------------------------------

def test_dataset_converts_every_mode_to_rgb_and_skips_unreadable(pet_files, capsys, monkeypatch):
    from helpers import loaders

    monkeypatch.setattr(loaders, "_REPORTED", set())  # as in a fresh kernel: nothing reported yet
    chosen = [f for f in pet_files if f.name in
              {"Persian_3.jpg", "Bengal_4.jpg", "Siamese_6.jpg", "pug_1.jpg", data.CORRUPT_FILE}]
    labeller = RegexLabeller(PETS_PATTERN)
    labels = labeller.label_all(chosen)
    ds = ImageDataset(chosen, labels, make_vocab(labels))
    assert f"Skipped 1 unreadable file(s) of 5: {data.CORRUPT_FILE}" in capsys.readouterr().out
    ImageDataset(chosen, labels, make_vocab(labels))
    assert "Skipped" not in capsys.readouterr().out  # a file is reported once a session, not by every dataset
    assert len(ds) == 4 and [p.name for p, _ in ds.skipped] == [data.CORRUPT_FILE]
    for i in range(len(ds)):
        x, y = ds[i]
        assert x.dtype == torch.uint8 and x.shape[0] == 3
        assert ds.vocab[y] == labeller(ds.files[i])
    bengal = ds[ds.files.index(next(f for f in chosen if f.name == "Bengal_4.jpg"))][0]
    assert (bengal[:, 0, 0] == 255).all(), "transparent pixels should become white, not black"


def test_dataset_checks_its_arguments(pet_files):
    with pytest.raises(ValueError, match="one label per file"):
        ImageDataset(pet_files[:3], ["a"], ["a"])
    with pytest.raises(ValueError, match="not in the vocabulary"):
        ImageDataset(pet_files[:1], ["a"], ["b"])
    ds = ImageDataset([], [], ["a"], check_files=False)
    with pytest.raises(ValueError, match="verify_images"):
        ds.prepare(Path("missing.jpg"))


def test_pets_dataloaders_batches(pets_root):
    torch.manual_seed(0)
    dls = pets_dataloaders(pets_root, presize=96, size=48, batch_size=8)
    assert isinstance(dls.train, torch.utils.data.DataLoader) and len(dls.vocab) == 37
    assert len(dls.train.dataset) + len(dls.valid.dataset) == 1554  # 1555 files, one unreadable
    assert len(dls.valid.dataset) >= 300
    x, y = next(iter(dls.train))
    assert x.shape == (8, 3, 96, 96) and x.dtype == torch.uint8 and y.dtype == torch.int64
    assert isinstance(dls.after_batch, BatchAugment)
    out = dls.after_batch.eval()(x)
    assert out.shape == (8, 3, 48, 48) and out.dtype == torch.float32
    # validation batches do not depend on the random state
    first = next(iter(dls.valid))[0]
    torch.manual_seed(123)
    assert torch.equal(next(iter(dls.valid))[0], first)


def test_cached_pets_match_what_is_read_from_disk(pets_root):
    plain = pets_dataloaders(pets_root, presize=48, size=32, decode="pil")  # the cache presizes with PIL too
    cached = pets_dataloaders(pets_root, presize=48, size=32, cache=True)
    for split in ("train", "valid"):
        a, b = getattr(plain, split).dataset, getattr(cached, split).dataset
        assert isinstance(b, data.CachedImageDataset) and b.files == a.files and b.labels == a.labels
        assert len(b.skipped) == len(a.skipped)  # the unreadable file is left out of the cache too
        assert b.kept == [None] * len(b)  # nothing is read before it is asked for
    # Validation: the same centre squares, to the bit, so a cached run validates on exactly the same pixels.
    assert all(torch.equal(plain.valid.dataset[i][0], cached.valid.dataset[i][0]) for i in range(0, 300, 37))
    # Training: a fresh square of the presized picture on each access, the size PresizeCrop gives.
    image, label = cached.train.dataset[0]
    assert image.shape == (3, 48, 48) and image.dtype == torch.uint8 and label == plain.train.dataset[0][1]
    wide = next(i for i, f in enumerate(cached.train.dataset.files) if Image.open(f).width > 1.3 * Image.open(f).height)
    draws = {tuple(cached.train.dataset[wide][0].flatten()[::97].tolist()) for _ in range(8)}
    assert len(draws) > 1  # the crop moves along the long side: augmentation, not a frozen picture
    x, y = next(iter(cached.train))
    assert x.shape == (64, 3, 48, 48) and len(y) == 64
    kept = sum(image is not None for image in cached.train.dataset.kept)
    assert 64 <= kept <= 66  # the batch's pictures, and the ones looked at above


@pytest.mark.slow  # each spawned worker starts a fresh Python that imports torch
def test_workers_under_spawn(pet_files):
    files = [f for f in pet_files if f.name != data.CORRUPT_FILE][:24]
    labels = RegexLabeller(PETS_PATTERN).label_all(files)
    vocab = make_vocab(labels)
    ds = ImageDataset(files, labels, vocab, item_tfm=PresizeCrop(32, train=True))
    dls = make_loaders(ds, ds, vocab, batch_size=6, num_workers=2, multiprocessing_context="spawn")
    batches = [x.shape for (x, _), _ in zip(dls.train, range(3))]
    assert batches == [torch.Size([6, 3, 32, 32])] * 3


# --- looking and debugging ----------------------------------------------------------------------------

def _loaders(files, item_tfm, after_batch=None) -> DataLoaders:
    labels = RegexLabeller(PETS_PATTERN).label_all(files)
    vocab = make_vocab(labels)
    ds = ImageDataset(files, labels, vocab, item_tfm=item_tfm, check_files=False)
    return make_loaders(ds, ds, vocab, batch_size=4, after_batch=after_batch)


def test_summary_walks_a_working_pipeline(pet_files, capsys):
    dls = _loaders(pet_files[:6], PresizeCrop(64, train=False), BatchAugment(size=32))
    summary(dls, train=False)
    out = capsys.readouterr().out
    for step in ("1. file", "2. open", "3. convert to RGB", "4. item transform", "5. to tensor", "6. collate",
                 "7. after_batch"):
        assert step in out
    assert "shape (4, 3, 32, 32), dtype float32" in out and "Every step worked" in out


def test_summary_says_where_and_why_a_pipeline_breaks(pets_root, pet_files, capsys):
    unsized = _loaders(pet_files[:6], item_tfm=None)
    with pytest.raises(PipelineError, match=r"step 'collate' failed.*different shapes.*PresizeCrop"):
        summary(unsized)
    assert "!! collate failed" in capsys.readouterr().out
    broken = _loaders([pets_root / "images" / data.CORRUPT_FILE], item_tfm=None)
    with pytest.raises(PipelineError, match=r"step 'open' failed.*verify_images"):
        summary(broken)
    with pytest.raises(TypeError, match="DataLoaders or an ImageDataset"):
        summary(pet_files)
    tensor_tfm = _loaders(pet_files[:2], item_tfm=lambda image: torch.zeros(3, 8, 8))
    with pytest.raises(PipelineError, match=r"step 'to tensor' failed.*must return a PIL image"):
        summary(tensor_tfm)


def test_summary_on_any_dataset(capsys):
    tensors = torch.utils.data.TensorDataset(torch.zeros(6, 3, 8, 8, dtype=torch.uint8), torch.arange(6))
    summary(make_loaders(tensors, tensors, ["a"] * 6, batch_size=2, after_batch=BatchAugment(size=4)))
    out = capsys.readouterr().out
    assert "not an ImageDataset" in out and "shape (4, 3, 4, 4)" in out and "Every step worked" in out


def test_show_batch_raw_and_normalised(pet_files):
    raw = _loaders(pet_files[:8], PresizeCrop(48, train=False))
    fig = show_batch(raw, n=4, ncols=2)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert len(titles) == 4 and all(t in raw.vocab for t in titles) and fig._suptitle.get_text()
    normalised = _loaders(pet_files[:8], PresizeCrop(48, train=False), BatchAugment(size=32))
    fig = show_batch(normalised, n=4, train=False)
    pixels = fig.axes[0].get_images()[0].get_array()
    assert pixels.shape == (32, 32, 3) and 0 <= pixels.min() and pixels.max() <= 1


# --- the other datasets -------------------------------------------------------------------------------

@pytest.mark.slow  # starts Python processes that import torch, or builds a data set
def test_mnist_sample_layout_and_determinism(tmp_path):
    root = mnist_sample(tmp_path / "mnist")
    counts = {f"{s}/{d}": len(list((root / s / d).glob("*.png"))) for s in ("train", "valid") for d in ("3", "7")}
    assert counts == {"train/3": 400, "valid/3": 100, "train/7": 400, "valid/7": 100}
    with Image.open(next((root / "train" / "7").glob("*.png"))) as digit:
        assert digit.mode == "L" and digit.size == (28, 28)
        assert 0 < np.asarray(digit).mean() < 128  # a real stroke on a black background
    assert data.file_hashes(mnist_sample(tmp_path / "again")) == data.file_hashes(root)


def test_sample_photo():
    photo = sample_photo()
    assert photo.mode == "RGB" and photo.size == (451, 300)
    with pytest.raises(ValueError, match=re.escape("choose one of")):
        sample_photo("dog")


def test_transform_mode_switches_and_always_restores():
    augment = BatchAugment(size=8)
    assert augment.training
    with data.transform_mode(augment, train=False) as module:
        assert module is augment and not augment.training
    assert augment.training
    with pytest.raises(RuntimeError), data.transform_mode(augment, train=False):
        raise RuntimeError("a failing show_batch")
    assert augment.training
    with data.transform_mode(None, train=True) as nothing:
        assert nothing is None


def test_presize_cache_lays_transparency_on_white_like_training(tmp_path):
    from helpers.augment import PresizeCache

    picture = Image.new("RGBA", (40, 30), (0, 0, 0, 0))  # fully transparent: white in training
    picture.save(tmp_path / "clear.png")
    cached, _ = PresizeCache([tmp_path / "clear.png"], presize=16, train=False)[0]
    dataset = ImageDataset([tmp_path / "clear.png"], ["x"], ["x"], item_tfm=PresizeCrop(16, train=False))
    assert cached.min() == 255 and torch.equal(cached, dataset[0][0])
