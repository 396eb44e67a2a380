"""The weight set as training data: splits from the data stage, bad fits left out (manifest status).

A weight set is small (36k floats a shape), so each split is loaded once into memory as (S, D)
float32 vectors with (S,) category ids; batches are raw weights (normalized on the device). By default
the splits are moved to the training device once and each batch is one index_select there
(`DeviceBatches`): a DataLoader would stack the batch row by row on the host and copy it to the GPU
every step (at batch 4096: 590 MB a step), and its pageable copies make the host wait for the GPU.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from shd.fields.weight_set import WeightSet
from shd.shards import fingerprint, read_shard_meta


@dataclass
class Split:
    ids: list[str]
    flat: torch.Tensor  # (S, D) float32
    category: torch.Tensor  # (S,) int64, index into the sorted category names

    def __len__(self) -> int:
        return len(self.ids)


def categories_of(weights: WeightSet) -> list[str]:
    """Category names in a fixed (sorted) order: the conditioning ids."""
    return sorted(weights.manifest["categories"])


def load_split(weights: WeightSet, split: str) -> Split:
    """Good fits (status ok) of one split with their category ids."""
    ids = weights.ids(split=split)
    names = categories_of(weights)
    flat = weights.load_flat(ids) if ids else torch.zeros(0, weights.layout.dim)
    cats = torch.tensor([names.index(weights.record(s)["category"]) for s in ids], dtype=torch.int64)
    return Split(ids, flat, cats)


def data_fingerprint(weights: WeightSet, train: Split, val: Split) -> str:
    """What the model was trained on: the weight set's shard fingerprints, the shapes of each split and
    a hash of the loaded weights themselves (a refit whose config fingerprint happens to match, e.g. a
    shard written by hand or a nondeterministic fit, still counts as other data). sha256 reads ~1 GB/s:
    a reference-size weight set (2,000 x 36k floats) costs a fraction of a second."""
    shards = sorted({weights.record(s)["shard"] for s in train.ids + val.ids})
    shard_fps = [read_shard_meta(weights.root / s).get("fingerprint", s) for s in shards]
    content = hashlib.sha256()
    for split in (train, val):
        content.update(split.flat.detach().cpu().float().contiguous().numpy().tobytes())
    return fingerprint(shard_fps, train.ids, val.ids, content.hexdigest())


class DeviceBatches:
    """Batches of a split gathered where its tensors live: one index_select a batch, so nothing is
    stacked on the host, copied per step or waited for. An epoch is `repeat` passes over the split,
    shuffled by a generator seeded with (seed, epoch) on the split's device; `epoch` gives the epoch
    number (the trainer's, so a resumed run sees the orders it would have seen; default: the count of
    passes so far). Under DDP each of `world` ranks takes every world-th item of the same order
    (padded by wrapping, as DistributedSampler does)."""

    def __init__(
        self,
        split: Split,
        batch_size: int,
        *,
        shuffle: bool,
        repeat: int = 1,
        seed: int = 0,
        rank: int = 0,
        world: int = 1,
        epoch: Callable[[], int] | None = None,
    ):
        if not len(split):
            raise ValueError("DeviceBatches needs a non-empty split")
        self.flat, self.category = split.flat, split.category
        self.batch_size, self.shuffle, self.repeat = batch_size, shuffle, repeat
        self.seed, self.rank, self.world = seed, rank, world
        self._epoch = epoch
        self._passes = 0

    def _per_rank(self) -> int:
        return math.ceil(len(self.flat) * self.repeat / self.world)

    def __len__(self) -> int:
        return math.ceil(self._per_rank() / self.batch_size)

    def order(self, epoch: int) -> torch.Tensor:
        """This rank's row indices in this epoch."""
        n, device = len(self.flat) * self.repeat, self.flat.device
        if self.shuffle:
            generator = torch.Generator(device=device).manual_seed(self.seed * 1_000_003 + epoch)
            order = torch.randperm(n, generator=generator, device=device)
        else:
            order = torch.arange(n, device=device)
        total = self._per_rank() * self.world
        if total > n:
            order = order.repeat(math.ceil(total / n))[:total]
        return order[self.rank :: self.world].remainder_(len(self.flat))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = self.order(self._epoch() if self._epoch is not None else self._passes)
        self._passes += 1
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            yield self.flat.index_select(0, rows), self.category.index_select(0, rows)


class WeightSetDataModule(pl.LightningDataModule):
    """Train / val splits as batches. `on_device` (default): the splits are moved once to the training
    device and batched there (`DeviceBatches`); otherwise a host DataLoader with `num_workers` workers
    stacks each batch (for weight sets too large for the device's memory). The splits are read from
    `weight_set_dir` in `setup`, or given by `of_splits`."""

    def __init__(
        self,
        weight_set_dir: str | Path | None,
        batch_size: int,
        num_workers: int = 0,
        repeat: int = 1,
        on_device: bool = True,
        seed: int = 0,
    ):
        super().__init__()
        self.repeat = repeat
        self.weight_set_dir = Path(weight_set_dir) if weight_set_dir is not None else None
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.on_device, self.seed = on_device, seed
        self.train: Split | None = None
        self.val: Split | None = None

    @classmethod
    def of_splits(
        cls, train: Split, val: Split | None, batch_size: int, **options: Any
    ) -> WeightSetDataModule:
        """Over splits already in memory (loaded by the caller, or synthetic; no `val`: an empty one), so
        `setup` reads nothing; `options` as the constructor's."""
        data = cls(None, batch_size, **options)
        data.train = train
        data.val = val if val is not None else Split([], train.flat[:0], train.category[:0])
        return data

    def setup(self, stage: str | None = None) -> None:
        if self.train is None:
            assert self.weight_set_dir is not None, "no weight set and no splits given"
            weights = WeightSet.open(self.weight_set_dir)
            self.train, self.val = load_split(weights, "train"), load_split(weights, "val")

    def _loader(self, split: Split, shuffle: bool, repeat: int = 1) -> DeviceBatches | DataLoader:
        if self.on_device:
            trainer = self.trainer
            device = trainer.strategy.root_device if trainer is not None else split.flat.device
            rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
            resident = Split(split.ids, split.flat.to(device), split.category.to(device))
            epoch = (lambda: trainer.current_epoch) if trainer is not None else None
            return DeviceBatches(
                resident,
                self.batch_size,
                shuffle=shuffle,
                repeat=repeat,
                seed=self.seed,
                rank=rank,
                world=world,
                epoch=epoch,
            )
        data = TensorDataset(split.flat.repeat(repeat, 1), split.category.repeat(repeat))
        return DataLoader(
            data,
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DeviceBatches | DataLoader:
        assert self.train is not None
        return self._loader(self.train, shuffle=True, repeat=self.repeat)

    def val_dataloader(self) -> DeviceBatches | DataLoader | list:
        assert self.val is not None
        return self._loader(self.val, shuffle=False) if len(self.val) else []
