"""lme4's penalised least squares for one θ (Bates et al., JSS 2015, section 3).

Everything is expressed through solves with A(θ) = Λ'Z'WZΛ + I (see ``factor.py``):

    S = A⁻¹ [Λ'Z'X, Λ'Z'y]                      (lme4's R_ZX and c_u, jointly)
    R_X'R_X = X'X − (Λ'Z'X)' S_X                (JSS eq. 38)
    β̂ = (R_X'R_X)⁻¹ (X'y − (Λ'Z'X)' S_y),  û = S_y − S_X β̂
    r²(θ) = y'y − (Λ'Z'y)' S_y − β̂'(X'y − (Λ'Z'X)' S_y)     (penalised RSS)
    ML:   d(θ) = log|A| + n (1 + log(2π r²/n)) − Σ log w          (JSS eq. 34)
    REML: d(θ) = log|A| + log|R_X'R_X| + (n−p)(1 + log(2π r²/(n−p))) − Σ log w  (eq. 41)
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from ..design.random import RandomTermDesign
from .factor import make_factor


@dataclass
class CrossProducts:
    """The sums of squares and products the profiled deviance needs, computed once."""

    ZtZ: sp.csc_matrix
    ZtX: np.ndarray
    Zty: np.ndarray
    XtX: np.ndarray
    Xty: np.ndarray
    yty: float
    n: int
    p: int
    sum_log_w: float

    @classmethod
    def build(cls, X: np.ndarray, Z: sp.csc_matrix, y: np.ndarray,
              weights: np.ndarray | None) -> CrossProducts:
        n = len(y)
        if weights is not None:
            sw = np.sqrt(weights)
            X = X * sw[:, None]
            Z = sp.diags(sw) @ Z
            y = y * sw
            sum_log_w = float(np.log(weights[weights > 0]).sum())
            # a row of weight 0 (infinite variance) carries no information: the likelihood
            # is that of the data without it, as R's lm takes it (lme4's deviance is Inf)
            n = int(np.count_nonzero(weights))
        else:
            sum_log_w = 0.0
        Zt = Z.T.tocsr()
        return cls(ZtZ=(Zt @ Z).tocsc(), ZtX=np.asarray(Zt @ X), Zty=np.asarray(Zt @ y).ravel(),
                   XtX=X.T @ X, Xty=X.T @ y, yty=float(y @ y), n=n, p=X.shape[1],
                   sum_log_w=sum_log_w)

    def with_response(self, X: np.ndarray, Zt: sp.csr_matrix, y: np.ndarray) -> CrossProducts:
        """The same X, Z (given as Z'; with prior weights W^½X and W^½Z) and another
        response (W^½y): only the products with y are new, so a PLS keeps its factor
        (backfit.py solves many responses)."""
        return replace(self, Zty=np.asarray(Zt @ y).ravel(), Xty=X.T @ y, yty=float(y @ y))


class WeightedCrossProducts:
    """CrossProducts for weights that change every call (PIRLS), without rebuilding sparse
    products: Z'WZ is linear in W, so its values are P·W for a sparse P fixed by Z's pattern
    (one entry per pair of non-zeros sharing a row)."""

    def __init__(self, X: np.ndarray, Z: sp.csc_matrix):
        self.X = X
        Zr = Z.tocsr()
        Zr.sort_indices()
        self.Zt = Z.T.tocsr()
        K = (self.Zt @ Zr).tocsc()
        K.sort_indices()
        self.indices, self.indptr, self.shape = K.indices, K.indptr, K.shape
        q = Z.shape[1]
        cols_of = np.repeat(np.arange(q, dtype=np.int64), np.diff(K.indptr))
        flat = cols_of * q + K.indices  # column-major keys, increasing in CSC order
        counts = np.diff(Zr.indptr)
        rows, a_idx, b_idx, vals = [], [], [], []
        for k in np.unique(counts[counts > 0]):  # rows with k non-zeros, all at once
            sel = np.flatnonzero(counts == k)
            starts = Zr.indptr[sel]
            idx = starts[:, None] + np.arange(k)[None, :]
            c, v = Zr.indices[idx], Zr.data[idx]
            for i in range(k):
                for j in range(k):
                    rows.append(sel)
                    a_idx.append(c[:, i])
                    b_idx.append(c[:, j])
                    vals.append(v[:, i] * v[:, j])
        rows_a = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        pos = np.searchsorted(flat, np.concatenate(b_idx).astype(np.int64) * q
                              + np.concatenate(a_idx)) if rows else np.zeros(0, np.int64)
        self.P = sp.csr_matrix((np.concatenate(vals) if vals else np.zeros(0),
                                (pos, rows_a)), shape=(len(flat), Z.shape[0]))

    def build(self, z: np.ndarray, W: np.ndarray, X: np.ndarray | None = None
              ) -> CrossProducts:
        X = self.X if X is None else X
        ZtZ = sp.csc_matrix((self.P @ W, self.indices, self.indptr), shape=self.shape)
        WX = X * W[:, None]
        Wz = W * z
        return CrossProducts(ZtZ=ZtZ, ZtX=np.asarray(self.Zt @ WX),
                             Zty=np.asarray(self.Zt @ Wz).ravel(), XtX=X.T @ WX,
                             Xty=X.T @ Wz, yty=float(z @ Wz), n=len(z), p=X.shape[1],
                             sum_log_w=0.0)


@dataclass
class PLSSolution:
    """Everything the penalised least squares gives at one θ."""

    theta: np.ndarray
    beta: np.ndarray
    u: np.ndarray | None       # spherical random effects (None: solved without Λ)
    pwrss: float               # penalised weighted residual sum of squares r²(θ)
    logdet_A: float            # log|L_θ|²
    logdet_RX: float           # log|R_X|²
    RX: np.ndarray             # Cholesky factor (upper) of R_X'R_X
    ml: float                  # ML deviance at θ (profiled over β, σ)
    reml: float                # REML criterion at θ
    b: np.ndarray              # the random effects, Λu
    penalty: float             # ‖u‖²


class LambdaMap:
    """θ -> Λ(θ) without rebuilding Λ: for grouped terms every non-zero of Λ is one element of
    θ (lme4's ``Lind``), so only the values change; spatial blocks are recomputed when θ
    changes."""

    def __init__(self, terms: list[RandomTermDesign], split_theta, n_theta: int):
        self.terms = terms
        self.split_theta = split_theta
        self.linear = all(hasattr(t.cov, "template") for t in terms)
        self._last: tuple[np.ndarray, sp.csc_matrix] | None = None  # the last θ and Λ
        self._last_t: sp.csc_matrix | None = None
        if self.linear:
            probe = np.arange(1.0, n_theta + 1.0)
            pattern = self._build(probe)
            self.indptr, self.indices = pattern.indptr, pattern.indices
            self.lind = np.rint(pattern.data).astype(np.int64) - 1
            self.shape = pattern.shape

    def _build(self, theta: np.ndarray) -> sp.csc_matrix:
        blocks = [t.Lambda(th) for t, th in zip(self.terms, self.split_theta(theta))]
        return sp.block_diag(blocks, format="csc")

    def __call__(self, theta: np.ndarray) -> sp.csc_matrix:
        """Λ(θ), kept for the last θ: a spatial block costs a Cholesky (backfitting and the
        BLUPs solve many right-hand sides at one θ), and PIRLS asks for the same Λ at each
        of its steps. Callers must not modify it."""
        if self._last is None or not np.array_equal(self._last[0], theta):
            self._last = (np.array(theta, dtype=np.float64), self._make(theta))
            self._last_t = None
        return self._last[1]

    def transpose(self, theta: np.ndarray) -> sp.csc_matrix:
        """Λ(θ)', kept with Λ(θ)."""
        lam = self(theta)
        if self._last_t is None:
            self._last_t = lam.T
        return self._last_t

    def _make(self, theta: np.ndarray) -> sp.csc_matrix:
        if not self.linear:
            return self._build(theta)
        data = np.asarray(theta, dtype=np.float64)[self.lind]
        return sp.csc_matrix((data, self.indices, self.indptr), shape=self.shape)


class PLS:
    """Evaluates the profiled deviance over θ for one model (the function lme4 optimises)."""

    def __init__(self, terms: list[RandomTermDesign], cp: CrossProducts,
                 split_theta, lambda_map: LambdaMap | None = None,
                 linear_updates: bool = True) -> None:
        self.terms = terms
        self.cp = cp
        self.split_theta = split_theta
        n_theta = sum(t.cov.n_theta for t in terms)
        self.Lambda = lambda_map or LambdaMap(terms, split_theta, n_theta)
        # linear_updates: precompute the Schur-complement map (worth it when one Z'Z is
        # factored for many θ; not when the weights change every time, as in PIRLS)
        self.factor = make_factor(terms, cp.ZtZ, linear_updates)
        self._factor_at: tuple | None = None  # (factor, θ) it was last updated to

    def refresh(self, cp: CrossProducts) -> bool:
        """Take new cross-products with Z'WZ on the same pattern (a PIRLS step), keeping the
        factor's structure; False where the factor cannot (build a new PLS then)."""
        # (a factor with a precomputed Schur map was built for one Z'Z, not for refreshes)
        if not hasattr(self.factor, "refresh") or getattr(self.factor, "_K_map", None):
            return False
        self.factor.refresh(cp.ZtZ)
        self.cp = cp
        self._factor_at = None
        return True

    def solve(self, theta: np.ndarray, spherical: bool = True) -> PLSSolution:
        """β̂, û, b̂ = Λû and the criteria at θ. ``spherical=False``: the caller needs no û
        (b̂ and ‖û‖² suffice), and a KernelFactor then solves without Λ."""
        cp = self.cp
        thetas = self.split_theta(theta)
        if not spherical and hasattr(self.factor, "effects"):
            self.factor.update_kernel(thetas)
            self._factor_at = None  # the factor holds no Λ
            beta, RX, logdet_RX, pwrss, ml, reml = self._profiled(
                self.factor.quadratic(np.column_stack([cp.ZtX, cp.Zty])))
            b, penalty = self.factor.effects(cp.Zty - cp.ZtX @ beta)
            return PLSSolution(np.asarray(theta, float).copy(), beta, None, pwrss,
                               self.factor.logdet, logdet_RX, RX, ml, reml, b, penalty)
        lam = self.Lambda(theta)
        at = self._factor_at
        if at is None or at[0] is not self.factor or not np.array_equal(at[1], theta):
            self.factor.update(thetas, lam)
            self._factor_at = (self.factor, np.array(theta, dtype=np.float64))
        lam_t = self.Lambda.transpose(theta)
        B = np.column_stack([np.asarray(lam_t @ cp.ZtX), np.asarray(lam_t @ cp.Zty).ravel()])
        S = self.factor.solve(B)
        beta, RX, logdet_RX, pwrss, ml, reml = self._profiled(B.T @ S)
        self._last = {"theta": np.asarray(theta, float).copy(), "SX": S[:, : cp.p],
                      "lam": lam}
        u = S[:, cp.p] - S[:, : cp.p] @ beta
        return PLSSolution(np.asarray(theta, float).copy(), beta, u, pwrss, self.factor.logdet,
                           logdet_RX, RX, ml, reml, np.asarray(lam @ u).ravel(), float(u @ u))

    def _profiled(self, Q: np.ndarray) -> tuple:
        """β̂, R_X, log|R_X|², r² and the two criteria from Q = [Λ'Z'X Λ'Z'y]' A⁻¹ [Λ'Z'X
        Λ'Z'y] (the module docstring's formulas) and the factor's log|A|."""
        cp = self.cp
        n, p = cp.n, cp.p
        RtR = cp.XtX - Q[:p, :p]
        rhs = cp.Xty - Q[:p, p]
        if p:
            RX = sla.cholesky(RtR, lower=False, check_finite=False)
            beta = sla.cho_solve((RX, False), rhs, check_finite=False)
            logdet_RX = float(2.0 * np.log(np.diag(RX)).sum())
        else:
            RX, beta, logdet_RX = np.zeros((0, 0)), np.zeros(0), 0.0
        pwrss = max(float(cp.yty - Q[p, p] - beta @ rhs), 1e-300)
        logdet_A = self.factor.logdet
        ml = logdet_A + n * (1.0 + np.log(2.0 * np.pi * pwrss / n)) - cp.sum_log_w
        reml = (logdet_A + logdet_RX + (n - p) * (1.0 + np.log(2.0 * np.pi * pwrss / (n - p)))
                - cp.sum_log_w) if n > p else np.inf
        return beta, RX, logdet_RX, pwrss, float(ml), float(reml)

    @property
    def has_gradient(self) -> bool:
        """Analytic gradients are available when every term is a scalar (p = 1) grouped term."""
        return self.Lambda.linear and all(t.p == 1 for t in self.terms) and hasattr(
            self.factor, "inverse_diagonal") and (
            not hasattr(self.factor, "p1") or self.factor.p1 == 1)

    def deviance_and_gradient(self, theta: np.ndarray, REML: bool) -> tuple[float, np.ndarray]:
        """The profiled criterion and its exact gradient for models of scalar terms.

        With Λ = diag(θ_k) per term and E_k its indicator (paper-free derivation, lme4 notation):
          ∂log|A|/∂θ_k = (2/θ_k) Σ_{j∈k} (1 − (A⁻¹)_jj)        (since A⁻¹Λ'GΛ = I − A⁻¹)
          ∂r²/∂θ_k     = −2 Σ_{j∈k} (Z'r)_j û_j                  (envelope theorem)
          ∂(R_X'R_X)   = −[B_k'S_k + S_k'B_k − S_k'W_k − W_k'S_k],  B = Z'X, S = A⁻¹Λ'Z'X,
                         W = Z'ZΛS, rows of term k
        """
        cp = self.cp
        sol = self.solve(theta)
        SX, lam = self._last["SX"], self._last["lam"]
        n, p = cp.n, cp.p
        N = n - p if REML else n
        value = sol.reml if REML else sol.ml
        ainv = self.factor.inverse_diagonal()
        lam_u = np.asarray(lam @ sol.u).ravel()
        Ztr = cp.Zty - cp.ZtX @ sol.beta - np.asarray(cp.ZtZ @ lam_u).ravel()
        if REML and p:
            W = np.asarray(cp.ZtZ @ np.asarray(lam @ SX))
            RtR = sol.RX.T @ sol.RX
            RtR_inv = np.linalg.inv(RtR)
        grad = np.zeros(len(theta))
        start = 0
        for k, t in enumerate(self.terms):
            idx = slice(start, start + t.q)
            start += t.q
            th = float(theta[k])
            dlogA = (2.0 / th) * float(np.sum(1.0 - ainv[idx])) if th > 0 else 0.0
            dpwrss = -2.0 * float(Ztr[idx] @ sol.u[idx])
            g = dlogA + N * dpwrss / sol.pwrss
            if REML and p:
                Bk, Sk, Wk = cp.ZtX[idx], SX[idx], W[idx]
                dM = -(Bk.T @ Sk + Sk.T @ Bk - Sk.T @ Wk - Wk.T @ Sk)
                g += float(np.sum(RtR_inv * dM))
            grad[k] = g
        return value, grad

    def sigma(self, sol: PLSSolution, REML: bool) -> float:
        """The residual sd that profiles the criterion: √(r²/(n − p)) for REML, √(r²/n)
        for ML (JSS eqs. 33 and 40)."""
        n = self.cp.n - self.cp.p if REML else self.cp.n
        return float(np.sqrt(sol.pwrss / n))

    def deviance(self, theta: np.ndarray, REML: bool) -> float:
        sol = self.solve(theta, spherical=False)  # KernelFactor: without Λ
        return sol.reml if REML else sol.ml
