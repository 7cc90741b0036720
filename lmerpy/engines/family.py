"""GLM families for glmer(): links, variance functions, deviance residuals and log-densities.

Formulas follow R's ``binomial()``/``poisson()`` family objects (stats/R/family.R) and MASS's
``negative.binomial(theta)`` (MASS/R/negbin.R), so the numbers the GLMM engine produces are
the ones lme4 computes from the same family.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.special as sc
import scipy.stats as st

from ..errors import ModelError

_EPS = np.finfo(float).eps
_THRESH = 30.0  # R's logit link: eta clamped to ±30 in mu.eta, mu kept in (eps, 1 − eps)


@dataclass(frozen=True)
class Link:
    """A link function g with its inverse and dμ/dη."""

    name: str

    def __post_init__(self) -> None:
        if self.name not in {"logit", "probit", "cloglog", "log", "identity"}:
            raise ModelError(f"unknown link {self.name!r} (use logit, probit, cloglog, log "
                             f"or identity)")

    def link(self, mu: np.ndarray) -> np.ndarray:
        if self.name == "logit":
            return sc.logit(mu)
        if self.name == "probit":
            return st.norm.ppf(mu)
        if self.name == "cloglog":
            return np.log(-np.log1p(-mu))
        if self.name == "log":
            return np.log(mu)
        return np.asarray(mu, dtype=float)

    def inverse(self, eta: np.ndarray) -> np.ndarray:
        if self.name == "logit":
            return np.clip(sc.expit(eta), _EPS, 1.0 - _EPS)
        if self.name == "probit":
            t = -st.norm.ppf(_EPS)
            return st.norm.cdf(np.clip(eta, -t, t))
        if self.name == "cloglog":
            return np.clip(-np.expm1(-np.exp(eta)), _EPS, 1.0 - _EPS)
        if self.name == "log":
            return np.maximum(np.exp(eta), _EPS)
        return np.asarray(eta, dtype=float)

    def mu_eta(self, eta: np.ndarray) -> np.ndarray:
        if self.name == "logit":
            e = np.exp(-np.abs(eta))
            return np.maximum(e / (1.0 + e) ** 2, _EPS)
        if self.name == "probit":
            return np.maximum(st.norm.pdf(eta), _EPS)
        if self.name == "cloglog":
            e = np.minimum(eta, 700.0)
            return np.maximum(np.exp(e) * np.exp(-np.exp(e)), _EPS)
        if self.name == "log":
            return np.maximum(np.exp(eta), _EPS)
        return np.ones_like(eta, dtype=float)


@dataclass(frozen=True)
class Family:
    """A response distribution and link, as R's family objects.

    ``y`` is always the observed proportion (binomial) or count (Poisson, negative
    binomial); ``w`` the prior weights (binomial trials for cbind() responses). The negative
    binomial's ``theta`` is its size (variance μ + μ²/θ), fixed within a fit.
    """

    family: str
    link: Link
    theta: float | None = None

    @property
    def has_dispersion(self) -> bool:
        return False  # binomial and Poisson: φ = 1, so sigma() is 1 as in lme4

    def variance(self, mu: np.ndarray) -> np.ndarray:
        if self.family == "binomial":
            return mu * (1.0 - mu)
        if self.family == "negative.binomial":
            return mu + mu**2 / self.theta
        return mu

    def dev_resids(self, y: np.ndarray, mu: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Squared deviance residuals, R's ``family$dev.resids``."""
        # y log(y/μ) = y log y − y log μ; μ lies strictly inside its range, so no 0·∞
        if self.family == "binomial":
            const = sc.xlogy(y, y) + sc.xlogy(1.0 - y, 1.0 - y)
            return 2.0 * w * (const - y * np.log(mu) - (1.0 - y) * np.log1p(-mu))
        if self.family == "negative.binomial":
            th = self.theta
            return 2.0 * w * (y * np.log(np.maximum(1.0, y) / mu)
                              - (y + th) * np.log((y + th) / (mu + th)))
        return 2.0 * w * (sc.xlogy(y, y) - y * np.log(mu) - (y - mu))

    def aic(self, y: np.ndarray, mu: np.ndarray, w: np.ndarray) -> float:
        """−2 log-likelihood (R's ``family$aic`` without the 2p term)."""
        if self.family == "binomial":
            ok = w > 0
            m, s, p = np.rint(w[ok]), np.rint(w[ok] * y[ok]), mu[ok]
            log_choose = sc.gammaln(m + 1) - sc.gammaln(s + 1) - sc.gammaln(m - s + 1)
            return float(-2.0 * np.sum(log_choose + sc.xlogy(s, p) + sc.xlog1py(m - s, -p)))
        if self.family == "negative.binomial":
            th = self.theta
            term = ((y + th) * np.log(mu + th) - sc.xlogy(y, mu) + sc.gammaln(y + 1)
                    - th * np.log(th) + sc.gammaln(th) - sc.gammaln(th + y))
            return float(2.0 * np.sum(term * w))
        k = np.rint(y)
        return float(-2.0 * np.sum(w * (sc.xlogy(k, mu) - mu - sc.gammaln(k + 1))))

    def mu_start(self, y: np.ndarray, w: np.ndarray) -> np.ndarray:
        """R's ``family$initialize`` starting values."""
        if self.family == "binomial":
            return (w * y + 0.5) / (w + 1.0)
        if self.family == "negative.binomial":
            return y + (y == 0) / 6.0
        return y + 0.1

    def validate(self, y: np.ndarray) -> None:
        if not np.all(np.isfinite(y)):
            raise ModelError("the response has non-finite values")
        if self.family == "binomial" and (np.any(y < 0) or np.any(y > 1)):
            raise ModelError("binomial responses must lie in [0, 1] (0/1 outcomes or "
                             "proportions with weights), or be given as cbind(successes, "
                             "failures)")
        if self.family in ("poisson", "negative.binomial") and np.any(y < 0):
            name = "Poisson" if self.family == "poisson" else "negative binomial"
            raise ModelError(f"negative values are not allowed for the {name} family")

    def __str__(self) -> str:
        if self.family == "negative.binomial":  # MASS: format(round(theta, 4))
            return f"Negative Binomial({round(self.theta, 4):.7g})  ( {self.link.name} )"
        return f"{self.family}  ( {self.link.name} )"


