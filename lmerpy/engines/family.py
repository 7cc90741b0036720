"""GLM families for glmer(): links, variance functions, deviance residuals and log-densities.

Formulas follow R's ``binomial()``, ``poisson()``, ``Gamma()``, ``inverse.gaussian()`` and
``gaussian()`` family objects (stats/R/family.R) and MASS's
``negative.binomial(theta)`` (MASS/R/negbin.R), so the numbers the GLMM engine produces are
the ones lme4 computes from the same family.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.special as sc
import scipy.stats as st

from ..errors import ModelError, warn

_EPS = np.finfo(float).eps
_THRESH = 30.0  # R's logit link: eta clamped to ±30 in mu.eta, mu kept in (eps, 1 − eps)
LINKS = ("logit", "probit", "cauchit", "cloglog", "log", "identity", "inverse", "1/mu^2",
         "sqrt")


@dataclass(frozen=True)
class Link:
    """A link function g with its inverse and dμ/dη (R's ``make.link``)."""

    name: str

    def __post_init__(self) -> None:
        if self.name not in LINKS:
            raise ModelError(f"unknown link {self.name!r} (use {', '.join(LINKS)})")

    def link(self, mu: np.ndarray) -> np.ndarray:
        mu = np.asarray(mu, dtype=float)
        name = self.name
        if name == "logit":
            return sc.logit(mu)
        if name == "probit":
            return st.norm.ppf(mu)
        if name == "cauchit":
            return st.cauchy.ppf(mu)
        if name == "cloglog":
            return np.log(-np.log1p(-mu))
        if name == "log":
            return np.log(mu)
        if name == "inverse":
            return 1.0 / mu
        if name == "1/mu^2":
            return 1.0 / mu**2
        if name == "sqrt":
            return np.sqrt(mu)
        return mu

    def inverse(self, eta: np.ndarray) -> np.ndarray:
        eta = np.asarray(eta, dtype=float)
        name = self.name
        if name == "logit":
            return np.clip(sc.expit(eta), _EPS, 1.0 - _EPS)
        if name == "probit":
            t = -st.norm.ppf(_EPS)
            return st.norm.cdf(np.clip(eta, -t, t))
        if name == "cauchit":
            t = -st.cauchy.ppf(_EPS)
            return st.cauchy.cdf(np.clip(eta, -t, t))
        if name == "cloglog":
            return np.clip(-np.expm1(-np.exp(eta)), _EPS, 1.0 - _EPS)
        if name == "log":
            return np.maximum(np.exp(eta), _EPS)
        with np.errstate(divide="ignore", invalid="ignore"):
            if name == "inverse":
                return 1.0 / eta
            if name == "1/mu^2":
                return 1.0 / np.sqrt(eta)
        if name == "sqrt":
            return eta**2
        return eta

    def mu_eta(self, eta: np.ndarray) -> np.ndarray:
        eta = np.asarray(eta, dtype=float)
        name = self.name
        if name == "logit":
            e = np.exp(-np.abs(eta))
            return np.maximum(e / (1.0 + e) ** 2, _EPS)
        if name == "probit":
            return np.maximum(st.norm.pdf(eta), _EPS)
        if name == "cauchit":
            return np.maximum(st.cauchy.pdf(eta), _EPS)
        if name == "cloglog":
            e = np.minimum(eta, 700.0)
            return np.maximum(np.exp(e) * np.exp(-np.exp(e)), _EPS)
        if name == "log":
            return np.maximum(np.exp(eta), _EPS)
        with np.errstate(divide="ignore", invalid="ignore"):
            if name == "inverse":
                return -1.0 / eta**2
            if name == "1/mu^2":
                return -1.0 / (2.0 * eta**1.5)
        if name == "sqrt":
            return 2.0 * eta
        return np.ones_like(eta)

    def mu_eta2(self, eta: np.ndarray) -> np.ndarray:
        """d²μ/dη², for the observed information of the links a dispersion family takes."""
        eta = np.asarray(eta, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.name == "log":
                return np.maximum(np.exp(eta), _EPS)
            if self.name == "inverse":
                return 2.0 / eta**3
            if self.name == "1/mu^2":
                return 0.75 * eta**-2.5
        if self.name == "identity":
            return np.zeros_like(eta)
        raise ModelError(f"the {self.name} link has no second derivative here")


# the families with a dispersion parameter φ (lme4's useSc for a glmer fit)
DISPERSION_FAMILIES = ("Gamma", "inverse.gaussian", "gaussian")


@dataclass(frozen=True)
class Family:
    """A response distribution and link, as R's family objects.

    ``y`` is always the observed proportion (binomial), count (Poisson, negative binomial)
    or value (Gamma, inverse Gaussian, Gaussian); ``w`` the prior weights (binomial trials
    for cbind() responses). The negative binomial's ``theta`` is its size (variance
    μ + μ²/θ), fixed within a fit.
    """

    family: str
    link: Link
    theta: float | None = None

    @property
    def has_dispersion(self) -> bool:
        """Gamma, inverse Gaussian and Gaussian responses have a dispersion φ, estimated with
        the rest (σ = √φ); binomial and Poisson have φ = 1, so σ is 1."""
        return self.family in DISPERSION_FAMILIES

    def variance(self, mu: np.ndarray) -> np.ndarray:
        if self.family == "binomial":
            return mu * (1.0 - mu)
        if self.family == "negative.binomial":
            return mu + mu**2 / self.theta
        if self.family == "Gamma":
            return mu**2
        if self.family == "inverse.gaussian":
            return mu**3
        if self.family == "gaussian":
            return np.ones_like(mu)
        return mu

    def variance_deriv(self, mu: np.ndarray) -> np.ndarray:
        """dV/dμ of the dispersion families' variance functions."""
        if self.family == "Gamma":
            return 2.0 * mu
        if self.family == "inverse.gaussian":
            return 3.0 * mu**2
        return np.zeros_like(mu)

    def observed_weights(self, y: np.ndarray, mu: np.ndarray, eta: np.ndarray,
                         w: np.ndarray) -> np.ndarray:
        """−∂² log p(y | η)/∂η² × φ: the observed information's weights, which equal the
        Fisher weights w μ'²/V only for a canonical link. With μ' = dμ/dη,
            w [μ'²/V − (y − μ)(μ''/V − μ'² V'/V²)]."""
        d, d2 = self.link.mu_eta(eta), self.link.mu_eta2(eta)
        V, dV = self.variance(mu), self.variance_deriv(mu)
        return w * (d**2 / V - (y - mu) * (d2 / V - d**2 * dV / V**2))

    def neg2_loglik(self, y: np.ndarray, mu: np.ndarray, w: np.ndarray,
                    phi: float) -> float:
        """−2 Σ log p(y_i | μ_i, φ/w_i) for the dispersion families: prior weights divide
        the dispersion (precision weights, as glm's and lmer's), so the score is
        Σ w_i (y_i − μ_i) μ'_i / (φ V(μ_i)), the one PIRLS solves."""
        ok = w > 0
        y, mu, p = y[ok], mu[ok], phi / w[ok]
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.family == "Gamma":
                logd = st.gamma.logpdf(y, 1.0 / p, scale=mu * p)
            elif self.family == "inverse.gaussian":
                logd = -0.5 * (np.log(2.0 * np.pi * p * y**3) + (y - mu) ** 2 / (p * mu**2 * y))
            else:
                logd = -0.5 * (np.log(2.0 * np.pi * p) + (y - mu) ** 2 / p)
        return float(-2.0 * np.sum(logd))

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
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.family == "Gamma":
                return -2.0 * w * (np.log(y / mu) - (y - mu) / mu)
            if self.family == "inverse.gaussian":
                return w * (y - mu) ** 2 / (y * mu**2)
        if self.family == "gaussian":
            return w * (y - mu) ** 2
        return 2.0 * w * (sc.xlogy(y, y) - y * np.log(mu) - (y - mu))

    def aic(self, y: np.ndarray, mu: np.ndarray, w: np.ndarray) -> float:
        """−2 log-likelihood (R's ``family$aic`` without the 2p term) of the families without
        a dispersion; the others' depends on φ (``neg2_loglik``)."""
        if self.has_dispersion:
            raise ModelError(f"the {self.family} family's log-likelihood needs its dispersion "
                             f"φ: use neg2_loglik")
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
        if self.has_dispersion:
            return np.asarray(y, dtype=float).copy()
        return y + 0.1

    def validate(self, y: np.ndarray) -> None:
        """R's checks in ``family$initialize``, with the first offending row named."""
        if not np.all(np.isfinite(y)):
            raise ModelError("the response has non-finite values")
        if self.family == "binomial" and (np.any(y < 0) or np.any(y > 1)):
            raise ModelError("binomial responses must lie in [0, 1] (0/1 outcomes or "
                             "proportions with weights), or be given as cbind(successes, "
                             "failures)")
        if self.family in ("poisson", "negative.binomial"):
            name = "Poisson" if self.family == "poisson" else "negative binomial"
            if np.any(y < 0):
                raise ModelError(f"negative values are not allowed for the {name} family")
            # R's dpois()/dnbinom() warn "non-integer x = ..."
            warn_fractional(y, f"non-integer counts for the {name} family", tol=0.0,
                            then="the likelihood treats them through the gamma function, "
                                 "as R does after its warning 'non-integer x'")
        positive = self.family in ("Gamma", "inverse.gaussian") or (
            self.family == "gaussian" and self.link.name in ("log", "inverse"))
        if positive and np.any(y <= 0):
            row = int(np.flatnonzero(y <= 0)[0])
            why = (f"the {self.family} family" if self.family != "gaussian"
                   else f"the gaussian family with the {self.link.name} link (its start "
                        f"is the response itself)")
            raise ModelError(f"the response must be positive for {why}: row {row} is "
                             f"{y[row]:g}")

    def __str__(self) -> str:
        if self.family == "negative.binomial":  # MASS: format(round(theta, 4))
            size = "θ to estimate" if self.theta is None else f"{round(self.theta, 4):.7g}"
            return f"Negative Binomial({size})  ( {self.link.name} )"
        return f"{self.family}  ( {self.link.name} )"


# R's families, their default links (first) and the links each accepts
_LINKS = {"binomial": ("logit", "probit", "cauchit", "cloglog"),
          "poisson": ("log", "identity", "sqrt"),
          "Gamma": ("inverse", "identity", "log"),
          "inverse.gaussian": ("1/mu^2", "inverse", "identity", "log"),
          "gaussian": ("identity", "log", "inverse")}
_ALIASES = {"gamma": "Gamma", "inverse_gaussian": "inverse.gaussian",
            "inversegaussian": "inverse.gaussian"}


def make_family(family: str | Family, link: str | None = None) -> Family:
    """A family by R's name (``"binomial"``, ``"poisson"``, ``"Gamma"``,
    ``"inverse.gaussian"``, ``"gaussian"``; optionally with ``link=``) or a Family object."""
    if isinstance(family, Family):
        return family
    if family == "negative.binomial":
        raise ModelError("the negative binomial family needs its theta: fit by "
                         "lp.glmer_nb() (theta estimated, as lme4's glmer.nb), or pass "
                         "family=lp.negative_binomial(theta)")
    if isinstance(family, str):
        family = _ALIASES.get(family, family)
    if not isinstance(family, str) or family not in _LINKS:
        raise ModelError(f"family must be one of {', '.join(map(repr, _LINKS))} (or a "
                         f"lmerpy Family), not {family!r}")
    allowed = _LINKS[family]
    name = link or allowed[0]
    if name not in allowed:
        raise ModelError(f"link {name!r} is not available for the {family} family "
                         f"(use {', '.join(allowed)})")
    return Family(family, Link(name))


def binomial(link: str = "logit") -> Family:
    return make_family("binomial", link)


def poisson(link: str = "log") -> Family:
    return make_family("poisson", link)


def Gamma(link: str = "inverse") -> Family:  # noqa: N802 -- R's name
    return make_family("Gamma", link)


def inverse_gaussian(link: str = "1/mu^2") -> Family:
    return make_family("inverse.gaussian", link)


def gaussian(link: str = "identity") -> Family:
    return make_family("gaussian", link)


def warn_fractional(counts: np.ndarray, message: str, tol: float, then: str = "") -> None:
    """R's warnings for counts that are not whole (more than ``tol`` from an integer; R's
    binomial family checks 0.001): the number of such rows and the first — with its value
    when ``then`` explains what follows (the response's own counts) — then ``then``."""
    c = np.reshape(counts, (len(counts), -1))
    rows = np.flatnonzero((np.abs(c - np.round(c)) > tol).any(axis=1))
    if len(rows):
        row = int(rows[0])
        first = f"row {row}: {c[row, 0]:g}" if then else f"row {row}"
        warn(f"{message} ({len(rows)} rows, e.g. {first})" + (f"; {then}" if then else ""))


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


__all__ = ["DISPERSION_FAMILIES", "Family", "Gamma", "LINKS", "Link", "binomial",
           "gauss_hermite", "gaussian", "inverse_gaussian", "make_family", "negative_binomial",
           "poisson", "theta_ml", "warn_fractional"]
