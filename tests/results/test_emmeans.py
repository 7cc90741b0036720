"""lp.emmeans: estimated marginal means and their contrasts against emmeans' own numbers and
printed tables (tests/reference/emmeans.R), and the multiplicity adjustments against R's
p.adjust and closed forms."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

import lmerpy as lp
from lmerpy.results import adjust as adj
from lmerpy.results.emm_specs import parse_specs
from tests.conftest import read_reference, same_printed_line

REF = read_reference("emmeans.json")
DATA = pd.DataFrame(REF["data"]).assign(N=lambda d: d["N"].astype(str))


HALF = lp.datasets.load("sleepstudy").assign(
    half=lambda d: np.where(d["Days"] > 4, "late", "early"))
TRANSFORMED = {"log": "log(Reaction)", "log10": "log10(Reaction)", "log2": "log2(Reaction)",
               "log_plus": "log(Reaction + 1)", "log1p": "log1p(Reaction)",
               "sqrt": "sqrt(Reaction)"}


@pytest.fixture(scope="module")
def fits():
    cbpp = lp.datasets.load("cbpp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "f1": lp.lmer("y ~ A * B + x + (1 | g)", DATA),
            "f1ml": lp.lmer("y ~ A * B + x + (1 | g)", DATA, REML=False),
            "fq": lp.lmer("y ~ A * x + I(x^2) + (1 | g)", DATA),
            "fx": lp.lmer("y ~ A * x + B + (1 | g)", DATA),
            "fu": lp.lmer("y ~ A * B + x + (1 | g)", DATA[REF["unbalanced"]]),
            "fe": lp.lmer("y ~ A * B + x + (1 | g)",
                          DATA[~((DATA.A == "a1") & (DATA.B == "b2"))]),
            **{f"t_{name}": lp.lmer(f"{lhs} ~ half + (1 | Subject)", HALF)
               for name, lhs in TRANSFORMED.items()},
            "fn": lp.lmer("y ~ N + B + (1 | g)", DATA),
            "sl": lp.lmer("Reaction ~ Days + (Days | Subject)",
                          lp.datasets.load("sleepstudy")),
            "sf": lp.lmer("Reaction ~ factor(Days) + (1 | Subject)",
                          lp.datasets.load("sleepstudy")),
            "gb": lp.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cbpp,
                           family="binomial", nAGQ=25),
            "gp": lp.glmer("incidence ~ period + (1 | herd)", cbpp, family="poisson",
                           nAGQ=25),
            "go": lp.glmer("incidence ~ period + offset(log(size)) + (1 | herd)", cbpp,
                           family="poisson", nAGQ=25)}


def E(name, *args, **kwargs):
    return lambda f: lp.emmeans(f[name], *args, **kwargs)


def T(name, *args, **kwargs):
    return lambda f: lp.emtrends(f[name], *args, **kwargs)


def _adjusted_pairs(adjust):
    return lambda f: E("f1", "~ A")(f).pairs(adjust=adjust)


CASES = {
    "A": E("f1", "~ A"),
    "A_by_B": E("f1", "~ A | B"),
    "AB": E("f1", "~ A * B"),
    "B_by_A": E("f1", "B", by="A"),
    "A_satt": E("f1", "~ A", lmer_df="satterthwaite"),
    "A_asym": E("f1", "~ A", lmer_df="asymptotic"),
    "A_ml": E("f1ml", "~ A"),
    "A_at_x": E("f1", "~ A", at={"x": 1}),
    "A_level90": lambda f: E("f1", "~ A")(f).confint(level=0.9),
    "x_only": E("f1", "~ x"),
    "quad": E("fq", "~ A"),
    "days_at": E("sl", "~ Days", at={"Days": [0, 5]}),
    "pairs_A": lambda f: E("f1", "~ A")(f).pairs(),
    "pairs_A_by_B": lambda f: E("f1", "~ A | B")(f).pairs(),
    "pairs_AB": lambda f: E("f1", "~ A * B")(f).pairs(),
    "pairs_reverse": lambda f: E("f1", "~ A")(f).pairs(reverse=True),
    "pairs_satt": lambda f: E("f1", "~ A", lmer_df="satterthwaite")(f).pairs(),
    **{f"pairs_{a}": _adjusted_pairs(a)
       for a in ("none", "bonferroni", "holm", "sidak", "scheffe", "fdr")},
    "pairs_confint": lambda f: E("f1", "~ A")(f).pairs().confint(),
    "pairs_infer": lambda f: E("f1", "~ A")(f).pairs().summary(infer=True),
    "pairs_numeric_levels": lambda f: E("fn", "~ N")(f).pairs(),
    "revpairwise": lambda f: E("f1", "~ A")(f).contrast("revpairwise"),
    "trt_vs_ctrl": lambda f: E("f1", "~ A")(f).contrast("trt.vs.ctrl"),
    "trt_vs_ctrl_ref2": lambda f: E("f1", "~ A")(f).contrast("trt.vs.ctrl", ref=2),
    "trt_vs_ctrl_confint": lambda f: E("f1", "~ A")(f).contrast("trt.vs.ctrl").confint(),
    "poly": lambda f: E("fn", "~ N")(f).contrast("poly"),
    "eff": lambda f: E("f1", "~ A")(f).contrast("eff"),
    "eff_by_B": lambda f: E("f1", "~ A | B")(f).contrast("eff"),
    "binomial_link": E("gb", "~ period"),
    "binomial_response": E("gb", "~ period", type="response"),
    "binomial_pairs": lambda f: E("gb", "~ period")(f).pairs(),
    "binomial_pairs_response": lambda f: E("gb", "~ period")(f).pairs(type="response"),
    "binomial_trt_response": lambda f: E("gb", "~ period")(f).contrast(
        "trt.vs.ctrl", type="response"),
    "binomial_pairs_response_confint": lambda f: E("gb", "~ period")(f).pairs(
        type="response").confint(),
    "poisson_response": E("gp", "~ period", type="response"),
    "poisson_pairs_response": lambda f: E("gp", "~ period")(f).pairs(type="response"),
    "poisson_pairs": lambda f: E("gp", "~ period")(f).pairs(),
    "binomial_pairs_response_infer": lambda f: E("gb", "~ period")(f).pairs(
        type="response").summary(infer=True),
    "overall": E("fx", "~ 1"),
    "overall_sleep": E("sl", "~ 1"),
    "trends": T("fx", "~ A", var="x"),
    "trends_by_B": T("fx", "~ A | B", var="x"),
    "trends_pairs": lambda f: T("fx", "~ A", var="x")(f).pairs(),
    "trends_quad": T("fq", "~ A", var="x"),
    "trends_quad_at": T("fq", "~ A", var="x", at={"x": [0, 1]}),
    "trends_overall": T("sl", "~ 1", var="Days"),
    "offset_link": E("go", "~ period"),
    "offset_response": E("go", "~ period", type="response"),
    "offset_zero": E("go", "~ period", offset=0, type="response"),
    "offset_pairs": lambda f: E("go", "~ period")(f).pairs(type="response"),
    **{f"weights_{w}": E("fu", "~ A", weights=w)
       for w in ("equal", "proportional", "outer", "cells", "flat")},
    "weights_cells_B": E("fu", "~ B", weights="cells"),
    "weights_cells_pairs": lambda f: E("fu", "~ A", weights="cells")(f).pairs(),
    "log_link": E("t_log", "~ half"),
    "log_pairs_link": lambda f: E("t_log", "~ half")(f).pairs(),
    "log_response": E("t_log", "~ half", type="response"),
    "log_pairs": lambda f: E("t_log", "~ half")(f).pairs(type="response"),
    "log10_pairs_confint": lambda f: E("t_log10", "~ half")(f).pairs(
        type="response").confint(),
    "log2_response": E("t_log2", "~ half", type="response"),
    "log_plus_response": E("t_log_plus", "~ half", type="response"),
    "log_plus_pairs": lambda f: E("t_log_plus", "~ half")(f).pairs(type="response"),
    "log1p_pairs": lambda f: E("t_log1p", "~ half")(f).pairs(type="response"),
    "sqrt_response": E("t_sqrt", "~ half", type="response"),
    "sqrt_pairs_confint": lambda f: E("t_sqrt", "~ half")(f).pairs(
        type="response").confint(),
    "factor_of_number": E("sf", "~ Days"),
    "factor_of_number_poly": lambda f: E("sf", "~ Days")(f).contrast("poly"),
    "empty_cell": E("fe", "~ A * B"),
    "empty_cell_A": E("fe", "~ A"),
    "empty_cell_by": E("fe", "~ B | A"),
    "empty_cell_pairs": lambda f: E("fe", "~ A * B")(f).pairs(),
    "empty_cell_pairs_by": lambda f: E("fe", "~ B | A")(f).pairs(),
    "empty_cell_holm": lambda f: E("fe", "~ A * B")(f).pairs(adjust="holm"),
    "empty_cell_fdr": lambda f: E("fe", "~ A * B")(f).pairs(adjust="fdr"),
    "empty_cell_confint": lambda f: E("fe", "~ A * B")(f).pairs().confint(),
    "interaction_pairwise": lambda f: E("f1", "~ A * B")(f).contrast(interaction="pairwise"),
    "interaction_mixed": lambda f: E("f1", "~ A * B")(f).contrast(
        interaction=["consec", "pairwise"]),
    "interaction_trt": lambda f: E("f1", "~ A * B")(f).contrast(interaction="trt.vs.ctrl"),
    "interaction_by": lambda f: E("f1", "~ A | B")(f).contrast(interaction="pairwise"),
}


def _column(values):
    values = values if isinstance(values, list) else [values]
    return [np.inf if v == "Inf" else np.nan if v in ("NA", None) else v for v in values]


def test_every_reference_case_is_covered():
    assert set(CASES) == set(REF["cases"])
    assert set(JOINT) == set(REF["joint_tests"])


@pytest.mark.parametrize("key", list(CASES))
def test_tables_are_emmeans(fits, key):
    """The numbers to 1e-5 (p-values 1e-4; GLMMs, whose quadrature fits agree with lme4's
    to about 1e-5: 1e-3), the columns named as emmeans names them, and the printed table
    line for line (GLMMs: each printed number within one unit of its last digit)."""
    ref = REF["cases"][key]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = CASES[key](fits)
    table = got.table
    assert list(table.columns) == list(ref["columns"])
    glmm = key.startswith(("binomial", "poisson", "offset"))
    for column, values in ref["columns"].items():
        values = _column(values)
        if any(isinstance(v, str) for v in values):
            assert [str(v) for v in table[column]] == values, column
        else:
            # a small p-value moves some ten times its t: 1e-4 for t's 1e-5 (the fits')
            rtol = 1e-3 if glmm else 1e-4 if column == "p.value" else 1e-5
            np.testing.assert_allclose(table[column].to_numpy(dtype=float),
                                       np.array(values, dtype=float), rtol=rtol,
                                       err_msg=column)
    ours, theirs = str(got).splitlines(), ref["lines"]
    if glmm:
        assert len(ours) == len(theirs)
        assert all(same_printed_line(a, b) for a, b in zip(ours, theirs)), (ours, theirs)
    else:
        assert ours == theirs


def test_pairwise_spec_gives_means_and_contrasts(fits):
    both = lp.emmeans(fits["f1"], "pairwise ~ A | B")
    lines = str(both).splitlines()
    assert lines[0] == "$emmeans" and "$contrasts" in lines
    means = REF["cases"]["A_by_B"]["lines"]
    assert lines[1:1 + len(means)] == means
    contrasts = REF["cases"]["pairs_A_by_B"]["lines"]
    start = lines.index("$contrasts") + 1
    assert lines[start:start + len(contrasts)] == contrasts


def test_means_are_cell_means_of_a_balanced_one_way_design():
    """Closed form: with one balanced factor and a random intercept crossed with it, each
    mean is the level's sample mean and each pairwise difference is the difference of the
    sample means."""
    rng = np.random.default_rng(4)
    d = pd.DataFrame({"g": np.repeat([f"g{i}" for i in range(8)], 6),
                      "T": np.tile(["t1", "t2", "t3"], 16)})
    d["y"] = rng.normal(size=len(d)) + (d["T"] == "t2") + rng.normal(size=8)[
        d["g"].str[1:].astype(int)]
    m = lp.lmer("y ~ T + (1 | g)", d)
    emm = lp.emmeans(m, "~ T").table
    np.testing.assert_allclose(emm["emmean"], d.groupby("T")["y"].mean().to_numpy(),
                               rtol=1e-10)
    pairs = lp.emmeans(m, "~ T").pairs(adjust="none").table
    means = d.groupby("T")["y"].mean().to_numpy()
    np.testing.assert_allclose(pairs["estimate"],
                               [means[0] - means[1], means[0] - means[2],
                                means[1] - means[2]], rtol=1e-10)
    # balanced: every difference has the residual variance's SE 2σ²/16 and lm's df
    np.testing.assert_allclose(pairs["SE"], np.sqrt(2 * m.sigma**2 / 16), rtol=1e-8)


@pytest.mark.parametrize("method", ["holm", "hochberg", "BH", "BY", "bonferroni"])
def test_p_adjust_is_rs(method):
    np.testing.assert_allclose(adj.p_adjust(np.array(REF["p"]), method),
                               REF["p_adjust"][method], rtol=1e-12)


def test_adjustments_closed_forms():
    family = adj.Family(size=3, n=3, pairs=True, rank=2)
    t, df = np.array([2.0, -1.0, 0.5]), np.array([10.0, 10.0, 10.0])
    raw = 2 * st.t.sf(np.abs(t), df)
    np.testing.assert_allclose(adj.adjusted_p(t, df, "sidak", family), 1 - (1 - raw) ** 3)
    np.testing.assert_allclose(adj.adjusted_p(t, df, "scheffe", family),
                               st.f.sf(t**2 / 2, 2, df))
    # two means: Tukey's range is |t|·√2 with the t test's p-value
    two = adj.Family(size=2, n=1, pairs=True, rank=1)
    np.testing.assert_allclose(adj.adjusted_p(t[:1], df[:1], "tukey", two),
                               raw[:1], rtol=1e-6)
    cv, _ = adj.critical_values(0.95, np.array([np.inf]), "tukey", two)
    np.testing.assert_allclose(cv, st.norm.ppf(0.975), rtol=1e-6)
    cv, _ = adj.critical_values(0.95, df, "bonferroni", family)
    np.testing.assert_allclose(cv, st.t.ppf(1 - 0.05 / 6, df))
    assert adj.resolve("tukey", adj.Family(3, 1, True, 1)) == "none"


def test_tukey_outside_pairs_becomes_sidak_with_a_note(fits):
    with pytest.warns(UserWarning, match='"tukey" was changed to "sidak"'):
        table = lp.emmeans(fits["f1"], "~ A").contrast("eff", adjust="tukey").table
    raw = 2 * st.t.sf(np.abs(table["t.ratio"]), table["df"])
    np.testing.assert_allclose(table["p.value"], 1 - (1 - raw) ** 3)


def test_interaction_note(fits):
    with pytest.warns(UserWarning, match="misleading due to involvement in interactions"):
        lp.emmeans(fits["f1"], "~ A")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lp.emmeans(fits["f1"], "~ A | B")


def test_large_fits_get_asymptotic_df_as_emmeans():
    rng = np.random.default_rng(0)
    d = pd.DataFrame({"g": rng.integers(0, 50, 3001).astype(str),
                      "T": rng.choice(["a", "b"], 3001)})
    d["y"] = rng.normal(size=len(d))
    m = lp.lmer("y ~ T + (1 | g)", d)
    with pytest.warns(UserWarning, match="more than 3000 observations"):
        emm = lp.emmeans(m, "~ T")
    assert np.isinf(emm.table["df"]).all()
    assert "Degrees-of-freedom method: asymptotic " in str(emm).splitlines()
    sat = lp.emmeans(m, "~ T", lmer_df="satterthwaite").table
    np.testing.assert_allclose(sat["df"], m.satterthwaite_df(
        np.array([[1, 0], [1, 1]])), rtol=1e-10)


@pytest.mark.parametrize("specs, message", [
    ("~ A |", "a variable name is missing"),
    ("~ A $ B", "unexpected '\\$' at character 5"),
    ("~ A | B | x", "a second '\\|' at character 9"),
    ("tukey ~ A", "unknown contrast method 'tukey'"),
    ("~ C", "'C' is not a variable of the fixed part"),
])
def test_bad_specs_are_refused_precisely(fits, specs, message):
    with pytest.raises(lp.ModelError, match=message):
        lp.emmeans(fits["f1"], specs)


def test_bad_arguments_are_refused(fits):
    f1 = fits["f1"]
    with pytest.raises(lp.ModelError, match="'a9' is not a level of factor 'A'"):
        lp.emmeans(f1, "~ A", at={"A": ["a1", "a9"]})
    with pytest.raises(lp.ModelError, match="'z' is not a variable"):
        lp.emmeans(f1, "~ A", at={"z": 1})
    with pytest.raises(lp.ModelError, match="lmer_df must be one of"):
        lp.emmeans(f1, "~ B", lmer_df="kr")
    with pytest.raises(lp.ModelError, match="adjust must be one of"):
        lp.emmeans(f1, "~ B | A").pairs(adjust="dunnett")
    with pytest.raises(lp.ModelError, match="ref must be a level or a position"):
        lp.emmeans(f1, "~ B | A").contrast("trt.vs.ctrl", ref=5)
    with pytest.raises(lp.ModelError, match="type must be 'link' or 'response'"):
        lp.emmeans(f1, "~ B | A", type="prob")
    with pytest.raises(lp.ModelError, match="offset= is for models with an offset"):
        lp.emmeans(f1, "~ A", offset=0)
    with pytest.raises(lp.ModelError, match="'size' is a variable of the offset only"):
        lp.emmeans(fits["go"], "~ period", at={"size": 10})


def test_at_subsets_levels_and_consec_with_an_adjustment(fits):
    emm = lp.emmeans(fits["f1"], "~ A", at={"A": ["a1", "a3"]})
    assert list(emm.table["A"]) == ["a1", "a3"]
    consec = lp.emmeans(fits["f1"], "~ A").contrast("consec", adjust="none").table
    assert list(consec["contrast"]) == ["a2 - a1", "a3 - a2"]
    pairs = lp.emmeans(fits["f1"], "~ A").pairs(adjust="none").table
    np.testing.assert_allclose(consec["estimate"], [-pairs["estimate"][0],
                                                    -pairs["estimate"][2]], rtol=1e-12)


def test_parse_specs():
    assert parse_specs("pairwise ~ A * B | C") == ("pairwise", ["A", "B"], ["C"])
    assert parse_specs(["A", "B"]) == (None, ["A", "B"], [])
    assert parse_specs("trt.vs.ctrl ~ A:B") == ("trt.vs.ctrl", ["A", "B"], [])


def test_nn_fits_are_refused():
    rng = np.random.default_rng(1)
    d = pd.DataFrame({"x": rng.normal(size=200), "T": rng.choice(["a", "b"], 200),
                      "g": rng.integers(0, 10, 200).astype(str)})
    d["y"] = d["x"] + rng.normal(size=200)
    m = lp.lmer("y ~ T + nn(x, hidden=(4,)) + (1 | g)", d, epochs=2, verbose=False, seed=0)
    with pytest.raises(lp.ModelError, match="nn\\(\\) terms have no coefficients"):
        lp.emmeans(m, "~ T")


JOINT = {
    "two_factors": lambda f: lp.joint_tests(f["f1"]),
    "factor_by_number": lambda f: lp.joint_tests(f["fx"]),
    "by_B": lambda f: lp.joint_tests(f["f1"], by="B"),
    "satterthwaite": lambda f: lp.joint_tests(f["f1"], lmer_df="satterthwaite"),
    "binomial": lambda f: lp.joint_tests(f["gb"]),
}


@pytest.mark.parametrize("key", list(JOINT))
def test_joint_tests_are_emmeans(fits, key):
    """Each term's F, its df (emmeans rounds them to 3 and 2 decimals: to that) and
    p-value (1e-4; the GLMM's 1e-3), printed line for line."""
    ref = REF["joint_tests"][key]
    got = JOINT[key](fits)
    table = got.table
    assert list(table.columns) == list(ref["columns"])
    for column, values in ref["columns"].items():
        values = _column(values)
        if column in ("model term", "B"):
            assert list(table[column]) == values
            continue
        atol = {"df2": 0.0051, "F.ratio": 0.00051}.get(column, 0)
        rtol = 1e-3 if key == "binomial" else 1e-4 if column == "p.value" else 1e-12
        np.testing.assert_allclose(table[column].to_numpy(dtype=float),
                                   np.array(values, dtype=float), rtol=rtol, atol=atol,
                                   err_msg=column)
    assert str(got).split("\n") == ref["lines"]  # R's print ends with an empty line


def test_joint_tests_do_not_depend_on_the_coding(fits):
    """Type III on the means: the same F for treatment and sum-to-zero codings. (Not quite
    the same df2: emmeans takes the least df of the contrasts made orthonormal in the
    coefficients' coordinates, which depend on the coding.)"""
    sum_coded = lp.lmer("y ~ C(A, contr.sum) * C(B, contr.sum) + x + (1 | g)", DATA)
    ours, theirs = lp.joint_tests(sum_coded).table, lp.joint_tests(fits["f1"]).table
    np.testing.assert_allclose(ours["F.ratio"], theirs["F.ratio"], rtol=1e-6)
    np.testing.assert_allclose(ours["df2"], theirs["df2"], rtol=1e-4)


def test_interaction_contrasts_are_products_of_each_variables(fits):
    """Closed form: (a1 − a2) × (b1 − b2) is the difference of the two simple differences,
    and an unadjusted interaction contrast has the plain t test's p-value."""
    means = lp.emmeans(fits["f1"], "~ A * B")
    table = means.contrast(interaction="pairwise").table
    assert list(table.columns[:2]) == ["A_pairwise", "B_pairwise"]
    assert list(table["A_pairwise"]) == ["a1 - a2", "a1 - a3", "a2 - a3"]
    assert list(table["B_pairwise"]) == ["b1 - b2"] * 3
    simple = lp.emmeans(fits["f1"], "~ A | B").pairs(adjust="none").table
    within_b1 = simple[simple.B == "b1"]["estimate"].to_numpy()
    within_b2 = simple[simple.B == "b2"]["estimate"].to_numpy()
    np.testing.assert_allclose(table["estimate"], within_b1 - within_b2, rtol=1e-10)
    p = 2 * st.t.sf(np.abs(table["t.ratio"]), table["df"])
    np.testing.assert_allclose(table["p.value"], p, rtol=1e-12)
    consec = means.contrast(interaction=["consec", "pairwise"]).table
    assert list(consec.columns[:2]) == ["A_consec", "B_pairwise"]
    np.testing.assert_allclose(consec["estimate"], [-table["estimate"][0],
                                                    -table["estimate"][2]], rtol=1e-10)


MVT = {
    "consec": lambda f: E("f1", "~ A")(f).contrast("consec"),
    "consec_by": lambda f: E("f1", "~ B | A")(f).contrast("consec"),
    "pairs": lambda f: E("f1", "~ A * B")(f).pairs(adjust="mvt"),
    "trt_confint": lambda f: E("f1", "~ A | B")(f).contrast("trt.vs.ctrl",
                                                            adjust="mvt").confint(),
    "pairs_glmm": lambda f: E("gb", "~ period")(f).pairs(adjust="mvt").summary(infer=True),
}


@pytest.mark.parametrize("name", list(MVT))
def test_multivariate_t_adjustment_is_emmeans(fits, name):
    """adjust="mvt" (consec's default): p-values and intervals from the family's joint t
    distribution. mvtnorm integrates to an absolute error of 1e-3 (lmerpy's to 1e-5), so
    p-values agree to 3e-3 and interval ends to 5e-3 of a standard error; the notes are
    emmeans'."""
    ours = MVT[name](fits)
    ref = REF["mvt"][name]
    cols = ref["columns"]
    table = ours.table
    tol = 1e-4 if name.endswith("glmm") else 1e-5  # the quadrature fits agree to ~1e-5
    np.testing.assert_allclose(table["estimate"], cols["estimate"], rtol=tol, atol=1e-6)
    np.testing.assert_allclose(table["SE"], cols["SE"], rtol=tol)
    if "p.value" in cols:
        np.testing.assert_allclose(table["p.value"], cols["p.value"], atol=3e-3)
    for end in ("lower.CL", "upper.CL", "asymp.LCL", "asymp.UCL"):
        if end in cols:
            np.testing.assert_allclose(table[end], cols[end],
                                       atol=5e-3 * float(np.max(cols["SE"])))
    notes = [line for line in ref["lines"] if "adjustment" in line]
    assert [line for line in ours._messages() if "adjustment" in line] == \
        [line.strip() for line in notes]


def test_multivariate_t_of_independent_z_ratios_is_sidak():
    """Independent z ratios: the joint distribution is a product, so mvt's p-values are
    Šidák's exactly (a closed form)."""
    from lmerpy.results.adjust import Family, adjusted_p, critical_values

    t = np.array([2.1, -0.7, 1.3])
    fam = Family(size=4, n=3, pairs=False, rank=3, corr=np.eye(3))
    df = np.full(3, np.inf)
    np.testing.assert_allclose(adjusted_p(t, df, "mvt", fam), adjusted_p(t, df, "sidak", fam),
                               atol=1e-6)
    np.testing.assert_allclose(critical_values(0.95, df, "mvt", fam)[0],
                               critical_values(0.95, df, "sidak", fam)[0], atol=1e-5)
