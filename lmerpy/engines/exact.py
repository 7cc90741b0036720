"""The exact engine: Gaussian linear mixed models fitted as lme4 does.

θ is found by minimising the profiled deviance (or REML criterion) of ``pls.PLS`` with
BOBYQA under bounds (diagonal elements of Λ ≥ 0), as lme4's default ``nloptwrap``; then
lme4's convergence checks run on finite-difference derivatives at the optimum.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..design.model import ModelDesign
from ..errors import DataError, ModelError, warn
from .optimizers import bobyqa, check_optimizer, minimize, report
from .options import is_flag, require_flag, require_number, require_whole
from .pls import PLS, CrossProducts, PLSSolution


class ConvergenceWarning(UserWarning):
    """The optimiser stopped without meeting lme4's convergence criteria."""


class ScaleWarning(UserWarning):
    """Fixed-effect columns on very different scales (lme4's check.scaleX)."""


class SingularFitWarning(UserWarning):
    """A variance component or correlation is on the boundary (lme4's isSingular)."""


class RankDeficiencyWarning(UserWarning):
    """Aliased fixed-effect columns were dropped, as lme4 does."""


@dataclass
class LmerControl:
    """Optimiser and check settings, named after lme4's lmerControl()."""

    xtol_abs: float = 1e-8
    ftol_abs: float = 1e-8
    maxeval: int = 100_000
    check_conv_grad_tol: float = 2e-3
    check_conv_hess_tol: float = 1e-6   # lme4's check.conv.hess tol (checkHess)
    boundary_tol: float = 1e-5
    singular_tol: float = 1e-4
    calc_derivs: bool = True
    rank_tol: float = 1e-7
    # lme4's check.scaleX: "warning" when the non-binary columns of X have standard
    # deviations beyond 1000 (or below 1/1000), or 1000 times apart; "ignore"; "stop"
    check_scaleX: str = "warning"
    # "bobyqa" (lme4's default, derivative free), another of optimizers.OPTIMIZERS
    # ("lbfgsb" takes exact gradients where every random term is scalar, central
    # differences elsewhere), or "auto": L-BFGS-B for large scalar-term models, where each
    # evaluation is expensive and the gradient costs about two of them, else BOBYQA.
    optimizer: str = "auto"
    large_model: int = 20_000  # "auto" uses L-BFGS-B from this many rows or random effects
    # lmer(verbose=): 1 or True prints each evaluation of the objective as lme4's default
    # optimiser does ("iteration: k", "f(x) = ..."), 3 the parameters x too
    verbose: int = 0

    def check(self) -> None:
        """Refuse a setting the optimiser or the checks cannot use, naming the option."""
        for name, positive in (("xtol_abs", False), ("ftol_abs", False),
                               ("boundary_tol", False), ("singular_tol", False),
                               ("check_conv_grad_tol", True), ("check_conv_hess_tol", True),
                               ("rank_tol", True)):
            require_number(name, getattr(self, name), positive)
        for name in ("maxeval", "large_model"):
            require_whole(name, getattr(self, name), 1)
        if not is_flag(self.verbose):
            require_whole("verbose", self.verbose, 0, also="True/False")
        require_flag("calc_derivs", self.calc_derivs)
        if self.check_scaleX not in ("warning", "ignore", "stop"):
            raise ModelError(f"check_scaleX must be 'warning', 'ignore' or 'stop', not "
                             f"{self.check_scaleX!r}")
        self._check_optimizer()

    def _check_optimizer(self) -> None:
        check_optimizer(self.optimizer, also=("auto",))


@dataclass
class ExactFit:
    """What the exact engine returns: estimates plus what the result object needs."""

    design: ModelDesign
    REML: bool
    X: np.ndarray
    fixef_names: list[str]
    dropped: list[str]
    y: np.ndarray
    offset: np.ndarray
    weights: np.ndarray | None
    theta: np.ndarray
    solution: PLSSolution
    sigma: float
    b: np.ndarray                      # all random effects, Λ û, in Z's column order
    pls: PLS = field(repr=False)
    optinfo: dict = field(default_factory=dict)

    @property
    def objective(self) -> float:
        return self.solution.reml if self.REML else self.solution.ml

    def beta_vcov(self) -> np.ndarray:
        """The fixed effects' covariance σ² (R_X'R_X)⁻¹ (lme4's vcov)."""
        inv = np.linalg.inv(self.solution.RX)
        return self.sigma**2 * inv @ inv.T


