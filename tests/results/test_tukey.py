"""The studentized range distribution (results/tukey.py) against R's ptukey and qtukey
(tests/reference/emmeans.R) and a closed form."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as st

from lmerpy.results.tukey import ptukey, qtukey
from tests.conftest import read_reference

REF = read_reference("emmeans.json")


@pytest.mark.parametrize("case", REF["tukey"], ids=lambda c: f"k{c['nmeans']:.3g}-df{c['df']}")
def test_ptukey_and_qtukey_are_rs(case):
    """The same quadrature as R's: to 1e-12 (df up to 25,000 through the mixture, beyond
    it the range of normal means itself); the quantile to 1e-7, R's qtukey stopping when
    its steps fall under 1e-4 (lmerpy's bisection goes to 1e-11)."""
    df = np.inf if case["df"] == "Inf" else float(case["df"])
    np.testing.assert_allclose(ptukey(REF["tukey_q"], case["nmeans"], df), case["p"],
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(qtukey(0.95, case["nmeans"], df), case["q95"], rtol=1e-7)


@pytest.mark.parametrize("df", [3.0, 40.0, np.inf])
def test_two_means_are_a_t_test(df):
    """Closed form: the range of two means over its standard error is |t|·√2."""
    q = np.array([0.3, 1.0, 2.0, 4.0, 7.0])
    np.testing.assert_allclose(ptukey(q, 2, df), 2 * st.t.cdf(q / np.sqrt(2), df) - 1,
                               atol=1e-9)


def test_vectorized_over_df_and_edges():
    df = np.array([10.0, 200.0, 3000.0])
    one_at_a_time = [ptukey(3.0, 4, d)[0] for d in df]
    np.testing.assert_allclose(ptukey(3.0, 4, df), one_at_a_time, rtol=0, atol=0)
    assert ptukey(0.0, 3, 10)[0] == 0.0 and ptukey(np.inf, 3, 10)[0] == 1.0
    assert ptukey(40.0, 3, 10)[0] == pytest.approx(1.0, abs=1e-9)
