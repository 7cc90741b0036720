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


NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes_and_renders_html(path):
    """Run the notebook in a real kernel: every cell succeeds, results display as HTML."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("lmerpy-summary" in h for h in html)           # summaries
    assert any("Residual" in h and "<table" in h for h in html)  # VarCorr
    assert any("Chisq" in h for h in html)                      # anova
    assert any("image/png" in o.get("data", {}) for o in outputs)  # the plot
