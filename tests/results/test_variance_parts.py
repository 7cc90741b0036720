"""R² and ICCs of mixed models (lp.r2_nakagawa, lp.icc) against R's performance package
(tests/reference/performance.R) and closed forms."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

import lmerpy as lp
from lmerpy.results.variance_parts import variance_parts
from tests.conftest import read_reference

REF = read_reference("performance.json")["fits"]
SLEEP = lp.datasets.load("sleepstudy")
CBPP = lp.datasets.load("cbpp")
FITS = {
    "slopes": lambda: lp.lmer("Reaction ~ Days + (Days | Subject)", SLEEP),
    "intercept": lambda: lp.lmer("Reaction ~ Days + (1 | Subject)", SLEEP),
    "ml": lambda: lp.lmer("Reaction ~ Days + (1 | Subject)", SLEEP, REML=False),
    "crossed": lambda: lp.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)",
                               lp.datasets.load("Penicillin")),
    "nested": lambda: lp.lmer("strength ~ 1 + (1 | batch / cask)", lp.datasets.load("Pastes")),
    "binomial": lambda: lp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                                 CBPP, family="binomial"),
    "probit": lambda: lp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                               CBPP, family="binomial", link="probit"),
    "poisson": lambda: lp.glmer("incidence ~ period + (1 | herd)", CBPP, family="poisson"),
    "negbin": lambda: lp.glmer_nb("y ~ x + (1 | g)", pd.DataFrame(
        read_reference("lme4_glmer_nb.json")["data"]).astype({"g": str})),
}


@pytest.mark.parametrize("key", list(FITS))
def test_r2_and_icc_are_performances(key):
    """To 1e-4 for linear mixed models (Penicillin's θ̂ agrees with lme4's to that), to
    2e-3 for Laplace GLMMs (lmerpy's and lme4's Laplace fits differ in the fourth digit);
    printed as performance prints them."""
    ref = REF[key]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = FITS[key]()
        v = variance_parts(m)
        r2, ic, by = lp.r2_nakagawa(m), lp.icc(m), lp.icc(m, by_group=True)
    tol = 2e-3 if m.family is not None else 1e-4
    got = {"r2_conditional": r2.conditional, "r2_marginal": r2.marginal,
           "icc_adjusted": ic.adjusted, "icc_unadjusted": ic.unadjusted,
           "var_fixed": v.fixed, "var_random": v.random, "var_residual": v.residual}
    for name, value in got.items():
        assert value == pytest.approx(ref[name], rel=tol, abs=1e-12), name
    np.testing.assert_allclose(list(by.icc.values()), np.atleast_1d(ref["by_group"]["icc"]),
                               rtol=tol)
    assert list(by.icc) == list(np.atleast_1d(ref["by_group"]["group"]))
    assert str(r2).splitlines() == ref["r2_lines"]
    assert str(ic).splitlines() == ref["icc_lines"]
    assert str(by).splitlines() == ref["by_group"]["lines"]


def test_uncorrelated_slopes_count_their_variance():
    """Johnson's mean of diag(ZΣZ') for (Days || Subject): σ²₀ + σ²₁·mean(Days²). insight
    0.19 leaves the slope's variance out of ``||`` terms (its var.random is σ²₀ alone),
    which performance then reports; lmerpy does not copy that."""
    m = lp.lmer("Reaction ~ Days + (Days || Subject)", SLEEP)
    vc = m.VarCorr()
    s0, s1 = vc.terms[0].cov[0, 0], vc.terms[1].cov[0, 0]
    expected = s0 + s1 * float(np.mean(SLEEP["Days"] ** 2))
    v = variance_parts(m)
    assert v.random == pytest.approx(expected, rel=1e-12)
    assert REF["uncorrelated"]["var_random"] == pytest.approx(s0, rel=1e-4)  # insight's
    assert REF["uncorrelated"]["var_fixed"] == pytest.approx(v.fixed, rel=1e-8)
    ic = lp.icc(m)
    assert ic.adjusted == pytest.approx(expected / (expected + m.sigma**2), rel=1e-12)


def test_network_fits_use_the_networks_predictions():
    """With nn() terms σ²_f is the variance of f̂(X) (the prediction without random
    effects), and an rbf() term adds its kernel variance σ² (the kernel's diagonal)."""
    rng = np.random.default_rng(0)
    n = 400
    d = pd.DataFrame({"x": rng.uniform(-1, 1, n), "lat": rng.uniform(0, 5, n),
                      "lon": rng.uniform(0, 5, n), "g": rng.integers(0, 20, n).astype(str)})
    d["y"] = np.sin(3 * d.x) + rng.normal(size=20)[d.g.astype(int)] + rng.normal(size=n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lp.lmer("y ~ nn(x, hidden=(8,)) + (1 | g) + rbf(lat, lon)", d, epochs=5,
                    verbose=False, seed=0)
    f = np.asarray(m.predict(re_form="NA"))
    vc = m.VarCorr()
    random = vc.terms[0].cov[0, 0] + vc.terms[1].cov[0, 0]
    total = np.var(f, ddof=1) + random + m.sigma**2
    r2 = lp.r2_nakagawa(m)
    assert r2.marginal == pytest.approx(np.var(f, ddof=1) / total, rel=1e-10)
    assert r2.conditional == pytest.approx((total - m.sigma**2) / total, rel=1e-10)
    assert list(lp.icc(m, by_group=True).icc) == ["g"]


def test_binary_logit_uses_pi_squared_over_three():
    m = FITS["binomial"]()
    assert variance_parts(m).residual == pytest.approx(math.pi**2 / 3)


def test_negative_binomial_null_model_keeps_theta():
    """The distribution-specific variance log(1 + 1/μ + 1/θ̂) takes μ from the null model
    refitted with θ̂ kept (insight's), not θ estimated anew."""
    m = FITS["negbin"]()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        null = lp.update(m, ". ~ 1 + (1 | g)", keep_size=True)
        again = lp.update(m, ". ~ 1 + (1 | g)")
    assert null.family.theta == m.family.theta
    assert again.family.theta != pytest.approx(m.family.theta, rel=1e-3)
    mu = math.exp(float(null.fixef().iloc[0]))
    assert variance_parts(m).residual == pytest.approx(math.log1p(1 / mu + 1 / m.family.theta),
                                                       rel=1e-12)
