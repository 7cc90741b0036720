"""check_overdispersion and model_performance against R's performance
(tests/reference/performance.R), and the closed forms behind them."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

import lmerpy as lp
from tests.conftest import read_reference, same_printed_line

PERFORMANCE = read_reference("performance.json")
REF = PERFORMANCE["overdispersion"]
CBPP = lp.datasets.load("cbpp").assign(obs=lambda d: [str(i) for i in range(len(d))])
FITS = {
    "poisson": lambda: lp.glmer("incidence ~ period + (1 | herd)", CBPP, family="poisson",
                                nAGQ=25),
    "binomial": lambda: lp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                                 CBPP, family="binomial", nAGQ=25),
    "poisson_obs": lambda: lp.glmer("incidence ~ period + (1 | herd) + (1 | obs)", CBPP,
                                    family="poisson"),
    "negbin": lambda: lp.glmer_nb("y ~ x + (1 | g)", pd.DataFrame(
        read_reference("lme4_glmer_nb.json")["data"]).astype({"g": str})),
}


@pytest.mark.parametrize("key", list(FITS))
def test_overdispersion_is_performances(key):
    """χ² to 1e-4 with quadrature (the fits agree with lme4's to about 1e-5), 1e-2 for the
    Laplace fit with an observation-level effect, 1e-3 for glmer.nb's (θ̂ to 2e-5); df
    exactly; printed as performance prints
    it (its verdict, a message in R, as the last line)."""
    ref = REF[key]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = lp.check_overdispersion(FITS[key]())
    tol = {"poisson_obs": 1e-2, "negbin": 1e-3}.get(key, 1e-4)
    assert got.df == ref["df"]
    assert got.chisq == pytest.approx(ref["chisq"], rel=tol)
    assert got.p_value == pytest.approx(ref["p"], rel=10 * tol)
    ours = str(got).splitlines()
    assert len(ours) == len(ref["lines"]) and ours[-1] == ref["lines"][-1]
    assert all(same_printed_line(a, b, rtol=tol) for a, b in zip(ours, ref["lines"]))


def test_overdispersion_closed_form_and_refusals():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = FITS["poisson"]()
    r = g.residuals(type="pearson").to_numpy()
    got = lp.check_overdispersion(g)
    assert got.chisq == pytest.approx(np.sum(r**2), rel=1e-12)
    assert got.p_value == pytest.approx(st.chi2.sf(np.sum(r**2), g.nobs - 5), rel=1e-12)
    m = lp.lmer("Reaction ~ Days + (1 | Subject)", lp.datasets.load("sleepstudy"))
    with pytest.raises(lp.ModelError, match="Poisson and negative binomial GLMMs"):
        lp.check_overdispersion(m)
    rng = np.random.default_rng(0)
    d = pd.DataFrame({"g": rng.integers(0, 10, 200).astype(str), "y": rng.integers(0, 2, 200)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = lp.glmer("y ~ 1 + (1 | g)", d, family="binomial")
    with pytest.raises(lp.ModelError, match="Bernoulli"):
        lp.check_overdispersion(b)


def test_glmer_takes_an_observation_level_effect_as_lme4():
    """glmerControl skips lmer's check that a grouping factor has fewer levels than rows:
    (1 | obs) with one level per row is the usual model of overdispersion. lmerpy's fit
    is lme4's (θ in lme4's order: obs, then herd; herd's on its boundary)."""
    ref = REF["poisson_obs"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = FITS["poisson_obs"]()
    np.testing.assert_allclose(g.fixef().to_numpy(), ref["fixef"], rtol=1e-4)
    np.testing.assert_allclose(g.theta, ref["theta"], atol=1e-4)
    assert float(g.logLik()) == pytest.approx(ref["logLik"], abs=1e-4)
    with pytest.raises(lp.ModelError, match="must be < number of observations"):
        lp.lmer("incidence ~ period + (1 | obs)", CBPP)


SLEEP = lp.datasets.load("sleepstudy")
PERFORMANCE_FITS = {
    "slopes": lambda: lp.lmer("Reaction ~ Days + (Days | Subject)", SLEEP),
    "ml": lambda: lp.lmer("Reaction ~ Days + (Days | Subject)", SLEEP, REML=False),
    "crossed": lambda: lp.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)",
                               lp.datasets.load("Penicillin")),
    "binomial": FITS["binomial"],
    "poisson": FITS["poisson"],
    "negbin": FITS["negbin"],
}


