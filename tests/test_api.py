"""lp.glmer_nb() and the negative binomial family: lme4's glmer.nb against its own fits
(tests/reference/lme4_glmer_nb.R) and closed forms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lmerpy as lp
from tests.conftest import as_list, read_reference

NB = read_reference("lme4_glmer_nb.json")


@pytest.mark.parametrize("key, formula", [("slope", "y ~ x + (1 | g)"),
                                          ("intercept", "y ~ 1 + (1 | g)")])
def test_glmer_nb_is_lme4s(key, formula):
    """θ by lme4's route (Poisson fit, theta.ml, Brent on log θ ± 3 to 5e-5): lme4's θ,
    estimates, logLik with θ counted, fitted means and summary; the estimates' last printed
    digit may differ, as θ is only found to optimize()'s tolerance."""
    ref = NB["fits"][key]
    counts = pd.DataFrame(NB["data"]).assign(g=lambda d: d.g.astype(str))
    m = lp.glmer_nb(formula, counts)
    assert m.family.theta == pytest.approx(ref["nb_theta"], rel=1e-4)
    np.testing.assert_allclose(m.fixef().to_numpy(), list(ref["fixef"].values()), rtol=1e-4)
    np.testing.assert_allclose(m.theta, as_list(ref["theta"]), rtol=1e-4)
    # (lmerpy's Laplace criterion sits within 1e-3 of lme4's: tests/engines/test_glmm.py)
    assert float(m.logLik()) == pytest.approx(ref["logLik"], abs=1e-3)
    assert m.n_params == ref["df"] and m.AIC() == pytest.approx(ref["AIC"], abs=2e-3)
    np.testing.assert_allclose(m.fitted(), ref["fitted"], rtol=1e-4)
    ours, theirs = str(m.summary()).splitlines(), ref["summary"]
    names = tuple(ref["fixef"])
    assert [a for a in ours if not a.startswith(names)] == \
        [b for b in theirs if not b.startswith(names)]
    # update() fits a negative binomial model anew, θ re-estimated
    smaller = lp.update(m, ". ~ . - x") if key == "slope" else None
    if smaller is not None:
        assert smaller.family.theta == pytest.approx(NB["fits"]["intercept"]["nb_theta"],
                                                     rel=1e-4)


def test_negative_binomial_family_is_rs():
    """MASS's negative.binomial(θ): −2 log L equals scipy's nbinom log-pmf; the variance
    μ + μ²/θ; deviance residuals are zero at μ = y; theta.ml solves its score equation."""
    import scipy.special as sc
    import scipy.stats as sst

    from lmerpy.engines.family import theta_ml

    fam = lp.negative_binomial(2.5)
    y = np.array([0.0, 1, 3, 7, 12])
    mu = np.array([0.5, 1.2, 2.0, 6.0, 15.0])
    w = np.ones(5)
    want = -2 * sst.nbinom.logpmf(y, 2.5, 2.5 / (2.5 + mu)).sum()
    assert fam.aic(y, mu, w) == pytest.approx(want, rel=1e-12)
    np.testing.assert_allclose(fam.variance(mu), mu + mu**2 / 2.5)
    np.testing.assert_allclose(fam.dev_resids(y[1:], y[1:], w[1:]), 0.0, atol=1e-12)
    assert str(fam) == "Negative Binomial(2.5)  ( log )"
    rng = np.random.default_rng(0)
    mu = np.exp(rng.normal(size=4000))
    y = rng.negative_binomial(3.0, 3.0 / (3.0 + mu)).astype(float)
    th, note = theta_ml(y, mu, np.ones_like(y), limit=50)
    score = np.sum(sc.digamma(th + y) - sc.digamma(th) + np.log(th) + 1 - np.log(th + mu)
                   - (y + th) / (mu + th))
    assert note is None and abs(score) < 1e-6 and th == pytest.approx(3.0, rel=0.15)
    with pytest.raises(lp.ModelError, match="needs its theta"):
        lp.glmer("y ~ 1 + (1 | g)", pd.DataFrame({"y": [1, 2], "g": ["a", "b"]}),
                 family="negative.binomial")
    with pytest.raises(lp.ModelError, match="theta must be a positive number"):
        lp.negative_binomial(0)


