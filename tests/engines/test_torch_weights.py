"""Prior weights in the torch engine (lme4's ``weights``: residual variance σ²/w_i): the
weighted batch NLL is the Gaussian likelihood written out densely, training reaches lme4's
weighted ML fit, and a network fitted with the true precisions recovers σ and f."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import multivariate_normal

import lmerpy as lp
from lmerpy.engines.batch_nll import batch_nll
from lmerpy.errors import DataError
from tests.conftest import read_reference
from tests.engines.test_torch import _random_model

FITS = read_reference("lme4_fits.json")["fits"]


FORMULAS = [
    "y ~ x + (1 | g)",
    "y ~ x + (x | g)",
    "y ~ x + (1 | g) + (1 | h)",
    "y ~ x + rbf(lat, lon)",
    "y ~ x + (1 | g) + (x | u)",  # more random-effect columns than rows: the m×m system
]


@pytest.mark.parametrize("zeros", [False, True])
@pytest.mark.parametrize("formula", FORMULAS)
def test_weighted_batch_nll_is_the_multivariate_normal(formula, zeros):
    """V = ZΛΛ'Z' + σ²W⁻¹. A row of weight 0 carries no information: the NLL is that of
    the other rows (as the exact engine's deviance)."""
    n = 40
    rng = np.random.default_rng(0)
    d, cov = _random_model(formula, rng, n, 1.3)
    w = rng.uniform(0.2, 5.0, n)
    if zeros:
        w[[3, 17, 30]] = 0.0
    r = torch.as_tensor(d.y - 0.1)
    codes = [torch.as_tensor(t.codes) for t in d.random]
    Xs = [torch.as_tensor(t.X) for t in d.random]
    ours = float(batch_nll(r, cov, codes, Xs, weights=torch.as_tensor(w)).detach())
    theta = cov.theta()
    s2 = float(cov.sigma.detach()) ** 2
    Zl = (d.Z @ d.Lambda(theta)).toarray() * np.sqrt(s2)   # ZΛ on the absolute scale
    keep = w > 0
    V = Zl[keep] @ Zl[keep].T + np.diag(s2 / w[keep])
    expected = -multivariate_normal(mean=np.zeros(keep.sum()), cov=V).logpdf(r.numpy()[keep])
    assert ours == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("formula", ["y ~ x + (1 | g)", "y ~ x + (x | g)",
                                     "y ~ x + (1 | g) + (1 | h)"])
def test_weighted_batch_nll_gradient_is_the_multivariate_normal_gradient(formula):
    """The hand-written gradient of the scalar-term NLL, and autograd's for the others,
    with weights: equal to autograd's gradient of the dense Gaussian NLL in r, log σ and
    every covariance factor."""
    n = 30
    rng = np.random.default_rng(1)
    d, cov = _random_model(formula, rng, n, 0.8)
    w = torch.as_tensor(rng.uniform(0.2, 5.0, n))
    r = torch.as_tensor(rng.normal(size=n), dtype=torch.float64).requires_grad_(True)
    codes = [torch.as_tensor(t.codes) for t in d.random]
    Xs = [torch.as_tensor(t.X) for t in d.random]
    wrt = [r, cov.log_sigma, *cov.factors]
    ours = torch.autograd.grad(batch_nll(r, cov, codes, Xs, weights=w), wrt)
    blocks = []
    for k, t in enumerate(d.random):
        Zk = torch.zeros(n, t.q * t.p, dtype=torch.float64)
        for i, (c, x) in enumerate(zip(t.codes, t.X)):
            Zk[i, c * t.p:(c + 1) * t.p] = torch.as_tensor(x)
        L = cov.chol(k)
        blocks.append(Zk @ torch.block_diag(*[L @ L.T] * t.q) @ Zk.T)
    V = sum(blocks) + torch.diag(cov.sigma ** 2 / w)
    dense = -torch.distributions.MultivariateNormal(torch.zeros(n, dtype=torch.float64),
                                                    V).log_prob(r)
    expected = torch.autograd.grad(dense, wrt)
    for a, b in zip(ours, expected):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-8, atol=1e-10)


def _sleep_w() -> pd.DataFrame:
    """lme4_fits.R's sleep_w: sleepstudy with weights 1, 2, 0.5 repeating."""
    data = lp.datasets.load("sleepstudy")
    data["w"] = np.resize([1.0, 2.0, 0.5], len(data))
    return data


