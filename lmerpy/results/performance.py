"""R's performance package: ``check_overdispersion`` (the Pearson χ² of a count or
binomial-trials GLMM against its residual df), ``check_collinearity`` (variance inflation
factors of the fixed-effect terms) and ``model_performance`` (the indices of fit in one
table)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as st

from ..engines.options import require_probability
from ..errors import ModelError, warn
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
class Collinearity(PrintedResult):
    """performance's check_collinearity table: per fixed-effect term its (generalized) VIF
    and interval, √VIF (the factor its standard error is inflated by) and the tolerance
    1/VIF with its interval."""

    table: pd.DataFrame

    def __str__(self) -> str:
        """performance's print: the terms by low (VIF < 5), moderate (< 10) and high
        correlation."""
        t = self.table
        lines = ["# Check for Multicollinearity"]
        for label, low, high in (("Low", -np.inf, 5), ("Moderate", 5, 10),
                                 ("High", 10, np.inf)):
            part = t[(t.VIF >= low) & (t.VIF < high)]
            if not len(part):
                continue
            rows = [["Term", "VIF", "VIF 95% CI", "Increased SE", "Tolerance",
                     "Tolerance 95% CI"]]
            for r in part.itertuples(index=False):
                rows.append([r.Term, f"{r.VIF:.2f}", _interval(r.VIF_CI_low, r.VIF_CI_high),
                             f"{r.SE_factor:.2f}", f"{r.Tolerance:.2f}",
                             _interval(r.Tolerance_CI_low, r.Tolerance_CI_high)])
            widths = [max(len(row[i]) for row in rows) for i in range(6)]
            lines += ["", f"{label} Correlation", ""]
            lines += [" ".join(c.rjust(w) for c, w in zip(row, widths)) for row in rows]
        return "\n".join(lines)


def _interval(lo: float, hi: float) -> str:
    return f"[{lo:.2f}, {'Inf' if np.isinf(hi) else f'{hi:.2f}'}]"


def check_collinearity(m, ci: float = 0.95) -> Collinearity:
    """performance's ``check_collinearity(m)``: for each fixed-effect term the generalized
    VIF det(R_tt)·det(R_−t,−t)/det(R) (Fox and Monette; the plain VIF for a term of one
    column) of the correlation matrix R of β̂'s covariance without the intercept, with an
    interval from R² = 1 − 1/VIF on the logit scale (performance's, after Marcoulides et
    al. 2019)."""
    require_probability("ci", ci, "0.95")
    if m.torch_info is not None and m.design.nn:
        raise ModelError("check_collinearity() needs the fixed effects' covariance; this "
                         "model's nn() terms have none")
    encoder = m.design.fixed_encoder
    if list(m.fixef_names) != list(encoder.names):
        raise ModelError("check_collinearity() needs a fixed part of full rank (this fit "
                         "dropped aliased columns)")
    V = m.vcov().to_numpy(dtype=np.float64)
    columns = np.array(encoder.term_of_column, dtype=object)
    keep = columns != "(Intercept)"
    if keep.all():
        warn("Model has no intercept. VIFs may not be sensible.")
    V, columns = V[np.ix_(keep, keep)], columns[keep]
    terms = [str(t) for t in encoder.terms.terms if str(t) in set(columns)]
    if len(terms) < 2:
        raise ModelError("check_collinearity() needs at least two fixed-effect terms "
                         "besides the intercept")
    sd = np.sqrt(np.diag(V))
    R = V / np.outer(sd, sd)
    det_r = np.linalg.det(R)
    vif = np.array([np.linalg.det(R[np.ix_(c, c)]) * np.linalg.det(R[np.ix_(~c, ~c)]) / det_r
                    for c in (columns == t for t in terms)])
    r = 1 - 1 / vif
    n, p = m.nobs, len(m.fixef_names)
    se = np.sqrt((1 - r**2) ** 2 * (n - p - 1) ** 2 / ((n**2 - 1) * (n + 3)))
    z = st.norm.ppf((1 + ci) / 2)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        logit, se_log = np.log(r / (1 - r)), se / (r * (1 - r))
        lo, hi = (1 / (1 + np.exp(-(logit + s * z * se_log))) for s in (-1, 1))
        table = pd.DataFrame({
            "Term": terms, "VIF": vif, "VIF_CI_low": 1 / (1 - lo), "VIF_CI_high": 1 / (1 - hi),
            "SE_factor": np.sqrt(vif), "Tolerance": 1 / vif, "Tolerance_CI_low": 1 - hi,
            "Tolerance_CI_high": 1 - lo})
    return Collinearity(table)


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
