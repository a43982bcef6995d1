"""Several processes for ``python -m helpers.train`` under torchrun: the process group, sharded data, DDP (notebook 06).

One process per device. Each trains on its own share of every batch (``DistributedSampler``), validates its own
shard (``ShardSampler``), and ``DistributedTraining`` wraps the Learner's model in ``DistributedDataParallel`` for
each fit. With one process (``DistInfo().enabled`` is False) every function here does nothing, so the training
script runs the same code either way.
"""
from __future__ import annotations

import datetime
import hashlib
import inspect
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Sampler
from torch.utils.data.distributed import DistributedSampler

from helpers.callbacks import Callback
from helpers.decoding import DeviceDecodedLoader
from helpers.device import get_device, seed_worker


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands among those torchrun started, alone rank 0 of 1 (torchrun; docs/training-script.md)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        """Whether this is rank 0, the only one that prints and writes files (torchrun; docs/training-script.md)."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        """Whether more than one process takes part (torchrun; docs/training-script.md)."""
        return self.world_size > 1


def backend_for(device: torch.device) -> str:
    """NCCL between GPUs, gloo between CPU processes: the backend follows the device (notebook 06's GPU notes)."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def setup_distributed(prefer: str | None = None) -> tuple[DistInfo, torch.device]:
    """Read torchrun's environment, pick this process's device, join the group (torchrun; docs/training-script.md).

    The process group is joined only when there is more than one process.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    device = get_device(prefer)
    if world_size <= 1:
        return DistInfo(), device
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "mps":
        raise RuntimeError("several processes need CUDA GPUs or the CPU: PyTorch has no process-group backend for "
                           "Apple's mps device. Run one process, or pass --device cpu.")
    if device.type == "cuda":
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
        if torch.cuda.device_count() < local_world:
            raise RuntimeError(f"torchrun started {local_world} processes on this machine but it has "
                               f"{torch.cuda.device_count()} GPU(s): use --nproc_per_node={torch.cuda.device_count()}.")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    backend = backend_for(device)
    dist.init_process_group(backend, timeout=datetime.timedelta(minutes=30))
    return DistInfo(rank, local_rank, world_size, backend), device


class ShardSampler(Sampler[int]):
    """Items ``rank, rank + N, rank + 2N, ...``: each item in exactly one shard (torchrun; docs/training-script.md).

    No item is repeated.

    ``DistributedSampler`` pads the last shard with repeats (or drops items) so every rank gets the same count,
    which would score some validation images twice; this sampler lets the shards differ by one item instead.
    """

    def __init__(self, n_items: int, rank: int, world_size: int):
        self.indices = list(range(rank, n_items, world_size))

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def average_batchnorm_statistics(model: nn.Module, info: DistInfo) -> None:
    """Average every BatchNorm's running statistics over the processes (torchrun; docs/training-script.md).

    The running mean and variance, so that all ranks hold the same model.
    """
    if not info.enabled:
        return
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
            for buffer in (module.running_mean, module.running_var):
                if buffer is not None:
                    dist.all_reduce(buffer, op=dist.ReduceOp.SUM)
                    buffer.div_(info.world_size)


def broadcast_value(value: Any, info: DistInfo, src: int = 0) -> Any:
    """Rank ``src``'s ``value`` (any picklable object) on every rank (torchrun; docs/training-script.md)."""
    if not info.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def state_sha256(model: nn.Module) -> str:
    """One SHA-256 over all parameters and buffers; equal ones, equal models (torchrun; docs/training-script.md)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def distributed_loaders(dls, batch_size: int, info: DistInfo, seed: int, num_workers: int):
    """The same datasets and batch transform, each process reading its own part (torchrun; docs/training-script.md).

    Each process reads its own share of the training set and its own shard of the validation set.
    """
    from helpers.data import DataLoaders

    per_process = batch_size // info.world_size
    common = dict(num_workers=num_workers, pin_memory=torch.cuda.is_available(), worker_init_fn=seed_worker,
                  persistent_workers=num_workers > 0, collate_fn=dls.train.collate_fn)
    train_ds, valid_ds = dls.train.dataset, dls.valid.dataset
    # drop_last in the sampler: every rank gets the same number of items, so every rank runs the same number of
    # steps (a rank with one step more would wait forever for the others in DDP's all-reduce).
    sampler = DistributedSampler(train_ds, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=seed,
                                 drop_last=True)
    train = DataLoader(train_ds, batch_size=per_process, sampler=sampler, drop_last=True, **common)
    valid = DataLoader(valid_ds, batch_size=per_process,
                       sampler=ShardSampler(len(valid_ds), info.rank, info.world_size), **common)
    if isinstance(dls.train, DeviceDecodedLoader):  # batches decoded on this rank's GPU, as in one process
        train = DeviceDecodedLoader(train, dls.train.presize, train=True, device=dls.train.device)
        valid = DeviceDecodedLoader(valid, dls.valid.presize, train=False, device=dls.valid.device)
    return DataLoaders(train, valid, dls.vocab, dls.after_batch), sampler


# --- the callback ----------------------------------------------------------------------------------

class DistributedTraining(Callback):
    """Runs a fit under ``DistributedDataParallel``, one process per device (torchrun; docs/training-script.md).

    Each process works on its share of every batch.

    - ``before_fit`` wraps the model in DDP, ``after_fit`` unwraps it. A fresh wrapper per fit matters:
      DDP fixes the set of parameters it averages when it is built, so the unfrozen phase of fine_tune needs
      one built after ``unfreeze()``. Building it also copies rank 0's weights to every rank.
    - ``before_epoch`` tells the ``DistributedSampler`` the epoch (counted across fits), so each epoch is a new
      shuffle, the same on every rank, cut into disjoint shares.
    - Batch normalisation uses per-process batch statistics (plain BatchNorm, ``broadcast_buffers=False``):
      each process normalises its own share of the batch, as one GPU with that batch would. SyncBatchNorm
      would all-reduce at every BatchNorm layer of every step (resnet50 has 53) for statistics that, at the
      book's 64 images per step split over a few GPUs, are already well estimated. After each epoch's
      training ``after_train`` averages the running means and variances over the ranks, so validation and
      the saved weights use one set of statistics, identical on every rank.
    - ``after_backward`` replaces the loss the Recorder reads by its mean over the ranks: the table's
      train_loss is then the loss of the whole global batch, as with one process.
    - Validation: each rank runs its ``ShardSampler`` shard; ``gather_valid`` (the gathering hook of
      ``helpers.callbacks``) joins every rank's outputs and targets before they are scored, so the loss and
      error rate are computed once over the whole validation set (no item missing, none counted twice), on
      every rank.
    """

    order = -20  # first: the model is wrapped before any other callback sees it

    def __init__(self, info: DistInfo, device: torch.device, train_sampler: DistributedSampler):
        self.info, self.device, self.train_sampler = info, device, train_sampler
        self.epochs_done, self.valid_count = 0, 0

    def before_fit(self) -> None:
        learn = self.learn
        ids = [self.device.index] if self.device.type == "cuda" else None
        learn.model = nn.parallel.DistributedDataParallel(learn.model, device_ids=ids, **_RANK_LOCAL_BUFFERS)

    def before_epoch(self) -> None:
        self.train_sampler.set_epoch(self.epochs_done)

    def after_backward(self) -> None:
        loss = self.learn.loss.detach().clone()
        dist.all_reduce(loss, op=dist.ReduceOp.SUM)
        self.learn.loss = loss / self.info.world_size

    def after_train(self) -> None:
        average_batchnorm_statistics(self.learn.model, self.info)

    def after_epoch(self) -> None:
        self.epochs_done += 1

    def after_fit(self) -> None:
        learn = self.learn
        if isinstance(learn.model, nn.parallel.DistributedDataParallel):
            learn.model = learn.model.module

    def gather_valid(self, preds: torch.Tensor,
                     targets: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """All ranks' validation outputs and targets, in rank order, on every rank (torchrun; docs/training-script.md).

        This is the gathering hook of helpers/callbacks.py.
        """
        preds = gather_uneven(preds, self.info)
        targets = tuple(gather_uneven(t, self.info) for t in targets)
        self.valid_count = len(preds)
        return preds, targets


# Keep each rank's BatchNorm running statistics its own during training (DistributedTraining averages them after
# each epoch). torch 2.14 renamed the switch; the old name still works there but warns.
_RANK_LOCAL_BUFFERS = ({"forward_sync_buffers": False}
                       if "forward_sync_buffers" in inspect.signature(nn.parallel.DistributedDataParallel).parameters
                       else {"broadcast_buffers": False})


def gather_uneven(local: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Every rank's ``local`` rows in rank order, on every rank, counts may differ (torchrun; docs/training-script.md).

    The ranks may hold different numbers of rows.
    """
    if not info.enabled:
        return local
    counts = torch.tensor([len(local)], device=local.device)
    all_counts = [torch.zeros_like(counts) for _ in range(info.world_size)]
    dist.all_gather(all_counts, counts)
    all_counts = [int(c) for c in all_counts]
    padded = local.new_zeros((max(all_counts), *local.shape[1:]))
    padded[: len(local)] = local
    pieces = [torch.empty_like(padded) for _ in range(info.world_size)]
    dist.all_gather(pieces, padded.contiguous())
    return torch.cat([piece[:count] for piece, count in zip(pieces, all_counts)])
