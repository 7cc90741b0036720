"""The bounded optimisers the engines minimise their criteria with, under one call.

lme4 offers several optimisers (``lmerControl(optimizer=)``) and ``allFit()`` refits a model
with each, because agreement between algorithms of different kinds is the practical test of
a convergence warning. lmerpy's set, one of each kind: BOBYQA (quadratic models in a trust
region; the default, as lme4's ``nloptwrap``), Nelder–Mead (a simplex) and Subplex (simplices
on subspaces), all three NLopt's and derivative free; Powell's method (conjugate directions,
SciPy); L-BFGS-B (quasi-Newton, SciPy, on central-difference gradients; the exact engine
passes exact ones where it has them). Each returns (x, code, evaluations) with NLopt's
codes: 1–4 converged, 5 the evaluation limit, negative a failure.
"""

from __future__ import annotations

from collections.abc import Callable

import nlopt
import numpy as np

from ..errors import ModelError

# the names lmerControl(optimizer=) and allFit() take, in allFit's order
OPTIMIZERS = ("bobyqa", "Nelder_Mead", "sbplx", "Powell", "lbfgsb")
_NLOPT = {"bobyqa": nlopt.LN_BOBYQA, "Nelder_Mead": nlopt.LN_NELDERMEAD,
          "sbplx": nlopt.LN_SBPLX}
CONVERGED, MAXEVAL, FAILED = 4, 5, -1


def check_optimizer(name: str, also: tuple[str, ...] = ()) -> None:
    """Refuse an optimiser name that is not one of lmerpy's, listing them."""
    if name not in OPTIMIZERS + also:
        raise ModelError(f"unknown optimizer {name!r} (use one of "
                         f"{', '.join(repr(o) for o in also + OPTIMIZERS)})")


def minimize(method: str, objective: Callable[[np.ndarray], float], x0: np.ndarray,
             lower: np.ndarray, control, step: np.ndarray | None = None,
             upper: np.ndarray | None = None) -> tuple[np.ndarray, int, int]:
    """Minimise ``objective`` over lower ≤ x ≤ upper from x0 by ``method``; ``control``
    holds xtol_abs, ftol_abs, maxeval and verbose (LmerControl); ``step`` is the first step
    per parameter where the method takes one (NLopt's default, or Powell's unit directions,
    if None)."""
    check_optimizer(method)
    objective = _reporting(objective, int(control.verbose))
    k = len(x0)
    lower = np.asarray(lower, dtype=np.float64)
    upper = np.full(k, np.inf) if upper is None else np.asarray(upper, dtype=np.float64)
    start = np.minimum(np.maximum(np.asarray(x0, dtype=np.float64), lower), upper)
    if method in _NLOPT:
        if k == 1 and method == "bobyqa":  # NLopt's BOBYQA needs 2 parameters
            return _brent(objective, float(start[0]), float(lower[0]), control,
                          float(upper[0]))
        return _nlopt(_NLOPT[method], objective, start, lower, upper, control, step)
    return _scipy(method, objective, start, lower, upper, control, step)


def bobyqa(objective, theta0: np.ndarray, lower: np.ndarray, control,
           step: np.ndarray | None = None, upper: np.ndarray | None = None):
    """BOBYQA (a bracketed Brent search for one parameter): lme4's default optimiser."""
    return minimize("bobyqa", objective, theta0, lower, control, step, upper)


def _nlopt(algorithm, objective, start, lower, upper, control, step):
    opt = nlopt.opt(algorithm, len(start))
    opt.set_lower_bounds(np.where(np.isfinite(lower), lower, -np.inf))
    opt.set_upper_bounds(upper)
    opt.set_min_objective(lambda x, grad: objective(np.asarray(x)))
    opt.set_xtol_abs(float(control.xtol_abs))
    opt.set_ftol_abs(float(control.ftol_abs))
    opt.set_maxeval(int(control.maxeval))
    if step is not None:
        opt.set_initial_step(step)
    try:
        x = opt.optimize(start)
        code = opt.last_optimize_result()
    except nlopt.RoundoffLimited:
        x, code = opt.last_optimum_x() if hasattr(opt, "last_optimum_x") else start, -4
    return np.asarray(x, dtype=np.float64), int(code), int(opt.get_numevals())


def _scipy(method, objective, start, lower, upper, control, step):
    from scipy.optimize import minimize as scipy_minimize

    count = [0]

    def f(x):
        count[0] += 1
        return float(objective(np.asarray(x, dtype=np.float64)))

    bounds = [(lo if np.isfinite(lo) else None, hi if np.isfinite(hi) else None)
              for lo, hi in zip(lower, upper)]
    if method == "Powell":
        # Powell's ftol is relative: 1e-10 of a deviance of 10² to 10⁵ is about the
        # absolute ftol_abs (1e-8) the NLopt methods stop on
        options = {"xtol": float(control.xtol_abs), "ftol": 1e-10,
                   "maxfev": int(control.maxeval)}
        if step is not None:
            options["direc"] = np.diag(np.asarray(step, dtype=np.float64))
        res = scipy_minimize(f, start, method="Powell", bounds=bounds, options=options)
    else:  # L-BFGS-B on central differences (as optimx's L-BFGS-B in lme4's allFit)
        res = scipy_minimize(f, start, method="L-BFGS-B", jac="3-point", bounds=bounds,
                             options={"ftol": 1e-13, "gtol": 1e-6,
                                      "maxfun": int(control.maxeval)})
    code = MAXEVAL if count[0] >= control.maxeval else CONVERGED if res.success else FAILED
    return np.asarray(res.x, dtype=np.float64), code, count[0]


def _brent(objective, x0: float, lower: float, control, upper: float = np.inf):
    """Minimise over one parameter in [lower, upper]: grow an upper end until the function
    rises, then Brent's bounded method (lme4 uses a golden-section/Brent search for one θ as
    well)."""
    from scipy.optimize import minimize_scalar

    count = [0]

    def f(x: float) -> float:
        count[0] += 1
        return float(objective(np.array([x])))

    lo = lower if np.isfinite(lower) else x0 - 10.0
    hi = min(max(4.0 * abs(x0), 4.0) + lo, upper)
    while hi < min(1e12, upper) and f(hi) < f(lo + (hi - lo) / 2.0):
        hi = min(lo + (hi - lo) * 4.0, upper)
    res = minimize_scalar(f, bounds=(lo, hi), method="bounded",
                          options={"xatol": control.xtol_abs, "maxiter": 500})
    x = float(res.x)
    if f(lo) <= f(x):  # the boundary itself (a singular fit)
        x = lo
    return np.array([x]), (CONVERGED if res.success else FAILED), count[0]


def report(level: int, k: int, value: float, x: np.ndarray) -> None:
    """Evaluation ``k`` of an optimiser's objective, printed as lme4's verbose fits print it
    (nloptr's print_level): nothing at level 0, the parameters too from level 3."""
    if not level:
        return
    lines = [f"iteration: {k}"]
    if level > 2:
        lines.append("\tx = ( " + ", ".join(f"{v:.6f}" for v in np.ravel(x)) + " )")
    print("\n".join(lines + [f"\tf(x) = {value:.6f}"]), flush=True)


def _reporting(objective, level: int):
    """``objective``, reporting each evaluation at verbosity ``level``."""
    if not level:
        return objective
    count = [0]

    def reported(x):
        value = objective(x)
        count[0] += 1
        report(level, count[0], value, x)
        return value

    return reported


__all__ = ["OPTIMIZERS", "bobyqa", "check_optimizer", "minimize", "report"]
