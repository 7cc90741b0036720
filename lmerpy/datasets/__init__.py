"""Classic data sets exported from R's lme4, with R's factor levels and their order."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import pandas as pd

from ..errors import LmerpyError

_FILES = {
    "sleepstudy": "sleepstudy.csv", "Dyestuff": "Dyestuff.csv", "Dyestuff2": "Dyestuff2.csv",
    "Penicillin": "Penicillin.csv", "Pastes": "Pastes.csv", "cbpp": "cbpp.csv",
    "InstEval": "InstEval.csv.gz",
}


def names() -> list[str]:
    """The names of the embedded data sets."""
    return list(_FILES)


@lru_cache(maxsize=1)
def _levels() -> dict:
    text = resources.files(__package__).joinpath("data/factor_levels.json").read_text()
    return json.loads(text)


def load(name: str) -> pd.DataFrame:
    """Load an embedded data set; R factors become pandas categoricals in R's level order."""
    if name not in _FILES:
        raise LmerpyError(f"unknown data set '{name}' (available: {', '.join(_FILES)})")
    with resources.files(__package__).joinpath("data", _FILES[name]).open("rb") as fh:
        df = pd.read_csv(fh, compression="gzip" if _FILES[name].endswith(".gz") else None,
                         dtype=str, keep_default_na=False, na_values=["NA"])
    info = _levels()[name]
    for col in df.columns:
        spec = info["factors"].get(col)
        if spec is not None:
            df[col] = pd.Categorical(df[col], categories=spec["levels"],
                                     ordered=bool(spec["ordered"]))
        elif info["column_class_in_R"].get(col) == "integer":
            df[col] = pd.to_numeric(df[col]).astype("int64")
        else:
            df[col] = pd.to_numeric(df[col]).astype("float64")
    return df


__all__ = ["load", "names"]
