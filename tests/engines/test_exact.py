"""The exact engine agrees with real lme4 fits (tests/reference/lme4_fits.json).

Tolerances from the issue: criterion 1e-3 absolute; fixed effects 1e-4 relative; standard
errors and variance components 1e-3 relative; random-effect modes within 1e-3 of their sd.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import lmerpy as lp
from lmerpy.engines.exact import drop_aliased
from tests.conftest import as_list, read_reference, reference_data

FITS = read_reference("lme4_fits.json")["fits"]


@pytest.fixture(scope="module")
def fitted():
    cache = {}

    def get(key):
        if key not in cache:
            ref = FITS[key]
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                m = lp.lmer(ref["formula"], reference_data(ref["data"]), REML=ref["REML"],
                            weights=ref["weights"], data_name=ref["data"])
            cache[key] = (m, [str(w.message) for w in caught])
        return cache[key]

    return get


@pytest.mark.parametrize("key", list(FITS))
def test_criterion_and_estimates(key, fitted):
    ref = FITS[key]
    m, _ = fitted(key)
    if ref["REML"]:
        assert m.REMLcrit() == pytest.approx(ref["REMLcrit"], abs=1e-3)
    else:
        assert m.deviance() == pytest.approx(ref["deviance"], abs=1e-3)
    assert list(m.fixef().index) == as_list(ref["fixef_names"])
    np.testing.assert_allclose(m.fixef().to_numpy(), list(ref["fixef"].values()), rtol=1e-4)
    se = np.sqrt(np.diag(m.vcov().to_numpy()))
    np.testing.assert_allclose(se, as_list(ref["se"]), rtol=1e-3)
    assert m.sigma == pytest.approx(ref["sigma"], rel=1e-3)
    vc = m.VarCorr().to_frame()
    assert list(vc.grp) == as_list(ref["varcorr"]["grp"])
    np.testing.assert_allclose(vc.vcov, as_list(ref["varcorr"]["vcov"]), rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(vc.sdcor, as_list(ref["varcorr"]["sdcor"]), rtol=1e-3,
                               atol=1e-3)
    assert m.nobs == ref["nobs"]
    assert m.ngrps == ref["ngrps"]
    assert m.isSingular() == ref["isSingular"]


@pytest.mark.parametrize("key", list(FITS))
def test_conditional_modes(key, fitted):
    ref = FITS[key]
    m, _ = fitted(key)
    ranef = m.ranef(condVar=True)
    vc = m.VarCorr()
    sds = {n: sd for t in vc.terms for n, sd in zip(t.names, t.sd)}
    for block in as_list(ref["ranef"]):
        ours = ranef[block["group"]]
        assert list(ours.index) == as_list(block["levels"])
        assert list(ours.columns) == as_list(block["columns"])
        expected = np.asarray(block["values"], dtype=float).reshape(ours.shape)
        scale = np.array([max(sds.get(c, 1.0), 1e-8) for c in ours.columns])
        assert np.all(np.abs(ours.to_numpy() - expected) <= 1e-3 * scale + 1e-8)
        long = block["long"]
        frame = ranef.to_frame()
        frame = frame[frame.grpvar == block["group"]]
        np.testing.assert_allclose(frame.condsd, as_list(long["condsd"]), rtol=1e-3, atol=1e-8)


@pytest.mark.parametrize("key", list(FITS))
def test_likelihood_and_information_criteria(key, fitted):
    ref = FITS[key]
    m, _ = fitted(key)
    ll = m.logLik()
    assert float(ll) == pytest.approx(ref["logLik"], abs=1e-3)
    assert ll.df == ref["df"]
    assert m.AIC() == pytest.approx(ref["AIC"], abs=2e-3)
    assert m.BIC() == pytest.approx(ref["BIC"], abs=2e-3)


@pytest.mark.parametrize("key", list(FITS))
def test_fitted_residuals_confint(key, fitted):
    ref = FITS[key]
    m, _ = fitted(key)
    np.testing.assert_allclose(m.fitted().to_numpy()[:10], ref["fitted_head"], rtol=1e-5)
    np.testing.assert_allclose(m.residuals().to_numpy()[:10], ref["resid_head"], atol=2e-3)
    np.testing.assert_allclose(m.residuals(type="pearson").to_numpy()[:10],
                               ref["pearson_head"], atol=2e-3)
    ci = m.confint(method="Wald").dropna().to_numpy()
    np.testing.assert_allclose(ci, np.asarray(ref["confint_wald"]).reshape(ci.shape),
                               rtol=1e-4)


def test_singular_fit_warns(fitted):
    m, caught = fitted("dyestuff2")
    assert m.isSingular()
    assert any("boundary (singular) fit" in w for w in caught)
    m, caught = fitted("dyestuff")
    assert not m.isSingular()
    assert not any("singular" in w for w in caught)


def test_rank_deficient_X_drops_aliased_column(fitted):
    m, caught = fitted("sleep_rankdef")
    assert list(m.fixef().index) == ["(Intercept)", "Days"]
    assert any("rank deficient so dropping 1 column / coefficient" in w for w in caught)


def test_drop_aliased_keeps_the_earlier_column():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=50), rng.normal(size=50)
    X = np.column_stack([np.ones(50), a, b, a + 2 * b, 3 * a])
    kept, names, dropped = drop_aliased(X, ["1", "a", "b", "a+2b", "3a"])
    assert names == ["1", "a", "b"] and dropped == ["a+2b", "3a"]
    assert kept.shape == (50, 3)


def test_ml_and_reml_agree_on_fixed_effects_for_balanced_data(fitted):
    reml, _ = fitted("sleep_reml")
    ml, _ = fitted("sleep_ml")
    np.testing.assert_allclose(reml.fixef(), ml.fixef(), rtol=1e-6)
    assert reml.sigma > ml.sigma * 0.99


def test_errors_for_models_lme4_refuses():
    sleep = lp.datasets.load("sleepstudy")
    with pytest.raises(lp.ModelError, match="no random-effects terms"):
        lp.lmer("Reaction ~ Days", sleep)
    with pytest.raises(lp.ModelError, match="must be < number of observations"):
        lp.lmer("Reaction ~ Days + (1 | id)", sleep.assign(id=range(180)))
    with pytest.raises(lp.ModelError, match="more than 1 sampled level"):
        lp.lmer("Reaction ~ Days + (1 | one)", sleep.assign(one="a"))
    with pytest.raises(lp.ModelError, match="unidentifiable"):
        lp.lmer("Reaction ~ Days + (Days | g)", sleep.assign(g=np.arange(180) // 2))


def test_bad_weights():
    sleep = lp.datasets.load("sleepstudy")
    with pytest.raises(lp.DataError, match="non-negative"):
        lp.lmer("Reaction ~ Days + (1 | Subject)", sleep, weights=-np.ones(180))
    with pytest.raises(lp.DataError, match="length 3"):
        lp.lmer("Reaction ~ Days + (1 | Subject)", sleep, weights=[1.0, 2.0, 3.0])
    with pytest.raises(lp.DataError, match="weights column 'nope'"):
        lp.lmer("Reaction ~ Days + (1 | Subject)", sleep, weights="nope")


@pytest.mark.parametrize("REML", [True, False])
def test_rows_of_weight_zero_are_as_if_dropped(REML):
    """A row of weight 0 has infinite variance: the fit, its criterion and Kenward-Roger's
    df are those of the data without it (as R's lm and logLik.lm take zero weights;
    lme4's REML criterion is Inf there and its optimiser stays at the start), and so is
    the linear model ranova tests against."""
    sleep = lp.datasets.load("sleepstudy")
    sleep["w"] = np.resize([1.0, 2.0, 0.5], 180)
    sleep.loc[[2, 49, 99], "w"] = 0.0
    formula = "Reaction ~ Days + (Days | Subject)"
    zero = lp.lmer(formula, sleep, REML=REML, weights="w")
    dropped = lp.lmer(formula, sleep[sleep.w > 0], REML=REML, weights="w")
    np.testing.assert_allclose(zero.theta, dropped.theta, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(zero.fixef(), dropped.fixef(), rtol=1e-8)
    assert zero.sigma == pytest.approx(dropped.sigma, rel=1e-7)
    assert float(zero.logLik()) == pytest.approx(float(dropped.logLik()), rel=1e-9)
    if REML:
        np.testing.assert_allclose(zero.kenward_roger()[1], dropped.kenward_roger()[1],
                                   rtol=1e-5)
    rz, rd = lp.ranova(zero), lp.ranova(dropped)
    np.testing.assert_allclose(rz.table["logLik"], rd.table["logLik"], rtol=1e-8)


CONSOLE = read_reference("lme4_console.json")


@pytest.mark.parametrize("level", [1, 3])
def test_verbose_prints_what_lme4_prints(capsys, level):
    # lmer(verbose = 1) prints every evaluation of the REML criterion as lme4 does
    # ("iteration: k", "f(x) = ..."), verbose = 3 the parameters too: the same lines
    ref = CONSOLE["verbose"]
    m = lp.lmer(ref["formula"], lp.datasets.load("sleepstudy"), verbose=level)
    assert capsys.readouterr().out.splitlines() == ref[f"level{level}"]
    quiet = lp.lmer(ref["formula"], lp.datasets.load("sleepstudy"), verbose=False)
    assert capsys.readouterr().out == ""
    np.testing.assert_array_equal(quiet.theta, m.theta)


def test_verbose_with_lbfgsb_and_bad_values(capsys):
    # L-BFGS-B's evaluations are printed the same way; the least value printed is the
    # criterion at lme4's optimum
    ref = FITS["sleep_int"]
    data = reference_data(ref["data"])
    lp.lmer(ref["formula"], data, control=lp.LmerControl(optimizer="lbfgsb"), verbose=1)
    out = capsys.readouterr().out.splitlines()
    counts = [int(line.split(":")[1]) for line in out if line.startswith("iteration: ")]
    values = [float(line.split("=")[1]) for line in out if line.startswith("\tf(x) = ")]
    assert counts == list(range(1, len(counts) + 1)) and len(values) == len(counts) > 5
    assert min(values) == pytest.approx(ref["REMLcrit"], abs=1e-3)
    with pytest.raises(lp.ModelError, match="verbose must be a whole number"):
        lp.lmer(ref["formula"], data, verbose=-1)
    with pytest.raises(lp.ModelError, match="only apply to engine='torch'"):
        lp.lmer(ref["formula"], data, verbose=1, epochs=3)
