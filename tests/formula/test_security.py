"""Formulas from untrusted users: nothing in them is ever executed as Python."""

from __future__ import annotations

import builtins
import re
import types

import numpy as np
import pandas as pd
import pytest

import lmerpy as lp

PAYLOADS = [
    "y ~ __import__('os').system('touch PWNED')",
    "y ~ I(__import__('os').system('touch PWNED'))",
    "y ~ ().__class__",
    "y ~ I(().__class__.__bases__[0].__subclasses__())",
    "y ~ x.__dict__",
    "y ~ I(x.__dict__)",
    "y ~ open('PWNED', 'w')",
    "y ~ I(open('PWNED', 'w'))",
    "y ~ eval('1')",
    "y ~ exec('import os')",
    "y ~ I(lambda: 1)",
    "y ~ I([i for i in x])",
    "y ~ I(x[0])",
    "y ~ getattr(x, 'y')",
    "y ~ I(globals())",
    "y ~ import os",
    "y ~ nn(x, module=__import__('os'))",
    "y ~ poly(x, __import__('os').getpid())",
    "y ~ I(x).real",
    "__import__('os').system('touch PWNED') ~ x",
    "y ~ C(f, __import__('os'))",
    "y ~ `__class__`",
    "y ~ I(x; import os)",
    "y ~ I(x if x else 1)",
    "y ~ I(`x`.__class__)",
]


# formulaic evaluates the factor expressions lmerpy generates for it; those name only safe
# aliases (_v0, _v1, ...) and formulaic's own transforms, never anything from the user.
_SAFE_NAME = re.compile(r"^(_v\d+|C|poly|scale|center|contr|treatment|sum|helmert|"
                        r"get_required_variables|get|__FORMULAIC_[A-Z]+__)$")


def _only_generated(code) -> bool:
    if isinstance(code, str):
        code = compile(code, "<eval>", "eval")
    if not isinstance(code, types.CodeType):
        return False
    strings = [c for c in code.co_consts if isinstance(c, str)]
    return all(_SAFE_NAME.match(n) for n in code.co_names) and all(
        re.fullmatch(r"[a-z]+\(_v\d+[^_]*\)", c) for c in strings)


@pytest.fixture
def no_side_effects(monkeypatch, tmp_path):
    """Fail loudly if user text reaches eval/exec, or any file appears."""
    monkeypatch.chdir(tmp_path)
    real_eval = builtins.eval

    def guarded_eval(code, *args, **kwargs):
        if not _only_generated(code):
            raise AssertionError(f"eval reached with non-generated code: {code!r}")
        return real_eval(code, *args, **kwargs)

    def forbidden(*args, **kwargs):
        raise AssertionError("a formula reached exec")

    monkeypatch.setattr(builtins, "eval", guarded_eval)
    monkeypatch.setattr(builtins, "exec", forbidden)
    yield tmp_path
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payload_rejected(payload, no_side_effects):
    data = pd.DataFrame({"y": np.arange(6.0), "x": np.arange(6.0), "f": list("aabbcc")})
    with pytest.raises(lp.LmerpyError):
        lp.design(payload, data)
    assert list(no_side_effects.iterdir()) == []


def test_allowed_expressions_still_evaluate(no_side_effects):
    data = pd.DataFrame({"y": np.arange(1.0, 7.0), "x": np.arange(1.0, 7.0)})
    d = lp.design("log(y) ~ I(x^2) + sqrt(x) + I(x > 3) + poly(x, 2) + scale(x)", data)
    np.testing.assert_allclose(d.y, np.log(data.y))
    np.testing.assert_allclose(d.X[:, 1], data.x**2)
    np.testing.assert_allclose(d.X[:, 2], np.sqrt(data.x))
    np.testing.assert_allclose(d.X[:, 3], (data.x > 3).astype(float))
