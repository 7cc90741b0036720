"""The exact GLMM engine: glmer()'s Laplace approximation and adaptive Gauss–Hermite quadrature.

As lme4 (Bates et al., JSS 2015, section 5; lme4's ``glmerLaplace``/``glmerAGQ``):

* PIRLS finds the conditional modes ũ of the spherical random effects for given θ (and β)
  by penalised iteratively reweighted least squares — each step is the weighted penalised
  least squares of ``pls.PLS`` on the working response, with step halving on the penalised
  deviance Σ d_i(μ) + ‖u‖².
* Laplace:  −2 log L ≈ −2 Σ log p(y_i | ũ) + ‖ũ‖² + log|L_θ|²,  L_θL_θ' = Λ'Z'WZΛ + I.
* AGQ (one scalar term): per level j, with σ_j = 1/L_jj and the rule (z_k, w_k),
      −2 log L_j ≈ D_j(0) + log L_jj² − 2 log Σ_k w_k exp(−(D_j(z_k) − D_j(0))/2 + z_k²/2),
  D_j(z) = (ũ_j + zσ_j)² + Σ_{i∈j} d_i; lme4 sums deviance residuals d_i here (not −2 log p),
  which is why its AGQ log-likelihoods are on another scale than its Laplace ones.
* Stage 1 optimises θ with β inside PIRLS (lme4's nAGQ = 0); stage 2 optimises (θ, β)
  jointly with PIRLS over u only; the fixed effects' covariance comes from the Hessian of
  the stage-2 deviance, as lme4's ``vcov(use.hessian = TRUE)``.
* A family with a dispersion φ (Gamma, inverse Gaussian, Gaussian) makes log φ one more
  parameter of both stages (lme4 1.1 sets φ after the fit instead, which biases θ): PIRLS
  minimises Σ d_i/φ + ‖u‖², the Laplace criterion is −2 Σ log p(y_i | μ̃_i, φ) + ‖ũ‖² +
  log|L|² with L from the observed information (exactly the Laplace approximation, as
  glmmTMB's), and AGQ's D_j(z) holds d_i/φ, the constant of −2 log p added back once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..design.model import ModelDesign
from ..errors import DataError, ModelError, warn
from .exact import (
    ConvergenceWarning,
    ExactFit,
    LmerControl,
    check_gradient,
    check_hessian,
    check_optimizer_code,
    check_random_terms,
    check_singular,
    check_weights,
    derivatives,
    fixed_effects_matrix,
    theta_scaling,
)
from .family import Family, gauss_hermite, warn_fractional
from .optimizers import check_optimizer, minimize
from .options import require_flag, require_number, require_whole
from .pls import PLS, LambdaMap, PLSSolution, WeightedCrossProducts


class SeparationWarning(UserWarning):
    """The fixed-effects columns separate the binary outcomes: some estimates diverge."""


@dataclass
class GlmerControl(LmerControl):
    """glmerControl(): lmerControl's settings plus the PIRLS tolerance and iteration cap.
    ``optimizer`` names one optimiser for both stages, or a pair (first stage, second
    stage) as lme4's ``optimizer = c("bobyqa", "Nelder_Mead")`` (lme4's default; lmerpy's
    "auto" is BOBYQA for both)."""

    tol_pwrss: float = 1e-10
    max_pirls: int = 100
    check_separation: bool = True

    def check(self) -> None:
        super().check()
        require_number("tol_pwrss", self.tol_pwrss, positive=True)
        require_whole("max_pirls", self.max_pirls, 1)
        require_flag("check_separation", self.check_separation)

    def _check_optimizer(self) -> None:
        if isinstance(self.optimizer, (tuple, list)):
            if len(self.optimizer) != 2:
                raise ModelError(f"optimizer takes one name or two (the first stage's and "
                                 f"the second's), not {len(self.optimizer)}")
            for name in self.optimizer:
                check_optimizer(name)
        else:
            super()._check_optimizer()

    def stages(self) -> tuple[str, str]:
        """The optimisers of the first and the second stage."""
        if isinstance(self.optimizer, (tuple, list)):
            return self.optimizer[0], self.optimizer[1]
        name = "bobyqa" if self.optimizer == "auto" else self.optimizer
        return name, name


@dataclass
class Modes:
    """The state at convergence of PIRLS for one θ (and β)."""

    beta: np.ndarray
    u: np.ndarray
    eta: np.ndarray
    mu: np.ndarray
    pls: PLS
    solution: PLSSolution
    logdet: float
    iterations: int
    converged: bool = True
    phi: float = 1.0


@dataclass
class GlmerFit(ExactFit):
    """An exact GLMM fit: ExactFit's fields (σ = 1: Λ is on the linear predictor's scale)
    plus the family's quantities, among them the dispersion φ of a Gamma, inverse Gaussian
    or Gaussian response (1 for the others)."""

    family: Family = None  # type: ignore[assignment]
    nAGQ: int = 1
    mu: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    eta: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    prior_weights: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    criterion: float = np.nan      # −2 log L (Laplace or AGQ), lme4's devcomp$cmp["dev"]
    phi: float = 1.0               # the dispersion φ (Gamma, inverse Gaussian, Gaussian)
    vcov_beta: np.ndarray | None = None
    pirls: PIRLS | None = field(default=None, repr=False)   # for quadrature after the fit
    modes: Modes | None = field(default=None, repr=False)   # PIRLS's state at the estimates

    @property
    def objective(self) -> float:
        return self.criterion

    def beta_vcov(self) -> np.ndarray:
        """From the Hessian of the deviance in (θ, β) (lme4's use.hessian = TRUE); from R_X
        (σ = 1) when that Hessian is not positive definite."""
        return self.vcov_beta if self.vcov_beta is not None else super().beta_vcov()


def binomial_response(y: np.ndarray, family: Family, weights: np.ndarray | None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(proportion, prior weights) from 0/1, proportions with weights, or cbind(s, f)."""
    w = np.ones(len(y)) if weights is None else weights.astype(np.float64)
    if y.ndim == 2:
        if family.family != "binomial":
            raise ModelError("cbind(successes, failures) responses need family='binomial'")
        if y.shape[1] != 2:
            raise ModelError(f"cbind() response must have 2 columns (successes, failures), "
                             f"not {y.shape[1]}")
        s, f = y[:, 0], y[:, 1]
        bad = np.flatnonzero((s < 0) | (f < 0))
        if len(bad):
            raise DataError(f"cbind() counts must be non-negative (rows {list(bad[:5])})")
        warn_fractional(y, "non-integer counts in a binomial glm!", tol=1e-3)
        trials = s + f
        with np.errstate(invalid="ignore", divide="ignore"):
            prop = np.where(trials > 0, s / np.where(trials > 0, trials, 1.0), 0.0)
        return prop, w * trials
    y = y.astype(np.float64)
    family.validate(y)
    if family.family == "binomial" and weights is None:
        frac = np.flatnonzero((y != 0) & (y != 1))
        if len(frac):
            raise ModelError(f"binomial responses that are not 0/1 (e.g. row {frac[0]}: "
                             f"{y[frac[0]]:g}) need weights= (the number of trials) or a "
                             f"cbind(successes, failures) response")
    if family.family == "binomial":
        warn_fractional(w * y, "non-integer #successes in a binomial glm!", tol=1e-3)
    return y, w


class PIRLS:
    """Conditional modes for one GLMM: the weighted PLS iterated to convergence."""

    def __init__(self, design: ModelDesign, X: np.ndarray, y: np.ndarray, weights: np.ndarray,
                 offset: np.ndarray, family: Family, control: GlmerControl):
        self.design, self.X, self.y, self.w = design, X, y, weights
        self.offset, self.family, self.control = offset, family, control
        self.Z = design.Z.tocsc()
        n_theta = sum(design.theta_sizes)
        self.lambda_map = LambdaMap(design.random, design.split_theta, n_theta)
        self.empty = np.zeros((len(y), 0))
        self.cross = WeightedCrossProducts(X, self.Z)
        self._step_pls: dict[int, PLS] = {}
        self.dispersion = family.has_dispersion
        if not self.dispersion:
            # −2 log p(y|μ) − Σ d_i(μ) does not depend on μ: one constant per model
            mu0 = family.mu_start(y, weights)
            self.aic_shift = (family.aic(y, mu0, weights)
                              - family.dev_resids(y, mu0, weights).sum())

    def penalised_deviance(self, mu: np.ndarray, u: np.ndarray, phi: float = 1.0) -> float:
        return float(self.family.dev_resids(self.y, mu, self.w).sum() / phi + u @ u)

    def _weighted_pls(self, theta, eta, mu, X, base, phi: float = 1.0,
                      observed: bool = False, keep: bool = False) -> tuple[PLS, PLSSolution]:
        """One Newton step: weighted PLS of the working response less ``base`` (the offset,
        and Xβ when β is held fixed), with Fisher weights w μ'²/(φV), or with the observed
        information's weights (the Laplace approximation's Hessian for a dispersion
        family). The steps share one PLS, refreshed with each step's weights; ``keep``
        builds one of its own, for a result that outlives the step."""
        link = self.family.link
        d = link.mu_eta(eta)
        if observed:
            W = self.family.observed_weights(self.y, mu, eta, self.w) / phi
        else:
            W = self.w * d**2 / self.family.variance(mu) / phi
        z = eta - base + (self.y - mu) / d
        cp = self.cross.build(z, W, X)
        # one shared PLS per width of X (joint, or u only); a kept one is its own
        pls = None if keep else self._step_pls.get(X.shape[1])
        if pls is None or not pls.refresh(cp):
            pls = PLS(self.design.random, cp, self.design.split_theta, self.lambda_map,
                      linear_updates=False)
            if not keep:
                self._step_pls[X.shape[1]] = pls
        return pls, pls.solve(theta)

    def modes(self, theta: np.ndarray, beta: np.ndarray | None = None,
              u0: np.ndarray | None = None, eta0: np.ndarray | None = None,
              phi: float = 1.0, keep: bool = False) -> Modes:
        """PIRLS at θ (and the dispersion φ): over (β, u) when ``beta`` is None (lme4's
        nAGQ = 0), else over u. The modes minimise Σ d_i(μ)/φ + ‖u‖². With ``keep`` the
        result's PLS is its own (else the next PIRLS step reuses it)."""
        family, control = self.family, self.control
        lam = self.lambda_map(theta)
        joint = beta is None
        X = self.X if joint else self.empty
        fixed = np.zeros(len(self.y)) if joint else self.X @ beta
        base = self.offset + fixed
        u = np.zeros(lam.shape[1]) if u0 is None else u0.copy()
        b_par = np.zeros(self.X.shape[1]) if joint else beta
        if eta0 is not None:
            eta = eta0.copy()
        else:
            eta = self.offset + fixed + self.Z @ (lam @ u)
        mu = family.link.inverse(eta)
        old = np.inf if eta0 is not None else self.penalised_deviance(mu, u, phi)
        converged = False
        iterations = 0
        while iterations < control.max_pirls:
            iterations += 1
            pls, sol = self._weighted_pls(theta, eta, mu, X, base, phi)
            new_u = sol.u
            new_b = sol.beta if joint else b_par
            step = 1.0
            while True:
                cand_u = u + step * (new_u - u)
                cand_b = b_par + step * (new_b - b_par) if joint else b_par
                cand_eta = self.offset + (self.X @ cand_b if joint else fixed) \
                    + self.Z @ (lam @ cand_u)
                cand_mu = family.link.inverse(cand_eta)
                pdev = self.penalised_deviance(cand_mu, cand_u, phi)
                if np.isfinite(pdev) and (pdev <= old * (1 + 1e-12) or not np.isfinite(old)):
                    break
                step /= 2.0
                if step < 1e-10:
                    break  # no decrease possible: we are at the mode up to rounding
            if step < 1e-10:
                converged = True
                break
            u, b_par, eta, mu = cand_u, cand_b, cand_eta, cand_mu
            converged = np.isfinite(old) and abs(old - pdev) <= control.tol_pwrss * abs(pdev)
            old = pdev
            if converged:
                break
        # the factor at the weights of the mode itself, so the criterion is a smooth function;
        # for a dispersion family the observed information's (the Laplace Hessian exactly)
        try:
            pls, sol = self._weighted_pls(theta, eta, mu, X, base, phi, self.dispersion,
                                          keep=keep)
            logdet = pls.factor.logdet
        except (np.linalg.LinAlgError, ValueError, ModelError):  # Hessian not pos. definite
            pls, sol = self._weighted_pls(theta, eta, mu, X, base, phi, keep=keep)
            logdet = np.inf
        return Modes(b_par.copy(), u, eta, mu, pls, sol, logdet, iterations, converged, phi)

    def laplace(self, m: Modes) -> float:
        """−2 log L by the Laplace approximation at the modes: −2 log p(y | ũ) + ‖ũ‖² +
        log|L|² (lme4's glmResp::Laplace). With a dispersion φ the exact log-density at φ
        and the observed information in L, as the Laplace approximation of glmmTMB."""
        fam = self.family
        if self.dispersion:
            return float(fam.neg2_loglik(self.y, m.mu, self.w, m.phi) + m.u @ m.u + m.logdet)
        return float(fam.dev_resids(self.y, m.mu, self.w).sum() + self.aic_shift
                     + m.u @ m.u + m.logdet)

    def _node_terms(self, m: Modes, theta: np.ndarray, nodes):
        """Per level j and node k of an adaptive rule around the modes (one scalar term):
        D_j(0), diag(A), σ_j and log g_jk = −(D_j(z_k) − D_j(0))/2 + z_k²/2 (see the top)."""
        r = self.design.random[0]
        codes, zval = r.codes, r.X[:, 0]
        fam, q = self.family, r.q
        # d_i/φ: with a dispersion, −2 log p = d/φ + c(y, φ), and c does not move with u
        devc0 = m.u**2 + np.bincount(codes, fam.dev_resids(self.y, m.mu, self.w) / m.phi,
                                     minlength=q)
        # A = Λ'Z'WZΛ + I is diagonal here: its diagonal is the first factor's blocks
        a_diag = 1.0 / m.pls.factor.A11_inv[:, 0, 0]
        sd = 1.0 / np.sqrt(a_diag)
        zs, _ = nodes
        logg = np.zeros((q, len(zs)))
        for k, zk in enumerate(zs):
            if zk == 0:
                continue
            shift = zk * sd
            mu = fam.link.inverse(m.eta + zval * float(theta[0]) * shift[codes])
            devc = (m.u + shift) ** 2 + np.bincount(
                codes, fam.dev_resids(self.y, mu, self.w) / m.phi, minlength=q)
            logg[:, k] = -0.5 * (devc - devc0) + 0.5 * zk**2
        return devc0, a_diag, sd, logg

    def agq(self, m: Modes, theta: np.ndarray, nodes: tuple[np.ndarray, np.ndarray]) -> float:
        """−2 log L by adaptive Gauss–Hermite quadrature (one scalar random term)."""
        devc0, a_diag, _, logg = self._node_terms(m, theta, nodes)
        mult = np.exp(logg) @ nodes[1]
        # lme4 sums deviance residuals; with a dispersion, −2 log p(y | ũ) in full, so that
        # one node is the Laplace approximation and many the integral
        shift = self.family.neg2_loglik(self.y, m.mu, self.w, m.phi) - (
            self.family.dev_resids(self.y, m.mu, self.w).sum() / m.phi) \
            if self.dispersion else 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(devc0.sum() + shift + np.log(a_diag).sum()
                         - 2.0 * np.log(mult).sum())

    def posterior_means(self, m: Modes, theta: np.ndarray, k: int = 25) -> np.ndarray:
        """E[u_j | y] by the adaptive rule: the posterior means of the spherical effects."""
        nodes = gauss_hermite(k)
        _, _, sd, logg = self._node_terms(m, theta, nodes)
        g = np.exp(logg) * nodes[1]
        return m.u + sd * (g @ nodes[0]) / g.sum(axis=1)


def check_separation(X: np.ndarray, names: list[str], y: np.ndarray, w: np.ndarray
                     ) -> list[str]:
    """Columns along which the fixed effects separate successes from failures (Konis' linear
    programme): a direction d with x_i'd ≥ 0 for every success and ≤ 0 for every failure,
    not all zero, makes the likelihood increase forever along d."""
    from scipy.optimize import linprog

    succ = (y * w) > 0
    fail = ((1.0 - y) * w) > 0
    rows = np.vstack([-X[succ], X[fail]])   # A d ≤ 0
    if rows.size == 0 or X.shape[1] == 0:
        return []
    scale = np.maximum(np.abs(X).max(axis=0), 1e-300)
    A = rows / scale
    c = A.sum(axis=0)  # minimise Σ A d  (= −Σ margins)
    res = linprog(c, A_ub=A, b_ub=np.zeros(len(A)), bounds=[(-1, 1)] * X.shape[1],
                  method="highs")
    if res.status != 0 or -res.fun <= 1e-7 * len(A):
        return []
    d = res.x
    return [n for n, v in zip(names, d) if abs(v) > 1e-6]


def fit_glmer(design: ModelDesign, family: Family, nAGQ: int = 1, weights=None,
              control: GlmerControl | None = None, start: np.ndarray | None = None,
              fix_theta: bool = False,
              fixed: tuple[np.ndarray, ...] | None = None,
              phi: float | None = None, start_beta: np.ndarray | None = None) -> GlmerFit:
    """Fit a GLMM as lme4's glmer(): Laplace (nAGQ = 1), AGQ (nAGQ > 1) or nAGQ = 0.

    ``start`` is a starting θ and ``phi`` a starting dispersion; with ``fix_theta`` both
    stay there and only β and the modes are found (the torch engine's fit at its trained θ);
    ``fixed`` = (θ, β) or (θ, β, φ) skips all optimisation (a loaded model). ``start_beta``
    starts the second stage's β (lme4's start$fixef); with ``start`` too, the first stage
    is skipped, as in lme4.
    """
    control = control or GlmerControl()
    control.check()
    n = design.n
    check_random_terms(design, n, glmm=True)
    if not isinstance(nAGQ, (int, np.integer)) or nAGQ < 0:
        raise ModelError(f"nAGQ must be a non-negative integer, not {nAGQ!r}")
    if nAGQ > 1:
        if len(design.random) != 1 or design.random[0].p != 1 \
                or design.random[0].encoder is None:
            raise ModelError("nAGQ > 1 is only available for models with a single scalar "
                             "random-effects term, e.g. (1 | group)")
    w_user = check_weights(weights, n)
    y, w = binomial_response(np.asarray(design.y, dtype=np.float64), family, w_user)
    used = y[w > 0]
    if len(used) > 1 and np.ptp(used) == 0:
        raise DataError(f"the response {design.formula.response} is constant (every value is "
                        f"{used[0]:g}): there is no variation to model")
    messages: list[str] = []
    X, names, dropped = fixed_effects_matrix(design, control, messages)
    offset = design.offset if design.offset is not None else np.zeros(n)
    if family.family == "binomial" and control.check_separation:
        cols = check_separation(X, names, y, w)
        if cols:
            msg = (f"complete or quasi-complete separation: the fixed effects "
                   f"({', '.join(cols)}) separate the 0 and 1 responses, so their estimates "
                   f"and standard errors are not reliable (they diverge)")
            messages.append(msg)
            warn(msg, SeparationWarning)
    if start_beta is not None and len(start_beta) != len(names):
        raise ModelError(f"start fixef has {len(start_beta)} values; the model has "
                         f"{len(names)} fixed effects ({', '.join(names)})")
    pirls = PIRLS(design, X, y, w, offset, family, control)
    lower = design.theta_lower()
    k = len(lower)
    disp = family.has_dispersion  # φ is a parameter: log φ ends each parameter vector
    n_phi = int(disp)

    # stage 1: θ (and log φ) only, β inside PIRLS, started from the family's μ (R's mustart)
    eta_start = family.link.link(family.mu_start(y, w))

    def stage1(p: np.ndarray) -> float:  # p = (θ / scale, and log φ)
        phi_ = float(np.exp(p[k])) if disp else 1.0
        value = pirls.laplace(pirls.modes(scale * p[:k], None, eta0=eta_start, phi=phi_))
        return value if np.isfinite(value) else 1e300

    scale = theta_scaling(design)  # the optimiser works on θ / scale, as in fit_lmer
    if disp:  # an identity or inverse link puts η, so θ, on the response's scale or its inverse
        scale = scale * predictor_scale(eta_start)
    theta0 = design.theta0() * scale if start is None else np.maximum(start, lower)
    start_phi = phi
    phi = 1.0
    if fixed is not None:
        theta0 = np.asarray(fixed[0], dtype=np.float64)
        phi = float(fixed[2]) if len(fixed) > 2 else 1.0
    elif disp:
        phi = float(start_phi) if start_phi is not None else \
            moment_dispersion(pirls, pirls.modes(theta0, None, eta0=eta_start))
    optimise = not fix_theta and fixed is None
    skip_stage1 = start is not None and start_beta is not None  # lme4: both given
    method1, method2 = control.stages()
    if not optimise or skip_stage1:
        theta, code, evals = theta0, 0, 0
    else:  # lme4's start and steps for θ alone; log φ's step 0.2
        step1 = np.append(np.maximum(0.1 * np.abs(theta0 / scale), 0.05), 0.2) \
            if disp else None
        par, code, evals = minimize(
            method1, stage1, np.append(theta0 / scale, [np.log(phi)] * n_phi),
            np.append(lower / scale, [-np.inf] * n_phi), control, step=step1)
        theta = scale * par[:k]
        phi = float(np.exp(par[k])) if disp else 1.0
    m1 = pirls.modes(theta, None, eta0=eta_start, phi=phi, keep=True)
    beta = m1.beta if start_beta is None or not optimise or nAGQ == 0 else \
        np.array(start_beta, dtype=np.float64)
    u_start = m1.u
    nodes = gauss_hermite(nAGQ) if nAGQ > 1 else None

    def criterion(m: Modes, th: np.ndarray) -> float:
        return pirls.agq(m, th, nodes) if nodes is not None else pirls.laplace(m)

    def unpack(par: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """(θ, β, φ) from stage 2's parameters (θ, β, log φ)."""
        return par[:k], par[k:len(par) - n_phi], float(np.exp(par[-1])) if disp else 1.0

    def stage2(par: np.ndarray) -> float:
        theta_, beta_, phi_ = unpack(par)
        return glmm_deviance(pirls, theta_, beta_, u_start, nodes, phi_)

    par_lower = np.concatenate([lower, np.full(len(beta) + n_phi, -np.inf)])
    if fixed is not None:
        beta = np.asarray(fixed[1], dtype=np.float64)
        final = pirls.modes(theta, beta, u0=u_start, phi=phi, keep=True)
        value = criterion(final, theta)
    elif nAGQ > 0 and optimise:
        se = np.sqrt(np.diag(np.linalg.inv(m1.solution.RX.T @ m1.solution.RX))) \
            if len(beta) else np.zeros(0)
        # β in units of its standard error for a dispersion family (whose links put β on
        # any scale); as lme4 otherwise
        units = beta_scale(m1, pirls, theta) if disp else np.ones(len(beta))
        full = np.concatenate([scale, units, np.ones(n_phi)])
        step = np.concatenate([np.maximum(0.1 * np.abs(theta / scale), 0.05),
                               0.2 * se / units, [0.1] * n_phi])
        start2 = np.concatenate([theta / scale, beta / units, [np.log(phi)] * n_phi])
        par, code, more = minimize(method2, lambda p: stage2(full * p), start2,
                                   par_lower / full, control, step=step)
        evals += more
        theta, beta, phi = unpack(full * par)
        final = pirls.modes(theta, beta, u0=u_start, phi=phi, keep=True)
        value = criterion(final, theta)
    else:
        final = m1
        value = pirls.laplace(m1)
    lam = pirls.lambda_map(theta)
    b = np.asarray(lam @ final.u).ravel()
    penalty = float(final.u @ final.u)
    sol = PLSSolution(theta.copy(), beta.copy(), final.u, penalty, final.logdet, 0.0,
                      m1.solution.RX if final is m1 else final_rx(pirls, final, theta), value,
                      np.inf, b, penalty)
    # the optimiser that ran last, as lme4's optinfo$optimizer
    last = method2 if nAGQ > 0 and optimise else method1
    optinfo = {"optimizer": last, "code": code, "evals": evals, "messages": messages,
               "warnings": [], "pirls_iterations": final.iterations, "control": control}
    fit = GlmerFit(design, False, X, names, dropped, y, offset, w_user, theta, sol, 1.0, b,
                   final.pls, optinfo, family=family, nAGQ=int(nAGQ), mu=final.mu,
                   eta=final.eta, prior_weights=w, criterion=value, phi=phi, pirls=pirls,
                   modes=final)
    check_optimizer_code(optinfo)
    singular = check_singular(optinfo, theta, lower, control)
    if nAGQ > 0 and control.calc_derivs and optimise:
        par = np.concatenate([theta, beta, [np.log(phi)] * n_phi])
        # steps in units of each parameter's scale where a dispersion family's identity or
        # inverse link puts β on the response's scale; lme4's δ = 1e-4 otherwise
        steps = np.concatenate([scale, beta_scale(final, pirls, theta), [1.0]]) \
            if disp else None
        grad, hess = derivatives(stage2, par, par_lower, scale=steps)
        if not singular and check_gradient(optinfo, grad, hess, control):
            # lme4's Hessian check in the coordinates the optimiser worked in (θ / scale,
            # β / units: lme4's own for ordinary models); a dispersion family's natural
            # units would flag the link's scale, which the optimiser never saw
            check_hessian(optinfo, hess * np.outer(full, full), control, k, len(beta))
        fit.vcov_beta = _hessian_vcov(hess, k, len(beta))
    if not final.converged:
        msg = (f"PIRLS did not converge in {control.max_pirls} iterations: the conditional "
               f"modes are not reliable")
        optinfo["warnings"].append(msg)
        warn(msg, ConvergenceWarning)
    return fit


def variance_parameters(design: ModelDesign, family: Family, theta: np.ndarray,
                        phi: float = 1.0) -> np.ndarray:
    """lme4's sd/cor per θ element (on θ's own scale: σ = 1), then σ = √φ for a family with
    a dispersion; binomial and Poisson GLMMs have no σ (confint's and bootMer's rows)."""
    v = design.sdcor(theta, 1.0)
    if family.has_dispersion:
        v[-1] = np.sqrt(phi)
        return v
    return v[:-1]


def beta_scale(m: Modes, pirls: PIRLS, theta: np.ndarray) -> np.ndarray:
    """Approximate standard errors of β from R_X at the modes (finite-difference steps)."""
    if not pirls.X.shape[1]:
        return np.zeros(0)
    RX = final_rx(pirls, m, theta)
    se = np.sqrt(np.diag(np.linalg.inv(RX.T @ RX)))
    return np.where(np.isfinite(se) & (se > 0), se, 1.0)


def predictor_scale(eta: np.ndarray, low: float = 0.1, high: float = 10.0) -> float:
    """The standard deviation of the starting linear predictor where it lies outside
    [low, high], else 1: θ is scaled by it (as theta_scaling scales columns), so a random
    effect starts at the spread of η = g(y), on whatever scale the link puts it."""
    sd = float(np.std(eta[np.isfinite(eta)]))
    return sd if np.isfinite(sd) and sd > 0 and not low <= sd <= high else 1.0


def moment_dispersion(pirls: PIRLS, m: Modes) -> float:
    """A starting φ: the Pearson statistic over its residual degrees of freedom, as glm's
    summary estimates the dispersion."""
    y, w, fam = pirls.y, pirls.w, pirls.family
    pearson = float(np.sum(w * (y - m.mu) ** 2 / fam.variance(m.mu)))
    value = pearson / max(len(y) - pirls.X.shape[1], 1)
    return value if np.isfinite(value) and value > 0 else 1.0


def glmm_deviance(pirls: PIRLS, theta: np.ndarray, beta: np.ndarray, u0: np.ndarray,
                  nodes: tuple[np.ndarray, np.ndarray] | None, phi: float = 1.0) -> float:
    """−2 log L at (θ, β) (and the dispersion φ), Laplace (nodes None) or adaptive
    Gauss–Hermite: lme4's stage-2 objective (1e300 where it is not finite, for BOBYQA).
    PIRLS always starts from u0, so the deviance is a deterministic, smooth function of the
    parameters, which the finite-difference Hessian (the standard errors) relies on."""
    m = pirls.modes(theta, beta, u0=u0, phi=phi)
    value = pirls.agq(m, theta, nodes) if nodes is not None else pirls.laplace(m)
    return value if np.isfinite(value) else 1e300


def final_rx(pirls: PIRLS, m: Modes, theta: np.ndarray) -> np.ndarray:
    """R_X of the weighted PLS at the modes (the fixed effects' unscaled precision factor),
    lme4's fallback for vcov when the Hessian is unusable."""
    _, sol = pirls._weighted_pls(theta, m.eta, m.mu, pirls.X, pirls.offset, m.phi)
    return sol.RX


def _hessian_vcov(hess: np.ndarray, k: int, p: int) -> np.ndarray | None:
    """The fixed effects' block of (H/2)⁻¹, H the Hessian of −2 log L in (θ, β) (and log φ)
    (lme4's vcov(use.hessian = TRUE)); None if H is not positive definite."""
    h = (hess + hess.T) / 4.0
    try:
        np.linalg.cholesky(h)
    except np.linalg.LinAlgError:
        return None
    V = np.linalg.inv(h)[k:k + p, k:k + p]
    return (V + V.T) / 2.0


def pearson_weights(fit: GlmerFit) -> np.ndarray:
    """Prior weights over the variance function: Pearson residuals are (y − μ)·√(w / V(μ))."""
    return fit.prior_weights / fit.family.variance(fit.mu)


__all__ = ["GlmerControl", "GlmerFit", "PIRLS", "SeparationWarning", "check_separation",
           "fit_glmer", "glmm_deviance", "variance_parameters"]
