"""The factorisations of A(θ) = Λ'Z'ZΛ + I agree with a plain dense computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import lmerpy as lp
from lmerpy.engines.factor import (
    BlockedFactor,
    DenseFactor,
    KernelFactor,
    SparseFactor,
    make_factor,
)

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


@pytest.mark.parametrize("theta", [[1.3, 0.7], [0.0, 0.5], [1e-3, 2.0], [4.0, 0.2]])
@pytest.mark.parametrize("empty", [False, True])
def test_kernel_factor_against_A(theta, empty):
    """One spatial term: log|A|, A⁻¹B, (Λ'C)'A⁻¹(Λ'C), b = ΛA⁻¹Λ'r and ‖A⁻¹Λ'r‖² through
    M = I + G^½ΣG^½ (Sylvester, Woodbury) equal A = Λ'Z'WZΛ + I formed and factored directly,
    with prior weights and, ``empty``, locations without rows (g = 0: the training rows of a
    split)."""
    rng = np.random.default_rng(5)
    n = 150
    data = pd.DataFrame({"y": rng.normal(size=n), "x": rng.normal(size=n),
                         "lat": rng.integers(0, 7, n) / 2, "lon": rng.integers(0, 5, n) / 3})
    d = lp.design("y ~ x + rbf(lat, lon)", data)
    Z = d.Z.tocsr()
    if empty:  # drop the rows of three locations, keeping them as columns
        keep = ~np.isin(d.random[0].codes, [0, 4, 9])
        Z = Z[keep]
    w = rng.uniform(0.2, 4.0, Z.shape[0])
    ZtZ = (Z.T @ sp.diags(w) @ Z).tocsc()
    theta = np.asarray(theta)
    lam = d.Lambda(theta)
    A = (lam.T @ ZtZ @ lam + sp.identity(ZtZ.shape[0])).toarray()
    factor = make_factor(d.random, ZtZ)
    assert isinstance(factor, KernelFactor)
    factor.update(d.split_theta(theta), lam)
    assert factor.logdet == pytest.approx(np.linalg.slogdet(A)[1], rel=1e-10, abs=1e-12)
    B = rng.normal(size=(A.shape[0], 3))
    np.testing.assert_allclose(factor.solve(B), np.linalg.solve(A, B), rtol=1e-8, atol=1e-10)
    C = np.asarray(Z.T @ (w[:, None] * rng.normal(size=(Z.shape[0], 2))))
    LC = np.asarray(lam.T @ C)
    np.testing.assert_allclose(factor.quadratic(C), LC.T @ np.linalg.solve(A, LC),
                               rtol=1e-8, atol=1e-9)
    # b = Λû and ‖û‖² for û = A⁻¹Λ'r, r = Z'W e: zero at the locations without rows, whose
    # b comes from the others through Σ
    r = np.asarray(Z.T @ (w * rng.normal(size=Z.shape[0]))).ravel()
    u = np.linalg.solve(A, np.asarray(lam.T @ r).ravel())
    fresh = make_factor(d.random, ZtZ).update_kernel(d.split_theta(theta))  # without Λ
    assert fresh.logdet == pytest.approx(np.linalg.slogdet(A)[1], rel=1e-10, abs=1e-12)
    b, penalty = fresh.effects(r)
    np.testing.assert_allclose(b, np.asarray(lam @ u).ravel(), rtol=1e-7, atol=1e-10)
    assert penalty == pytest.approx(u @ u, rel=1e-8, abs=1e-12)
    with pytest.raises(RuntimeError, match="needs Λ"):
        fresh.solve(B)


def test_make_factor_uses_kernel_factor_for_one_spatial_term_only():
    rng = np.random.default_rng(6)
    n = 80
    data = pd.DataFrame({"y": rng.normal(size=n), "lat": rng.integers(0, 5, n) * 1.0,
                         "lon": rng.integers(0, 3, n) * 1.0, "g": rng.integers(0, 4, n)})
    for formula, kind in [("y ~ rbf(lat, lon)", KernelFactor),
                          ("y ~ (1 | g) + rbf(lat, lon)", BlockedFactor),
                          ("y ~ rbf(lat) + rbf(lon)", DenseFactor)]:
        d = lp.design(formula, data)
        assert type(make_factor(d.random, (d.Z.T @ d.Z).tocsc())) is kind, formula