def drop_aliased(X: np.ndarray, names: list[str], tol: float = 1e-7
                 ) -> tuple[np.ndarray, list[str], list[str]]:
    """Keep the columns of X that are not linear combinations of earlier ones.

    R's ``qr()`` (LINPACK dqrdc2) keeps columns in order and moves a column whose remaining
    norm is below ``tol`` times its original norm to the end; lme4 then drops those.
    """
    keep: list[int] = []
    Q = np.zeros((X.shape[0], 0))
    for j in range(X.shape[1]):
        col = X[:, j]
        norm = np.linalg.norm(col)
        resid = col - Q @ (Q.T @ col)
        resid = resid - Q @ (Q.T @ resid)  # re-orthogonalise for accuracy
        rnorm = np.linalg.norm(resid)
        if norm == 0 or rnorm <= tol * norm:
            continue
        keep.append(j)
        Q = np.column_stack([Q, resid / rnorm])
    dropped = [names[j] for j in range(X.shape[1]) if j not in keep]
    return X[:, keep], [names[j] for j in keep], dropped


def _check_design(design: ModelDesign, n: int) -> None:
    if design.y.ndim != 1:
        raise ModelError("lmer() needs a single numeric response; use glmer() for cbind()")
    y = np.asarray(design.y, dtype=np.float64)
    if n > 1 and np.ptp(y) == 0:
        raise DataError(f"the response {design.formula.response} is constant (every value is "
                        f"{y[0]:g}): there is no variation to model")
    check_random_terms(design, n)


def check_random_terms(design: ModelDesign, n: int, glmm: bool = False) -> None:
    """lme4's checks on the grouping factors (checkNlevels, check.nobs.vs.nlev,
    check.nobs.vs.nRE); a GLMM skips the last two, as glmerControl's defaults do, so an
    observation-level effect ``(1 | obs)`` models overdispersion."""
    if not design.random:
        raise ModelError("no random-effects terms in the formula: add e.g. (1 | group)")
    for r in design.random:
        if r.encoder is None:
            if r.q < 2:
                raise ModelError(f"{r.group} has a single distinct location ({r.levels[0]}): "
                                 f"a spatial effect needs at least 2 locations")
            continue
        if r.q < 2:
            raise ModelError(f"grouping factor '{r.group}' must have more than 1 sampled "
                             f"level (it has {r.q})")
        if glmm:
            continue
        if r.q >= n:
            raise ModelError(f"number of levels of each grouping factor must be < number of "
                             f"observations ('{r.group}' has {r.q} levels, n = {n})")
        if r.q * r.p >= n:
            raise ModelError(f"number of observations (= {n}) <= number of random effects "
                             f"(= {r.q * r.p}) for term {r.term}; the random-effects "
                             f"parameters and the residual variance are probably "
                             f"unidentifiable")


def fixed_effects_matrix(design: ModelDesign, control: LmerControl, messages: list[str]
                         ) -> tuple[np.ndarray, list[str], list[str]]:
    """X without aliased columns; lme4's rank-deficiency message is recorded and warned,
    and its check of the columns' scales made first."""
    check_scale(design.X, design.X_names, control.check_scaleX)
    X, names, dropped = drop_aliased(design.X, design.X_names, control.rank_tol)
    if dropped:
        k = len(dropped)
        msg = (f"fixed-effect model matrix is rank deficient so dropping {k} column"
               f"{'s' if k > 1 else ''} / coefficient{'s' if k > 1 else ''}")
        messages.append(msg)
        warn(f"{msg} ({', '.join(dropped)})", RankDeficiencyWarning)
    return X, names, dropped


