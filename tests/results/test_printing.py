"""print(m) is lme4's print.merMod, line for line (tests/reference/lme4_console.R)."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest

import lmerpy as lp
from tests.conftest import read_reference

REF = read_reference("lme4_console.json")


def _data(name: str) -> pd.DataFrame:
    if name == "small":
        return pd.DataFrame(REF["small"])
    if name == "sleep_f":
        sleep = lp.datasets.load("sleepstudy")
        days = sleep.Days.astype(int).astype(str)
        return sleep.assign(fDays=pd.Categorical(days, categories=[str(i) for i in range(10)]))
    return lp.datasets.load(name)


FITS = {
    "reml": ("Reaction ~ Days + (Days | Subject)", {}),
    "ml": ("Reaction ~ Days + (Days | Subject)", {"REML": False}),
    "uncorr": ("Reaction ~ Days + (Days || Subject)", {}),
    "factor": ("Reaction ~ fDays + (1 | Subject)", {}),   # the estimates wrap at 80 columns
    "singular": ("y ~ x + (1 | g)", {}),                   # and lme4's one-line warning
}


@pytest.mark.parametrize("key", list(FITS))
def test_print_is_lme4s_print(key):
    formula, options = FITS[key]
    ref = REF["print"][key]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = lp.lmer(formula, _data(ref["data"]), data_name=ref["data"], **options)
    assert repr(m).splitlines() == ref["lines"]


def test_glmer_print_has_lme4s_lines():
    # the same lines; the numbers to lmerpy's Laplace deviance, which sits ~5e-4 below
    # lme4's (docs/migration.md), so they are compared to 1e-3
    ref = REF["print"]["glmer"]
    m = lp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", _data("cbpp"),
                 family="binomial", data_name="cbpp")
    ours, theirs = repr(m).splitlines(), ref["lines"]
    assert len(ours) == len(theirs)
    number = re.compile(r"-?\d+\.\d+")
    for a, b in zip(ours, theirs):
        assert number.sub("#", a) == number.sub("#", b)
        np.testing.assert_allclose([float(x) for x in number.findall(a)],
                                   [float(x) for x in number.findall(b)], rtol=1e-3)


def test_print_of_a_torch_fit_shows_its_network_and_linear_terms():
    rng = np.random.default_rng(0)
    n = 400
    data = pd.DataFrame({"x": rng.uniform(-1, 1, n), "t": rng.normal(size=n),
                         "g": rng.integers(0, 20, n).astype(str)})
    data["y"] = np.sin(3 * data.x) + 0.5 * data.t + rng.normal(size=20)[data.g.astype(int)] \
        + rng.normal(size=n)
    m = lp.lmer("y ~ nn(x, hidden=(8,)) + t + (1 | g)", data, epochs=2, seed=0,
                verbose=False)
    lines = repr(m).splitlines()
    assert lines[lines.index("Fixed effects (neural network):") + 1] == " nn(x, hidden = (8,))"
    names = lines[lines.index("Linear fixed effects:") + 1].split()
    values = [float(v) for v in lines[lines.index("Linear fixed effects:") + 2].split()]
    assert names == list(m.fixef().index)
    np.testing.assert_allclose(values, m.fixef().to_numpy(), rtol=1e-3)
