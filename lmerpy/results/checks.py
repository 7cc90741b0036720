"""Model checks of R's performance package: ``check_overdispersion`` (the Pearson χ² of a
count or binomial-trials GLMM against its residual df)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as st

from ..errors import ModelError
from .rformat import format_number


@dataclass(frozen=True, repr=False)
class Overdispersion:
    """Σ (Pearson residual)², its ratio to the residual df, and the χ² test's p-value."""

    chisq: float
    ratio: float
    df: int
    p_value: float

    def __str__(self) -> str:
        ratio, chisq = f"{self.ratio:.3f}", f"{self.chisq:.3f}"
        rounded = round(self.p_value, 3)
        p = "< 0.001" if rounded < 0.001 else format_number(rounded).strip()
        w = max(len(ratio), len(chisq), len(p))
        verdict = "No overdispersion detected." if rounded > 0.05 else \
            "Overdispersion detected."
        return "\n".join(["# Overdispersion test", "",
                          f"       dispersion ratio = {ratio.rjust(w)}",
                          f"  Pearson's Chi-Squared = {chisq.rjust(w)}",
                          f"                p-value = {p.rjust(w)}", "", verdict])

    def __repr__(self) -> str:
        return str(self)


def check_overdispersion(m) -> Overdispersion:
    """performance's ``check_overdispersion(m)`` for a Poisson GLMM or a binomial one with
    more than one trial per row: the sum of squared Pearson residuals (conditional on the
    random effects, as lme4's) against χ² on the residual df (observations less fixed
    effects and covariance parameters)."""
    family = m.family
    if family is None or family.family not in ("poisson", "binomial"):
        raise ModelError("check_overdispersion() is for Poisson GLMMs and binomial ones with "
                         "more than one trial per row")
    if family.family == "binomial" and np.all(np.asarray(m.fit.prior_weights) == 1):
        raise ModelError("check_overdispersion() cannot test a Bernoulli (0/1) response")
    chisq = float(np.sum(m.residuals(type="pearson").to_numpy() ** 2))
    df = m.df_resid
    return Overdispersion(chisq, chisq / df, df, float(st.chi2.sf(chisq, df)))


__all__ = ["Overdispersion", "check_overdispersion"]