def check_scale(X: np.ndarray, names: list[str], action: str, tol: float = 1000.0) -> None:
    """lme4's checkScaleX: the columns that are not 0/1 indicators (the intercept, a
    factor's dummies) should have standard deviations within [1/tol, tol] and within a
    factor tol of each other; else the optimiser and its convergence checks work on badly
    scaled parameters (the Hessian's eigenvalues spread over many orders)."""
    if action == "ignore" or X.shape[0] < 2:
        return
    cont = [j for j in range(X.shape[1]) if not np.isin(X[:, j], (0.0, 1.0)).all()]
    if not cont:
        return
    sd = X[:, cont].std(axis=0, ddof=1)
    with np.errstate(divide="ignore"):
        logsd = np.log(sd)
    bound = np.log(tol)
    if not (np.abs(logsd).max() > bound or logsd.max() - logsd.min() > bound):
        return
    hi, lo = int(np.argmax(sd)), int(np.argmin(sd))
    detail = f"sd of {names[cont[hi]]} {sd[hi]:.3g}" if len(cont) == 1 else (
        f"sd from {sd[lo]:.3g} ({names[cont[lo]]}) to {sd[hi]:.3g} ({names[cont[hi]]})")
    if action == "stop":
        raise ModelError(f"Some predictor variables are on very different scales ({detail}): "
                         f"rescale them")
    warn(f"Some predictor variables are on very different scales: consider rescaling "
         f"({detail})", ScaleWarning)


def check_weights(weights, n: int) -> np.ndarray | None:
    if weights is None:
        return None
    w = np.asarray(weights, dtype=np.float64).ravel()
    if w.shape[0] != n:
        raise DataError(f"weights has length {w.shape[0]}, but the model uses {n} rows")
    if not np.isfinite(w).all():
        raise DataError("weights must be finite")
    if (w < 0).any():
        rows = [int(i) for i in np.flatnonzero(w < 0)[:5]]
        raise DataError(f"weights must be non-negative (negative at rows {rows})")
    if n and not (w > 0).any():
        raise DataError("weights are all zero: no row carries information")
    return w


def theta_scaling(design: ModelDesign, low: float = 0.1, high: float = 10.0) -> np.ndarray:
    """Per element of θ, the factor the optimiser works in: θ = s ⊙ φ.

    Scaling a random term's column x by c turns row i of Λ's template into c·row i, so
    optimising over φ is the same as fitting the model with that column rescaled, and the
    deviance is unchanged. Columns whose root mean square lies outside [low, high] (e.g. a
    predictor measured around 1e-9) get c = 1/rms; others keep c = 1, so ordinary models
    follow lme4's optimisation path exactly.
    """
    out = []
    for r in design.random:
        k = r.cov.n_theta
        if not hasattr(r.cov, "template"):
            out.append(np.ones(k))
            continue
        rms = np.sqrt(np.mean(r.X**2, axis=0))
        c = np.where((rms > 0) & ((rms < low) | (rms > high)), 1.0 / np.where(rms > 0, rms, 1),
                     1.0)
        rows = []
        for j in range(k):  # which row of the template each θ element fills
            e = np.zeros(k)
            e[j] = 1.0
            rows.append(int(np.argmax(np.abs(r.cov.template(e)).sum(axis=1))))
        out.append(c[rows])
    return np.concatenate(out) if out else np.zeros(0)


