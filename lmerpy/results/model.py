"""The fitted-model object: lme4's accessors (fixef, ranef, VarCorr, predict, ...) in Python.

Everything here reads an engine's fit; nothing re-parses strings or refits by itself except
``refit`` (used by ``anova``, which refits REML fits by ML as lme4 does).
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.sparse as sp
import scipy.sparse.linalg  # noqa: F401 - sp.linalg
import scipy.stats as st

from ..design.model import make_unique
from ..engines.bootstrap import boot_intervals, bootstrap, simulate
from ..engines.exact import (
    ConvergenceWarning,
    ExactFit,
    conditional_variances,
    fit_lmer,
    is_singular,
)
from ..engines.glmm import pearson_weights
from ..engines.kenward_roger import adjusted_vcov, marginal_covariance
from ..engines.options import require_flag, require_probability, require_whole
from ..engines.profile import profile_intervals, profile_points
from ..engines.satterthwaite import derivatives
from ..errors import DataError, FormulaError, ModelError, warn
from ..formula import parse
from ..formula.terms import RBFTerm
from .printing import print_lines
from .repca import RePCA, repca
from .summary import Summary
from .varcorr import VarCorr, VarCorrTerm


class LogLik(float):
    """A log-likelihood with its degrees of freedom, printed as R's logLik."""

    df: int
    nobs: int

    def __new__(cls, value: float, df: int, nobs: int):
        obj = super().__new__(cls, value)
        obj.df, obj.nobs = df, nobs
        return obj

    def __repr__(self) -> str:
        return f"'log Lik.' {float(self):.7g} (df={self.df})"


class Ranef(dict):
    """ranef(): one DataFrame per grouping factor (rows = levels, columns = terms)."""

    def to_frame(self) -> pd.DataFrame:
        """lme4's as.data.frame(ranef(m)): grpvar, term, grp, condval (and condsd)."""
        rows = []
        for group, df in self.items():
            post = df.attrs.get("condsd")
            for j, term in enumerate(df.columns):
                for i, level in enumerate(df.index):
                    row = {"grpvar": group, "term": term, "grp": level,
                           "condval": df.iat[i, j]}
                    if post is not None:
                        row["condsd"] = post[i, j]
                    rows.append(row)
        return pd.DataFrame(rows)


def _term_key(term) -> tuple:
    """What identifies a random term in ``re_form``: its expression and grouping factor, or
    a spatial term's coordinates (whatever its options)."""
    if isinstance(term, RBFTerm):
        return ("rbf", term.coords)
    return (str(term.expr), term.group)


