"""The user-facing functions: ``lmer()`` (formula -> design -> engine -> result)."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd

from .caller import caller_name
from .design import design as make_design
from .engines.exact import LmerControl, fit_lmer
from .engines.family import Family, Link, make_family, negative_binomial, theta_ml
from .engines.glmm import GlmerControl, fit_glmer
from .engines.negbin import optimise_size
from .engines.options import require_flag
from .engines.torch_control import TorchControl
from .engines.torch_engine import fit_torch
from .errors import DataError, FormulaError, ModelError, warn
from .formula import Formula, parse
from .results.glmer import GlmerResult
from .results.model import LmerResult


def lmer(formula: str | Formula, data: pd.DataFrame, REML: bool = True,
         weights: str | np.ndarray | pd.Series | None = None,
         control: LmerControl | TorchControl | None = None, na_action: str = "omit",
         engine: str = "auto", data_name: str | None = None,
         modules: dict | None = None, start=None, contrasts: dict | None = None,
         **training) -> LmerResult:
    """Fit a linear mixed model, as lme4's ``lmer()``.

    ``weights`` is a column name or an array of prior weights. ``engine="exact"`` (the
    default for formulas without nn() terms) agrees with lme4; ``engine="torch"`` (the default
    with nn() terms) trains by mini-batch NLL (LMMNN). Training options go in a TorchControl
    or as keywords: ``lr``, ``batch_size``, ``epochs``, ``patience``, ``validation``,
    ``batching`` ("sorted", "random", "group"), ``backfit``, ``batch_growth``,
    ``lr_decay`` and ``phase_patience`` (the second phase), ``refine``, ``device``,
    ``seed``, ``verbose``;
    ``modules`` maps nn(..., module="name") to your own torch modules. The exact engine
    takes ``verbose`` as lme4 does: 1 (or True) prints each evaluation of the criterion,
    3 the parameters too; and ``start``, θ to start the optimiser from (an array, a Series
    such as ``m.getME("theta")``, or ``{"theta": ...}``), as lme4's ``start=``.
    ``contrasts`` codes the fixed effects' factors, as R's ``contrasts = list(A =
    "contr.sum")``: ``{"A": "contr.sum"}`` (also contr.treatment, contr.helmert, contr.poly).
    """
    formula = _formula(formula)
    require_flag("REML", REML)
    REML = bool(REML)
    use_torch, control = _choose_engine(formula, engine, control, training, LmerControl)
    data_name = data_name or caller_name(data) or "data"
    d, w, weights_name, data = _design_with_weights(formula, data, weights, na_action,
                                                    contrasts)
    theta0, _ = starting_values(start, d, use_torch, glmm=False)
    if use_torch:
        fit = fit_torch(d, control, modules, weights=w)
    else:
        fit = fit_lmer(d, REML=REML, weights=w, control=control, start=theta0)
    return LmerResult(fit, data_name, weights_name, data)


def starting_values(start, design, use_torch: bool, glmm: bool
                    ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """lme4's ``start=``: (θ, β) from a vector (θ) or a dict with "theta" and (glmer)
    "fixef", checked against the model: θ's length and bounds, β's length is checked by
    the engine (after aliased columns are dropped)."""
    if start is None:
        return None, None
    if use_torch:
        raise ModelError("start= sets where the exact engine's optimiser starts; the torch "
                         "engine trains from its own linear start (use the exact engine)")
    allowed = ("theta", "fixef") if glmm else ("theta",)
    if isinstance(start, dict):
        unknown = [k for k in start if k not in allowed]
        if unknown:
            raise ModelError(f"start has unknown element{'s' if len(unknown) > 1 else ''} "
                             f"{', '.join(map(repr, unknown))} (use "
                             f"{' and '.join(map(repr, allowed))})")
        theta, beta = start.get("theta"), start.get("fixef")
    else:
        theta, beta = start, None
    names = design.theta_names()
    if theta is not None:
        theta = _numbers("start theta", theta)
        if len(theta) != len(names):
            raise ModelError(f"start theta has {len(theta)} values; this model's θ has "
                             f"{len(names)} ({', '.join(names)})")
        lower = design.theta_lower()
        low = np.flatnonzero(theta < lower)
        if len(low):
            raise ModelError(f"start theta: {names[low[0]]} = {theta[low[0]]:g} is below its "
                             f"lower bound 0 (a diagonal element of Λ)")
    if beta is not None:
        beta = _numbers("start fixef", beta)
    return theta, beta


def _numbers(what: str, values) -> np.ndarray:
    try:
        out = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise ModelError(f"{what} must be numbers, not {values!r}") from None
    if not np.isfinite(out).all():
        raise ModelError(f"{what} must be finite numbers")
    return out


def _formula(formula) -> Formula:
    """The parsed formula: a string is parsed, a Formula taken as it is."""
    if isinstance(formula, str):
        return parse(formula)
    if not isinstance(formula, Formula):
        raise FormulaError(f"the formula must be a string such as 'y ~ x + (1 | g)', not "
                           f"{type(formula).__name__}")
    return formula


def _choose_engine(formula: Formula, engine: str, control, training: dict,
                   exact_control: type[LmerControl]):
    """exact or torch (nn() terms, or asked for), and the engine's settings: the torch
    engine's with the training options, or the exact engine's (``exact_control``) with
    lme4's ``verbose``."""
    if engine not in {"auto", "exact", "torch"}:
        raise ModelError(f"engine must be 'auto', 'exact' or 'torch', not {engine!r}")
    use_torch = engine == "torch" or (engine == "auto" and bool(formula.nn))
    if formula.nn and engine == "exact":
        raise ModelError("formulas with nn() terms need engine='torch'")
    if use_torch:
        unknown = set(training) - set(TorchControl.__dataclass_fields__)
        if unknown:
            raise ModelError(f"unknown training option(s): {', '.join(sorted(unknown))}")
        if control is not None and not isinstance(control, TorchControl):
            raise ModelError("the torch engine takes a TorchControl as control")
        return True, replace(control or TorchControl(), **training)
    others = sorted(set(training) - {"verbose"})
    if others:
        raise ModelError(f"training option(s) {', '.join(others)} only apply to "
                         f"engine='torch'")
    if "verbose" in training:  # lme4's lmer(verbose=): the optimiser's evaluations
        if control is not None and not isinstance(control, exact_control):
            raise ModelError(f"the exact engine takes a {exact_control.__name__} as control")
        control = replace(control or exact_control(), verbose=training["verbose"])
    return False, control


