"""Parser and term-algebra behaviour that lme4 users rely on."""

from __future__ import annotations

import pytest

import lmerpy as lp
from lmerpy.formula import nodes as N


def test_double_bar_expands_like_lme4():
    f = lp.parse("y ~ (x || g)")
    assert f == lp.parse("y ~ (1 | g) + (0 + x | g)")
    assert [str(r) for r in f.random] == ["(1 | g)", "(0 + x | g)"]


def test_nesting_expands_like_lme4():
    f = lp.parse("y ~ (1 | a/b)")
    assert [r.group for r in f.random] == [("b", "a"), ("a",)]
    assert [r.group_name for r in f.random] == ["b:a", "a"]


def test_intercept_rules():
    assert not lp.parse("y ~ x - 1").fixed.intercept
    assert not lp.parse("y ~ 0 + x").fixed.intercept
    assert lp.parse("y ~ x").fixed.intercept
    assert not lp.parse("y ~ (0 + x | g)").random[0].expr.intercept
    assert lp.parse("y ~ (x | g)").random[0].expr.intercept


def test_interaction_factor_order_follows_first_appearance():
    f = lp.parse("y ~ b + a + a:b")
    assert [str(t) for t in f.fixed.terms] == ["b", "a", "b:a"]


def test_caret_is_power_inside_I_and_arguments():
    f = lp.parse("y ~ I(t^2) + log(x^2)")
    node = f.fixed.terms[0].factors[0]
    assert isinstance(node, N.Call) and isinstance(node.args[0], N.BinOp)
    assert node.args[0].op == "^"
    assert lp.parse("y ~ I(t**2)") == lp.parse("y ~ I(t^2)")


def test_nn_options_are_literals():
    f = lp.parse('y ~ nn(x1 + ... + x3, hidden=(8, 4), dropout=0.5, activation="tanh")')
    term = f.nn[0]
    assert term.option("hidden") == (8, 4)
    assert term.option("dropout") == 0.5
    assert term.option("activation") == "tanh"
    assert [str(t) for t in term.inputs.terms] == ["x1", "x2", "x3"]


def test_rbf_term():
    f = lp.parse("y ~ x + rbf(lat, lon, lengthscale=2)")
    assert f.rbf[0].coords == ("lat", "lon")
    assert f.rbf[0].option("lengthscale") == 2
    assert f.rbf[0].group_name == "rbf(lat, lon)"
    assert lp.parse('y ~ rbf(lat, lon, name="space")').rbf[0].group_name == "space"


@pytest.mark.parametrize("text,message,column", [
    ("y ~ rbf(lat, lon, lengthscale=0)", "option 'lengthscale' of rbf\\(\\) must be a "
                                         "positive number", 19),
    ('y ~ rbf(lat, lengthscale="far")', "option 'lengthscale' of rbf\\(\\) must be a "
                                        "positive number", 14),
    ('y ~ rbf(lat, lon, name="  ")', "option 'name' of rbf\\(\\) must be a non-empty "
                                     "string", 19),
    ("y ~ nn(x, name=TRUE) + (1 | g)", "option 'name' of nn\\(\\) must be a non-empty "
                                       "string", 11),
    # the kernel's variance is always estimated (from σ's start, as lme4 starts Λ = I)
    ("y ~ rbf(lat, lon, variance=2)", "rbf\\(\\) has no option 'variance' \\(allowed: "
                                      "lengthscale, name\\)", 19),
])
def test_option_values_are_checked_where_written(text, message, column):
    with pytest.raises(lp.FormulaError, match=message) as err:
        lp.parse(text)
    assert err.value.column == column


def test_formula_is_immutable_and_hashable():
    f = lp.parse("y ~ x + (1 | g)")
    with pytest.raises(AttributeError):
        f.response = None  # type: ignore[misc]
    assert hash(f) == hash(lp.parse("y  ~  x + (1|g)"))


def test_variables_in_order():
    f = lp.parse("log(y) ~ x + I(z^2) + (t | g:h) + nn(a) + rbf(lat, lon) + offset(o)")
    assert f.variables() == ["y", "x", "z", "o", "a", "t", "g", "h", "lat", "lon"]


def test_error_has_caret_line():
    with pytest.raises(lp.FormulaError) as info:
        lp.parse("y ~ x + (1 | g))")
    lines = str(info.value).splitlines()
    assert lines[0] == "unbalanced parentheses: ')' has no matching opening '(' at column 16"
    assert lines[1] == "  y ~ x + (1 | g))"
    assert lines[2] == "  " + " " * 15 + "^"


def test_formula_error_is_a_lmerpy_error():
    with pytest.raises(lp.LmerpyError):
        lp.parse("y ~ (x")
    assert issubclass(lp.FormulaError, ValueError)


@pytest.mark.parametrize("bad", [None, 3, b"y ~ x", ["y ~ x"]])
def test_non_string_formula(bad):
    with pytest.raises(lp.FormulaError):
        lp.parse(bad)


def test_too_long_and_too_deep():
    with pytest.raises(lp.FormulaError):
        lp.parse("y ~ " + " + ".join(f"x{i}" for i in range(5000)))
    with pytest.raises(lp.FormulaError):
        lp.parse("y ~ " + "(" * 3000 + "x" + ")" * 3000)
