"""lmerpy.plot: each plot renders to a non-empty PNG with the expected axes and labels."""

from __future__ import annotations

import io

import matplotlib
import numpy as np
import pandas as pd
import pytest

import lmerpy as lp
from lmerpy import plot

matplotlib.use("Agg")


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    data = buf.getvalue()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    return data


@pytest.fixture(scope="module")
def sleep():
    return lp.lmer("Reaction ~ Days + (Days | Subject)", lp.datasets.load("sleepstudy"))


def test_caterpillar_sorts_levels_by_mode_with_intervals(sleep):
    fig = plot.caterpillar(sleep)
    _png(fig)
    ax0, ax1 = fig.axes
    assert ax0.get_title() == "(Intercept)" and ax1.get_title() == "Days"
    assert ax0.get_ylabel() == "Subject" and ax0.get_xlabel() == "conditional mode"
    labels = [t.get_text() for t in ax0.get_yticklabels()]
    modes = sleep.ranef()["Subject"]["(Intercept)"]
    assert labels == list(modes.sort_values().index)
    with pytest.raises(lp.ModelError, match="no grouping factor"):
        plot.caterpillar(sleep, "Nope")


def test_residuals_and_qq(sleep):
    fig = plot.residuals_vs_fitted(sleep)
    _png(fig)
    assert fig.axes[0].get_xlabel() == "fitted values"
    assert fig.axes[0].get_ylabel() == "Pearson residuals"
    fig = plot.qq_ranef(sleep)
    _png(fig)
    assert [a.get_ylabel() for a in fig.axes] == ["Subject: (Intercept)", "Subject: Days"]


def test_training_history_and_spatial_map():
    rng = np.random.default_rng(0)
    n = 300
    df = pd.DataFrame({"x": rng.normal(size=n), "lat": rng.integers(0, 8, n) / 2.0,
                       "lon": rng.integers(0, 8, n) / 2.0})
    df["y"] = np.sin(df.x) + np.cos(df.lat) + rng.normal(scale=0.3, size=n)
    m = lp.lmer("y ~ nn(x, hidden=(8,)) + rbf(lat, lon)", df, epochs=3, verbose=False, seed=0)
    fig = plot.history(m)
    _png(fig)
    assert fig.axes[0].get_ylabel() == "NLL per observation"
    assert fig.axes[1].get_ylabel() == "variance components (σ², θ)"
    fig = plot.spatial_map(m)
    _png(fig)
    assert fig.axes[0].get_xlabel() == "lat" and fig.axes[0].get_ylabel() == "lon"
    with pytest.raises(lp.ModelError, match="torch-engine fit"):
        plot.history(lp.lmer("y ~ x + (1 | g)", df.assign(g=(df.lat * 2).astype(int))))


def test_profile_plot_has_one_panel_per_parameter(sleep):
    fig = plot.profile(sleep, parm=["Days", ".sigma"], levels=(0.9, 0.95))
    _png(fig)
    ax0, ax1 = [a for a in fig.axes if a.get_visible()]
    assert ax0.get_xlabel() == "Days" and ax1.get_xlabel() == ".sigma"
    line = ax0.get_lines()[0]
    assert max(line.get_ydata()) == pytest.approx(1.959964, abs=1e-4)  # up to the top level
    assert len(ax0.get_lines()) == 1 + 4  # the curve and ±z for two levels


def test_emmeans_plot_draws_each_mean_with_its_interval():
    d = lp.datasets.load("cbpp")
    g = lp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", d,
                 family="binomial")
    emm = lp.emmeans(g, "~ period", type="response")
    fig = plot.emmeans(emm)
    _png(fig)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "prob" and ax.get_ylabel() == "period"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["1", "2", "3", "4"]
    table = emm.table
    points = ax.lines[0].get_xdata()
    np.testing.assert_allclose(points, table["prob"])
    # contrasts in by panels, with their adjusted intervals
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"A": rng.choice(["a", "b", "c"], 120), "B": rng.choice(["u", "v"], 120),
                       "g": rng.integers(0, 10, 120).astype(str)})
    df["y"] = rng.normal(size=120) + (df["A"] == "b")
    m = lp.lmer("y ~ A * B + (1 | g)", df)
    fig = plot.emmeans(lp.emmeans(m, "~ A | B").pairs())
    _png(fig)
    assert [ax.get_title() for ax in fig.axes] == ["B = u", "B = v"]
    assert fig.axes[0].get_xlabel() == "estimate"


def test_emmip_joins_each_trace_levels_means():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"A": rng.choice(["a", "b", "c"], 120), "B": rng.choice(["u", "v"], 120),
                       "g": rng.integers(0, 10, 120).astype(str)})
    df["y"] = rng.normal(size=120) + (df["A"] == "b") * (df["B"] == "v")
    m = lp.lmer("y ~ A * B + (1 | g)", df)
    fig = plot.emmip(m, "B ~ A")
    _png(fig)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "A" and len(ax.lines) == 2
    table = lp.emmeans(m, "~ A | B").table
    np.testing.assert_allclose(ax.lines[1].get_ydata(), table[table.B == "v"]["emmean"])
    with pytest.raises(lp.ModelError, match="one variable on each side"):
        plot.emmip(m, "B ~ A + x")
