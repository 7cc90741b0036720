"""The bad-input matrix: every case raises a LmerpyError naming the column, level or row (or
fits, where lme4 fits too) — never a raw numpy/scipy/torch traceback."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import lmerpy as lp

S = lp.datasets.load("sleepstudy")
F = "Reaction ~ Days + (1 | Subject)"
CBPP = lp.datasets.load("cbpp")
G = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


def _one_inf() -> pd.DataFrame:
    return S.assign(Days=np.where(np.arange(len(S)) == 3, np.inf, S.Days))


ERRORS = [
    ("empty DataFrame", lambda: lp.lmer(F, S.iloc[:0]), lp.DataError, "no rows"),
    ("empty DataFrame, glmer", lambda: lp.glmer(G, CBPP.iloc[:0]), lp.DataError, "no rows"),
    ("response all NA", lambda: lp.lmer(F, S.assign(Reaction=np.nan)), lp.DataError,
     "'Reaction': 180"),
    ("response constant", lambda: lp.lmer(F, S.assign(Reaction=1.0)), lp.DataError,
     "Reaction is constant"),
    ("binary response constant", lambda: lp.glmer("y ~ Days + (1 | Subject)",
                                                   S.assign(y=0)), lp.DataError, "constant"),
    ("text used numerically", lambda: lp.lmer("Reaction ~ I(Days * 2) + (1 | Subject)",
                                              S.assign(Days=S.Days.astype(str))),
     lp.DataError, "column 'Days' holds text"),
    ("text inside nn()", lambda: lp.lmer("Reaction ~ nn(Days) + (1 | Subject)",
                                         S.assign(Days=S.Days.astype(str)), epochs=1,
                                         verbose=False),
     lp.DataError, "column 'Days' holds numbers stored as text, so nn\\(Days\\)"),
    ("numbers mixed with text", lambda: lp.lmer("Reaction ~ x + (1 | Subject)",
                                                S.assign(x=[1, "a"] * (len(S) // 2))),
     lp.DataError, "column 'x' mixes numbers and text \\(row 1"),
    ("inf values", lambda: lp.lmer(F, _one_inf()), lp.DataError,
     "column 'Days' holds infinite values .* rows \\[3\\]"),
    ("grouping factor with one level", lambda: lp.lmer(F, S.assign(Subject="a")),
     lp.ModelError, "'Subject' must have more than 1"),
    ("more random effects than observations",
     lambda: lp.lmer("Reaction ~ Days + (Days | Subject)", S.groupby("Subject").head(2)),
     lp.ModelError, "number of observations \\(= 36\\) <= number of random effects"),
    ("as many levels as observations",
     lambda: lp.lmer("Reaction ~ Days + (1 | r)", S.assign(r=np.arange(len(S)).astype(str))),
     lp.ModelError, "must be < number of observations"),
    ("duplicate column names", lambda: lp.lmer(F, pd.concat([S, S[["Days"]]], axis=1)),
     lp.DataError, "duplicate column names: Days"),
    ("datetime column", lambda: lp.lmer("Reaction ~ d + (1 | Subject)", S.assign(
        d=pd.Timestamp("2020-01-01") + pd.to_timedelta(S.Days, "D"))), lp.DataError,
     "column 'd' holds dates/times"),
    ("weights negative", lambda: lp.lmer(F, S, weights=np.where(np.arange(len(S)) == 7, -1.0,
                                                                 1.0)),
     lp.DataError, "non-negative \\(negative at rows \\[7\\]"),
    ("weights wrong length", lambda: lp.lmer(F, S, weights=np.ones(5)), lp.DataError,
     "weights has length 5"),
    ("weights column missing", lambda: lp.lmer(F, S, weights="w"), lp.DataError,
     "weights column 'w' not found"),
    ("weights all zero", lambda: lp.lmer(F, S, weights=np.zeros(len(S))), lp.DataError,
     "weights are all zero"),
    ("rbf with one location", lambda: lp.lmer("Reaction ~ Days + rbf(a, b)",
                                              S.assign(a=1.0, b=2.0)),
     lp.ModelError, "single distinct location \\(1, 2\\)"),
    ("missing column", lambda: lp.lmer("Reaction ~ Dayz + (1 | Subject)", S), lp.DataError,
     "column 'Dayz' not found in data; did you mean 'Days'"),
    ("not a DataFrame", lambda: lp.lmer(F, S.to_numpy()), lp.DataError,
     "must be a pandas DataFrame"),
    ("bad formula", lambda: lp.lmer("Reaction ~ Days + (1 | Subject", S), lp.FormulaError,
     "column"),
    ("binomial response out of range", lambda: lp.glmer("size ~ period + (1 | herd)", CBPP),
     lp.ModelError, "must lie in \\[0, 1\\]"),
    ("dict values in a fixed term", lambda: lp.lmer("Reaction ~ d + (1 | Subject)",
                                                    S.assign(d=[{"a": 1}] * len(S))),
     lp.DataError, "column 'd' holds dict values \\(row 0: \\{'a': 1\\}\\)"),
    ("list values in a grouping factor", lambda: lp.lmer("Reaction ~ Days + (1 | s)",
                                                         S.assign(s=[[1]] * len(S))),
     lp.DataError, "column 's' holds list values"),
]


@pytest.mark.parametrize("case,call,error,message", ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_input_raises_a_precise_lmerpy_error(case, call, error, message):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(error, match=message) as info:
            call()
    assert isinstance(info.value, lp.LmerpyError)


@pytest.fixture(scope="module")
def model():
    return lp.lmer(F, S)


def test_newdata_problems(model):
    with pytest.raises(lp.DataError, match="column 'Days' not found in newdata"):
        model.predict(S.drop(columns="Days"))
    with pytest.raises(lp.DataError, match="new levels in grouping factor 'Subject': new"):
        model.predict(S.assign(Subject="new"))
    pop = model.predict(S.assign(Subject="new"), allow_new_levels=True)
    np.testing.assert_allclose(pop, model.predict(S, re_form="NA"))
    with pytest.raises(lp.DataError, match="180 row\\(s\\) have missing values .*'Days': 180"):
        model.predict(S.assign(Days=np.nan), na_action="raise")
    assert model.predict(S.assign(Days=np.nan)).isna().all()  # lme4's na.pass


def test_accepted_inputs_fit_as_lme4_would():
    # a float grouping column: its values are levels, with a note
    with pytest.warns(UserWarning, match="grouping column 'g' holds floats"):
        a = lp.lmer("Reaction ~ Days + (1 | g)", S.assign(g=S.Subject.astype(float)))
    b = lp.lmer(F, S)
    np.testing.assert_allclose(a.theta, b.theta, rtol=1e-8)
    # booleans are R's logical factor (FALSE/TRUE, coefficient bTRUE)
    m = lp.lmer("Reaction ~ b + (1 | Subject)", S.assign(b=S.Days > 4))
    assert m.fixef_names == ["(Intercept)", "bTRUE"]
    # unused categories are dropped, as R's model frames do
    g = pd.Categorical(S.Subject, categories=list(S.Subject.unique()) + ["zzz"])
    assert lp.lmer("Reaction ~ Days + (1 | g)", S.assign(g=g)).ngrps == {"g": 18}
    f = pd.Categorical(np.where(S.Days < 3, "a", "b"), categories=["a", "b", "c"])
    assert lp.lmer("Reaction ~ f + (1 | Subject)", S.assign(f=f)).fixef_names == \
        ["(Intercept)", "fb"]
    # NA rows are dropped, counted and reported
    with pytest.warns(UserWarning, match="2 row\\(s\\) dropped .* 'Days': 2"):
        m = lp.lmer(F, S.assign(Days=np.where(np.arange(len(S)) < 2, np.nan, S.Days)))
    assert m.nobs == 178


def test_extreme_response_and_fixed_predictor_scales_fit_the_same():
    """θ and the deviance are invariant to the response's scale; the fixed effects scale."""
    base = lp.lmer("Reaction ~ Days + (Days | Subject)", S)
    for c in (1e9, 1e-9):
        m = lp.lmer("Reaction ~ Days + (Days | Subject)", S.assign(Reaction=S.Reaction * c))
        np.testing.assert_allclose(m.theta, base.theta, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(m.fixef(), base.fixef() * c, rtol=1e-7)
        assert m.sigma == pytest.approx(base.sigma * c, rel=1e-7)
    # a random slope on a predictor around 1e-9 and a response around 1e9: the optimiser
    # works on rescaled columns, so the fit is the rescaled problem's
    both = lp.lmer("Reaction ~ Days + (Days | Subject)",
                   S.assign(Reaction=S.Reaction * 1e9, Days=S.Days * 1e-9))
    np.testing.assert_allclose(both.theta * [1, 1e-9, 1e-9], base.theta, rtol=1e-4)
    np.testing.assert_allclose(both.fixef().to_numpy() * [1e-9, 1e-18], base.fixef(),
                               rtol=1e-6)
    assert both.sigma / 1e9 == pytest.approx(base.sigma, rel=1e-5)
    assert not both.optinfo["messages_conv"]
    small = lp.lmer("Reaction ~ x + (1 | Subject)", S.assign(x=S.Days * 1e-9))
    ref = lp.lmer(F, S)
    np.testing.assert_allclose(small.fixef().to_numpy() * [1, 1e-9], ref.fixef(), rtol=1e-7)
    np.testing.assert_allclose(small.theta, ref.theta, rtol=1e-6)


def test_near_singular_fits_finish_with_the_boundary_warning():
    d2 = lp.datasets.load("Dyestuff2")
    with pytest.warns(lp.SingularFitWarning):
        m = lp.lmer("Yield ~ 1 + (1 | Batch)", d2)
    assert m.isSingular() and np.isfinite(m.fixef()).all() and np.isfinite(m.sigma)
    # a correlation at ±1: a random slope that is a multiple of the intercept
    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(30), 8)
    x = np.tile(np.linspace(0, 1, 8), 30)
    u = rng.normal(size=30)
    y = 1 + x + u[g] * (1 + 2 * x) + rng.normal(scale=0.3, size=len(g))
    df = pd.DataFrame({"y": y, "x": x, "g": g.astype(str)})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = lp.lmer("y ~ x + (x | g)", df)
    vc = m.VarCorr().to_frame()
    corr = vc.sdcor[vc.var2.notna()].iloc[0]
    assert abs(corr) > 0.98 and np.isfinite(m.vcov().to_numpy()).all()
    assert m.isSingular(tol=1e-2) or not any("singular" in str(w.message) for w in caught)


