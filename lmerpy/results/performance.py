"""R's performance package: ``check_overdispersion`` (the Pearson χ² of a count or
binomial-trials GLMM against its residual df) and ``model_performance`` (the indices of
fit in one table)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as st

from ..errors import ModelError
from .rformat import format_number
from .variance_parts import PrintedResult, icc, r2_nakagawa


@dataclass(frozen=True, repr=False)
class Overdispersion(PrintedResult):
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


def check_overdispersion(m) -> Overdispersion:
    """performance's ``check_overdispersion(m)`` for a Poisson or negative binomial GLMM or
    a binomial one with more than one trial per row: the sum of squared Pearson residuals
    (conditional on the random effects, as lme4's; the negative binomial's V = μ + μ²/θ̂)
    against χ² on the residual df (observations less fixed effects and covariance
    parameters, θ̂ among them)."""
    family = m.family
    if family is None or family.family not in ("poisson", "binomial", "negative.binomial"):
        raise ModelError("check_overdispersion() is for Poisson and negative binomial GLMMs "
                         "and binomial ones with more than one trial per row")
    if family.family == "binomial" and np.all(np.asarray(m.fit.prior_weights) == 1):
        raise ModelError("check_overdispersion() cannot test a Bernoulli (0/1) response")
    chisq = float(np.sum(m.residuals(type="pearson").to_numpy() ** 2))
    df = m.df_resid
    return Overdispersion(chisq, chisq / df, df, float(st.chi2.sf(chisq, df)))


@dataclass(frozen=True, repr=False)
class Performance(PrintedResult):
    """performance's indices of model performance, by name, and their printed table."""

    indices: dict[str, float]

    LABELS = {"AIC": "AIC", "AICc": "AICc", "BIC": "BIC", "R2_conditional": "R2 (cond.)",
              "R2_marginal": "R2 (marg.)", "ICC": "ICC", "RMSE": "RMSE", "Sigma": "Sigma",
              "Log_loss": "Log_loss", "Score_log": "Score_log",
              "Score_spherical": "Score_spherical"}

    def __str__(self) -> str:
        """insight's export_table: values to 3 decimals (a missing one blank), the first
        column left-aligned."""
        columns = []
        for i, (name, value) in enumerate(self.indices.items()):
            label, text = self.LABELS[name], "" if np.isnan(value) else f"{value:.3f}"
            w = max(len(label), len(text))
            align = str.ljust if i == 0 else str.rjust
            columns.append((align(label, w), align(text, w)))
        header = " | ".join(c[0] for c in columns)
        return "\n".join(["# Indices of model performance", "", header, "-" * len(header),
                          " | ".join(c[1] for c in columns)])


def model_performance(m) -> Performance:
    """performance's ``model_performance(m)``: AIC, AICc and BIC (for a linear mixed model
    from the REML criterion, at the ML estimates too, as performance's default estimator
    does), Nakagawa's R², the adjusted ICC, the RMSE of the response residuals and σ; for
    a binomial GLMM the log-loss (blank with more than one trial per row, as in
    performance), for a Poisson or negative binomial one the logarithmic and spherical
    scores."""
    ll = m.logLik() if m.family is not None else m.logLik(REML=True)
    n, k = m.nobs, ll.df
    r2 = r2_nakagawa(m)
    residuals = m.residuals(type="response").to_numpy(dtype=np.float64)
    return Performance({
        "AIC": -2 * ll + 2 * k, "AICc": -2 * ll + 2 * k * n / (n - k - 1),
        "BIC": -2 * ll + k * np.log(n), "R2_conditional": r2.conditional,
        "R2_marginal": r2.marginal, "ICC": icc(m).adjusted,
        "RMSE": float(np.sqrt(np.mean(residuals**2))),
        "Sigma": float(m.sigma), **_scores(m)})


def _scores(m) -> dict[str, float]:
    """performance's log-loss (binary responses) and proper scoring rules (Poisson,
    negative binomial), at the fitted means given the random effects: the spherical score
    divides each p(y) by the root of Σ p(y)² over all observations, as performance 0.10
    computes it; for a negative binomial, performance 0.10 takes as the size not θ̂ but
    exp of the Pearson dispersion ratio (its ``.dispersion_parameter`` of a merMod), and
    so does lmerpy, to print its numbers."""
    if m.family is None:
        return {}
    y, mu = np.asarray(m.fit.y, dtype=np.float64), m.fitted().to_numpy(dtype=np.float64)
    if m.family.family == "binomial":
        binary = bool(np.all(np.asarray(m.fit.prior_weights) == 1))
        loss = float(-np.mean(np.log(1 - np.abs(y - mu)))) if binary else float("nan")
        return {"Log_loss": loss}
    if m.family.family == "poisson":
        p = st.poisson.pmf(y, mu)
    elif m.family.family == "negative.binomial":
        size = math.exp(check_overdispersion(m).ratio)
        p = st.nbinom.pmf(y, size, size / (size + mu))
    else:
        return {}
    return {"Score_log": float(np.mean(np.log(p))),
            "Score_spherical": float(np.mean(p / np.sqrt(np.sum(p**2))))}


__all__ = ["Overdispersion", "Performance", "check_overdispersion", "model_performance"]
