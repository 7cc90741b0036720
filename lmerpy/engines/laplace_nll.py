"""The mini-batch Laplace NLL of a GLMM with neural fixed effects and random terms in any
combination: several grouping factors (crossed or nested), slopes of any number, rbf.

The quadrature NLL (glmm_nll.py) needs groups that are independent, so one grouping factor.
Here a batch's random effects are integrated out by glmer's Laplace approximation over the
k columns present in the batch, U = Z_ξΛ (m × k, batch_columns.py):

    −log L_ξ ≈ −Σ_i log p(y_i | η̂_i) + ½‖û‖² + ½ log|I + U'ŴU|,   η̂ = f + Uû,

û the batch's conditional mode and Ŵ the information of η at η̂: glmer's PIRLS weights
w μ'²/V(μ) for binomial, Poisson and negative binomial responses, the observed
−∂²log p/∂η² (glmmTMB's) for a family with a dispersion — the exact engine's choices, so
that on all rows this is its Laplace deviance, halved. When k > m the m × m system
I + Ŵ^½UU'Ŵ^½ gives the same determinant (Sylvester) and the Newton step by Woodbury.

û is found by Newton steps that carry no gradient. One more step, taken with the graph,
û + H⁻¹∇h(û), has the value û (∇h(û) = 0) and the derivative H⁻¹∂∇h/∂(f, θ, φ), which is
the implicit function theorem's dû/d(f, θ, φ): the loss's gradient is the Laplace
approximation's total derivative, log-determinant included, as TMB computes it.
"""

from __future__ import annotations

import math

import torch

from .batch_columns import BatchColumns
from .family import Family
from .glmm_nll import log_density, score_and_information

# Newton steps for the mode, and the largest change in û (on the N(0, I) scale) that ends
# them in float64
MAX_STEPS = 30
TOLERANCE = 1e-8


