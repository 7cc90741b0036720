"""Satterthwaite's degrees of freedom (lmerTest's t-tests), against lmerTest's own numbers
and printed summaries (tests/reference/lmertest.R) and closed forms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st

import lmerpy as lp
from lmerpy.engines.satterthwaite import hessian, jacobian
from tests.conftest import as_list, read_reference, reference_data

REF = read_reference("lmertest.json")
FITS = REF["fits"]
FORMULAS = {"sleep_reml": ("Reaction ~ Days + (Days | Subject)", {}),
            "sleep_ml_quad": ("Reaction ~ Days + I(Days^2) + (1 | Subject)", {"REML": False}),
            "sleep_uncorr": ("Reaction ~ Days + (Days || Subject)", {}),
            "sleep_weights": ("Reaction ~ Days + (Days | Subject)", {"weights": "w"}),
            "penicillin": ("diameter ~ 1 + (1 | plate) + (1 | sample)", {}),
            "pastes": ("strength ~ 1 + (1 | batch / cask)", {})}
# Penicillin's θ̂ sits 1e-4 from lme4's, the weighted fit's 1e-5 (the optimisers'
# tolerance): their df differ there, and their summaries in the last digit
TOL = {"penicillin": 2e-3, "sleep_weights": 1e-4}


def _fit(key):
    ref = FITS[key]
    formula, options = FORMULAS[key]
    return lp.lmer(formula, reference_data(ref["data"]), data_name=ref["data"], **options)


@pytest.mark.parametrize("key", list(FITS))
def test_df_and_p_values_are_lmertests(key):
    ref, m = FITS[key], _fit(key)
    tol = TOL.get(key, 1e-6)
    coef = m.summary(ddf="Satterthwaite").coefficients
    assert list(coef.index) == as_list(ref["names"])
    assert list(coef.columns) == ["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"]
    np.testing.assert_allclose(coef["df"], ref["df"], rtol=tol)
    np.testing.assert_allclose(coef["t value"], ref["t"], rtol=max(tol, 1e-5))
    np.testing.assert_allclose(coef["Pr(>|t|)"], ref["p"], rtol=max(tol, 1e-5) * 10)
    np.testing.assert_allclose(m._varpar_derivatives.vcov_varpar,
                               np.array(ref["vcov_varpar"]).reshape(len(m.theta) + 1, -1),
                               rtol=max(tol, 2e-5), atol=1e-12)


@pytest.mark.parametrize("key", [k for k in FITS if k not in TOL])
def test_summary_prints_as_lmertest(key):
    """lmerTest's title (wrapped as lme4's .prt.methTit), the df column formatted with the
    estimates (printCoefmat's coefficient columns), p-values and stars, line for line."""
    assert str(_fit(key).summary(ddf="Satterthwaite")).splitlines() == FITS[key]["summary"]


def test_a_contrast_is_lmertests_contest1d():
    c = REF["contrast"]
    m = _fit("sleep_reml")
    L = np.array(c["L"], dtype=float)
    (df,) = m.satterthwaite_df([L])
    assert df == pytest.approx(c["df"], rel=1e-6)
    est = L @ m.fixef().to_numpy()
    se = np.sqrt(L @ m.vcov().to_numpy() @ L)
    assert est == pytest.approx(c["estimate"], rel=1e-7)
    assert se == pytest.approx(c["se"], rel=1e-5)
    assert 2 * st.t.sf(est / se, df) == pytest.approx(c["p"], rel=1e-4)


def test_balanced_one_way_model_has_groups_minus_one_df():
    """Closed form: in a balanced one-way random-intercept model the intercept's t-test has
    exactly (number of groups − 1) degrees of freedom (Dyestuff: 6 batches, 5)."""
    m = lp.lmer("Yield ~ 1 + (1 | Batch)", lp.datasets.load("Dyestuff"))
    assert m.satterthwaite_df()[0] == pytest.approx(5.0, rel=1e-6)


def test_numerical_derivatives_match_closed_forms():
    def f(x):
        return x[0] ** 2 * x[1] + np.exp(x[1]) + np.sin(x[0] * x[2])

    x = np.array([0.7, -0.3, 1.9])
    c = np.cos(x[0] * x[2])
    s = np.sin(x[0] * x[2])
    want = np.array([[2 * x[1] - x[2] ** 2 * s, 2 * x[0], c - x[0] * x[2] * s],
                     [2 * x[0], np.exp(x[1]), 0.0],
                     [c - x[0] * x[2] * s, 0.0, -x[0] ** 2 * s]])
    np.testing.assert_allclose(hessian(f, x), want, rtol=1e-7, atol=1e-9)
    J = jacobian(lambda v: np.array([v[0] * v[1], np.exp(v[2])]), x)
    np.testing.assert_allclose(J, [[x[1], x[0], 0], [0, 0, np.exp(x[2])]], rtol=1e-9,
                               atol=1e-12)


def test_what_has_no_satterthwaite_df_is_refused():
    m = _fit("sleep_reml")
    with pytest.raises(lp.ModelError, match="ddf must be 'Satterthwaite', 'Kenward-Roger'"):
        m.summary(ddf="KR")
    with pytest.raises(lp.ModelError, match="L must have 2 columns"):
        m.satterthwaite_df([[1, 2, 3]])
    assert str(m.summary(ddf="lme4")) == str(m.summary())
    g = lp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                 lp.datasets.load("cbpp"))
    with pytest.raises(lp.ModelError, match="fitted by the exact engine"):
        g.summary(ddf="Satterthwaite")


