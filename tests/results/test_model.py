"""Accessors of the result object: predict, coef, ranef layout, logLik, refit."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import lmerpy as lp
from tests.conftest import as_list, read_reference

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


def test_refit_newresp_is_the_fit_to_that_response(tmp_path):
    """lme4's refit(m, newresp): the same model fitted to a new response from θ̂ equals
    lmer() on the data with that response; a simulate() column and a value per row of the
    data (the rows dropped for missing values included) are taken, as lme4 takes them."""
    sleep = lp.datasets.load("sleepstudy")
    sleep.loc[[3, 50], "Days"] = np.nan  # two rows dropped
    formula = "Reaction ~ Days + (Days | Subject)"
    with pytest.warns(UserWarning, match="2 row"):
        m = lp.lmer(formula, sleep)
    sim = m.simulate(2, seed=7)
    new = m.refit(sim[["sim_2"]])
    with pytest.warns(UserWarning, match="2 row"):
        direct = lp.lmer(formula, sleep.assign(Reaction=sim["sim_2"]))
    assert new.REMLcrit() == pytest.approx(direct.REMLcrit(), abs=1e-5)
    np.testing.assert_allclose(new.fixef(), direct.fixef(), rtol=1e-6)
    np.testing.assert_allclose(new.theta, direct.theta, atol=1e-4)  # optimiser tolerance
    assert abs(new.fixef()["Days"] - m.fixef()["Days"]) > 0.1  # the response did change
    full = sleep.Reaction.to_numpy() + 3.0 * np.arange(len(sleep)) % 17
    by_row = m.refit(full)  # one value per row of the data: the dropped rows' left out
    with pytest.warns(UserWarning, match="2 row"):
        direct = lp.lmer(formula, sleep.assign(Reaction=full))
    assert by_row.REMLcrit() == pytest.approx(direct.REMLcrit(), abs=1e-5)
    ml = m.refit(full, REML=False)
    assert not ml.REML and ml.deviance() == pytest.approx(
        direct.refit(REML=False).deviance(), abs=1e-5)
    # the refit keeps its own response: saved and loaded, its residuals are its own
    path = tmp_path / "refit.lmerpy"
    new.save(path)
    np.testing.assert_allclose(lp.load(path).residuals(), new.residuals(), rtol=1e-9)
    np.testing.assert_allclose(new.residuals() + new.fitted(), sim["sim_2"], rtol=1e-12)


def test_refit_newresp_refuses_what_it_cannot_fit():
    sleep = lp.datasets.load("sleepstudy")
    m = lp.lmer("Reaction ~ Days + (1 | Subject)", sleep)
    cases = [(sleep.Reaction[:10], "newresp has 10 values; the model has 180 observations"),
             (m.simulate(2), "newresp has 2 columns; refit one response at a time"),
             (np.r_[np.nan, sleep.Reaction[1:]], r"1 missing or infinite value\(s\) \(first "
                                                 r"at position 0\)"),
             (["a"] * 180, "newresp must be numbers")]
    for newresp, message in cases:
        with pytest.raises(lp.DataError, match=message):
            m.refit(newresp)
    log = lp.lmer("log(Reaction) ~ Days + (1 | Subject)", sleep)
    refitted = log.refit(np.log(sleep.Reaction) + 0.1)  # a response expression: no data kept
    assert refitted.fixef()["(Intercept)"] == pytest.approx(log.fixef()["(Intercept)"] + 0.1,
                                                            abs=1e-6)
    with pytest.raises(lp.LmerpyError, match="without its data frame"):
        refitted.save("never-written.lmerpy")


def test_glmer_refit_newresp_takes_successes_for_cbind():
    """A cbind() response is refitted from successes (what simulate() gives), the trials
    kept: glmer() on the data with those successes; 0/1 responses as they are."""
    cbpp = lp.datasets.load("cbpp")
    formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    m = lp.glmer(formula, cbpp, family="binomial")
    s = m.simulate(1, seed=3)["sim_1"]
    new = m.refit(s)
    direct = lp.glmer(formula, cbpp.assign(incidence=s), family="binomial")
    np.testing.assert_allclose(new.fixef(), direct.fixef(), rtol=1e-5)
    np.testing.assert_allclose(new.theta, direct.theta, rtol=1e-4)
    assert new.deviance() == pytest.approx(direct.deviance(), abs=1e-5)
    with pytest.raises(lp.DataError, match="whole numbers from 0 to each row's trials"):
        m.refit(s + 0.5)
    with pytest.raises(lp.DataError, match="whole numbers from 0 to each row's trials"):
        m.refit(cbpp["size"] + 1)
    assert m.refit(REML=False) is m  # always ML


def test_refit_newresp_of_a_torch_fit_says_to_refit():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=200), "g": rng.integers(0, 5, 200).astype(str)})
    df["y"] = df.x + rng.normal(size=200)
    m = lp.lmer("y ~ nn(x, hidden=(4,)) + (1 | g)", df, epochs=2, seed=0, verbose=False)
    with pytest.raises(lp.ModelError, match="would train its network anew"):
        m.refit(df.y)


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


STRUCTURES = read_reference("lme4_structures.json")["structures"]


@pytest.mark.parametrize("ref", STRUCTURES, ids=[r["formula"] for r in STRUCTURES])
def test_getme_is_lme4s(ref):
    """getME(): Zt, Lambda, theta (with lme4's names), lower, cnms and X's columns of lme4's
    own fits (tests/reference/lme4_structures.R); Λ at lmerpy's θ̂, within the optimisers'
    tolerance of lme4's."""
    import scipy.sparse as sp

    def dense(t):
        return sp.coo_matrix((t["x"], (t["i"], t["j"])), shape=tuple(t["dim"])).toarray()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lp.lmer(ref["formula"], lp.datasets.load(ref["data"]))
    np.testing.assert_array_equal(m.getME("Zt").toarray(), dense(ref["Zt"]))
    theta = m.getME("theta")
    assert list(theta.index) == as_list(ref["theta_names"])
    # lme4 stops short on the quadratic random slopes (its θ̂ gives a REML criterion
    # 0.006 above lmerpy's): the two θ̂ differ there by 0.02
    tol = 3e-2 if "I(Days^2) |" in ref["formula"] else 2e-3
    np.testing.assert_allclose(m.getME("Lambda").toarray(), dense(ref["Lambda"]), atol=tol)
    np.testing.assert_allclose(theta, as_list(ref["theta"]), atol=tol)
    lower = [-np.inf if v == "-Inf" else v for v in as_list(ref["lower"])]
    np.testing.assert_array_equal(m.getME("lower"), lower)
    assert m.getME("cnms") == {k: as_list(v) for k, v in ref["cnms"].items()}
    assert list(m.getME("X").columns) == as_list(ref["X_colnames"])
    # b = Λu, and Zb + Xβ are the fitted values
    np.testing.assert_allclose(m.getME("Lambda") @ m.getME("u"), m.getME("b"), atol=1e-10)
    np.testing.assert_allclose(m.getME("Z") @ m.getME("b") + m.getME("X").to_numpy()
                               @ m.getME("beta"), m.fitted(), rtol=1e-10)
    assert m.getME("Gp")[-1] == m.getME("q") == m.getME("Zt").shape[0]


def test_getme_names_what_it_knows():
    m = lp.lmer("Reaction ~ Days + (1 | Subject)", lp.datasets.load("sleepstudy"))
    with pytest.raises(lp.ModelError, match="getME\\(\\) knows 'X', 'Z'.* not 'Ztlist'"):
        m.getME("Ztlist")
    with pytest.raises(lp.ModelError, match="needs a negative binomial fit"):
        m.getME("glmer.nb.theta")


def test_bootmer_refits_each_simulated_response():
    """bootMer(m, FUN, nsim): row i is FUN of m.refit(the i-th simulate() column); the
    parametric bootstrap's spread of β̂ meets the Wald standard errors (closed form for
    this balanced design: within sampling error at 200 replicates)."""
    m = lp.lmer("Reaction ~ Days + (Days | Subject)", lp.datasets.load("sleepstudy"))
    b = m.bootMer(lambda f: f.fixef(), nsim=200, seed=7)
    assert list(b.columns) == ["(Intercept)", "Days"] and b.shape == (200, 2)
    sims = m.simulate(200, seed=7)
    for i in (0, 117):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            again = m.refit(sims.iloc[:, i]).fixef().to_numpy()
        np.testing.assert_array_equal(b.iloc[i].to_numpy(), again)
    se = np.sqrt(np.diag(m.vcov().to_numpy()))
    np.testing.assert_allclose(b.std().to_numpy(), se, rtol=0.2)
    # β̂ is unbiased here: the replicates' mean within 3 standard errors of a mean
    assert np.all(np.abs(b.mean().to_numpy() - m.fixef().to_numpy()) < 3 * se / np.sqrt(200))
    pd.testing.assert_series_equal(b.attrs["t0"], m.fixef())
    sigma = m.bootMer(lambda f: f.sigma, nsim=3, seed=1)
    assert sigma.shape == (3, 1) and sigma.attrs["t0"].iloc[0] == m.sigma
    with pytest.raises(lp.ModelError, match="FUN must be a function"):
        m.bootMer("fixef")


def test_hatvalues_are_lme4s():
    """hatvalues(m): lme4's diagonal of the hat matrix, unweighted and with prior weights;
    a GLMM's gets lme4's warning."""
    from tests.conftest import reference_data

    ref = read_reference("lme4_update.json")["hatvalues"]
    sleep = lp.datasets.load("sleepstudy")
    m = lp.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    np.testing.assert_allclose(m.hatvalues(), ref["sleep"], rtol=1e-5)
    mw = lp.lmer("Reaction ~ Days + (1 | Subject)", reference_data("sleep_w"), weights="w")
    np.testing.assert_allclose(mw.hatvalues(), ref["weighted"], rtol=1e-5)
    with pytest.warns(UserWarning, match="may not make sense for GLMMs"):
        lp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                 lp.datasets.load("cbpp")).hatvalues()
