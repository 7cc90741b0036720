"""Every script in examples/ runs to the end."""

from __future__ import annotations

import runpy
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(path, capsys, monkeypatch):
    monkeypatch.setenv("LMERPY_QUICK", "1")  # reduced sizes and epochs
    runpy.run_path(str(path), run_name="__main__")
    assert capsys.readouterr().out.strip()


def test_cli_demo(capsys):
    from lmerpy.cli import main

    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "REML criterion at convergence: 1743.6" in out
    assert "Days          10.467      1.546   6.771" in out
    assert main(["parse", "y ~ (x"]) == 2
