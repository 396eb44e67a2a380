"""Device-resident batches: coverage per epoch, seeded orders, DDP partition, and the host-loader path."""

from __future__ import annotations

import torch

from shd.diffusion.datamodule import DeviceBatches, Split, WeightSetDataModule

from .conftest import make_weight_set, random_weights


def split_of(n: int) -> Split:
    flat = torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 3)  # row i holds i
    return Split([f"s{i}" for i in range(n)], flat, torch.arange(n) % 2)


def rows_of(batches: DeviceBatches) -> list[int]:
    rows = []
    for x, c in batches:
        assert torch.equal(c, x[:, 0].long() % 2)  # each row keeps its own category
        rows += x[:, 0].long().tolist()
    return rows


def test_an_epoch_holds_every_row_repeat_times_in_batches_of_the_size():
    batches = DeviceBatches(split_of(5), 4, shuffle=True, repeat=3)
    sizes = [len(x) for x, _ in batches]
    assert sizes == [4, 4, 4, 3] and len(batches) == 4
    rows = rows_of(batches)
    assert sorted(rows) == sorted(list(range(5)) * 3)


def test_orders_are_seeded_by_epoch_and_unshuffled_batches_are_sequential():
    epoch = [0]
    batches = DeviceBatches(split_of(16), 16, shuffle=True, seed=3, epoch=lambda: epoch[0])
    first, again = rows_of(batches), rows_of(batches)
    assert first == again != list(range(16))  # same epoch number: same order (a resumed run)
    epoch[0] = 1
    assert rows_of(batches) != first
    other_seed = DeviceBatches(split_of(16), 16, shuffle=True, seed=4, epoch=lambda: 0)
    assert rows_of(other_seed) != first
    counted = DeviceBatches(split_of(16), 16, shuffle=True, seed=3)  # no epoch source: passes so far
    assert rows_of(counted) == first and rows_of(counted) != first
    assert rows_of(DeviceBatches(split_of(5), 2, shuffle=False)) == [0, 1, 2, 3, 4]


def test_ranks_split_one_order_into_equal_disjoint_parts_padded_by_wrapping():
    parts = [
        rows_of(DeviceBatches(split_of(7), 2, shuffle=True, rank=r, world=3, epoch=lambda: 5))
        for r in range(3)
    ]
    assert [len(p) for p in parts] == [3, 3, 3]
    together = sorted(sum(parts, []))
    assert set(together) == set(range(7)) and len(together) == 9  # 7 rows + 2 wrapped


def test_host_loader_and_device_batches_give_the_same_epochs(tmp_path):
    ws = make_weight_set(tmp_path / "w", random_weights(6), ["train"] * 5 + ["val"], ["airplane"] * 6)
    rows = {}
    for on_device in (True, False):
        dm = WeightSetDataModule(ws, batch_size=2, repeat=2, on_device=on_device)
        dm.setup()
        loader = dm.train_dataloader()
        assert isinstance(loader, DeviceBatches) == on_device
        if on_device:  # no trainer attached: the split is batched where it already is, not copied
            assert loader.flat.data_ptr() == dm.train.flat.data_ptr()
        got = torch.cat([x for x, _ in loader])
        rows[on_device] = sorted(map(tuple, got.tolist()))
        assert len(got) == 10 and len(dm.val_dataloader()) == 1
    assert rows[True] == rows[False]
