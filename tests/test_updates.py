"""lp.update(), drop1(), ranova() and step(): lme4's and lmerTest's, against their own
output (tests/reference/lme4_update.R, lmertest.R)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import lmerpy as lp
from tests.conftest import as_list, read_reference, reference_data

REF = read_reference("lme4_update.json")["models"]
SLEEP = "Reaction ~ Days + (Days | Subject)"


def _check(m, ref, rtol=1e-5, criterion_tol=1e-3):
    """lme4's formula text, estimates and criterion (a GLMM's Laplace deviance within the
    1e-2 of tests/engines/test_glmm.py)."""
    assert m.formula.text == ref["formula"]
    assert m.REML == ref["REML"] and m.nobs == ref["nobs"]
    criterion = m.REMLcrit() if m.REML else m.deviance()
    assert criterion == pytest.approx(ref["criterion"], abs=criterion_tol)
    assert list(m.fixef().index) == list(ref["fixef"])
    np.testing.assert_allclose(m.fixef().to_numpy(), list(ref["fixef"].values()), rtol=rtol)
    np.testing.assert_allclose(m.theta, ref["theta"], rtol=1e-3, atol=1e-4)


@pytest.fixture(scope="module")
def sleep_fit():
    return lp.lmer(SLEEP, lp.datasets.load("sleepstudy"))


@pytest.mark.parametrize("key, formula", [("drop_days", ". ~ . - Days"),
                                          ("quadratic", ". ~ . + I(Days^2)"),
                                          ("intercept_only_re",
                                           ". ~ . - (Days | Subject) + (1 | Subject)")])
def test_update_formula_refits_as_lme4(sleep_fit, key, formula):
    _check(lp.update(sleep_fit, formula), REF[key])


def test_update_keeps_or_changes_the_other_arguments(sleep_fit):
    _check(lp.update(sleep_fit, REML=False), REF["ml"])
    sleepstudy = lp.datasets.load("sleepstudy")
    short = sleepstudy[sleepstudy.Days < 8]
    m = lp.update(sleep_fit, data=short)
    _check(m, REF["short"])
    assert m.data_name == "short"  # the caller's name for the new data, as R prints it
    weighted = lp.lmer(SLEEP, reference_data("sleep_w"), weights="w")
    mw = lp.update(weighted, ". ~ . - Days")
    _check(mw, REF["weighted_drop_days"])
    assert mw.weights_name == "w"
    # weights given as an array travel with the model's data, not to other data
    arr = lp.lmer(SLEEP, sleepstudy, weights=reference_data("sleep_w").w.to_numpy())
    _check(lp.update(arr, ". ~ . - Days"), REF["weighted_drop_days"])
    with pytest.raises(lp.ModelError, match="prior weights were given as an array"):
        lp.update(arr, data=short)


def test_update_of_a_glmer_fit_keeps_family_and_nagq():
    cbpp = lp.datasets.load("cbpp")
    g = lp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp)
    _check(lp.update(g, ". ~ . - period"), REF["glmer_drop_period"], rtol=1e-3, criterion_tol=1e-2)
    agq = lp.update(g, nAGQ=9)
    assert agq.nAGQ == 9 and agq.family.family == "binomial"
    _check(agq, REF["glmer_agq"], rtol=1e-3, criterion_tol=1e-3)


def test_update_of_a_torch_fit_trains_with_its_own_settings():
    """The training settings as given (not as decided for the old model) and the engine
    are kept: an update with the same formula is the same fit, bit for bit; options
    passed change what they name."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.normal(size=300), "z": rng.normal(size=300),
                       "g": rng.integers(0, 6, 300).astype(str)})
    df["y"] = np.sin(df.x) + 0.5 * df.z + rng.normal(size=300)
    options = dict(seed=3, epochs=4, batch_size=30, verbose=False)
    m = lp.lmer("y ~ nn(x, hidden=(8,)) + (1 | g)", df, **options)
    same = lp.update(m)
    np.testing.assert_array_equal(same.fitted(), m.fitted())
    more = lp.update(m, ". ~ . + z")
    direct = lp.lmer("y ~ nn(x, hidden=(8,)) + (1 | g) + z", df, **options)
    np.testing.assert_array_equal(more.fitted(), direct.fitted())
    assert more.torch_info["control"]["batch_size"] == 30
    longer = lp.update(m, epochs=6)
    assert longer.torch_info["epochs"] == 6
    linear = lp.update(m, ". ~ . - nn(x, hidden = (8,)) + x")  # stays on the torch engine
    assert linear.torch_info is not None and "x" in linear.fixef().index


