"""The exact engines' settings (LmerControl, GlmerControl) and lmer()'s own arguments are
checked before fitting: a bad value gets an error naming it (it used to surface as a
TypeError from nlopt, a numpy ufunc error, or not at all: REML="yes" fitted by REML)."""

from __future__ import annotations

import numpy as np
import pytest

import lmerpy as lp
from lmerpy.engines.options import is_flag, is_number, is_whole

SLEEP = lp.datasets.load("sleepstudy")
CBPP = lp.datasets.load("cbpp")
F = "Reaction ~ Days + (Days | Subject)"
G = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


def test_the_value_checks():
    assert is_whole(3, 1) and is_whole(np.int64(3), 3) and not is_whole(2, 3)
    assert not any(is_whole(v, 0) for v in (True, 2.0, "2", None))
    assert is_number(np.float32(0.5)) and is_number(-2) and not is_number(float("nan"))
    assert not any(is_number(v) for v in (True, "1", None, float("inf")))
    assert all(is_flag(v) for v in (True, False, 0, 1, np.bool_(False)))
    assert not any(is_flag(v) for v in (2, "yes", None, 1.0))


LMER_BAD = [
    *[(name, v, f"{name} must be a number of at least 0")
      for name in ("xtol_abs", "ftol_abs", "boundary_tol", "singular_tol")
      for v in (-1e-8, "x", float("nan"))],
    *[(name, v, f"{name} must be a positive number")
      for name in ("check_conv_grad_tol", "rank_tol") for v in (0, -1, "x")],
    *[(name, v, f"{name} must be a whole number of at least 1")
      for name in ("maxeval", "large_model") for v in (0, 2.5, "x")],
    ("calc_derivs", "x", "calc_derivs must be True or False"),
    ("optimizer", "nelder", "unknown optimizer 'nelder'"),
]


@pytest.mark.parametrize("option, bad, message", LMER_BAD)
def test_lmer_control_settings_are_named(option, bad, message):
    with pytest.raises(lp.ModelError, match=message):
        lp.lmer(F, SLEEP, control=lp.LmerControl(**{option: bad}))


@pytest.mark.parametrize("option, bad, message", [
    *LMER_BAD[:3],
    ("tol_pwrss", 0, "tol_pwrss must be a positive number"),
    ("max_pirls", 0.5, "max_pirls must be a whole number of at least 1"),
    ("check_separation", "no", "check_separation must be True or False"),
])
def test_glmer_control_settings_are_named(option, bad, message):
    with pytest.raises(lp.ModelError, match=message):
        lp.glmer(G, CBPP, control=lp.GlmerControl(**{option: bad}))


def test_lmer_arguments_are_checked():
    with pytest.raises(lp.ModelError, match="REML must be True or False, not 'yes'"):
        lp.lmer(F, SLEEP, REML="yes")
    with pytest.raises(lp.FormulaError, match="the formula must be a string .*, not int"):
        lp.lmer(3, SLEEP)
    with pytest.raises(lp.FormulaError, match="the formula must be a string .*, not list"):
        lp.glmer([G], CBPP)
    # numpy's numbers are numbers: the fit is lme4's
    m = lp.lmer(F, SLEEP, REML=np.bool_(False),
                control=lp.LmerControl(maxeval=np.int64(10_000), rank_tol=np.float32(1e-7)))
    assert not m.REML
    assert m.logLik() == pytest.approx(lp.lmer(F, SLEEP, REML=False).logLik(), rel=1e-10)
