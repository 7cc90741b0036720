"""Kenward and Roger's small-sample inference for the fixed effects (Biometrics 1997), as
pbkrtest computes it for lmerTest: the fixed effects' covariance Φ = (X'Σ⁻¹X)⁻¹ adjusted
for the estimation of the variance parameters, Φ_A = Φ + 2Φ U Φ (KR eqs. 2–5), and the
denominator degrees of freedom of a test of Lβ (KR sec. 3).

Σ = Σ_i γ_i G_i is the marginal covariance: γ the variances and covariances of each random
term (lower triangle, column by column) and σ², G_i = Z_r Z_s' + Z_s Z_r' (r ≠ s) or
Z_r Z_r', and I for σ². The computation is pbkrtest's, on dense n × n matrices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ModelError

# Dense n × n matrices (one per variance parameter): beyond this many observations they
# would not fit in memory
MAX_ROWS = 5000


@dataclass
class AdjustedVcov:
    """Φ_A, and pbkrtest's P_i = −X'Σ⁻¹G_iΣ⁻¹X and W = 2 I_E⁻¹ for the degrees of freedom."""

    phi: np.ndarray
    phi_adjusted: np.ndarray
    P: list[np.ndarray]
    W: np.ndarray

    def df(self, L: np.ndarray) -> float:
        """pbkrtest's Lb_ddf: the denominator df of the test of Lβ = 0."""
        return self._adjustment(np.atleast_2d(L))[0]

    def f_test(self, L: np.ndarray, beta: np.ndarray) -> tuple[float, float, int, float]:
        """pbkrtest's KR_adjust of the F-test of Lβ = 0: the Wald F on Φ_A (unscaled), its
        scaled F, the numerator df q = rank L and the denominator df."""
        L = np.atleast_2d(L)
        ddf, scaling, q = self._adjustment(L)
        Lb = L @ beta
        F = float(Lb @ np.linalg.solve(L @ self.phi_adjusted @ L.T, Lb)) / q
        return F, F * scaling, q, ddf

    def _adjustment(self, L: np.ndarray) -> tuple[float, float, int]:
        """KR sec. 3 (pbkrtest's KR_adjust): the denominator df and the F scaling λ."""
        V0 = self.phi
        theta = L.T @ np.linalg.solve(L @ V0 @ L.T, L)
        tv = theta @ V0
        u = [tv @ P @ V0 for P in self.P]
        A1 = A2 = 0.0
        for i in range(len(u)):
            for j in range(i, len(u)):
                e = 1.0 if i == j else 2.0
                A1 += e * self.W[i, j] * np.trace(u[i]) * np.trace(u[j])
                A2 += e * self.W[i, j] * np.sum(u[i] * u[j].T)
        q = int(np.linalg.matrix_rank(L))
        B = (A1 + 6 * A2) / (2 * q)
        g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
        c1, c2, c3 = (g / (3 * q + 2 * (1 - g)), (q - g) / (3 * q + 2 * (1 - g)),
                      (q + 2 - g) / (3 * q + 2 * (1 - g)))
        v0 = 1 + c1 * B
        v0 = 0.0 if abs(v0) < 1e-10 else v0
        v1, v2 = 1 - c2 * B, 1 - c3 * B
        ratio = 0.0 if v1 == 0 else (1 - A2 / q) / v1
        rho = ratio**2 * v0 / v2 / q
        ddf = float(4 + (q + 2) / (q * rho - 1))
        scaling = 1.0 if abs(ddf - 4) < 1e-2 else ddf * (1 - A2 / q) / (ddf - 2)
        return ddf, scaling, q


