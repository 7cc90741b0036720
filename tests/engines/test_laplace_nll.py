"""The torch GLMM's Laplace batch NLL (engines/laplace_nll.py): on all rows it is glmer's
Laplace approximation, which the exact engine computes (and which tests/engines/test_glmm.py
checks against lme4); on a batch with more columns than rows it agrees with an independent
scipy computation; its gradient is the total derivative; and nn() GLMMs with crossed random
effects train on it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import optimize

import lmerpy as lp
from lmerpy.engines.batch_columns import batch_columns, random_columns
from lmerpy.engines.batch_nll import CovarianceParams
from lmerpy.engines.family import make_family
from lmerpy.engines.laplace_nll import laplace_batch_nll


def _crossed(seed: int = 3, n: int = 800, A: int = 40, B: int = 25) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a, b, x = rng.integers(0, A, n), rng.integers(0, B, n), rng.normal(size=n)
    eta = -0.3 + 0.8 * x + rng.normal(0, 0.7, A)[a] + rng.normal(0, 0.4, B)[b] \
        + rng.normal(0, 0.3, A)[a] * x
    return pd.DataFrame({"y": rng.binomial(1, 1 / (1 + np.exp(-eta))), "x": x,
                         "c": rng.poisson(np.exp(0.3 + 0.4 * x + rng.normal(0, 0.5, A)[a])),
                         "t": rng.gamma(4.0, np.exp(0.5 + 0.3 * x + rng.normal(0, 0.3, B)[b])
                                        / 4.0),
                         "a": a.astype(str), "b": b.astype(str)})


def _covariance(design, theta: np.ndarray) -> CovarianceParams:
    """CovarianceParams at lme4's θ (σ = 1: a GLMM's Λ is absolute)."""
    cov = CovarianceParams(design.random, 1.0)
    for k, (r, th) in enumerate(zip(design.random, design.split_theta(theta))):
        with torch.no_grad():
            if r.encoder is None:  # rbf: (sd, lengthscale)
                cov.factors[k].copy_(torch.log(torch.as_tensor(th)))
                continue
            L = np.zeros((r.p, r.p))
            cols, rows = np.triu_indices(r.p)
            L[rows, cols] = th
            raw = L.copy()
            np.fill_diagonal(raw, np.log(np.diag(L)))
            cov.factors[k].copy_(torch.as_tensor(raw))
    return cov


@pytest.mark.parametrize(("formula", "family", "link"), [
    ("y ~ x + (1 + x | a) + (1 | b)", "binomial", "logit"),
    ("c ~ x + (1 | a) + (1 | b)", "poisson", "log"),
    ("t ~ x + (1 | b) + (1 | a)", "Gamma", "log"),
    ("y ~ x + (1 | a:b) + (1 | a)", "binomial", "probit"),
])
def test_laplace_nll_on_all_rows_is_glmers_laplace_approximation(formula, family, link):
    """At the exact fit's estimates, 2 × the batch NLL over every row equals −2 log L of the
    exact engine (lme4's Laplace deviance; with φ for the Gamma). U is Z Λ from the design's
    sparse matrices, and random_columns builds the same matrix from the batch's levels."""
    df = _crossed()
    m = lp.glmer(formula, df, family=family, link=link)
    d = m.design
    U = torch.as_tensor((d.Z @ d.Lambda(m.theta)).toarray())
    segments = [torch.unique(torch.as_tensor(r.codes), return_inverse=True) for r in d.random]
    built = random_columns(_covariance(d, m.theta), [torch.as_tensor(r.X) for r in d.random],
                           segments, d.n, torch.float64)
    np.testing.assert_allclose(built.detach().numpy(), U.numpy(), atol=1e-14)
    phi = torch.tensor(m.dispersion, dtype=torch.float64) if family == "Gamma" else None
    nll = laplace_batch_nll(torch.as_tensor(m.fit.X @ m.fit.solution.beta), U,
                            torch.as_tensor(d.y, dtype=torch.float64),
                            torch.ones(d.n, dtype=torch.float64), m.family, phi)
    # (the probit: glmer's expected information in the determinant, not the observed)
    assert 2 * float(nll) == pytest.approx(-2 * float(m.logLik()), abs=1e-5)
    # the same through each row's nonzeros (batch_columns.py)
    sparse = batch_columns(_covariance(d, m.theta), [torch.as_tensor(r.X) for r in d.random],
                           segments, d.n, torch.float64)
    assert sparse.dense is None
    again = laplace_batch_nll(torch.as_tensor(m.fit.X @ m.fit.solution.beta), sparse,
                              torch.as_tensor(d.y, dtype=torch.float64),
                              torch.ones(d.n, dtype=torch.float64), m.family, phi)
    assert float(again) == pytest.approx(float(nll), abs=1e-9)


def test_laplace_nll_with_more_columns_than_rows_agrees_with_scipy():
    """A batch of 30 rows with more levels of two factors present than rows (k > m: the
    Newton steps by Woodbury, the determinant through the m × m system), against an
    independent computation: the mode by scipy's BFGS and log|I + U'WU| with W = μ(1 − μ)
    by numpy."""
    rng = np.random.default_rng(0)
    m = 30
    a, b = rng.integers(0, 18, m), rng.integers(0, 25, m)
    U = np.zeros((m, 18 + 25))
    U[np.arange(m), a] = 0.9
    U[np.arange(m), 18 + b] = 0.6 * rng.uniform(0.5, 1.5, m)
    U = U[:, U.any(axis=0)]
    assert U.shape[1] > m
    f = rng.normal(0.2, 0.5, m)
    y = rng.binomial(1, 0.5, m).astype(float)
    fam = make_family("binomial")

    def neg_h(u):
        eta = f + U @ u
        return -(y * eta - np.logaddexp(0, eta)).sum() + 0.5 * u @ u

    def grad(u):
        mu = 1 / (1 + np.exp(-(f + U @ u)))
        return -U.T @ (y - mu) + u

    u_hat = optimize.minimize(neg_h, np.zeros(U.shape[1]), jac=grad, method="BFGS",
                              options={"gtol": 1e-12}).x
    mu = 1 / (1 + np.exp(-(f + U @ u_hat)))
    expected = neg_h(u_hat) + 0.5 * np.linalg.slogdet(
        np.eye(U.shape[1]) + U.T @ ((mu * (1 - mu))[:, None] * U))[1]
    ours = laplace_batch_nll(torch.as_tensor(f), torch.as_tensor(U), torch.as_tensor(y),
                             torch.ones(m, dtype=torch.float64), fam)
    assert float(ours) == pytest.approx(expected, abs=1e-9)
    # in float32, as on a GPU: the mode's search ends at float32's resolution
    single = laplace_batch_nll(*(torch.as_tensor(v, dtype=torch.float32) for v in (f, U, y)),
                               torch.ones(m, dtype=torch.float32), fam)
    assert float(single) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("sparse", [True, False])
@pytest.mark.parametrize("family", ["binomial", "Gamma"])
def test_laplace_nll_gradient_is_the_total_derivative(family, sparse):
    """Autograd's gradient in β, the covariance factors and log φ equals central differences
    of the NLL itself — so it carries dû/d(parameters) through the log-determinant."""
    df = _crossed(n=300, A=15, B=10)
    formula = "y ~ x + (1 + x | a) + (1 | b)" if family == "binomial" else \
        "t ~ x + (1 | a) + (1 | b)"
    d = lp.design(formula, df)
    fam = make_family(family, "log" if family == "Gamma" else None)
    cov = _covariance(d, np.array([0.8, 0.1, 0.3, 0.5]) if family == "binomial"
                      else np.array([0.3, 0.25]))
    X, y = torch.as_tensor(d.X), torch.as_tensor(d.y, dtype=torch.float64)
    w = torch.ones(d.n, dtype=torch.float64)
    beta = torch.tensor([-0.2, 0.6] if family == "binomial" else [0.4, 0.2],
                        dtype=torch.float64, requires_grad=True)
    log_phi = torch.tensor(np.log(0.3), dtype=torch.float64, requires_grad=True)
    segments = [torch.unique(torch.as_tensor(r.codes), return_inverse=True) for r in d.random]
    Xs = [torch.as_tensor(r.X) for r in d.random]

    def nll():
        U = batch_columns(cov, Xs, segments, d.n, torch.float64) if sparse else \
            random_columns(cov, Xs, segments, d.n, torch.float64)
        return laplace_batch_nll(X @ beta, U, y, w, fam,
                                 log_phi.exp() if family == "Gamma" else None)

    nll().backward()
    params = [beta] + list(cov.factors) + ([log_phi] if family == "Gamma" else [])
    h = 1e-5
    for p in params:
        for idx in np.ndindex(*p.shape):
            if p.dim() == 2 and idx[1] > idx[0]:
                continue  # above the diagonal: not used
            with torch.no_grad():
                p[idx] += h
                up = float(nll())
                p[idx] -= 2 * h
                down = float(nll())
                p[idx] += h
            assert float(p.grad[idx]) == pytest.approx((up - down) / (2 * h), rel=1e-5,
                                                       abs=1e-6)


def _crossed_nonlinear(seed: int, n: int, A: int = 120, B: int = 50) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, A, n), rng.integers(0, B, n)
    X = rng.uniform(-1, 1, (n, 3))
    eta = 1.5 * np.sin(2 * X[:, 0]) + 2 * X[:, 1] * X[:, 2] + rng.normal(0, 0.8, A)[a] \
        + rng.normal(0, 0.5, B)[b]
    return pd.DataFrame({"y": rng.binomial(1, 1 / (1 + np.exp(-eta))), "x1": X[:, 0],
                         "x2": X[:, 1], "x3": X[:, 2], "subj": a.astype(str),
                         "item": b.astype(str)})


