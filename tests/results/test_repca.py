"""rePCA (results/repca.py) against lme4's rePCA() on the same models
(tests/reference/lme4_repca.R): the components of the fitted models, and the printed and
summarised output, exactly, from lme4's own θ."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import lmerpy as lp
from lmerpy.results.repca import repca
from tests.conftest import read_reference

REF = read_reference("lme4_repca.json")


def _fit(case: dict):
    data = lp.datasets.load(case["data"])
    if case.get("family"):
        return lp.glmer(case["formula"], data, family=case["family"])
    return lp.lmer(case["formula"], data)


def _aligned(ours: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    """Our rotation with each column's sign turned to lme4's (an SVD's signs are arbitrary)."""
    signs = np.sign(np.sum(ours * theirs, axis=0))
    return ours * np.where(signs == 0, 1.0, signs)


@pytest.mark.parametrize("name", list(REF))
def test_components_of_the_fit_agree_with_lme4(name):
    case = REF[name]
    m = _fit(case)
    # lme4 1.1-31 stops short on the quadratic model ("failed to converge", max|grad|
    # 0.026); a GLMM's θ̂ agrees with lme4's to about 1e-3 (tests/engines/test_glmm.py)
    tol = {"quadratic": 3e-3, "glmer": 1e-3}.get(name, 1e-4)
    pcas = m.rePCA()
    assert list(pcas) == [g["group"] for g in case["groups"]]
    for g in case["groups"]:
        ours = pcas[g["group"]]
        sdev = np.atleast_1d(g["sdev"])
        np.testing.assert_allclose(ours.sdev, sdev, rtol=tol, atol=1e-6)
        theirs = np.array(g["rotation"], dtype=float).reshape(len(sdev), -1)
        np.testing.assert_allclose(_aligned(ours.rotation, theirs), theirs, atol=tol)
        importance = np.array(g["importance"], dtype=float).reshape(3, -1)
        np.testing.assert_allclose(ours.importance().to_numpy(), importance, rtol=tol,
                                   atol=1e-5)


@pytest.mark.parametrize("name", list(REF))
def test_printed_as_lme4_from_its_theta(name):
    """From lme4's θ, print(rePCA(m)) and print(summary(rePCA(m))) line for line (R's
    trailing attr(,"class") lines of the printed list are not reproduced)."""
    case = REF[name]
    d = _fit(case).design
    theta = np.asarray(case["theta"], dtype=float)
    pcas = repca([(r.group, list(r.names), r.cov.template(th))
                  for r, th in zip(d.random, d.split_theta(theta))])
    printed = case["printed"]
    assert printed[-2:] == ['attr(,"class")', '[1] "prcomplist"']
    assert repr(pcas).split("\n") == printed[:-2]
    assert repr(pcas.summary()).split("\n") == case["summary"]


def test_tlist_and_the_refusals():
    sleep = lp.datasets.load("sleepstudy")
    m = lp.lmer("Reaction ~ Days + (Days | Subject)", sleep)
    T = m.getME("Tlist")["Subject"]
    np.testing.assert_allclose(T[[0, 1, 1], [0, 0, 1]], m.theta)  # θ: the lower triangle
    # Λ = I ⊗ T: the component sds are T's singular values
    np.testing.assert_allclose(m.rePCA()["Subject"].sdev, np.linalg.svd(T)[1])
    rng = np.random.default_rng(0)
    spatial = pd.DataFrame({"y": rng.normal(size=60), "a": rng.integers(0, 6, 60),
                            "b": rng.integers(0, 5, 60)})
    with pytest.raises(lp.ModelError, match="rePCA\\(\\) needs a grouped random term"):
        lp.lmer("y ~ 1 + rbf(a, b)", spatial).rePCA()
