"""Profile-likelihood confidence intervals: lme4's ``confint(method = "profile")``.

The profile of one parameter ψ is ζ(ψ) = sign(ψ − ψ̂) √(d(ψ) − d(ψ̂)), where d(ψ) is the ML
deviance minimised over every other parameter with ψ held fixed (Bates et al., JSS 2015,
section 5.1). The parameters are lme4's: the standard deviations and correlations of the
random effects, σ, and the fixed effects. An interval's ends solve ζ(ψ) = ±z, z the normal
quantile of (1 + level) / 2. lme4 profiles a REML fit on the ML deviance too (its devfun2
calls refitML), so both start from the ML fit.

lme4 evaluates ζ on a grid and reads the ends off an interpolating spline; here each end is
a root of ζ found directly (bracketed, then Brent's method), so the two agree to the
spline's accuracy, and no grid is needed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np
from scipy.optimize import brentq

from ..errors import warn
from .exact import ExactFit, LmerControl, bobyqa, fit_lmer, optimize_theta, theta_scaling
from .pls import PLS
from .profile_coords import BOUNDS, VarianceCoordinates


class ProfileWarning(UserWarning):
    """Profiling met a lower deviance than the fit's, or a profile that never reached an
    interval's end (the end is then NaN, as lme4's NA)."""


_BOUNDS = {**BOUNDS, "beta": (-np.inf, np.inf)}
# BOBYQA's first step in the inner fits, on their unit scale: each starts at the optimum of a
# nearby point, so a small first step halves the evaluations against nlopt's default; the
# angles of a correlation matrix take a larger one, which keeps the fits of 3×3 terms from
# stalling short of the optimum (ends 0.46 instead of 0.81 for sleepstudy's quadratic model)
INNER_STEP = 0.05
ANGLE_STEP = 0.3


def unit_scales(kinds: list[str], values: np.ndarray, floor: float) -> np.ndarray:
    """Each variance parameter's natural size: 1 for a correlation, the estimate for a
    lengthscale, else the estimate but at least ``floor`` (an sd may be estimated at 0)."""
    return np.array([1.0 if k == "cor" else abs(v) if k == "lengthscale" else
                     max(abs(v), floor) for k, v in zip(kinds, values)])


def inner_steps(upper: np.ndarray) -> np.ndarray:
    """BOBYQA's first steps: ANGLE_STEP for correlation angles (bounded by π), else
    INNER_STEP."""
    return np.where(upper == np.pi, ANGLE_STEP, INNER_STEP)


@dataclass(frozen=True)
class ProfileTarget:
    """One profiled parameter: its kind, position and ML estimate."""

    kind: str        # "sd", "cor", "lengthscale", "sigma" or "beta"
    index: int       # position in the variance parameters (sd/cor, then σ) or in β
    estimate: float
    scale: float     # its natural size, for the first step and the tolerances

    @property
    def bounds(self) -> tuple[float, float]:
        return _BOUNDS[self.kind]


class Profiler:
    """ζ for each parameter of one ML fit, and the interval ends where ζ = ±z. The inner
    fits (``_profile_variance``, ``_profile_beta``) are the model's; the root finding is
    shared with GLMMs (profile_glmm.GlmmProfiler)."""

    def __init__(self, fit: ExactFit):
        if fit.REML:
            raise ValueError("profile the ML fit (see ml_fit)")
        self.fit = fit
        design = fit.design
        self.terms = design.random
        self.split = design.split_theta
        cp = fit.pls.cp
        self.cp = cp
        # a PLS of its own, so the fit's factor stays at its θ
        self.pls = PLS(design.random, cp, design.split_theta, fit.pls.Lambda)
        self.base = fit.solution.ml
        self.lowest = self.base
        sigma = fit.sigma
        self.v_hat = design.sdcor(fit.theta, sigma)
        self.kinds = design.sdcor_kinds()
        self.scales = unit_scales(self.kinds, self.v_hat, 0.1 * sigma)
        self.coords = VarianceCoordinates(self.terms, self.kinds, self.scales)
        self.beta_hat = fit.solution.beta
        self.beta_se = np.sqrt(np.diag(fit.beta_vcov()))  # Wald, at the ML fit
        self.theta_lower = design.theta_lower()
        self.theta_scale = theta_scaling(design)
        self.control = LmerControl()
        self._beta_pls: PLS | None = None
        self._seen: dict[ProfileTarget, dict[float, tuple[float, np.ndarray]]] = {}

    # -- the targets ----------------------------------------------------------------------
    def targets(self) -> list[ProfileTarget]:
        """The variance parameters (lme4's .sig01, ..., .sigma), then the fixed effects."""
        out = [ProfileTarget(kind, i, float(value), float(scale))
               for i, (kind, value, scale) in enumerate(zip(self.kinds, self.v_hat,
                                                            self.scales))]
        for j, (b, se) in enumerate(zip(self.beta_hat, self.beta_se)):
            out.append(ProfileTarget("beta", j, float(b), float(se)))
        return out

    # -- deviances ------------------------------------------------------------------------
    def variance_deviance(self, v: np.ndarray) -> float:
        """The ML deviance at variance parameters v, minimised over β (JSS eq. 34 before σ is
        profiled out: log|A| + n log(2πσ²) + r²(θ)/σ² − Σ log w)."""
        theta = self.fit.design.theta_of_sdcor(v)
        if theta is None:
            return np.inf
        sol = self.pls.solve(theta)
        sigma2 = v[-1] ** 2
        return float(sol.logdet_A + self.cp.n * np.log(2.0 * np.pi * sigma2)
                     + sol.pwrss / sigma2 - self.cp.sum_log_w)

    def _profile_variance(self, t: ProfileTarget, x: float, start: np.ndarray
                          ) -> tuple[float, np.ndarray]:
        """min over the other variance parameters with parameter t.index at x."""
        coords = self.coords
        u0, lower, upper = coords.pack(start, t.index)

        def objective(u: np.ndarray) -> float:
            value = self.variance_deviance(coords.unpack(u, t.index, x))
            return value if np.isfinite(value) else 1e300

        u, _, _ = bobyqa(objective, u0, lower, self.control, step=inner_steps(upper),
                         upper=upper)
        return objective(u), coords.unpack(u, t.index, x)

    def _beta_model(self, j: int, value: float) -> PLS:
        """The PLS of the model with β_j fixed at ``value``: column j moves into the offset,
        so only the products with the response change (X'y − X'x_j b, ...)."""
        cp = self.cp
        keep = np.arange(cp.p) != j
        xj_Z, xj_X = cp.ZtX[:, j], cp.XtX[:, j]
        reduced = replace(cp, ZtX=cp.ZtX[:, keep], Zty=cp.Zty - xj_Z * value,
                          XtX=cp.XtX[np.ix_(keep, keep)], Xty=(cp.Xty - xj_X * value)[keep],
                          yty=float(cp.yty - 2.0 * value * cp.Xty[j] + value**2 * cp.XtX[j, j]),
                          p=cp.p - 1)
        if self._beta_pls is None:  # Z'Z, hence the factor, is the same for every β_j
            self._beta_pls = PLS(self.terms, reduced, self.split, self.fit.pls.Lambda)
        self._beta_pls.cp = reduced
        return self._beta_pls

    def _profile_beta(self, t: ProfileTarget, x: float, start: np.ndarray
                      ) -> tuple[float, np.ndarray]:
        """min over θ (β's other elements and σ profiled out) with β_j at x."""
        pls = self._beta_model(t.index, x)
        s = self.theta_scale
        theta, _, _ = optimize_theta(pls, False, start / s, self.theta_lower, s, self.control,
                                     "bobyqa", step=np.full(len(s), INNER_STEP))
        value = pls.deviance(theta, REML=False)
        return (value if np.isfinite(value) else 1e300), theta

    def zeta(self, t: ProfileTarget, x: float) -> float:
        """ζ at x (NaN where no valid model has ψ = x). The inner fit starts from the optimum
        at the nearest value evaluated so far between x and ψ̂, so the profile is followed
        outward from the fit, as lme4 traces it: a far probe that landed on a poorer local
        optimum is never the start of a nearer one."""
        seen = self._seen.setdefault(t, {t.estimate: (0.0, self._estimate_point(t))})
        if x in seen:
            return seen[x][0]
        inside = [y for y in seen if (y - t.estimate) * (x - y) >= 0]
        start = seen[min(inside, key=lambda y: abs(y - x))][1]
        if t.kind == "beta":
            dev, where = self._profile_beta(t, x, start)
        else:
            dev, where = self._profile_variance(t, x, start)
        if not dev < 1e299:  # no valid parameters with ψ = x (e.g. a correlation of ±1)
            return np.nan
        self.lowest = min(self.lowest, dev)
        value = float(np.sign(x - t.estimate) * np.sqrt(max(dev - self.base, 0.0)))
        seen[x] = (value, where)
        return value

    def _estimate_point(self, t: ProfileTarget) -> np.ndarray:
        return (self.fit.theta if t.kind == "beta" else self.v_hat).copy()

    # -- interval ends --------------------------------------------------------------------
    def end(self, t: ProfileTarget, side: int, z: float) -> float:
        """The value on one side (−1 lower, +1 upper) where |ζ| reaches z, or the parameter's
        bound when ζ stays short of it there (e.g. a standard deviation whose interval
        includes 0)."""
        bound = t.bounds[0] if side < 0 else t.bounds[1]
        if side * (bound - t.estimate) <= 0:
            return bound
        inside = t.estimate  # the farthest value known to lie inside the interval
        step = 0.5 * t.scale if t.kind != "beta" else z * t.scale  # β: the Wald end
        for _ in range(60):
            x = t.estimate + side * step
            at_bound = side * (x - bound) >= 0
            if at_bound:
                x = bound
            zx = self.zeta(t, x)
            if np.isnan(zx):  # no model there: the end lies between
                return self._edge(t, inside, x, side, z)
            if side * zx >= z:
                return self._root(t, side * z, inside, x)
            if at_bound:
                return bound
            inside = x
            # ζ is close to linear in ψ: aim a little past the end, growing at least 1.5×
            reach = side * zx
            step *= min(max(1.1 * z / reach, 1.5), 8.0) if reach > 0 else 2.0
        return np.nan

    def _edge(self, t: ProfileTarget, a: float, b: float, side: int, z: float) -> float:
        """Between a (a model) and b (none), narrow in on the last valid value; the end is
        there unless ζ reaches z before it."""
        for _ in range(40):
            mid = 0.5 * (a + b)
            zm = self.zeta(t, mid)
            if np.isnan(zm):
                b = mid
            elif side * zm >= z:
                return self._root(t, side * z, a, mid)
            else:
                a = mid
        return a

    def _root(self, t: ProfileTarget, target: float, a: float, b: float) -> float:
        """Brent's method for ζ = target between a (inside) and b (ζ past the target)."""
        def f(x: float) -> float:
            value = self.zeta(t, x)
            return target if np.isnan(value) else value - target  # no model: past the end

        return float(brentq(f, a, b, xtol=1e-7 * t.scale, rtol=1e-10, maxiter=100))


def ml_fit(fit: ExactFit) -> ExactFit:
    """The ML fit of the same model (lme4 profiles REML fits on the ML deviance)."""
    if not fit.REML:
        return fit
    with warnings.catch_warnings():  # the fit's own warnings were given already
        warnings.simplefilter("ignore")
        return fit_lmer(fit.design, REML=False, weights=fit.weights, start=fit.theta)


def make_profiler(fit: ExactFit) -> Profiler:
    """The profiler for this kind of fit: an LMM's from its ML fit, a GLMM's as it is."""
    from .glmm import GlmerFit
    from .profile_glmm import GlmmProfiler  # it builds on this module

    return GlmmProfiler(fit) if isinstance(fit, GlmerFit) else Profiler(ml_fit(fit))


def profile_intervals(fit: ExactFit, which: list[int], level: float,
                      names: list[str]) -> np.ndarray:
    """Profile intervals (rows: lower, upper) for the parameters at positions ``which`` of
    Profiler.targets(): variance parameters first (sd/cor per term, σ), then β, called
    ``names`` in warnings."""
    profiler = make_profiler(fit)
    ends = _ends(profiler, which, level, names)
    _check_base(profiler)
    return ends


def profile_points(fit: ExactFit, which: list[int], level: float, points: int,
                   names: list[str]) -> list[tuple[np.ndarray, np.ndarray]]:
    """lme4's profile(): per parameter, values from the ``level`` interval's lower end to its
    upper end (``points`` on each side of the estimate, which is one of them) and ζ at each,
    traced outward from the estimate."""
    profiler = make_profiler(fit)
    ends = _ends(profiler, which, level, names)
    targets = profiler.targets()
    out = []
    for (lo, hi), i in zip(ends, which):
        t = targets[i]
        xs, zs = [t.estimate], [0.0]
        for end in (lo, hi):
            if not np.isfinite(end) or end == t.estimate:
                continue
            for x in np.linspace(t.estimate, end, points + 1)[1:]:  # outward
                xs.append(float(x))
                zs.append(profiler.zeta(t, float(x)))
        order = np.argsort(xs)
        out.append((np.asarray(xs)[order], np.asarray(zs)[order]))
    _check_base(profiler)
    return out


def _ends(profiler: Profiler, which: list[int], level: float, names: list[str]) -> np.ndarray:
    from scipy.stats import norm

    targets = profiler.targets()
    z = float(norm.ppf(0.5 + level / 2.0))
    out = np.full((len(which), 2), np.nan)
    for row, i in enumerate(which):
        t = targets[i]
        out[row] = [profiler.end(t, -1, z), profiler.end(t, +1, z)]
    short = [i for row, i in enumerate(which) if np.isnan(out[row]).any()]
    if short:
        warn(f"the profile of parameter{'s' if len(short) > 1 else ''} "
             f"{', '.join(names[i] for i in short)} never reached its interval's end: "
             f"that end is NaN", ProfileWarning)
    return out


def _check_base(profiler: Profiler) -> None:
    if profiler.lowest < profiler.base - 1e-6:
        warn(f"profiling found a lower deviance ({profiler.lowest:.6f}) than the fit's "
             f"({profiler.base:.6f}): the fit may not be at the optimum, so the intervals "
             f"are suspect", ProfileWarning)


__all__ = ["ProfileTarget", "ProfileWarning", "Profiler", "inner_steps", "make_profiler",
           "ml_fit", "profile_intervals", "profile_points", "unit_scales"]