def fit_lmer(design: ModelDesign, REML: bool = True, weights=None,
             control: LmerControl | None = None, start: np.ndarray | None = None,
             fixed_theta: np.ndarray | None = None) -> ExactFit:
    """Fit a linear mixed model by (RE)ML, exactly as lme4's lmer() does.

    ``fixed_theta`` skips the optimisation: the fit at that θ (a loaded model).
    """
    control = control or LmerControl()
    control.check()
    n = design.n
    _check_design(design, n)
    w = check_weights(weights, n)
    messages: list[str] = []
    X, names, dropped = fixed_effects_matrix(design, control, messages)
    if n <= X.shape[1] and REML:
        raise ModelError(f"REML needs more observations (n = {n}) than fixed effects "
                         f"(p = {X.shape[1]})")
    offset = design.offset if design.offset is not None else np.zeros(n)
    y = design.y.astype(np.float64)
    Z = design.Z
    cp = CrossProducts.build(X, Z, y - offset, w)
    pls = PLS(design.random, cp, design.split_theta)

    lower = design.theta_lower()
    scale = theta_scaling(design)
    # the optimiser works on φ = θ / s (see theta_scaling); lme4's start is Λ = I in φ
    phi0 = design.theta0() if start is None else np.asarray(start, dtype=np.float64) / scale

    def objective(theta: np.ndarray) -> float:
        value = pls.deviance(theta, REML)
        return value if np.isfinite(value) else 1e300

    method = choose_optimizer(control, pls, n)
    if fixed_theta is not None:
        theta, code, evals = np.asarray(fixed_theta, dtype=np.float64), 0, 0
    else:
        theta, code, evals = optimize_theta(pls, REML, phi0, lower, scale, control, method)
    solution = pls.solve(theta, spherical=False)
    sigma = pls.sigma(solution, REML)
    b = solution.b
    optinfo = {"optimizer": method, "code": code, "evals": evals, "messages": messages,
               "warnings": [], "control": control}
    fit = ExactFit(design, REML, X, names, dropped, y, offset, w, theta, solution, sigma, b,
                   pls, optinfo)
    if fixed_theta is None:
        _check_convergence(fit, objective, lower, control, scale)
    return fit


def optimize_theta(pls: PLS, REML: bool, phi0: np.ndarray, lower: np.ndarray,
                   scale: np.ndarray, control: LmerControl, method: str,
                   step: np.ndarray | None = None) -> tuple[np.ndarray, int, int]:
    """θ minimising the profiled criterion, from φ0 = θ0 / scale (see theta_scaling); returns
    θ, the optimiser's code and its number of evaluations. ``step``: BOBYQA's first step
    in φ (nlopt's default if None)."""
    def objective(phi: np.ndarray) -> float:
        value = pls.deviance(scale * phi, REML)
        return value if np.isfinite(value) else 1e300

    if method == "lbfgsb" and pls.has_gradient:
        phi, code, evals = _lbfgsb(pls, REML, phi0, lower / scale, control, scale)
        for _ in range(MAX_BOUNDARY_RESTARTS):
            off, probes = leave_false_boundary(objective, phi, lower / scale)
            evals += probes
            if off is None:
                break
            phi, code, more = _lbfgsb(pls, REML, off, lower / scale, control, scale)
            evals += more
        if code < 0:  # line search trouble: let BOBYQA finish from there
            phi, code, more = bobyqa(objective, phi, lower / scale, control, step)
            evals += more
    else:
        phi, code, evals = minimize(method, objective, phi0, lower / scale, control, step)
    return scale * phi, code, evals


# Where L-BFGS-B stops on a zero lower bound, the deviance is probed this far off it (in φ)
# before the fit is called singular, and L-BFGS-B restarted from a lower point, at most
# MAX_BOUNDARY_RESTARTS times.
BOUNDARY_PROBES = (1e-3, 1e-2, 0.1, 0.3, 1.0, 3.0)
MAX_BOUNDARY_RESTARTS = 5


def leave_false_boundary(objective, phi: np.ndarray, lower: np.ndarray
                         ) -> tuple[np.ndarray | None, int]:
    """A point of lower deviance than ``phi`` with one of the components that sit on a zero
    lower bound moved off it (None where there is none: the bound is a minimum along each),
    and the number of evaluations spent.

    The profiled deviance depends on a scalar term's θ only through θ² (Λ enters as ΛΛ'),
    so its gradient on the bound θ = 0 is zero whether the bound is a minimum or a maximum.
    L-BFGS-B's first step from θ = 1 can overshoot onto the bound (its projected step
    follows a large gradient) and then stops there: with σ²b/σ² = 0.1 and eight rows a
    level it returned θ = 0 for the ML estimate 0.30 (tests/engines/test_gradient.py)."""
    at = np.flatnonzero((lower == 0) & (phi <= 0))
    if not len(at):
        return None, 0
    base = objective(phi)
    best, point, evals = base, None, 1
    for j in at:
        for delta in BOUNDARY_PROBES:
            trial = phi.copy()
            trial[j] = delta
            value = objective(trial)
            evals += 1
            if value < best - 1e-10 * max(1.0, abs(base)):
                best, point = value, trial
    return point, evals


