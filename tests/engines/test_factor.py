"""The three factorisations of A(θ) = Λ'Z'ZΛ + I agree with a plain dense computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import lmerpy as lp
from lmerpy.engines.factor import BlockedFactor, DenseFactor, SparseFactor

CASES = [
    ("Reaction ~ Days + (Days | Subject)", "sleepstudy", [0.9, 0.1, 0.3]),
    ("Reaction ~ Days + (Days || Subject)", "sleepstudy", [0.9, 0.3]),
    ("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin", [1.5, 3.5]),
    ("strength ~ 1 + (1 | batch/cask)", "Pastes", [3.5, 1.5]),
]


@pytest.mark.parametrize("formula,data,theta", CASES)
@pytest.mark.parametrize("kind", [BlockedFactor, DenseFactor, SparseFactor])
def test_factor_logdet_and_solve(formula, data, theta, kind):
    d = lp.design(formula, lp.datasets.load(data))
    Z = d.Z
    ZtZ = (Z.T @ Z).tocsc()
    theta = np.asarray(theta)
    lam = d.Lambda(theta)
    A = (lam.T @ ZtZ @ lam + sp.identity(ZtZ.shape[0])).toarray()
    factor = kind(d.random, ZtZ).update(d.split_theta(theta), lam)
    assert factor.logdet == pytest.approx(np.linalg.slogdet(A)[1], rel=1e-10)
    B = np.random.default_rng(0).normal(size=(A.shape[0], 3))
    np.testing.assert_allclose(factor.solve(B), np.linalg.solve(A, B), rtol=1e-8, atol=1e-10)
    if hasattr(factor, "inverse_diagonal") and all(r.p == 1 for r in d.random):
        np.testing.assert_allclose(factor.inverse_diagonal(), np.diag(np.linalg.inv(A)),
                                   rtol=1e-8)


@pytest.mark.parametrize("formula,theta", [
    ("y ~ x + rbf(lat, lon)", [1.3, 0.7]),                          # diagonal Z'Z
    ("y ~ x + rbf(lat, lon) + rbf(u, v)", [1.3, 0.7, 0.4, 1.8]),    # two spatial terms
])
@pytest.mark.parametrize("kind", [DenseFactor, SparseFactor])
def test_spatial_factor_logdet_and_solve(formula, theta, kind):
    """A spatial term's Λ is a dense triangle (DenseFactor multiplies it through BLAS)."""
    rng = np.random.default_rng(4)
    n = 120
    data = pd.DataFrame({"y": rng.normal(size=n), "x": rng.normal(size=n),
                         "lat": rng.integers(0, 6, n) / 2, "lon": rng.integers(0, 4, n) / 3,
                         "u": rng.integers(0, 5, n) / 4, "v": rng.integers(0, 2, n) * 1.0})
    d = lp.design(formula, data)
    ZtZ = (d.Z.T @ d.Z).tocsc()
    theta = np.asarray(theta)
    lam = d.Lambda(theta)
    A = (lam.T @ ZtZ @ lam + sp.identity(ZtZ.shape[0])).toarray()
    factor = kind(d.random, ZtZ).update(d.split_theta(theta), lam)
    assert factor.logdet == pytest.approx(np.linalg.slogdet(A)[1], rel=1e-10)
    B = rng.normal(size=(A.shape[0], 3))
    np.testing.assert_allclose(factor.solve(B), np.linalg.solve(A, B), rtol=1e-8, atol=1e-10)
