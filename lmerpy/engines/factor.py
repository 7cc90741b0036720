"""Factorising A(θ) = Λ'Z'WZΛ + I, the heart of lme4's penalised least squares.

MixedModels.jl's observation: the first random term's block of Z'Z is block diagonal (each
row belongs to one level), so its part of A factors level by level; only the remaining terms
need a dense (Schur complement) factor. ``BlockedFactor`` does exactly that:

    A = [A11 A12; A21 A22],  A11 = blockdiag(p1×p1),  S = A22 − A21 A11⁻¹ A12,
    log|A| = Σ log|A11,l| + log|S|,   A⁻¹b by block elimination.

When the remaining terms are too many for a dense S, ``SparseFactor`` uses a sparse LU of
the whole A (SuperLU, symmetric mode). A model whose one random term is spatial goes
through ``KernelFactor`` (one Cholesky of M = I + G^½ΣG^½, without Λ); other spatial models
through ``DenseFactor``. Engines call ``update``, ``logdet`` and ``solve``; PLS also
KernelFactor's ``update_kernel``, ``quadratic`` and ``effects``, which need no Λ.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from ..design.covariance import Diagonal, RBFKernel, Unstructured
from ..design.random import RandomTermDesign
from ..errors import ModelError

DENSE_LIMIT = 6000  # largest dense Schur complement (doubles: 6000² × 8 B ≈ 290 MB)
# a spatial term's Λ is dense whatever the factor, so A is factored densely up to here
# (10,000 locations: three 800 MB matrices at the peak) rather than by a sparse LU of a
# dense matrix, which is slower by orders of magnitude
SPATIAL_DENSE_LIMIT = 12000


class BlockedFactor:
    """A(θ) for terms whose first one is a grouped (block-diagonal) term."""

    def __init__(self, terms: list[RandomTermDesign], ZtZ: sp.csc_matrix,
                 linear_updates: bool = True):
        self.terms = terms
        first = terms[0]
        self.q1, self.p1 = first.q, first.p
        n1 = self.q1 * self.p1
        self.n1 = n1
        self.n2 = ZtZ.shape[0] - n1
        G = ZtZ if not self.n2 else ZtZ[:n1, :n1]  # one term: no slicing (PIRLS builds a
        # factor per step, so this runs thousands of times in a GLMM fit)
        # the p1×p1 diagonal blocks of Z1'Z1, one per level: element (a, c) of block l is
        # G[l·p1 + a, l·p1 + c], on G's diagonal c − a (read there, not by fancy indexing,
        # which cost more than the rest of a PIRLS step)
        self.G11 = np.zeros((self.q1, self.p1, self.p1))
        for a in range(self.p1):
            for c in range(self.p1):
                self.G11[:, a, c] = G.diagonal(c - a)[min(a, c)::self.p1][: self.q1]
        self.G21 = ZtZ[n1:, :n1].tocsr() if self.n2 else sp.csr_matrix((0, n1))
        self.G12 = self.G21.T.tocsr()
        self._G21_scaled = self.G21.copy()
        # C order: the Schur update writes into it through a flat (row-major) view
        self.G22 = np.ascontiguousarray(ZtZ[n1:, n1:].toarray()) if self.n2 \
            else np.zeros((0, 0))
        self.logdet = 0.0
        # Λ of the other terms is diagonal when each is scalar or uncorrelated (x || g)
        self._rest_diagonal = all(isinstance(t.cov, Diagonal) or (
            isinstance(t.cov, Unstructured) and t.cov.p == 1) for t in terms[1:])
        self._K_map = self._schur_map() if linear_updates and self.n2 and self.p1 == 1 \
            else None
        self._buffer = np.empty(self.G22.shape, order="C")

    def refresh(self, ZtZ: sp.csc_matrix) -> None:
        """New values of Z'WZ on the same sparsity pattern (PIRLS changes W every step):
        the blocks are read off ZtZ.data through index maps found once, by building this
        factor from a matrix whose values are the positions themselves, instead of
        slicing sparse matrices again (which cost most of a small model's PIRLS step)."""
        maps = getattr(self, "_maps", None)
        if maps is None or not (np.array_equal(maps[0][0], ZtZ.indptr)
                                and np.array_equal(maps[0][1], ZtZ.indices)):
            probe = sp.csc_matrix((np.arange(1.0, ZtZ.nnz + 1.0), ZtZ.indices, ZtZ.indptr),
                                  shape=ZtZ.shape)
            ref = BlockedFactor(self.terms, probe, linear_updates=False)
            # each value is a position + 1, or 0 where the block has no entry (−1 below)
            maps = ((ZtZ.indptr.copy(), ZtZ.indices.copy()),
                    *(np.rint(a).astype(np.int64) - 1
                      for a in (ref.G11, ref.G21.data, ref.G12.data, ref.G22)))
            self._maps = maps
            self.G21, self.G12 = ref.G21, ref.G12
            self._G21_scaled = ref.G21.copy()
        data = np.append(ZtZ.data, 0.0)  # position −1: a structural zero
        self.G11 = data[maps[1]]
        self.G21.data = data[maps[2]]
        self.G12.data = data[maps[3]]
        self.G22 = np.ascontiguousarray(data[maps[4]])

    def _schur_map(self):
        """For a scalar first term, K = G21 diag(m) G12 is linear in m: K.data = P m with a
        fixed sparse P (one entry per pair of rest columns sharing a first-term level).
        Building P once turns each update into one sparse mat-vec."""
        G12 = self.G12
        counts = np.diff(G12.indptr)
        total = int((counts.astype(np.int64) ** 2).sum())
        if total > 30_000_000:  # too large to keep: use a sparse product per update
            return None
        # the pattern of K (sorted row-major positions), then, level by level, the position
        # of every pair of its rest columns: P is built column by column, so directly as CSC
        K0 = (self.G21 @ self.G12).tocsr()
        K0.sort_indices()
        n2 = self.n2
        rows_of = np.repeat(np.arange(n2, dtype=np.int64), np.diff(K0.indptr))
        pattern = rows_of * n2 + K0.indices
        pos, vals = [], []
        for lvl in range(self.q1):
            a, b = G12.indptr[lvl], G12.indptr[lvl + 1]
            idx, v = G12.indices[a:b].astype(np.int64), G12.data[a:b]
            pos.append((idx[:, None] * n2 + idx[None, :]).ravel())
            vals.append(np.outer(v, v).ravel())
        where = np.searchsorted(pattern, np.concatenate(pos))
        indptr = np.concatenate([[0], np.cumsum(counts.astype(np.int64) ** 2)])
        P = sp.csc_matrix((np.concatenate(vals), where, indptr), shape=(len(pattern), self.q1))
        unique = pattern
        ki, kj = unique // n2, unique % n2
        # positions in the lower triangle, where LAPACK's inverse (dpotri) is stored
        self._lower_pos = (np.maximum(ki, kj), np.minimum(ki, kj))
        return P, unique  # unique = flat (row-major) positions in the n2 × n2 matrix

    def update(self, thetas: list[np.ndarray], lam: sp.csc_matrix) -> BlockedFactor:
        T = self.terms[0].cov.template(thetas[0])
        # A11,l = T' G_l T + I  (one p1×p1 block per level of the first term)
        A11 = np.einsum("ji,ljk,km->lim", T, self.G11, T) + np.eye(self.p1)
        L11 = np.linalg.cholesky(A11)
        self.A11_inv = np.linalg.inv(A11)
        logdet = 2.0 * np.log(np.diagonal(L11, axis1=1, axis2=2)).sum()
        if getattr(self, "_blocks_of", None) is not lam:  # PIRLS's steps share one Λ
            self._blocks = _diagonal_blocks(lam, self.n1)
            self._blocks_of = lam
        self.lam1, lam_r = self._blocks
        if self.n2:
            self.lam_r = lam_r
            # A21 A11⁻¹ A12 = Λr' G21 M G12 Λr  with  M = Λ1 A11⁻¹ Λ1' (block diagonal)
            M = np.einsum("ij,ljk,mk->lim", T, self.A11_inv, T)
            inner = self._buffer
            np.copyto(inner, self.G22)
            if self._K_map is not None:
                P, flat = self._K_map
                flat_view = inner.reshape(-1)
                assert np.shares_memory(flat_view, inner)
                flat_view[flat] -= P @ M[:, 0, 0]
            elif self.p1 == 1:
                scaled = self._G21_scaled
                scaled.data = self.G21.data * M[:, 0, 0][self.G21.indices]
                inner -= (scaled @ self.G12).toarray()
            else:
                inner -= (self.G21 @ sp.block_diag(list(M), format="csr") @ self.G12).toarray()
            if self._rest_diagonal:
                d = lam_r.diagonal()  # scalar terms only: Λr is diagonal
                inner *= d[:, None]
                inner *= d[None, :]
                S = inner
            else:
                S = np.asarray(lam_r.T @ (lam_r.T @ inner.T).T)
            S[np.diag_indices_from(S)] += 1.0
            # S is symmetric: its transpose is the same matrix in Fortran order, which LAPACK
            # factors in place without a copy
            chol, info = sla.lapack.dpotrf(S.T, lower=1, overwrite_a=1, clean=0)
            if info != 0:
                raise ModelError("the random-effects system is not positive definite")
            self.S_chol = (chol, True)
            logdet += 2.0 * np.log(np.diag(chol)).sum()
        self.logdet = float(logdet)
        return self

    def inverse_diagonal(self) -> np.ndarray:
        """diag(A⁻¹), for the analytic gradient of log|A| (scalar first term only)."""
        a_inv = self.A11_inv[:, 0, 0]
        if not self.n2:
            return a_inv.copy()
        L = self.S_chol[0]
        Sinv, info = sla.lapack.dpotri(L, lower=1)  # lower triangle of S⁻¹
        if info != 0:  # pragma: no cover
            raise ModelError("could not invert the random-effects system")
        d2 = np.diag(Sinv).copy()
        th1 = float(self.lam1.diagonal()[0]) if self.lam1.nnz else 0.0
        dr = self.lam_r.diagonal()
        if self._K_map is not None:
            P, _ = self._K_map
            li, lj = self._lower_pos
            weighted = Sinv[li, lj] * dr[li] * dr[lj]
            quad = np.asarray(P.T @ weighted).ravel()
        else:
            Sinv = np.tril(Sinv) + np.tril(Sinv, -1).T
            C = (self.lam_r.T @ self.G21).tocsc()
            quad = np.asarray((C.multiply(Sinv @ C.toarray())).sum(axis=0)).ravel()
        d1 = a_inv + th1**2 * a_inv**2 * quad
        return np.concatenate([d1, d2])

    def _solve11(self, B: np.ndarray) -> np.ndarray:
        blocks = B.reshape(self.q1, self.p1, -1)
        return np.einsum("lij,ljk->lik", self.A11_inv, blocks).reshape(self.n1, -1)

    def solve(self, B: np.ndarray) -> np.ndarray:
        """A⁻¹B for a dense B (rows = random-effect columns), by block elimination."""
        B = np.asarray(B, dtype=np.float64)
        vector = B.ndim == 1
        B = B.reshape(B.shape[0], -1)
        y1 = self._solve11(B[: self.n1])
        if not self.n2:
            out = y1
        else:
            a21_y1 = self.lam_r.T @ (self.G21 @ (self.lam1 @ y1))
            x2 = sla.cho_solve(self.S_chol, B[self.n1:] - a21_y1, check_finite=False)
            a12_x2 = self.lam1.T @ (self.G12 @ (self.lam_r @ x2))
            out = np.vstack([y1 - self._solve11(np.asarray(a12_x2)), x2])
        return out.ravel() if vector else out


def _diagonal_blocks(lam: sp.csc_matrix, n1: int
                     ) -> tuple[sp.csc_matrix, sp.csc_matrix | None]:
    """Λ's leading n1 × n1 block and the rest, read off its CSC arrays: Λ is block diagonal
    over the terms, so the first n1 columns hold exactly the first block (sparse slicing
    cost more than the rest of a small model's update)."""
    k = lam.indptr[n1]
    n2 = lam.shape[0] - n1
    first = sp.csc_matrix((lam.data[:k], lam.indices[:k], lam.indptr[: n1 + 1]),
                          shape=(n1, n1))
    if not n2:
        return first, None
    rest = sp.csc_matrix((lam.data[k:], lam.indices[k:] - n1, lam.indptr[n1:] - k),
                         shape=(n2, n2))
    return first, rest


class DenseFactor:
    """A(θ) as one dense Cholesky (spatial terms besides others, or small models). A spatial
    term's Λ is a dense triangle: its products go through BLAS, not sparse kernels (the
    BLUPs of a 3,000-location model at n = 100,000: 34 s by sparse products, 8 s so), and a
    diagonal Z'Z is kept as a vector, so that Λ'Z'ZΛ = W'W with W = (Z'Z)^½Λ is one
    symmetric rank-k update. (One spatial term alone goes through KernelFactor.)"""

    def __init__(self, terms: list[RandomTermDesign], ZtZ: sp.csc_matrix):
        self.terms = terms
        diagonal = sp.diags(ZtZ.diagonal())
        self.sqrt_g = np.sqrt(ZtZ.diagonal()) if (ZtZ - diagonal).count_nonzero() == 0 \
            else None
        self.G = None if self.sqrt_g is not None else ZtZ.toarray()
        self.logdet = 0.0

    def update(self, thetas: list[np.ndarray], lam: sp.csc_matrix) -> DenseFactor:
        if lam.nnz > lam.shape[0] ** 2 / 10:
            lam = lam.toarray()
        if self.sqrt_g is not None:
            W = lam.multiply(self.sqrt_g[:, None]) if sp.issparse(lam) else \
                lam * self.sqrt_g[:, None]
            A = W.T @ W                 # numpy: a symmetric rank-k update (syrk)
            A = A.toarray() if sp.issparse(A) else A
        else:
            A = lam.T @ (lam.T @ self.G.T).T
        A = np.asarray(A)
        A[np.diag_indices_from(A)] += 1.0
        self.chol = sla.cho_factor(A, lower=True, check_finite=False, overwrite_a=True)
        self.logdet = float(2.0 * np.log(np.diag(self.chol[0])).sum())
        return self

    def solve(self, B: np.ndarray) -> np.ndarray:
        return sla.cho_solve(self.chol, np.asarray(B, dtype=np.float64), check_finite=False)

    def inverse_diagonal(self) -> np.ndarray:
        inv, info = sla.lapack.dpotri(self.chol[0], lower=1)
        return np.diag(inv).copy()


class KernelFactor:
    """A(θ) for a model whose one random term is spatial (rbf), each row at one location, so
    that G = Z'WZ is diagonal. With Σ = ΛΛ' = θ₀²(K_ℓ + jitter·I) and H = G^½Λ, Sylvester's
    determinant identity and Woodbury's put everything through M = I + G^½ΣG^½ = I + HH':

        log|A| = log|M|,    A⁻¹ = I − Λ'G^½ M⁻¹ G^½Λ,
        (Λ'C)'A⁻¹(Λ'C) = C̃'(I − M⁻¹)C̃   for C = G^½C̃   (C = Z'W[X y], zero where g = 0).

    The deviance, all the optimiser asks for, thus needs M's Cholesky alone (q³/3 flops):
    neither Λ's (K's Cholesky, q³/3) nor the product Λ'GΛ (q³), a fifth of DenseFactor's
    work. So do the random effects b = Λû and ‖û‖² (``effects``). Λ is used only by
    ``solve``, for callers that need A⁻¹ itself (û, conditional variances, PIRLS)."""

    def __init__(self, terms: list[RandomTermDesign], ZtZ: sp.csc_matrix):
        self.terms = terms
        g = ZtZ.diagonal()
        self.sqrt_g = np.sqrt(g)
        self.inv_sqrt_g = np.divide(1.0, self.sqrt_g, out=np.zeros_like(self.sqrt_g),
                                    where=g > 0)
        self.empty = np.flatnonzero(g == 0)  # locations without rows (weight)
        self.logdet = 0.0
        self._lam = None
        self._theta: np.ndarray | None = None  # the θ that M's Cholesky is at

    def update_kernel(self, thetas: list[np.ndarray]) -> KernelFactor:
        """M's Cholesky at θ, without Λ (enough for ``logdet``, ``quadratic`` and
        ``effects``); nothing to do if it is already at θ."""
        theta = np.array(thetas[0], dtype=np.float64)
        if self._theta is not None and np.array_equal(self._theta, theta):
            return self
        self._theta, self._lam = None, None
        M = self.terms[0].cov.covariance(theta, scale=self.sqrt_g)
        M[np.diag_indices_from(M)] += 1.0
        # M is symmetric: its transpose is the same matrix in Fortran order (no copy)
        chol, info = sla.lapack.dpotrf(M.T, lower=1, overwrite_a=1, clean=0)
        if info != 0:
            raise ModelError("the spatial random-effects system is not positive definite")
        self.L = chol
        self.logdet = float(2.0 * np.log(np.diag(chol)).sum())
        self._theta = theta
        return self

    def update(self, thetas: list[np.ndarray], lam: sp.csc_matrix) -> KernelFactor:
        self.update_kernel(thetas)
        self._lam = lam
        return self

    def quadratic(self, C: np.ndarray) -> np.ndarray:
        """(Λ'C)'A⁻¹(Λ'C) for C with the random-effect columns as rows, through M alone."""
        Ct = np.asarray(C, dtype=np.float64).reshape(len(self.sqrt_g), -1) \
            * self.inv_sqrt_g[:, None]
        W = sla.solve_triangular(self.L, Ct, lower=True, check_finite=False)
        return Ct.T @ Ct - W.T @ W

    def effects(self, r: np.ndarray) -> tuple[np.ndarray, float]:
        """b = Λû and ‖û‖² for û = A⁻¹Λ'r, r = Z'W(y − Xβ), through M alone. With r = G^½r̃
        and z = M⁻¹r̃, Woodbury gives û = Λ'G^½z, so b = ΣG^½z and ‖û‖² = z'(M − I)z; at a
        location with rows G^½ΣG^½z = (M − I)z = r̃ − z turns b into (r̃ − z)/√g, and only
        the locations without rows need a row of Σ."""
        rt = np.asarray(r, dtype=np.float64) * self.inv_sqrt_g
        z = sla.cho_solve((self.L, True), rt, check_finite=False)
        b = (rt - z) * self.inv_sqrt_g
        if len(self.empty):
            cov = self.terms[0].cov
            rows = cov.kernel(float(self._theta[1]), a=cov.coords[self.empty])
            # Σ's jitter sits on columns of these locations, where √g = 0: it adds nothing
            b[self.empty] = float(self._theta[0]) ** 2 * (rows @ (self.sqrt_g * z))
        return b, float(z @ rt - z @ z)

    def solve(self, B: np.ndarray) -> np.ndarray:
        """A⁻¹B by Woodbury (needs Λ: ``update``, not ``update_kernel``)."""
        if self._lam is None:
            raise RuntimeError("KernelFactor.solve needs Λ: call update, not update_kernel")
        if sp.issparse(self._lam):
            self._lam = self._lam.toarray()
        lam = self._lam
        B = np.asarray(B, dtype=np.float64)
        vector = B.ndim == 1
        B = B.reshape(B.shape[0], -1)
        inner = sla.cho_solve((self.L, True), self.sqrt_g[:, None] * (lam @ B),
                              check_finite=False)
        out = B - lam.T @ (self.sqrt_g[:, None] * inner)
        return out.ravel() if vector else out


class SparseFactor:
    """A(θ) by sparse LU (SuperLU in symmetric mode) when no dense block fits in memory."""

    def __init__(self, terms: list[RandomTermDesign], ZtZ: sp.csc_matrix):
        self.terms = terms
        self.G = ZtZ.tocsc()
        self.logdet = 0.0

    def update(self, thetas: list[np.ndarray], lam: sp.csc_matrix) -> SparseFactor:
        A = (lam.T @ self.G @ lam + sp.identity(self.G.shape[0], format="csc")).tocsc()
        self.lu = spla.splu(A, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                            options={"SymmetricMode": True})
        self.logdet = float(np.log(np.abs(self.lu.U.diagonal())).sum())
        return self

    def solve(self, B: np.ndarray) -> np.ndarray:
        return self.lu.solve(np.asarray(B, dtype=np.float64))


def _one_location_per_row(terms: list[RandomTermDesign], ZtZ: sp.csc_matrix) -> bool:
    """One spatial (rbf) term and a diagonal Z'WZ: KernelFactor's case."""
    if len(terms) != 1 or not isinstance(terms[0].cov, RBFKernel):
        return False
    return (ZtZ - sp.diags(ZtZ.diagonal())).count_nonzero() == 0


def make_factor(terms: list[RandomTermDesign], ZtZ: sp.csc_matrix,
                linear_updates: bool = True):
    """Pick the factorisation for this model's random-effects structure."""
    total = ZtZ.shape[0]
    if _one_location_per_row(terms, ZtZ) and total <= SPATIAL_DENSE_LIMIT:
        return KernelFactor(terms, ZtZ)
    blocked = isinstance(terms[0].cov, (Unstructured, Diagonal))
    rest = total - (terms[0].q * terms[0].p if blocked else 0)
    if blocked and rest <= DENSE_LIMIT:
        return BlockedFactor(terms, ZtZ, linear_updates)
    if total <= (DENSE_LIMIT if blocked else SPATIAL_DENSE_LIMIT):
        return DenseFactor(terms, ZtZ)
    return SparseFactor(terms, ZtZ)
