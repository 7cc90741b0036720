"""The user-facing functions: ``lmer()`` (formula -> design -> engine -> result)."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import scipy.stats as st
from scipy.optimize import minimize_scalar

from .caller import caller_name
from .design import design as make_design
from .engines.exact import LmerControl, fit_lmer, fixed_only_loglik
from .engines.family import Family, make_family, negative_binomial, theta_ml
from .engines.glmm import GlmerControl, fit_glmer
from .engines.options import require_flag, require_probability
from .engines.torch_control import TorchControl
from .engines.torch_engine import fit_torch
from .errors import DataError, FormulaError, ModelError, warn
from .formula import Formula, parse
from .formula.expand import is_bar
from .formula.update import random_parts, update_formula
from .results.anova import DeletionTable, StepResult, f_drop1
from .results.glmer import GlmerResult
from .results.model import LmerResult


def lmer(formula: str | Formula, data: pd.DataFrame, REML: bool = True,
         weights: str | np.ndarray | pd.Series | None = None,
         control: LmerControl | TorchControl | None = None, na_action: str = "omit",
         engine: str = "auto", data_name: str | None = None,
         modules: dict | None = None, **training) -> LmerResult:
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
    3 the parameters too.
    """
    formula = _formula(formula)
    require_flag("REML", REML)
    REML = bool(REML)
    use_torch, control = _choose_engine(formula, engine, control, training, LmerControl)
    if use_torch and weights is not None:
        raise ModelError("prior weights are not supported by the torch engine for Gaussian "
                         "models yet")
    data_name = data_name or caller_name(data) or "data"
    d, w, weights_name, data = _design_with_weights(formula, data, weights, na_action)
    if use_torch:
        fit = fit_torch(d, control, modules)
    else:
        fit = fit_lmer(d, REML=REML, weights=w, control=control)
    return LmerResult(fit, data_name, weights_name, data)


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


def _design_with_weights(formula: Formula, data, weights, na_action: str):
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
                    extra_columns=["(weights)"] if weights is not None else None)
    if weights is not None:
        w = data.loc[d.index, "(weights)"].to_numpy(dtype=np.float64)
    return d, w, weights_name, data


def glmer(formula: str | Formula, data: pd.DataFrame, family: str | Family = "binomial",
          nAGQ: int = 1, weights: str | np.ndarray | pd.Series | None = None,
          control: GlmerControl | TorchControl | None = None, na_action: str = "omit",
          link: str | None = None, data_name: str | None = None, engine: str = "auto",
          modules: dict | None = None, **training) -> GlmerResult:
    """Fit a generalized linear mixed model, as lme4's ``glmer()``.

    ``family`` is "binomial" (0/1 responses, proportions with ``weights`` = trials, or
    ``cbind(successes, failures)``) or "poisson"; ``link`` picks logit/probit/cloglog or
    log. ``nAGQ=1`` is the Laplace approximation, ``nAGQ>1`` adaptive Gauss–Hermite
    quadrature (one scalar random term), ``nAGQ=0`` the fast approximation.

    With nn() terms (or ``engine="torch"``) the torch engine trains the network by the
    marginal NLL over whole groups, by Gauss–Hermite quadrature (LMMNN paper eq. 40;
    ``quadrature=5`` nodes), with the training options of ``lmer()``; ``verbose`` for the
    exact engine as in ``lmer()``.
    """
    formula = _formula(formula)
    fam = make_family(family, link)
    if engine != "torch" and not formula.nn and control is not None and \
            not isinstance(control, GlmerControl):
        raise ModelError("glmer() takes a GlmerControl as control")
    use_torch, control = _choose_engine(formula, engine, control, training, GlmerControl)
    if use_torch and fam.family not in ("binomial", "poisson"):
        raise ModelError("the torch engine fits binomial and Poisson GLMMs; a negative "
                         "binomial one needs the exact engine (no nn() terms)")
    data_name = data_name or caller_name(data) or "data"
    d, w, weights_name, data = _design_with_weights(formula, data, weights, na_action)
    if use_torch:
        fit = fit_torch(d, control, modules, family=fam, weights=w)
    else:
        fit = fit_glmer(d, fam, nAGQ=nAGQ, weights=w, control=control)
    return GlmerResult(fit, data_name, weights_name, data)


