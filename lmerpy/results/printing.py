"""lme4's ``print(m)`` (print.merMod): the short display of a fit, line by line."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .rformat import format_numbers, print_named, r_round
from .summary import (
    SUMMARY_DIGITS,
    aic_lines,
    dispersion_lines,
    groups_line,
    header_lines,
    network_lines,
    training_lines,
)

if TYPE_CHECKING:
    from .model import LmerResult


def print_lines(m: LmerResult) -> list[str]:
    """The text of lme4's ``print(m)``: the criterion, the random effects' standard
    deviations and the fixed effects' estimates (``summary()`` has the rest)."""
    lines = header_lines(m)
    if m.torch_info is not None:
        lines += training_lines(m)
    elif m.REML and m.family is None:
        crit = format_numbers([float(r_round(m.REMLcrit(), 4))], 7)[0].strip()
        lines.append(f"REML criterion at convergence: {crit}")
    else:
        lines += aic_lines(m, 4)
    lines.append("Random effects:")
    lines += m.VarCorr().format_lines(SUMMARY_DIGITS, ("Std.Dev.",))
    lines.append(groups_line(m.nobs, m.ngrps))
    lines += dispersion_lines(m)[1:]
    if m.torch_info is not None and m.design.nn:
        lines += network_lines(m)[1:]
    fe = m.fixef()
    if len(fe):
        lines.append("Fixed Effects:" if m.torch_info is None else "Linear fixed effects:")
        values = [v.strip() for v in format_numbers(fe.to_numpy(), SUMMARY_DIGITS)]
        lines += print_named(values, list(fe.index), gap=2)
    elif m.torch_info is None:
        lines.append("No fixed effect coefficients")
    lines += _warning_line(m)
    return lines


def _warning_line(m: LmerResult) -> list[str]:
    """lme4's .prt.warn(summary = FALSE): one line when the optimiser or lme4 warned."""
    info = m.optinfo
    code = info.get("code_r", 0)
    messages = list(info.get("messages_conv", []))
    warnings = list(info.get("warnings", []))
    if not (code > 0 or messages or warnings):
        return []
    return [f"optimizer ({info.get('optimizer', 'nloptwrap')}) convergence code: {code} "
            f"({'OK' if code == 0 else 'see summary'}) ; {len(warnings)} optimizer warnings; "
            f"{len(messages)} lme4 warnings "]


__all__ = ["print_lines"]
