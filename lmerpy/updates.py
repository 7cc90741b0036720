"""lme4's update() and the tools built on it that refit a model in other forms and compare:
drop1() (lme4's, or lmerTest's F-tests), lmerTest's ranova() and step()."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import scipy.stats as st

from .api import glmer, glmer_nb, lmer
from .caller import caller_name
from .engines.exact import fixed_only_loglik
from .engines.options import require_probability
from .engines.torch_control import TorchControl
from .errors import ModelError, warn
from .formula import parse
from .formula.expand import is_bar
from .formula.update import random_parts, update_formula
from .results.anova import DeletionTable, StepResult, f_drop1
from .results.glmer import GlmerResult
from .results.model import LmerResult


def update(model: LmerResult, formula: str | None = None, data: pd.DataFrame | None = None,
           *, keep_size: bool = False, **changes) -> LmerResult:
    """lme4's ``update(m, . ~ . - x, REML = FALSE)``: the model fitted again with a formula
    written against its own (``.`` stands for the old side, as R's ``update.formula``),
    other ``data``, or other arguments of ``lmer``/``glmer`` (``REML``, ``weights``,
    ``control``, ``nAGQ``, training options, ...). What is not changed is the model's own:
    REML, family and nAGQ, prior weights, the optimiser's or the training's settings (a
    checkpoint directory excepted). Own ``nn()`` modules must be passed again (``modules=``):
    the fitted ones are trained. A glmer.nb fit's θ is estimated anew, as lme4's update
    does; ``keep_size=True`` keeps the fitted θ (insight's null model does so)."""
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
    if isinstance(model, GlmerResult) and "glmer_nb" in model.fit.optinfo and \
            not keep_size:
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
    if model.design.fixed_encoder.contrasts:
        args["contrasts"] = model.design.fixed_encoder.contrasts
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



class Influence:
    """lme4's influence.merMod: the fixed effects with each group (or observation) deleted
    in turn, and the diagnostics built on them."""

    def __init__(self, model: LmerResult, deleted: pd.DataFrame):
        self.model = model
        self.fixef_deleted = deleted  # lme4's "fixed.effects[-case]"

    def dfbeta(self) -> pd.DataFrame:
        """β̂ − β̂ with the case deleted (lme4's dfbeta)."""
        return self.model.fixef() - self.fixef_deleted

    def cooks_distance(self) -> pd.Series:
        """lme4's cooks.distance: each case's dfbeta in the metric of Cov(β̂)⁻¹, scaled by
        (n − p)/(n p) for n cases and p fixed effects."""
        db = self.dfbeta().to_numpy()
        n, p = db.shape
        inv = (n - p) / (n * p) * np.linalg.inv(self.model.vcov().to_numpy())
        return pd.Series(np.einsum("ij,jk,ik->i", db, inv, db), index=self.fixef_deleted.index,
                         name="cooks.distance")


def influence(model: LmerResult, groups: str | None = None) -> Influence:
    """lme4's ``influence(m, groups = "g")``: the model refitted (its own REML or ML and
    settings) without each level of the grouping column ``groups`` in turn, or without each
    observation (``groups=None``: one refit per row)."""
    if not isinstance(model, LmerResult) or model.torch_info is not None:
        raise ModelError("influence() refits an exact lmer or glmer fit")
    data = model._data.loc[model.design.index]
    if groups is None:
        cases = {str(label): data.index == label for label in data.index}
    else:
        if groups not in data.columns:
            raise ModelError(f"influence(): groups must name a column of the data, not "
                             f"{groups!r}")
        keys = data[groups].astype(str)
        cases = {level: (keys == level).to_numpy() for level in dict.fromkeys(keys)}
    rows = {}
    with warnings.catch_warnings():  # a deletion may leave a singular fit: reported by lme4 too
        warnings.simplefilter("ignore")
        for case, at in cases.items():
            rows[case] = update(model, data=data[~at]).fixef()
    return Influence(model, pd.DataFrame.from_dict(rows, orient="index"))


__all__ = ["Influence", "drop1", "influence", "ranova", "step", "update"]
