"""Every optimiser lmerControl(optimizer=) takes finds known minima under bounds, reports
its evaluation limit, and fits lme4's models to lme4's estimates."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

import lmerpy as lp
from lmerpy.engines.exact import ConvergenceWarning, LmerControl
from lmerpy.engines.optimizers import OPTIMIZERS, minimize

REF = json.loads((Path(__file__).parents[1] / "reference" / "lme4_allfit.json").read_text())
CONTROL = LmerControl()


def _rosenbrock(x):
    return float((1 - x[0]) ** 2 + 100 * (x[1] - x[0] ** 2) ** 2)


@pytest.mark.parametrize("method", OPTIMIZERS)
def test_unconstrained_minimum_of_rosenbrock(method):
    x, code, evals = minimize(method, _rosenbrock, np.array([-1.2, 1.0]),
                              np.array([-np.inf, -np.inf]), CONTROL)
    assert code in (1, 2, 3, 4)
    np.testing.assert_allclose(x, [1.0, 1.0], atol=2e-3)
    assert 0 < evals < CONTROL.maxeval


@pytest.mark.parametrize("method", OPTIMIZERS)
def test_minimum_on_a_bound(method):
    # (x0 + 1)² + (x1 − 2)² + x0·x1 over x ≥ 0: the unconstrained minimum has x0 < 0, so
    # x0 = 0 and then x1 = 2 (the KKT point: ∂/∂x0 = 2 + x1 > 0 there)
    def f(x):
        return float((x[0] + 1) ** 2 + (x[1] - 2) ** 2 + x[0] * x[1])

    x, code, _ = minimize(method, f, np.array([1.0, 1.0]), np.zeros(2), CONTROL)
    np.testing.assert_allclose(x, [0.0, 2.0], atol=3e-4)
    assert f(x) - 1.0 < 1e-7
    assert code > 0


@pytest.mark.parametrize("method", OPTIMIZERS)
def test_one_parameter(method):
    x, _, _ = minimize(method, lambda x: float((x[0] - 0.3) ** 2 + 1), np.array([1.0]),
                       np.zeros(1), CONTROL)
    # ftol_abs = 1e-8 stops where f is within ~1e-8 of its minimum: x within ~1e-4
    assert (x[0] - 0.3) ** 2 < 1e-7


@pytest.mark.parametrize("method", OPTIMIZERS)
def test_evaluation_limit_is_code_5(method):
    x, code, evals = minimize(method, _rosenbrock, np.array([-1.2, 1.0]),
                              np.array([-np.inf, -np.inf]), LmerControl(maxeval=20))
    assert code == 5
    assert evals <= 20 + 6  # a method may finish the step under way (L-BFGS-B's gradient)


def test_unknown_optimizer_lists_the_choices():
    with pytest.raises(lp.ModelError, match="unknown optimizer 'nmkb'.*'Nelder_Mead'"):
        minimize("nmkb", _rosenbrock, np.zeros(2), np.zeros(2), CONTROL)


def test_glmer_control_refuses_an_unknown_optimizer():
    with pytest.raises(lp.ModelError, match="unknown optimizer 'optimx'"):
        lp.GlmerControl(optimizer="optimx").check()


def test_lbfgsb_on_vector_terms_uses_differences_and_reaches_lme4():
    """lbfgsb needs exact gradients only where it has them (scalar terms); a correlated
    slope model is fitted on central differences, as optimx's L-BFGS-B in lme4's allFit."""
    ref = REF["sleep_slopes"]["optimizers"]["optimx.L-BFGS-B"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        m = lp.lmer("Reaction ~ Days + (Days | Subject)", lp.datasets.load("sleepstudy"),
                    control=LmerControl(optimizer="lbfgsb"))
    assert m.fit.optinfo["optimizer"] == "lbfgsb"
    assert float(m.logLik()) == pytest.approx(ref["llik"], abs=1e-6)
    np.testing.assert_allclose(m.theta, ref["theta"], rtol=1e-4)


@pytest.mark.filterwarnings("ignore:Model failed to converge")
def test_evaluation_limit_in_a_fit_warns_with_the_optimizer_named():
    with pytest.warns(ConvergenceWarning, match=r"optimizer \(Nelder_Mead\) stopped with "
                                                r"code 5"):
        m = lp.lmer("Reaction ~ Days + (Days | Subject)", lp.datasets.load("sleepstudy"),
                    control=LmerControl(optimizer="Nelder_Mead", maxeval=10))
    assert "optimizer (Nelder_Mead) convergence code" in str(m)


@pytest.mark.parametrize("method", OPTIMIZERS)
def test_glmer_stages_use_the_optimizer(method):
    ref = REF["cbpp"]["optimizers"]["bobyqa"]
    g = lp.glmer(REF["cbpp"]["formula"], lp.datasets.load("cbpp"), family="binomial",
                 control=lp.GlmerControl(optimizer=method))
    assert g.fit.optinfo["optimizer"] == method
    # lme4's Laplace log-likelihood sits ~3e-4 below lmerpy's (docs/migration.md)
    assert float(g.logLik()) == pytest.approx(ref["llik"], abs=1e-3)
    np.testing.assert_allclose(g.fixef().to_numpy(), ref["fixef"], rtol=2e-3)


def test_glmer_stages_take_a_pair_of_optimizers():
    """lme4's default glmerControl(optimizer = c("bobyqa", "Nelder_Mead")): its cbpp fit
    (tests/reference/lme4_glmer.R) and its optinfo's optimizer, the second stage's."""
    ref = json.loads((Path(__file__).parents[1] / "reference" / "lme4_glmer.json")
                     .read_text())["fits"]["cbpp_laplace"]
    g = lp.glmer(ref["formula"], lp.datasets.load("cbpp"), family="binomial",
                 control=lp.GlmerControl(optimizer=("bobyqa", "Nelder_Mead")))
    assert g.fit.optinfo["optimizer"] == "Nelder_Mead"
    np.testing.assert_allclose(g.fixef().to_numpy(), ref["fixef"], rtol=1e-3)
    assert float(g.logLik()) == pytest.approx(ref["logLik"], abs=1e-3)
    zero = lp.glmer(ref["formula"], lp.datasets.load("cbpp"), family="binomial", nAGQ=0,
                    control=lp.GlmerControl(optimizer=["sbplx", "Powell"]))
    assert zero.fit.optinfo["optimizer"] == "sbplx"  # nAGQ = 0 has the first stage only
    with pytest.raises(lp.ModelError, match="one name or two"):
        lp.GlmerControl(optimizer=("bobyqa", "Powell", "sbplx")).check()
    with pytest.raises(lp.ModelError, match="unknown optimizer 'nlminb'"):
        lp.GlmerControl(optimizer=("bobyqa", "nlminb")).check()
