"""lp.Anova: car's type II and III Wald χ² and Kenward-Roger F tests of each fixed-effect
term, against car 3.1-1's tables (tests/reference/car_anova.R)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

import lmerpy as lp
from tests.conftest import read_reference, same_printed_line

REF = read_reference("car_anova.json")
DATA = pd.DataFrame(REF["data"])
SLEEP = lp.datasets.load("sleepstudy")
FITS = {
    "sleep": lambda: lp.lmer("Reaction ~ Days + (Days | Subject)", SLEEP),
    "sleep_ml": lambda: lp.lmer("Reaction ~ Days + I(Days^2) + (Days | Subject)", SLEEP,
                                REML=False),
    "factors": lambda: lp.lmer("y ~ A * B + x + (1 | g)", DATA),
    "factor_by_number": lambda: lp.lmer("y ~ A * x + (1 | g)", DATA),
    "sum_coded": lambda: lp.lmer("y ~ C(A, contr.sum) * C(B, contr.sum) + x + (1 | g)", DATA),
    "binomial": lambda: lp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                                 lp.datasets.load("cbpp"), family="binomial", nAGQ=25),
}
TABLES = {"II": {}, "III": {"type": "III"}, "II_F": {"test_statistic": "F"},
          "III_F": {"type": 3, "test_statistic": "F"}}
CASES = [(fit, table) for fit in FITS for table in TABLES if table in REF["fits"][fit]]


@pytest.fixture(scope="module")
def fits():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {name: make() for name, make in FITS.items()}


@pytest.mark.parametrize("fit, table", CASES, ids=[f"{f}-{t}" for f, t in CASES])
def test_tables_are_cars(fits, fit, table):
    """Statistics and df to 1e-5 (p-values below 1e-12 absolutely), printed line for line;
    where the fits agree with lme4's to about 1e-5 only (the ML fit's intercept χ² of 1213,
    the GLMM) each printed number is within one unit of its last digit."""
    ref = REF["fits"][fit][table]
    got = lp.Anova(fits[fit], **TABLES[table])
    assert list(got.table.index) == list(np.atleast_1d(ref["rows"]))
    for column, values in ref["columns"].items():
        values = np.atleast_1d(np.array(values, dtype=float))
        rtol = 1e-4 if fit in ("sleep_ml", "binomial") else 1e-5
        if column.startswith("Pr") and fit == "binomial":
            rtol = 1e-3  # a χ² of 25 to 2e-5: its p-value moves 25 times as much
        np.testing.assert_allclose(got.table[column].to_numpy(dtype=float), values,
                                   rtol=rtol, atol=1e-12 if column.startswith("Pr") else 0,
                                   err_msg=column)
    ours, theirs = str(got).splitlines(), ref["lines"]
    if fit in ("sleep_ml", "binomial"):
        assert len(ours) == len(theirs)
        assert all(same_printed_line(a, b) for a, b in zip(ours, theirs)), (ours, theirs)
    else:
        assert ours == theirs


def test_type3_chisq_is_the_wald_test_of_the_terms_columns(fits):
    """Closed form: one column per term, so each χ² is (β̂ / SE)²."""
    m = fits["sleep"]
    z = m.fixef() / np.sqrt(np.diag(m.vcov()))
    table = lp.Anova(m, type=3).table
    np.testing.assert_allclose(table["Chisq"], z.to_numpy() ** 2, rtol=1e-12)
    np.testing.assert_allclose(table["Pr(>Chisq)"], st.chi2.sf(z.to_numpy() ** 2, 1),
                               rtol=1e-10)


def test_type2_of_an_additive_model_equals_type3(fits):
    """Without interactions no term has relatives: types II and III test the same
    hypotheses (but for the intercept)."""
    m = fits["sleep_ml"]
    two, three = lp.Anova(m).table, lp.Anova(m, type=3).table
    pd.testing.assert_frame_equal(two, three.drop(index="(Intercept)"))


def test_bad_requests_are_refused(fits):
    with pytest.raises(lp.ModelError, match="type must be 'II' or 'III'"):
        lp.Anova(fits["sleep"], type="I")
    with pytest.raises(lp.ModelError, match="test_statistic must be"):
        lp.Anova(fits["sleep"], test_statistic="LR")
    with pytest.raises(lp.ModelError, match="fitted by REML"):
        lp.Anova(fits["sleep_ml"], test_statistic="F")
    with pytest.raises(lp.ModelError, match="fitted by REML"):
        lp.Anova(fits["binomial"], test_statistic="F")


def test_torch_linear_fits_get_wald_chisq_tests():
    """A torch fit without nn() terms has coefficients and their covariance: the same Wald
    tests apply; it fits by ML, so it matches the exact engine's ML fit (to the torch
    engine's 2% agreement with it)."""
    data = DATA
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch_fit = lp.lmer("y ~ A * x + (1 | g)", data, engine="torch", verbose=False,
                            seed=0)
        exact_ml = lp.lmer("y ~ A * x + (1 | g)", data, REML=False)
    ours, exact = lp.Anova(torch_fit).table, lp.Anova(exact_ml).table
    np.testing.assert_allclose(ours["Chisq"], exact["Chisq"], rtol=0.05)
    with pytest.raises(lp.ModelError, match="fitted by REML"):
        lp.Anova(torch_fit, test_statistic="F")
