"""The parametric bootstrap of a linear mixed model: lme4's simulate() and bootMer(), behind
``confint(method="boot")``.

New responses come from the fitted model, y* = Xβ̂ + offset + σ̂ (ZΛ̂u* + ε*/√w) with u*, ε*
standard normal (lme4's simulate.merMod, use.u = FALSE); ``use_u`` keeps the fitted random
effects b̂ instead. Each response is refitted from θ̂ by the fit's own criterion (REML or ML),
as bootMer's refit does. Only the products with y change, so one factor serves every refit.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.stats import norm

from ..errors import warn
from .exact import (
    ConvergenceWarning,
    ExactFit,
    LmerControl,
    choose_optimizer,
    optimize_theta,
    theta_scaling,
)
from .pls import PLS


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

    def draw(self) -> np.ndarray:
        f = self.fit
        if self.use_u:
            random = self.Z @ f.b
        else:
            u = self.rng.standard_normal(self.Z.shape[1])
            random = f.sigma * (self.Z @ (self.lam @ u))
        return self.mean + np.asarray(random).ravel() + \
            self.noise_sd * self.rng.standard_normal(len(f.y))


def simulate(fit: ExactFit, nsim: int, seed, use_u: bool = False) -> np.ndarray:
    """``nsim`` responses from the fitted model, as columns of an n × nsim array."""
    sim = Simulator(fit, np.random.default_rng(seed), use_u)
    return np.column_stack([sim.draw() for _ in range(nsim)])


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

    def refit(self, y: np.ndarray) -> tuple[np.ndarray, float, np.ndarray, int]:
        """θ, σ, β and the optimiser's code for response y."""
        f = self.fit
        r = y - f.offset
        if self.sw is not None:
            r = r * self.sw
        self.pls.cp = f.pls.cp.with_response(self.X, self.Zt, r)
        theta, code, _ = optimize_theta(self.pls, f.REML, f.theta / self.scale, self.lower,
                                        self.scale, self.control, self.method)
        sol = self.pls.solve(theta)
        n, p = len(y), self.X.shape[1]
        sigma = float(np.sqrt(sol.pwrss / (n - p if f.REML else n)))
        return theta, sigma, sol.beta, code


def bootstrap(fit: ExactFit, nsim: int, seed) -> np.ndarray:
    """nsim × k replicates of lme4's parameters (sd/cor per θ element, σ, then β), each from
    a response simulated from the fit and refitted (bootMer with confint's FUN)."""
    sim = Simulator(fit, np.random.default_rng(seed))
    refitter = Refitter(fit)
    design = fit.design
    k = len(fit.theta) + 1 + len(fit.solution.beta)
    out = np.empty((nsim, k))
    failed = 0
    for i in range(nsim):
        theta, sigma, beta, code = refitter.refit(sim.draw())
        failed += code < 0 or code == 5
        out[i] = np.concatenate([design.sdcor(theta, sigma), beta])
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


__all__ = ["Refitter", "Simulator", "boot_intervals", "bootstrap", "norm_inter", "simulate"]