@dataclass
class Marginal:
    """Σ = Σ_i γ_i G_i, kept factored: each G_i (but σ²'s identity, the last) as
    ``left @ right.T`` (plus its transpose for a covariance between two columns), and Σ⁻¹
    by the Woodbury identity on Σ = σ²I + MM' (M = Z times a square root of the random
    effects' covariance) — O(n²q) where Σ's inverse and the products G_iΣ⁻¹ are O(n³)."""

    factors: list[tuple[np.ndarray, np.ndarray, bool]]  # (left, right, symmetrise)
    inverse: np.ndarray

    def times_inverse(self, i: int) -> np.ndarray:
        """G_i Σ⁻¹ (pbkrtest's G_i %*% SigmaInv), from G_i's factors."""
        if i == len(self.factors):
            return self.inverse
        left, right, symmetrise = self.factors[i]
        out = left @ (right.T @ self.inverse)
        if symmetrise:
            out += right @ (left.T @ self.inverse)
        return out


def marginal_covariance(Zs: list, covariances: list[np.ndarray], sigma2: float) -> Marginal:
    """Σ's parts (pbkrtest's get_SigmaG): ``Zs`` each random term's n × (q·p) Z with a
    level's p columns together, ``covariances`` its p × p covariance; γ runs over each
    term's lower triangle (column by column), then σ²."""
    factors, roots = [], []
    for Z, D in zip(Zs, covariances):
        p = D.shape[0]
        Z = np.asarray(Z.todense() if hasattr(Z, "todense") else Z)
        parts = [Z[:, r::p] for r in range(p)]
        for s in range(p):
            for r in range(s, p):
                factors.append((parts[r], parts[s], r != s))
        values, vectors = np.linalg.eigh(D)
        root = vectors * np.sqrt(np.clip(values, 0.0, None))  # D = root root'
        roots.append(Z @ np.kron(np.eye(Z.shape[1] // p), root))
    M = np.hstack(roots) if roots else np.zeros((0, 0))
    n = M.shape[0]
    core = np.linalg.solve(sigma2 * np.eye(M.shape[1]) + M.T @ M, M.T)
    inverse = (np.eye(n) - M @ core) / sigma2  # (σ²I + MM')⁻¹
    return Marginal(factors, (inverse + inverse.T) / 2)


def adjusted_vcov(X: np.ndarray, phi: np.ndarray, marginal: Marginal) -> AdjustedVcov:
    """pbkrtest's vcovAdj16_internal: Φ_A = Φ + 2ΦUΦ, U = Σ_ij W_ij (Q_ij − P_i Φ P_j)."""
    if X.shape[0] > MAX_ROWS:
        raise ModelError(f"Kenward-Roger's method works on dense n × n matrices; this model "
                         f"has {X.shape[0]} observations (at most {MAX_ROWS}): use "
                         f"ddf='Satterthwaite'")
    Sinv = marginal.inverse
    T = Sinv @ X
    m = len(marginal.factors) + 1
    H = [marginal.times_inverse(i) for i in range(m)]
    O = [Hi @ X for Hi in H]
    P = [-(Oi.T @ T + (Oi.T @ T).T) / 2 for Oi in O]
    Q = {(i, j): O[i].T @ Sinv @ O[j] for i in range(m) for j in range(i, m)}
    K = np.array([[np.sum(H[i].T * H[j]) for j in range(m)] for i in range(m)])
    IE2 = np.empty((m, m))
    for i in range(m):
        PhiPi = phi @ P[i]
        for j in range(i, m):
            IE2[i, j] = IE2[j, i] = (K[i, j] - 2 * np.sum(phi * Q[i, j])
                                     + np.sum(PhiPi * (P[j] @ phi)))
    condition = np.min(np.abs(np.linalg.eigvalsh(IE2)))
    W = 2 * (np.linalg.inv(IE2) if condition > 1e-10 else np.linalg.pinv(IE2))
    W = (W + W.T) / 2
    U = np.zeros_like(phi)
    for i in range(m):
        for j in range(i + 1, m):
            U += W[i, j] * (Q[i, j] - P[i] @ phi @ P[j])
    U = U + U.T
    for i in range(m):
        U += W[i, i] * (Q[i, i] - P[i] @ phi @ P[i])
    return AdjustedVcov(phi, phi + 2 * phi @ U @ phi, P, W)


__all__ = ["MAX_ROWS", "AdjustedVcov", "Marginal", "adjusted_vcov", "marginal_covariance"]