def test_notebook_and_terminal_views_show_the_df():
    from rich.console import Console

    s = _fit("sleep_reml").summary(ddf="Satterthwaite")
    html = s._repr_html_()
    assert "<th>df</th>" in html and "<th>Pr(&gt;|t|)</th>" in html and "17.00" in html
    console = Console(width=100, record=True)
    console.print(s)
    text = console.export_text()
    assert "Pr(>|t|)" in text and "17.00" in text


def test_a_hessian_not_positive_definite_is_warned_as_lmertest(monkeypatch):
    """lmerTest's warnings for negative and near-zero eigenvalues of the Hessian (which
    then leaves those directions out of A's generalised inverse)."""
    from lmerpy.engines import satterthwaite
    from lmerpy.results import model as model_module

    real = satterthwaite.derivatives

    def flagged(*args):
        d = real(*args)
        d.negative, d.near_zero = np.array([-2.5]), np.array([3e-9, -1e-9])
        return d

    monkeypatch.setattr(model_module, "derivatives", flagged)
    m = _fit("sleep_reml")
    with pytest.warns(lp.ConvergenceWarning) as caught:
        m.satterthwaite_df()
    texts = [str(w.message) for w in caught]
    assert texts[0].startswith("Model failed to converge with 1 negative eigenvalue: -2.5e+00")
    assert texts[1].startswith("Model may not have converged with 2 eigenvalues close to "
                               "zero: 3.0e-09 -1.0e-09")


KR_FORMULAS = {"sleep_reml": ("Reaction ~ Days + (Days | Subject)", "sleepstudy"),
               "sleep_quad": ("Reaction ~ Days + I(Days^2) + (1 | Subject)", "sleepstudy"),
               "penicillin": ("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin"),
               "pastes": ("strength ~ 1 + (1 | batch / cask)", "Pastes")}


@pytest.mark.parametrize("key", list(KR_FORMULAS))
def test_kenward_roger_is_pbkrtests(key):
    """summary(m, ddf = "Kenward-Roger"): pbkrtest's adjusted standard errors (Φ_A) and
    denominator df, lmerTest's printed summary (Penicillin's θ̂ sits 1e-4 from lme4's)."""
    ref = REF["kenward_roger"][key]
    formula, data = KR_FORMULAS[key]
    m = lp.lmer(formula, lp.datasets.load(data), data_name=data)
    coef = m.summary(ddf="Kenward-Roger").coefficients
    tol = 2e-3 if key == "penicillin" else 1e-6
    np.testing.assert_allclose(coef["Std. Error"], as_list(ref["se"]), rtol=max(tol, 1e-6))
    np.testing.assert_allclose(coef["df"], as_list(ref["df"]), rtol=tol)
    np.testing.assert_allclose(coef["Pr(>|t|)"], as_list(ref["p"]), rtol=max(tol, 1e-5) * 10)
    if key != "penicillin":
        assert str(m.summary(ddf="Kenward-Roger")).splitlines() == ref["summary"]


