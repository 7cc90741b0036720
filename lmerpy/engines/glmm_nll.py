"""The mini-batch marginal NLL of a GLMM with neural fixed effects (LMMNN paper §6, eq. 40).

With one grouping factor and a scalar term (x'b, b ~ N(0, s²) per group), groups are
independent given f, so for a batch of whole groups

    −log L = −Σ_g log ∫ Π_{i∈g} p(y_i | f(x_i) + x_i s v) φ(v) dv,

computed by the Gauss–Hermite rule adapted to each group (as glmer's nAGQ > 1): centred at
the group's mode and scaled by its curvature. Batches must hold whole groups for this
decomposition to be exact. The paper's fixed rule, φ(v) integrated on nodes that ignore the
group's likelihood, badly underestimates the variance when groups hold hundreds of rows;
vector terms (slopes) and several factors go through the Laplace approximation instead
(laplace_nll.py), which is the adaptive rule with one node.
"""

from __future__ import annotations

import math

import torch

from .family import Family


def inverse_link(name: str, eta: torch.Tensor) -> torch.Tensor:
    """μ = g⁻¹(η) for every link of the families (a positive mean kept positive)."""
    if name == "log":
        return eta.clamp(max=700.0).exp()
    if name == "logit":
        return torch.sigmoid(eta)
    if name == "probit":
        return torch.special.ndtr(eta)
    if name == "cloglog":
        return -torch.expm1(-eta.clamp(max=30.0).exp())
    if name == "cauchit":
        return 0.5 + torch.atan(eta) / math.pi
    if name == "sqrt":
        return eta.clamp(min=1e-10) ** 2
    if name == "inverse":
        return 1.0 / eta.clamp(min=1e-10)
    if name == "1/mu^2":
        return eta.clamp(min=1e-20).rsqrt()
    return eta.clamp(min=1e-10)  # identity


def mu_eta(name: str, eta: torch.Tensor) -> torch.Tensor:
    """dμ/dη for the links of binomial and Poisson responses."""
    if name == "logit":
        mu = torch.sigmoid(eta)
        return mu * (1.0 - mu)
    if name == "log":
        return eta.clamp(max=700.0).exp()
    if name == "probit":
        return torch.exp(-0.5 * eta**2) / math.sqrt(2.0 * math.pi)
    if name == "cloglog":
        e = eta.clamp(max=30.0)
        return torch.exp(e - e.exp())
    if name == "cauchit":
        return 1.0 / (math.pi * (1.0 + eta**2))
    if name == "sqrt":
        return 2.0 * eta
    return torch.ones_like(eta)  # identity


