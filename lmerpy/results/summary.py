"""lme4's print(summary(m)), line by line, plus HTML and rich renderings of the same blocks."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.stats as st

from .rformat import (
    abbreviate,
    cat_number,
    format_numbers,
    format_pval,
    print_coefmat,
    print_matrix,
    print_named,
    r_round,
    zapsmall,
)

if TYPE_CHECKING:
    from .model import LmerResult

SUMMARY_DIGITS = 4  # lme4: max(3, getOption("digits") - 3)
COR_MAX = 12        # lme4.summary.cor.max


def coef_table_lines(names: list[str], est: np.ndarray, se: np.ndarray, stat: np.ndarray,
                     stat_name: str = "t value", digits: int = SUMMARY_DIGITS,
                     pvalues: np.ndarray | None = None,
                     df: np.ndarray | None = None) -> list[str]:
    """R's printCoefmat() for Estimate, Std. Error, (lmerTest's) df, a test statistic and,
    when given, p-values: the df column is one of printCoefmat's coefficient columns,
    formatted with the estimates in common."""
    cols = {"Estimate": est, "Std. Error": se}
    if df is not None:
        cols["df"] = df
    cols[stat_name] = stat
    if pvalues is not None:
        cols["Pr(>|z|)" if stat_name.startswith("z") else "Pr(>|t|)"] = pvalues
    cs = ("Estimate", "Std. Error") + (("df",) if df is not None else ())
    return print_coefmat(pd.DataFrame(cols, index=names), digits, cs=cs, tst=(stat_name,))


def correlation_lines(names: list[str], corr: np.ndarray) -> list[str]:
    """lme4's "Correlation of Fixed Effects" block."""
    p = len(names)
    if p <= 1:
        return []
    if p > COR_MAX:
        return ["", f"Correlation matrix not shown by default, as p = {p} > {COR_MAX}.",
                "Use print(summary(m), correlation=True)  or",
                "    m.vcov()        if you need it", ""]
    text = np.array(format_numbers(r_round(corr, 3).ravel(), 7, nsmall=3),
                    dtype=object).reshape(p, p)
    rows = [abbreviate(n, 11) for n in names]
    cols = [abbreviate(n, 6) for n in names]
    cells = [[text[i, j] if j < i else "" for j in range(p - 1)] for i in range(1, p)]
    return ["", "Correlation of Fixed Effects:"] + print_matrix(cells, cols[:-1], rows[1:])


def residual_lines(scaled: np.ndarray, digits: int = SUMMARY_DIGITS) -> list[str]:
    q = np.quantile(scaled, [0, 0.25, 0.5, 0.75, 1.0])  # R's type 7
    q = zapsmall(q, digits + 1)
    return ["Scaled residuals: "] + print_named(format_numbers(q, digits),
                                                ["Min", "1Q", "Median", "3Q", "Max"]) + [""]


def groups_line(nobs: int, ngrps: dict[str, int]) -> str:
    parts = "; ".join(f"{g}, {k}" for g, k in ngrps.items())
    return f"Number of obs: {nobs}, groups:  {parts}"


def aic_lines(m: LmerResult, digits: int = 1) -> list[str]:
    """lme4's .prt.aictab: AIC, BIC, logLik, deviance rounded to ``digits``, and df.resid."""
    ll = m.logLik()
    values = r_round([m.AIC(), m.BIC(), float(ll), -2.0 * float(ll), m.df_resid], digits)
    text = format_numbers(values[:4], 7)
    text = [t.strip() for t in text] + [cat_number(values[4])]
    return print_named(text, ["AIC", "BIC", "logLik", "deviance", "df.resid"])


def header_lines(m: LmerResult, ddf: str | None = None) -> list[str]:
    """lme4's .prt.methTit, .prt.family and .prt.call: the title, family, formula, data
    (lmerTest's title with ``ddf``)."""
    if ddf is not None:
        lines = method_title_lines(f"{m.title.split(' [')[0]}. t-tests use {ddf}'s method",
                                   "lmerModLmerTest")
    else:  # .prt.methTit: strwrap(title, width = 0.9 * getOption("width"), exdent = 2)
        lines = textwrap.wrap(m.title, width=71, subsequent_indent="  ",
                              break_on_hyphens=False)
    if m.family is not None:
        lines.append(f" Family: {m.family}")
    # lmerTest's lmer() keeps the call as written: no expansion of (x || g)
    lines.append(f"Formula: {m.formula.deparsed if ddf else m.formula.as_written}")
    lines.append(f"   Data: {m.data_name}")
    if m.weights_name is not None:
        lines.append(f"Weights: {m.weights_name}")
    return lines