class LmerResult:
    """A fitted linear mixed model (lme4's merMod), shared by the engines."""

    def __init__(self, fit: ExactFit, data_name: str = "data", weights_name: str | None = None,
                 data: pd.DataFrame | None = None):
        self.fit = fit
        self.design = fit.design
        self.data_name = data_name
        self.weights_name = weights_name
        self._data = data
        self._kriging: dict[int, np.ndarray] = {}  # spatial terms' kriging weights, by term
        info = fit.optinfo
        # what lme4's print shows: optimizer messages (singular, convergence) and fit notes
        self.optinfo = {
            # BOBYQA through NLopt is lme4's "nloptwrap"; name the others plainly
            "optimizer": {"bobyqa": "nloptwrap", "lbfgsb": "L-BFGS-B"}.get(
                info["optimizer"], info["optimizer"]),
            "code_r": 0,
            "messages_conv": [m for m in info["messages"] if "rank deficient" not in m]
            + list(info["warnings"]),
            "fit_messages": [m for m in info["messages"] if "rank deficient" in m],
            "warnings": [], "evals": info["evals"], "nlopt_code": info["code"],
        }

    # -- basic facts --------------------------------------------------------------------------
    family = None  # GLMMs (results.glmer) carry their response family

    def _kriging_weights(self, k: int, b: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Spatial term k's kriging weights, solved once per fit (a Cholesky of the training
        locations' kernel: seconds at 10,000 locations) and kept for later predictions."""
        if k not in self._kriging:
            self._kriging[k] = self.design.random[k].cov.kriging_weights(b, theta)
        return self._kriging[k]

    @property
    def formula(self):
        return self.design.formula

    @property
    def REML(self) -> bool:
        return self.fit.REML

    @property
    def networks(self) -> dict:
        """The trained networks of the nn() terms (torch modules, ready to call on
        standardised float32 inputs), by the term's ``name=`` or else the term as written;
        empty for a model without nn() terms."""
        if self.torch_info is None or not self.design.nn:
            return {}
        labels = make_unique([str(inp.term.option("name") or inp.term)
                                 for inp in self.design.nn])
        return dict(zip(labels, self.torch_info["modules"].networks))

    @property
    def torch_info(self) -> dict | None:
        """Training facts of a torch-engine fit (None for exact fits)."""
        return self.fit.optinfo.get("torch")

    @property
    def history(self) -> pd.DataFrame | None:
        """Per-epoch train and validation NLL, σ² and θ of a torch-engine fit."""
        info = self.torch_info
        return None if info is None else info["history"]

    @property
    def title(self) -> str:
        if self.torch_info is not None:
            kind = "with neural fixed effects " if self.design.nn else ""
            return (f"Linear mixed model {kind}fit by maximum likelihood (torch engine, "
                    f"LMMNN) ['lmerpy']")
        how = "REML" if self.REML else "maximum likelihood "
        return f"Linear mixed model fit by {how} ['lmerMod']"

    @property
    def nobs(self) -> int:
        return self.design.n

    @property
    def ngrps(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.design.random:
            out.setdefault(r.group, r.q)
        return out

    @property
    def sigma(self) -> float:
        return self.fit.sigma

    @property
    def theta(self) -> np.ndarray:
        return self.fit.theta.copy()

    @property
    def fixef_names(self) -> list[str]:
        return list(self.fit.fixef_names)

    @property
    def n_params(self) -> int:
        return len(self.fit.fixef_names) + len(self.fit.theta) + 1

    @property
    def df_resid(self) -> int:
        return self.nobs - self.n_params

    # -- estimates ---------------------------------------------------------------------------
    def fixef(self) -> pd.Series:
        return pd.Series(self.fit.solution.beta, index=self.fit.fixef_names, name="fixef")

    def _term_effects(self) -> list[np.ndarray]:
        """Random effects per term as (q, p) arrays."""
        out, start = [], 0
        for r in self.design.random:
            width = r.q * r.p
            out.append(self.fit.b[start:start + width].reshape(r.q, r.p))
            start += width
        return out

    @cached_property
    def _condvar(self) -> list[np.ndarray]:
        return conditional_variances(self.fit)

    def ranef(self, condVar: bool = False) -> Ranef:
        """Conditional modes per grouping factor; with condVar, their conditional sds
        (``.attrs['condsd']``) and covariances (``.attrs['postVar']``, q × p × p per term)."""
        require_flag("condVar", condVar)
        result = Ranef()
        effects = self._term_effects()
        cvs = self._condvar if condVar else [None] * len(effects)
        for r, eff, cv in zip(self.design.random, effects, cvs):
            df = pd.DataFrame(eff, index=pd.Index(r.levels, name=r.group), columns=r.names)
            sd = None if cv is None else np.sqrt(np.diagonal(cv, axis1=1, axis2=2))
            if r.group in result:  # (x || g): several terms, one grouping factor
                old = result[r.group]
                merged = pd.concat([old, df], axis=1)
                if condVar:
                    merged.attrs["condsd"] = np.hstack([old.attrs["condsd"], sd])
                    merged.attrs["postVar"] = old.attrs["postVar"] + [cv]
                result[r.group] = merged
            else:
                if condVar:
                    df.attrs["condsd"] = sd
                    df.attrs["postVar"] = [cv]
                result[r.group] = df
        return result

    def coef(self) -> dict[str, pd.DataFrame]:
        """Fixed effects plus each level's random effects, per grouping factor (lme4 coef)."""
        fe = self.fixef()
        out = {}
        for group, re in self.ranef().items():
            df = pd.DataFrame(np.tile(fe.to_numpy(), (len(re), 1)), index=re.index,
                              columns=fe.index)
            for col in re.columns:
                if col in df.columns:
                    df[col] = df[col] + re[col]
                else:
                    df[col] = re[col]
            out[group] = df
        return out

    def VarCorr(self) -> VarCorr:
        return VarCorr(self._varcorr_terms(self.sigma), self.sigma)

    def _varcorr_terms(self, s: float) -> list[VarCorrTerm]:
        """Each random term's covariance σ²ΛΛ' (σ = ``s``)."""
        labels = make_unique([r.group for r in self.design.random])
        terms = []
        for r, label, th in zip(self.design.random, labels, self.design.split_theta(self.theta)):
            if hasattr(r.cov, "template"):
                T = r.cov.template(th)
                terms.append(VarCorrTerm(label, list(r.names), s**2 * T @ T.T))
            else:  # spatial: the kernel's variance, and its lengthscale besides
                terms.append(VarCorrTerm(label, ["(Intercept)"],
                                         np.array([[s**2 * th[0] ** 2]]), float(th[1])))
        return terms

    def vcov(self) -> pd.DataFrame:
        names = self.fit.fixef_names
        return pd.DataFrame(self.fit.beta_vcov(), index=names, columns=names)

    # -- criteria ----------------------------------------------------------------------------
    def REMLcrit(self) -> float:
        return self.fit.solution.reml

    def deviance(self, REML: bool | None = None) -> float:
        """ML deviance; for REML fits, deviance(REML=False) is the ML deviance at the REML
        estimates and deviance() the REML criterion, as lme4."""
        if REML is None:
            REML = self.REML
        return self.fit.solution.reml if REML else self.fit.solution.ml

    def logLik(self, REML: bool | None = None) -> LogLik:
        return LogLik(-self.deviance(REML) / 2.0, self.n_params, self.nobs)

    def AIC(self) -> float:
        return -2.0 * float(self.logLik()) + 2.0 * self.n_params

    def BIC(self) -> float:
        return -2.0 * float(self.logLik()) + np.log(self.nobs) * self.n_params

    def isSingular(self, tol: float = 1e-4) -> bool:
        return is_singular(self.theta, self.design.theta_lower(), tol)

    def rePCA(self) -> RePCA:
        """lme4's ``rePCA(m)``: per grouping factor, the principal components of its relative
        covariance factor (sdev and rotation, as prcomp); ``.summary()`` gives the
        proportions of variance. A component with a standard deviation near zero is a
        direction the data do not support (Bates et al. 2015). rbf terms have no such
        factor and are left out."""
        templates = self._templates()
        if not templates:
            raise ModelError("rePCA() needs a grouped random term, e.g. (1 + x | g); an rbf "
                             "term's kernel has no covariance factor to decompose")
        return repca(templates)

    def _templates(self) -> list[tuple[str, list[str], np.ndarray]]:
        """(grouping factor, effect names, p × p block of Λ) of each grouped term, in order."""
        d = self.design
        return [(r.group, list(r.names), r.cov.template(th))
                for r, th in zip(d.random, d.split_theta(self.theta)) if r.encoder is not None]

    # -- fitted values and residuals -------------------------------------------------------------
    def fitted(self) -> pd.Series:
        f = self.fit
        mu = f.X @ f.solution.beta + self.design.Z @ f.b + f.offset
        return pd.Series(mu, index=self.design.index, name="fitted")

    def residuals(self, type: str = "response", scaled: bool = False) -> pd.Series:
        if type not in {"response", "pearson", "working", "deviance"}:
            raise ModelError(f"type must be 'response', 'pearson', 'working' or 'deviance', "
                             f"not {type!r}")
        r = self.fit.y - self.fitted().to_numpy()
        if type in {"pearson", "deviance"} and self.fit.weights is not None:
            r = r * np.sqrt(self.fit.weights)
        if scaled:
            r = r / self.sigma
        return pd.Series(r, index=self.design.index, name="residuals")

    # -- inference ---------------------------------------------------------------------------
    def confint(self, method: str | None = None, level: float = 0.95,
                parm: str | list[str] | None = None, nsim: int = 500, seed=None,
                boot_type: str = "perc") -> pd.DataFrame:
        """Confidence intervals, as lme4's confint(): ``method="profile"`` (lme4's default,
        and lmerpy's for exact fits) inverts the profiled likelihood for every parameter;
        ``"boot"`` refits ``nsim`` responses simulated from the fit (a parametric bootstrap,
        ``boot_type`` "perc", "basic" or "norm" as boot.ci; ``seed`` makes it repeatable);
        ``"Wald"`` gives β̂ ± z·SE for the fixed effects and NaN for the variance parameters.
        ``parm`` picks rows: names, ``"theta_"`` (the variance parameters) or ``"beta_"``."""
        if method is None:
            method = self._default_confint
        if method not in {"profile", "Wald", "boot"}:
            raise ModelError(f"confint(method={method!r}) is not available: use 'profile', "
                             f"'boot' or 'Wald'")
        require_probability("level", level, "0.95")
        names = self._confint_names
        rows = self._confint_rows(parm, names)
        lo, hi = f"{100 * (1 - level) / 2:g} %", f"{100 * (1 + level) / 2:g} %"
        if method == "profile":
            self._check_profile()
            ends = profile_intervals(self.fit, rows, level, names)
            return pd.DataFrame(ends, index=[names[i] for i in rows], columns=[lo, hi])
        if method == "boot":
            require_whole("nsim", nsim, 2)
            if boot_type not in {"perc", "basic", "norm"}:
                raise ModelError(f"boot_type must be 'perc', 'basic' or 'norm', not "
                                 f"{boot_type!r}")
            self._check_exact("bootstrap intervals")
            replicates = bootstrap(self.fit, nsim, seed)[:, rows]
            estimates = self._estimates()[rows]
            ends = boot_intervals(replicates, estimates, level, boot_type)
            return pd.DataFrame(ends, index=[names[i] for i in rows], columns=[lo, hi])
        z = st.norm.ppf(0.5 + level / 2.0)
        fe = self.fixef().to_numpy()
        se = np.sqrt(np.diag(self.vcov().to_numpy()))
        k = len(names) - len(fe)
        ends = np.full((len(names), 2), np.nan)
        ends[k:] = np.column_stack([fe - z * se, fe + z * se])
        return pd.DataFrame(ends[rows], index=[names[i] for i in rows], columns=[lo, hi])

    def profile(self, parm: str | list[str] | None = None, level: float | None = None,
                points: int = 8, *, alphamax: float | None = None) -> pd.DataFrame:
        """lme4's profile(): the signed root deviance ζ over each parameter, from the lower
        to the upper end of its ``level`` interval (default 0.99: lme4 profiles to
        alphamax = 0.01; ``alphamax=`` is accepted as lme4 spells it), ``points`` values each
        side of the estimate. Long format: parameter, value, zeta; ``lmerpy.plot.profile``
        draws it."""
        if level is not None:
            require_probability("level", level, "0.99")
        if alphamax is not None:
            require_probability("alphamax", alphamax, "0.01")
            if level is not None and not np.isclose(level, 1 - alphamax):
                raise ModelError(f"give level or alphamax, not both: level={level!r} and "
                                 f"alphamax={alphamax!r} disagree (level = 1 - alphamax)")
            level = 1 - alphamax
        level = 0.99 if level is None else level
        require_whole("points", points, 1)
        self._check_profile("profiles")
        names = self._confint_names
        rows = self._confint_rows(parm, names)
        traces = profile_points(self.fit, rows, level, points, names)
        return pd.DataFrame([(names[i], x, z) for i, (xs, zs) in zip(rows, traces)
                             for x, z in zip(xs, zs)], columns=["parameter", "value", "zeta"])

    @property
    def _default_confint(self) -> str:
        return "Wald" if self.torch_info is not None else "profile"

    @property
    def _confint_names(self) -> list[str]:
        """lme4's row names (oldNames): .sig01, ... per θ element, .sigma, the fixed effects."""
        k = len(self.theta)
        return [f".sig{i + 1:02d}" for i in range(k)] + [".sigma"] + self.fixef_names

    def _confint_rows(self, parm, names: list[str]) -> list[int]:
        n_var = len(names) - len(self.fixef_names)
        if parm is None:
            return list(range(len(names)))
        if parm == "theta_":
            return list(range(n_var))
        if parm == "beta_":
            return list(range(n_var, len(names)))
        wanted = [parm] if isinstance(parm, str) else list(parm)
        unknown = [p for p in wanted if p not in names]
        if unknown or not wanted:
            raise ModelError(f"parm must name parameters of the model ({', '.join(names)}), "
                             f"or be 'theta_' or 'beta_'; unknown: {unknown or wanted!r}")
        return [names.index(p) for p in wanted]

    def _check_profile(self, what: str = "profile intervals") -> None:
        self._check_exact(what)

    def _check_exact(self, what: str) -> None:
        if self.torch_info is not None:
            raise ModelError(f"{what} need an exact fit: a torch-engine fit's network is "
                             f"not refitted by them; use method='Wald', or refit a formula "
                             f"without nn() terms with engine='exact'")

    def _estimates(self) -> np.ndarray:
        """The estimates in the order of ``_confint_names``."""
        return np.concatenate([self.design.sdcor(self.theta, self.sigma),
                               self.fixef().to_numpy()])

    def simulate(self, nsim: int = 1, seed=None, use_u: bool = False) -> pd.DataFrame:
        """Responses simulated from the fitted model (lme4's simulate()): new random effects
        for each (``use_u=True`` keeps the fitted ones), columns sim_1, ..., sim_nsim. A
        GLMM draws from its family; for a cbind() response the columns are successes."""
        require_whole("nsim", nsim, 1)
        require_flag("use_u", use_u)
        ys = simulate(self.fit, nsim, seed, bool(use_u))
        return pd.DataFrame(ys, index=self.design.index,
                            columns=[f"sim_{i + 1}" for i in range(nsim)])

    def hatvalues(self) -> pd.Series:
        """lme4's ``hatvalues(m)``: the diagonal of the hat matrix H, fitted = H y, with
        M = W^½[X ZΛ]: H = M (M'M + diag(0, I))⁻¹ M' (the penalised least squares of lme4's
        JSS eq. 11 at θ̂; dense in the p + q columns); sum(H) is the model's effective number
        of parameters."""
        if self.torch_info is not None:
            raise ModelError("hatvalues() needs an exact fit (a network's fitted values are "
                             "not linear in y)")
        if self.family is not None:
            warn("the hat matrix may not make sense for GLMMs (lme4's warning)")
        return pd.Series(self._hat(), index=self.design.index, name="hatvalues")

    def _hat(self) -> np.ndarray:
        """The hat values; for a GLMM those of the last PIRLS step, whose weights are the
        working weights W = w μ'(η)² / (φ V(μ)) (R's hatvalues of a glm; lme4 takes √w of
        the prior weights with that step's factor, which can give values above 1)."""
        f, d = self.fit, self.design
        M = np.hstack([f.X, (d.Z @ d.Lambda(f.theta)).toarray() if d.random
                       else np.zeros((self.nobs, 0))])
        if self.family is not None:
            w = pearson_weights(f) * self.family.link.mu_eta(f.eta) ** 2 / (
                f.phi if self.family.has_dispersion else 1.0)
        else:
            w = np.ones(self.nobs) if f.weights is None else np.asarray(f.weights, float)
        M = M * np.sqrt(w)[:, None]
        A = M.T @ M
        A[f.X.shape[1]:, f.X.shape[1]:] += np.eye(M.shape[1] - f.X.shape[1])
        return np.einsum("ij,ji->i", M, np.linalg.solve(A, M.T))

    def bootMer(self, FUN, nsim: int = 100, seed=None, use_u: bool = False) -> pd.DataFrame:
        """lme4's ``bootMer(m, FUN, nsim)``: ``FUN`` of the model refitted (``refit``) to each
        of ``nsim`` responses simulated from it, a row per replicate and a column per value
        FUN returns (named by its index, if a Series); ``.attrs["t0"]`` is FUN of the model
        itself, as boot's t0."""
        if not callable(FUN):
            raise ModelError(f"FUN must be a function of a fitted model, not "
                             f"{type(FUN).__name__}")
        value = FUN(self)
        t0 = pd.Series(value) if np.ndim(value) else pd.Series([value])
        sims = self.simulate(nsim, seed=seed, use_u=use_u)
        rows = []
        with warnings.catch_warnings():  # singular refits are expected among replicates
            warnings.simplefilter("ignore")
            for column in sims.columns:
                rows.append(np.atleast_1d(np.asarray(FUN(self.refit(sims[column])),
                                                     dtype=np.float64)))
        out = pd.DataFrame(rows, columns=t0.index, index=sims.columns)
        out.attrs["t0"] = t0
        return out

    # -- prediction --------------------------------------------------------------------------
    def predict(self, newdata: pd.DataFrame | None = None, re_form: str | None = None,
                allow_new_levels: bool = False, na_action: str = "pass") -> pd.Series:
        """Predictions; ``re_form="~0"`` (or "NA") gives population-level predictions, a
        formula such as ``"~(1 | Subject)"`` keeps only those random terms. Rows of
        ``newdata`` with a missing value in a used column predict NaN (``na_action="pass"``,
        lme4's na.pass), or are dropped with a warning ("omit"), or refused ("raise")."""
        require_flag("allow_new_levels", allow_new_levels)
        keep = self._re_terms(re_form)
        f = self.fit
        if newdata is None:
            eta = f.X @ f.solution.beta + f.offset
            start = 0
            for k, r in enumerate(self.design.random):
                width = r.q * r.p
                if k in keep:
                    eta = eta + r.Z @ f.b[start:start + width]
                start += width
            return pd.Series(eta, index=self.design.index, name="predict")
        nd = self.design.for_new_data(newdata, na_action)  # checks newdata is a DataFrame
        if nd is None:
            return pd.Series(np.nan, index=newdata.index, name="predict")
        Xn = nd.X[:, [self.design.X_names.index(n) for n in f.fixef_names]]
        eta = Xn @ f.solution.beta + (nd.offset if nd.offset is not None else 0.0)
        if self.torch_info is not None and self.torch_info["nn_predict"] is not None:
            eta = eta + self.torch_info["nn_predict"](nd.nn)
        start = 0
        thetas = self.design.split_theta(self.theta)
        for k, r in enumerate(self.design.random):
            width = r.q * r.p
            if k in keep and nd.coords[k] is not None:  # spatial: kriging at new locations
                b_k = f.b[start:start + width]
                new = nd.codes[k] < 0
                eta = eta + nd.random[k] @ b_k
                if new.any():
                    eta[new] += r.cov.krige(b_k, nd.coords[k][new], thetas[k],
                                            self._kriging_weights(k, b_k, thetas[k]))
            elif k in keep:
                unseen = nd.unseen.get(r.group)
                if unseen and not allow_new_levels:
                    raise DataError(f"new levels in grouping factor '{r.group}': "
                                    f"{', '.join(unseen[:10])}; use allow_new_levels=True "
                                    f"to predict them at the population level")
                eta = eta + nd.random[k] @ f.b[start:start + width]
            start += width
        if na_action == "pass":
            full = np.full(len(nd.kept), np.nan)
            full[nd.kept] = eta
            return pd.Series(full, index=newdata.index, name="predict")
        return pd.Series(eta, index=nd.index, name="predict")

    def _re_terms(self, re_form: str | None) -> set[int]:
        everything = set(range(len(self.design.random)))
        if re_form is None:
            return everything
        text = str(re_form).strip()
        if text in {"NA", "~0", "~ 0", "0"}:
            return set()
        wanted = parse(text if "~" in text else f"~{text}")
        keys = {_term_key(t) for t in (*wanted.random, *wanted.rbf)}
        chosen = {k for k, r in enumerate(self.design.random) if _term_key(r.term) in keys}
        if len(chosen) != len(keys):
            raise FormulaError(f"re_form {re_form!r} names random terms not in the model")
        return chosen

    def getME(self, name: str):
        """lme4's ``getME(m, name)``: the model's pieces by lme4's names — "X", "Z", "Zt",
        "Lambda", "Lambdat", "theta" (named as lme4), "lower", "beta", "b", "u", "y", "mu",
        "offset", "sigma", "is_REML", "n_rtrms", "cnms", "flist", "Gp", "p", "q", "n",
        "RX", "Tlist" (each grouped term's p × p block of Λ), "glmer.nb.theta". Sparse
        matrices are scipy's."""
        d, f = self.design, self.fit

        def lam():
            return d.Lambda(f.theta) if d.random else None

        pieces = {
            "X": lambda: pd.DataFrame(f.X, columns=list(f.fixef_names), index=d.index),
            "Z": lambda: d.Z, "Zt": lambda: d.Z.T.tocsr(),
            "Lambda": lam, "Lambdat": lambda: lam().T.tocsr(),
            "theta": lambda: pd.Series(f.theta, index=d.theta_names(), name="theta"),
            "lower": lambda: pd.Series(d.theta_lower(), index=d.theta_names(), name="lower"),
            "beta": lambda: f.solution.beta.copy(), "b": lambda: f.b.copy(),
            "u": lambda: self._spherical(lam()),
            "y": lambda: np.asarray(f.y, dtype=np.float64).copy(),
            "mu": lambda: self.fitted().to_numpy(), "offset": lambda: f.offset.copy(),
            "sigma": lambda: self.sigma, "is_REML": lambda: self.REML,
            "n_rtrms": lambda: len(d.random),
            "cnms": lambda: dict(zip(make_unique([r.group for r in d.random]),
                                     [list(r.names) for r in d.random])),
            "flist": lambda: pd.DataFrame({r.group: pd.Categorical.from_codes(
                r.codes, r.levels) for r in d.random if r.encoder is not None}, index=d.index),
            "Gp": lambda: np.cumsum([0] + [r.n_columns for r in d.random]),
            "p": lambda: f.X.shape[1], "q": lambda: d.Z.shape[1], "n": lambda: self.nobs,
            "RX": lambda: f.solution.RX.copy(),
            "Tlist": lambda: self._tlist(),
            "glmer.nb.theta": lambda: self._nb_theta(),
        }
        if name not in pieces:
            raise ModelError(f"getME() knows {', '.join(repr(k) for k in pieces)}; not "
                             f"{name!r}")
        return pieces[name]()

    def _tlist(self) -> dict[str, np.ndarray]:
        """getME(m, "Tlist"): each grouped term's block of Λ, by (made unique) group."""
        templates = self._templates()
        return dict(zip(make_unique([g for g, _, _ in templates]),
                        [T for _, _, T in templates]))

    def _spherical(self, lam) -> np.ndarray:
        """u with b = Λu (lme4's spherical random effects)."""
        if self.fit.solution.u is not None:
            return self.fit.solution.u.copy()
        return sp.linalg.spsolve(lam.tocsc(), self.fit.b) if lam is not None else np.zeros(0)

    def _nb_theta(self) -> float:
        family = getattr(self, "family", None)
        if family is None or family.family != "negative.binomial":
            raise ModelError("getME(, 'glmer.nb.theta') needs a negative binomial fit "
                             "(lp.glmer_nb)")
        return family.theta

    # -- refitting ---------------------------------------------------------------------------
    def refit(self, newresp=None, *, REML: bool | None = None) -> LmerResult:
        """lme4's ``refit()``: the same model fitted to the response ``newresp`` from θ̂ (a
        value per observation used, a value per row of the data the model was given, the
        rows dropped for missing values included, or a column of ``simulate()``); ``REML=``
        fits by that criterion (lme4's ``refitML``, which ``anova`` uses)."""
        if REML is not None:
            require_flag("REML", REML)
        REML = self.REML if REML is None else bool(REML)
        if newresp is None and REML == self.REML:
            return self
        if self.torch_info is not None:
            raise ModelError(
                "anova() of torch-engine fits is not available: their networks are not "
                "nested models" if newresp is None else
                "refit(newresp) of a torch-engine fit would train its network anew: call "
                "lmer() again on the new response (with the same seed= for the same start)")
        design, data = self._with_response(newresp)
        fit = fit_lmer(design, REML=REML, weights=self.fit.weights, start=self.theta,
                       control=self._quiet_control())
        return LmerResult(fit, self.data_name, self.weights_name, data)

    def _quiet_control(self):
        """The fit's own optimiser settings for a refit, without its verbose printing."""
        control = self.fit.optinfo.get("control")
        return None if control is None else replace(control, verbose=0)

    def _with_response(self, newresp) -> tuple:
        """The design with ``newresp`` as its response, and the data frame to keep with the
        refit: the response column replaced where the response is a column, else none."""
        if newresp is None:
            return self.design, self._data
        y = self._response_values(newresp)
        design = replace(self.design, y=self._as_design_response(y))
        response = self.formula.response
        data = self._data
        if data is not None and getattr(response, "id", None) in data.columns:
            data = data.copy()
            data.loc[self.design.index, response.id] = y
        elif data is not None:
            data = None  # a response expression cannot be put back: save() will say so
        return design, data

    def _response_values(self, newresp) -> np.ndarray:
        """newresp as one finite number per observation used (lme4 drops the values of rows
        dropped for missing values, when given one per row of the data)."""
        if isinstance(newresp, pd.DataFrame):
            if newresp.shape[1] != 1:
                raise DataError(f"newresp has {newresp.shape[1]} columns; refit one response "
                                f"at a time, e.g. sims['sim_1']")
            newresp = newresp.iloc[:, 0]
        try:
            y = np.asarray(newresp, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise DataError(f"newresp must be numbers: {err}") from None
        n, dropped = self.nobs, self.design.n_dropped
        if y.ndim != 1:
            raise DataError(f"newresp must be one value per observation, not shape {y.shape}")
        if len(y) == n + dropped and dropped and self._data is not None:
            y = y[self._data.index.get_indexer(self.design.index)]
        elif len(y) != n:
            rows = f" ({n + dropped} with the rows dropped for missing values)" \
                if dropped else ""
            raise DataError(f"newresp has {len(y)} values; the model has {n} observations"
                            f"{rows}")
        bad = np.flatnonzero(~np.isfinite(y))
        if len(bad):
            raise DataError(f"newresp has {len(bad)} missing or infinite value(s) (first at "
                            f"position {bad[0]}): refit needs a response for every "
                            f"observation")
        return y

    def _as_design_response(self, y: np.ndarray) -> np.ndarray:
        """The response as the design holds it (a GLMM's cbind() keeps two columns)."""
        return y

    # -- output ------------------------------------------------------------------------------
    def save(self, path) -> None:
        """Write the fitted model to ``path`` (read it back with ``lmerpy.load``)."""
        from ..io import save

        save(self, path)

    def summary(self, ddf: str | None = None) -> Summary:
        """lme4's ``summary(m)``; ``ddf="Satterthwaite"`` gives lmerTest's, with degrees of
        freedom and p-values for the fixed effects' t-tests."""
        if ddf not in (None, "lme4", "Satterthwaite", "Kenward-Roger"):
            raise ModelError(f"ddf must be 'Satterthwaite', 'Kenward-Roger' or 'lme4', not "
                             f"{ddf!r}")
        if ddf == "Satterthwaite":
            self._check_satterthwaite()
        if ddf == "Kenward-Roger":
            self._kenward_roger  # noqa: B018 - checks the model, as lmerTest does first
        return Summary(self, None if ddf == "lme4" else ddf)

    def _check_satterthwaite(self) -> None:
        if self.family is not None or self.torch_info is not None:
            raise ModelError("Satterthwaite's degrees of freedom are for linear mixed models "
                             "fitted by the exact engine (lmerTest's t-tests)")

    def kenward_roger(self, L=None) -> tuple[np.ndarray, np.ndarray]:
        """Kenward and Roger's adjusted covariance of β̂ (pbkrtest's vcovAdj) and the
        denominator degrees of freedom (its Lb_ddf) for each fixed effect, or each row of a
        contrast matrix ``L``: lmerTest's ddf="Kenward-Roger"."""
        kr = self._kenward_roger
        p = len(self.fixef_names)
        L = np.eye(p) if L is None else np.atleast_2d(np.asarray(L, dtype=np.float64))
        if L.shape[1] != p:
            raise ModelError(f"L must have {p} columns (one per fixed effect), not "
                             f"{L.shape[1]}")
        return kr.phi_adjusted, np.array([kr.df(row) for row in L])

    @cached_property
    def _kenward_roger(self):
        self._check_satterthwaite()
        if not self.REML:
            raise ModelError("Kenward-Roger's method is only available for REML fits (as "
                             "lmerTest's); refit with REML=True")
        vc = self.VarCorr()
        if any(t.lengthscale is not None for t in vc.terms):
            raise ModelError("Kenward-Roger's method needs grouped random terms, not rbf()")
        X, Zs = self.fit.X, [r.Z for r in self.design.random]
        w = self.fit.weights
        if w is not None:
            # Σ = ZGZ' + σ²W⁻¹: y, X and Z times √w give a model with the same estimates and
            # Σ̃ = W^½ΣW^½, to which every quantity of Kenward-Roger's is invariant; rows of
            # weight 0 carry no information (pbkrtest ignores weights: its Σ is σ²I + ZGZ')
            keep = w > 0
            sw = np.sqrt(w[keep])
            X = X[keep] * sw[:, None]
            Zs = [sp.diags(sw) @ Z.tocsr()[keep] for Z in Zs]
        marginal = marginal_covariance(Zs, [t.cov for t in vc.terms], self.sigma**2)
        return adjusted_vcov(X, self.fit.beta_vcov(), marginal)

    def satterthwaite_df(self, L=None) -> np.ndarray:
        """Satterthwaite's denominator degrees of freedom (lmerTest's) for the t-test of
        each fixed effect, or of each row of a contrast matrix ``L`` (p columns)."""
        self._check_satterthwaite()
        p = len(self.fixef_names)
        L = np.eye(p) if L is None else np.atleast_2d(np.asarray(L, dtype=np.float64))
        if L.shape[1] != p:
            raise ModelError(f"L must have {p} columns (one per fixed effect), not "
                             f"{L.shape[1]}")
        d = self._varpar_derivatives
        V = self.fit.beta_vcov()
        return np.array([d.df(row, V) for row in L])

    @cached_property
    def _varpar_derivatives(self):
        """φ = (θ, σ)'s asymptotic covariance and Cov(β̂)'s Jacobian (lmerTest's), with
        lmerTest's warnings where the Hessian is not clearly positive definite."""
        d = derivatives(self.fit.pls, self.theta, self.sigma, self.REML)
        for values, what in ((d.negative, "failed to converge with {} negative {}"),
                             (d.near_zero, "may not have converged with {} {} close to zero")):
            if len(values):
                word = "eigenvalues" if len(values) > 1 else "eigenvalue"
                warn(f"Model {what.format(len(values), word)}: "
                     f"{' '.join(f'{v:.1e}' for v in values)} (the Hessian of the deviance "
                     f"in θ and σ, for Satterthwaite's df)", ConvergenceWarning)
        return d

    def __repr__(self) -> str:
        """lme4's ``print(m)``: the short display (``summary()`` has the rest; a notebook
        shows the summary)."""
        return "\n".join(print_lines(self))

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()

    def __rich__(self):
        return self.summary().__rich__()


__all__ = ["LmerResult", "LogLik", "Ranef"]
