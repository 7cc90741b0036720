"""Binomial GLMMs: lme4's cbpp example by Laplace and by adaptive quadrature, and a network
with a random intercept for binary outcomes (the paper's section 6)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

import lmerpy as lp

QUICK = os.environ.get("LMERPY_QUICK") == "1"


def main() -> None:
    cbpp = lp.datasets.load("cbpp")
    g = lp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp,
                 family="binomial")
    print(g.summary())
    g25 = lp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp,
                   family="binomial", nAGQ=25)
    print("AGQ (25 nodes) fixed effects:", g25.fixef().round(4).to_dict())

    rng = np.random.default_rng(3)
    n, q = (2000, 40) if QUICK else (20000, 200)
    X = rng.uniform(-1, 1, (n, 10))
    s = X.sum(1)
    grp = rng.integers(0, q, n)
    eta = s * np.cos(s) + 2 * X[:, 0] * X[:, 1] + rng.normal(size=q)[grp]
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(1, 11)]).assign(
        y=rng.binomial(1, 1 / (1 + np.exp(-eta))), g=grp.astype(str))
    m = lp.glmer("y ~ nn(x1 + ... + x10) + (1 | g)", df, family="binomial", seed=0,
                 verbose=False, batch_size=500, epochs=3 if QUICK else 100)
    print(m.VarCorr())
    print(m.predict(df.head(), type="response").round(3).tolist())


if __name__ == "__main__":
    main()
