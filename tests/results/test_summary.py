"""Printed output equals lme4's (tests/reference/lme4_fits.json holds R's own text)."""

from __future__ import annotations

import warnings

import pytest

import lmerpy as lp
from lmerpy.results.rformat import abbreviate, format_numbers
from tests.conftest import read_reference, reference_data

REF = read_reference("lme4_fits.json")


def _fit(key):
    ref = REF["fits"][key]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lp.lmer(ref["formula"], reference_data(ref["data"]), REML=ref["REML"],
                       weights=ref["weights"], data_name=ref["data"])


def test_sleepstudy_summary_is_lme4s_line_by_line():
    m = _fit("sleep_reml")
    assert m.summary().lines == REF["fits"]["sleep_reml"]["summary"]


# Fits whose every printed digit is stable (no value sits on a rounding edge where the
# optimisers' last digits differ).
STABLE = ["sleep_uncorr", "sleep_quad", "sleep_int", "sleep_offset", "sleep_rankdef",
          "dyestuff_ml", "dyestuff2", "pastes"]


@pytest.mark.parametrize("key", STABLE)
def test_other_summaries_match_lme4(key):
    assert _fit(key).summary().lines == REF["fits"][key]["summary"]


# (pastes and sleep_quad print 6 significant digits where the optimisers' last digits differ)
@pytest.mark.parametrize("key", ["sleep_reml", "sleep_uncorr", "dyestuff2"])
def test_varcorr_print(key):
    assert str(_fit(key).VarCorr()).splitlines() == REF["fits"][key]["varcorr_print"]


def test_summary_renders_html_and_rich():
    m = _fit("sleep_reml")
    html = m.summary()._repr_html_()
    assert "<table>" in html and "Subject" in html and "251.4051" in html
    from rich.console import Console

    console = Console(record=True, width=120)
    console.print(m.summary())
    text = console.export_text()
    assert "REML criterion at convergence: 1743.6" in text
    assert "Random effects" in text and "Fixed effects" in text and "nan" not in text
    assert "│ Residual │" in text and "251.4051" in text


def test_anova_matches_lme4():
    sleep = lp.datasets.load("sleepstudy")
    m0 = lp.lmer("Reaction ~ Days + (1 | Subject)", sleep)
    m1 = lp.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    with pytest.warns(UserWarning, match="refitting model\\(s\\) with ML"):
        a = lp.anova(m0, m1)
    ref = REF["anova"]
    assert a.table["npar"].tolist() == ref["npar"]
    assert a.table["Chisq"].iloc[1] == pytest.approx(ref["Chisq"][1], abs=1e-3)
    assert a.table["Df"].iloc[1] == ref["Df"][1]
    assert a.table["Pr(>Chisq)"].iloc[1] == pytest.approx(ref["p"][1], rel=1e-3)
    assert a.table["logLik"].tolist() == pytest.approx(ref["logLik"], abs=1e-3)
    text = str(a).splitlines()
    # lme4's print line for line (zapsmall() then format, as R: BIC 1814.8505 prints 1814.8),
    # the models named by the caller's variables; the data is `sleep` here
    assert text == ["Data: sleep"] + ref["print"][1:]
    m = lp.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    with pytest.warns(UserWarning):
        assert str(lp.anova(m0, m)).splitlines()[3] == "m: Reaction ~ Days + (Days | Subject)"


@pytest.mark.parametrize("values,digits,nsmall,expected", [
    ([612.1018, 35.0717, 654.9410], 4, 0, ["612.10", " 35.07", "654.94"]),
    ([0.0, 13.81], 4, 0, [" 0.00", "13.81"]),
    ([7.072e-10], 4, 0, ["7.072e-10"]),
    ([1e6], 7, 0, ["1e+06"]),
    ([123456789.0], 7, 0, ["123456789"]),
    ([1.0, -0.138], 7, 3, [" 1.000", "-0.138"]),
    ([78.804], 4, 0, ["78.8"]),
])
def test_r_format(values, digits, nsmall, expected):
    # each expected value is what R 4.2 prints for format(values, digits=, nsmall=)
    assert format_numbers(values, digits, nsmall) == expected