def score_and_information(family: Family, eta: torch.Tensor, y: torch.Tensor,
                          w: torch.Tensor, size: torch.Tensor | None = None
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """∂log p/∂η = w (y − μ) μ'/V(μ) and the expected information w μ'²/V(μ) per row, for
    binomial (y a proportion of w trials), Poisson and negative binomial responses (V = μ +
    μ²/θ, θ the ``size`` being trained or the family's own): glmer's PIRLS weights, which
    its Laplace approximation takes whatever the link."""
    mu = inverse_link(family.link.name, eta)
    d = mu_eta(family.link.name, eta)
    if family.family == "binomial":
        var = mu * (1.0 - mu)
    elif family.family == "negative.binomial":
        var = mu + mu**2 / (size if size is not None else family.theta)
    else:
        var = mu
    var = var.clamp(min=1e-300)
    return w * (y - mu) * d / var, w * d**2 / var


def log_density(family: Family, eta: torch.Tensor, y: torch.Tensor,
                w: torch.Tensor, phi: torch.Tensor | None = None) -> torch.Tensor:
    """log p(y | η) elementwise (y a proportion of w trials, a count, or a value with the
    dispersion φ/w), constants included. ``phi`` is the family's parameter being trained:
    the dispersion φ of a Gamma, inverse Gaussian or Gaussian response, or the size θ of a
    negative binomial one (glmmTMB's nbinom2 dispersion; None: the family's fixed θ)."""
    if family.has_dispersion:  # a row of weight 0 contributes nothing
        mu, p = inverse_link(family.link.name, eta), phi / w.clamp(min=1e-300)
        if family.family == "Gamma":  # shape a = 1/p, scale μp
            a = 1.0 / p
            ll = (a - 1.0) * torch.log(y) - a * y / mu - a * torch.log(mu * p) \
                - torch.lgamma(a)
        elif family.family == "inverse.gaussian":
            ll = -0.5 * (torch.log(2.0 * math.pi * p * y**3) + (y - mu) ** 2 / (p * mu**2 * y))
        else:
            ll = -0.5 * (torch.log(2.0 * math.pi * p) + (y - mu) ** 2 / p)
        return torch.where(w > 0, ll, torch.zeros_like(ll))
    if family.family == "binomial":
        s = w * y
        f = w - s
        name = family.link.name
        if name == "logit":
            log_mu, log_1m = -torch.nn.functional.softplus(-eta), \
                -torch.nn.functional.softplus(eta)
        elif name == "probit":
            log_mu, log_1m = torch.special.log_ndtr(eta), torch.special.log_ndtr(-eta)
        elif name == "cloglog":
            e = eta.clamp(max=30.0).exp()
            log_mu, log_1m = torch.log(-torch.expm1(-e)).clamp(min=-745.0), -e
        else:  # cauchit: μ = ½ + atan(η)/π, 1 − μ = ½ − atan(η)/π
            a = torch.atan(eta) / math.pi
            log_mu, log_1m = torch.log((0.5 + a).clamp(min=1e-300)), \
                torch.log((0.5 - a).clamp(min=1e-300))
        const = torch.lgamma(w + 1) - torch.lgamma(s + 1) - torch.lgamma(f + 1)
        return const + s * log_mu + f * log_1m
    if family.family == "negative.binomial":  # MASS: prior weights multiply log p
        theta = phi if phi is not None else torch.tensor(family.theta, dtype=eta.dtype,
                                                        device=eta.device)
        if family.link.name == "log":  # log μ and log(μ + θ) without forming μ
            log_mu = eta.clamp(max=700.0)
            log_mu_theta = torch.logaddexp(log_mu, torch.log(theta))
        else:  # identity
            mu = inverse_link(family.link.name, eta)
            log_mu, log_mu_theta = torch.log(mu), torch.log(mu + theta)
        return w * (torch.lgamma(y + theta) - torch.lgamma(theta) - torch.lgamma(y + 1)
                    + theta * torch.log(theta) + y * log_mu - (y + theta) * log_mu_theta)
    if family.link.name == "log":
        return w * (y * eta - eta.clamp(max=700.0).exp() - torch.lgamma(y + 1))
    mu = inverse_link(family.link.name, eta)  # identity or sqrt
    return w * (y * torch.log(mu) - mu - torch.lgamma(y + 1))


def _group_modes(eta_fixed, y, w, inv, G, x, scale, family, phi=None, steps: int = 30,
                 tolerance: float = 1e-8):
    """Per group, the mode v̂ of h(v) = Σ_i log p(y_i | η_i + x_i·scale·v) − v²/2 and the
    curvature −h''(v̂), by vectorised Newton steps (groups are separable, so the gradient of
    Σ_g h_g gives every group's derivative at once), each halved for a group until h does
    not fall there. Without the halving a group of large counts far from its mode (early in
    training, or a start of μ far below y) stepped past it to η of hundreds, and the
    adaptive rule centred there made the NLL explode (a Poisson network on overdispersed
    counts: 10²⁴ per observation). No gradient flows through the result."""
    eta_fixed, scale = eta_fixed.detach(), scale.detach()
    phi = phi.detach() if phi is not None else None
    tolerance = max(tolerance, math.sqrt(torch.finfo(eta_fixed.dtype).eps))

    def objective(v):
        ll = log_density(family, eta_fixed + x * scale * v[inv], y, w, phi)
        return torch.zeros_like(v).index_add(0, inv, ll) - 0.5 * v**2

    v = torch.zeros(G, dtype=eta_fixed.dtype, device=eta_fixed.device)
    for k in range(steps + 1):
        v = v.detach().requires_grad_(True)
        with torch.enable_grad():
            h = objective(v)
            (g,) = torch.autograd.grad(h.sum(), v, create_graph=True)
            (hess,) = torch.autograd.grad(g.sum(), v)
        curv = (-hess).clamp(min=1e-6)
        if k == steps:
            break
        v, h, g = v.detach(), h.detach(), g.detach()
        step = g / curv
        with torch.no_grad():
            for _ in range(30):
                h_trial = objective(v + step)
                worse = ~(h_trial >= h - 1e-10 * h.abs())
                if not bool(worse.any()):
                    break
                step = torch.where(worse, 0.5 * step, step)
        v = v + step
        if float(step.abs().max()) < tolerance:
            steps = k + 1  # one more pass: the curvature at the mode
    return v.detach(), curv.detach()


def glmm_batch_nll(eta_fixed: torch.Tensor, y: torch.Tensor, w: torch.Tensor,
                   codes: torch.Tensor | None, Xk: torch.Tensor, L: torch.Tensor,
                   nodes: torch.Tensor, log_weights: torch.Tensor, family: Family,
                   segments: tuple[torch.Tensor, torch.Tensor] | None = None,
                   phi: torch.Tensor | None = None) -> torch.Tensor:
    """−log L of the batch's groups (paper eq. 40) by the adaptive rule: ``codes`` the rows'
    levels, ``Xk`` their term column (m × 1), ``L`` the sd s (1 × 1), ``nodes`` and
    ``log_weights`` the Gauss–Hermite rule for N(0, 1) (K); ``segments`` = (levels present,
    each row's index among them), if already found; ``phi`` the dispersion of a Gamma,
    inverse Gaussian or Gaussian response."""
    present, inv = segments if segments is not None else torch.unique(codes, return_inverse=True)
    G = len(present)
    x, s = Xk[:, 0], L.reshape(())
    v_hat, curv = _group_modes(eta_fixed, y, w, inv, G, x, s, family, phi)
    sd = curv.rsqrt()
    z = nodes.reshape(-1)
    v = v_hat.unsqueeze(1) + sd.unsqueeze(1) * z.unsqueeze(0)          # G × K
    eta = eta_fixed.unsqueeze(1) + (x * s).unsqueeze(1) * v[inv]       # m × K
    ll = log_density(family, eta, y.unsqueeze(1), w.unsqueeze(1), phi)
    h = torch.zeros(G, len(z), dtype=ll.dtype, device=ll.device).index_add(0, inv, ll) \
        - 0.5 * v**2
    terms = h + 0.5 * z.unsqueeze(0) ** 2 + log_weights.reshape(1, -1)
    return -(torch.logsumexp(terms, dim=1) + torch.log(sd)).sum()


__all__ = ["glmm_batch_nll", "inverse_link", "log_density", "mu_eta",
           "score_and_information"]
