"""Covariance structures of random terms: maps from θ to the relative covariance factor Λ.

The covariance of a term's effects is D = σ² Λ Λ' (lme4 JSS eq. 4). For grouped terms Λ is
block diagonal, I_q ⊗ T with a p×p template T; for a spatial term it is one dense q×q block.
Engines only call ``theta0``, ``lower``, ``template`` / ``block`` and ``Lambda``; profiling
also maps θ to and from the standard deviations and correlations lme4 reports (``to_sdcor``,
``from_sdcor``: lme4's Cv_to_Sv and Sv_to_Cv).
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
from scipy.spatial.distance import cdist


class CovarianceSpec(ABC):
    """θ ↔ Λ for one random term."""

    @property
    @abstractmethod
    def n_theta(self) -> int: ...

    @abstractmethod
    def theta0(self) -> np.ndarray:
        """Starting values (lme4 starts at Λ = I)."""

    @abstractmethod
    def lower(self) -> np.ndarray:
        """Lower bounds of θ (diagonals of Λ are non-negative)."""

    @abstractmethod
    def theta_names(self, term_names: list[str]) -> list[str]: ...

    @abstractmethod
    def Lambda(self, theta: np.ndarray, q: int) -> sp.csc_matrix:
        """The term's block of Λ, of size (q·p) × (q·p)."""

    @abstractmethod
    def sdcor_kinds(self) -> list[str]:
        """Per element of θ, what it becomes on lme4's reported scale: "sd", "cor", or
        "lengthscale"."""

    @abstractmethod
    def to_sdcor(self, theta: np.ndarray, sigma: float) -> np.ndarray:
        """θ as the standard deviations (σ·relative) and correlations lme4 reports."""

    @abstractmethod
    def from_sdcor(self, values: np.ndarray, sigma: float) -> np.ndarray | None:
        """The θ with these standard deviations and correlations; None when the
        correlations do not form a positive semi-definite matrix."""


def semidefinite_cholesky(A: np.ndarray, tol: float = 1e-10) -> np.ndarray | None:
    """Lower-triangular L with L L' = A for a positive semi-definite A (a zero pivot gives a
    zero column, as for a correlation of ±1 or a zero variance); None if A is indefinite."""
    p = A.shape[0]
    L = np.zeros_like(A, dtype=np.float64)
    scale = max(float(np.max(np.abs(np.diag(A)))), 1e-300)
    for j in range(p):
        d = A[j, j] - L[j, :j] @ L[j, :j]
        col = A[j + 1:, j] - L[j + 1:, :j] @ L[j, :j]
        if d > tol * scale:
            L[j, j] = np.sqrt(d)
            L[j + 1:, j] = col / L[j, j]
        elif d < -tol * scale or np.any(np.abs(col) > np.sqrt(tol) * scale):
            return None
    return L