def choose_optimizer(control: LmerControl, pls: PLS, n: int) -> str:
    """The optimiser ``control`` names; for "auto", L-BFGS-B on exact gradients for large
    models of scalar terms, else BOBYQA."""
    choice = control.optimizer
    if choice == "auto":
        size = max(n, pls.cp.ZtZ.shape[0])
        return "lbfgsb" if pls.has_gradient and size >= control.large_model else "bobyqa"
    return choice


def _lbfgsb(pls: PLS, REML: bool, phi0: np.ndarray, lower: np.ndarray,
            control: LmerControl, scale: np.ndarray):
    """L-BFGS-B over φ = θ / scale with the exact gradient (chain rule: ∂/∂φ = s ∂/∂θ)."""
    from scipy.optimize import minimize

    count = [0]

    def fg(phi):
        count[0] += 1
        value, grad = pls.deviance_and_gradient(scale * np.asarray(phi), REML)
        report(control.verbose, count[0], value, phi)
        if not np.isfinite(value):
            return 1e300, np.zeros_like(grad)
        return value, grad * scale

    bounds = [(lo if np.isfinite(lo) else None, None) for lo in lower]
    res = minimize(fg, np.maximum(phi0, lower), jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"ftol": 1e-13, "gtol": 1e-6, "maxiter": control.maxeval})
    pls.last_gradient = (scale * np.asarray(res.x, dtype=np.float64), np.asarray(res.jac) / scale)
    return np.asarray(res.x, dtype=np.float64), (4 if res.success else -1), count[0]


def derivatives(fn, x: np.ndarray, lower: np.ndarray, delta: float = 1e-4,
                scale: np.ndarray | None = None):
    """Gradient and Hessian by central differences (lme4's deriv12), one-sided at bounds;
    the step is δ, or δ × ``scale`` per parameter (for parameters on very different
    scales, such as an identity link's coefficients)."""
    k = len(x)
    f0 = fn(x)
    grad = np.zeros(k)
    hess = np.zeros((k, k))
    step = np.full(k, delta) if scale is None else delta * np.asarray(scale, dtype=float)
    fp, fm = np.zeros(k), np.zeros(k)
    for i in range(k):
        e = np.zeros(k)
        e[i] = step[i]
        up = fn(x + e)
        if x[i] - step[i] < lower[i]:  # forward differences at the boundary
            up2 = fn(x + 2 * e)
            grad[i] = (-3 * f0 + 4 * up - up2) / (2 * step[i])
            hess[i, i] = (f0 - 2 * up + up2) / step[i] ** 2
            fp[i], fm[i] = up, np.nan
        else:
            down = fn(x - e)
            grad[i] = (up - down) / (2 * step[i])
            hess[i, i] = (up - 2 * f0 + down) / step[i] ** 2
            fp[i], fm[i] = up, down
    for i in range(k):
        for j in range(i):
            ei, ej = np.zeros(k), np.zeros(k)
            ei[i], ej[j] = step[i], step[j]
            if np.isnan(fm[i]) or np.isnan(fm[j]):
                value = (fn(x + ei + ej) - fp[i] - fp[j] + f0) / (step[i] * step[j])
            else:
                value = (fn(x + ei + ej) - fn(x + ei - ej) - fn(x - ei + ej)
                         + fn(x - ei - ej)) / (4 * step[i] * step[j])
            hess[i, j] = hess[j, i] = value
    return grad, hess


def _gradient_derivatives(pls: PLS, REML: bool, theta: np.ndarray, scale: np.ndarray,
                          delta: float = 1e-5):
    """Exact gradient and a Hessian from forward differences of the exact gradient, both
    in φ = θ / s (chain rule: ∂/∂φ = s ∂/∂θ; the step is δ in φ)."""
    last = getattr(pls, "last_gradient", None)
    if last is not None and np.array_equal(last[0], theta):
        grad = last[1]  # the optimiser's final evaluation
    else:
        _, grad = pls.deviance_and_gradient(theta, REML)
    k = len(theta)
    hess = np.zeros((k, k))
    for i in range(k):
        step = np.zeros(k)
        step[i] = delta * scale[i]
        hess[:, i] = (pls.deviance_and_gradient(theta + step, REML)[1] - grad) * scale / delta
    return grad * scale, (hess + hess.T) / 2.0


