"""anova(m) of one model: lmerTest's type III and I F-tests with Satterthwaite's df, and lme4's
own table, against lmerTest's and lme4's numbers and printed tables
(tests/reference/lmertest.R); the contrasts against closed forms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lmerpy as lp
from lmerpy.results.contrasts import type1_contrasts
from tests.conftest import as_list, read_reference

REF = read_reference("lmertest.json")
DATA = pd.DataFrame(REF["anova_data"]).assign(
    O=lambda d: pd.Categorical(d.O, categories=["a1", "a2", "a3"], ordered=True))
FITS = {"factors": ("y ~ A * B + x + (1 | g)", DATA),
        "factor_by_number": ("y ~ A * x + (1 | g)", DATA),
        "logical": ("y ~ L + A + (1 | g)", DATA),
        "sleep_quad": ("Reaction ~ Days + I(Days^2) + (Days | Subject)", "sleepstudy"),
        "sleep": ("Reaction ~ Days + (Days | Subject)", "sleepstudy"),
        "ordered": ("y ~ O * B + x + (1 | g)", DATA),
        "sum_coded": ("y ~ C(A, contr.sum) * x + (1 | g)", DATA)}
KINDS = {"type3": (lp.anova, {}), "type1": (lp.anova, {"type": 1}),
         "lme4": (lp.anova, {"ddf": "lme4"}),
         "type3_kr": (lp.anova, {"ddf": "Kenward-Roger"}),
         "type1_kr": (lp.anova, {"type": 1, "ddf": "Kenward-Roger"}),
         "drop1": (lp.drop1, {"ddf": "Satterthwaite"}),
         "drop1_kr": (lp.drop1, {"ddf": "Kenward-Roger"})}


def _fit(key):
    formula, data = FITS[key]
    return lp.lmer(formula, lp.datasets.load(data) if isinstance(data, str) else data)


@pytest.mark.parametrize("key", list(FITS))
@pytest.mark.parametrize("kind", list(KINDS))
def test_single_model_anova_is_lmertests(key, kind):
    """anova(m) (types III and I, Satterthwaite's and Kenward-Roger's df), lme4's anova(m),
    and lmerTest's drop1(m): numbers and printed tables."""
    ref = REF["anovas"][key][kind]
    test, options = KINDS[kind]
    a = test(_fit(key), **options)
    assert list(a.table.index) == as_list(ref["rows"])
    for column, values in ref["columns"].items():
        np.testing.assert_allclose(a.table[column].to_numpy(dtype=float),
                                   np.array(as_list(values), dtype=float), rtol=1e-5)
    assert str(a).splitlines() == ref["lines"]


def test_one_df_f_test_is_the_squared_t_test():
    """Closed form: a term of one coefficient has F = t² on Satterthwaite's df of that t."""
    m = _fit("sleep_quad")
    coef = m.summary(ddf="Satterthwaite").coefficients
    a = lp.anova(m).table
    for term in ("Days", "I(Days^2)"):
        assert a.loc[term, "F value"] == pytest.approx(coef.loc[term, "t value"] ** 2,
                                                       rel=1e-10)
        assert a.loc[term, "DenDF"] == pytest.approx(coef.loc[term, "df"], rel=1e-10)
        assert a.loc[term, "Pr(>F)"] == pytest.approx(coef.loc[term, "Pr(>|t|)"], rel=1e-8)


def test_type1_contrasts_are_sequential():
    """X'X = L U with L unit lower-triangular: a term's rows of t(L) test its coefficients
    adjusted for the terms before it (here: the identity where X is orthogonal)."""
    X = np.column_stack([np.ones(4), [-1, 1, -1, 1], [-1, -1, 1, 1]])
    L = type1_contrasts(X, ["(Intercept)", "a", "b"], ["a", "b"])
    np.testing.assert_array_equal(L["a"], [[0, 1, 0]])
    np.testing.assert_array_equal(L["b"], [[0, 0, 1]])


def test_single_model_anova_refuses_what_it_cannot_test():
    m = _fit("factors")
    with pytest.raises(lp.ModelError, match="type must be 3 or 1"):
        lp.anova(m, type=2)
    with pytest.raises(lp.ModelError, match="ddf must be 'Satterthwaite', 'Kenward-Roger'"):
        lp.anova(m, ddf="KR")
    g = lp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                 lp.datasets.load("cbpp"))
    with pytest.raises(lp.ModelError, match="compare GLMMs by anova\\(m0, m1\\)"):
        lp.drop1(g, ddf="Satterthwaite")


def test_single_glmer_anova_is_lme4s():
    """lme4's anova(g) of a glmer fit: (R_X β)² by term, σ = 1 (within the 1e-3 at which
    lmerpy's glmer estimates meet lme4's, tests/engines/test_glmm.py)."""
    ref = REF["glmer_anova"]
    g = lp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                 lp.datasets.load("cbpp"))
    a = lp.anova(g)
    assert list(a.table.index) == as_list(ref["rows"])
    for column, values in ref["columns"].items():
        np.testing.assert_allclose(a.table[column].to_numpy(dtype=float),
                                   np.array(as_list(values), dtype=float), rtol=1e-3)
    assert str(a).splitlines()[:2] == ref["lines"][:2]
