"""GLMMs with a dispersion parameter (Gamma, inverse Gaussian, Gaussian with a link): against
real glmmTMB fits (tests/reference/glmmtmb_dispersion.R), whose Laplace approximation is the
same likelihood; against lmer for the identity link, where the Laplace approximation is
exact; and against a Laplace approximation computed here by brute force, one group at a time,
for the inverse Gaussian, which glmmTMB does not fit."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import quad
from scipy.optimize import minimize, minimize_scalar

import lmerpy as lp
from lmerpy.design import design as make_design
from lmerpy.engines.family import make_family
from lmerpy.engines.glmm import fit_glmer
from lmerpy.results.glmer import GlmerResult
from lmerpy.results.summary import coefficient_table
from tests.conftest import as_list, read_reference, reference_data

REF = read_reference("glmmtmb_dispersion.json")["fits"]


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return reference_data("sim_gamma")


@pytest.fixture(scope="module")
def fitted(data) -> dict:
    out = {}
    for name, r in REF.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # glmmTMB warned of nothing: neither may we
            out[name] = lp.glmer(r["formula"], data, family=r["family"], link=r["link"],
                                 data_name="sim_gamma")
    return out


@pytest.mark.parametrize("name", list(REF))
def test_likelihood_and_estimates_match_glmmtmb(fitted, name):
    m, r = fitted[name], REF[name]
    assert float(m.logLik()) == pytest.approx(r["logLik"], abs=5e-5)
    assert m.n_params == r["df"] and m.df_resid == r["df_resid"]
    assert m.AIC() == pytest.approx(r["AIC"], abs=1e-4)
    assert m.BIC() == pytest.approx(r["BIC"], abs=1e-4)
    assert m.fixef_names == as_list(r["fixef_names"])
    # β to within 1e-3 of its standard error (both optimisers stop at their tolerances)
    np.testing.assert_array_less(np.abs(m.fixef().to_numpy() - r["fixef"]),
                                 1e-3 * np.asarray(r["se"]))
    assert m.sigma == pytest.approx(r["sigma"], rel=2e-5)
    assert m.dispersion == pytest.approx(r["sigma"] ** 2, rel=4e-5)
    terms = m.VarCorr().terms
    assert [t.group for t in terms] == [v["group"] for v in r["varcorr"]]
    for t, v in zip(terms, r["varcorr"]):
        np.testing.assert_allclose(t.sd, np.atleast_1d(v["sd"]), rtol=2e-4)
        np.testing.assert_allclose(t.corr, np.atleast_2d(v["corr"]), atol=2e-4)


@pytest.mark.parametrize("name", list(REF))
def test_standard_errors_match_glmmtmb(fitted, name):
    """The Hessian of the Laplace likelihood in (θ, β, log φ), by finite differences here and
    by automatic differentiation in TMB."""
    m, r = fitted[name], REF[name]
    se = np.sqrt(np.diag(m.vcov().to_numpy()))
    np.testing.assert_allclose(se, r["se"], rtol=5e-4)
    coef = coefficient_table(m)
    np.testing.assert_allclose(coef["z value"], r["zvalue"], rtol=5e-4)
    np.testing.assert_allclose(coef["Pr(>|z|)"], r["pvalue"], rtol=5e-3, atol=1e-12)


@pytest.mark.parametrize("name", list(REF))
def test_modes_fitted_values_and_residuals_match_glmmtmb(fitted, name):
    m, r = fitted[name], REF[name]
    re = m.ranef()
    for g in r["ranef"]:
        ours = re[g["group"]]
        assert list(ours.index) == as_list(g["levels"])
        theirs = np.array(g["values"]).reshape(ours.shape)
        np.testing.assert_allclose(ours.to_numpy(), theirs, atol=2e-4 * np.abs(theirs).max())
    np.testing.assert_allclose(m.fitted(), r["fitted"], rtol=2e-5)
    np.testing.assert_allclose(m.predict(), r["eta"], rtol=2e-5,
                               atol=2e-5 * np.abs(r["eta"]).max())
    # glmmTMB's Pearson residuals, like lme4's, are (y − μ)/√V(μ), not divided by σ
    scale = np.abs(r["resid_pearson"]).max()
    np.testing.assert_allclose(m.residuals(type="pearson"), r["resid_pearson"], rtol=1e-4,
                               atol=1e-5 * scale)
    np.testing.assert_allclose(m.residuals(type="response"), r["resid_response"],
                               rtol=1e-4, atol=1e-4 * np.abs(r["resid_response"]).max())


def test_summary_prints_the_dispersion_and_z_tests(fitted):
    m, r = fitted["gamma_log"], REF["gamma_log"]
    lines = str(m.summary()).splitlines()
    assert lines[2] == " Family: Gamma  ( log )"
    # glmmTMB prints "Dispersion estimate for Gamma family (sigma^2): 0.126"
    assert f"Dispersion parameter for Gamma family (sigma^2): {r['sigma'] ** 2:.3f}" in lines
    header = next(line for line in lines if "Estimate" in line)
    assert header.split() == ["Estimate", "Std.", "Error", "z", "value", "Pr(>|z|)"]
    assert not any(line.startswith(" Residual") for line in lines)
    aic = lines[lines.index(next(s for s in lines if s.strip().startswith("AIC"))) + 1]
    assert aic.split()[:3] == [f"{r['AIC']:.1f}", f"{r['BIC']:.1f}", f"{r['logLik']:.1f}"]
    # scaled residuals: Pearson residuals over σ
    scaled = m.residuals(type="pearson", scaled=True).to_numpy()
    np.testing.assert_allclose(scaled * m.sigma, r["resid_pearson"], rtol=1e-4, atol=2e-5)


@pytest.mark.parametrize("weighted", [False, True])
def test_gaussian_identity_laplace_is_the_exact_lmm(weighted):
    """For a Gaussian response with the identity link the Laplace approximation is exact, so
    the GLMM engine's fit is lmer's ML fit: the same log-likelihood and β, random-effect sds
    θσ and σ, with prior weights as precision weights in both."""
    sleep = lp.datasets.load("sleepstudy")
    w = np.resize([1.0, 2.0, 0.5], len(sleep)) if weighted else None
    formula = "Reaction ~ Days + (Days | Subject)"
    ref = lp.lmer(formula, sleep, REML=False, weights=w)
    fit = fit_glmer(make_design(formula, sleep), make_family("gaussian"), weights=w)
    m = GlmerResult(fit, "sleepstudy")
    assert float(m.logLik()) == pytest.approx(float(ref.logLik()), abs=1e-5)
    np.testing.assert_allclose(m.fixef(), ref.fixef(), rtol=1e-5)
    assert m.sigma == pytest.approx(ref.sigma, rel=1e-4)
    np.testing.assert_allclose(m.VarCorr().to_frame().sdcor,
                               ref.VarCorr().to_frame().sdcor.iloc[:-1], rtol=1e-3)
    # ML standard errors of β (lmer's are conditional on θ; so are these at the optimum,
    # up to the θ–β cross terms, which vanish for an LMM)
    np.testing.assert_allclose(np.sqrt(np.diag(m.vcov())), np.sqrt(np.diag(ref.vcov())),
                               rtol=1e-3)


def brute_force_laplace(y, x, groups, beta, sd, phi, family):
    """−2 log L by the Laplace approximation of a random-intercept GLMM, one group at a
    time: the mode of h(u) = −2 log p(y | u) + u² by scalar minimisation, h'' by second
    differences, and −2 log ∫ = h(û) + log(h''(û)/2)."""
    total = 0.0
    for g in np.unique(groups):
        rows = groups == g
        yg, xg = y[rows], x[rows]

        def h(u, yg=yg, xg=xg):
            mu = family.link.inverse(beta[0] + beta[1] * xg + sd * u)
            if np.any(~np.isfinite(mu)) or np.any(mu <= 0):
                return np.inf
            return family.neg2_loglik(yg, mu, np.ones_like(yg), phi) + u * u

        u = minimize_scalar(h, bounds=(-8, 8), method="bounded",
                            options={"xatol": 1e-10}).x
        e = 1e-4
        second = (h(u + e) - 2 * h(u) + h(u - e)) / e**2
        total += h(u) + np.log(second / 2.0)
    return total


@pytest.mark.parametrize(("family", "link", "formula"), [
    ("inverse.gaussian", "log", "ig ~ x + (1 | subject)"),
    ("inverse.gaussian", "1/mu^2", "ig ~ x + (1 | subject)"),
    # η = 1/μ is about 0.002 here (milliseconds): glmmTMB 1.1.5 gives NaN standard errors
    ("Gamma", "inverse", "rt ~ cond + (1 | subject)")])
def test_against_a_brute_force_laplace(data, family, link, formula):
    m = lp.glmer(formula, data, family=family, link=link)
    fam = make_family(family, link)
    response, covariate = formula.split(" ~ ")[0], formula.split(" ~ ")[1].split(" + ")[0]
    y, g = data[response].to_numpy(), data.subject.to_numpy()
    x = (data.cond == "b").to_numpy(float) if covariate == "cond" else data.x.to_numpy()
    # in units of lmerpy's estimates, so the search below treats each parameter alike
    unit = np.concatenate([np.abs(m.fixef().to_numpy()), [1.0, 1.0]])

    def criterion(p):
        p = p * unit
        return brute_force_laplace(y, x, g, p[:2], np.exp(p[2]), np.exp(p[3]), fam)

    ours = np.concatenate([m.fixef().to_numpy(), np.log([m.VarCorr().terms[0].sd[0],
                                                         m.dispersion])]) / unit
    # the same value at lmerpy's estimates ...
    assert criterion(ours) == pytest.approx(-2 * float(m.logLik()), abs=1e-4)
    # ... and they are its minimum: a search from there finds nothing lower
    best = minimize(criterion, ours, method="Nelder-Mead",
                    options={"xatol": 1e-6, "fatol": 1e-8, "maxfev": 400})
    assert best.fun > criterion(ours) - 1e-4
    np.testing.assert_allclose(best.x, ours, atol=2e-3)


def test_simulated_responses_have_the_fitted_mean_and_variance(fitted, data):
    """Conditional on the fitted random effects, y* has mean μ and variance φ V(μ)."""
    m = fitted["gamma_log"]
    sims = m.simulate(4000, seed=1, use_u=True).to_numpy()
    mu = m.fitted().to_numpy()
    assert np.all(sims > 0)
    ratio = sims / mu[:, None]  # Gamma: mean 1, variance φ
    assert ratio.mean() == pytest.approx(1.0, abs=2e-3)
    assert ratio.var() == pytest.approx(m.dispersion, rel=2e-2)
    ig = lp.glmer("ig ~ x + (1 | subject)", data, family="inverse.gaussian", link="log")
    sims = ig.simulate(4000, seed=2, use_u=True).to_numpy()
    mu = ig.fitted().to_numpy()
    z = (sims - mu[:, None]) / np.sqrt(ig.dispersion * mu[:, None] ** 3)
    assert z.mean() == pytest.approx(0.0, abs=5e-3) and z.var() == pytest.approx(1.0, rel=3e-2)


def test_refit_save_and_load_keep_the_dispersion(fitted, tmp_path):
    m = fitted["gaussian_log"]
    again = m.refit(m.fit.y)
    assert float(again.logLik()) == pytest.approx(float(m.logLik()), abs=1e-6)
    path = tmp_path / "gamma.lmerpy"
    fitted["gamma_log"].save(path)
    loaded = lp.load(path)
    assert loaded.sigma == pytest.approx(fitted["gamma_log"].sigma, rel=1e-12)
    assert str(loaded.summary()) == str(fitted["gamma_log"].summary())


def test_gaussian_identity_is_redirected_to_lmer(data):
    with pytest.warns(FutureWarning, match="shortcut to lmer"):
        m = lp.glmer("rt ~ x + (1 | subject)", data, family="gaussian")
    ref = lp.lmer("rt ~ x + (1 | subject)", data)
    assert type(m) is lp.LmerResult and m.REML
    assert float(m.logLik()) == pytest.approx(float(ref.logLik()), abs=1e-8)


def test_errors_for_dispersion_families(data, fitted):
    with pytest.raises(lp.ModelError, match="single scalar"):
        lp.glmer("rt ~ x + (x | subject)", data, family="Gamma", nAGQ=5)
    bad = data.assign(rt=data.rt.where(data.index != 7, 0.0))
    with pytest.raises(lp.ModelError, match="must be positive for the Gamma family: row 7 is 0"):
        lp.glmer("rt ~ x + (1 | subject)", bad, family="Gamma")
    with pytest.raises(lp.ModelError, match="link 'logit' is not available for the Gamma"):
        lp.glmer("rt ~ x + (1 | subject)", data, family="Gamma", link="logit")
    wald = fitted["gamma_log"].confint(method="Wald")
    assert np.isnan(wald.loc[".sigma"]).all() and np.isfinite(wald.loc["x"]).all()


INFERENCE = read_reference("glmmtmb_dispersion.json")["inference"]


@pytest.mark.parametrize("name", list(INFERENCE))
def test_r2_icc_and_model_performance_are_performances(fitted, name):
    """performance on the glmmTMB fit (insight 0.19: φ as a Gamma model's
    distribution-specific variance, σ² for a Gaussian one)."""
    m, r = fitted[name], INFERENCE[name]
    r2, icc = lp.r2_nakagawa(m), lp.icc(m)
    assert r2.conditional == pytest.approx(r["r2_conditional"], rel=1e-4)
    assert r2.marginal == pytest.approx(r["r2_marginal"], rel=1e-4)
    assert icc.adjusted == pytest.approx(r["icc_adjusted"], rel=1e-4)
    assert icc.unadjusted == pytest.approx(r["icc_unadjusted"], rel=1e-4)
    assert str(r2).splitlines() == as_list(r["r2_lines"])
    assert str(icc).splitlines() == as_list(r["icc_lines"])
    perf = lp.model_performance(m)
    for key, value in r["performance"].items():
        assert perf.indices[key] == pytest.approx(value, rel=1e-4), key
    assert str(perf).splitlines() == as_list(r["performance_lines"])


def test_emmeans_on_the_response_scale_is_emmeans(fitted):
    """emmeans on the glmmTMB fit, but for its df: emmeans gives a glmmTMB fit its residual
    df and t ratios, and a glmerMod (lmerpy's class) asymptotic z ratios."""
    m, r = fitted["gamma_log"], INFERENCE["gamma_log"]["emmeans"]
    e = lp.emmeans(m, "pairwise ~ cond", type="response")
    means, pairs = e.emmeans.table, e.contrasts.table
    np.testing.assert_allclose(means["response"], [x["response"] for x in r["means"]],
                               rtol=2e-5)
    np.testing.assert_allclose(means["SE"], [x["SE"] for x in r["means"]], rtol=1e-4)
    np.testing.assert_allclose(pairs["ratio"], [x["ratio"] for x in r["contrasts"]], rtol=2e-5)
    np.testing.assert_allclose(pairs["SE"], [x["SE"] for x in r["contrasts"]], rtol=1e-4)
    np.testing.assert_allclose(pairs["z.ratio"], [x["t.ratio"] for x in r["contrasts"]],
                               rtol=1e-4)


def test_back_transformed_intervals_are_ordered_for_a_decreasing_link(data):
    """An inverse link maps η − z·se to the upper end: emmeans lists the ends in order."""
    m = lp.glmer("rt ~ cond + (1 | subject)", data, family="Gamma")
    link = lp.emmeans(m, "~ cond").table
    resp = lp.emmeans(m, "~ cond", type="response").table
    z = 1.959963984540054
    np.testing.assert_allclose(resp["asymp.LCL"], 1 / (link["emmean"] + z * link["SE"]),
                               rtol=1e-10)
    np.testing.assert_allclose(resp["asymp.UCL"], 1 / (link["emmean"] - z * link["SE"]),
                               rtol=1e-10)


def test_profile_intervals_match_glmmtmbs(data):
    """Profile-likelihood intervals with φ a nuisance parameter of every inner fit (σ = √φ
    its own row, .sigma): glmmTMB's confint(method = "profile") for β and the sd, TMB's
    tmbprofile for the dispersion. Both find the ends to about 1e-4 (glmmTMB by a spline
    through its profile)."""
    r = read_reference("glmmtmb_dispersion.json")["profile"]
    m = lp.glmer(r["formula"], data, family=r["family"], link=r["link"])
    ci = m.confint()
    assert list(ci.index) == [".sig01", ".sigma", "(Intercept)", "x"]
    ends = ci.to_numpy()
    ref = np.column_stack([r["lower"], r["upper"]])
    for ours, theirs in ((ends[2], ref[0]), (ends[3], ref[1]), (ends[0], np.exp(ref[2])),
                         (ends[1], np.array(r["sigma"]))):
        np.testing.assert_allclose(ours, theirs, atol=5e-4 * np.ptp(theirs))


def test_bootstrap_intervals_cover_the_profile_ones(data):
    """The parametric bootstrap draws from the Gamma with φ̂ and refits φ too: its .sigma row
    is there, and with 200 draws every percentile end lies within a fifth of the interval's
    width of the profile's (both estimate the same 95% interval)."""
    m = lp.glmer("rt_s ~ x + (1 | subject)", data, family="Gamma", link="log")
    profile = m.confint()
    boot = m.confint(method="boot", nsim=200, seed=3)
    assert list(boot.index) == list(profile.index)
    width = (profile.iloc[:, 1] - profile.iloc[:, 0]).to_numpy()
    assert np.all(np.abs(boot.to_numpy() - profile.to_numpy()) < 0.2 * width[:, None])


def test_every_view_shows_the_dispersion(fitted):
    from lmerpy.results.export import results_dict

    m, r = fitted["gamma_log"], REF["gamma_log"]
    line = f"Dispersion parameter for Gamma family (sigma^2): {r['sigma'] ** 2:.4g}"
    assert line in str(m).splitlines()               # print(m)
    assert line in m.summary()._repr_html_()          # the notebook's summary
    assert results_dict(m)["sigma"] == pytest.approx(r["sigma"], rel=2e-5)


def test_adaptive_quadrature_is_the_integral(data):
    """nAGQ = 25 with a dispersion: −2 log p(y | u) in full at each node, so the
    log-likelihood at the estimates is the integral over each subject's effect computed by
    scipy's quad, and one node gives the Laplace fit."""
    m = lp.glmer("rt_s ~ x + (1 | subject)", data, family="Gamma", link="log", nAGQ=25)
    fam = make_family("Gamma", "log")
    beta, sd, phi = m.fixef().to_numpy(), m.VarCorr().terms[0].sd[0], m.dispersion
    y, x, g = data.rt_s.to_numpy(), data.x.to_numpy(), data.subject.to_numpy()
    total = 0.0
    for level in np.unique(g):
        rows = g == level

        def density(u, rows=rows):  # p(y_j | u) φ(u), scaled by e^50 against underflow
            mu = np.exp(beta[0] + beta[1] * x[rows] + sd * u)
            return np.exp(50.0 - 0.5 * fam.neg2_loglik(y[rows], mu, np.ones(rows.sum()), phi)
                          - 0.5 * u * u) / np.sqrt(2.0 * np.pi)

        total += np.log(quad(density, -10, 10, epsabs=0, epsrel=1e-12, limit=200)[0]) - 50.0
    assert float(m.logLik()) == pytest.approx(total, abs=1e-8)
    one = lp.glmer("rt_s ~ x + (1 | subject)", data, family="Gamma", link="log", nAGQ=1)
    laplace = fit_glmer(make_design("rt_s ~ x + (1 | subject)", data), fam, nAGQ=1)
    assert float(one.logLik()) == pytest.approx(-laplace.criterion / 2, abs=1e-10)
    assert float(m.logLik()) > float(one.logLik())  # the integral, not its approximation


def test_quadrature_of_a_gaussian_identity_model_is_exact():
    """For an LMM every quadrature rule is exact: nAGQ = 7 gives lmer's ML fit."""
    sleep = lp.datasets.load("sleepstudy")
    ref = lp.lmer("Reaction ~ Days + (1 | Subject)", sleep, REML=False)
    fit = fit_glmer(make_design("Reaction ~ Days + (1 | Subject)", sleep),
                    make_family("gaussian"), nAGQ=7)
    assert -fit.criterion / 2 == pytest.approx(float(ref.logLik()), abs=1e-6)
    np.testing.assert_allclose(fit.solution.beta, ref.fixef(), rtol=1e-6)


def test_family_objects_as_rs(data):
    """lp.Gamma(link), lp.inverse_gaussian(), lp.gaussian(link): R's family objects, with R's
    default links, usable as glmer's family."""
    assert str(lp.Gamma()) == "Gamma  ( inverse )"
    assert str(lp.inverse_gaussian()) == "inverse.gaussian  ( 1/mu^2 )"
    assert str(lp.gaussian("log")) == "gaussian  ( log )"
    a = lp.glmer("rt_s ~ x + (1 | subject)", data, family=lp.Gamma("log"))
    b = lp.glmer("rt_s ~ x + (1 | subject)", data, family="Gamma", link="log")
    assert float(a.logLik()) == float(b.logLik())