def is_singular(theta: np.ndarray, lower: np.ndarray, tol: float = 1e-4) -> bool:
    """lme4's isSingular: a θ with lower bound 0 (a diagonal of Λ) is below ``tol``."""
    at_zero = lower == 0
    return bool(np.any(np.asarray(theta)[at_zero] < tol))


def _check_convergence(fit: ExactFit, objective, lower: np.ndarray,
                       control: LmerControl, scale: np.ndarray) -> None:
    """lme4's checks after the optimiser. The derivatives are taken in the optimiser's
    φ = θ / s (theta_scaling): the problem with rescaled columns, whose θ is of order one,
    so a fixed difference step means the same everywhere (s = 1 for ordinary models, which
    keeps lme4's check exactly)."""
    info = fit.optinfo
    check_optimizer_code(info)
    if check_singular(info, fit.theta, lower, control) or not control.calc_derivs:
        return
    if info["optimizer"] == "lbfgsb" and fit.pls.has_gradient:
        grad, hess = _gradient_derivatives(fit.pls, fit.REML, fit.theta, scale)
    else:
        grad, hess = derivatives(lambda p: objective(scale * p), fit.theta / scale,
                                 lower / scale)
    if check_gradient(info, grad, hess, control):
        check_hessian(info, hess, control, len(fit.theta), 0)


def check_optimizer_code(info: dict) -> None:
    """An optimiser that stopped on its evaluation limit or failed is reported, as lme4."""
    if info["code"] < 0 or info["code"] == 5:
        msg = (f"optimizer ({info['optimizer']}) stopped with code {info['code']}: did not "
               f"converge")
        info["warnings"].append(msg)
        warn(msg, ConvergenceWarning)


def check_singular(info: dict, theta: np.ndarray, lower: np.ndarray,
                   control: LmerControl) -> bool:
    """lme4's boundary (singular) fit message; True when the fit is singular."""
    if not is_singular(theta, lower, control.singular_tol):
        return False
    msg = "boundary (singular) fit: see help('isSingular')"
    info["messages"].append(msg)
    warn(msg, SingularFitWarning)
    return True


def check_gradient(info: dict, grad: np.ndarray, hess: np.ndarray,
                   control: LmerControl) -> bool:
    """lme4's checkConv: the gradient scaled by the Hessian's Cholesky factor must be small.
    False where the Hessian has no Cholesky factor (reported here, as degenerate)."""
    info["gradient"], info["hessian"] = grad, hess
    try:
        chol = np.linalg.cholesky(hess)
        scgrad = np.linalg.solve(chol, grad)  # lme4: solve(chol(H), g)
    except np.linalg.LinAlgError:
        eig = np.linalg.eigvalsh(hess)
        neg = int((eig < 0).sum())
        msg = (f"Model failed to converge: degenerate Hessian with {neg} negative "
               f"eigenvalue{'s' if neg != 1 else ''}") if neg else \
            "unable to evaluate scaled gradient"
        info["warnings"].append(msg)
        warn(msg, ConvergenceWarning)
        return False
    mingrad = np.minimum(np.abs(scgrad), np.abs(grad))
    worst = float(mingrad.max()) if len(mingrad) else 0.0
    if worst > control.check_conv_grad_tol:
        msg = (f"Model failed to converge with max|grad| = {worst:.6g} (tol = "
               f"{control.check_conv_grad_tol:g}, component {int(mingrad.argmax()) + 1})")
        info["warnings"].append(msg)
        warn(msg, ConvergenceWarning)
    return True


