"""PBmodcomp(): pbkrtest's parametric bootstrap LRT (tests/reference/pbkrtest_pbmodcomp.R).
Its tests of a given bootstrap sample are pbkrtest's to the digit; lmerpy's own samples
(numpy's draws, not R's) follow the same distribution as pbkrtest's."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

import lmerpy as lp
from lmerpy.pbmodcomp import pb_tests
from tests.conftest import read_reference

REF = read_reference("pbkrtest_pbmodcomp.json")
FAC = pd.DataFrame(REF["data_fac"]).assign(g=lambda d: d.g.astype(str))
DATA = {"sleepstudy": lp.datasets.load("sleepstudy"), "fac": FAC,
        "cbpp": lp.datasets.load("cbpp")}


def _models(spec):
    d = DATA[spec["data"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if "family" in spec:
            return (lp.glmer(spec["large"], d, family=spec["family"]),
                    lp.glmer(spec["small"], d, family=spec["family"]))
        return lp.lmer(spec["large"], d), lp.lmer(spec["small"], d)


@pytest.mark.parametrize("case", ["slopes", "fixed", "glmm"])
def test_tests_of_pbkrtests_sample_are_pbkrtests(case):
    spec = REF[case]
    test, _ = pb_tests(spec["tobs"], spec["df"], np.array(spec["ref"]))
    t = spec["test"]
    assert list(test.index) == t["rows"]
    want = {k: np.array([np.nan if v is None else v for v in t[k]], dtype=float)
            for k in ("stat", "df", "ddf", "p")}
    np.testing.assert_allclose(test["stat"], want["stat"], rtol=1e-10)
    np.testing.assert_allclose(test["df"], want["df"], rtol=1e-12)
    np.testing.assert_allclose(test["ddf"], want["ddf"], rtol=1e-10)
    # R's 1 − pchisq loses digits below 1e-15; lmerpy takes the upper tail directly
    np.testing.assert_allclose(test["p.value"], want["p"], rtol=1e-8, atol=1e-14)


@pytest.mark.parametrize("case, nsim", [("slopes", 200), ("fixed", 300)])
def test_bootstrap_distribution_is_pbkrtests(case, nsim):
    spec = REF[case]
    large, small = _models(spec)
    pb = lp.PBmodcomp(large, small, nsim=nsim, seed=3)
    assert pb.test.loc["LRT", "stat"] == pytest.approx(spec["tobs"], rel=1e-6)
    assert pb.test.loc["LRT", "df"] == spec["df"]
    theirs = np.array(spec["ref"])
    # two samples of the same statistic under the same fitted small model
    assert st.ks_2samp(pb.ref, theirs).pvalue > 1e-3
    se = np.sqrt(pb.ref.var() / nsim + theirs.var() / len(theirs))
    assert abs(pb.ref.mean() - theirs.mean()) < 4 * se
    p_pb, p_r = pb.test.loc["PBtest", "p.value"], spec["test"]["p"][1]
    assert abs(p_pb - p_r) < 4 * np.sqrt(p_r * (1 - p_r) / nsim) + 2 / nsim


def test_anova_agrees_and_print_is_pbkrtests():
    large, small = _models(REF["fixed"])
    pb = lp.PBmodcomp(large, small, nsim=20, seed=1)
    chisq = lp.anova(small, large).table["Chisq"].iloc[1]
    assert pb.test.loc["LRT", "stat"] == pytest.approx(chisq, rel=1e-8)
    lines = str(pb).splitlines()
    assert lines[0].startswith("Bootstrap test; time: ")
    assert lines[0].endswith(f"samples: 20; extremes: {pb.n_extreme};")
    assert lines[1:3] == ["large : y ~ A * x + B + (1 | g)", "small : y ~ A * x + (1 | g)"]
    assert [line.split()[0] for line in lines[4:9]] == ["LRT", "PBtest", "Gamma", "Bartlett",
                                                        "F"]
    # the same seed, the same draws
    assert np.array_equal(lp.PBmodcomp(large, small, nsim=20, seed=1).ref, pb.ref)


def test_glmm_models():
    large, small = _models(REF["glmm"])
    pb = lp.PBmodcomp(large, small, nsim=10, seed=1)
    assert pb.test.loc["LRT", "stat"] == pytest.approx(REF["glmm"]["tobs"], rel=2e-4)
    assert (pb.ref > -1e-6).all() and pb.ref.max() < REF["glmm"]["tobs"]


def test_bad_arguments():
    large, small = _models(REF["fixed"])
    with pytest.raises(lp.ModelError, match="must have more parameters"):
        lp.PBmodcomp(small, large, nsim=10)
    with pytest.raises(lp.ModelError, match="same rows"):
        lp.PBmodcomp(large, lp.lmer("y ~ A * x + (1 | g)", FAC.iloc[:100]), nsim=10)
    with pytest.raises(lp.ModelError, match="nsim must be"):
        lp.PBmodcomp(large, small, nsim=1)
    g = _models(REF["glmm"])[1]
    with pytest.raises(lp.ModelError, match="same family"):
        lp.PBmodcomp(large, g, nsim=10)
