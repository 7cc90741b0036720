"""Plots of fitted models (matplotlib, an optional extra: ``pip install lmerpy[plot]``).

Every function returns a matplotlib Figure; nothing is shown or saved unless you do so.
"""

from __future__ import annotations

import numpy as np
import scipy.stats as st

from .errors import LmerpyError, ModelError


def _plt():
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise LmerpyError("plots need matplotlib: pip install 'lmerpy[plot]'") from err
    return plt


def caterpillar(m, group: str | None = None, level: float = 0.95):
    """lme4's ``dotplot(ranef(m, condVar=TRUE))``: each level's conditional mode with its
    interval, sorted by the mode, one panel per random-effect column."""
    plt = _plt()
    re = m.ranef(condVar=True)
    if group is None:
        group = next(iter(re))
    if group not in re:
        raise ModelError(f"no grouping factor {group!r} (available: {', '.join(re)})")
    df = re[group]
    sd = df.attrs["condsd"]
    z = st.norm.ppf(0.5 + level / 2)
    cols = list(df.columns)
    fig, axes = plt.subplots(1, len(cols), figsize=(3.2 * len(cols), 0.18 * len(df) + 1.5),
                             sharey=False, squeeze=False)
    for j, (ax, col) in enumerate(zip(axes[0], cols)):
        order = np.argsort(df[col].to_numpy())
        vals = df[col].to_numpy()[order]
        err = z * np.asarray(sd)[order, j]
        pos = np.arange(len(vals))
        ax.errorbar(vals, pos, xerr=err, fmt="o", ms=3, color="#1f5fa8", ecolor="#555555",
                    elinewidth=0.8)
        ax.axvline(0.0, color="grey", lw=0.8, ls="--")
        ax.set_yticks(pos)
        ax.set_yticklabels(np.asarray(df.index)[order], fontsize=7)
        ax.set_title(col)
        ax.set_xlabel("conditional mode")
        if j == 0:
            ax.set_ylabel(group)
    fig.suptitle(f"{group}: random effects with {int(level * 100)}% intervals")
    fig.tight_layout()
    return fig


