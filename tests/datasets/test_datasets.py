"""Embedded data sets: same rows and R factor levels as the lme4 exports."""

from __future__ import annotations

import pandas as pd
import pytest

import lmerpy as lp

SHAPES = {"sleepstudy": (180, 3), "Dyestuff": (30, 2), "Dyestuff2": (30, 2),
          "Penicillin": (144, 3), "Pastes": (60, 4), "cbpp": (56, 4), "InstEval": (73421, 7)}


@pytest.mark.parametrize("name", lp.datasets.names())
def test_shapes(name):
    assert lp.datasets.load(name).shape == SHAPES[name]


def test_factor_levels_in_R_order():
    inst = lp.datasets.load("InstEval")
    assert list(inst.dept.cat.categories[:3]) == ["15", "5", "10"]  # R's order, not sorted
    assert inst.studage.cat.ordered
    sleep = lp.datasets.load("sleepstudy")
    assert list(sleep.Subject.cat.categories[:3]) == ["308", "309", "310"]
    assert sleep.Reaction.dtype == float
    assert isinstance(lp.datasets.load("cbpp").period.dtype, pd.CategoricalDtype)


def test_unknown_data_set():
    with pytest.raises(lp.LmerpyError, match="unknown data set 'nope'"):
        lp.datasets.load("nope")
