"""Epoch batching: each batch's levels and row positions equal what torch.unique finds,
group batches hold whole groups, and every training row is used once per epoch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lmerpy.engines.batching import (
    EpochBatches,
    batch_bounds,
    epoch_order,
    local_order,
    locality_rank,
)


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


def test_locality_rank_keeps_neighbours_close():
    """Consecutive ranks are near in space: far nearer than random pairs, in 2 and 3
    dimensions, and the rank is a permutation."""
    rng = np.random.default_rng(0)
    for d in (2, 3):
        coords = rng.uniform(-10, 10, (2000, d))
        rank = locality_rank(coords)
        np.testing.assert_array_equal(np.sort(rank), np.arange(2000))
        path = coords[np.argsort(rank)]
        step = np.linalg.norm(np.diff(path, axis=0), axis=1).mean()
        shuffled = np.linalg.norm(np.diff(coords, axis=0), axis=1).mean()
        assert step < 0.25 * shuffled


def test_local_order_gives_fixed_batches_of_nearby_locations():
    """Every row once, batches of the full size but the last, each a compact patch; the
    cut and the batch order change from epoch to epoch, and without a generator the order
    is the sorted one."""
    rng = np.random.default_rng(1)
    coords = rng.uniform(-10, 10, (300, 2))
    locations = rng.integers(0, 300, 3000)
    rows = np.sort(rng.choice(3000, 2500, replace=False))
    rank = locality_rank(coords)
    first, second = (local_order(rows, rng, locations, rank, 100) for _ in range(2))
    for order in (first, second):
        np.testing.assert_array_equal(np.sort(order), rows)
        epoch = EpochBatches.build({"y": torch.zeros(3000)}, [locations], order, None, 100,
                                   "cpu")
        assert set(np.diff(epoch.bounds)[:-1]) == {100}
        spread = [coords[locations[order[lo:hi]]].std(axis=0).mean()
                  for lo, hi in zip(epoch.bounds[:-1], epoch.bounds[1:])]
        assert np.median(spread) < 0.4 * coords.std(axis=0).mean()  # random rows: ≈ 1
    assert not np.array_equal(first, second)
    fixed = local_order(rows, None, locations, rank, 100)
    assert np.all(np.diff(rank[locations[fixed]]) >= 0)


@pytest.mark.parametrize("levels", [30, 100_000])
def test_order_with_generator_is_whole_groups_in_a_permuted_order(levels):
    """Each group's rows together and in their data order, the groups in the order of the
    generator's permutation of the levels present (above 2¹⁶ levels the sort key is wider)."""
    rng = np.random.default_rng(3)
    n = 200_000 if levels > 1000 else 500
    groups = rng.integers(0, levels, n)
    rows = np.sort(rng.choice(n, n * 3 // 4, replace=False))
    order, og = epoch_order(rows, np.random.default_rng(9), groups)
    permuted = np.random.default_rng(9).permutation(np.unique(groups[rows]))
    expected = np.concatenate([rows[groups[rows] == level] for level in permuted]) \
        if levels < 1000 else None
    if expected is not None:
        np.testing.assert_array_equal(order, expected)
    else:  # the same, checked without a loop over 77,000 levels
        position = np.empty(levels, dtype=np.int64)
        position[permuted] = np.arange(len(permuted))
        key = position[groups[order]]
        assert (np.diff(key) >= 0).all()
        same = np.diff(key) == 0
        assert (np.diff(order)[same] > 0).all()
        np.testing.assert_array_equal(np.sort(order), rows)
    np.testing.assert_array_equal(og, groups[order])