_DEFAULT_LINK = {"binomial": "logit", "poisson": "log"}


def make_family(family: str | Family, link: str | None = None) -> Family:
    """``"binomial"``, ``"poisson"`` (optionally with ``link=``) or a Family object."""
    if isinstance(family, Family):
        return family
    if family == "negative.binomial":
        raise ModelError("the negative binomial family needs its theta: fit by "
                         "lp.glmer_nb() (theta estimated, as lme4's glmer.nb), or pass "
                         "family=lp.negative_binomial(theta)")
    if not isinstance(family, str) or family not in _DEFAULT_LINK:
        raise ModelError(f"family must be 'binomial' or 'poisson' (or a lmerpy Family), "
                         f"not {family!r}")
    name = link or _DEFAULT_LINK[family]
    allowed = {"binomial": {"logit", "probit", "cloglog"}, "poisson": {"log", "identity"}}
    if name not in allowed[family]:
        raise ModelError(f"link {name!r} is not available for the {family} family "
                         f"(use {', '.join(sorted(allowed[family]))})")
    return Family(family, Link(name))


def binomial(link: str = "logit") -> Family:
    return make_family("binomial", link)


def poisson(link: str = "log") -> Family:
    return make_family("poisson", link)


def negative_binomial(theta: float, link: str = "log") -> Family:
    """MASS's ``negative.binomial(theta)``: counts with variance μ + μ²/θ."""
    if not (isinstance(theta, (int, float, np.floating, np.integer)) and np.isfinite(theta)
            and theta > 0):
        raise ModelError(f"theta must be a positive number, not {theta!r}")
    if link not in {"log", "identity"}:
        raise ModelError(f"link {link!r} is not available for the negative binomial family "
                         f"(use log or identity)")
    return Family("negative.binomial", Link(link), float(theta))


def theta_ml(y: np.ndarray, mu: np.ndarray, weights: np.ndarray, limit: int = 10,
             eps: float = np.finfo(float).eps ** 0.25) -> tuple[float, str | None]:
    """MASS's ``theta.ml``: the negative binomial θ by Newton's method on its score, from
    the moment estimate n / Σ w (y/μ − 1)²; a warning's text when it stopped short."""
    w = np.asarray(weights, dtype=np.float64)
    n = w.sum()
    t0 = n / np.sum(w * (y / mu - 1.0) ** 2)
    it, delta = 0, 1.0
    while (it := it + 1) < limit and abs(delta) > eps:
        t0 = abs(t0)
        score = np.sum(w * (sc.digamma(t0 + y) - sc.digamma(t0) + np.log(t0) + 1
                            - np.log(t0 + mu) - (y + t0) / (mu + t0)))
        info = np.sum(w * (-sc.polygamma(1, t0 + y) + sc.polygamma(1, t0) - 1 / t0
                           + 2 / (mu + t0) - (y + t0) / (mu + t0) ** 2))
        delta = score / info
        t0 = t0 + delta
    if t0 < 0:
        return 0.0, "estimate truncated at zero"
    return float(t0), "iteration limit reached" if it == limit else None


def gauss_hermite(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes z and weights w of the k-point rule for a standard normal (Σ w = 1, lme4's
    GHrule)."""
    if k < 1 or k > 100:
        raise ModelError(f"the number of quadrature points must be between 1 and 100, not {k}")
    z, w = np.polynomial.hermite_e.hermegauss(k)
    return z, w / np.sqrt(2.0 * np.pi)


__all__ = ["Family", "Link", "binomial", "gauss_hermite", "make_family", "negative_binomial",
           "poisson", "theta_ml"]