def method_title_lines(title: str, cls: str, width: int = 80) -> list[str]:
    """lme4's .prt.methTit: ``title ['cls']`` on one line if it fits, else the title wrapped
    at width − 2 (continuation indented by 2) and cat(title, " [", cls, "]", fill = TRUE),
    which starts a new line before a piece that would pass ``width``."""
    if len(title) + 5 + len(cls) <= width:
        return [f"{title} ['{cls}']"]
    pieces = textwrap.wrap(title, width=width - 3, subsequent_indent="  ",
                           break_on_hyphens=False) + [" [", cls, "]"]
    lines = [""]
    for piece in pieces:
        if lines[-1] and len(lines[-1]) + len(piece) > width:
            lines.append("")
        lines[-1] += piece
    return lines


def summary_lines(m: LmerResult, ddf: str | None = None) -> list[str]:
    """The text of lme4's ``print(summary(m))`` for a linear or generalized mixed model;
    with ``ddf="Satterthwaite"``, lmerTest's (df and p-values for the fixed effects)."""
    lines = header_lines(m, ddf) + [""]
    if m.torch_info is not None:
        lines += training_lines(m)
    elif m.REML and m.family is None:
        crit = cat_number(float(r_round(m.REMLcrit(), 1)))
        lines.append(f"REML criterion at convergence: {crit}")
    else:
        lines += aic_lines(m)
    lines.append("")
    lines += residual_lines(m.residuals(type="pearson", scaled=True))
    lines.append("Random effects:")
    lines += m.VarCorr().format_lines(SUMMARY_DIGITS, ("Variance", "Std.Dev."))
    lines.append(groups_line(m.nobs, m.ngrps))
    lines += dispersion_lines(m)
    lines += fixed_effects_lines(m, ddf)
    lines += warning_lines(m)
    return lines


def dispersion_lines(m: LmerResult) -> list[str]:
    """A GLMM's estimated dispersion φ = σ² (Gamma, inverse Gaussian, Gaussian), on its own
    line as glmmTMB prints it rather than as a residual variance."""
    if m.family is None or not m.family.has_dispersion:
        return []
    value = format_numbers([m.sigma**2], SUMMARY_DIGITS)[0].strip()
    return ["", f"Dispersion parameter for {m.family.family} family (sigma^2): {value}"]


def training_lines(m: LmerResult) -> list[str]:
    """A torch-engine fit's training, backfitting, logLik and where θ̂ came from."""
    info = m.torch_info
    lines = [f"Training: {info['epochs']} epochs on {info['device']}, best epoch "
             f"{info['best_epoch']} (validation NLL per observation "
             f"{info['best_val_nll']:.5g}); stopped: {info['stop_reason']}"]
    if info.get("backfit"):
        lines.append(_backfit_line(info["backfit"]))
    lines.append(f"logLik (network fixed, at θ̂): {float(m.logLik()):.2f}")
    if info.get("theta_from"):
        lines.append(f"θ̂ from {info['theta_from']}")
    return lines


def network_lines(m: LmerResult) -> list[str]:
    """The fixed-effects block of an nn model: each network, then any linear terms."""
    lines = ["", "Fixed effects (neural network):"]
    for net in m.torch_info["networks"]:
        lines.append(f" {net['term']}")
        lines += _arrow_lines("   layers: ", net["layers"])
        lines.append(f"   inputs: {net['inputs']}, parameters: {net['parameters']:,}")
    return lines