def residuals_vs_fitted(m):
    """Pearson residuals against fitted values, with a smooth reference line at zero."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 4))
    fitted = m.fitted().to_numpy()
    resid = m.residuals(type="pearson").to_numpy()
    ax.scatter(fitted, resid, s=8, alpha=0.6, color="#1f5fa8")
    ax.axhline(0.0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("fitted values")
    ax.set_ylabel("Pearson residuals")
    ax.set_title("Residuals vs fitted")
    fig.tight_layout()
    return fig


def qq_ranef(m, group: str | None = None):
    """Normal Q–Q plots of the conditional modes, one panel per random-effect column."""
    plt = _plt()
    re = m.ranef()
    group = group or next(iter(re))
    if group not in re:
        raise ModelError(f"no grouping factor {group!r} (available: {', '.join(re)})")
    df = re[group]
    fig, axes = plt.subplots(1, df.shape[1], figsize=(3.5 * df.shape[1], 3.5), squeeze=False)
    for ax, col in zip(axes[0], df.columns):
        vals = np.sort(df[col].to_numpy())
        q = st.norm.ppf((np.arange(1, len(vals) + 1) - 0.5) / len(vals))
        ax.scatter(q, vals, s=10, color="#1f5fa8")
        slope, intercept = np.polyfit(q, vals, 1) if len(vals) > 1 else (0.0, 0.0)
        ax.plot(q, intercept + slope * q, color="grey", lw=0.8)
        ax.set_xlabel("standard normal quantiles")
        ax.set_ylabel(f"{group}: {col}")
    fig.suptitle("Q-Q plot of random effects")
    fig.tight_layout()
    return fig


def history(m):
    """Training history of a torch fit (the LMMNN paper's Figure 2): train and validation
    NLL per epoch, and each variance component per epoch."""
    plt = _plt()
    h = m.history
    if h is None:
        raise ModelError("history() needs a torch-engine fit")
    comps = ["sigma2", *m.design.theta_names()]  # the history's θ columns are named so
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    axes[0].plot(h.epoch, h.train_nll, label="train")
    axes[0].plot(h.epoch, h.val_nll, label="validation")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("NLL per observation")
    axes[0].legend()
    for c in comps:
        axes[1].plot(h.epoch, h[c], label="σ²e" if c == "sigma2" else f"θ {c}")
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("variance components (σ², θ)")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def profile(m, parm=None, levels: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95, 0.99)):
    """lme4's ``xyplot(profile(m))``: ζ against each parameter, one panel per parameter,
    with dotted lines at ±z for the confidence ``levels`` (where a line meets the curve is
    that interval's end)."""
    plt = _plt()
    table = m.profile(parm=parm, level=max(levels))
    names = list(dict.fromkeys(table["parameter"]))
    cols = min(3, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.8 * rows), squeeze=False)
    zs = st.norm.ppf(0.5 + np.asarray(levels) / 2)
    for ax, name in zip(axes.ravel(), names):
        part = table[table["parameter"] == name]
        ax.plot(part["value"], part["zeta"], color="C0")
        for z in zs:
            for sign in (-1, 1):
                ax.axhline(sign * z, color="grey", linestyle=":", linewidth=0.8)
        ax.set_xlabel(name)
        ax.set_ylabel("ζ")
    for ax in axes.ravel()[len(names):]:
        ax.set_visible(False)
    fig.tight_layout()
    return fig


def spatial_map(m, term: int | None = None):
    """The predicted spatial effect b̂ at each training location of an rbf() term."""
    plt = _plt()
    spatial = [k for k, r in enumerate(m.design.random) if r.encoder is None]
    if not spatial:
        raise ModelError("spatial_map() needs a model with an rbf() term")
    k = spatial[0] if term is None else term
    r = m.design.random[k]
    start = sum(t.q * t.p for t in m.design.random[:k])
    b = m.fit.b[start:start + r.q]
    coords = r.cov.coords
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    pts = ax.scatter(coords[:, 0], coords[:, 1], c=b, cmap="RdBu_r", s=25,
                     vmin=-np.abs(b).max(), vmax=np.abs(b).max())
    fig.colorbar(pts, ax=ax, label="predicted spatial effect")
    names = list(r.term.coords)
    ax.set_xlabel(names[0])
    ax.set_ylabel(names[1] if len(names) > 1 else "")
    ax.set_title(str(r.term))
    fig.tight_layout()
    return fig


__all__ = ["caterpillar", "history", "qq_ranef", "residuals_vs_fitted", "spatial_map"]


def emmeans(result, level: float = 0.95):
    """emmeans' ``plot(emm)``: each estimated marginal mean (or contrast) with its confidence
    interval, one panel per ``by`` group; GLMM means on the scale the result reports."""
    plt = _plt()
    table = result.confint(level).table  # contrasts: intervals adjusted as their tests
    estimate = table.columns[len(result.levels.columns)]
    lo, hi = [c for c in table.columns if c.endswith(("LCL", "lower.CL"))][0], \
        [c for c in table.columns if c.endswith(("UCL", "upper.CL"))][0]
    by = list(result.by)
    inner = [c for c in result.levels.columns if c not in by]
    labels = table[inner].astype(str).agg(" ".join, axis=1)
    groups = table.groupby(by, sort=False) if by else [((), table)]
    groups = list(groups)
    fig, axes = plt.subplots(1, len(groups), figsize=(3.6 * len(groups), 0.35 * len(labels)
                                                        / len(groups) + 1.8),
                             sharex=True, squeeze=False)
    for ax, (key, part) in zip(axes[0], groups):
        pos = np.arange(len(part))
        est = part[estimate].to_numpy(dtype=float)
        err = np.vstack([est - part[lo].to_numpy(dtype=float),
                         part[hi].to_numpy(dtype=float) - est])
        ax.errorbar(est, pos, xerr=err, fmt="o", ms=4, color="#1f5fa8", ecolor="#555555",
                    elinewidth=1.0, capsize=2)
        ax.set_yticks(pos)
        ax.set_yticklabels(labels.loc[part.index], fontsize=8)
        ax.set_ylim(len(part) - 0.5, -0.5)  # the first level on top, as the table
        ax.set_xlabel(estimate)
        if not hasattr(result, "pairs"):  # contrasts: their null value, ratios on a log axis
            ratio = estimate in ("ratio", "odds.ratio")
            ax.axvline(1.0 if ratio else 0.0, color="grey", lw=0.8, ls="--")
            if ratio:
                ax.set_xscale("log")
        if by:
            key = key if isinstance(key, tuple) else (key,)
            ax.set_title(", ".join(f"{b} = {v}" for b, v in zip(by, key)), fontsize=9)
    axes[0][0].set_ylabel(" ".join(inner) or "contrast")
    fig.suptitle(f"{estimate} with {int(round(level * 100))}% intervals", fontsize=10)
    fig.tight_layout()
    return fig


def emmip(m, formula: str, **options):
    """emmeans' ``emmip(m, trace ~ x)``: an interaction plot, the estimated marginal means
    of each ``trace`` level joined across the levels of ``x`` (``options`` go to
    ``lp.emmeans``: ``at``, ``type``, ``weights``, ...)."""
    from .results.emmeans import emmeans as emm
    plt = _plt()
    trace, _, x = formula.partition("~")
    trace, x = trace.strip(), x.strip()
    if not trace or not x or any(c in trace + x for c in "~|+*:"):
        raise ModelError(f"emmip() takes 'trace ~ x' with one variable on each side, not "
                         f"{formula!r}")
    table = emm(m, [x, trace], **options).table
    estimate = table.columns[2]
    fig, ax = plt.subplots(figsize=(5, 4))
    xs = list(dict.fromkeys(table[x]))
    for level, part in table.groupby(trace, sort=False):
        ax.plot([xs.index(v) for v in part[x]], part[estimate], "o-", label=str(level))
    ax.set_xticks(range(len(xs)))
    ax.set_xticklabels([str(v) for v in xs])
    ax.set_xlabel(x)
    ax.set_ylabel(f"linear prediction ({estimate})" if estimate == "emmean" else estimate)
    ax.legend(title=trace, fontsize=8)
    fig.tight_layout()
    return fig
