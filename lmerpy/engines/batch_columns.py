"""Z_ξΛ of a mini-batch: the random-effect columns present in its rows, and the products
the batch NLLs need.

A grouped term puts p nonzeros in each row (its level's block, x_i'L), so with grouped terms
only a row has P = Σ p_j nonzeros whatever the number k of columns present. ``BatchColumns``
keeps those (column, value) pairs and forms U'WU by scattering each row's P × P outer
product — O(mP²) instead of the dense O(mk²), which dominated a batch of 1,000 rows with
crossed factors (k ≈ 260: three quarters of the Laplace NLL's time). An rbf term's rows are
dense (the kernel's Cholesky factor over the locations present), so with one the columns
stay a dense matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ..design.covariance import RBFKernel

if TYPE_CHECKING:
    from .batch_nll import CovarianceParams


def random_columns(params: CovarianceParams, Xs: list[torch.Tensor],
                   segments: list[tuple[torch.Tensor, torch.Tensor]], m: int, dtype,
                   jitter: float = 1e-6) -> torch.Tensor:
    """Z_ξΛ over the random-effect columns present in a batch of m rows (m × k), Λ absolute
    (not relative to σ): a grouped term's row i holds x_i'L in its level's p columns, an rbf
    term's row i the Cholesky factor of the kernel over the locations present at its own."""
    blocks = []
    for k, t in enumerate(params.terms):
        present, inv = segments[k]
        if isinstance(t.cov, RBFKernel):
            raw = params.factors[k]
            sd, ell = raw[0].exp(), raw[1].exp()
            # a CUDA graph pads the locations present with −1 (train_step.py): they get
            # identity rows and columns, so L is block diagonal and no row reaches them
            valid = present >= 0
            c = params.coords[k][present.clamp(min=0)]
            K = torch.exp(-torch.cdist(c, c).pow(2) / (2.0 * ell**2))
            K = K * (valid.unsqueeze(1) & valid.unsqueeze(0)) + torch.diag(
                (~valid).to(K.dtype) + jitter)
            L = torch.linalg.cholesky_ex(K).L * sd     # _ex: no host check (CUDA graphs)
            blocks.append(L[inv])                      # Z_present L: row i is L[loc_i]
        else:
            p = t.p
            vals = Xs[k] @ params.chol(k)              # each row's x_i' L_k
            U = torch.zeros(m, len(present) * p, dtype=vals.dtype, device=vals.device)
            rows = torch.arange(m, device=vals.device).unsqueeze(1).expand(m, p)
            cols = inv.unsqueeze(1) * p + torch.arange(p, device=vals.device).unsqueeze(0)
            blocks.append(U.index_put((rows, cols), vals))
    return torch.cat([blk.to(dtype) for blk in blocks], dim=1)


@dataclass
class BatchColumns:
    """U = Z_ξΛ (m × k): ``dense``, or each row's nonzeros — ``cols`` and ``vals`` (m × P),
    with ``blocks`` the (start, end) of each grouped term's P positions."""

    k: int
    dense: torch.Tensor | None = None
    cols: torch.Tensor | None = None
    vals: torch.Tensor | None = None
    blocks: tuple[tuple[int, int], ...] = ()

    @staticmethod
    def of(U: torch.Tensor) -> BatchColumns:
        return BatchColumns(U.shape[1], dense=U)

    @property
    def m(self) -> int:
        return (self.dense if self.dense is not None else self.vals).shape[0]

    @property
    def requires_grad(self) -> bool:
        return (self.dense if self.dense is not None else self.vals).requires_grad

    def detach(self) -> BatchColumns:
        if self.dense is not None:
            return BatchColumns(self.k, dense=self.dense.detach())
        return BatchColumns(self.k, cols=self.cols, vals=self.vals.detach(), blocks=self.blocks)

    def times(self, u: torch.Tensor) -> torch.Tensor:
        """U u (m)."""
        if self.dense is not None:
            return self.dense @ u
        return (self.vals * u[self.cols]).sum(1)

    def t_times(self, r: torch.Tensor) -> torch.Tensor:
        """U'r (k)."""
        if self.dense is not None:
            return self.dense.T @ r
        return torch.zeros(self.k, dtype=r.dtype, device=r.device).index_add(
            0, self.cols.reshape(-1), (self.vals * r.unsqueeze(1)).reshape(-1))

    def gram(self, W: torch.Tensor) -> torch.Tensor:
        """U'WU (k × k)."""
        if self.dense is not None:
            A = self.dense * W.sqrt().unsqueeze(1)
            return A.T @ A
        c, v, k = self.cols, self.vals, self.k
        where = (c.unsqueeze(2) * k + c.unsqueeze(1)).reshape(-1)
        outer = (W.view(-1, 1, 1) * v.unsqueeze(2) * v.unsqueeze(1)).reshape(-1)
        return torch.zeros(k * k, dtype=v.dtype, device=v.device).index_add(
            0, where, outer).view(k, k)

    def outer(self, W: torch.Tensor) -> torch.Tensor:
        """W^½UU'W^½ (m × m): rows i and l share a column only at the same level of a term."""
        s = W.sqrt()
        if self.dense is not None:
            A = self.dense * s.unsqueeze(1)
            return A @ A.T
        out = torch.zeros(self.m, self.m, dtype=self.vals.dtype, device=self.vals.device)
        for lo, hi in self.blocks:
            level = self.cols[:, lo]
            same = (level.unsqueeze(1) == level.unsqueeze(0)).to(out.dtype)
            v = self.vals[:, lo:hi]
            out = out + same * (v @ v.T)
        return out * s.unsqueeze(1) * s.unsqueeze(0)


def batch_columns(params: CovarianceParams, Xs: list[torch.Tensor],
                  segments: list[tuple[torch.Tensor, torch.Tensor]], m: int, dtype,
                  jitter: float = 1e-6) -> BatchColumns:
    """The batch's U, by rows' nonzeros where every term is grouped, else dense."""
    if any(isinstance(t.cov, RBFKernel) for t in params.terms):
        dense = random_columns(params, Xs, segments, m, dtype, jitter)
        return BatchColumns.of(dense)
    cols, vals, blocks, offset, at = [], [], [], 0, 0
    for k, t in enumerate(params.terms):
        present, inv = segments[k]
        p = t.p
        cols.append(offset + inv.unsqueeze(1) * p + torch.arange(p, device=inv.device))
        vals.append((Xs[k] @ params.chol(k)).to(dtype))
        blocks.append((at, at + p))
        offset, at = offset + len(present) * p, at + p
    return BatchColumns(offset, cols=torch.cat(cols, dim=1), vals=torch.cat(vals, dim=1),
                        blocks=tuple(blocks))


__all__ = ["BatchColumns", "batch_columns", "random_columns"]