def _arrow_lines(lead: str, chain: str, width: int = 80) -> list[str]:
    """``a -> b -> c`` after ``lead``, wrapped before an arrow so no line passes ``width``
    (a layer's description is never split)."""
    lines, line = [], lead
    for k, part in enumerate(chain.split(" -> ")):
        piece = part if k == 0 else f" -> {part}"
        if k and len(line) + len(piece) > width:
            lines.append(line)
            line = " " * len(lead) + piece.lstrip()
        else:
            line += piece
    return [*lines, line]


def fixed_effects_lines(m: LmerResult, ddf: str | None = None) -> list[str]:
    network = network_lines(m) if m.torch_info and m.design.nn else []
    names = m.fixef_names
    if not names:
        return network or ["", "No fixed effect coefficients"]
    # glmer: Wald z tests with normal p-values; lmerTest: t tests on Satterthwaite's df
    coef = coefficient_table(m, ddf)
    stat = next(c for c in coef.columns if c.endswith(" value"))
    p_value = next((c for c in coef.columns if c.startswith("Pr(")), None)
    se = coef["Std. Error"].to_numpy()
    table = coef_table_lines(names, coef["Estimate"].to_numpy(), se, coef[stat].to_numpy(),
                             stat, pvalues=None if p_value is None else coef[p_value].to_numpy(),
                             df=coef["df"].to_numpy() if "df" in coef else None)
    if network:
        return network + ["", "Linear fixed effects (standard errors given the network):"] \
            + table
    V = m.vcov().to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = V / np.outer(se, se)
    return ["", "Fixed effects:"] + table + correlation_lines(names, corr)


def warning_lines(m: LmerResult) -> list[str]:
    info = m.optinfo
    messages = list(info.get("messages_conv", []))
    lines: list[str] = []
    code = info.get("code_r", 0)
    if code > 0 or messages or info.get("warnings"):
        lines.append(f"optimizer ({info.get('optimizer', 'nloptwrap')}) convergence code: "
                     f"{code} ({'OK' if code == 0 else info.get('message', '')})")
        if messages:
            lines += messages + [""]
        if info.get("warnings"):
            lines += ["optimizer warnings:"] + list(info["warnings"])
    if info.get("fit_messages"):
        lines += ["fit warnings:"] + list(info["fit_messages"])
    return lines


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    import html

    th = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _cell(column: str, value: float) -> str:
    """A number of the fixed-effects table in the HTML and rich views."""
    if column.startswith("Pr("):
        return format_pval([value], 3)[0].strip()
    return f"{value:.{ {'df': 2}.get(column, 3 if 'value' in column else 4) }f}"


def coefficient_table(m: LmerResult, ddf: str | None = None) -> pd.DataFrame:
    """The fixed effects' table as numbers (R's ``coef(summary(m))``): Estimate,
    Std. Error, (with ``ddf``) df, the t or z value and, where lme4 or lmerTest prints one,
    its p-value."""
    est = m.fixef().to_numpy()
    se = np.sqrt(np.diag(m.vcov().to_numpy()))
    stat = est / se
    out = {"Estimate": est, "Std. Error": se}
    if m.family is not None:
        out.update({"z value": stat, "Pr(>|z|)": 2.0 * st.norm.sf(np.abs(stat))})
    elif ddf is not None:
        if ddf == "Kenward-Roger":  # the adjusted covariance's standard errors
            V, df = m.kenward_roger()
            out["Std. Error"] = se = np.sqrt(np.diag(V))
            stat = est / se
        else:
            df = m.satterthwaite_df()
        out.update({"df": df, "t value": stat, "Pr(>|t|)": 2.0 * st.t.sf(np.abs(stat), df)})
    else:
        out["t value"] = stat
    return pd.DataFrame(out, index=m.fixef_names)


