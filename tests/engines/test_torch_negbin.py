"""Negative binomial GLMMs in the torch engine: the log-density and PIRLS weights against
scipy, the batch NLLs against the marginal likelihood and glmer's Laplace deviance, the
size θ trained and refined to lme4's glmer.nb, and a network on overdispersed counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import integrate
from scipy.stats import nbinom, norm

import lmerpy as lp
from lmerpy.engines.family import gauss_hermite, negative_binomial
from lmerpy.engines.glmm_nll import glmm_batch_nll, log_density, score_and_information
from lmerpy.engines.laplace_nll import laplace_batch_nll
from tests.conftest import read_reference

NB = read_reference("lme4_glmer_nb.json")


def _nb_logpmf(y, mu, size):
    return nbinom.logpmf(y, size, size / (size + mu))


@pytest.mark.parametrize("link", ["log", "identity"])
@pytest.mark.parametrize("trained", [False, True])
def test_log_density_score_and_weights_are_the_negative_binomials(link, trained):
    """log p = w × scipy's log pmf (MASS: prior weights multiply the log-likelihood), at the
    family's θ or at a size being trained; the score is autograd's derivative of it, and
    the information glmer's w μ'²/V with V = μ + μ²/θ."""
    rng = np.random.default_rng(0)
    y = torch.as_tensor(rng.negative_binomial(2, 0.3, 50).astype(float))
    mu = rng.uniform(0.2, 9.0, 50)
    eta = torch.as_tensor(np.log(mu) if link == "log" else mu).requires_grad_(True)
    w = torch.as_tensor(rng.choice([0.5, 1.0, 3.0], 50))
    fam = negative_binomial(2.5, link)
    size = torch.tensor(4.0, dtype=torch.float64) if trained else None
    theta = 4.0 if trained else 2.5
    ll = log_density(fam, eta, y, w, size)
    np.testing.assert_allclose(ll.detach().numpy(),
                               w.numpy() * _nb_logpmf(y.numpy(), mu, theta), rtol=1e-12)
    (grad,) = torch.autograd.grad(ll.sum(), eta)
    score, info = score_and_information(fam, eta.detach(), y, w, size)
    np.testing.assert_allclose(score.numpy(), grad.numpy(), rtol=1e-10, atol=1e-12)
    dmu = mu if link == "log" else np.ones_like(mu)
    np.testing.assert_allclose(info.numpy(), w.numpy() * dmu**2 / (mu + mu**2 / theta),
                               rtol=1e-12)


def test_quadrature_nll_is_the_negative_binomial_marginal_likelihood():
    """−log ∫ Π p(y|f + b) φ(b; 0, s²) db per group, by scipy's integration of scipy's
    pmf, with the size θ a trained tensor (its gradient flows)."""
    rng = np.random.default_rng(3)
    g, x = rng.integers(0, 5, 60), rng.normal(size=60)
    f = 0.5 + 0.4 * x
    y = rng.negative_binomial(3, 3 / (3 + np.exp(f)))
    s, theta = 0.6, 3.0
    expected = 0.0
    for level in range(5):
        rows = g == level

        def integrand(b, ff=f[rows], yy=y[rows]):
            return np.exp(_nb_logpmf(yy, np.exp(ff + b), theta).sum()) * norm.pdf(b, scale=s)

        expected -= np.log(integrate.quad(integrand, -8 * s, 8 * s, epsabs=0,
                                          epsrel=1e-12)[0])
    nodes, weights = gauss_hermite(15)
    size = torch.tensor(theta, dtype=torch.float64, requires_grad=True)
    ours = glmm_batch_nll(torch.as_tensor(f), torch.as_tensor(y, dtype=torch.float64),
                          torch.ones(60, dtype=torch.float64), torch.as_tensor(g),
                          torch.ones(60, 1, dtype=torch.float64),
                          torch.tensor([[s]], dtype=torch.float64), torch.as_tensor(nodes),
                          torch.as_tensor(np.log(weights)), negative_binomial(1.0),
                          phi=size)
    assert float(ours) == pytest.approx(expected, rel=1e-8)
    (dsize,) = torch.autograd.grad(ours, size)
    assert np.isfinite(float(dsize)) and float(dsize) != 0.0


def _crossed_counts(seed: int = 1, n: int = 900) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a, b, x = rng.integers(0, 30, n), rng.integers(0, 12, n), rng.normal(size=n)
    mu = np.exp(0.4 + 0.5 * x + rng.normal(0, 0.5, 30)[a] + rng.normal(0, 0.3, 12)[b])
    return pd.DataFrame({"c": rng.negative_binomial(2.0, 2.0 / (2.0 + mu)), "x": x,
                         "a": a.astype(str), "b": b.astype(str)})


def test_laplace_nll_on_all_rows_is_glmers_negative_binomial_deviance():
    """At the exact fit's estimates (crossed factors, θ = 2 fixed), 2 × the Laplace batch
    NLL over every row is −2 log L of the exact engine (lme4's Laplace deviance: the exact
    negative binomial fits are checked against glmer.nb in tests/engines/test_glmm.py)."""
    m = lp.glmer("c ~ x + (1 | a) + (1 | b)", _crossed_counts(), family=negative_binomial(2.0))
    d = m.design
    U = torch.as_tensor((d.Z @ d.Lambda(m.theta)).toarray())
    nll = laplace_batch_nll(torch.as_tensor(m.fit.X @ m.fit.solution.beta), U,
                            torch.as_tensor(d.y, dtype=torch.float64),
                            torch.ones(d.n, dtype=torch.float64), m.family)
    assert 2 * float(nll) == pytest.approx(-2 * float(m.logLik()), abs=1e-5)


@pytest.mark.parametrize("key", ["slope", "intercept"])
def test_torch_glmer_nb_refines_to_lme4s_glmer_nb(key):
    """glmer_nb(engine="torch") with a linear f: log θ trained with the rest, then θ̂
    refined by glmer.nb's loop with the (zero) network output as an offset — lme4's
    glmer.nb estimates (its Laplace deviance differs from lmerpy's by up to 1e-3:
    docs/migration.md)."""
    ref = NB["fits"][key]
    data = pd.DataFrame(NB["data"]).assign(g=lambda d: d.g.astype(str))
    formula = ref["formula"].replace(" ", "")
    m = lp.glmer_nb(formula, data, engine="torch", seed=0, verbose=False, batch_size=48,
                    device="cpu", epochs=60)
    assert m.family.theta == pytest.approx(ref["nb_theta"], rel=1e-3)
    assert m.getME("glmer.nb.theta") == m.family.theta
    np.testing.assert_allclose(m.theta, ref["theta"], rtol=1e-3)
    np.testing.assert_allclose(m.fixef(), list(ref["fixef"].values()), rtol=1e-3, atol=1e-4)
    assert float(m.logLik()) == pytest.approx(ref["logLik"], abs=2e-3)
    assert m.logLik().df == ref["df"]
    assert "glmer.nb.theta" in m.history.columns
    assert "Family: Negative Binomial(" in str(m.summary())


def _overdispersed(n: int, q: int, seed: int) -> pd.DataFrame:
    """Counts with log μ = 0.5 + sin(2 x1)·x2 + b_g (sd 0.5), size θ = 3."""
    rng = np.random.default_rng(seed)
    x1, x2 = rng.uniform(-1.5, 1.5, n), rng.uniform(-1.5, 1.5, n)
    g = rng.integers(0, q, n)
    mu = np.exp(0.5 + np.sin(2 * x1) * x2 + rng.normal(0, 0.5, q)[g])
    return pd.DataFrame({"y": rng.negative_binomial(3.0, 3.0 / (3.0 + mu)), "x1": x1,
                         "x2": x2, "g": g.astype(str)})


def test_a_network_with_negative_binomial_counts_learns_the_size_and_the_curve():
    """On overdispersed counts with a non-linear mean: θ as trained is near the truth (3)
    and after refinement near the fit given the true curve; the network beats the linear
    glmer.nb and a Poisson network by far in log-likelihood."""
    data = _overdispersed(4000, 40, 2)
    kw = dict(seed=0, verbose=False, device="cpu", batch_size=200, lr=3e-3)
    formula = "y ~ nn(x1 + x2, hidden=(32, 16), dropout=0) + (1 | g)"
    trained = lp.glmer_nb(formula, data, refine=False, **kw)
    assert trained.family.theta == pytest.approx(3.0, rel=0.25)
    refined = lp.glmer_nb(formula, data, **kw)
    oracle = lp.glmer_nb("y ~ 1 + offset(sin(2 * x1) * x2) + (1 | g)", data)
    assert refined.family.theta == pytest.approx(oracle.family.theta, rel=0.1)
    assert refined.VarCorr().terms[0].sd[0] == pytest.approx(
        oracle.VarCorr().terms[0].sd[0], rel=0.15)
    linear = lp.glmer_nb("y ~ x1 * x2 + (1 | g)", data)
    poisson = lp.glmer(formula, data, family="poisson", **kw)
    assert float(refined.logLik()) > float(linear.logLik()) + 100
    assert float(refined.logLik()) > float(poisson.logLik()) + 100


def test_a_fixed_size_and_the_exact_engines_options():
    """glmer(family=negative_binomial(θ)) with nn() keeps θ; nAGQ is the exact engine's."""
    data = _overdispersed(600, 10, 3)
    kw = dict(seed=0, verbose=False, device="cpu", epochs=3)
    fixed = lp.glmer("y ~ nn(x1 + x2, hidden=(8,)) + (1 | g)", data,
                     family=negative_binomial(2.0), **kw)
    assert fixed.family.theta == 2.0
    assert "glmer.nb.theta" not in fixed.history.columns
    with pytest.raises(lp.ModelError, match="nAGQ=9 applies to the exact engine"):
        lp.glmer_nb("y ~ nn(x1 + x2) + (1 | g)", data, nAGQ=9, **kw)
    with pytest.raises(lp.ModelError, match="nAGQ=9 applies to the exact engine"):
        lp.glmer("y ~ nn(x1 + x2) + (1 | g)", data, family="poisson", nAGQ=9, **kw)
