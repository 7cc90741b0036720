"""Formulas from untrusted users: nothing in them is ever executed as Python."""

from __future__ import annotations

import builtins

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


@pytest.fixture
def no_side_effects(monkeypatch, tmp_path):
    """Fail loudly if anything reaches eval/exec, or any file appears."""
    monkeypatch.chdir(tmp_path)
    # build the parser from the grammar file first (lark reads it once), and let pandas make
    # its lazy imports (pyarrow's string support) before eval/exec are forbidden
    lp.design("y ~ x + (1 | f)", _data())

    def forbidden(*args, **kwargs):
        raise AssertionError("a formula reached eval/exec")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    yield tmp_path
    assert not (tmp_path / "PWNED").exists()


def _data() -> pd.DataFrame:
    return pd.DataFrame({"y": np.arange(6.0), "x": np.arange(6.0), "f": list("aabbcc")})


@pytest.mark.parametrize("payload", PAYLOADS)
def test_payload_rejected(payload, no_side_effects):
    with pytest.raises(lp.LmerpyError):
        lp.design(payload, _data())
    assert list(no_side_effects.iterdir()) == []


def test_allowed_expressions_still_evaluate(no_side_effects):
    data = pd.DataFrame({"y": np.arange(1.0, 7.0), "x": np.arange(1.0, 7.0)})
    d = lp.design("log(y) ~ I(x^2) + sqrt(x) + I(x > 3) + poly(x, 2) + scale(x)", data)
    np.testing.assert_allclose(d.y, np.log(data.y))
    np.testing.assert_allclose(d.X[:, 1], data.x**2)
    np.testing.assert_allclose(d.X[:, 2], np.sqrt(data.x))
    np.testing.assert_allclose(d.X[:, 3], (data.x > 3).astype(float))
