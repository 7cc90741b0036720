"""Profile-likelihood intervals of a GLMM (lme4's profile.merMod for glmer fits).

The same ζ and the same root finding as engines/profile.py, on the criterion the fit
minimised (−2 log L by Laplace or adaptive Gauss–Hermite, lme4's stage 2). No scale is
profiled out, so every inner fit runs over the other variance parameters (sd/cor
coordinates, as for an LMM) and the other fixed effects together.
"""

from __future__ import annotations

import numpy as np

from .exact import LmerControl, bobyqa
from .family import gauss_hermite
from .glmm import GlmerFit, glmm_deviance, variance_parameters
from .profile import Profiler, ProfileTarget, inner_steps, unit_scales
from .profile_coords import VarianceCoordinates


class GlmmProfiler(Profiler):
    """ζ for each parameter of a GLMM fit (nAGQ ≥ 1)."""

    def __init__(self, fit: GlmerFit):
        # the fields Profiler's root finding reads (fit, v_hat, kinds, scales, beta_hat,
        # beta_se, base, lowest, _seen), set from the GLMM; no PLS of an LMM is built
        self.fit = fit
        design = fit.design
        self.pirls = fit.pirls
        self.nodes = gauss_hermite(fit.nAGQ) if fit.nAGQ > 1 else None
        self.u0 = fit.modes.u
        # the random effects' sds are θ's own (σ = 1); a family with a dispersion adds
        # σ = √φ as the last variance parameter (lme4's .sigma), else there is none
        self.dispersion = fit.family.has_dispersion
        self.v_hat = variance_parameters(design, fit.family, fit.theta, fit.phi)
        self.kinds = design.sdcor_kinds()[:len(self.v_hat)]
        self.scales = unit_scales(self.kinds, self.v_hat, 0.1)
        self.coords = VarianceCoordinates(design.random, self.kinds, self.scales)
        self.beta_hat = fit.solution.beta
        self.beta_se = np.sqrt(np.diag(fit.beta_vcov()))
        self.control = LmerControl()
        self.base = self._deviance(self.v_hat, self.beta_hat)
        self.lowest = self.base
        self._seen: dict[ProfileTarget, dict[float, tuple[float, np.ndarray]]] = {}

    def _deviance(self, v: np.ndarray, beta: np.ndarray) -> float:
        sds = np.append(v[:-1], 1.0) if self.dispersion else np.append(v, 1.0)
        theta = self.fit.design.theta_of_sdcor(sds)
        if theta is None or (self.dispersion and not v[-1] > 0):
            return 1e300
        phi = float(v[-1]) ** 2 if self.dispersion else 1.0
        return glmm_deviance(self.pirls, theta, beta, self.u0, self.nodes, phi)

    def _estimate_point(self, t: ProfileTarget) -> np.ndarray:
        return np.concatenate([self.v_hat, self.beta_hat])

    def _inner(self, start: np.ndarray, fixed_v: int | None, fixed_b: int | None,
               x: float) -> tuple[float, np.ndarray]:
        """min over every parameter but one (variance ``fixed_v`` or β ``fixed_b``) at x."""
        m = len(self.v_hat)
        uv, lo, hi = self.coords.pack(start[:m], fixed_v)
        free_b = np.arange(len(self.beta_hat)) != (-1 if fixed_b is None else fixed_b)
        se = self.beta_se[free_b]
        beta = start[m:].copy()
        if fixed_b is not None:
            beta[fixed_b] = x
        k = len(uv)

        def split(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            b = beta.copy()
            b[free_b] = u[k:] * se
            return self.coords.unpack(u[:k], fixed_v, x), b

        def objective(u: np.ndarray) -> float:
            return self._deviance(*split(u))

        u0 = np.concatenate([uv, beta[free_b] / se])
        lower = np.concatenate([lo, np.full(len(se), -np.inf)])
        upper = np.concatenate([hi, np.full(len(se), np.inf)])
        u, _, _ = bobyqa(objective, u0, lower, self.control, step=inner_steps(upper),
                         upper=upper)
        v, b = split(u)
        return objective(u), np.concatenate([v, b])

    def _profile_variance(self, t: ProfileTarget, x: float, start: np.ndarray
                          ) -> tuple[float, np.ndarray]:
        return self._inner(start, t.index, None, x)

    def _profile_beta(self, t: ProfileTarget, x: float, start: np.ndarray
                      ) -> tuple[float, np.ndarray]:
        return self._inner(start, None, t.index, x)


__all__ = ["GlmmProfiler"]