def check_hessian(info: dict, hess: np.ndarray, control: LmerControl, k: int, p: int
                  ) -> None:
    """lme4's check.conv.hess (checkHess, tol 1e-6): a GLMM's fixed-effect block (rows k to
    k + p of a Hessian in (θ, β, ...)) first, then the whole Hessian. It runs after
    ``check_gradient`` has found the Hessian's Cholesky factor (a Hessian with negative
    eigenvalues is reported there), so what is left is a (numerically) singular or badly
    conditioned one. Each distinct message is warned once, as lme4 lists it."""
    tol = control.check_conv_hess_tol
    messages = _hessian_messages(hess[k:k + p, k:k + p], tol, "fixed-effect ") if p else []
    messages += _hessian_messages(hess, tol, "")
    for msg in dict.fromkeys(messages):
        info["warnings"].append(msg)
        warn(msg, ConvergenceWarning)


def _hessian_messages(H: np.ndarray, tol: float, kind: str) -> list[str]:
    if not np.all(np.isfinite(H)):
        return ["Problem with Hessian check (infinite or missing values?)"]
    ev = np.linalg.eigvalsh(H)
    try:
        np.linalg.cholesky(H)
        definite = True
    except np.linalg.LinAlgError:
        definite = False
    if (np.abs(ev) < tol).any() or not definite:
        return [f"{kind}Hessian is numerically singular: parameters are not uniquely "
                f"determined"]
    out = []
    if ev.max() * tol > 1:
        out.append("Model is nearly unidentifiable: very large eigenvalue\n - Rescale variables?")
    if ev.min() / ev.max() < tol:
        out.append("Model is nearly unidentifiable: large eigenvalue ratio\n - Rescale "
                   "variables?")
    return out


def conditional_variances(fit: ExactFit) -> list[np.ndarray]:
    """Per term, the (q, p, p) conditional covariances σ² Λ A⁻¹ Λ' of the random effects."""
    pls = fit.pls
    pls.solve(fit.theta)  # the factor may hold another θ (convergence checks evaluate nearby)
    lam = pls.Lambda(fit.theta).tocsr()
    out = []
    start = 0
    for r in fit.design.random:
        width = r.q * r.p
        cols = lam[start:start + width, :]  # b_t = Λ_t u: this term's rows of Λ
        # (Λ A⁻¹ Λ')_term = Λ_t A⁻¹ Λ_t'; compute A⁻¹ Λ_t' in chunks of levels
        blocks = np.zeros((r.q, r.p, r.p))
        chunk = max(1, 4096 // max(r.p, 1)) * r.p
        for a in range(0, width, chunk):
            rows = cols[a:a + chunk]
            sol = pls.factor.solve(rows.T.toarray())
            full = np.asarray(rows @ sol)
            m = full.shape[0] // r.p
            for lvl in range(m):
                sl = slice(lvl * r.p, (lvl + 1) * r.p)
                blocks[a // r.p + lvl] = full[sl, sl]
        out.append(fit.sigma**2 * blocks)
        start += width
    return out


__all__ = ["ConvergenceWarning", "ExactFit", "LmerControl", "RankDeficiencyWarning",
           "ScaleWarning", "SingularFitWarning", "conditional_variances", "drop_aliased",
           "fit_lmer", "is_singular"]


def fixed_only_loglik(X: np.ndarray, y: np.ndarray, offset: np.ndarray | None,
                      weights: np.ndarray | None, REML: bool) -> float:
    """The log-likelihood of the linear model without random effects (R's logLik.lm, REML
    or ML, which leaves out rows of weight 0): what a mixed model's last random term is
    tested against (lmerTest's ranova)."""
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=np.float64)
    if weights is not None and not np.all(w > 0):
        keep = w > 0
        X, y, w = X[keep], y[keep], w[keep]
        offset = None if offset is None else np.asarray(offset)[keep]
    sw = np.sqrt(w)
    r = y - (0.0 if offset is None else offset)
    Q, R = np.linalg.qr(X * sw[:, None])
    resid = sw * r - Q @ (Q.T @ (sw * r))
    n = len(y) - (X.shape[1] if REML else 0)
    value = 0.5 * (np.log(w).sum() - n * (np.log(2 * np.pi) + 1 - np.log(n)
                                          + np.log(resid @ resid)))
    if REML:
        value -= np.log(np.abs(np.diag(R))).sum()
    return float(value)
