"""Shared test helpers: paths to the grammar corpus and the lme4 reference numbers."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from hypothesis import settings

# The property and fuzz tests draw the same examples on every run ("derandomize"), so the
# suite's verdict does not depend on the day: a fuzz find on one CI run and not the next
# would block or pass a landing by chance. HYPOTHESIS_PROFILE=explore draws new examples on
# every run, to look for bugs (`HYPOTHESIS_PROFILE=explore .venv/bin/python -m pytest
# tests/formula/test_fuzz.py tests/robustness/test_properties.py`, in a loop); a find
# goes into the corpus (grammar/cases/) as a fixed case.
settings.register_profile("default", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "reference"
CASES = ROOT / "grammar" / "cases"


def read_reference(name: str) -> dict:
    return json.loads((REFERENCE / name).read_text())


def same_printed_line(ours: str, theirs: str, rtol: float = 1e-5) -> bool:
    """The same layout and words, each number within one unit of its last printed digit
    or ``rtol`` of its value: for tables of fits that agree with R's to about 1e-5 (GLMMs),
    where a rounding edge can move the last digit."""
    if len(ours) != len(theirs):
        return False
    a, b = ours.split(), theirs.split()
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x == y:
            continue
        if not (re.fullmatch(r"-?\d+\.\d+", x) and re.fullmatch(r"-?\d+\.\d+", y)):
            return False
        unit = 1.01 * 10.0 ** -len(y.split(".")[1])
        if abs(float(x) - float(y)) > max(unit, rtol * abs(float(y))):
            return False
    return True


def corpus(name: str) -> list[list[str]]:
    rows = []
    for line in (CASES / name).read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        fields[0] = fields[0].replace("\\n", "\n")
        rows.append(fields)
    return rows


@pytest.fixture(scope="session")
def structures() -> dict:
    return read_reference("lme4_structures.json")


def reference_data(name: str):
    """The data a reference fit used: an embedded data set or one written by the R script."""
    import numpy as np
    import pandas as pd

    import lmerpy as lp

    if name == "sleep_w":
        data = lp.datasets.load("sleepstudy")
        data["w"] = np.resize([1.0, 2.0, 0.5], len(data))
        data["Days2"] = 2 * data["Days"]
        return data
    if name in {"sim_crossed", "sim_poisson", "sim_binary", "sim_gamma"}:
        return pd.read_csv(REFERENCE / f"{name}.csv.gz")
    return lp.datasets.load(name)


def as_list(value) -> list:
    """jsonlite writes length-1 vectors as scalars."""
    return value if isinstance(value, list) else [value]
