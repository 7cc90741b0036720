"""The mini-batch negative log-likelihood of the LMMNN paper (eq. 14), in torch.

For a batch ξ of m rows with residual r = y − f(X): V = σ²(UU' + I), U = Z_ξ Λ over only the
random-effect columns present in the batch (k ≤ m·p of them), so

    log|V| = m log σ² + log|I + U'U|,   r'V⁻¹r = (r'r − ‖L⁻¹U'r‖²)/σ²,   LL' = I + U'U

(DESIGN.md) — a k×k Cholesky per batch, never an n×n or n×q matrix. Prior weights w make
the residual variance σ²/w_i (lme4's ``weights``): the same formulas hold for W^½r and
W^½U, with log|V| less Σ log w_i (a row of weight 0 drops out). When the batch holds
more columns than rows (several factors with many levels each: k up to m per factor), the
m×m system I + UU' has the same log-determinant and is the smaller one, so it is used
instead: the cost is min(k, m)³. The parameters are unconstrained: log σ, per grouped
term a lower-triangular factor with log-diagonal, per spatial term log sd and log
lengthscale.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..design.covariance import RBFKernel
from ..design.random import RandomTermDesign
from .batch_columns import batch_columns


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

    def describe(self) -> str:
        """The current variance components, one group after another (for the progress bar):
        a grouped term's variances diag(D_k), an rbf term's variance and lengthscale."""
        parts = []
        for k, t in enumerate(self.terms):
            if isinstance(t.cov, RBFKernel):
                raw = self.factors[k].detach()
                parts.append(f"{t.group} {float(raw[0].exp()) ** 2:.3g} "
                             f"ℓ {float(raw[1].exp()):.3g}")
            else:
                L = self.chol(k).detach()
                var = (L * L).sum(1).cpu().numpy()
                parts.append(f"{t.group} " + " ".join(f"{v:.3g}" for v in var))
        return "  ".join(parts)

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


class _ScalarTermNLL(torch.autograd.Function):
    """The batch NLL of one scalar grouped term, with its gradient written out: the blocks
    are scalars, M_j = 1 + a·n_j and (U'r)_j = √a·S_j with n_j = Σ_{i∈j} x_i², S_j =
    Σ_{i∈j} x_i r_i and a = ℓ²/σ², so

        2·NLL = (r'r − a Σ_j S_j²/M_j)/σ² + m log σ² + Σ_j log M_j + m log 2π,

        ∂NLL/∂r_i = (r_i − a x_i S_j/M_j)/σ²,   ∂NLL/∂a = ½(Σ_j n_j/M_j − Σ_j (S_j/M_j)²/σ²).

    The inputs are log ℓ and log σ: one autograd node and a dozen kernels instead of some
    thirty small autograd ones (the training step of a random-intercept model is mostly such
    overhead). The scalars stay tensors on the data's device — no value comes back to the
    host, so a step can be captured in a CUDA graph (train_step.py). Levels in ``0..k-1``
    that no row has add M_j = 1 and S_j = 0: nothing, so ``k`` may be a fixed upper bound."""

    @staticmethod
    def forward(ctx, r, x, inv, k, log_ell, log_sigma):
        m = r.shape[0]
        s2 = (2.0 * log_sigma).exp()
        a = (2.0 * log_ell).exp() / s2
        sums = torch.zeros(k, 2, dtype=r.dtype, device=r.device).index_add_(
            0, inv, torch.stack((x * x, x * r), dim=1))
        M = sums[:, 0].mul(a).add_(1.0)
        ratio = sums[:, 1] / M                                    # S_j / M_j
        quad = (r @ r - a * (sums[:, 1] @ ratio)) / s2
        n_over_m, ratio2 = (sums[:, 0] / M).sum(), ratio @ ratio
        ctx.save_for_backward(r, x, inv, ratio, s2, a, quad, n_over_m, ratio2)
        return 0.5 * (quad + m * s2.log() + M.log().sum() + m * math.log(2.0 * math.pi))

    @staticmethod
    def backward(ctx, grad):
        r, x, inv, ratio, s2, a, quad, n_over_m, ratio2 = ctx.saved_tensors
        m = r.shape[0]
        g_r = torch.addcmul(r, x, ratio[inv] * a, value=-1.0).mul_(grad / s2)
        g_a = 0.5 * (n_over_m - ratio2 / s2)
        # a = exp(2 log ℓ − 2 log σ); the log-likelihood's σ² enters also directly
        g_log_ell = grad * g_a * 2.0 * a
        g_log_sigma = grad * ((m - quad) - g_a * 2.0 * a)
        return g_r, None, None, None, g_log_ell, g_log_sigma


def _single_grouped_term(r, params, inv, k, Xk) -> torch.Tensor:
    """One grouped term: I + U'U is block diagonal (one p×p block per level present, since
    each row belongs to one level), so the k×k system splits into small batched ones.
    (With prior weights, ``r`` and ``Xk`` come scaled by √w.)"""
    m, p = r.shape[0], Xk.shape[1]
    if p == 1:
        return _ScalarTermNLL.apply(r, Xk[:, 0].to(r.dtype), inv, k, params.factors[0][0, 0],
                                    params.log_sigma)
    sigma2 = (2.0 * params.log_sigma).exp()
    u = (Xk @ params.chol(0)).to(r.dtype) / sigma2.sqrt()          # row i: x_i'L / σ
    M = torch.zeros(k, p, p, dtype=r.dtype, device=r.device)
    M = M.index_add(0, inv, u.unsqueeze(2) * u.unsqueeze(1))
    M = M + torch.eye(p, dtype=r.dtype, device=r.device)
    Ur = torch.zeros(k, p, dtype=r.dtype, device=r.device).index_add(0, inv, u * r.unsqueeze(1))
    Lm = torch.linalg.cholesky_ex(M).L   # _ex: no host check; M = I + U'U is PD
    w = torch.linalg.solve_triangular(Lm, Ur.unsqueeze(2), upper=False).squeeze(2)
    quad = (r @ r - (w * w).sum()) / sigma2
    logdet = m * torch.log(sigma2) + 2.0 * torch.log(torch.diagonal(Lm, dim1=1, dim2=2)).sum()
    return 0.5 * (quad + logdet + m * math.log(2.0 * math.pi))


def batch_nll(r: torch.Tensor, params: CovarianceParams, codes: list[torch.Tensor] | None,
              Xs: list[torch.Tensor], jitter: float = 1e-6,
              segments: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
              weights: torch.Tensor | None = None) -> torch.Tensor:
    """Negative log-likelihood of one batch (paper eq. 14). ``codes[k]`` are the batch rows'
    level indices for term k, ``Xs[k]`` its term columns (m × p_k); or, already found,
    ``segments[k]`` = (levels present, each row's index among them). ``weights``: the rows'
    prior weights (residual variance σ²/w_i); a row of weight 0 adds nothing, as if it
    were not there (as in the exact engine's deviance)."""
    if segments is None:
        segments = [torch.unique(c, return_inverse=True) for c in codes]
    log_w = 0.0
    if weights is not None:
        sw = weights.sqrt().to(r.dtype)
        r = r * sw
        # log|V| less Σ log w_i; a row of weight 0 is a row of zeros in W^½r and W^½U,
        # which would add ½ log 2πσ²: taken off again
        zero = weights == 0
        log_w = torch.where(zero, (2.0 * math.pi) * (2.0 * params.log_sigma).exp(),
                            weights.to(r.dtype)).log().sum()
    if len(params.terms) == 1 and not isinstance(params.terms[0].cov, RBFKernel):
        present, inv = segments[0]
        Xk = Xs[0] if weights is None else Xs[0] * sw.unsqueeze(1).to(Xs[0].dtype)
        return _single_grouped_term(r, params, inv, len(present), Xk) - 0.5 * log_w
    m = r.shape[0]
    sigma2 = (2.0 * params.log_sigma).exp()
    U = batch_columns(params, Xs, segments, m, r.dtype, jitter)
    # W/σ² in U'WU and W^½UU'W^½ (U absolute, so U/σ), W the prior weights (else I)
    scale = (1.0 / sigma2).expand(m) if weights is None else weights.to(r.dtype) / sigma2
    if U.k <= m:
        # the k×k system: LL' = I + U'WU/σ², r̃'(I + W^½UU'W^½/σ²)⁻¹r̃ = r̃'r̃ − ‖L⁻¹U'W^½r̃/σ‖²
        # with r̃ = W^½r (Woodbury)
        Lm = _cholesky_of_identity_plus(U.gram(scale))
        Ur = U.t_times(r if weights is None else r * sw)
        w = torch.linalg.solve_triangular(Lm, (Ur / sigma2.sqrt()).unsqueeze(1), upper=False)
        quad = (r @ r - (w * w).sum()) / sigma2
    else:
        # more columns than rows (several factors with many levels each): the m×m system,
        # LL' = I + W^½UU'W^½/σ², with the same log-determinant (Sylvester's identity)
        Lm = _cholesky_of_identity_plus(U.outer(scale))
        w = torch.linalg.solve_triangular(Lm, r.unsqueeze(1), upper=False)
        quad = (w * w).sum() / sigma2
    logdet = m * torch.log(sigma2) + 2.0 * torch.log(Lm.diagonal()).sum() - log_w
    return 0.5 * (quad + logdet + m * math.log(2.0 * math.pi))


def _cholesky_of_identity_plus(G: torch.Tensor) -> torch.Tensor:
    G.diagonal().add_(1.0)
    return torch.linalg.cholesky_ex(G).L  # _ex: no host check (CUDA graphs); I + G is PD