@pytest.mark.parametrize("key", list(PERFORMANCE_FITS))
def test_model_performance_is_performances(key):
    """Every index to 1e-4 of performance's (the fits' own agreement: ML's and
    Penicillin's θ̂, the GLMMs' quadrature), the GLMMs' log-loss and scores included;
    printed as performance prints them (each number within a unit of its last digit, the
    ML fit's BIC sitting on a rounding edge)."""
    ref = PERFORMANCE["model_performance"][key]
    tol = 1e-3 if key == "negbin" else 1e-4  # glmer.nb's Laplace fit: θ̂ to 2e-5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = lp.model_performance(PERFORMANCE_FITS[key]())
    assert list(got.indices) == list(ref["values"])
    for name, value in ref["values"].items():
        if value is None:  # performance's blank log-loss of a cbind() response
            assert np.isnan(got.indices[name])
            continue
        assert got.indices[name] == pytest.approx(value, rel=tol, abs=1e-9), name
    ours = str(got).splitlines()
    assert len(ours) == len(ref["lines"])
    assert all(same_printed_line(a, b) for a, b in zip(ours, ref["lines"])), ours


def test_model_performance_closed_forms():
    """AIC, AICc and BIC from the REML log-likelihood (df = 6, n = 180), RMSE from the
    residuals."""
    m = PERFORMANCE_FITS["slopes"]()
    got = lp.model_performance(m).indices
    ll = float(m.logLik())
    assert got["AIC"] == pytest.approx(-2 * ll + 12, rel=1e-12)
    assert got["AICc"] == pytest.approx(-2 * ll + 12 * 180 / 173, rel=1e-12)
    assert got["BIC"] == pytest.approx(-2 * ll + 6 * np.log(180), rel=1e-12)
    assert got["RMSE"] == pytest.approx(np.sqrt(np.mean(m.residuals() ** 2)), rel=1e-12)


def test_binary_log_loss_is_the_mean_negative_log_likelihood():
    """Closed form: for 0/1 responses −mean log(1 − |y − μ̂|) is the mean of
    −(y log μ̂ + (1 − y) log(1 − μ̂))."""
    rng = np.random.default_rng(3)
    d = pd.DataFrame({"g": rng.integers(0, 12, 300).astype(str), "x": rng.normal(size=300)})
    d["y"] = (rng.random(300) < 1 / (1 + np.exp(-d["x"]))).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = lp.glmer("y ~ x + (1 | g)", d, family="binomial")
    mu, y = b.fitted().to_numpy(), d["y"].to_numpy()
    expected = -np.mean(y * np.log(mu) + (1 - y) * np.log(1 - mu))
    assert lp.model_performance(b).indices["Log_loss"] == pytest.approx(expected, rel=1e-12)


COLLINEAR = pd.DataFrame(PERFORMANCE["collinear_data"]).assign(g=lambda d: d.g.astype(str))
COLLINEARITY_FITS = {
    "interaction": lambda: lp.lmer("y ~ A * x + z + (1 | g)", COLLINEAR),
    "factors": lambda: lp.lmer("y ~ A + B + x + (1 | g)", COLLINEAR),
    "poisson": lambda: lp.glmer("incidence ~ period + size + (1 | herd)",
                                lp.datasets.load("cbpp"), family="poisson"),
}


@pytest.mark.parametrize("key", list(COLLINEARITY_FITS))
def test_collinearity_is_performances(key):
    ref = PERFORMANCE["collinearity"][key]["table"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = lp.check_collinearity(COLLINEARITY_FITS[key]()).table
    assert list(table.columns) == list(ref)
    assert table.Term.tolist() == ref["Term"]
    # GLMM vcov agrees with lme4's to ~1e-3 (Laplace convention, docs/migration.md)
    rtol = 2e-3 if key == "poisson" else 1e-6
    for col in list(ref)[1:]:
        want = np.array([np.inf if v == "Inf" else v for v in ref[col]], dtype=float)
        np.testing.assert_allclose(table[col].to_numpy(dtype=float), want, rtol=rtol,
                                   atol=1e-6, err_msg=col)


def test_collinearity_print_groups_terms_by_vif():
    text = str(lp.check_collinearity(COLLINEARITY_FITS["interaction"]()))
    low, moderate = text.split("Low Correlation")[1].split("Moderate Correlation")
    assert "A:x 2.84 [2.25, 3.72]" in low and " x 7.53 [5.70, 10.08]" in moderate
    assert "High Correlation" not in text


def test_collinearity_needs_two_terms():
    m = lp.lmer("Reaction ~ Days + (Days | Subject)", lp.datasets.load("sleepstudy"))
    with pytest.raises(lp.ModelError, match="at least two fixed-effect terms"):
        lp.check_collinearity(m)