@functools.lru_cache(maxsize=64)
def _tril(p: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) of a p × p lower triangle, column by column (read-only: cached, as the
    template is built at every PIRLS step)."""
    cols, rows = np.triu_indices(p)
    rows.flags.writeable = cols.flags.writeable = False
    return rows, cols


@dataclass(frozen=True)
class Unstructured(CovarianceSpec):
    """A full p×p covariance: T lower triangular, θ its lower triangle column by column."""

    p: int

    @property
    def n_theta(self) -> int:
        return self.p * (self.p + 1) // 2

    def tril(self) -> tuple[np.ndarray, np.ndarray]:
        # lme4 stores θ column-major over the lower triangle: (1,1), (2,1), ..., (2,2), ...
        return _tril(self.p)

    def theta0(self) -> np.ndarray:
        rows, cols = self.tril()
        return (rows == cols).astype(np.float64)

    def lower(self) -> np.ndarray:
        rows, cols = self.tril()
        return np.where(rows == cols, 0.0, -np.inf)

    def template(self, theta: np.ndarray) -> np.ndarray:
        T = np.zeros((self.p, self.p))
        rows, cols = self.tril()
        T[rows, cols] = theta
        return T

    def theta_names(self, term_names: list[str]) -> list[str]:
        rows, cols = self.tril()
        return [term_names[r] if r == c else f"{term_names[r]}.{term_names[c]}"
                for r, c in zip(rows, cols)]

    def Lambda(self, theta: np.ndarray, q: int) -> sp.csc_matrix:
        return sp.kron(sp.identity(q, format="csc"), sp.csc_matrix(self.template(theta)),
                       format="csc")

    def sdcor_kinds(self) -> list[str]:
        rows, cols = self.tril()
        return ["sd" if r == c else "cor" for r, c in zip(rows, cols)]

    def to_sdcor(self, theta: np.ndarray, sigma: float) -> np.ndarray:
        T = self.template(theta)
        S = T @ T.T
        sd = np.sqrt(np.diag(S))
        rows, cols = self.tril()
        out = np.empty(len(rows))
        for k, (r, c) in enumerate(zip(rows, cols)):
            denom = sd[r] * sd[c]
            out[k] = sigma * sd[r] if r == c else (S[r, c] / denom if denom > 0 else 0.0)
        return out

    def from_sdcor(self, values: np.ndarray, sigma: float) -> np.ndarray | None:
        rows, cols = self.tril()
        C = np.eye(self.p)
        sd = np.zeros(self.p)
        for v, r, c in zip(values, rows, cols):
            if r == c:
                sd[r] = v / sigma
            else:
                C[r, c] = C[c, r] = v
        L = semidefinite_cholesky(sd[:, None] * C * sd[None, :])
        return None if L is None else L[rows, cols]


@dataclass(frozen=True)
class Diagonal(CovarianceSpec):
    """Independent effects with their own variances: T = diag(θ)."""

    p: int

    @property
    def n_theta(self) -> int:
        return self.p

    def theta0(self) -> np.ndarray:
        return np.ones(self.p)

    def lower(self) -> np.ndarray:
        return np.zeros(self.p)

    def template(self, theta: np.ndarray) -> np.ndarray:
        return np.diag(np.asarray(theta, dtype=np.float64))

    def theta_names(self, term_names: list[str]) -> list[str]:
        return list(term_names)

    def Lambda(self, theta: np.ndarray, q: int) -> sp.csc_matrix:
        return sp.kron(sp.identity(q, format="csc"), sp.diags(np.asarray(theta, float)),
                       format="csc")

    def sdcor_kinds(self) -> list[str]:
        return ["sd"] * self.p

    def to_sdcor(self, theta: np.ndarray, sigma: float) -> np.ndarray:
        return sigma * np.abs(np.asarray(theta, dtype=np.float64))

    def from_sdcor(self, values: np.ndarray, sigma: float) -> np.ndarray | None:
        return np.asarray(values, dtype=np.float64) / sigma


@dataclass(frozen=True)
class RBFKernel(CovarianceSpec):
    """A spatial effect over q locations: D = σ_s² exp(-‖s_i − s_j‖² / (2 ℓ²)).

    θ = (σ_s / σ, ℓ): the relative standard deviation and the lengthscale. Λ is
    θ₀ · chol(K_ℓ + jitter·I), a dense lower-triangular q×q block.
    """

    coords: np.ndarray = field(repr=False)  # q × d unique locations
    jitter: float = 1e-6
    lengthscale0: float | None = None  # rbf(..., lengthscale=): where ℓ starts

    @property
    def n_theta(self) -> int:
        return 2

    def theta0(self) -> np.ndarray:
        """σ_s = σ (lme4's start: Λ = I) and ℓ from ``lengthscale0``, else the median sd of
        the coordinates."""
        ell = self.lengthscale0 if self.lengthscale0 is not None else \
            float(np.median(self._scales()))
        return np.array([1.0, ell])

    def _scales(self) -> np.ndarray:
        spread = self.coords.std(axis=0)
        return np.where(spread > 0, spread, 1.0)

    def lower(self) -> np.ndarray:
        return np.array([0.0, 1e-8])

    def theta_names(self, term_names: list[str]) -> list[str]:
        return ["sd", "lengthscale"]

    def kernel(self, lengthscale: float, a: np.ndarray | None = None,
               b: np.ndarray | None = None) -> np.ndarray:
        a = self.coords if a is None else a
        b = self.coords if b is None else b
        K = cdist(a, b, "sqeuclidean")
        K *= -1.0 / (2.0 * lengthscale**2)
        return np.exp(K, out=K)  # in place: at 10,000 locations each q × q array is 800 MB

    def covariance(self, theta: np.ndarray, scale: np.ndarray | None = None) -> np.ndarray:
        """ΛΛ' = θ₀²(K_ℓ + jitter·I), the relative covariance of the q effects, without Λ's
        Cholesky (factor.py's KernelFactor works with it directly); with ``scale``,
        diag(scale)·ΛΛ'·diag(scale), in place."""
        K = self._jittered(float(theta[1]))
        s = float(theta[0]) * (np.ones(len(K)) if scale is None else np.asarray(scale))
        K *= s[:, None]
        K *= s[None, :]
        return K

    def _jittered(self, lengthscale: float) -> np.ndarray:
        """K_ℓ + jitter·I over the training locations (a new array: callers work in place)."""
        K = self.kernel(lengthscale)
        K[np.diag_indices_from(K)] += self.jitter
        return K

    def block(self, theta: np.ndarray) -> np.ndarray:
        K = self._jittered(float(theta[1]))
        L = sla.cholesky(K, lower=True, overwrite_a=True, check_finite=False)
        L *= float(theta[0])
        return L

    def Lambda(self, theta: np.ndarray, q: int) -> sp.csc_matrix:
        return sp.csc_matrix(self.block(theta))

    def sdcor_kinds(self) -> list[str]:
        return ["sd", "lengthscale"]

    def to_sdcor(self, theta: np.ndarray, sigma: float) -> np.ndarray:
        return np.array([sigma * abs(float(theta[0])), float(theta[1])])

    def from_sdcor(self, values: np.ndarray, sigma: float) -> np.ndarray | None:
        return np.array([float(values[0]) / sigma, float(values[1])])

    def kriging_weights(self, b: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """(K_tt + jitter I)⁻¹ b, by Cholesky (K is positive definite): what ``krige`` needs
        of the training locations, the same for every set of new ones."""
        K = self._jittered(float(theta[1]))
        factor = sla.cho_factor(K, lower=True, overwrite_a=True, check_finite=False)
        return sla.cho_solve(factor, np.asarray(b, dtype=np.float64), check_finite=False)

    def krige(self, b: np.ndarray, new_coords: np.ndarray, theta: np.ndarray,
              weights: np.ndarray | None = None) -> np.ndarray:
        """E[b(new) | b(training locations)] = K_nt (K_tt + jitter I)⁻¹ b: the conditional
        mean of the Gaussian process at new locations (the sd ratio cancels). ``weights``:
        ``kriging_weights(b, theta)``, if already at hand."""
        if weights is None:
            weights = self.kriging_weights(b, theta)
        return self.kernel(float(theta[1]), a=np.asarray(new_coords, dtype=np.float64)) @ weights