def _torch_nagq(use_torch: bool, nAGQ) -> None:
    """nAGQ is the exact engine's; the torch engine's rule is set by ``quadrature=``."""
    if use_torch and nAGQ != 1:
        raise ModelError(f"nAGQ={nAGQ} applies to the exact engine; the torch engine "
                         f"integrates a random intercept by quadrature=K adaptive nodes (5 "
                         f"by default) and other random terms by the Laplace approximation")


def _design_with_weights(formula: Formula, data, weights, na_action: str,
                         contrasts: dict | None = None):
    """The design, with prior weights (a column name or an array) taking part in NA removal."""
    weights_name = None
    w = None
    if isinstance(weights, str):
        if not isinstance(data, pd.DataFrame) or weights not in data.columns:
            raise DataError(f"weights column '{weights}' not found in data")
        weights_name = weights
        data = data.copy()
        data["(weights)"] = data[weights]
    elif weights is not None:
        arr = np.asarray(weights, dtype=np.float64).ravel()
        if not isinstance(data, pd.DataFrame) or len(arr) != len(data):
            raise DataError(f"weights has length {len(arr)}, data has "
                            f"{len(data) if isinstance(data, pd.DataFrame) else '?'} rows")
        weights_name = "weights"
        data = data.copy()
        data["(weights)"] = arr
    d = make_design(formula, data, na_action=na_action,
                    extra_columns=["(weights)"] if weights is not None else None,
                    contrasts=contrasts)
    if weights is not None:
        w = data.loc[d.index, "(weights)"].to_numpy(dtype=np.float64)
    return d, w, weights_name, data