def _derivatives(family: Family, eta: torch.Tensor, y: torch.Tensor, w: torch.Tensor,
                 phi: torch.Tensor | None, graph: bool
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """log p(y_i | η_i) and its first and second derivatives in η_i, elementwise (each row's
    density depends on its own η only, so the gradient of the sum is the derivative row by
    row). ``graph``: keep them differentiable in whatever ``eta`` and ``phi`` depend on."""
    with torch.enable_grad():
        e = eta if graph else eta.detach().requires_grad_(True)
        ll = log_density(family, e, y, w, phi)
        (d1,) = torch.autograd.grad(ll.sum(), e, create_graph=True)
        (d2,) = torch.autograd.grad(d1.sum(), e, create_graph=graph)
    if not graph:
        ll, d1, d2 = ll.detach(), d1.detach(), d2.detach()
    return ll, d1, d2


def _observed(d2: torch.Tensor) -> torch.Tensor:
    # the observed information; kept positive where a non-canonical link makes it negative
    return (-d2).clamp(min=1e-10)


def _score(family: Family, eta: torch.Tensor, y: torch.Tensor, w: torch.Tensor,
           phi: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """log p, ∂log p/∂η and the information of η, elementwise and without gradient: the
    Laplace approximation's weights (module docstring), in closed form for binomial,
    Poisson and negative binomial responses (``phi`` the last one's size θ, if trained), by
    autograd for the families with a dispersion."""
    if family.has_dispersion:
        ll, d1, d2 = _derivatives(family, eta, y, w, phi, graph=False)
        return ll, d1, _observed(d2)
    with torch.no_grad():
        d1, W = score_and_information(family, eta, y, w, phi)
        return log_density(family, eta, y, w, phi), d1, W


def _system(U: BatchColumns, W: torch.Tensor) -> tuple[torch.Tensor, bool]:
    """The Cholesky factor of I + U'WU (k ≤ m), else of I + W^½UU'W^½; and which."""
    small = U.k <= U.m
    G = U.gram(W) if small else U.outer(W)
    G = G + torch.eye(G.shape[0], dtype=G.dtype, device=G.device)
    return torch.linalg.cholesky(G), small


def _newton_step(U: BatchColumns, W: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """(I + U'WU)⁻¹g, directly or by Woodbury through the m × m factor."""
    chol, small = _system(U, W)
    if small:
        return torch.cholesky_solve(g.unsqueeze(1), chol).squeeze(1)
    s = W.sqrt()
    inner = torch.cholesky_solve((s * U.times(g)).unsqueeze(1), chol).squeeze(1)
    return g - U.t_times(s * inner)


def batch_mode(eta_fixed: torch.Tensor, U: BatchColumns, y: torch.Tensor, w: torch.Tensor,
               family: Family, phi: torch.Tensor | None = None) -> torch.Tensor:
    """The conditional mode û of h(u) = Σ log p(y | f + Uu) − ½‖u‖², by Newton steps (Fisher
    scoring for binomial and Poisson, as PIRLS) with step halving, without gradient."""
    eta_fixed, U = eta_fixed.detach(), U.detach()
    phi = phi.detach() if phi is not None else None
    u = torch.zeros(U.k, dtype=eta_fixed.dtype, device=eta_fixed.device)
    # in float32 (a GPU) the rounding of the sums bounds what a step can show
    eps = torch.finfo(eta_fixed.dtype).eps
    tolerance, slack = max(TOLERANCE, math.sqrt(eps)), max(1e-10, 100.0 * eps)
    ll, d1, W = _score(family, eta_fixed, y, w, phi)
    value = float(ll.sum())
    for _ in range(MAX_STEPS):
        step = _newton_step(U, W, U.t_times(d1) - u)
        scale = 1.0
        while True:
            trial = u + scale * step
            ll_t, d1_t, W_t = _score(family, eta_fixed + U.times(trial), y, w, phi)
            value_t = float(ll_t.sum()) - 0.5 * float(trial @ trial)
            if value_t >= value - slack * abs(value) or scale < 1e-4:
                break
            scale /= 2.0
        moved = float((scale * step).abs().max()) if len(step) else 0.0
        u, value, d1, W = trial, value_t, d1_t, W_t
        if moved < tolerance:
            break
    return u


def laplace_batch_nll(eta_fixed: torch.Tensor, U: BatchColumns | torch.Tensor,
                      y: torch.Tensor, w: torch.Tensor, family: Family,
                      phi: torch.Tensor | None = None) -> torch.Tensor:
    """−log L of a batch by the Laplace approximation: ``eta_fixed`` the rows' f(x) + offset,
    ``U`` = Z_ξΛ over the columns present (batch_columns.py; or a dense m × k tensor), ``w``
    prior weights (binomial: trials), ``phi`` the dispersion of a Gamma, inverse Gaussian or
    Gaussian response, or the size θ of a negative binomial one being trained.
    Differentiable in all three when gradients are on."""
    U = BatchColumns.of(U) if isinstance(U, torch.Tensor) else U
    u_hat = batch_mode(eta_fixed, U, y, w, family, phi)
    graph = torch.is_grad_enabled() and (eta_fixed.requires_grad or U.requires_grad or (
        phi is not None and phi.requires_grad))
    if graph:
        # one Newton step with the graph and the observed information (the Hessian of h):
        # its value is û, its derivative dû/d(f, θ, φ)
        _, d1, d2 = _derivatives(family, eta_fixed + U.times(u_hat), y, w, phi, graph=True)
        u_hat = u_hat + _newton_step(U.detach(), _observed(d2.detach()),
                                     U.t_times(d1) - u_hat)
    eta = eta_fixed + U.times(u_hat)
    if family.has_dispersion:
        ll, _, d2 = _derivatives(family, eta, y, w, phi, graph=graph)
        W = _observed(d2)
    else:
        ll = log_density(family, eta, y, w, phi)
        W = score_and_information(family, eta, y, w, phi)[1]
    chol, _ = _system(U, W)
    return -ll.sum() + 0.5 * (u_hat @ u_hat) + torch.log(chol.diagonal()).sum()


__all__ = ["batch_mode", "laplace_batch_nll"]
