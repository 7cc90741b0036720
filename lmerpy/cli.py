"""Command line: ``lmerpy demo`` (the README's main job), ``lmerpy fit``, ``parse``, ``design``.

Exit codes: 0 success, 2 a bad formula, data or model (lmerpy's own error), 3 a file that
cannot be read or written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from . import datasets
from .api import glmer, glmer_nb, lmer
from .design import design
from .engines.exact import LmerControl
from .engines.family import LINKS
from .engines.glmm import GlmerControl
from .engines.optimizers import OPTIMIZERS
from .errors import LmerpyError, ModelError
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


class FileProblem(Exception):
    """A file the command line cannot read or write (exit code 3)."""


def read_table(path: str) -> pd.DataFrame:
    """A CSV or Parquet file as a DataFrame, or a FileProblem saying what is wrong."""
    p = Path(path)
    if not p.exists():
        raise FileProblem(f"{path}: no such file")
    try:
        if p.suffix.lower() in {".parquet", ".pq"}:
            return pd.read_parquet(p)
        return pd.read_csv(p)
    except ImportError as err:
        raise FileProblem(f"{path}: reading Parquet needs pyarrow ({err})") from err
    except Exception as err:  # malformed CSV/Parquet: report it, no traceback
        raise FileProblem(f"{path}: cannot be read as "
                          f"{'Parquet' if p.suffix.lower() in {'.parquet', '.pq'} else 'CSV'}"
                          f" ({type(err).__name__}: {err})") from err


def _fit(args, console: Console) -> None:
    data = read_table(args.data)
    name = Path(args.data).stem
    training = {}
    if args.seed is not None:
        training["seed"] = args.seed
    if args.epochs is not None:
        training["epochs"] = args.epochs
    if args.engine == "torch" or training:
        training["verbose"] = False
    lmm = args.family == "gaussian" and args.link in (None, "identity")
    if args.contrasts:
        training["contrasts"] = _contrasts(args.contrasts)
    if args.optimizer:
        training["control"] = (LmerControl if lmm else GlmerControl)(optimizer=args.optimizer)
    if lmm:
        model = lmer(args.formula, data, REML=not args.ml, engine=args.engine, data_name=name,
                     **training)
    elif args.family == "negative.binomial":
        model = glmer_nb(args.formula, data, nAGQ=args.nagq, engine=args.engine,
                         data_name=name, **training)
    else:
        model = glmer(args.formula, data, family=args.family, link=args.link,
                      nAGQ=args.nagq, engine=args.engine, data_name=name, **training)
    console.print(str(model.summary(ddf=args.ddf) if args.ddf else model.summary()),
                  markup=False, highlight=False)
    if args.anova:
        from .results.wald_anova import wald_anova

        console.print("\n" + str(wald_anova(model)), markup=False, highlight=False)
    if args.emmeans:
        from .results.emmeans import emmeans

        console.print("\n" + str(emmeans(model, args.emmeans)), markup=False,
                      highlight=False)
    if args.allfit:
        from .allfit import allFit

        refits = allFit(model)
        console.print(f"\n{refits}\n\n{refits.summary()}", markup=False, highlight=False)
    if args.tidy:
        from .results.tidy import tidy

        _write(args.tidy, tidy(model, conf_int=True).to_csv(index=False))
    if args.json:
        from .results.export import results_dict

        _write(args.json, json.dumps(results_dict(model), indent=1))
    if args.predict:
        new = read_table(args.predict)
        kind = {"type": "response"} if model.family is not None else {}
        pred = model.predict(new, allow_new_levels=True, **kind)
        out = pd.DataFrame({"row": range(len(new)), "prediction": pred.to_numpy()})
        if args.out:
            _write(args.out, out.to_csv(index=False))
        else:
            console.print(out.to_csv(index=False), markup=False, highlight=False)


def _contrasts(specs: list[str]) -> dict[str, str]:
    """``A=contr.sum`` pairs (one option each) as R's contrasts list."""
    out = {}
    for spec in specs:
        name, sep, coding = spec.partition("=")
        if not sep or not name or not coding:
            raise ModelError(f"--contrasts takes FACTOR=CODING (e.g. A=contr.sum), not "
                             f"{spec!r}")
        out[name.strip()] = coding.strip()
    return out