def glmer_nb(formula: str | Formula, data: pd.DataFrame, nAGQ: int = 1,
             weights: str | np.ndarray | pd.Series | None = None,
             control: GlmerControl | None = None, na_action: str = "omit",
             data_name: str | None = None, tol: float = 5e-5,
             theta: float | None = None) -> GlmerResult:
    """lme4's ``glmer.nb()``: a negative binomial GLMM (log link), its θ (the size: variance
    μ + μ²/θ) estimated with the rest. As lme4: a Poisson fit, MASS's theta.ml on its
    fitted means (or ``theta=`` as the start), then θ by Brent's minimisation of −2 log L
    over log θ ± 3 (R's optimize, ``tol``), refitting the GLMM at each θ from the last fit.
    """
    data_name = data_name or caller_name(data) or "data"
    common = dict(nAGQ=nAGQ, weights=weights, control=control, na_action=na_action,
                  data_name=data_name, engine="exact")
    with warnings.catch_warnings():  # the Poisson start's own warnings are not the fit's
        warnings.simplefilter("ignore")
        start = glmer(formula, data, family="poisson", **common)
    f0 = start.fit
    if theta is None:
        theta, note = theta_ml(f0.y, f0.mu, f0.prior_weights, limit=20, eps=2 * tol)
        if note:
            warn(f"the starting theta (MASS's theta.ml on the Poisson fit): {note}")
    first = glmer(formula, data, family=negative_binomial(theta), **common)
    design, fit = first.design, first.fit
    last = [fit]

    def deviance(log_theta: float) -> float:
        f = last[0]
        last[0] = fit_glmer(design, negative_binomial(float(np.exp(log_theta))), f.nAGQ,
                            f.weights, f.optinfo.get("control"), start=f.theta)
        return last[0].criterion

    best = minimize_scalar(deviance, bounds=(np.log(theta) - 3, np.log(theta) + 3),
                           method="bounded", options={"xatol": tol})
    final = last[0]
    if final.family.theta != float(np.exp(best.x)):
        final = fit_glmer(design, negative_binomial(float(np.exp(best.x))), final.nAGQ,
                          final.weights, final.optinfo.get("control"), start=final.theta)
    final.optinfo["glmer_nb"] = {"evaluations": int(best.nfev), "start_theta": theta}
    return GlmerResult(final, data_name, first.weights_name, first._data)


def update(model: LmerResult, formula: str | None = None, data: pd.DataFrame | None = None,
           **changes) -> LmerResult:
    """lme4's ``update(m, . ~ . - x, REML = FALSE)``: the model fitted again with a formula
    written against its own (``.`` stands for the old side, as R's ``update.formula``),
    other ``data``, or other arguments of ``lmer``/``glmer`` (``REML``, ``weights``,
    ``control``, ``nAGQ``, training options, ...). What is not changed is the model's own:
    REML, family and nAGQ, prior weights, the optimiser's or the training's settings (a
    checkpoint directory excepted). Own ``nn()`` modules must be passed again (``modules=``):
    the fitted ones are trained."""
    if not isinstance(model, LmerResult):
        raise ModelError(f"update() takes a fitted model, not {type(model).__name__}")
    text = update_formula(model.formula, formula) if formula is not None else \
        (model.formula.text or str(model.formula))
    if data is None:
        data, data_name = model._data, model.data_name
        if data is None:
            raise ModelError("this model keeps no data frame (a refit to a response given by "
                             "an expression): pass data=")
    else:
        data_name = caller_name(data) or "data"
    arguments = {**_own_arguments(model, text, data is model._data), **changes}
    if isinstance(model, GlmerResult) and "glmer_nb" in model.fit.optinfo:
        arguments.pop("family")  # θ is estimated anew, as lme4's update of a glmer.nb fit
        return glmer_nb(text, data, data_name=data_name, **arguments)
    if isinstance(model, GlmerResult):
        return glmer(text, data, data_name=data_name, **arguments)
    return lmer(text, data, data_name=data_name, **arguments)


