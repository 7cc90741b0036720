"""Epoch batching: each batch's levels and row positions equal what torch.unique finds,
group batches hold whole groups, and every training row is used once per epoch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmerpy.engines.batching import EpochBatches, batch_bounds, epoch_order


@pytest.mark.parametrize("grouped", [False, True])
@pytest.mark.parametrize("size", [1, 7, 50, 500])
def test_batches_match_torch_unique_and_cover_every_row(grouped, size):
    rng = np.random.default_rng(size)
    n = 400
    g = rng.integers(0, 30, n)
    h = rng.integers(0, 9, n)
    rows = np.sort(rng.choice(n, 300, replace=False))
    order, order_groups = epoch_order(rows, rng, g if grouped else None)
    tensors = {"y": torch.arange(n, dtype=torch.float64), "Xk": [torch.ones(n, 1)]}
    epoch = EpochBatches.build(tensors, [g, h], order, order_groups, size, "cpu")
    seen = []
    for b in range(len(epoch)):
        batch = epoch.batch(b)
        batch_rows = batch["y"].long().numpy()
        seen.append(batch_rows)
        for k, codes in enumerate((g, h)):
            present, inv = batch["segments"][k]
            u, i = torch.unique(torch.as_tensor(codes[batch_rows]), return_inverse=True)
            np.testing.assert_array_equal(present.numpy(), u.numpy())
            np.testing.assert_array_equal(inv.numpy(), i.numpy())
        if grouped:  # whole groups, at least `size` rows except in the last batch
            assert not set(g[batch_rows]) & set(g[np.setdiff1d(rows, batch_rows)])
            assert len(batch_rows) >= size or b == len(epoch) - 1
        else:
            assert len(batch_rows) == min(size, 300 - b * size)
    np.testing.assert_array_equal(np.sort(np.concatenate(seen)), rows)


def test_group_bounds_are_the_first_group_ends_past_the_batch_size():
    groups = np.array([0, 0, 0, 1, 2, 2, 3, 3, 3, 3, 4])
    np.testing.assert_array_equal(batch_bounds(groups, len(groups), 3), [0, 3, 6, 10, 11])
    np.testing.assert_array_equal(batch_bounds(None, 11, 4), [0, 4, 8, 11])


def test_order_without_generator_keeps_the_data_order():
    rows = np.arange(10)
    groups = np.array([2, 0, 2, 1, 0, 1, 2, 0, 1, 2])
    order, og = epoch_order(rows, None, groups)
    np.testing.assert_array_equal(og, np.sort(groups))
    np.testing.assert_array_equal(order, [1, 4, 7, 3, 5, 8, 0, 2, 6, 9])
    np.testing.assert_array_equal(epoch_order(rows, None, None)[0], rows)