def test_update_errors(sleep_fit):
    with pytest.raises(lp.ModelError, match="takes a fitted model"):
        lp.update("Reaction ~ Days", ". ~ .")
    with pytest.raises(lp.FormulaError, match="cannot remove \\(1 \\| Batch\\)"):
        lp.update(sleep_fit, ". ~ . - (1 | Batch)")
    with pytest.raises(lp.ModelError, match="only apply to engine='torch'"):
        lp.update(sleep_fit, epochs=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        refitted = sleep_fit.refit(np.log(sleep_fit.fitted()))  # keeps its data (a column)
    assert lp.update(refitted, ". ~ . - Days").nobs == 180


DROP1 = read_reference("lme4_update.json")["drop1"]


def _drop1_fits():
    sleep = lp.datasets.load("sleepstudy")
    quad = lp.lmer("Reaction ~ Days + I(Days^2) + (Days | Subject)", sleep)
    inter = lp.lmer("Reaction ~ Days * late + (1 | Subject)", sleep.assign(late=sleep.Days > 4))
    g = lp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                 lp.datasets.load("cbpp"))
    return {"quadratic": (quad, "none"), "quadratic_chisq": (quad, "Chisq"),
            "interaction": (inter, "Chisq"), "glmer": (g, "Chisq")}


@pytest.mark.parametrize("key", list(DROP1))
def test_drop1_is_lme4s(key):
    """Each droppable term (none that an interaction holds) refitted by ML: lme4's rows,
    numbers and printed table, line for line."""
    ref = DROP1[key]
    model, test = _drop1_fits()[key]
    d = lp.drop1(model, test=test)
    assert list(d.table.index) == ref["rows"]
    np.testing.assert_allclose(d.table.AIC, ref["AIC"], atol=2e-3 if key == "glmer" else 1e-4)
    assert list(d.table.npar.iloc[1:]) == ref["npar"][1:]
    if test == "Chisq":
        np.testing.assert_allclose(d.table.LRT.iloc[1:], ref["LRT"][1:], rtol=1e-4)
        np.testing.assert_allclose(d.table["Pr(Chi)"].iloc[1:], ref["p"][1:], rtol=1e-3)
    else:
        assert list(d.table.columns) == ["npar", "AIC"]
    assert str(d).splitlines() == ref["lines"]


def test_drop1_refuses_what_it_cannot_do(sleep_fit):
    with pytest.raises(lp.ModelError, match="test must be 'none' or 'Chisq'"):
        lp.drop1(sleep_fit, test="F")
    with pytest.raises(lp.ModelError, match="takes a fitted model"):
        lp.drop1(None)


RANOVA = read_reference("lmertest.json")["ranovas"]


def _ranova(key):
    sleep = lp.datasets.load("sleepstudy")
    calls = {
        "slope": lambda: lp.ranova(lp.lmer(SLEEP, sleep)),
        "slope_whole": lambda: lp.ranova(lp.lmer(SLEEP, sleep), reduce_terms=False),
        "uncorrelated": lambda: lp.ranova(lp.lmer("Reaction ~ Days + (Days || Subject)",
                                                  sleep)),
        "to_lm_ml": lambda: lp.ranova(lp.lmer("Reaction ~ Days + (1 | Subject)", sleep,
                                              REML=False)),
        "crossed": lambda: lp.ranova(lp.lmer("diameter ~ 1 + (1 | plate) + (1 | sample)",
                                             lp.datasets.load("Penicillin"))),
        "weighted": lambda: lp.ranova(lp.lmer("Reaction ~ Days + (1 | Subject)",
                                              reference_data("sleep_w"), weights="w")),
        "quadratic": lambda: lp.ranova(lp.lmer(
            "Reaction ~ Days + (1 + Days + I(Days^2) | Subject)", sleep))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return calls[key]()


@pytest.mark.parametrize("key", list(RANOVA))
def test_ranova_is_lmertests(key):
    """Each random term reduced (its variables dropped in turn, to the intercept) or
    removed, the last one leaving the linear model: lmerTest's rows, numbers and printed
    table. lme4 did not converge on the quadratic model's full fit (max|grad| 0.026), so
    its numbers differ there in the fifth digit and its print in the last."""
    ref = RANOVA[key]
    t = _ranova(key)
    assert list(t.table.index) == as_list(ref["rows"])
    for column, values in ref["columns"].items():
        want = np.array([np.nan if v == "NA" else v for v in as_list(values)], dtype=float)
        np.testing.assert_allclose(t.table[column].to_numpy(dtype=float), want,
                                   rtol=3e-4 if key == "quadratic" else 1e-6)
    if key != "quadratic":
        assert str(t).splitlines() == ref["lines"]


def test_ranova_removes_an_rbf_term_and_refuses_what_it_cannot_test():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"lat": rng.integers(0, 6, 300) / 5.0, "lon": rng.integers(0, 5, 300) / 4.0,
                       "g": rng.integers(0, 10, 300).astype(str), "x": rng.normal(size=300)})
    df["y"] = np.sin(3 * df.lat) + df.x + rng.normal(size=10)[df.g.astype(int)] \
        + rng.normal(size=300)
    m = lp.lmer("y ~ x + (1 | g) + rbf(lat, lon)", df, REML=False)
    t = lp.ranova(m)
    assert list(t.table.index) == ["<none>", "(1 | g)", "rbf(lat, lon)"]
    without = lp.lmer("y ~ x + (1 | g)", df, REML=False)
    assert t.table.loc["rbf(lat, lon)", "logLik"] == pytest.approx(float(without.logLik()),
                                                                   abs=1e-6)
    assert t.table.loc["rbf(lat, lon)", "Df"] == 2  # its sd and lengthscale
    g = lp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                 lp.datasets.load("cbpp"))
    with pytest.raises(lp.ModelError, match="random effects of an lmer fit"):
        lp.ranova(g)