def _write(path: str, text: str) -> None:
    try:
        Path(path).write_text(text)
    except OSError as err:
        raise FileProblem(f"{path}: cannot be written ({err.strerror})") from err


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lmerpy", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("demo", help=f"fit {DEMO_FORMULA} to sleepstudy and print the summary")
    p = sub.add_parser("parse", help="print the canonical form of a formula")
    p.add_argument("formula")
    d = sub.add_parser("design", help="evaluate a formula on an embedded data set")
    d.add_argument("formula")
    d.add_argument("--data", default="sleepstudy", choices=datasets.names())
    f = sub.add_parser("fit", help="fit a formula to a CSV or Parquet file, print the summary")
    f.add_argument("formula")
    f.add_argument("data", help="a .csv or .parquet file")
    f.add_argument("--family", default="gaussian",
                   choices=["gaussian", "binomial", "poisson", "negative.binomial", "Gamma",
                            "inverse.gaussian"],
                   help="negative.binomial: lme4's glmer.nb (its theta estimated); Gamma "
                        "and inverse.gaussian with their dispersion estimated")
    f.add_argument("--link", choices=list(LINKS),
                   help="the family's link (R's names; default: the family's own)")
    f.add_argument("--ddf", choices=["Satterthwaite", "Kenward-Roger"],
                   help="lmerTest's t-tests (df, p-values) in the summary of an lmer fit")
    f.add_argument("--ml", action="store_true", help="maximum likelihood instead of REML")
    f.add_argument("--nagq", type=int, default=1, help="glmer's nAGQ")
    f.add_argument("--engine", default="auto", choices=["auto", "exact", "torch"])
    f.add_argument("--seed", type=int, default=None)
    f.add_argument("--epochs", type=int, default=None, help="torch engine: most epochs")
    f.add_argument("--emmeans", metavar="SPECS",
                   help="emmeans' marginal means, e.g. 'pairwise ~ A | B' (with contrasts)")
    f.add_argument("--anova", action="store_true",
                   help="car's type II Wald tests of the fixed-effect terms")
    f.add_argument("--contrasts", action="append", metavar="FACTOR=CODING",
                   help="a factor's coding, as R's contrasts= (e.g. A=contr.sum; repeatable)")
    f.add_argument("--optimizer", choices=list(OPTIMIZERS),
                   help="the exact engine's optimiser (lmerControl(optimizer=))")
    f.add_argument("--allfit", action="store_true",
                   help="refit with every optimiser and compare (lme4's allFit)")
    f.add_argument("--tidy", metavar="CSV",
                   help="write broom.mixed's tidy table (Wald intervals) to this CSV file")
    f.add_argument("--json", help="write every result as JSON to this file")
    f.add_argument("--predict", help="a .csv/.parquet of new rows to predict")
    f.add_argument("--out", help="where to write the predictions (CSV)")
    args = parser.parse_args(argv)
    console = Console()
    try:
        if args.command == "demo":
            sleepstudy = datasets.load("sleepstudy")
            model = lmer(DEMO_FORMULA, sleepstudy, data_name="sleepstudy")
            console.print(str(model.summary()), markup=False, highlight=False)
        elif args.command == "fit":
            _fit(args, console)
        elif args.command == "parse":
            console.print(str(parse(args.formula)), markup=False, highlight=False)
        else:
            _show_design(console, args.formula, args.data)
    except LmerpyError as err:
        Console(stderr=True, soft_wrap=True).print(f"error: {err}", markup=False,
                                                   highlight=False, style="red")
        return 2
    except FileProblem as err:
        Console(stderr=True, soft_wrap=True).print(f"error: {err}", markup=False,
                                                   highlight=False, style="red")
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