def summary_html(m: LmerResult, ddf: str | None = None) -> str:
    """The summary as HTML blocks (Jupyter)."""
    import html

    esc = html.escape
    family = f"<br>Family: {esc(str(m.family))}" if m.family is not None else ""
    parts = [f"<p><b>{esc(m.title)}</b>{family}<br>Formula: "
             f"<code>{esc(m.formula.as_written)}</code><br>Data: {esc(m.data_name)}</p>"]
    vc = m.VarCorr().to_frame()
    parts.append("<p><b>Random effects</b></p>" + _html_table(
        ["Groups", "Name", "Variance", "Std.Dev."],
        [[esc(str(r.grp)), esc(str(r.var1 or "")), f"{r.vcov:.4g}", f"{r.sdcor:.4g}"]
         for r in vc.itertuples() if r.var2 is None]))
    for line in m.VarCorr().lengthscale_lines(SUMMARY_DIGITS):
        parts.append(f"<p>{esc(line.strip())}</p>")
    parts.append(f"<p>{esc(groups_line(m.nobs, m.ngrps))}</p>")
    parts += [f"<p>{esc(line)}</p>" for line in dispersion_lines(m)[1:]]
    coef = coefficient_table(m, ddf)
    header = ["", *coef.columns]
    rows = [[esc(name), *(_cell(col, v) for col, v in row.items())]
            for name, row in coef.iterrows()]
    if len(coef):
        parts.append("<p><b>Fixed effects</b></p>" + _html_table(header, rows))
    crit = (f"REML criterion at convergence: {m.REMLcrit():.1f}" if m.REML
            and m.family is None
            else f"AIC {m.AIC():.1f}, BIC {m.BIC():.1f}, logLik {float(m.logLik()):.1f}")
    parts.append(f"<p>{esc(crit)}</p>")
    return "<div class='lmerpy-summary'>" + "".join(parts) + "</div>"


class Summary:
    """``m.summary()``: prints as lme4 does; HTML in Jupyter; a rich panel in terminals."""

    def __init__(self, model: LmerResult, ddf: str | None = None):
        self.model = model
        self.ddf = ddf
        self.lines = summary_lines(model, ddf)

    @property
    def coefficients(self) -> pd.DataFrame:
        """R's ``coef(summary(m))``: see coefficient_table."""
        return coefficient_table(self.model, self.ddf)

    def __str__(self) -> str:
        return "\n".join(self.lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return summary_html(self.model, self.ddf)

    def __rich__(self):
        """A terminal rendering: the header as lme4 prints it, then rich tables of the random
        and fixed effects."""
        from rich.console import Group
        from rich.panel import Panel
        from rich.table import Table
        from rich.text import Text

        m = self.model
        head = self.lines[: self.lines.index("Random effects:")]
        random = Table(title="Random effects", title_justify="left")
        for col in ("Groups", "Name", "Variance", "Std.Dev."):
            random.add_column(col, justify="right" if col in {"Variance", "Std.Dev."}
                              else "left")
        vc = m.VarCorr()
        for r in vc.to_frame().itertuples():
            if not isinstance(r.var2, str):  # variances only (covariances have a var2)
                random.add_row(str(r.grp), r.var1 if isinstance(r.var1, str) else "",
                               f"{r.vcov:.4g}", f"{r.sdcor:.4g}")
        parts = [Text("\n".join(head)), random,
                 Text("\n".join(vc.lengthscale_lines(SUMMARY_DIGITS)
                                + [groups_line(m.nobs, m.ngrps)] + dispersion_lines(m)))]
        coef = coefficient_table(m, self.ddf)
        if len(coef):
            fixed = Table(title="Fixed effects", title_justify="left")
            for col in ("", *coef.columns):
                fixed.add_column(col, justify="right" if col else "left")
            for name, row in coef.iterrows():
                fixed.add_row(name, *(_cell(c, v) for c, v in row.items()))
            parts.append(fixed)
        warn = warning_lines(m)
        if warn:
            parts.append(Text("\n".join(warn), style="yellow"))
        return Panel(Group(*parts), title="lmerpy", expand=False)


def _backfit_line(bf: dict) -> str:
    """Backfitting, in one line (files saved before L-BFGS backfitting hold Adam passes)."""
    if "iterations" not in bf:
        return (f"Backfitting at θ̂: {bf['epochs']} passes, best pass {bf['best_epoch']} "
                f"(validation MSE {bf['best_val_mse']:.5g})")
    kept = "the trained network kept" if bf["best_iteration"] == 0 else \
        f"best after {bf['best_iteration']}"
    return (f"Backfitting at θ̂: {bf['iterations']} L-BFGS iterations ({bf['evaluations']} "
            f"evaluations), {kept} (validation MSE {bf['best_val_mse']:.5g})")