def test_collinear_fixed_effects_are_dropped_as_lme4():
    with pytest.warns(lp.RankDeficiencyWarning, match="dropping 1 column"):
        m = lp.lmer("Reaction ~ Days + D2 + (1 | Subject)", S.assign(D2=2 * S.Days))
    assert m.fixef_names == ["(Intercept)", "Days"]


def test_result_methods_name_bad_arguments(model, tmp_path):
    glmm = lp.glmer(G, CBPP)
    cases = [
        (lambda: model.confint(method="bootstrap"), lp.ModelError,
         "confint\\(method='bootstrap'\\) is not available: use 'profile', 'boot' or "
         "'Wald'"),
        (lambda: model.confint(parm="Dayz"), lp.ModelError,
         "parm must name parameters of the model \\(.sig01, .sigma, \\(Intercept\\), Days\\)"),
        (lambda: glmm.confint(method="boot", boot_type="bca"), lp.ModelError,
         "boot_type must be 'perc', 'basic' or 'norm'"),
        (lambda: model.confint(level=95), lp.ModelError, "level must be a probability in"),
        (lambda: model.confint(level="a"), lp.ModelError, "level must be a probability in"),
        (lambda: model.residuals(type="raw"), lp.ModelError, "type must be 'response', "),
        (lambda: glmm.predict(type="probability"), lp.ModelError,
         "type must be 'link' or 'response', not 'probability'"),
        (lambda: glmm.residuals(type="raw"), lp.ModelError, "type must be one of"),
        (lambda: lp.anova(model, 3), lp.ModelError, "argument 2 is a int"),
        (lambda: model.refit(REML="no"), lp.ModelError, "REML must be True or False"),
        (lambda: model.ranef(condVar="yes"), lp.ModelError, "condVar must be True or False"),
        (lambda: model.predict(S, allow_new_levels="yes"), lp.ModelError,
         "allow_new_levels must be True or False"),
        (lambda: model.save(tmp_path / "absent" / "m.lmerpy"), lp.ModelFileError,
         "the folder .*absent does not exist"),
        (lambda: model.save(tmp_path), lp.ModelFileError, "it is a folder"),
    ]
    for call, error, message in cases:
        with pytest.raises(error, match=message):
            call()
    assert list(tmp_path.iterdir()) == []  # nothing half-written
    # lp.plot is there after `import lmerpy as lp`, as the docs write it
    assert callable(lp.plot.caterpillar)
