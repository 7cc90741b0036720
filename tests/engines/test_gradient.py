"""The analytic gradient of the profiled criterion (scalar random terms) is exact."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import lmerpy as lp
from lmerpy.engines.exact import LmerControl, fit_lmer

CASES = [
    ("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin", [1.2, 2.5]),
    ("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", "sleepstudy", [0.9, 0.3]),
    ("strength ~ 1 + (1 | batch/cask)", "Pastes", [2.0, 1.5]),
    ("Yield ~ 1 + (1 | Batch)", "Dyestuff", [0.7]),
]


@pytest.mark.parametrize("formula,data,theta", CASES)
@pytest.mark.parametrize("REML", [True, False])
def test_gradient_matches_finite_differences(formula, data, theta, REML):
    d = lp.design(formula, lp.datasets.load(data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pls = fit_lmer(d).pls
    assert pls.has_gradient
    theta = np.asarray(theta)
    value, grad = pls.deviance_and_gradient(theta, REML)
    assert value == pytest.approx(pls.deviance(theta, REML))
    h = 1e-5
    for i in range(len(theta)):
        e = np.zeros(len(theta))
        e[i] = h
        fd = (pls.deviance(theta + e, REML) - pls.deviance(theta - e, REML)) / (2 * h)
        assert grad[i] == pytest.approx(fd, rel=1e-5, abs=1e-5)


@pytest.mark.parametrize("formula,data,_", CASES)
def test_lbfgsb_and_bobyqa_reach_the_same_optimum(formula, data, _):
    frame = lp.datasets.load(data)
    a = lp.lmer(formula, frame, control=LmerControl(optimizer="lbfgsb"))
    b = lp.lmer(formula, frame, control=LmerControl(optimizer="bobyqa"))
    assert a.fit.optinfo["optimizer"] == "lbfgsb"
    assert a.REMLcrit() == pytest.approx(b.REMLcrit(), abs=1e-6)
    np.testing.assert_allclose(a.theta, b.theta, rtol=1e-3, atol=1e-5)


def _balanced_one_way(q: int, m: int, sigma2b: float, seed: int):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(q), m)
    y = rng.normal(scale=np.sqrt(sigma2b), size=q)[g] + rng.normal(size=q * m)
    return pd.DataFrame({"y": y, "g": g.astype(str)}), y.reshape(q, m)


def _anova_estimates(y: np.ndarray, REML: bool) -> tuple[float, float]:
    """The closed-form (RE)ML estimates of the balanced one-way model y_ij = μ + b_i + e_ij:
    σ̂²e = SSW / (q(m − 1)) and σ̂²b = (SSB / (q − 1) − σ̂²e) / m for REML, SSB / q for ML
    (Searle, Casella & McCulloch 1992, §3.7 and §4.7), where that is positive."""
    q, m = y.shape
    means = y.mean(axis=1)
    ssw = float(((y - means[:, None]) ** 2).sum())
    ssb = float(m * ((means - y.mean()) ** 2).sum())
    s2e = ssw / (q * (m - 1))
    s2b = (ssb / ((q - 1) if REML else q) - s2e) / m
    assert s2b > 0  # the interior case; otherwise the estimates differ (s2e pools SSB)
    return s2b, s2e


@pytest.mark.parametrize("q, m, sigma2b, seed", [
    (2000, 10, 0.1, 0), (2000, 10, 0.1, 1), (1000, 8, 0.05, 2), (500, 4, 0.2, 3),
    (300, 5, 2.0, 4)])
@pytest.mark.parametrize("REML", [True, False])
def test_lbfgsb_does_not_stop_on_a_false_boundary(q, m, sigma2b, seed, REML):
    """The deviance is even in a scalar θ, so its gradient is zero at θ = 0; L-BFGS-B's first
    step from θ = 1 used to land on that bound and stop there (θ̂ = 0, a singular fit,
    where the ML estimate is 0.30). The fit now matches the closed form, with either
    optimiser; q = 2,000 levels of 10 rows is the default's switch to L-BFGS-B."""
    df, y = _balanced_one_way(q, m, sigma2b, seed)
    s2b, s2e = _anova_estimates(y, REML)
    for control in (LmerControl(optimizer="lbfgsb"), LmerControl(optimizer="bobyqa"), None):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no singular-fit warning
            fit = lp.lmer("y ~ 1 + (1 | g)", df, REML=REML, control=control)
        assert fit.sigma ** 2 == pytest.approx(s2e, rel=1e-5)
        assert (fit.theta[0] * fit.sigma) ** 2 == pytest.approx(s2b, rel=1e-4)
    assert lp.lmer("y ~ 1 + (1 | g)", df, REML=REML).fit.optinfo["optimizer"] == (
        "lbfgsb" if q * m >= 20_000 else "bobyqa")


def test_lbfgsb_keeps_a_true_boundary():
    """Where the between-level spread is below what the residual alone gives, the ML
    estimate of σ²b is 0: the probes off the bound find nothing lower, and the fit is
    singular, with σ̂² the ML variance of y about its mean (closed form)."""
    rng = np.random.default_rng(5)
    q, m = 400, 5
    y = rng.normal(size=(q, m))
    y -= y.mean(axis=1, keepdims=True) * 0.9  # level means pulled in: SSB/q < σ̂²e
    df = pd.DataFrame({"y": y.ravel(), "g": np.repeat(np.arange(q), m).astype(str)})
    with pytest.warns(lp.SingularFitWarning):
        fit = lp.lmer("y ~ 1 + (1 | g)", df, REML=False, control=LmerControl(optimizer="lbfgsb"))
    assert fit.theta[0] == 0
    assert fit.sigma ** 2 == pytest.approx(float(np.var(y)), rel=1e-10)
