"""Reaction times with a Gamma GLMM: subjects crossed with items, the dispersion estimated
inside the likelihood (as glmmTMB; not lme4 1.1's after-the-fact estimate), the condition
effect as a ratio of means, profile intervals — then a network for a non-linear effect of
the trial number."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

import lmerpy as lp

QUICK = os.environ.get("LMERPY_QUICK") == "1"


def simulate(seed: int = 1) -> pd.DataFrame:
    """30 subjects × 20 items; log μ = 6.3 + 0.12·[cond = b] + fatigue(trial) + subject +
    item, subject sd 0.25, item sd 0.15, Gamma with shape 8 (φ = 0.125)."""
    rng = np.random.default_rng(seed)
    d = pd.DataFrame([(f"s{s:02d}", f"i{i:02d}") for s in range(30) for i in range(20)],
                     columns=["subject", "item"])
    d["cond"] = rng.choice(["a", "b"], len(d))
    d["trial"] = rng.uniform(0, 1, len(d)).round(3)
    fatigue = 0.3 * np.sin(3 * d.trial)  # faster, then slower again
    eta = (6.3 + 0.12 * (d.cond == "b") + fatigue
           + rng.normal(0, 0.25, 30)[d.subject.str[1:].astype(int)]
           + rng.normal(0, 0.15, 20)[d.item.str[1:].astype(int)])
    d["rt"] = rng.gamma(8.0, np.exp(eta) / 8.0).round(1)
    return d


def main() -> None:
    rt = simulate()
    m = lp.glmer("rt ~ cond + trial + (1 | subject) + (1 | item)", rt, family="Gamma",
                 link="log")
    print(m.summary())
    print(lp.emmeans(m, "pairwise ~ cond", type="response"))   # b / a as a ratio of means
    if not QUICK:  # profile intervals, the dispersion's (.sigma) among them
        print(m.confint())
    # the trial effect is not linear on the log scale: a network learns its shape, with both
    # crossed factors (the torch engine integrates each batch's random effects by the
    # Laplace approximation)
    nn = lp.glmer("rt ~ cond + nn(trial, hidden=(16, 8), dropout=0.0) + (1 | subject) "
                  "+ (1 | item)", rt, family="Gamma", link="log", seed=0, verbose=False,
                  epochs=5 if QUICK else 80, batch_size=200)
    print(nn.VarCorr(), f"dispersion {nn.dispersion:.4f}", sep="\n")
    print("log-likelihood: linear trial", round(float(m.logLik()), 1),
          "| network", round(float(nn.logLik()), 1))


if __name__ == "__main__":
    main()
