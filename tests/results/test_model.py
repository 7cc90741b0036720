"""Accessors of the result object: predict, coef, ranef layout, logLik, refit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lmerpy as lp
from tests.conftest import read_reference

REF = read_reference("lme4_fits.json")


@pytest.fixture(scope="module")
def sleep_fit():
    return lp.lmer("Reaction ~ Days + (Days | Subject)", lp.datasets.load("sleepstudy"))


def test_predict_new_data_matches_lme4(sleep_fit):
    nd = pd.DataFrame(REF["predict_newdata"])
    pred = sleep_fit.predict(nd, allow_new_levels=True)
    np.testing.assert_allclose(pred.to_numpy(), REF["predict"]["re"], rtol=1e-5)
    pop = sleep_fit.predict(nd, re_form="NA")
    np.testing.assert_allclose(pop.to_numpy(), REF["predict"]["pop"], rtol=1e-6)
    np.testing.assert_allclose(sleep_fit.predict(nd, re_form="~0"), pop)


def test_predict_rows_with_missing_values_as_lme4_na_pass(sleep_fit):
    """lme4's predict() passes NA rows through (na.pass): NaN there, the others unchanged."""
    nd = pd.DataFrame(REF["predict_newdata"])
    ref = np.asarray(REF["predict"]["re"])
    holes = nd.copy()
    holes.loc[1, "Days"] = np.nan
    holes.loc[2, "Subject"] = None
    holes.index = ["a", "b", "b", "c"]  # a repeated label too
    pred = sleep_fit.predict(holes, allow_new_levels=True)
    assert list(pred.index) == list(holes.index)
    assert np.isnan(pred.iloc[[1, 2]]).all()
    keep = np.ones(len(nd), bool)
    keep[[1, 2]] = False
    np.testing.assert_allclose(pred.to_numpy()[keep], ref[keep], rtol=1e-5)
    with pytest.warns(UserWarning, match="2 row\\(s\\) dropped .*'Days': 1, 'Subject': 1"):
        omitted = sleep_fit.predict(holes, allow_new_levels=True, na_action="omit")
    np.testing.assert_allclose(omitted.to_numpy(), ref[keep], rtol=1e-5)
    with pytest.raises(lp.DataError, match="2 row\\(s\\) have missing values"):
        sleep_fit.predict(holes, allow_new_levels=True, na_action="raise")
    with pytest.raises(lp.DataError, match="'pass', 'omit' or 'raise', not 'exclude'"):
        sleep_fit.predict(holes, na_action="exclude")
    assert sleep_fit.predict(holes.assign(Days=np.nan)).isna().all()
    with pytest.raises(lp.DataError, match="'omit' or 'raise', not 'pass'"):
        lp.lmer("Reaction ~ Days + (Days | Subject)", lp.datasets.load("sleepstudy"),
                na_action="pass")


def test_predict_unseen_level_is_named(sleep_fit):
    nd = pd.DataFrame({"Days": [1.0], "Subject": ["999"]})
    with pytest.raises(lp.DataError, match="new levels in grouping factor 'Subject': 999"):
        sleep_fit.predict(nd)


def test_predict_on_training_data_equals_fitted(sleep_fit):
    data = lp.datasets.load("sleepstudy")
    np.testing.assert_allclose(sleep_fit.predict(data), sleep_fit.fitted(), rtol=1e-10)
    np.testing.assert_allclose(sleep_fit.predict(), sleep_fit.fitted(), rtol=1e-10)


def test_predict_re_form_subset():
    data = lp.datasets.load("sleepstudy")
    m = lp.lmer("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", data)
    only_intercepts = m.predict(re_form="~(1 | Subject)")
    b = m.ranef()["Subject"]["(Intercept)"]
    expected = m.predict(re_form="NA") + b.loc[data.Subject.astype(str)].to_numpy()
    np.testing.assert_allclose(only_intercepts, expected, rtol=1e-10)
    with pytest.raises(lp.FormulaError, match="not in the model"):
        m.predict(re_form="~(1 | Days)")


def test_coef_is_fixef_plus_ranef(sleep_fit):
    coef = sleep_fit.coef()["Subject"]
    ranef = sleep_fit.ranef()["Subject"]
    fe = sleep_fit.fixef()
    np.testing.assert_allclose(coef - ranef, np.tile(fe.to_numpy(), (18, 1)))
    expected = np.asarray(REF["fits"]["sleep_reml"]["coef"]["Subject"])
    np.testing.assert_allclose(coef.to_numpy(), expected, rtol=1e-4)


def test_ranef_layout(sleep_fit):
    re = sleep_fit.ranef(condVar=True)
    df = re["Subject"]
    assert df.shape == (18, 2) and list(df.columns) == ["(Intercept)", "Days"]
    assert df.index.name == "Subject" and df.index[0] == "308"
    frame = re.to_frame()
    assert list(frame.columns) == ["grpvar", "term", "grp", "condval", "condsd"]
    assert len(frame) == 36
    (post,) = df.attrs["postVar"]
    assert post.shape == (18, 2, 2)
    np.testing.assert_allclose(post, post.transpose(0, 2, 1))


def test_loglik_repr_and_vcov(sleep_fit):
    ll = sleep_fit.logLik()
    assert repr(ll).startswith("'log Lik.' -871.8") and "(df=6)" in repr(ll)
    V = sleep_fit.vcov()
    assert list(V.index) == ["(Intercept)", "Days"]
    np.testing.assert_allclose(V.to_numpy(), np.asarray(REF["fits"]["sleep_reml"]["vcov"]),
                               rtol=1e-3)


def test_refit_ml_equals_direct_ml_fit(sleep_fit):
    ml = sleep_fit.refit(REML=False)
    assert ml.deviance() == pytest.approx(REF["fits"]["sleep_ml"]["deviance"], abs=1e-3)
    assert not ml.REML


def test_refit_keeps_the_fits_control_quietly(capsys):
    # as lme4's refitML, the ML refit uses the fit's own optimiser settings (not verbose)
    sleep = lp.datasets.load("sleepstudy")
    m = lp.lmer("Reaction ~ Days + (1 | Subject)", sleep, verbose=1,
                control=lp.LmerControl(optimizer="lbfgsb"))
    assert "iteration: 1" in capsys.readouterr().out
    ml = m.refit(REML=False)
    assert capsys.readouterr().out == ""
    assert ml.fit.optinfo["optimizer"] == "lbfgsb"
    direct = lp.lmer("Reaction ~ Days + (1 | Subject)", sleep, REML=False)
    assert direct.fit.optinfo["optimizer"] == "bobyqa"  # the default here: another optimiser
    assert ml.deviance() == pytest.approx(direct.deviance(), abs=1e-6)


def test_data_name_is_the_callers_variable():
    sleepstudy = lp.datasets.load("sleepstudy")
    m = lp.lmer("Reaction ~ Days + (1 | Subject)", sleepstudy)
    assert m.data_name == "sleepstudy"
    assert m.summary().lines[2] == "   Data: sleepstudy"


def test_missing_rows_are_reported_and_fit_continues():
    data = lp.datasets.load("sleepstudy")
    data.loc[[1, 2], "Reaction"] = np.nan
    with pytest.warns(UserWarning, match="2 row\\(s\\) dropped"):
        m = lp.lmer("Reaction ~ Days + (1 | Subject)", data)
    assert m.nobs == 178
    assert len(m.fitted()) == 178
