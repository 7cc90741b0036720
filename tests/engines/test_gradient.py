"""The analytic gradient of the profiled criterion (scalar random terms) is exact."""

from __future__ import annotations

import warnings

import numpy as np
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


def test_lbfgsb_refuses_vector_terms():
    with pytest.raises(lp.ModelError, match="every random term to be scalar"):
        lp.lmer("Reaction ~ Days + (Days | Subject)", lp.datasets.load("sleepstudy"),
                control=LmerControl(optimizer="lbfgsb"))
