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
