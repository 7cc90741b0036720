"""Longitudinal data: a network for the covariates, and correlated random intercepts,
slopes and quadratic terms in time per subject (the paper's Table 3 setting)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

import lmerpy as lp

QUICK = os.environ.get("LMERPY_QUICK") == "1"


def main() -> None:
    rng = np.random.default_rng(1)
    subjects, per = (60, 8) if QUICK else (1000, 10)
    n = subjects * per
    subject = np.repeat(np.arange(subjects), per)
    t = np.tile(np.linspace(0, 1, per), subjects)
    X = rng.uniform(-1, 1, (n, 5))
    C = np.array([[1.0, 0.3, 0.3], [0.3, 1.0, 0.0], [0.3, 0.0, 1.0]])
    b = rng.multivariate_normal(np.zeros(3), C, size=subjects)
    y = (np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2] + b[subject, 0] + b[subject, 1] * t
         + b[subject, 2] * t**2 + rng.normal(scale=0.5, size=n))
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(1, 6)]).assign(
        y=y, t=t, subject=subject.astype(str))
    m = lp.lmer("y ~ nn(x1 + ... + x5, hidden=(32, 16)) + (1 + t + I(t^2) | subject)", df,
                seed=0, verbose=False, epochs=3 if QUICK else 60)
    print(m.VarCorr())
    future = df.groupby("subject").tail(1).assign(t=1.2)
    print(m.predict(future).head())


if __name__ == "__main__":
    main()