KR_WEIGHTS = read_reference("pbkrtest_weights.json")["fits"]


def _weighted_fit(key):
    ref = KR_WEIGHTS[key]
    if key == "sleep":
        data = reference_data("sleep_w")
    else:
        data = pd.DataFrame(ref["data"]).astype({"g": str})
    return lp.lmer(ref["formula"], data, weights="w")


@pytest.mark.parametrize("key", list(KR_WEIGHTS))
def test_kenward_roger_with_prior_weights_is_pbkrtest_on_the_folded_model(key):
    """With prior weights Σ = ZGZ' + σ²W⁻¹. pbkrtest ignores them (its Σ is σ²I + ZGZ');
    the reference is pbkrtest on the model with y, X and Z multiplied by √w, which has the
    same estimates and Kenward-Roger's quantities (tests/reference/pbkrtest_weights.R).
    The df of pbkrtest on the weighted fit itself are far off (262 against 126)."""
    ref = KR_WEIGHTS[key]
    m = _weighted_fit(key)
    np.testing.assert_allclose(m.theta, as_list(ref["theta_folded"]), rtol=1e-5, atol=1e-6)
    kr = ref["kenward_roger"]
    coef = m.summary(ddf="Kenward-Roger").coefficients
    assert list(coef.index) == as_list(ref["names"])
    np.testing.assert_allclose(coef["Std. Error"], kr["se"], rtol=1e-4)
    np.testing.assert_allclose(coef["df"], kr["df"], rtol=1e-4)
    np.testing.assert_allclose(coef["Pr(>|t|)"], kr["p"], rtol=1e-3)
    phi_a, _ = m.kenward_roger()
    np.testing.assert_allclose(phi_a, kr["vcov_adjusted"], rtol=1e-4)
    assert not np.allclose(coef["df"], ref["pbkrtest_on_weighted"]["df"], rtol=0.02)
    if "joint" in ref:
        table = lp.contest(m, np.asarray(ref["L"]), ddf="Kenward-Roger")
        row = table.iloc[0]
        assert row["F value"] == pytest.approx(ref["joint"]["F"], rel=1e-4)
        assert row["DenDF"] == pytest.approx(ref["joint"]["DenDF"], rel=1e-4)
        assert row["NumDF"] == ref["joint"]["NumDF"]


def test_kenward_roger_refuses_ml_and_large_models(monkeypatch):
    sleep = lp.datasets.load("sleepstudy")
    ml = lp.lmer("Reaction ~ Days + (1 | Subject)", sleep, REML=False)
    with pytest.raises(lp.ModelError, match="only available for REML fits"):
        ml.summary(ddf="Kenward-Roger")
    from lmerpy.engines import kenward_roger

    monkeypatch.setattr(kenward_roger, "MAX_ROWS", 100)
    with pytest.raises(lp.ModelError, match="180 observations \\(at most 100\\)"):
        lp.lmer("Reaction ~ Days + (1 | Subject)", sleep).kenward_roger()


@pytest.mark.parametrize("name, L, options", [
    ("joint", "L", {}), ("rows", "L", {"joint": False}),
    ("joint_kr", "L", {"ddf": "Kenward-Roger"}),
    ("rows_kr", "L", {"joint": False, "ddf": "Kenward-Roger"}),
    ("day5_rows", "day5", {"joint": False})])
def test_contest_is_lmertests(name, L, options):
    """lmerTest's contest(m, L): the joint F-test, or each row's t-test and 95% interval."""
    c = REF["contests"]
    m = lp.lmer("Reaction ~ Days + I(Days^2) + (Days | Subject)", lp.datasets.load("sleepstudy"))
    got = lp.contest(m, c[L], **options)
    for column, want in c[name].items():
        ours, theirs = got[column].to_numpy(dtype=float), np.array(as_list(want), dtype=float)
        if column.startswith("Pr("):  # a p-value of 1e-17: compared on the log scale
            ours, theirs = np.log(ours), np.log(theirs)
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, err_msg=column)  # θ̂: lme4's ± 1e-6