def glmer(formula: str | Formula, data: pd.DataFrame, family: str | Family = "binomial",
          nAGQ: int = 1, weights: str | np.ndarray | pd.Series | None = None,
          control: GlmerControl | TorchControl | None = None, na_action: str = "omit",
          link: str | None = None, data_name: str | None = None, engine: str = "auto",
          modules: dict | None = None, start=None, contrasts: dict | None = None,
          **training) -> GlmerResult:
    """Fit a generalized linear mixed model, as lme4's ``glmer()``.

    ``family`` is "binomial" (0/1 responses, proportions with ``weights`` = trials, or
    ``cbind(successes, failures)``), "poisson", or a family with a dispersion φ estimated
    with the rest: "Gamma", "inverse.gaussian", "gaussian" (a non-identity link; the
    identity goes to ``lmer()``, as lme4 does); ``link`` picks R's links (logit, probit,
    cauchit, cloglog; log, identity, sqrt; inverse, 1/mu^2). ``nAGQ=1`` is the Laplace
    approximation, ``nAGQ>1`` adaptive Gauss–Hermite quadrature (one scalar random term),
    ``nAGQ=0`` the fast approximation.

    With nn() terms (or ``engine="torch"``) the torch engine trains the network by the
    marginal NLL over whole groups, by Gauss–Hermite quadrature (LMMNN paper eq. 40;
    ``quadrature=5`` adaptive nodes) — with random slopes, crossed, nested or rbf terms (or
    ``quadrature=1``) by each batch's Laplace approximation — with the training options of
    ``lmer()``; ``verbose`` for the exact engine as in ``lmer()``.

    ``start`` is lme4's: θ (an array or Series) for the first stage, or a dict: "theta"
    starts the first stage, "fixef" joins the first stage's θ as the second stage's start,
    and with both the first stage is skipped. ``contrasts`` as in ``lmer()``.
    """
    formula = _formula(formula)
    fam = make_family(family, link)
    if fam.family == "gaussian" and fam.link.name == "identity":
        return _gaussian_glmer(formula, data, weights, control, na_action,
                               data_name or caller_name(data) or "data", engine, modules,
                               dict(training, start=start, contrasts=contrasts))
    if engine != "torch" and not formula.nn and control is not None and \
            not isinstance(control, GlmerControl):
        raise ModelError("glmer() takes a GlmerControl as control")
    use_torch, control = _choose_engine(formula, engine, control, training, GlmerControl)
    _torch_nagq(use_torch, nAGQ)
    data_name = data_name or caller_name(data) or "data"
    d, w, weights_name, data = _design_with_weights(formula, data, weights, na_action,
                                                    contrasts)
    theta0, beta0 = starting_values(start, d, use_torch, glmm=True)
    if use_torch:
        fit = fit_torch(d, control, modules, family=fam, weights=w)
    else:
        fit = fit_glmer(d, fam, nAGQ=nAGQ, weights=w, control=control, start=theta0,
                        start_beta=beta0)
    return GlmerResult(fit, data_name, weights_name, data)


def _gaussian_glmer(formula, data, weights, control, na_action, data_name, engine,
                    modules, training):
    """glmer(family="gaussian") with the identity link is an LMM: fitted by lmer() (REML,
    its default), with lme4's warning."""
    if control is not None and not isinstance(control, (LmerControl, TorchControl)):
        raise ModelError("glmer(family='gaussian') is fitted by lmer(), which takes an "
                         "LmerControl as control")
    warn("calling glmer() with family='gaussian' (identity link) as a shortcut to lmer() is "
         "deprecated in lme4; call lmer() directly", FutureWarning)
    return lmer(formula, data, weights=weights, control=control, na_action=na_action,
                data_name=data_name, engine=engine, modules=modules, **training)


def glmer_nb(formula: str | Formula, data: pd.DataFrame, nAGQ: int = 1,
             weights: str | np.ndarray | pd.Series | None = None,
             control: GlmerControl | TorchControl | None = None, na_action: str = "omit",
             data_name: str | None = None, tol: float = 5e-5,
             theta: float | None = None, engine: str = "auto",
             modules: dict | None = None, contrasts: dict | None = None,
             **training) -> GlmerResult:
    """lme4's ``glmer.nb()``: a negative binomial GLMM (log link), its θ (the size: variance
    μ + μ²/θ) estimated with the rest. As lme4: a Poisson fit, MASS's theta.ml on its
    fitted means (or ``theta=`` as the start), then θ by Brent's minimisation of −2 log L
    over log θ ± 3 (R's optimize, ``tol``), refitting the GLMM at each θ from the last fit.

    With nn() terms (or ``engine="torch"``) log θ is trained with the network by each
    batch's marginal NLL, from theta.ml at the linear start (or ``theta=``), and then
    refined by the same Brent loop with the network's output as an offset
    (``refine=False`` keeps it as trained); training options as in ``glmer()``.
    """
    data_name = data_name or caller_name(data) or "data"
    formula = _formula(formula)
    use_torch, control = _choose_engine(formula, engine, control, training, GlmerControl)
    _torch_nagq(use_torch, nAGQ)
    if use_torch:
        d, w, weights_name, data = _design_with_weights(formula, data, weights, na_action,
                                                        contrasts)
        fam = Family("negative.binomial", Link("log"), None if theta is None else
                     negative_binomial(theta).theta)
        fit = fit_torch(d, control, modules, family=fam, weights=w, estimate_size=True,
                        size_tol=tol)
        return GlmerResult(fit, data_name, weights_name, data)
    common = dict(nAGQ=nAGQ, weights=weights, control=control, na_action=na_action,
                  data_name=data_name, engine="exact", contrasts=contrasts)
    with warnings.catch_warnings():  # the Poisson start's own warnings are not the fit's
        warnings.simplefilter("ignore")
        start = glmer(formula, data, family="poisson", **common)
    f0 = start.fit
    if theta is None:
        theta, note = theta_ml(f0.y, f0.mu, f0.prior_weights, limit=20, eps=2 * tol)
        if note:
            warn(f"the starting theta (MASS's theta.ml on the Poisson fit): {note}")
    first = glmer(formula, data, family=negative_binomial(theta), **common)
    final = optimise_size(first.design, first.fit, tol)
    return GlmerResult(final, data_name, first.weights_name, first._data)
