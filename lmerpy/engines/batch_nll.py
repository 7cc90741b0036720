"""The mini-batch negative log-likelihood of the LMMNN paper (eq. 14), in torch.

For a batch ξ of m rows with residual r = y − f(X): V = σ²(UU' + I), U = Z_ξ Λ over only the
random-effect columns present in the batch (k ≤ m·p of them), so

    log|V| = m log σ² + log|I + U'U|,   r'V⁻¹r = (r'r − ‖L⁻¹U'r‖²)/σ²,   LL' = I + U'U

(DESIGN.md) — a k×k Cholesky per batch, never an m×m or n×q matrix. The parameters are
unconstrained: log σ, per grouped term a lower-triangular factor with log-diagonal, per
spatial term log sd and log lengthscale.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..design.covariance import RBFKernel
from ..design.random import RandomTermDesign


class CovarianceParams(nn.Module):
    """σ and every random term's covariance, in an unconstrained parametrisation."""

    def __init__(self, terms: list[RandomTermDesign], sigma0: float, dtype=torch.float64):
        super().__init__()
        self.terms = terms
        self.log_sigma = nn.Parameter(torch.tensor(math.log(sigma0), dtype=dtype))
        self.factors = nn.ParameterList()
        for t in terms:
            if isinstance(t.cov, RBFKernel):
                ell = float(t.cov.theta0()[1])
                self.factors.append(nn.Parameter(torch.tensor([math.log(sigma0),
                                                               math.log(ell)], dtype=dtype)))
            else:
                # absolute Cholesky factor of D_k, started at σ·I (lme4 starts at Λ = I)
                init = torch.zeros(t.p, t.p, dtype=dtype)
                init.diagonal().fill_(math.log(sigma0))
                self.factors.append(nn.Parameter(init))
        self.coords = [torch.as_tensor(t.cov.coords, dtype=dtype)
                       if isinstance(t.cov, RBFKernel) else None for t in terms]

    @property
    def sigma(self) -> torch.Tensor:
        return self.log_sigma.exp()

    def chol(self, k: int) -> torch.Tensor:
        """Lower-triangular L_k with D_k = L_k L_k' (grouped term k)."""
        raw = self.factors[k]
        return torch.tril(raw, -1) + torch.diag_embed(raw.diagonal().exp())

    def theta(self) -> np.ndarray:
        """lme4's θ (relative factor Λ/σ, lower triangle column by column; rbf: sd/σ, ℓ)."""
        s = float(self.sigma.detach())
        out = []
        for k, t in enumerate(self.terms):
            if isinstance(t.cov, RBFKernel):
                raw = self.factors[k].detach()
                out += [float(raw[0].exp()) / s, float(raw[1].exp())]
            else:
                L = self.chol(k).detach().cpu().numpy() / s
                cols, rows = np.triu_indices(t.p)
                out += list(L[rows, cols])
        return np.asarray(out, dtype=np.float64)


def _single_grouped_term(r, params, codes, Xk, sigma2) -> torch.Tensor:
    """One grouped term: I + U'U is block diagonal (one p×p block per level present, since
    each row belongs to one level), so the k×k system splits into small batched ones."""
    m = r.shape[0]
    present, inv = torch.unique(codes, return_inverse=True)
    k, p = len(present), Xk.shape[1]
    u = (Xk @ params.chol(0)).to(r.dtype) / sigma2.sqrt()          # row i: x_i'L / σ
    M = torch.zeros(k, p, p, dtype=r.dtype, device=r.device)
    M = M.index_add(0, inv, u.unsqueeze(2) * u.unsqueeze(1))
    M = M + torch.eye(p, dtype=r.dtype, device=r.device)
    Ur = torch.zeros(k, p, dtype=r.dtype, device=r.device).index_add(0, inv, u * r.unsqueeze(1))
    if p == 1:
        Lm = M.sqrt()
        w = Ur / Lm[:, :, 0]
    else:
        Lm = torch.linalg.cholesky(M)
        w = torch.linalg.solve_triangular(Lm, Ur.unsqueeze(2), upper=False).squeeze(2)
    quad = (r @ r - (w * w).sum()) / sigma2
    logdet = m * torch.log(sigma2) + 2.0 * torch.log(torch.diagonal(Lm, dim1=1, dim2=2)).sum()
    return 0.5 * (quad + logdet + m * math.log(2.0 * math.pi))


def batch_nll(r: torch.Tensor, params: CovarianceParams, codes: list[torch.Tensor],
              Xs: list[torch.Tensor], jitter: float = 1e-6) -> torch.Tensor:
    """Negative log-likelihood of one batch (paper eq. 14). ``codes[k]`` are the batch rows'
    level indices for term k, ``Xs[k]`` its term columns (m × p_k)."""
    m = r.shape[0]
    sigma2 = (2.0 * params.log_sigma).exp()
    if len(params.terms) == 1 and not isinstance(params.terms[0].cov, RBFKernel):
        return _single_grouped_term(r, params, codes[0], Xs[0], sigma2)
    blocks = []
    for k, t in enumerate(params.terms):
        present, inv = torch.unique(codes[k], return_inverse=True)
        if isinstance(t.cov, RBFKernel):
            raw = params.factors[k]
            sd, ell = raw[0].exp(), raw[1].exp()
            c = params.coords[k][present]
            K = torch.exp(-torch.cdist(c, c).pow(2) / (2.0 * ell**2))
            K = K + jitter * torch.eye(len(present), dtype=K.dtype, device=K.device)
            L = torch.linalg.cholesky(K) * sd
            blocks.append(L[inv])                      # Z_present L: row i is L[loc_i]
        else:
            p = t.p
            vals = Xs[k] @ params.chol(k)              # each row's x_i' L_k
            U = torch.zeros(m, len(present) * p, dtype=r.dtype, device=r.device)
            rows = torch.arange(m, device=r.device).unsqueeze(1).expand(m, p)
            cols = inv.unsqueeze(1) * p + torch.arange(p, device=r.device).unsqueeze(0)
            blocks.append(U.index_put((rows, cols), vals))
    U = torch.cat([blk.to(r.dtype) for blk in blocks], dim=1) / sigma2.sqrt()
    M = U.T @ U
    M.diagonal().add_(1.0)
    Lm = torch.linalg.cholesky(M)
    w = torch.linalg.solve_triangular(Lm, (U.T @ r).unsqueeze(1), upper=False).squeeze(1)
    quad = (r @ r - w @ w) / sigma2
    logdet = m * torch.log(sigma2) + 2.0 * torch.log(Lm.diagonal()).sum()
    return 0.5 * (quad + logdet + m * math.log(2.0 * math.pi))