def test_full_batch_weighted_training_reaches_lme4s_weighted_ml_fit():
    """Training alone (refine=False) on the whole data set as one batch: θ, β, σ and the
    log-likelihood within 2% (0.05) of lme4's lmer(REML = FALSE, weights = w)."""
    ref = FITS["sleep_weights_ml"]
    fit = lp.lmer("Reaction ~ Days + (Days | Subject)", _sleep_w(), engine="torch",
                  weights="w", batch_size=180, lr=0.05, epochs=1500, patience=0,
                  validation=0, seed=0, verbose=False, refine=False)
    np.testing.assert_allclose(fit.theta, ref["theta"], rtol=0.02, atol=2e-3)
    np.testing.assert_allclose(fit.fixef(), list(ref["fixef"].values()), rtol=0.02)
    assert fit.sigma == pytest.approx(ref["sigma"], rel=0.02)
    assert float(fit.logLik()) == pytest.approx(ref["logLik"], abs=0.05)


def test_weighted_refinement_is_lme4s_weighted_ml_fit():
    """With refine (the default) θ̂ is the exact weighted ML fit given the trained fixed
    part; for a linear fixed part that is lme4's fit, and the result object reports it as
    lme4 does: weights in the summary, Pearson residuals scaled by √w."""
    ref = FITS["sleep_weights_ml"]
    with warnings.catch_warnings():  # started from the trained θ, the optimiser stops at
        warnings.simplefilter("ignore")  # max|grad| 0.006 on this flat surface: "failed
        fit = lp.lmer("Reaction ~ Days + (Days | Subject)", _sleep_w(),  # to converge"
                      engine="torch", weights="w", batch_size=30, epochs=30, seed=0,
                      verbose=False)
    np.testing.assert_allclose(fit.theta, ref["theta"], rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(fit.fixef(), list(ref["fixef"].values()), rtol=1e-4)
    assert fit.sigma == pytest.approx(ref["sigma"], rel=1e-4)
    assert float(fit.logLik()) == pytest.approx(ref["logLik"], abs=1e-4)
    # √w times the response residual (a residual of 25 ± 0.01 at this θ̂)
    np.testing.assert_allclose(fit.residuals(type="pearson")[:10], ref["pearson_head"],
                               atol=0.05)
    assert "Weights: w" in str(fit.summary())


def _heteroscedastic(n: int, q: int, seed: int) -> pd.DataFrame:
    """y = sin(2x1)·x2 + b_g + ε with Var ε = 1/w, w ∈ {0.25, 1, 4}: the noisy rows are
    noisy by a factor 4 in sd."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.uniform(-2, 2, n), rng.uniform(-2, 2, n)
    g = rng.integers(0, q, n)
    w = rng.choice([0.25, 1.0, 4.0], n)
    y = np.sin(2 * x1) * x2 + 0.8 * rng.normal(size=q)[g] + rng.normal(size=n) / np.sqrt(w)
    return pd.DataFrame({"y": y, "x1": x1, "x2": x2, "g": g.astype(str), "w": w,
                         "f": np.sin(2 * x1) * x2})


def test_a_network_fitted_with_the_precisions_recovers_sigma_and_f():
    """With the true precisions as weights, σ̂ and the random intercept's sd are within 2%
    of the weighted ML fit given the true f (σ 0.991, sd 0.690 on these data: truth 1 and
    0.8); the network's f̂ is closer to f than without weights (the noisy rows then pull
    as hard as the precise ones: E(f − f̂)² 0.011 against 0.034), and σ̂ without weights is
    far off (1.32)."""
    data = _heteroscedastic(6000, 60, 4)
    formula = "y ~ nn(x1 + x2, hidden=(32, 16), dropout=0) + (1 | g)"
    options = dict(batch_size=200, lr=3e-3, seed=1, verbose=False)
    weighted = lp.lmer(formula, data, weights="w", **options)
    plain = lp.lmer(formula, data, **options)
    oracle = lp.lmer("y ~ 1 + offset(f) + (1 | g)", data, weights="w", REML=False)

    def sd(m):
        return m.VarCorr().to_frame().query("grp == 'g'").sdcor.item()

    assert weighted.sigma == pytest.approx(oracle.sigma, rel=0.02)
    assert sd(weighted) == pytest.approx(sd(oracle), rel=0.02)
    assert abs(plain.sigma - 1.0) > 0.2

    def f_error(m):
        nn = m.predict(re_form="NA")
        nn = nn - nn.mean() + data.f.mean()
        return float(np.mean((nn - data.f) ** 2))

    assert f_error(weighted) < 0.8 * f_error(plain)


def test_weights_are_checked_at_the_border():
    data = _sleep_w()
    with pytest.raises(DataError, match="non-negative"):
        lp.lmer("Reaction ~ Days + (1 | Subject)", data, engine="torch",
                weights=-data.w, epochs=1, verbose=False)
    with pytest.raises(DataError, match="all zero"):
        lp.lmer("Reaction ~ Days + (1 | Subject)", data, engine="torch",
                weights=np.zeros(len(data)), epochs=1, verbose=False)