def _own_arguments(model: LmerResult, text: str, same_data: bool) -> dict:
    """The arguments the model was fitted with, as far as they still apply to ``text``."""
    args: dict = {}
    if isinstance(model, GlmerResult):
        args.update(family=model.family, nAGQ=model.nAGQ)
    else:
        args["REML"] = model.REML
    if model.weights_name == "weights":  # an array, kept with the data in "(weights)"
        if not same_data:
            raise ModelError("the model's prior weights were given as an array: pass "
                             "weights= for the new data")
        args["weights"] = model._data["(weights)"].to_numpy()
    elif model.weights_name is not None:
        args["weights"] = model.weights_name
    info = model.torch_info
    if info is not None:
        settings = {**info.get("settings", info["control"]), "checkpoint_dir": None,
                    "resume": False}
        args.update(engine="torch", control=TorchControl(**settings))
    elif not parse(text).nn:  # an exact fit stays exact with its own control
        args["control"] = model.fit.optinfo.get("control")
    return args


def drop1(model: LmerResult, test: str = "none", ddf: str | None = None) -> DeletionTable:
    """lme4's ``drop1(m, test = "Chisq")``: the model fitted by maximum likelihood without
    each fixed-effect term that no other term contains (R's ``drop.scope``), with its AIC,
    and for ``test="Chisq"`` the likelihood-ratio test against the whole model's ML fit.
    With ``ddf="Satterthwaite"`` or ``"Kenward-Roger"``, lmerTest's drop1: an F-test of
    each such term in the model as fitted."""
    if not isinstance(model, LmerResult):
        raise ModelError(f"drop1() takes a fitted model, not {type(model).__name__}")
    if ddf is not None:
        return f_drop1(model, ddf)
    if test not in ("none", "Chisq"):
        raise ModelError(f"test must be 'none' or 'Chisq', not {test!r}")
    if model.torch_info is not None:
        raise ModelError("drop1() of torch-engine fits is not available: their networks are "
                         "not nested models")
    terms = model.formula.fixed.terms
    if any(t.is_dot for t in terms):
        raise ModelError("drop1() needs the formula's terms written out, not '.'")
    full = model.refit(REML=False)
    rows = {"<none>": {"npar": np.nan, "AIC": full.AIC(), "LRT": np.nan, "Pr(Chi)": np.nan}}
    deviance = -2.0 * float(full.logLik())
    for term in terms:
        factors = set(term.factors)
        if any(factors < set(other.factors) for other in terms):
            continue  # marginal to an interaction that stays
        reduced = update(full, f". ~ . - {term}")
        npar = full.n_params - reduced.n_params
        lrt = -2.0 * float(reduced.logLik()) - deviance
        rows[str(term)] = {"npar": npar, "AIC": reduced.AIC(), "LRT": lrt,
                           "Pr(Chi)": float(st.chi2.sf(lrt, npar)) if npar > 0 else np.nan}
    table = pd.DataFrame.from_dict(rows, orient="index")
    if test == "none":
        table = table[["npar", "AIC"]]
    return DeletionTable(table, model.formula.as_written)


def ranova(model: LmerResult, reduce_terms: bool = True) -> DeletionTable:
    """lmerTest's ``ranova(m)``: likelihood-ratio tests of the random-effect terms, each
    model refitted (by the model's own REML or ML) with one term reduced — a term's
    variables dropped in turn, down to its intercept (``Days in (Days | Subject)``) — or
    removed (an intercept-only term, an rbf() term, or every term with
    ``reduce_terms=False``); without any random term, the linear model's logLik."""
    if not isinstance(model, LmerResult) or isinstance(model, GlmerResult) \
            or model.torch_info is not None:
        raise ModelError("ranova() tests the random effects of an lmer fit of the exact "
                         "engine")
    fixed, terms = random_parts(model.formula)
    full = parse(update_formula(model.formula, "~ " + " + ".join(
        [fixed] + [str(t) for t in terms])))
    rows, formulas = {"<none>": _loglik_row(model)}, {}
    for term in terms:
        for label, change in _reductions(term, reduce_terms):
            formulas[label] = text = update_formula(full, f". ~ . - {term}{change}")
            rows[label] = _loglik_row(update(model, text)) if parse(text).is_mixed \
                else _linear_model_row(model)
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["npar", "logLik"])
    table["AIC"] = -2 * table.logLik + 2 * table.npar
    lrt = 2 * (table.logLik.iloc[0] - table.logLik)
    df = table.npar.iloc[0] - table.npar
    table["LRT"] = lrt.where(table.index != "<none>")
    table["Df"] = df.where(table.index != "<none>")
    table["Pr(>Chisq)"] = [float(st.chi2.sf(x, k)) if k > 0 else np.nan
                           for x, k in zip(table.LRT, table.Df)]
    return DeletionTable(table, full.as_written,
                         "ANOVA-like table for random-effects: Single term deletions",
                         formulas)


