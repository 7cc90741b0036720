"""The parametric bootstrap of a mixed model: lme4's simulate() and bootMer(), behind
``confint(method="boot")``. For an LMM:

New responses come from the fitted model, y* = Xβ̂ + offset + σ̂ (ZΛ̂u* + ε*/√w) with u*, ε*
standard normal (lme4's simulate.merMod, use.u = FALSE); ``use_u`` keeps the fitted random
effects b̂ instead. Each response is refitted from θ̂ by the fit's own criterion (REML or ML),
as bootMer's refit does. Only the products with y change, so one factor serves every refit.
A GLMM draws from its family at the simulated means and is refitted by fit_glmer.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.stats import norm

from ..errors import ModelError, warn
from .exact import (
    ConvergenceWarning,
    ExactFit,
    LmerControl,
    choose_optimizer,
    optimize_theta,
    theta_scaling,
)
from .glmm import GlmerControl, GlmerFit, fit_glmer, variance_parameters
from .pls import PLS

# BOBYQA's first step (in φ = θ / scale) for a refit: it starts near its optimum, θ̂ moved
# by its sampling error, so a step below nlopt's default saves a fifth of the evaluations
REFIT_STEP = 0.2


class Simulator:
    """Draws responses from a fitted LMM, one replicate at a time (n × nsim can be large)."""

    def __init__(self, fit: ExactFit, rng: np.random.Generator, use_u: bool = False):
        self.fit = fit
        self.rng = rng
        self.use_u = use_u
        self.Z = fit.design.Z
        self.lam = fit.pls.Lambda(fit.theta)
        self.mean = fit.X @ fit.solution.beta + fit.offset
        w = np.ones(len(fit.y)) if fit.weights is None else fit.weights
        # rows of weight 0 take no part in the fit; they get the mean, not an infinite error
        self.noise_sd = fit.sigma / np.sqrt(np.where(w > 0, w, np.inf))

    def linear_predictor(self) -> np.ndarray:
        """Xβ̂ + offset + Z b*, with b* = σ̂Λ̂u* new (u* standard normal) or b̂ (use_u)."""
        f = self.fit
        if self.use_u:
            random = self.Z @ f.b
        else:
            random = f.sigma * (self.Z @ (self.lam @ self.rng.standard_normal(self.Z.shape[1])))
        return self.mean + np.asarray(random).ravel()

    def draw(self) -> np.ndarray:
        return self.linear_predictor() + self.noise_sd * self.rng.standard_normal(
            len(self.fit.y))


class GlmmSimulator(Simulator):
    """Draws responses from a fitted GLMM: the family's distribution (with its dispersion) at
    μ* = g⁻¹(η*), in the form the model's response has (cbind counts, 0/1 or proportions of
    the prior weights, or counts)."""

    def __init__(self, fit: GlmerFit, rng: np.random.Generator, use_u: bool = False):
        super().__init__(fit, rng, use_u)
        y = np.asarray(fit.design.y, dtype=np.float64)
        self.cbind = y.ndim == 2
        if fit.family.family == "binomial":
            trials = y.sum(axis=1) if self.cbind else fit.prior_weights
            if np.any(np.abs(trials - np.rint(trials)) > 1e-8):
                raise ModelError("simulating a binomial response needs whole numbers of "
                                 "trials (cbind counts, or weights= that count trials)")
            self.trials = np.rint(trials).astype(np.int64)

    def draw(self) -> np.ndarray:
        f = self.fit
        mu = f.family.link.inverse(self.linear_predictor())
        if f.family.family == "poisson":
            return self.rng.poisson(mu).astype(np.float64)
        if f.family.family == "negative.binomial":  # size θ, mean μ (R's rnbinom)
            th = f.family.theta
            return self.rng.negative_binomial(th, th / (th + mu)).astype(np.float64)
        if f.family.has_dispersion:  # Var(y) = φ V(μ) / w
            phi = f.phi / np.maximum(f.prior_weights, 1e-12)
            if f.family.family == "Gamma":  # shape 1/φ, mean μ
                return self.rng.gamma(1.0 / phi, mu * phi)
            if f.family.family == "inverse.gaussian":  # mean μ, shape λ = 1/φ
                return self.rng.wald(mu, 1.0 / phi)
            return self.rng.normal(mu, np.sqrt(phi))
        s = self.rng.binomial(self.trials, np.clip(mu, 0.0, 1.0)).astype(np.float64)
        if self.cbind:
            return np.column_stack([s, self.trials - s])
        return np.where(self.trials > 0, s / np.maximum(self.trials, 1), f.y)


def make_simulator(fit: ExactFit, rng: np.random.Generator, use_u: bool = False):
    return GlmmSimulator(fit, rng, use_u) if isinstance(fit, GlmerFit) else \
        Simulator(fit, rng, use_u)


def simulate(fit: ExactFit, nsim: int, seed, use_u: bool = False) -> np.ndarray:
    """``nsim`` responses from the fitted model, as columns of an n × nsim array (for a
    cbind() binomial response, the successes)."""
    sim = make_simulator(fit, np.random.default_rng(seed), use_u)
    draws = [sim.draw() for _ in range(nsim)]
    return np.column_stack([d[:, 0] if d.ndim == 2 else d for d in draws])


class Refit(NamedTuple):
    """One refit: θ, σ (√φ for a GLMM), β, the optimiser's code (negative or 5: failed)
    and −2 log L (the ML deviance of an LMM, the Laplace or AGQ criterion of a GLMM)."""

    theta: np.ndarray
    sigma: float
    beta: np.ndarray
    code: int
    deviance: float


def make_refitter(fit: ExactFit) -> Refitter | GlmmRefitter:
    return GlmmRefitter(fit) if isinstance(fit, GlmerFit) else Refitter(fit)


class Refitter:
    """Refits the model of ``fit`` to new responses, reusing its factor."""

    def __init__(self, fit: ExactFit):
        self.fit = fit
        design = fit.design
        w = fit.weights
        sw = None if w is None else np.sqrt(w)
        self.sw = sw
        self.X = fit.X if sw is None else fit.X * sw[:, None]
        Z = design.Z if sw is None else sp.diags(sw) @ design.Z
        self.Zt = Z.T.tocsr()
        self.pls = PLS(design.random, fit.pls.cp, design.split_theta, fit.pls.Lambda)
        self.lower = design.theta_lower()
        self.scale = theta_scaling(design)
        self.control = LmerControl()
        self.method = choose_optimizer(self.control, self.pls, len(fit.y))
        self.step = np.full(len(fit.theta), REFIT_STEP)

    def refit(self, y: np.ndarray) -> Refit:
        """θ, σ, β, the optimiser's code and the ML deviance for response y."""
        f = self.fit
        r = y - f.offset
        if self.sw is not None:
            r = r * self.sw
        self.pls.cp = f.pls.cp.with_response(self.X, self.Zt, r)
        theta, code, _ = optimize_theta(self.pls, f.REML, f.theta / self.scale, self.lower,
                                        self.scale, self.control, self.method, self.step)
        sol = self.pls.solve(theta)
        return Refit(theta, self.pls.sigma(sol, f.REML), sol.beta, code, sol.ml)


