"""Z and Λ(θ) agree with lme4's getME(fit, "Zt") / getME(fit, "Lambda") (tests/reference)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

import lmerpy as lp
from tests.conftest import read_reference

REF = read_reference("lme4_structures.json")["structures"]


def _vec(value) -> list:
    """jsonlite writes length-1 vectors as scalars."""
    return value if isinstance(value, list) else [value]


def _dense(triplets) -> np.ndarray:
    m = sp.coo_matrix((triplets["x"], (triplets["i"], triplets["j"])),
                      shape=tuple(triplets["dim"]))
    return m.toarray()


@pytest.mark.parametrize("ref", REF, ids=[r["formula"] for r in REF])
def test_Z_matches_lme4(ref):
    d = lp.design(ref["formula"], lp.datasets.load(ref["data"]))
    Zt = d.Z.T.tocsr()
    assert Zt.shape == tuple(ref["Zt"]["dim"])
    assert Zt.nnz == len(ref["Zt"]["x"])
    np.testing.assert_allclose(Zt.toarray(), _dense(ref["Zt"]), rtol=0, atol=1e-12)
    # row names of Zt are the levels, in lme4's order, per term
    names = [lvl for r in d.random for lvl in r.levels for _ in range(r.p)]
    assert names == ref["Zt_rownames"]


@pytest.mark.parametrize("ref", REF, ids=[r["formula"] for r in REF])
def test_Lambda_matches_lme4(ref):
    d = lp.design(ref["formula"], lp.datasets.load(ref["data"]))
    theta = np.asarray(_vec(ref["theta"]), dtype=float)
    Lam = d.Lambda(theta)
    np.testing.assert_allclose(Lam.toarray(), _dense(ref["Lambda"]), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(d.theta_lower(), np.asarray(
        [-np.inf if v == "-Inf" else v for v in _vec(ref["lower"])], dtype=float))
    np.testing.assert_array_equal(d.theta0()[d.theta_lower() == 0], 1.0)


@pytest.mark.parametrize("ref", REF, ids=[r["formula"] for r in REF])
def test_term_names_match_lme4(ref):
    d = lp.design(ref["formula"], lp.datasets.load(ref["data"]))
    assert [r.group for r in d.random] == _vec(ref["cnms_groups"])
    assert [r.names for r in d.random] == [_vec(c) for c in ref["cnms"].values()]
    ours = d.theta_names()
    assert ours == _vec(ref["theta_names"])
    assert d.X_names == _vec(ref["X_colnames"])
