"""The documentation builds with mkdocs (strict), and every Python block in it runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def test_mkdocs_build_is_clean(tmp_path):
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q",
                             "-f", str(ROOT / "mkdocs.yml"), "-d", str(tmp_path / "site")],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site" / "migration" / "index.html").exists()


@pytest.mark.parametrize("page", DOCS, ids=[p.name for p in DOCS])
def test_python_blocks_run(page, capsys):
    import matplotlib
    matplotlib.use("Agg")
    blocks = BLOCK.findall(page.read_text())
    namespace: dict = {}
    for code in blocks:
        exec(compile(code, f"{page.name}", "exec"), namespace)  # our own docs, not user input


def test_migration_guide_covers_lme4s_calls():
    text = (ROOT / "docs" / "migration.md").read_text()
    for call in ("lmer(", "glmer(", "REML = FALSE", "summary(m)", "fixef(m)",
                 "ranef(m, condVar = TRUE)", "VarCorr(m)", "coef(m)", "allow.new.levels",
                 "re.form = NA", "anova(m0, m1)", "confint(", "isSingular(m)", "getME(",
                 "lmerControl(", "refit(m, newresp", "update(m, . ~ .", "drop1(m",
                 "lmerTest", "ranova(m)", "glmer.nb(", "lmList("):
        assert call in text, call
