"""A batch's Z_ξΛ by its rows' nonzeros (engines/batch_columns.py): every product equals the
dense matrix's, which tests/engines/test_laplace_nll.py checks against the design's Z Λ."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

import lmerpy as lp
from lmerpy.engines.batch_columns import BatchColumns, batch_columns, random_columns
from lmerpy.engines.batch_nll import CovarianceParams


def _batch(m: int, seed: int = 0):
    """A batch of m rows with a slope term crossed with an intercept term, levels many."""
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"y": rng.normal(size=m), "x": rng.normal(size=m),
                       "a": rng.integers(0, 12, m).astype(str),
                       "b": rng.integers(0, 40, m).astype(str)})
    d = lp.design("y ~ x + (1 + x | a) + (1 | b)", df)
    cov = CovarianceParams(d.random, 1.0)
    with torch.no_grad():
        for f in cov.factors:
            f.copy_(torch.as_tensor(rng.normal(scale=0.5, size=f.shape)))
    segments = [torch.unique(torch.as_tensor(r.codes), return_inverse=True) for r in d.random]
    Xs = [torch.as_tensor(r.X) for r in d.random]
    return (batch_columns(cov, Xs, segments, m, torch.float64),
            random_columns(cov, Xs, segments, m, torch.float64).detach(), rng)


def test_sparse_products_equal_the_dense_ones():
    for m in (60, 15):  # k < m, and k > m (where the m × m system is used)
        sparse, dense, rng = _batch(m)
        full = BatchColumns.of(dense)
        assert sparse.k == dense.shape[1] and sparse.dense is None
        u, r = torch.as_tensor(rng.normal(size=sparse.k)), torch.as_tensor(rng.normal(size=m))
        W = torch.as_tensor(rng.uniform(0.1, 2.0, m))
        np.testing.assert_allclose(sparse.times(u).detach(), dense @ u, atol=1e-12)
        np.testing.assert_allclose(sparse.t_times(r).detach(), dense.T @ r, atol=1e-12)
        np.testing.assert_allclose(sparse.gram(W).detach(), dense.T @ (W[:, None] * dense),
                                   atol=1e-12)
        np.testing.assert_allclose(sparse.outer(W).detach(), full.outer(W), atol=1e-12)
        s = W.sqrt()
        np.testing.assert_allclose(full.outer(W), (s[:, None] * dense) @ (s[:, None] * dense).T,
                                   atol=1e-12)