def step(model: LmerResult, ddf: str = "Satterthwaite", alpha_random: float = 0.1,
         alpha_fixed: float = 0.05, reduce_random: bool = True, reduce_fixed: bool = True,
         keep: tuple[str, ...] = ()) -> StepResult:
    """lmerTest's ``step(m)``: backward elimination, first of the random-effect terms by
    ranova (the least significant above ``alpha_random`` reduced or removed, until none
    is), then of the marginal fixed-effect terms by drop1's F-tests (above
    ``alpha_fixed``; ``keep`` names terms never removed). ``.model`` is the model found.
    A model without random terms is a linear model, which lmerpy does not fit: the last
    random term is kept, with a warning, where lmerTest would remove it."""
    require_probability("alpha_random", alpha_random, "0.1")
    require_probability("alpha_fixed", alpha_fixed, "0.05")
    alpha_random = alpha_random if reduce_random else 1.0
    alpha_fixed = alpha_fixed if reduce_fixed else 1.0
    fit, ran = model, ranova(model)
    random_rows = [ran.table.iloc[[0]]]
    while True:
        p = ran.table["Pr(>Chisq)"].iloc[1:]
        if not (p > alpha_random).any():
            break
        label = p.idxmax()
        if not parse(ran.formulas[label]).is_mixed:
            warn(f"step(): {label} (p = {p[label]:.4g}) would leave no random term; lmerpy "
                 f"fits no linear model, so it stays")
            break
        random_rows.append(ran.table.loc[[label]])
        fit = update(fit, ran.formulas[label])
        ran = ranova(fit)
    random = pd.concat(random_rows + [ran.table.iloc[1:]])
    random.insert(0, "Eliminated", [np.nan, *range(1, len(random_rows)),
                                    *[0] * (len(ran.table) - 1)])
    aov = drop1(fit, ddf=ddf).table
    fixed_rows = []
    while True:
        p = aov["Pr(>F)"].drop([t for t in keep if t in aov.index])
        if not (p > alpha_fixed).any():
            break
        term = p.idxmax()
        fixed_rows.append(aov.loc[[term]])
        fit = update(fit, f". ~ . - {term}")
        aov = drop1(fit, ddf=ddf).table
    fixed = pd.concat(fixed_rows + [aov]) if fixed_rows else aov.copy()
    fixed.insert(0, "Eliminated", [*range(1, len(fixed_rows) + 1), *[0] * len(aov)])
    return StepResult(random, fixed, fit, ddf)


def _reductions(term, reduce_terms: bool) -> list[tuple[str, str]]:
    """(row label, what replaces the term) for each reduced model of one random term."""
    if not reduce_terms or not is_bar(term):  # an rbf() term, or whole terms asked for
        return [(str(term), "")]
    left, group = term.expr.left, term.expr.right
    lhs = parse(f"y ~ {left}").fixed
    scope = [str(t) for t in lhs.terms
             if not any(set(t.factors) < set(o.factors) for o in lhs.terms)]
    if not scope:
        return [(str(term), "")]
    out = []
    for dropped in scope:
        rest = "1" if {str(t) for t in lhs.terms} == {dropped} else \
            update_formula(parse(f"y ~ {left}"), f". ~ . - {dropped}").split(" ~ ", 1)[1]
        out.append((f"{dropped} in {term}", f" + ({rest} | {group})"))
    return out


def _loglik_row(fit: LmerResult) -> list[float]:
    """npar and logLik (REML or ML, as the fit) of a mixed model."""
    return [fit.n_params, float(fit.logLik())]


def _linear_model_row(model: LmerResult) -> list[float]:
    """npar and logLik of ``model``'s fixed part alone (R's logLik(lm(...)))."""
    f = model.fit
    return [f.X.shape[1] + 1, fixed_only_loglik(f.X, f.y, f.offset, f.weights, model.REML)]
