"""glmer.nb's outer loop: the negative binomial's size θ (variance μ + μ²/θ) by Brent's
minimisation of the GLMM's −2 log L over log θ, each evaluation a glmer fit at that θ.

lme4's glmer.nb (and lmerpy's ``glmer_nb``) starts it from MASS's theta.ml on a Poisson
fit; the torch engine from the size it trained, with the network's output as an offset.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

from ..design.model import ModelDesign
from .family import negative_binomial
from .glmm import GlmerFit, fit_glmer


def optimise_size(design: ModelDesign, first: GlmerFit, tol: float = 5e-5,
                  fix_theta: bool = False) -> GlmerFit:
    """From ``first`` (a negative binomial fit at its starting size θ₀), θ by R's
    ``optimize`` over log θ₀ ± 3 (``tol`` on log θ), refitting the GLMM at each θ from the
    last fit's random-effects θ (kept where ``fix_theta``: the torch engine without
    refinement of it); the fit at the best θ, with ``optinfo["glmer_nb"]``."""
    start = float(first.family.theta)
    link = first.family.link.name
    last = [first]

    def refit(size: float) -> GlmerFit:
        f = last[0]
        return fit_glmer(design, negative_binomial(size, link), f.nAGQ, f.weights,
                         f.optinfo.get("control"), start=f.theta, fix_theta=fix_theta)

    def deviance(log_size: float) -> float:
        last[0] = refit(float(np.exp(log_size)))
        return last[0].criterion

    best = minimize_scalar(deviance, bounds=(np.log(start) - 3, np.log(start) + 3),
                           method="bounded", options={"xatol": tol})
    final = last[0]
    if final.family.theta != float(np.exp(best.x)):
        final = refit(float(np.exp(best.x)))
    final.optinfo["glmer_nb"] = {"evaluations": int(best.nfev), "start_theta": start}
    return final


__all__ = ["optimise_size"]
