"""The weight set as training data: splits from the data stage, bad fits left out (manifest status).

A weight set is small (36k floats a shape), so each split is loaded once into memory as (S, D)
float32 vectors with (S,) category ids; batches are raw weights (normalized on the device).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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
    """What the model was trained on: the weight set's shard fingerprints and the shapes of each split."""
    shards = sorted({weights.record(s)["shard"] for s in train.ids + val.ids})
    shard_fps = [read_shard_meta(weights.root / s).get("fingerprint", s) for s in shards]
    return fingerprint(shard_fps, train.ids, val.ids)


class WeightSetDataModule(pl.LightningDataModule):
    def __init__(self, weight_set_dir: str | Path, batch_size: int, num_workers: int = 0, repeat: int = 1):
        super().__init__()
        self.repeat = repeat
        self.weight_set_dir = Path(weight_set_dir)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.train: Split | None = None
        self.val: Split | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train is None:
            weights = WeightSet.open(self.weight_set_dir)
            self.train, self.val = load_split(weights, "train"), load_split(weights, "val")

    def _loader(self, split: Split, shuffle: bool, repeat: int = 1) -> DataLoader:
        data = TensorDataset(split.flat.repeat(repeat, 1), split.category.repeat(repeat))
        return DataLoader(data, batch_size=self.batch_size,
                          shuffle=shuffle, num_workers=self.num_workers,
                          persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        assert self.train is not None
        return self._loader(self.train, shuffle=True, repeat=self.repeat)

    def val_dataloader(self) -> DataLoader | list:
        assert self.val is not None
        return self._loader(self.val, shuffle=False) if len(self.val) else []
