"""Factorising A(θ) = Λ'Z'WZΛ + I, the heart of lme4's penalised least squares.

MixedModels.jl's observation: the first random term's block of Z'Z is block diagonal (each
row belongs to one level), so its part of A factors level by level; only the remaining terms
need a dense (Schur complement) factor. ``BlockedFactor`` does exactly that:

    A = [A11 A12; A21 A22],  A11 = blockdiag(p1×p1),  S = A22 − A21 A11⁻¹ A12,
    log|A| = Σ log|A11,l| + log|S|,   A⁻¹b by block elimination.

When the remaining terms are too many for a dense S, ``SparseFactor`` uses a sparse LU of
the whole A (SuperLU, symmetric mode). Engines only call ``update``, ``logdet`` and
``solve``.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..design.covariance import Diagonal, Unstructured
from ..design.random import RandomTermDesign
from ..errors import ModelError

DENSE_LIMIT = 6000  # largest dense Schur complement (doubles: 6000² × 8 B ≈ 290 MB)


class BlockedFactor:
    """A(θ) for terms whose first one is a grouped (block-diagonal) term."""

    def __init__(self, terms: list[RandomTermDesign], ZtZ: sp.csc_matrix):
        self.terms = terms
        first = terms[0]
        self.q1, self.p1 = first.q, first.p
        n1 = self.q1 * self.p1
        self.n1 = n1
        self.n2 = ZtZ.shape[0] - n1
        G = ZtZ[:n1, :n1].tocsr()
        # the p1×p1 diagonal blocks of Z1'Z1, one per level
        idx = np.arange(n1).reshape(self.q1, self.p1)
        self.G11 = np.zeros((self.q1, self.p1, self.p1))
        for a in range(self.p1):
            for c in range(self.p1):
                self.G11[:, a, c] = np.asarray(G[idx[:, a], idx[:, c]]).ravel()
        self.G21 = ZtZ[n1:, :n1].tocsr()
        self.G22 = ZtZ[n1:, n1:].toarray() if self.n2 else np.zeros((0, 0))
        self.logdet = 0.0

    def update(self, thetas: list[np.ndarray]) -> BlockedFactor:
        first = self.terms[0]
        T = first.cov.template(thetas[0])
        # A11,l = T' G_l T + I
        A11 = np.einsum("ji,ljk,km->lim", T, self.G11, T) + np.eye(self.p1)
        L11 = np.linalg.cholesky(A11)
        self.A11_inv = np.linalg.inv(A11)
        logdet = 2.0 * np.log(np.diagonal(L11, axis1=1, axis2=2)).sum()
        self._T1 = T
        if self.n2:
            lam_rest = sp.block_diag([t.Lambda(th) for t, th in zip(self.terms[1:], thetas[1:])],
                                     format="csr")
            lam1 = first.Lambda(thetas[0])
            self.A21 = (lam_rest.T @ self.G21 @ lam1).tocsr()
            A22 = lam_rest.T @ (lam_rest.T @ self.G22.T).T + np.eye(self.n2) \
                if self.n2 else None
            Ainv = self._block_inverse_sparse()
            S = A22 - (self.A21 @ Ainv @ self.A21.T).toarray()
            try:
                self.S_chol = sla.cho_factor(S, lower=True, check_finite=False)
            except np.linalg.LinAlgError as err:  # pragma: no cover - S is SPD in theory
                raise ModelError("the random-effects system is not positive definite") from err
            logdet += 2.0 * np.log(np.diag(self.S_chol[0])).sum()
        self.logdet = float(logdet)
        return self

    def _block_inverse_sparse(self) -> sp.csr_matrix:
        if self.p1 == 1:
            return sp.diags(self.A11_inv[:, 0, 0], format="csr")
        return sp.block_diag(list(self.A11_inv), format="csr")

    def _solve11(self, B: np.ndarray) -> np.ndarray:
        blocks = B.reshape(self.q1, self.p1, -1)
        return np.einsum("lij,ljk->lik", self.A11_inv, blocks).reshape(self.n1, -1)

    def solve(self, B: np.ndarray) -> np.ndarray:
        """A⁻¹B for a dense B (rows = random-effect columns)."""
        B = np.asarray(B, dtype=np.float64)
        vector = B.ndim == 1
        B = B.reshape(B.shape[0], -1)
        y1 = self._solve11(B[: self.n1])
        if not self.n2:
            out = y1
        else:
            rhs2 = B[self.n1:] - self.A21 @ y1
            x2 = sla.cho_solve(self.S_chol, rhs2, check_finite=False)
            x1 = y1 - self._solve11(np.asarray(self.A21.T @ x2))
            out = np.vstack([x1, x2])
        return out.ravel() if vector else out


class DenseFactor:
    """A(θ) as one dense Cholesky (spatial terms first, or small models)."""

    def __init__(self, terms: list[RandomTermDesign], ZtZ: sp.csc_matrix):
        self.terms = terms
        self.G = ZtZ.toarray()
        self.logdet = 0.0

    def update(self, thetas: list[np.ndarray]) -> DenseFactor:
        lam = sp.block_diag([t.Lambda(th) for t, th in zip(self.terms, thetas)], format="csr")
        A = lam.T @ (lam.T @ self.G.T).T + np.eye(self.G.shape[0])
        self.chol = sla.cho_factor(A, lower=True, check_finite=False)
        self.logdet = float(2.0 * np.log(np.diag(self.chol[0])).sum())
        return self

    def solve(self, B: np.ndarray) -> np.ndarray:
        return sla.cho_solve(self.chol, np.asarray(B, dtype=np.float64), check_finite=False)


class SparseFactor:
    """A(θ) by sparse LU (SuperLU in symmetric mode) when no dense block fits in memory."""

    def __init__(self, terms: list[RandomTermDesign], ZtZ: sp.csc_matrix):
        self.terms = terms
        self.G = ZtZ.tocsc()
        self.logdet = 0.0

    def update(self, thetas: list[np.ndarray]) -> SparseFactor:
        lam = sp.block_diag([t.Lambda(th) for t, th in zip(self.terms, thetas)], format="csc")
        A = (lam.T @ self.G @ lam + sp.identity(self.G.shape[0], format="csc")).tocsc()
        self.lu = spla.splu(A, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                            options={"SymmetricMode": True})
        self.logdet = float(np.log(np.abs(self.lu.U.diagonal())).sum())
        return self

    def solve(self, B: np.ndarray) -> np.ndarray:
        return self.lu.solve(np.asarray(B, dtype=np.float64))


def make_factor(terms: list[RandomTermDesign], ZtZ: sp.csc_matrix):
    """Pick the factorisation for this model's random-effects structure."""
    total = ZtZ.shape[0]
    blocked = isinstance(terms[0].cov, (Unstructured, Diagonal))
    rest = total - (terms[0].q * terms[0].p if blocked else 0)
    if blocked and rest <= DENSE_LIMIT:
        return BlockedFactor(terms, ZtZ)
    if total <= DENSE_LIMIT:
        return DenseFactor(terms, ZtZ)
    return SparseFactor(terms, ZtZ)
