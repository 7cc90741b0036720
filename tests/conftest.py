"""Shared test helpers: paths to the grammar corpus and the lme4 reference numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "reference"
CASES = ROOT / "grammar" / "cases"


def read_reference(name: str) -> dict:
    return json.loads((REFERENCE / name).read_text())


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
    if name in {"sim_crossed", "sim_poisson", "sim_binary"}:
        return pd.read_csv(REFERENCE / f"{name}.csv.gz")
    return lp.datasets.load(name)


def as_list(value) -> list:
    """jsonlite writes length-1 vectors as scalars."""
    return value if isinstance(value, list) else [value]
