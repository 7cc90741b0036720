"""R² and intraclass correlations of mixed models, as R's performance package computes them
(``r2_nakagawa``, ``icc``) from insight's variance components (Nakagawa, Johnson and
Schielzeth, J. R. Soc. Interface 2017): the variance of the fixed part's predictions, the
random effects' mean variance (Johnson 2014: mean of diag(ZΣZ'), so random slopes count at
the data's covariate values), and the residual variance — σ² for a linear mixed model, the
link's distribution-specific variance for a GLMM."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ModelError


@dataclass(frozen=True)
class VarianceParts:
    """insight's get_variance: var.fixed, var.random, var.residual (= var.distribution
    here: no extra dispersion), and each grouping factor's intercept variance."""

    fixed: float
    random: float
    residual: float
    intercepts: dict[str, float]


class PrintedResult:
    """Shows as it prints (performance's print methods)."""

    def __repr__(self) -> str:
        return str(self)


def _block(title: str, values: dict[str, float]) -> str:
    """performance's layout: a heading, then each value to 3 decimals under a label
    right-aligned to 16 characters."""
    return "\n".join([f"# {title}", ""] + [f"{k:>16}: {v:.3f}" for k, v in values.items()])


@dataclass(frozen=True, repr=False)
class R2(PrintedResult):
    """Marginal (fixed part) and conditional (fixed and random parts) R²."""

    conditional: float
    marginal: float

    def __str__(self) -> str:
        return _block("R2 for Mixed Models",
                      {"Conditional R2": self.conditional, "Marginal R2": self.marginal})


@dataclass(frozen=True, repr=False)
class ICC(PrintedResult):
    """The adjusted ICC (random over random plus residual variance) and the unadjusted one
    (over the total, the fixed part's variance included)."""

    adjusted: float
    unadjusted: float

    def __str__(self) -> str:
        return _block("Intraclass Correlation Coefficient",
                      {"Adjusted ICC": self.adjusted, "Unadjusted ICC": self.unadjusted})


@dataclass(frozen=True, repr=False)
class ICCByGroup(PrintedResult):
    """Each grouping factor's intercept variance over the random plus residual variance."""

    icc: dict[str, float]

    def __str__(self) -> str:
        w = max(len("Group"), *(len(g) for g in self.icc))
        header = f"{'Group'.ljust(w)} |   ICC"
        return "\n".join(["# ICC by Group", "", header, "-" * len(header)]
                         + [f"{g.ljust(w)} | {v:5.3f}" for g, v in self.icc.items()])


def r2_nakagawa(m) -> R2:
    """performance's ``r2_nakagawa(m)``: R²_marginal = σ²_f / (σ²_f + σ²_r + σ²_ε) and
    R²_conditional = (σ²_f + σ²_r) / (σ²_f + σ²_r + σ²_ε). A fit with ``nn()`` terms takes
    σ²_f as the variance of the network's predictions."""
    v = variance_parts(m)
    total = v.fixed + v.random + v.residual
    return R2((v.fixed + v.random) / total, v.fixed / total)


def icc(m, by_group: bool = False) -> ICC | ICCByGroup:
    """performance's ``icc(m)``; ``by_group=True`` gives each grouping factor's."""
    v = variance_parts(m)
    if by_group:
        return ICCByGroup({g: s / (v.random + v.residual) for g, s in v.intercepts.items()})
    return ICC(v.random / (v.random + v.residual),
               v.random / (v.fixed + v.random + v.residual))


def variance_parts(m) -> VarianceParts:
    """The variance components behind R² and the ICC."""
    eta = np.asarray(m.predict(re_form="NA"), dtype=np.float64)
    fixed = float(np.var(eta, ddof=1))  # R's var(): denominator n − 1
    random, intercepts = 0.0, {}
    for design, term in zip(m.design.random, m.VarCorr().terms):
        if term.lengthscale is not None:  # rbf(): the kernel's diagonal is σ²
            random += float(term.cov[0, 0])
            continue
        X = design.X
        random += float(np.trace(term.cov @ (X.T @ X))) / X.shape[0]  # Johnson's mean
        if "(Intercept)" in term.names:
            i = term.names.index("(Intercept)")
            intercepts[design.group] = intercepts.get(design.group, 0.0) + float(term.cov[i, i])
    return VarianceParts(fixed, random, _residual(m), intercepts)


def _residual(m) -> float:
    """σ² for a linear mixed model; for a GLMM its link's distribution-specific variance
    (logit π²/3, probit 1, cloglog π²/6; Poisson's log link log(1 + 1/μ), the negative
    binomial's log(1 + 1/μ + 1/θ), μ = exp of the intercept of the model refitted without
    fixed effects, as insight's null model; a Gamma or Gaussian GLMM's σ²)."""
    if m.family is None:
        return float(m.sigma) ** 2
    family, link = m.family.family, m.family.link.name
    binomial = {"logit": math.pi**2 / 3, "probit": 1.0, "cloglog": math.pi**2 / 6}
    if family == "binomial" and link in binomial:
        return binomial[link]
    if family in ("Gamma", "gaussian"):
        # insight's: σ² for a Gaussian response, and for a Gamma one its dispersion φ = 1/ν
        # (Nakagawa, Johnson and Schielzeth's delta-method variance), whatever the link
        return float(m.sigma) ** 2
    if family in ("poisson", "negative.binomial") and link == "log":
        from ..formula.update import random_parts
        from ..updates import update  # the null model is a refit (updates builds on results)

        terms = random_parts(m.formula)[1]
        # a negative binomial's null model keeps the fitted θ, as insight's
        null = update(m, ". ~ 1 + " + " + ".join(str(t) for t in terms), keep_size=True)
        mu = math.exp(float(null.fixef().iloc[0]))
        # the lognormal approximation: log(1 + V(μ)/μ²), V(μ) = μ (+ μ²/θ)
        extra = 1 / m.family.theta if family == "negative.binomial" else 0.0
        return math.log1p(1 / mu + extra)
    raise ModelError(f"R² and the ICC are defined here for Gaussian, Gamma, binomial "
                     f"(logit, probit, cloglog), Poisson and negative binomial (log link) "
                     f"models, not {family} with the {link} link")


__all__ = ["ICC", "ICCByGroup", "R2", "VarianceParts", "icc", "r2_nakagawa",
           "variance_parts"]