class GlmmRefitter:
    """Refits a GLMM to new responses: fit_glmer from θ̂, by the fit's nAGQ, without the
    finite-difference Hessian (the bootstrap needs the estimates only)."""

    def __init__(self, fit: GlmerFit):
        self.fit = fit
        self.control = GlmerControl(calc_derivs=False)

    def refit(self, y: np.ndarray) -> Refit:
        f = self.fit
        with warnings.catch_warnings():  # singular refits are expected; failures counted
            warnings.simplefilter("ignore")
            new = fit_glmer(replace(f.design, y=y), f.family, f.nAGQ, f.weights, self.control,
                            start=f.theta)
        failed = bool(new.optinfo["warnings"]) or not new.modes.converged
        return Refit(new.theta, float(np.sqrt(new.phi)), new.solution.beta,
                     -1 if failed else 0, new.criterion)


def bootstrap(fit: ExactFit, nsim: int, seed) -> np.ndarray:
    """nsim × k replicates of lme4's parameters (sd/cor per θ element, σ for an LMM or a
    GLMM with a dispersion, then β), each from a response simulated from the fit and
    refitted (bootMer with confint's FUN)."""
    sim = make_simulator(fit, np.random.default_rng(seed))
    glmm = isinstance(fit, GlmerFit)
    refitter = make_refitter(fit)
    design = fit.design
    rows = []
    failed = 0
    for _ in range(nsim):
        theta, sigma, beta, code, _ = refitter.refit(sim.draw())
        failed += code < 0 or code == 5
        v = variance_parameters(design, fit.family, theta, sigma**2) if glmm else \
            design.sdcor(theta, sigma)
        rows.append(np.concatenate([v, beta]))
    out = np.array(rows)
    if failed:
        warn(f"{failed} of {nsim} bootstrap refits stopped without converging",
             ConvergenceWarning)
    return out


def norm_inter(t: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """boot.ci's percentile rule (R's boot:::norm.inter): the order statistic of rank
    (R + 1)α, interpolated between neighbours on the normal quantile scale."""
    t = np.sort(np.asarray(t, dtype=np.float64)[np.isfinite(t)])
    R = len(t)
    out = np.empty(len(alpha))
    for j, a in enumerate(np.atleast_1d(alpha)):
        rk = (R + 1) * a
        k = int(np.trunc(rk))
        if k == 0:
            out[j] = t[0]
        elif k >= R:
            out[j] = t[-1]
        elif k == rk:
            out[j] = t[k - 1]
        else:
            z = norm.ppf([a, k / (R + 1), (k + 1) / (R + 1)])
            out[j] = t[k - 1] + (z[0] - z[1]) / (z[2] - z[1]) * (t[k] - t[k - 1])
    return out


def boot_intervals(replicates: np.ndarray, estimates: np.ndarray, level: float,
                   kind: str) -> np.ndarray:
    """Intervals from bootstrap replicates, as lme4's confint(method = "boot") through
    boot.ci: "perc" (percentiles), "basic" (2t̂ minus the reversed percentiles) or "norm"
    (bias-corrected t̂ ± z·sd)."""
    alpha = np.array([(1 - level) / 2, (1 + level) / 2])
    out = np.empty((replicates.shape[1], 2))
    for j in range(replicates.shape[1]):
        t = replicates[:, j]
        if kind == "norm":
            good = t[np.isfinite(t)]
            bias = good.mean() - estimates[j]
            half = norm.ppf(alpha[1]) * good.std(ddof=1)
            out[j] = [estimates[j] - bias - half, estimates[j] - bias + half]
        else:
            q = norm_inter(t, alpha)
            out[j] = q if kind == "perc" else 2 * estimates[j] - q[::-1]
    return out


__all__ = ["GlmmRefitter", "GlmmSimulator", "Refit", "Refitter", "Simulator", "boot_intervals",
           "bootstrap", "make_refitter", "make_simulator", "norm_inter", "simulate"]
