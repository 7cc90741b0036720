"""The fitted GLMM (lme4's glmerMod): LmerResult's accessors on the response and link scales."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..engines.glmm import GlmerFit, fit_glmer, pearson_weights, variance_parameters
from ..engines.options import require_flag
from ..errors import DataError, ModelError
from .model import LmerResult, LogLik
from .varcorr import VarCorr

RESIDUAL_TYPES = ("deviance", "pearson", "response", "working")


class GlmerResult(LmerResult):
    """A fitted generalized linear mixed model, by maximum likelihood. σ is 1 for binomial
    and Poisson responses and √φ, φ the estimated dispersion, for Gamma, inverse Gaussian
    and Gaussian ones; the random effects' covariance is on the linear predictor's scale
    and not multiplied by σ (lme4 2.0's VarCorr; lme4 1.1 multiplied it)."""

    fit: GlmerFit

    @property
    def family(self):
        return self.fit.family

    @property
    def nAGQ(self) -> int:
        return self.fit.nAGQ

    @property
    def title(self) -> str:
        info = self.torch_info
        if info is not None:
            kind = "with neural fixed effects " if self.design.nn else ""
            theta = "θ by Laplace given the network" if info["refined"] else "θ as trained"
            nll = "Laplace approximation per batch" if info["quadrature"] == 1 else \
                f"Gauss-Hermite quadrature with {info['quadrature']} nodes"
            return (f"Generalized linear mixed model {kind}fit by maximum likelihood (torch "
                    f"engine, LMMNN: {nll}; {theta}) ['lmerpy']")
        if self.fit.nAGQ > 1:
            how = f"Adaptive Gauss-Hermite Quadrature, nAGQ = {self.fit.nAGQ}"
        elif self.fit.nAGQ == 1:
            how = "Laplace Approximation"
        else:
            how = "Laplace Approximation, nAGQ = 0"
        return f"Generalized linear mixed model fit by maximum likelihood ({how}) [glmerMod]"

    @property
    def sigma(self) -> float:
        """√φ for a family with a dispersion φ (the Gamma's coefficient of variation, the
        Gaussian's residual sd); 1 for binomial and Poisson (lme4's sigma())."""
        return float(np.sqrt(self.fit.phi)) if self.family.has_dispersion else 1.0

    @property
    def dispersion(self) -> float:
        """φ, the family's dispersion (σ²): Var(y | b) = φ V(μ) / w."""
        return float(self.fit.phi)

    @property
    def n_params(self) -> int:
        """β and θ, and a negative binomial's θ (lme4 counts it for glmer.nb fits) or the
        dispersion φ."""
        nb = self.fit.family.family == "negative.binomial"
        return len(self.fit.fixef_names) + len(self.fit.theta) + int(nb) \
            + int(self.family.has_dispersion)

    def VarCorr(self) -> VarCorr:
        # Λ is on the linear predictor's scale: no σ factor, and no residual row (a
        # dispersion φ is printed on its own line by the summary)
        return VarCorr(self._varcorr_terms(1.0), None)

    # -- criteria ----------------------------------------------------------------------------
    def REMLcrit(self) -> float:
        raise ModelError("GLMMs are fitted by maximum likelihood: there is no REML criterion")

    def logLik(self, REML: bool | None = None) -> LogLik:
        return LogLik(-self.fit.criterion / 2.0, self.n_params, self.nobs)

    def deviance(self, REML: bool | None = None) -> float:
        """lme4's deviance() of a glmer fit: the sum of squared deviance residuals at the
        conditional modes (−2 logLik is in the summary and anova)."""
        f = self.fit
        return float(f.family.dev_resids(f.y, f.mu, f.prior_weights).sum())

    # -- fitted values and residuals -------------------------------------------------------------
    def fitted(self) -> pd.Series:
        """Fitted means μ (probabilities for binomial, rates for Poisson)."""
        return pd.Series(self.fit.mu, index=self.design.index, name="fitted")

    def residuals(self, type: str = "deviance", scaled: bool = False) -> pd.Series:
        if type not in RESIDUAL_TYPES:
            raise ModelError(f"type must be one of {', '.join(RESIDUAL_TYPES)}, not {type!r}")
        f = self.fit
        raw = f.y - f.mu
        if type == "response":
            r = raw
        elif type == "pearson":
            r = raw * np.sqrt(pearson_weights(f))
        elif type == "working":
            r = raw / f.family.link.mu_eta(f.eta)
        else:
            r = np.sign(raw) * np.sqrt(np.maximum(f.family.dev_resids(f.y, f.mu,
                                                                      f.prior_weights), 0))
        if scaled:
            r = r / self.sigma
        return pd.Series(r, index=self.design.index, name="residuals")

    # -- prediction --------------------------------------------------------------------------
    def predict(self, newdata: pd.DataFrame | None = None, re_form: str | None = None,
                allow_new_levels: bool = False, type: str = "link",
                na_action: str = "pass") -> pd.Series:
        """Predictions on the link scale (``type="link"``, lme4's default) or as means
        (``type="response"``)."""
        if type not in {"link", "response"}:
            raise ModelError(f"type must be 'link' or 'response', not {type!r}")
        eta = super().predict(newdata, re_form, allow_new_levels, na_action)
        if type == "response":
            return pd.Series(self.family.link.inverse(eta.to_numpy()), index=eta.index,
                             name="predict")
        return eta

    @property
    def _confint_names(self) -> list[str]:
        """No .sigma row where the family fixes the scale; √φ's where it has a dispersion."""
        names = super()._confint_names
        return names if self.family.has_dispersion else [n for n in names if n != ".sigma"]

    @property
    def _default_confint(self) -> str:
        """Profile, as lme4; Wald for nAGQ = 0 and torch fits, which have no such profile."""
        return "Wald" if self.fit.nAGQ == 0 or self.torch_info is not None else "profile"

    def _check_profile(self, what: str = "profile intervals") -> None:
        super()._check_profile(what)
        if self.fit.nAGQ == 0:
            raise ModelError(f"{what} need the likelihood: this fit used nAGQ=0 (no Laplace "
                             f"step); refit with nAGQ=1, or use method='Wald'")

    def _estimates(self) -> np.ndarray:
        return np.concatenate([variance_parameters(self.design, self.family, self.theta,
                                                   self.fit.phi), self.fixef().to_numpy()])

    def refit(self, newresp=None, *, REML: bool | None = None) -> GlmerResult:
        """lme4's ``refit()``: the model fitted to ``newresp`` from θ̂ by the fit's nAGQ, as
        for lmer fits; for a cbind() response ``newresp`` is the successes (what
        ``simulate()`` gives) and the trials stay. Always maximum likelihood."""
        if REML is not None:
            require_flag("REML", REML)
        if newresp is None:
            return self
        if self.torch_info is not None:
            raise ModelError("refit(newresp) of a torch-engine fit would train its network "
                             "anew: call glmer() again on the new response (with the same "
                             "seed= for the same start)")
        design, data = self._with_response(newresp)
        f = self.fit
        fit = fit_glmer(design, f.family, f.nAGQ, f.weights, self._quiet_control(),
                        start=f.theta)
        return GlmerResult(fit, self.data_name, self.weights_name, data)

    def _as_design_response(self, y: np.ndarray) -> np.ndarray:
        counts = np.asarray(self.design.y, dtype=np.float64)
        if counts.ndim == 1:
            return y
        trials = counts.sum(axis=1)
        if np.any(y < 0) or np.any(y > trials) or np.any(y != np.rint(y)):
            raise DataError("newresp for a cbind(successes, failures) response is the "
                            "successes: whole numbers from 0 to each row's trials")
        return np.column_stack([y, trials - y])


__all__ = ["GlmerResult"]