def test_step_is_lmertests():
    """Backward elimination as lmerTest's step(): (1 | h) then A:B and B removed; its two
    tables and the model found, line for line; the model is the direct fit of that formula."""
    ref = read_reference("lmertest.json")
    data = pd.DataFrame(ref["anova_data"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = lp.step(lp.lmer("y ~ A * B + x + (1 | g) + (1 | h)", data))
    assert str(s).splitlines() == ref["step"]["lines"]
    assert s.model.formula.deparsed == ref["step"]["formula"]
    direct = lp.lmer(ref["step"]["formula"], data)
    assert s.model.REMLcrit() == pytest.approx(direct.REMLcrit(), abs=1e-6)
    assert list(s.fixed.index) == ["A:B", "B", "A", "x"]
    # keep= holds a term (A:B, and so A and B, which it contains); without a random
    # reduction nothing random is removed: the model as it was
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kept = lp.step(lp.lmer("y ~ A * B + x + (1 | g) + (1 | h)", data), keep=("A:B",),
                       reduce_random=False)
    assert kept.model.formula.deparsed == "y ~ A * B + x + (1 | g) + (1 | h)"
    assert list(kept.random.Eliminated.iloc[1:]) == [0, 0]
    assert list(kept.fixed.index) == ["x", "A:B"] and (kept.fixed.Eliminated == 0).all()


def test_step_keeps_the_last_random_term_with_a_warning():
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"x": rng.normal(size=120), "g": np.repeat(np.arange(12), 10).astype(str)})
    df["y"] = df.x + rng.normal(size=120)  # no group effect
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lp.SingularFitWarning)
        with pytest.warns(UserWarning, match="would leave no random term"):
            s = lp.step(lp.lmer("y ~ x + (1 | g)", df))
    assert s.model.formula.deparsed == "y ~ x + (1 | g)"
    with pytest.raises(lp.ModelError, match="alpha_fixed must be a probability"):
        lp.step(s.model, alpha_fixed=5)


def test_lmlist_is_lme4s():
    """lmList(Reaction ~ Days | Subject): each subject's lm, the pooled residual standard
    error, each group's own confint, and lme4's print, line for line."""
    ref = read_reference("lme4_update.json")["lmlist"]
    lml = lp.lmList("Reaction ~ Days | Subject", lp.datasets.load("sleepstudy"),
                    data_name="sleepstudy")
    assert list(lml.coef.index) == ref["levels"]
    np.testing.assert_allclose(lml.coef.to_numpy(), ref["coef"], rtol=1e-10)
    assert lml.sigma == pytest.approx(ref["sigma"], rel=1e-10)
    ci = lml.confint()
    np.testing.assert_allclose(np.column_stack([ci[c].iloc[:, 0] for c in ci]), ref["lower"],
                               rtol=1e-9)
    np.testing.assert_allclose(np.column_stack([ci[c].iloc[:, 1] for c in ci]), ref["upper"],
                               rtol=1e-9)
    assert str(lml).splitlines() == ref["lines"]
    with pytest.raises(lp.FormulaError, match="needs a formula 'y ~ x \\| g'"):
        lp.lmList("Reaction ~ Days", lp.datasets.load("sleepstudy"))


def test_influence_is_lme4s():
    """influence(m, groups = "Subject"): each subject deleted and the model refitted: lme4's
    fixed effects without each, and Cook's distances; per observation on Dyestuff."""
    ref = read_reference("lme4_update.json")["influence"]
    m = lp.lmer(SLEEP, lp.datasets.load("sleepstudy"))
    inf = lp.influence(m, groups="Subject")
    np.testing.assert_allclose(inf.fixef_deleted.to_numpy(), ref["subject"]["deleted"],
                               rtol=1e-6)
    np.testing.assert_allclose(inf.cooks_distance(), ref["subject"]["cooks"], rtol=1e-4)
    d = lp.lmer("Yield ~ 1 + (1 | Batch)", lp.datasets.load("Dyestuff"))
    np.testing.assert_allclose(lp.influence(d).cooks_distance(), ref["observation"]["cooks"],
                               rtol=1e-4)
    with pytest.raises(lp.ModelError, match="groups must name a column"):
        lp.influence(m, groups="Batch")
