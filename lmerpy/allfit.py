"""lme4's ``allFit()``: a model refitted with every optimiser, to tell a real convergence
problem from a false alarm. When optimisers of different kinds (BOBYQA, Nelder–Mead,
Subplex, Powell, L-BFGS-B) reach the same log-likelihood and estimates, a
convergence warning of the original fit can be set aside; when they do not, it cannot."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .engines.exact import LmerControl
from .engines.glmm import GlmerControl
from .engines.optimizers import OPTIMIZERS, check_optimizer
from .errors import LmerpyError, ModelError
from .results.glmer import GlmerResult
from .results.model import LmerResult
from .updates import update


@dataclass
class AllFitSummary:
    """lme4's ``summary(allFit(m))``: which optimisers succeeded, their warnings, and per
    optimiser (rows) the fixed effects, log-likelihood, standard deviations and
    correlations, θ, seconds and evaluations."""

    which_OK: pd.Series
    msgs: dict[str, list[str]]
    fixef: pd.DataFrame
    llik: pd.Series
    sdcor: pd.DataFrame
    theta: pd.DataFrame
    times: pd.Series
    feval: pd.Series

    def __str__(self) -> str:
        parts = [("which.OK", self.which_OK.to_string()),
                 ("msgs", "\n".join(f"{name}: {'; '.join(m) if m else 'none'}"
                                    for name, m in self.msgs.items())),
                 ("fixef", self.fixef.to_string()), ("llik", self.llik.to_string()),
                 ("sdcor", self.sdcor.to_string()), ("theta", self.theta.to_string()),
                 ("times (seconds)", self.times.round(3).to_string()),
                 ("feval", self.feval.to_string())]
        return "\n\n".join(f"${name}\n{text}" for name, text in parts)

    __repr__ = __str__


@dataclass
class AllFit:
    """The refits of one model, by optimiser name: a fitted model, or the error that
    stopped that optimiser (lme4 keeps the error in the list the same way)."""

    model: LmerResult
    fits: dict[str, LmerResult | LmerpyError]
    times: dict[str, float]

    @property
    def ok(self) -> dict[str, LmerResult]:
        return {k: f for k, f in self.fits.items() if isinstance(f, LmerResult)}

    def summary(self) -> AllFitSummary:
        ok = self.ok
        names = list(ok)
        first = next(iter(ok.values()), None)
        which = pd.Series({k: isinstance(f, LmerResult) for k, f in self.fits.items()},
                          name="which.OK")
        if first is None:
            empty = pd.DataFrame(index=pd.Index([], name="optimizer"))
            return AllFitSummary(which, {}, empty, pd.Series(dtype=float), empty, empty,
                                 pd.Series(dtype=float), pd.Series(dtype=float))
        fixef = pd.DataFrame([f.fixef().to_numpy() for f in ok.values()], index=names,
                             columns=first.fixef().index)
        llik = pd.Series([float(f.logLik()) for f in ok.values()], index=names, name="llik")
        theta_names = list(first.getME("theta").index)
        theta = pd.DataFrame([np.asarray(f.theta) for f in ok.values()], index=names,
                             columns=theta_names)
        sdcor = pd.DataFrame([_sdcor(f)[1] for f in ok.values()], index=names,
                             columns=_sdcor(first)[0])
        msgs = {k: list(f.optinfo["messages_conv"]) for k, f in ok.items()}
        times = pd.Series({k: self.times[k] for k in names}, name="seconds")
        feval = pd.Series({k: f.fit.optinfo.get("evals", np.nan) for k, f in ok.items()},
                          name="feval")
        return AllFitSummary(which, msgs, fixef, llik, sdcor, theta, times, feval)

    def __str__(self) -> str:
        """lme4's print.allFit: the model, the optimisers, how far apart their negative
        log-likelihoods are."""
        m = self.model
        lines = ["original model:", m.formula.as_written, f"data:  {m.data_name}",
                 f"optimizers ({len(self.fits)}): {', '.join(self.fits)}"]
        failed = [k for k, f in self.fits.items() if not isinstance(f, LmerResult)]
        if failed:
            lines.append(f"{len(failed)} optimizer(s) failed: {', '.join(failed)}")
        nll = -np.array([float(f.logLik()) for f in self.ok.values()])
        lines.append("differences in negative log-likelihoods:")
        if len(nll):
            sd = float(np.std(nll, ddof=1)) if len(nll) > 1 else np.nan
            lines.append(f"max= {_signif(nll.max() - nll.min())} ; std dev= {_signif(sd)}")
        return "\n".join(lines)

    __repr__ = __str__


def allFit(model: LmerResult, optimizers: list[str] | tuple[str, ...] | None = None
           ) -> AllFit:
    """lme4's ``allFit(m)``: ``model`` refitted (by ``update``, from the default start)
    with each optimiser of ``optimizers`` (all of lmerpy's by default), keeping its other
    settings. An optimiser that fails gives its error in place of a fit. The refits'
    warnings are not shown: each fit's convergence and boundary messages are in
    ``summary().msgs``, as lme4's."""
    if not isinstance(model, LmerResult):
        raise ModelError(f"allFit() takes a fitted model, not {type(model).__name__}")
    if model.torch_info is not None:
        raise ModelError("allFit() refits with other optimisers of the exact engine; a torch "
                         "engine fit is trained by Adam (compare fits with other seeds "
                         "instead)")
    names = list(OPTIMIZERS if optimizers is None else optimizers)
    if not names:
        raise ModelError("allFit() needs at least one optimizer")
    for name in names:
        check_optimizer(name)
    control = model.fit.optinfo.get("control")
    if control is None:
        control = GlmerControl() if isinstance(model, GlmerResult) else LmerControl()
    fits: dict[str, LmerResult | LmerpyError] = {}
    times: dict[str, float] = {}
    for name in names:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                fits[name] = update(model, control=replace(control, optimizer=name))
            except LmerpyError as err:
                fits[name] = err
        times[name] = time.perf_counter() - start
    return AllFit(model, fits, times)


def _sdcor(m: LmerResult) -> tuple[list[str], list[float]]:
    """lme4's as.data.frame(VarCorr(m))$sdcor, named as lme4's tnames(old.names = FALSE):
    sd_(Intercept)|Subject, cor_Days.(Intercept)|Subject, ..., sigma."""
    vc = m.VarCorr().to_frame()
    names = []
    for grp, v1, v2 in zip(vc["grp"], vc["var1"], vc["var2"]):
        if grp == "Residual":
            names.append("sigma")
        elif isinstance(v2, str):
            names.append(f"cor_{v2}.{v1}|{grp}")
        else:
            names.append(f"sd_{v1}|{grp}")
    return names, vc["sdcor"].astype(float).tolist()


def _signif(x: float) -> str:
    return "NA" if not np.isfinite(x) else f"{float(f'{x:.3g}'):g}"


__all__ = ["AllFit", "AllFitSummary", "allFit"]
