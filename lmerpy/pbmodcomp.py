"""pbkrtest's ``PBmodcomp()``: the parametric bootstrap likelihood-ratio test of two nested
mixed models. The χ² reference of the LRT is poor in small samples and wrong for a variance
component on its boundary (there the null distribution is a mixture of χ²s); the bootstrap
draws the statistic's distribution under the small model instead: responses simulated from
the small model, both models refitted to each (by ML), the LRT of each draw."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.stats as st

from .engines.bootstrap import make_refitter, make_simulator
from .engines.exact import ConvergenceWarning
from .engines.options import require_whole
from .errors import ModelError, warn
from .results.model import LmerResult
from .results.rformat import print_coefmat


@dataclass(repr=False)
class PBModComp:
    """The test: ``test`` (rows LRT, PBtest, Gamma, Bartlett and F with columns stat, df,
    ddf, p.value, as pbkrtest's summary), the bootstrap statistics ``ref`` and the
    models' formulas."""

    test: pd.DataFrame
    ref: np.ndarray
    n_extreme: int
    seconds: float
    large: str
    small: str

    def __str__(self) -> str:
        """pbkrtest's print of summary(PBmodcomp(...))."""
        npos = int((self.ref > 0).sum())
        lines = [f"Bootstrap test; time: {self.seconds:.2f} sec; samples: {len(self.ref)}; "
                 f"extremes: {self.n_extreme};"]
        if npos < len(self.ref):
            lines.append(f"Requested samples: {len(self.ref)} Used samples: {npos} Extremes: "
                         f"{self.n_extreme}")
        lines += [f"large : {self.large}", f"small : {self.small}"]
        return "\n".join(lines + print_coefmat(self.test, 5, tst=("stat",), has_p=True))

    __repr__ = __str__


def pb_tests(tobs: float, ndf: int, ref: np.ndarray) -> tuple[pd.DataFrame, int]:
    """pbkrtest's tests of the LRT ``tobs`` on ``ndf`` df against its bootstrap sample
    ``ref`` (only its positive values count, as pbkrtest's): χ²; the bootstrap p-value
    (1 + #{ref > tobs}) / (1 + #ref); a Gamma fitted by moments to ref; Bartlett's
    correction ndf·tobs/mean(ref) against χ²; and tobs/ndf against F(ndf, 2E/(E − 1))."""
    pos = np.asarray(ref, dtype=np.float64)
    pos = pos[pos > 0]
    E, V = float(pos.mean()), float(pos.var(ddof=1))
    extreme = int((tobs < pos).sum())
    bartlett = ndf * tobs / E
    ddf = 2 * E / (E - 1)
    rows = {
        "LRT": [tobs, ndf, np.nan, float(st.chi2.sf(tobs, ndf))],
        "PBtest": [tobs, np.nan, np.nan, (1 + extreme) / (1 + len(pos))],
        "Gamma": [tobs, np.nan, np.nan, float(st.gamma.sf(tobs, E**2 / V, scale=V / E))],
        "Bartlett": [bartlett, ndf, np.nan, float(st.chi2.sf(bartlett, ndf))],
        "F": [tobs / ndf, ndf, ddf, float(st.f.sf(tobs / ndf, ndf, ddf)) if ddf > 0
              else np.nan],
    }
    return pd.DataFrame.from_dict(rows, orient="index",
                                  columns=["stat", "df", "ddf", "p.value"]), extreme


def PBmodcomp(large: LmerResult, small: LmerResult, nsim: int = 1000, seed=None
              ) -> PBModComp:
    """pbkrtest's ``PBmodcomp(large, small, nsim)``: the likelihood-ratio statistic of the
    nested models (both by ML: REML fits are refitted, as pbkrtest does), and ``nsim``
    responses simulated from ``small`` (``seed`` repeats them), each refitted by both
    models from their estimates, for the statistic's bootstrap distribution. GLMMs are
    refitted by their own criterion (Laplace or quadrature)."""
    for name, m in (("large", large), ("small", small)):
        if not isinstance(m, LmerResult):
            raise ModelError(f"PBmodcomp() takes fitted models; {name} is a "
                             f"{type(m).__name__}")
        if m.torch_info is not None:
            raise ModelError(f"PBmodcomp() refits each model hundreds of times; {name} is a "
                             f"torch engine fit (use the exact engine)")
    require_whole("nsim", nsim, 2)
    if (large.family is None) != (small.family is None) or (
            large.family is not None and str(large.family) != str(small.family)):
        raise ModelError("PBmodcomp() compares models of the same family")
    if not large.design.index.equals(small.design.index):
        raise ModelError(f"the models were not fitted to the same rows ({large.nobs} and "
                         f"{small.nobs} observations)")
    if large.family is None:
        large, small = large.refit(REML=False), small.refit(REML=False)
    ndf = large.n_params - small.n_params
    if ndf <= 0:
        raise ModelError(f"the large model must have more parameters than the small one "
                         f"({large.n_params} against {small.n_params}): pass them in that "
                         f"order")
    start = time.perf_counter()
    tobs = 2 * (float(large.logLik()) - float(small.logLik()))
    sim = make_simulator(small.fit, np.random.default_rng(seed))
    fit_large, fit_small = make_refitter(large.fit), make_refitter(small.fit)
    ref, failed = np.empty(nsim), 0
    for i in range(nsim):
        y = sim.draw()
        a, b = fit_large.refit(y), fit_small.refit(y)
        failed += int(a.code < 0 or a.code == 5 or b.code < 0 or b.code == 5)
        ref[i] = b.deviance - a.deviance
    if failed:
        warn(f"{failed} of {nsim} bootstrap refits stopped without converging",
             ConvergenceWarning)
    test, extreme = pb_tests(tobs, ndf, ref)
    return PBModComp(test, ref, extreme, time.perf_counter() - start,
                     large.formula.as_written, small.formula.as_written)


__all__ = ["PBModComp", "PBmodcomp", "pb_tests"]
