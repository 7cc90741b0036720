"""The parametric bootstrap: simulate() against the models' closed-form moments (Gaussian,
Poisson, binomial), boot.ci's rules against R, and confint(method="boot") against lme4's
bootstrap intervals."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.stats import norm

import lmerpy as lp
from lmerpy.engines.bootstrap import boot_intervals, norm_inter
from tests.conftest import read_reference, reference_data

REF = read_reference("lme4_profile.json")
SLEEP = lp.datasets.load("sleepstudy")
DYES = lp.datasets.load("Dyestuff")


@pytest.mark.parametrize("case", range(3))
def test_percentile_rule_is_boots(case):
    ref = REF["norm_inter"][case]
    np.testing.assert_allclose(norm_inter(np.array(ref["t"]), np.array(ref["alpha"])),
                               ref["value"], rtol=1e-12)


def test_basic_and_normal_intervals_follow_boot_ci():
    rng = np.random.default_rng(3)
    t = rng.gamma(3.0, size=(999, 1))  # skewed, so the three kinds differ
    t0 = np.array([2.5])
    q = norm_inter(t[:, 0], np.array([0.025, 0.975]))
    np.testing.assert_allclose(boot_intervals(t, t0, 0.95, "perc")[0], q)
    np.testing.assert_allclose(boot_intervals(t, t0, 0.95, "basic")[0], [5 - q[1], 5 - q[0]])
    bias, half = t.mean() - 2.5, 1.959963984540054 * t.std(ddof=1)
    np.testing.assert_allclose(boot_intervals(t, t0, 0.95, "norm")[0],
                               [2.5 - bias - half, 2.5 - bias + half])


def test_simulated_responses_have_the_models_moments():
    """E y = Xβ̂ and Cov y = σ̂²(ZΛΛ'Z' + I): within one subject Var = σ_0² + 2tσ_01 + t²σ_1²
    + σ², Cov(y_s, y_t) = σ_0² + (s + t)σ_01 + stσ_1²; across subjects 0."""
    m = lp.lmer("Reaction ~ Days + (Days | Subject)", SLEEP)
    ys = m.simulate(4000, seed=1).to_numpy()
    assert ys.shape == (180, 4000)
    mean = m.predict(re_form="NA").to_numpy()
    D = m.VarCorr()["Subject"].cov
    days = SLEEP["Days"].to_numpy()
    se = np.sqrt(D[0, 0] + 2 * days * D[0, 1] + days**2 * D[1, 1] + m.sigma**2)
    assert np.abs(ys.mean(axis=1) - mean).max() < 4.5 * se.max() / np.sqrt(4000)
    np.testing.assert_allclose(ys.var(axis=1), se**2, rtol=0.12)
    cov = np.cov(ys[:10])  # subject 308, days 0..9
    want = D[0, 0] + (days[:10, None] + days[None, :10]) * D[0, 1] + \
        np.outer(days[:10], days[:10]) * D[1, 1]
    off = ~np.eye(10, dtype=bool)
    np.testing.assert_allclose(cov[off], want[off], rtol=0.12)
    other = np.corrcoef(ys[0], ys[10])[0, 1]  # first rows of two subjects
    assert abs(other) < 4 / np.sqrt(4000)


def test_use_u_keeps_the_fitted_random_effects():
    m = lp.lmer("Reaction ~ Days + (Days | Subject)", SLEEP)
    ys = m.simulate(3000, seed=2, use_u=True).to_numpy()
    np.testing.assert_allclose(ys.mean(axis=1), m.fitted().to_numpy(),
                               atol=4.5 * m.sigma / np.sqrt(3000))
    np.testing.assert_allclose(ys.std(axis=1), m.sigma, rtol=0.1)


def test_weights_scale_the_residual_noise():
    data = SLEEP.assign(w=np.resize([1.0, 4.0], 180))
    m = lp.lmer("Reaction ~ Days + (1 | Subject)", data, weights=data["w"])
    ys = m.simulate(3000, seed=4, use_u=True).to_numpy()
    np.testing.assert_allclose(ys.std(axis=1), m.sigma / np.sqrt(data["w"]), rtol=0.1)


def test_a_seed_repeats_and_another_differs():
    m = lp.lmer("Yield ~ 1 + (1 | Batch)", DYES)
    a = m.confint(method="boot", nsim=50, seed=7)
    b = m.confint(method="boot", nsim=50, seed=7)
    c = m.confint(method="boot", nsim=50, seed=8)
    assert a.equals(b) and not a.equals(c)


@pytest.mark.parametrize("kind", ["perc", "norm"])
def test_bootstrap_intervals_agree_with_lme4s(kind):
    """lme4's are from 1000 draws of R's generator, ours from 1000 of numpy's: the ends
    agree to Monte Carlo error (here at most 0.1 of an interval's width)."""
    ref = REF["boot"][f"dyestuff_{kind}"]
    m = lp.lmer("Yield ~ 1 + (1 | Batch)", DYES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # singular refits, as in lme4
        ci = m.confint(method="boot", nsim=1000, seed=1, boot_type=kind)
    assert list(ci.index) == ref["rows"]
    want = np.column_stack([ref["lower"], ref["upper"]])
    width = want[:, 1] - want[:, 0]
    assert (np.abs(ci.to_numpy() - want) <= 0.12 * width[:, None]).all()


def test_bootstrap_covers_like_profile_for_the_fixed_effects():
    """For β the bootstrap and profile intervals estimate the same thing: ends within 0.15
    of the width, and the bootstrap sd of β̂ matches its standard error."""
    m = lp.lmer("Reaction ~ Days + (1 | Subject)", SLEEP)
    boot = m.confint(method="boot", nsim=400, seed=5, parm="beta_", boot_type="norm")
    prof = m.confint(parm="beta_")
    width = (prof.iloc[:, 1] - prof.iloc[:, 0]).to_numpy()
    assert (np.abs(boot.to_numpy() - prof.to_numpy()) <= 0.15 * width[:, None]).all()
    se_boot = (boot.iloc[:, 1] - boot.iloc[:, 0]).to_numpy() / (2 * norm.ppf(0.975))
    np.testing.assert_allclose(se_boot, np.sqrt(np.diag(m.vcov())), rtol=0.15)


CBPP = lp.datasets.load("cbpp")
CBPP_FORMULA = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


def test_glmm_simulations_follow_the_family():
    """Poisson with a random intercept: given b̂ (use_u) the counts have mean and variance
    μ̂; with new effects the mean is exp(Xβ̂ + σ_b²/2), the lognormal mean."""
    data = reference_data("sim_poisson").head(600)
    g = lp.glmer("count ~ x + (1 | site)", data, family="poisson")
    mu = g.fitted().to_numpy()
    given = g.simulate(3000, seed=1, use_u=True).to_numpy()
    np.testing.assert_allclose(given.mean(axis=1), mu, atol=4.5 * np.sqrt(mu.max() / 3000))
    np.testing.assert_allclose(given.var(axis=1), mu, rtol=0.15)
    fresh = g.simulate(4000, seed=2).to_numpy()
    eta = g.predict(re_form="NA").to_numpy()
    want = np.exp(eta + g.theta[0] ** 2 / 2)
    np.testing.assert_allclose(fresh.mean(axis=1), want, rtol=0.12)


def test_binomial_simulations_count_successes_out_of_the_trials():
    g = lp.glmer(CBPP_FORMULA, CBPP, family="binomial")
    ys = g.simulate(3000, seed=3, use_u=True).to_numpy()
    size = CBPP["size"].to_numpy()
    assert (ys >= 0).all() and (ys <= size[:, None]).all()
    assert np.array_equal(ys, np.round(ys))
    p = g.fitted().to_numpy()  # the fitted probabilities
    se = np.sqrt(size * p * (1 - p) / 3000)
    assert (np.abs(ys.mean(axis=1) - size * p) <= 4.5 * se + 1e-9).all()
    np.testing.assert_allclose(ys.var(axis=1), size * p * (1 - p), rtol=0.2, atol=0.05)


def test_glmm_bootstrap_agrees_with_lme4s():
    """lme4's from 1000 refits, ours from 150 (each GLMM refit takes 0.13 s): the ends agree
    to Monte Carlo error, here within 0.25 of the width."""
    ref = REF["boot"]["cbpp_perc"]
    g = lp.glmer(CBPP_FORMULA, CBPP, family="binomial")
    ci = g.confint(method="boot", nsim=150, seed=1)
    assert list(ci.index) == ref["rows"]
    want = np.column_stack([ref["lower"], ref["upper"]])
    width = want[:, 1] - want[:, 0]
    assert (np.abs(ci.to_numpy() - want) <= 0.25 * width[:, None]).all()


def test_simulate_and_boot_refuse_what_they_cannot_do():
    m = lp.lmer("Yield ~ 1 + (1 | Batch)", DYES)
    with pytest.raises(lp.ModelError, match="nsim must be a whole number of at least 2"):
        m.confint(method="boot", nsim=1)
    with pytest.raises(lp.ModelError, match="boot_type must be 'perc', 'basic' or 'norm'"):
        m.confint(method="boot", boot_type="bca")
    with pytest.raises(lp.ModelError, match="use_u must be True or False"):
        m.simulate(use_u="yes")


def test_torch_fits_simulate_around_their_network():
    m = lp.lmer("Reaction ~ nn(Days, hidden=(8,)) + (1 | Subject)", SLEEP, epochs=3,
                verbose=False, seed=0)
    ys = m.simulate(2000, seed=1, use_u=True).to_numpy()
    # the fitted values include the network's output, so the mean must too
    np.testing.assert_allclose(ys.mean(axis=1), m.fitted().to_numpy(),
                               atol=4.5 * m.sigma / np.sqrt(2000))
    with pytest.raises(lp.ModelError, match="bootstrap intervals need an exact fit"):
        m.confint(method="boot")
