"""Warnings name the user's line: lmerpy's warnings are attributed to the first frame outside
the package, whatever the depth of the code that found the problem (errors.warn)."""

from __future__ import annotations

import contextlib
import inspect
import warnings

import numpy as np
import pandas as pd
import pytest

import lmerpy as lp

SLEEP = lp.datasets.load("sleepstudy")


@contextlib.contextmanager
def _recorded():
    """Every warning of the block, as a list."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught


def _next_line() -> int:
    """The line after the caller's: where the call under test is."""
    return inspect.currentframe().f_back.f_lineno + 1


def _assert_here(caught, line: int, category: type[Warning], text: str) -> None:
    hits = [w for w in caught if issubclass(w.category, category) and text in str(w.message)]
    assert hits, [str(w.message) for w in caught]
    for w in hits:
        assert (w.filename, w.lineno) == (__file__, line), (w.filename, w.lineno)


def test_missing_values_warning_names_the_callers_line():
    data = SLEEP.assign(Days=np.where(np.arange(len(SLEEP)) == 3, np.nan, SLEEP.Days))
    with _recorded() as caught:
        line = _next_line()
        lp.lmer("Reaction ~ Days + (1 | Subject)", data)
    _assert_here(caught, line, UserWarning, "1 row(s) dropped")


def test_singular_fit_warning_names_the_callers_line_from_either_engine():
    dyestuff2 = lp.datasets.load("Dyestuff2")
    with _recorded() as caught:
        line = _next_line()
        lp.lmer("Yield ~ 1 + (1 | Batch)", dyestuff2)
    _assert_here(caught, line, lp.SingularFitWarning, "boundary (singular) fit")
    # the torch engine's exact refinement of θ warns from two levels deeper
    with _recorded() as caught:
        line = _next_line()
        lp.lmer("Yield ~ 1 + (1 | Batch)", dyestuff2, engine="torch", epochs=3, verbose=False)
    _assert_here(caught, line, lp.SingularFitWarning, "boundary (singular) fit")


def test_warnings_from_inside_an_optimisers_callback_name_the_callers_line():
    """glmer_nb's refits run inside scipy's Brent minimiser: their warnings (here R's
    'non-integer x' for counts of 0.5, 1.5, ...) still name the user's line, not scipy's."""
    rng = np.random.default_rng(1)
    d = pd.DataFrame({"g": np.repeat(np.arange(10), 10).astype(str), "x": rng.normal(size=100)})
    d["y"] = rng.poisson(3, 100) + 0.5
    with _recorded() as caught:
        line = _next_line()
        lp.glmer_nb("y ~ x + (1 | g)", d)
    _assert_here(caught, line, UserWarning, "non-integer counts for the negative binomial")
    with _recorded() as caught:
        line = _next_line()
        lp.glmer("y ~ x + (1 | g)", d, family="poisson")
    _assert_here(caught, line, UserWarning, "non-integer counts for the Poisson family "
                                            "(100 rows, e.g. row 0: 5.5)")


def test_warnings_of_results_and_of_the_formula_name_the_callers_line():
    m0 = lp.lmer("Reaction ~ Days + (1 | Subject)", SLEEP)
    m1 = lp.lmer("Reaction ~ Days + (Days | Subject)", SLEEP)
    with _recorded() as caught:
        line = _next_line()
        lp.anova(m0, m1)
    _assert_here(caught, line, UserWarning, "refitting model(s) with ML")
    floats = pd.DataFrame({"y": np.arange(12.0) % 5, "g": np.repeat([0.5, 1.5, 2.5], 4)})
    with _recorded() as caught:
        line = _next_line()
        lp.lmer("y ~ 1 + (1 | g)", floats)
    _assert_here(caught, line, UserWarning, "holds floats")


def test_a_filter_by_module_matches_the_caller():
    data = SLEEP.assign(Days=np.where(np.arange(len(SLEEP)) == 3, np.nan, SLEEP.Days))
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.filterwarnings("error", message="1 row", module=__name__)
        with pytest.raises(UserWarning, match="dropped because of missing values"):
            lp.lmer("Reaction ~ Days + (1 | Subject)", data)