@pytest.mark.parametrize("name,minlength,expected", [
    ("(Intercept)", 6, "(Intr)"), ("I(Days^2)", 6, "I(D^2)"), ("service1", 6, "servc1"),
    ("lectage.L", 6, "lctg.L"), ("studage.Q", 6, "stdg.Q"), ("Sepal.Width", 6, "Spl.Wd"),
    ("(Intercept)", 11, "(Intercept)"), ("Days", 6, "Days"),
])
def test_r_abbreviate(name, minlength, expected):
    # expected values from R's abbreviate()
    assert abbreviate(name, minlength) == expected


def test_jupyter_html_structure_for_every_result():
    """summary, VarCorr and anova render as HTML tables with lme4's headers (lmer and
    glmer); ranef/fixef/coef are pandas objects."""
    import re

    import pandas as pd

    cbpp = lp.datasets.load("cbpp")
    g = lp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp)
    g0 = lp.glmer("cbind(incidence, size - incidence) ~ 1 + (1 | herd)", cbpp)
    html = g._repr_html_()
    headers = re.findall(r"<th>(.*?)</th>", html)
    assert headers == ["Groups", "Name", "Variance", "Std.Dev.", "", "Estimate",
                       "Std. Error", "z value", "Pr(&gt;|z|)"]
    assert "Family: binomial  ( logit )" in html and html.count("<tr>") == 1 + 1 + 1 + 4
    m = _fit("sleep_reml")
    vc = m.VarCorr()._repr_html_()
    assert "<table" in vc and "Subject" in vc and "Residual" in vc
    a = lp.anova(g0, g)._repr_html_()
    assert "<table" in a and "Chisq" in a
    assert isinstance(m.fixef(), pd.Series) and isinstance(m.coef()["Subject"], pd.DataFrame)
    assert isinstance(m.ranef()["Subject"], pd.DataFrame)


def test_anova_of_one_model_twice_prints_no_p_value():
    # 0 degrees of freedom: lme4 prints the p-value blank (tests/reference/lme4_console.R)
    sleepstudy = lp.datasets.load("sleepstudy")
    m0 = lp.lmer("Reaction ~ Days + (1 | Subject)", sleepstudy)
    m1 = lp.lmer("Reaction ~ Days + (1 | Subject)", sleepstudy)
    with pytest.warns(UserWarning, match="refitting"):
        text = str(lp.anova(m0, m1)).splitlines()
    assert text == read_reference("lme4_console.json")["anova_same"]


def test_network_layers_wrap_before_an_arrow_at_80_columns():
    """The paper's architecture in the nn block: lines of at most 80 columns, broken only
    before an arrow, which put back together give the description."""
    from lmerpy.results.summary import _arrow_lines

    layers = " -> ".join(f"Linear({a}, {b}) -> ReLU -> Dropout(0.25)"
                         for a, b in ((10, 100), (100, 50), (50, 25), (25, 12)))
    layers += " -> Linear(12, 1)"
    lines = _arrow_lines("   layers: ", layers)
    assert len(lines) == 3 and all(len(line) <= 80 for line in lines)
    assert all(line.startswith(" " * 11 + "-> ") for line in lines[1:])
    assert " ".join(line.strip() for line in lines) == "layers: " + layers
    assert _arrow_lines("   layers: ", "MyNet()") == ["   layers: MyNet()"]


def test_anova_without_refit_compares_reml_criteria():
    """anova(m0, m1, refit = FALSE): the REML fits as they are, no warning; lme4's table."""
    sleepstudy = lp.datasets.load("sleepstudy")
    m0 = lp.lmer("Reaction ~ Days + (1 | Subject)", sleepstudy)
    m_slope = lp.lmer("Reaction ~ Days + (Days | Subject)", sleepstudy)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        text = str(lp.anova(m0, m_slope, refit=False)).splitlines()
    assert text == read_reference("lme4_console.json")["anova_reml"]
    with pytest.raises(lp.ModelError, match="refit must be True or False"):
        lp.anova(m0, m_slope, refit="no")
