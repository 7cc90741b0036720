"""Satterthwaite's degrees of freedom for t-tests of the fixed effects, as lmerTest computes
them (Kuznetsova, Brockhoff & Christensen, JSS 2017, sec. 3.2).

The variance parameters φ = (θ, σ) have the asymptotic covariance A = 2 H⁻¹, H the Hessian of
the (RE)ML deviance in φ (not profiled over σ); Cov(β̂) = σ² (R_X'R_X)⁻¹ is a function of φ.
For a contrast ℓ, with c = ℓ'Cov(β̂)ℓ and g_i = ℓ' ∂Cov(β̂)/∂φ_i ℓ, ν = 2c² / (g'Ag)
(JSS eq. 4). The derivatives are numerical, by numDeriv's Richardson extrapolation with its
default steps, as lmerTest takes them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .pls import PLS

# numDeriv's defaults for method = "Richardson": relative steps d = 1e-4 for jacobian(),
# d = 0.1 for hessian() (genD)
_EPS, _D_JACOBIAN, _D_HESSIAN, _R, _V = 1e-4, 1e-4, 0.1, 4, 2
_ZERO_TOL = math.sqrt(np.finfo(float).eps / 7e-7)
# lmerTest's tolerance for the Hessian's eigenvalues
EIGEN_TOL = 1e-8


@dataclass
class VarparDerivatives:
    """A (φ's asymptotic covariance), the Jacobian of Cov(β̂) in φ (one p × p matrix per
    element of φ), and the Hessian's eigenvalues that are not clearly positive."""

    vcov_varpar: np.ndarray
    jacobian: list[np.ndarray]
    negative: np.ndarray
    near_zero: np.ndarray

    def df(self, L: np.ndarray, vcov_beta: np.ndarray) -> float:
        """Satterthwaite's ν for the contrast ℓ'β (JSS eq. 4)."""
        var = float(L @ vcov_beta @ L)
        grad = np.array([L @ J @ L for J in self.jacobian])
        return 2.0 * var**2 / float(grad @ self.vcov_varpar @ grad)

    def f_test(self, L: np.ndarray, beta: np.ndarray, vcov_beta: np.ndarray
               ) -> tuple[float, int, float]:
        """lmerTest's contestMD: the F statistic of Lβ = 0, its numerator df q (the rank of
        L Cov(β̂) L') and Satterthwaite's denominator df (JSS eqs. 6–7): the q
        independent t-statistics of the eigenvectors of L Cov(β̂) L', each with its ν_m,
        and ν = 2E/(E − q) for E = Σ ν_m/(ν_m − 2)."""
        VL = L @ vcov_beta @ L.T
        d, P = np.linalg.eigh(VL)
        d, P = d[::-1], P[:, ::-1]  # decreasing, as R's eigen()
        q = int((d > max(np.sqrt(np.finfo(float).eps) * d[0], 0.0)).sum())
        if q == 0:
            return float("nan"), 0, float("nan")
        PtL = (P.T @ L)[:q]
        F = float(((PtL @ beta) ** 2 / d[:q]).sum() / q)
        nu = np.array([self.df(row, vcov_beta) for row in PtL])
        return F, q, _f_ddf(nu)


def derivatives(pls: PLS, theta: np.ndarray, sigma: float, REML: bool) -> VarparDerivatives:
    """H and the Jacobian at φ̂ = (θ̂, σ̂), and A = 2 H⁺ over the eigenvalues above
    EIGEN_TOL (lmerTest's generalised inverse); ``pls`` is left solved at θ̂."""
    varpar = np.append(np.asarray(theta, dtype=np.float64), sigma)
    try:
        H = hessian(_deviance(pls, REML), varpar)
        J = jacobian(lambda v: _vcov_beta(pls, v).ravel(), varpar)
    finally:
        pls.solve(theta)
    values, vectors = np.linalg.eigh(H)
    keep = values > EIGEN_TOL
    inverse = (vectors[:, keep] / values[keep]) @ vectors[:, keep].T
    p = pls.cp.p
    return VarparDerivatives(2.0 * inverse, [J[:, i].reshape(p, p) for i in range(J.shape[1])],
                             values[values < -EIGEN_TOL],
                             values[np.abs(values) <= EIGEN_TOL])