def test_nn_binomial_with_crossed_random_effects():
    """Subjects crossed with items, a non-linear mean: the network trained on the Laplace
    batch NLL beats the linear GLMM in log-likelihood and on held-out rows, its variance
    components sit near those the linear GLMM finds on the same data, and a seed repeats
    the fit bit for bit."""
    df = _crossed_nonlinear(7, 5000)
    train, test = df.iloc[:4000], df.iloc[4000:]
    kw = dict(family="binomial", seed=1, verbose=False, epochs=25, device="cpu")
    formula = "y ~ nn(x1 + x2 + x3, hidden=(32, 16)) + (1 | subj) + (1 | item)"
    m = lp.glmer(formula, train, **kw)
    lin = lp.glmer("y ~ x1 + x2 + x3 + (1 | subj) + (1 | item)", train, family="binomial")
    assert m.torch_info["quadrature"] == 1
    assert "Laplace approximation per batch" in str(m.summary())
    assert float(m.logLik()) > float(lin.logLik()) + 50

    def log_loss(model):
        p = model.predict(test, type="response").to_numpy()
        return -np.mean(test.y * np.log(p) + (1 - test.y) * np.log(1 - p))

    assert log_loss(m) < log_loss(lin) - 0.01
    ours, theirs = m.VarCorr().to_frame(), lin.VarCorr().to_frame()
    np.testing.assert_allclose(ours.sdcor.to_numpy(), theirs.sdcor.to_numpy(), rtol=0.25)
    assert set(m.ranef()) == {"subj", "item"}
    again = lp.glmer(formula, train, **kw)
    np.testing.assert_array_equal(m.fitted(), again.fitted())
