"""Looking at the data: ``show_batch`` draws a batch, ``summary`` walks items through the pipeline (notebook 01).

``show_batch`` shows each picture with its label.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from PIL import Image
from torch.utils.data import default_collate
from torchvision.transforms.functional import pil_to_tensor

from helpers.images import open_rgb
from helpers.loaders import DataLoaders, ImageDataset, transform_mode

if TYPE_CHECKING:  # for the annotation only: worker processes start without matplotlib
    import matplotlib.figure


def _module_device(module: torch.nn.Module) -> torch.device:
    """Where a batch transform lives (a Learner may have moved it to the GPU); the CPU if it holds no tensors."""
    tensors = [*module.parameters(), *module.buffers()]
    return tensors[0].device if tensors else torch.device("cpu")


def _displayable(dls: DataLoaders, x: torch.Tensor, train: bool) -> torch.Tensor:
    """A batch as floats in [0, 1], through the batch transform (if any) and back out of its normalisation."""
    if dls.after_batch is None:
        return x.float() / 255 if x.dtype == torch.uint8 else x.float()
    with transform_mode(dls.after_batch, train), torch.no_grad():
        out = dls.after_batch.decode(dls.after_batch(x.to(_module_device(dls.after_batch))))
    return out.clamp(0, 1)


def show_batch(dls: DataLoaders, n: int = 9, train: bool = True, ncols: int = 3, figsize: tuple | None = None,
               title: str | None = None) -> matplotlib.figure.Figure:
    """A grid of the first ``n`` images of one batch with their labels (notebook 01).

    End the cell with plt.show().
    """
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
            image = open_rgb(opened)
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
    """Walk items through the pipeline step by step, printing each result and where and why it breaks (notebook 01)."""
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
    try:
        with transform_mode(after_batch, train), torch.no_grad():
            out = after_batch(x.to(_module_device(after_batch)))
    except Exception as error:
        raise _fail("after_batch", error, f"{type(after_batch).__name__} rejected the batch {tuple(x.shape)} "
                                          f"{x.dtype}; check its expected input (a uint8 or float Bx3xHxW "
                                          "batch).") from error
    print(f"  7. after_batch:     {type(after_batch).__name__} -> {_describe(out)}")
    print("Every step worked: this pipeline is ready for training.")