def _f_ddf(nu: np.ndarray) -> float:
    """lmerTest's get_Fstat_ddf."""
    if len(nu) == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < 1e-8):
        return float(nu.mean())
    if np.any(nu <= 2):
        return 2.0
    E = float((nu / (nu - 2)).sum())
    return 2 * E / (E - len(nu))


def _deviance(pls: PLS, REML: bool) -> Callable[[np.ndarray], float]:
    """−2 log L at (θ, σ), σ not profiled out (lmerTest's devfun_vp; constants kept)."""
    n, p = pls.cp.n, pls.cp.p

    def deviance(varpar: np.ndarray) -> float:
        s2 = varpar[-1] ** 2
        sol = pls.solve(varpar[:-1], spherical=False)
        dev = sol.logdet_A + sol.pwrss / s2 + n * math.log(2 * math.pi * s2)
        if REML:
            dev += sol.logdet_RX - p * math.log(2 * math.pi * s2)
        return dev

    return deviance


def _vcov_beta(pls: PLS, varpar: np.ndarray) -> np.ndarray:
    """σ² (R_X'R_X)⁻¹ at θ (lmerTest's get_covbeta)."""
    inv = np.linalg.inv(pls.solve(varpar[:-1], spherical=False).RX)
    return varpar[-1] ** 2 * inv @ inv.T


def _steps(x: np.ndarray, d: float) -> np.ndarray:
    return np.abs(d * x) + _EPS * (np.abs(x) < _ZERO_TOL)


def _extrapolate(a: np.ndarray) -> np.ndarray:
    """Richardson's extrapolation over the first axis (steps halved each time)."""
    for m in range(1, _R):
        a = (a[1:] * 4**m - a[:-1]) / (4**m - 1)
    return a[0]


def jacobian(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    """numDeriv's jacobian(method = "Richardson"): central differences, extrapolated."""
    h0 = _steps(x, _D_JACOBIAN)
    columns = []
    for i in range(len(x)):
        a, h = [], h0.copy()
        for _ in range(_R):
            e = np.zeros_like(x)
            e[i] = h[i]
            a.append((f(x + e) - f(x - e)) / (2 * h[i]))
            h = h / _V
        columns.append(_extrapolate(np.array(a)))
    return np.column_stack(columns)


def hessian(f: Callable[[np.ndarray], float], x: np.ndarray) -> np.ndarray:
    """numDeriv's hessian (genD): second differences, the off-diagonal ones from steps along
    both axes at once less the diagonal's share, each extrapolated."""
    f0, n, h0 = f(x), len(x), _steps(x, _D_HESSIAN)
    H = np.zeros((n, n))
    for i in range(n):
        a, h = [], h0.copy()
        for _ in range(_R):
            e = np.zeros(n)
            e[i] = h[i]
            a.append((f(x + e) - 2 * f0 + f(x - e)) / h[i] ** 2)
            h = h / _V
        H[i, i] = _extrapolate(np.array(a))
    for i in range(n):
        for j in range(i):
            a, h = [], h0.copy()
            for _ in range(_R):
                e = np.zeros(n)
                e[i], e[j] = h[i], h[j]
                a.append((f(x + e) - 2 * f0 + f(x - e) - H[i, i] * h[i] ** 2
                          - H[j, j] * h[j] ** 2) / (2 * h[i] * h[j]))
                h = h / _V
            H[i, j] = H[j, i] = _extrapolate(np.array(a))
    return H


__all__ = ["EIGEN_TOL", "VarparDerivatives", "derivatives", "hessian", "jacobian"]
