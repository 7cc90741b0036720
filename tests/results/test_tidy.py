"""tidy(), glance() and augment() give broom.mixed's frames (tests/reference/broom_mixed.R)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import lmerpy as lp
from tests.conftest import read_reference

REF = read_reference("broom_mixed.json")
SLEEP = lp.datasets.load("sleepstudy")


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


@pytest.fixture(scope="module")
def sleep():
    return lp.lmer("Reaction ~ Days + (Days | Subject)", SLEEP)


@pytest.fixture(scope="module")
def cbpp():
    return _quiet(lp.glmer, "cbind(incidence, size - incidence) ~ period + (1 | herd)",
                  lp.datasets.load("cbpp"), family="binomial")


def _num(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def assert_frame_like(ours: pd.DataFrame, ref: dict, rtol: float = 1e-5, atol: float = 1e-8,
                      loose: tuple[str, ...] = (), loose_rtol: float = 1e-2):
    """Same columns in the same order; text columns equal, numbers within tolerance (NA
    where broom gives NA); ``loose`` columns within ``loose_rtol``."""
    assert list(ours.columns) == list(ref), (list(ours.columns), list(ref))
    for col, values in ref.items():
        values = values if isinstance(values, list) else [values]  # R's auto_unbox
        if any(isinstance(v, str) for v in values):
            got = [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v)
                   for v in ours[col]]
            assert got == values, col
        else:
            np.testing.assert_allclose(ours[col].to_numpy(dtype=float), _num(values),
                                       rtol=loose_rtol if col in loose else rtol, atol=atol,
                                       err_msg=col)


def test_tidy_is_broom_mixeds(sleep):
    assert_frame_like(lp.tidy(sleep), REF["sleep"]["tidy"])


def test_tidy_with_wald_intervals(sleep):
    assert_frame_like(lp.tidy(sleep, conf_int=True, conf_level=0.9), REF["sleep"]["tidy_wald"])


def test_tidy_with_profile_intervals(sleep):
    # lme4's profile ends come from a spline through the profile (docs/migration.md)
    assert_frame_like(lp.tidy(sleep, conf_int=True, conf_method="profile"),
                      REF["sleep"]["tidy_profile"], rtol=2e-4)


def test_tidy_on_the_variance_scale(sleep):
    assert_frame_like(lp.tidy(sleep, scales="vcov"), REF["sleep"]["tidy_vcov"])


def test_tidy_with_lmertests_degrees_of_freedom(sleep):
    assert_frame_like(lp.tidy(sleep, ddf="Satterthwaite"), REF["sleep"]["tidy_lmertest"],
                      rtol=1e-4)


def test_ran_vals_and_ran_coefs(sleep):
    assert_frame_like(lp.tidy(sleep, effects="ran_vals", conf_int=True),
                      REF["sleep"]["ran_vals"], rtol=1e-4)
    assert_frame_like(lp.tidy(sleep, effects="ran_coefs"), REF["sleep"]["ran_coefs"])
    both = lp.tidy(sleep, effects=["ran_coefs", "fixed"])
    assert list(dict.fromkeys(both.effect)) == ["fixed", "ran_coefs"]


def test_crossed_terms():
    pen = lp.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)", lp.datasets.load("Penicillin"))
    assert_frame_like(lp.tidy(pen), REF["penicillin"]["tidy"], rtol=1e-4)
    assert_frame_like(lp.tidy(pen, effects="ran_vals"), REF["penicillin"]["ran_vals"],
                      rtol=1e-4)


def test_glance(sleep):
    assert_frame_like(lp.glance(sleep), REF["sleep"]["glance"])
    ml = lp.lmer("Reaction ~ Days + (Days | Subject)", SLEEP, REML=False)
    assert_frame_like(lp.glance(ml), REF["sleep"]["glance_ml"])


def test_augment(sleep):
    aug = lp.augment(sleep)
    assert list(aug.columns[:3]) == ["Reaction", "Days", "Subject"]
    assert_frame_like(aug[aug.columns[3:]], REF["sleep"]["augment"])


def test_weighted_fit():
    d = SLEEP.assign(w=np.tile([1.0, 2.0, 0.5], 60))
    mw = lp.lmer("Reaction ~ Days + (1 | Subject)", d, weights="w")
    aug = lp.augment(mw)
    assert list(aug.columns[:4]) == ["Reaction", "Days", "Subject", "w"]
    assert_frame_like(aug[aug.columns[4:]], REF["weighted"]["augment"])
    assert_frame_like(lp.glance(mw), REF["weighted"]["glance"])


def test_glmm_tidy_and_glance(cbpp):
    # Laplace standard errors sit within ~1% of lme4's (docs/migration.md); p-values follow
    loose = ("std.error", "statistic", "p.value", "conf.low", "conf.high")
    assert_frame_like(lp.tidy(cbpp), REF["cbpp"]["tidy"], rtol=2e-3, loose=loose,
                      loose_rtol=0.25)
    assert_frame_like(lp.tidy(cbpp, conf_int=True, exponentiate=True),
                      REF["cbpp"]["tidy_exp"], rtol=2e-3, loose=loose, loose_rtol=0.25)
    assert_frame_like(lp.glance(cbpp), REF["cbpp"]["glance"], rtol=1e-4)


def test_glmm_augment(cbpp):
    aug = lp.augment(cbpp)
    assert list(aug.columns[:4]) == ["incidence", "size", "period", "herd"]
    # the GLMM's estimates agree with lme4's to ~1e-3 (tests/engines/test_glmm.py)
    assert_frame_like(aug[list(REF["cbpp"]["augment"])], REF["cbpp"]["augment"], rtol=2e-3,
                      atol=1e-3)
    # lme4 takes √(prior weights) for the hat matrix (values above 1); lmerpy the working
    # weights of the last PIRLS step: each in [0, 1], summing to the effective df
    assert ((aug[".hat"] > 0) & (aug[".hat"] < 1)).all()
    assert len(cbpp.fixef()) < aug[".hat"].sum() < len(cbpp.fixef()) + 15


def test_glmm_hat_values_at_a_singular_fit_are_the_glms():
    ref = REF["singular_glmm"]
    d = pd.DataFrame(ref["data"]).assign(g=lambda x: x.g.astype(str))
    g = _quiet(lp.glmer, "y ~ x + (1 | g)", d, family="binomial")
    assert g.theta[0] < 1e-4
    np.testing.assert_allclose(_quiet(g.hatvalues), ref["glm_hat"], rtol=1e-4, atol=1e-7)


def test_bad_arguments(sleep):
    with pytest.raises(lp.ModelError, match="unknown effects 'random'"):
        lp.tidy(sleep, effects="random")
    with pytest.raises(lp.ModelError, match="scales must be"):
        lp.tidy(sleep, scales="sd")
    with pytest.raises(lp.ModelError, match="conf_method must be"):
        lp.tidy(sleep, conf_int=True, conf_method="exact")
    with pytest.raises(lp.ModelError, match="takes a fitted model"):
        lp.glance(SLEEP)
