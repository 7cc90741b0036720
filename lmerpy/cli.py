"""Command line: ``python -m lmerpy.cli demo`` (the README's main job) and ``parse``."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.table import Table

from . import datasets
from .api import lmer
from .design import design
from .errors import LmerpyError
from .formula import parse

DEMO_FORMULA = "Reaction ~ Days + (Days | Subject)"


def _show_design(console: Console, formula: str, data_name: str) -> None:
    data = datasets.load(data_name)
    d = design(formula, data)
    console.print(f"[bold]Formula[/]: {formula}")
    console.print(f"[bold]Canonical[/]: {d.formula}")
    console.print(f"[bold]Data[/]: {data_name} ({d.n} rows used, {d.n_dropped} dropped)")
    fixed = Table(title="Fixed-effects matrix X (first rows)")
    for name in d.X_names:
        fixed.add_column(name, justify="right")
    for row in d.X[:5]:
        fixed.add_row(*(f"{v:g}" for v in row))
    console.print(fixed)
    rand = Table(title="Random-effects terms")
    for col in ("Groups", "Levels", "Columns", "Z (rows x cols, nnz)", "theta0"):
        rand.add_column(col)
    for r in d.random:
        rand.add_row(r.group, str(r.q), ", ".join(r.names),
                     f"{r.Z.shape[0]} x {r.Z.shape[1]}, {r.Z.nnz}",
                     " ".join(f"{t:g}" for t in r.cov.theta0()))
    console.print(rand)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lmerpy", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help=f"fit {DEMO_FORMULA} to sleepstudy and print the summary")
    p = sub.add_parser("parse", help="print the canonical form of a formula")
    p.add_argument("formula")
    d = sub.add_parser("design", help="evaluate a formula on an embedded data set")
    d.add_argument("formula")
    d.add_argument("--data", default="sleepstudy", choices=datasets.names())
    args = parser.parse_args(argv)
    console = Console()
    try:
        if args.command == "demo":
            sleepstudy = datasets.load("sleepstudy")
            model = lmer(DEMO_FORMULA, sleepstudy, data_name="sleepstudy")
            console.print(str(model.summary()), markup=False, highlight=False)
        elif args.command == "parse":
            console.print(str(parse(args.formula)), markup=False, highlight=False)
        else:
            _show_design(console, args.formula, args.data)
    except LmerpyError as err:
        console.print(f"error: {err}", markup=False, highlight=False, style="red")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
