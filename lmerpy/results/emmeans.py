"""emmeans for lmerpy fits: estimated marginal means on the reference grid
(``results/reference_grid.py``) and contrasts among them, with emmeans' degrees of freedom
(Kenward-Roger by default for linear mixed models, Satterthwaite's, or asymptotic; z tests
for GLMMs), its multiplicity adjustments (``results/adjust.py``), GLMM results on the link
or the response scale, and its printed tables (``results/emm_print.py``)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats as st

from ..engines.options import require_probability
from ..errors import ModelError, warn
from ..formula import nodes as N
from . import adjust as adj
from .emm_contrasts import as_character, coefficients, contrast_labels
from .emm_print import summary_lines
from .emm_scale import Scale, model_scale
from .emm_specs import names_of, parse_specs
from .reference_grid import ReferenceGrid, reference_grid
from .rformat import cat_number

# emmeans' defaults (emm_options pbkrtest.limit and lmerTest.limit): above this many
# observations the degrees of freedom are asymptotic unless asked for
DF_LIMIT = 3000
DF_METHODS = ("kenward-roger", "satterthwaite", "asymptotic")


@dataclass(frozen=True)
class Basis:
    """What every table of one model shares: β̂, its covariance V (Kenward-Roger's adjusted
    one under that method), the degrees of freedom of ℓ'β̂, their method's name (None for
    GLMMs, whose tests are z tests), the scale of the linear predictor (a GLMM's link, a
    transformed response; None for the response's own), and the factors averaged over.
    A fit that dropped aliased columns keeps β̂ on the columns it kept (``kept``), and
    ``null`` spans the full model matrix's null space: a row ℓ of L with a part in it is
    not estimable (emmeans' nonEst)."""

    beta: np.ndarray
    V: np.ndarray
    df: Callable[[np.ndarray], np.ndarray]
    method: str | None
    scale: Scale | None
    averaged: tuple[str, ...]
    kept: np.ndarray | None = None
    null: np.ndarray | None = None

    def f_test(self, L: np.ndarray) -> tuple[float, int, float]:
        """emmeans' joint test of Lβ = 0 (its test(joint = TRUE)): the rows of L made
        orthonormal by the QR decomposition of L' (Q's columns, in L's row order); F the
        Wald statistic on V over their number; the denominator df the least of the rows'
        own (single-contrast) df."""
        L = L[:, self.kept] if self.kept is not None else L
        L = np.where(np.abs(L) < 1e-7, 0.0, L)
        Q, R = np.linalg.qr(L.T)
        keep = np.abs(np.diag(R)) > 1e-7 * max(1.0, np.abs(R).max())
        Q = Q[:, keep].T
        b = Q @ self.beta
        F = float(b @ np.linalg.solve(Q @ self.V @ Q.T, b)) / len(Q)
        return F, len(Q), float(np.min(self.df(Q)))

    def estimate(self, L: np.ndarray, offset: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """ℓ'β̂ (plus the offset), its standard error and degrees of freedom for each row
        of L (NaN where ℓ'β is not estimable)."""
        ok = np.ones(len(L), dtype=bool)
        if self.null is not None:  # estimability::is.estble, tol 1e-8
            check = L @ self.null
            ok = np.sum(check**2, axis=1) < 1e-8 * np.sum(L**2, axis=1)
            L = L[:, self.kept]
        est, se, df = (np.full(len(L), np.nan) for _ in range(3))
        Lk = L[ok]
        se[ok] = np.sqrt(np.einsum("ij,jk,ik->i", Lk, self.V, Lk))
        est[ok] = Lk @ self.beta + offset[ok]
        df[ok] = self.df(Lk) if len(Lk) else []
        return est, se, df

    def correlation(self, L: np.ndarray) -> np.ndarray:
        """The correlation of the estimates ℓ'β̂ of L's rows (all estimable)."""
        L = L[:, self.kept] if self.kept is not None else L
        C = L @ self.V @ L.T
        sd = np.sqrt(np.diag(C))
        return C / np.outer(sd, sd)

    def messages(self) -> list[str]:
        out = [f"Results are averaged over the levels of: {', '.join(self.averaged)}"] \
            if self.averaged else []
        return out + ([f"Degrees-of-freedom method: {self.method}"] if self.method else [])


class EmmGrid:
    """Estimated marginal means: one row per combination of the ``specs`` (within each
    ``by`` group), each an average over the reference grid's other factors (``L``'s rows),
    as emmeans' emmGrid. ``.table`` holds them as a DataFrame; ``pairs()`` and
    ``contrast()`` compare them."""

    def __init__(self, basis: Basis, levels: pd.DataFrame, L: np.ndarray, offset: np.ndarray,
                 specs: list[str], by: list[str], numeric: set[str], level: float = 0.95,
                 type: str = "link", estimate: str = "emmean"):
        self.basis, self.levels, self.L, self.offset = basis, levels, L, offset
        self.specs, self.by, self.numeric = specs, by, numeric
        self.level, self.type, self.estimate = level, type, estimate

    @property
    def table(self) -> pd.DataFrame:
        est, se, df = self.basis.estimate(self.L, self.offset)
        cv = st.t.ppf(0.5 + self.level / 2, df)
        lower, upper = est - cv * se, est + cv * se
        name = self.estimate
        if self._response:
            scale = self.basis.scale
            name = scale.response_name
            se = se * np.abs(scale.derivative(est))
            est, a, b = scale.inverse(est), scale.inverse(lower), scale.inverse(upper)
            # a decreasing link (inverse, 1/mu^2) swaps the ends, which emmeans reorders
            lower, upper = np.minimum(a, b), np.maximum(a, b)
        lo, hi = _ci_names(df)
        table = self.levels.copy()
        for column, values in ((name, est), ("SE", se), ("df", df), (lo, lower), (hi, upper)):
            table[column] = values
        return table

    def to_frame(self) -> pd.DataFrame:
        return self.table

    def confint(self, level: float = 0.95) -> EmmGrid:
        """The same means with ``level`` confidence intervals."""
        require_probability("level", level, "0.95")
        grid = copy.copy(self)
        grid.level = level
        return grid

    def pairs(self, reverse: bool = False, adjust: str | None = None,
              type: str | None = None) -> EmmContrasts:
        """Every pairwise difference within each ``by`` group (``reverse``: later level
        minus earlier), Tukey-adjusted by default, as emmeans' pairs()."""
        return self.contrast("revpairwise" if reverse else "pairwise", adjust=adjust,
                             type=type)

    def contrast(self, method="eff", by: list[str] | str | None | type(...) = ...,
                 adjust: str | None = None, type: str | None = None, ref=1,
                 reverse: bool = False, interaction: str | list | None = None
                 ) -> EmmContrasts:
        """Contrasts of the means within each ``by`` group (default: the grid's own):
        ``method`` is one of emmeans' "pairwise", "revpairwise", "trt.vs.ctrl" (``ref``: the
        control, a position from 1 or a level), "trt.vs.ctrl1", "trt.vs.ctrlk", "eff",
        "del.eff", "poly", "consec", or a dict {name: coefficients}. ``interaction`` (a
        method, or one per variable) gives emmeans' interaction contrasts instead: the
        product of each variable's contrasts, unadjusted by default."""
        by = self.by if by is ... else ([] if by is None else names_of(by))
        unknown = [b for b in by if b not in self.levels.columns]
        if unknown:
            raise ModelError(f"by: {unknown[0]!r} is not one of the grid's variables "
                             f"({', '.join(self.levels.columns)})")
        inner = [c for c in self.levels.columns if c not in by]
        groups = by_groups(self.levels, by)
        if interaction is None:
            labels = contrast_labels(self.levels[inner], inner)
            coef, names, default_adjust, pairs = coefficients(
                method, labels[groups[0]], ref, reverse)
            names = {"contrast": names}
        else:
            coef, names = self._interaction(inner, groups[0], interaction, ref, reverse)
            default_adjust, pairs = "none", False
        rows, offsets, frames, families = [], [], [], []
        for group in groups:
            if len(group) != coef.shape[1]:
                raise ModelError("by groups of unequal size cannot be contrasted")
            rows.append(coef @ self.L[group])
            offsets.append(coef @ self.offset[group])
            frame = pd.DataFrame(names)
            for b in by:
                frame[b] = self.levels[b].iloc[group[0]]
            frames.append(frame)
            families.append(adj.Family(size=len(group), n=len(coef), pairs=pairs,
                                       rank=int(np.linalg.matrix_rank(coef))))
        response = self._response if type is None else (
            _check_type(type) == "response" and self.estimate == "emmean"
            and self.basis.scale is not None)
        mode = "link" if not response else (
            "ratio" if self.basis.scale.ratio_base is not None else "still")
        return EmmContrasts(self.basis, pd.concat(frames, ignore_index=True),
                            np.vstack(rows), np.concatenate(offsets), by, families,
                            adjust or default_adjust, mode=mode)

    def _interaction(self, inner: list[str], group: np.ndarray, methods, ref, reverse
                     ) -> tuple[np.ndarray, dict[str, list[str]]]:
        """emmeans' contrast(interaction=): each variable's contrasts (the means ordered
        with the first variable fastest), their Kronecker product, and a label column per
        variable named ``variable_method``."""
        methods = [methods] * len(inner) if isinstance(methods, str) else list(methods)
        if len(methods) < len(inner):
            methods = (methods * len(inner))[:len(inner)]
        coef, columns = np.ones((1, 1)), {}
        for v, method in zip(inner, methods):
            levels = np.array([as_character(x) for x in dict.fromkeys(
                self.levels[v].iloc[group])], dtype=object)
            c, names, _, _ = coefficients(method, levels, ref, reverse)
            # the new variable's contrast varies slowest: repeat the earlier labels
            columns = {k: vals * len(names) for k, vals in columns.items()}
            columns[f"{v}_{method}"] = [n for n in names for _ in range(len(coef))]
            coef = np.kron(c, coef)
        return coef, columns

    @property
    def _response(self) -> bool:
        return self.type == "response" and self.estimate == "emmean" \
            and self.basis.scale is not None

    def _messages(self) -> list[str]:
        out = self.basis.messages()
        scale = self.basis.scale
        if scale is not None and not self._response and self.estimate == "emmean":
            out.append(f"Results are given on the {scale.name} (not the response) scale.")
        out.append(f"Confidence level used: {cat_number(self.level)}")
        if self._response:
            out.append(f"Intervals are back-transformed from the {scale.name} scale")
        return out

    def __str__(self) -> str:
        table = self.table
        estimate = table.columns[len(self.levels.columns)]
        return "\n".join(summary_lines(table, estimate, self.by, self._messages(),
                                       self.numeric))

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return self.table.to_html(index=False)


class EmmContrasts:
    """Contrasts of estimated marginal means with their t (or z) tests, adjusted for
    multiplicity within each ``by`` group, as emmeans' contrast(); ``confint()`` gives
    their (adjusted) confidence intervals, ``summary(infer=True)`` both. ``mode``: "link"
    (differences on the model's scale), "ratio" (on a log scale, back-transformed to
    ratios) or "still" (the response scale asked for, but differences stay on the scale)."""

    def __init__(self, basis: Basis, levels: pd.DataFrame, L: np.ndarray, offset: np.ndarray,
                 by: list[str], families: list[adj.Family], adjust: str, mode: str = "link",
                 level: float = 0.95, infer: tuple[bool, bool] = (False, True)):
        self.basis, self.levels, self.L, self.offset, self.by = basis, levels, L, offset, by
        self.families, self.adjust, self.mode = families, adjust, mode
        self.level, self.infer = level, infer
        self._p_adjust = [adj.resolve(adjust, f) for f in families]

    def confint(self, level: float = 0.95, adjust: str | None = None) -> EmmContrasts:
        """The contrasts with confidence intervals (adjusted as the tests, by default)."""
        require_probability("level", level, "0.95")
        return self._with(level=level, adjust=adjust, infer=(True, False))

    def summary(self, infer: bool | tuple[bool, bool] = (False, True), level: float = 0.95,
                adjust: str | None = None) -> EmmContrasts:
        """``infer=True`` shows intervals and tests, ``(True, False)`` intervals only."""
        infer = (bool(infer), bool(infer)) if isinstance(infer, bool) else tuple(infer)
        return self._with(level=level, adjust=adjust, infer=infer)

    def _with(self, level, adjust, infer) -> EmmContrasts:
        return EmmContrasts(self.basis, self.levels, self.L, self.offset, self.by,
                            self.families, adjust or self.adjust, self.mode, level, infer)

    @property
    def ratio(self) -> bool:
        return self.mode == "ratio"

    def _rows(self) -> list[np.ndarray]:
        """Each family's rows of the table."""
        return by_groups(self.levels, self.by)

    @property
    def table(self) -> pd.DataFrame:
        est, se, df = self.basis.estimate(self.L, self.offset)
        t = est / se
        table = self.levels.copy()
        name = "estimate"
        if self.ratio:
            base = self.basis.scale.ratio_base
            name = self.basis.scale.ratio_name
            table["contrast"] = [c.replace(" - ", " / ") for c in table["contrast"]]
        values = {name: base**est if self.ratio else est,
                  "SE": base**est * np.log(base) * se if self.ratio else se, "df": df}
        if self.infer[0]:
            lo, hi = _ci_names(df)
            lower, upper = np.empty(len(est)), np.empty(len(est))
            for rows, family, p_method in zip(self._rows(), self.families, self._p_adjust):
                family = self._with_correlation(family, p_method, rows, t)
                cv, _ = adj.critical_values(self.level, df[rows], p_method, family)
                lower[rows], upper[rows] = est[rows] - cv * se[rows], est[rows] + cv * se[rows]
            if self.ratio:
                lower, upper = base**lower, base**upper
            values.update({lo: lower, hi: upper})
        if self.infer[1]:
            p = np.empty(len(est))
            for rows, family, method in zip(self._rows(), self.families, self._p_adjust):
                family = self._with_correlation(family, method, rows, t)
                p[rows] = adj.adjusted_p(t[rows], df[rows], method, family)
            if self.ratio:
                values["null"] = np.ones(len(est))
            values["t.ratio" if np.isfinite(df).any() else "z.ratio"] = t
            values["p.value"] = p
        for column, v in values.items():
            table[column] = v
        return table

    def _with_correlation(self, family: adj.Family, method: str, rows: np.ndarray,
                          t: np.ndarray) -> adj.Family:
        """The family with its estimable contrasts' correlation, which "mvt" integrates."""
        if method != "mvt":
            return family
        ok = rows[np.isfinite(t[rows])]
        return replace(family, corr=self.basis.correlation(self.L[ok]))

    def to_frame(self) -> pd.DataFrame:
        return self.table

    def _messages(self) -> list[str]:
        out = self.basis.messages()
        scale = self.basis.scale and self.basis.scale.differences
        if self.mode == "still":
            out.insert(0, f"Note: contrasts are still on the {scale} scale")
        elif self.mode == "link" and scale is not None:
            out.append(f"Results are given on the {scale} (not the response) scale.")
        family = self.families[0]
        if self.infer[0]:
            out.append(f"Confidence level used: {cat_number(self.level)}")
            out.append(adj.ci_message(self._p_adjust[0], family))
            if self.ratio:
                out.append(f"Intervals are back-transformed from the {scale} scale")
        if self.infer[1]:
            out.append(adj.p_message(self._p_adjust[0], family))
            if self.ratio:
                out.append(f"Tests are performed on the {scale} scale")
        return [m for m in dict.fromkeys(out) if m]

    def __str__(self) -> str:
        table = self.table
        estimate = table.columns[len(self.levels.columns)]
        return "\n".join(summary_lines(table, estimate, self.by, self._messages(), set()))

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return self.table.to_html(index=False)


@dataclass
class EmmList:
    """``emmeans(m, "pairwise ~ A")``: the means and their contrasts, as emmeans' list."""

    emmeans: EmmGrid
    contrasts: EmmContrasts

    def __str__(self) -> str:
        return "\n".join(["$emmeans", str(self.emmeans), "", "$contrasts",
                          str(self.contrasts), ""])

    def __repr__(self) -> str:
        return str(self)


def emmeans(m, specs, by: list[str] | str | None = None, at: dict | None = None,
            type: str = "link", lmer_df: str | None = None, level: float = 0.95,
            adjust: str | None = None, offset: float | None = None,
            weights: str = "equal") -> EmmGrid | EmmList:
    """Estimated marginal means of ``m`` for the variables in ``specs`` (``"~ A"``,
    ``"~ A * B | C"``, ``"pairwise ~ A"``, ``"~ 1"``, or a list of names), within each
    ``by`` group; numeric variables at their means or at the values in ``at``. Linear mixed
    models get Kenward-Roger's degrees of freedom up to 3,000 observations
    (Satterthwaite's for weighted fits), as emmeans; ``lmer_df`` chooses
    ("satterthwaite", "asymptotic"). GLMMs give z tests; ``type="response"``
    back-transforms through the link. A model's offset enters at its mean over the data,
    as emmeans' (``offset=0``: rates per unit of exposure). ``weights`` averages over the
    other factors as emmeans' "equal", "proportional", "outer", "cells" or "flat"."""
    return _emmeans(m, specs, by, at, _check_type(type), lmer_df, level, adjust,
                    offset=offset, weights=weights)


def emtrends(m, specs, var: str, by: list[str] | str | None = None, at: dict | None = None,
             lmer_df: str | None = None, level: float = 0.95, adjust: str | None = None,
             delta_var: float | None = None, weights: str = "equal") -> EmmGrid | EmmList:
    """emmeans' emtrends: the slope of the linear predictor in the numeric variable ``var``
    for each combination of ``specs`` (averaged as ``emmeans``), by emmeans' forward
    difference over ``delta_var`` (default: 0.001 of the data's range of ``var``), so a
    slope that depends on ``var`` (``I(x^2)``) is the one emmeans reports."""
    return _emmeans(m, specs, by, at, "link", lmer_df, level, adjust, trend=(var, delta_var),
                    weights=weights)


def _emmeans(m, specs, by, at, type, lmer_df, level, adjust, trend=None, offset=None,
             weights="equal"):
    method, spec_vars, spec_by = parse_specs(specs)
    by_vars = spec_by + (names_of(by) if by is not None else [])
    require_probability("level", level, "0.95")
    names = list(dict.fromkeys(spec_vars + by_vars))
    if len(names) < len(spec_vars) + len(by_vars):
        raise ModelError("emmeans(): a variable appears in both specs and by")
    rg = reference_grid(m, at, offset)
    unknown = [v for v in names if v not in rg.levels]
    if unknown:
        raise ModelError(f"emmeans(): {unknown[0]!r} is not a variable of the fixed part "
                         f"({', '.join(rg.levels) or 'it has none'})")
    basis = make_basis(m, rg, names, lmer_df)
    L, combos = rg.cell_means(names, weights)
    offsets = rg.cell_offsets(names, weights)
    estimate = "emmean"
    if trend is None:
        _note_interactions(m, rg, names)
    else:
        L, offsets, estimate = _trend(m, rg, L, offsets, names, at, weights, *trend)
    levels = pd.DataFrame([dict(zip(names, c)) for c in combos], columns=names)
    if not spec_vars:
        levels.insert(0, "1", "overall")
    data = m._data
    numeric = {v for v in names if v not in rg.factors  # factor(x) of a numeric x, as R's
               or (pd.api.types.is_numeric_dtype(data[v]) and not
                   pd.api.types.is_bool_dtype(data[v]))}
    grid = EmmGrid(basis, levels, L, offsets, spec_vars, by_vars, numeric, level, type,
                   estimate)
    if method is None:
        return grid
    return EmmList(grid, grid.contrast(method, adjust=adjust))


def _trend(m, rg: ReferenceGrid, L: np.ndarray, offsets: np.ndarray, names: list[str], at,
           weights: str, var: str, delta: float | None
           ) -> tuple[np.ndarray, np.ndarray, str]:
    """L's rows of the slopes: (L at var + δ − L at var) / δ, emmeans' forward difference."""
    if var not in rg.levels or var in rg.factors:
        numeric = [v for v in rg.levels if v not in rg.factors]
        raise ModelError(f"emtrends(): var must be a numeric variable of the fixed part "
                         f"({', '.join(numeric) or 'it has none'}), not {var!r}")
    if var in names:
        raise ModelError(f"emtrends(): {var!r} is the trend's variable; it cannot be in "
                         f"specs or by")
    if delta is None:
        x = pd.to_numeric(m._data.loc[m.design.index][var])
        delta = 0.001 * float(x.max() - x.min())
    if not np.isfinite(delta) or delta == 0:
        raise ModelError(f"emtrends(): delta_var must be a nonzero number (the data's range "
                         f"of {var!r} is 0)")
    shifted = reference_grid(m, {**(at or {}), var: [v + delta for v in rg.levels[var]]})
    return ((shifted.cell_means(names, weights)[0] - L) / delta,
            (shifted.cell_offsets(names, weights) - offsets) / delta, f"{var}.trend")


def make_basis(m, rg: ReferenceGrid, names: list[str], lmer_df: str | None) -> Basis:
    """β̂, V and the degrees of freedom for ``m`` under emmeans' rules."""
    if m.torch_info is not None and m.design.nn:
        raise ModelError("emmeans() needs a linear fixed part; this model's nn() terms have "
                         "no coefficients to average")
    averaged = tuple(c for c, values in rg.levels.items()
                     if c not in names and (c in rg.factors or len(values) > 1))
    aliased = _aliased(m)
    beta = m.fixef().to_numpy(dtype=np.float64)
    V = m.vcov().to_numpy(dtype=np.float64)
    scale = model_scale(m)
    if m.family is not None:
        return Basis(beta, V, lambda L: np.full(len(L), np.inf), None, scale, averaged,
                     *aliased)
    method = _df_method(m, lmer_df)
    if method == "kenward-roger":
        reml = m if m.REML else m.refit(REML=True)  # as pbkrtest's vcovAdj
        kr = replace(reml._kenward_roger, phi=m.fit.beta_vcov())
        return Basis(beta, kr.phi_adjusted, lambda L: np.array([kr.df(row) for row in L]),
                     method, scale, averaged, *aliased)
    if method == "satterthwaite":
        return Basis(beta, V, m.satterthwaite_df, method, scale, averaged, *aliased)
    return Basis(beta, V, lambda L: np.full(len(L), np.inf), method, scale, averaged,
                 *aliased)


def _aliased(m) -> tuple[np.ndarray | None, np.ndarray | None]:
    """For a fit that dropped aliased columns: the columns kept and an orthonormal basis of
    the full model matrix's null space (estimability's nonest.basis); else (None, None)."""
    names = list(m.design.fixed_encoder.names)
    if list(m.fixef_names) == names:
        return None, None
    X = m.design.fixed_encoder.transform(m._data.loc[m.design.index])
    _, s, vt = np.linalg.svd(X, full_matrices=True)
    rank = int(np.sum(s > s[0] * max(X.shape) * np.finfo(float).eps))
    return np.array([names.index(n) for n in m.fixef_names]), vt[rank:].T


def _df_method(m, lmer_df: str | None) -> str:
    if m.torch_info is not None:
        if lmer_df not in (None, "asymptotic"):
            raise ModelError("a torch-engine fit has asymptotic degrees of freedom only")
        return "asymptotic"
    if lmer_df is not None:
        if lmer_df.lower() not in DF_METHODS:
            raise ModelError(f"lmer_df must be one of {', '.join(DF_METHODS)}, not "
                             f"{lmer_df!r}")
        return lmer_df.lower()
    if m.nobs > DF_LIMIT:
        warn(f"emmeans(): degrees of freedom are asymptotic because the fit has more than "
             f"{DF_LIMIT} observations (as emmeans); pass lmer_df='satterthwaite' for "
             f"Satterthwaite's", UserWarning)
        return "asymptotic"
    kr_possible = all(t.lengthscale is None for t in m.VarCorr().terms)
    return "kenward-roger" if kr_possible else "satterthwaite"


def _check_type(type: str) -> str:
    if type not in ("link", "response"):
        raise ModelError(f"type must be 'link' or 'response', not {type!r}")
    return type


def _ci_names(df: np.ndarray) -> tuple[str, str]:
    return ("asymp.LCL", "asymp.UCL") if np.isinf(df).all() else ("lower.CL", "upper.CL")


def _note_interactions(m, rg: ReferenceGrid, names: list[str]) -> None:
    """emmeans' note: a mean of a variable that interacts with a factor averaged over."""
    encoder = m.design.fixed_encoder
    averaged = {c for c in rg.factors if c not in names}
    for term in encoder.terms.terms:
        inner = [encoder.factors[f]._inner() for f in term.factors]
        columns = {node.id for node in inner if isinstance(node, N.Name)}
        if len(columns) > 1 and columns & set(names) and columns & averaged:
            warn("Results may be misleading due to involvement in interactions",
                 UserWarning)
            return


def by_groups(levels: pd.DataFrame, by: list[str]) -> list[np.ndarray]:
    """The rows of each ``by`` group, groups in order of first appearance."""
    if not by:
        return [np.arange(len(levels))]
    keys = levels[by].astype(str).agg("\x1f".join, axis=1)
    return [np.flatnonzero(keys == k) for k in dict.fromkeys(keys)]


__all__ = ["EmmContrasts", "EmmGrid", "EmmList", "emmeans", "emtrends"]