def test_negative_binomial_fit_saves_and_simulates(tmp_path):
    counts = pd.DataFrame(NB["data"]).assign(g=lambda d: d.g.astype(str))
    m = lp.glmer_nb("y ~ x + (1 | g)", counts)
    m.save(tmp_path / "nb.lmerpy")
    back = lp.load(tmp_path / "nb.lmerpy")
    assert back.family.theta == m.family.theta
    np.testing.assert_allclose(back.fitted(), m.fitted(), rtol=1e-7)  # PIRLS tolerance
    # simulate(): counts with the fit's mean and variance μ + μ²/θ (use_u: the fitted b)
    sims = m.simulate(400, seed=1, use_u=True).to_numpy()
    mu = m.fitted().to_numpy()
    assert np.all(sims == np.rint(sims)) and sims.min() >= 0
    np.testing.assert_allclose(sims.mean(), mu.mean(), rtol=0.03)
    np.testing.assert_allclose(sims.var(axis=1).mean(),
                               (mu + mu**2 / m.family.theta).mean(), rtol=0.06)


def test_lmer_start_is_lme4s(capsys):
    """start= θ: the optimiser's first evaluation is at it (verbose prints it), and from the
    optimum the fit needs fewer evaluations for the same (lme4's) criterion."""
    ref = read_reference("lme4_fits.json")["fits"]["sleep_reml"]
    sleep = lp.datasets.load("sleepstudy")
    m = lp.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    again = lp.lmer("Reaction ~ Days + (Days | Subject)", sleep, start=m.getME("theta"))
    assert again.REMLcrit() == pytest.approx(ref["REMLcrit"], abs=1e-6)
    assert again.fit.optinfo["evals"] < m.fit.optinfo["evals"]
    start = np.array([0.5, 0.1, 0.3])
    capsys.readouterr()
    moved = lp.update(m, start={"theta": start}, verbose=1)
    first = capsys.readouterr().out.splitlines()[1]
    assert float(first.split("=")[1]) == pytest.approx(m.fit.pls.deviance(start, True), 1e-6)
    assert moved.REMLcrit() == pytest.approx(ref["REMLcrit"], abs=1e-6)


@pytest.mark.parametrize("start, message", [
    ([1, 2], r"start theta has 2 values; this model's θ has 3 \(Subject.\(Intercept\)"),
    ({"theta": [1, 0, -1]}, "Subject.Days = -1 is below its lower bound 0"),
    ({"fixef": [1, 2]}, r"start has unknown element 'fixef' \(use 'theta'\)"),
    ("abc", "start theta must be numbers"),
    ([1, np.nan, 1], "start theta must be finite"),
])
def test_bad_starts_are_named(start, message):
    with pytest.raises(lp.ModelError, match=message):
        lp.lmer("Reaction ~ Days + (Days | Subject)", lp.datasets.load("sleepstudy"),
                start=start)


def test_glmer_start_theta_and_fixef():
    """lme4's glmer start: with theta and fixef the first stage is skipped; fixef alone
    starts the second stage; either way lme4's optimum (tests/reference/lme4_glmer.R)."""
    ref = read_reference("lme4_glmer.json")["fits"]["cbpp_laplace"]
    cbpp = lp.datasets.load("cbpp")
    f = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    g = lp.glmer(f, cbpp, family="binomial")
    both = lp.glmer(f, cbpp, family="binomial", start={"theta": g.theta, "fixef": g.fixef()})
    fixef = lp.glmer(f, cbpp, family="binomial", start={"fixef": ref["fixef"]})
    assert both.fit.optinfo["evals"] < g.fit.optinfo["evals"]
    for fit in (both, fixef):
        np.testing.assert_allclose(fit.fixef().to_numpy(), as_list(ref["fixef"]), rtol=1e-3)
        assert float(fit.logLik()) == pytest.approx(float(g.logLik()), abs=1e-6)
    with pytest.raises(lp.ModelError, match="start fixef has 2 values; the model has 4"):
        lp.glmer(f, cbpp, family="binomial", start={"fixef": [1, 2]})
    with pytest.raises(lp.ModelError, match="torch"):
        lp.glmer(f, cbpp, family="binomial", engine="torch", start=[1.0])
