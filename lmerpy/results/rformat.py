"""R's number formatting and printing rules, so lmerpy prints what lme4 prints.

``format_numbers`` is R's ``format(x, digits=, nsmall=)`` (formatReal: common number of
decimals, fixed unless scientific is narrower); ``abbreviate`` is R's ``abbreviate``;
``print_matrix`` is ``print.default`` of a character matrix with ``quote = FALSE``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def _scientific(x: float, digits: int) -> tuple[bool, int, int, bool]:
    """R's scientific(): sign, decimal exponent and significant digits at ``digits``."""
    if x == 0:
        return False, 0, 1, False
    neg = x < 0
    alpha = abs(x)
    kp = math.floor(math.log10(alpha)) - digits + 1
    r_prec = alpha / 10.0**kp if kp > -300 else alpha * 10.0**-kp
    if r_prec < 10.0 ** (digits - 1):
        r_prec *= 10.0
        kp -= 1
    alpha_i = round(r_prec)  # nearbyint: round half to even, as C's default
    nsig = digits
    for _ in range(digits):
        alpha_i /= 10.0
        if alpha_i == math.floor(alpha_i):
            nsig -= 1
        else:
            break
    if nsig == 0 and digits > 0:
        nsig = 1
        kp += 1
    kpower = kp + digits - 1
    # does rounding to `digits` significant digits add a digit to the left (9.99 -> 10.0)?
    rgt = max(0, min(digits - kpower, 22))
    fuzz = 0.5 / 10.0**rgt
    widens = 0 < kpower <= 22 and abs(x) < 10.0**kpower - fuzz
    return neg, kpower, nsig, widens


def format_numbers(values: Sequence[float], digits: int = 7, nsmall: int = 0,
                   width: int = 0) -> list[str]:
    """R's ``format(values, digits=digits, nsmall=nsmall)``: one common layout, right-aligned."""
    vals = [float(v) + 0.0 for v in values]  # + 0.0: R prints -0 as 0
    finite = [v for v in vals if math.isfinite(v)]
    neg = 0
    mxsl = rgt = mxns = -(10**9)
    mxe, mne = -(10**9), 10**9
    for v in finite:
        sgn, kpower, nsig, widens = _scientific(v, digits)
        left = kpower + 1
        if widens:
            left -= 1
        sleft = int(sgn) + (1 if left <= 0 else left)
        right = nsig - left
        if sgn:
            neg = 1
        rgt = max(rgt, right)
        mxsl = max(mxsl, sleft)
        mxns = max(mxns, nsig)
        mxe = max(mxe, kpower)
        mne = min(mne, kpower)
    out: list[str] = []
    if finite:
        if rgt < 0:
            rgt = 0
        wF = mxsl + rgt + (rgt != 0)
        e = 2 if (mxe >= 100 or mne <= -99) else 1
        d = mxns - 1
        wE = neg + (d > 0) + d + 4 + e
        fixed = wF <= wE
        if fixed:
            rgt = max(rgt, nsmall)
    for v in vals:
        if math.isnan(v):
            out.append("NaN")
        elif math.isinf(v):
            out.append("Inf" if v > 0 else "-Inf")
        elif fixed:
            text = f"{v:.{rgt}f}"
            out.append(text[1:] if text.startswith("-") and float(text) == 0 else text)
        else:
            mant, _, exp = f"{v:.{d}e}".partition("e")
            sign, digits_e = exp[0], exp[1:].lstrip("0")
            out.append(f"{mant}e{sign}{digits_e.rjust(e + 1, '0')}")
    w = max([len(s) for s in out] + [width])
    return [s.rjust(w) for s in out]


def format_pval(pv: Sequence[float], digits: int = 3,
                eps: float = float(np.finfo(float).eps)) -> list[str]:
    """R's ``format.pval()``: p-values from about 1e-3 up fixed, smaller ones in scientific
    notation (each group formatted in common), those below ``eps`` as ``<2e-16``."""
    pv = np.asarray(pv, dtype=np.float64)
    out = [""] * len(pv)
    is0 = pv < eps
    rest = np.flatnonzero(~is0)
    texts: list[str] = []
    if len(rest):
        vals = pv[rest]
        expo = np.floor(np.log10(np.where(vals > 0, vals, 1e-50)))
        fixp = (expo >= -3) | ((expo == -4) & (digits > 1))
        texts = [""] * len(rest)
        for mask in (fixp, ~fixp):
            idx = np.flatnonzero(mask)
            if len(idx):
                for i, t in zip(idx, format_numbers(vals[idx], digits)):
                    texts[i] = t
        for i, t in zip(rest, texts):
            out[i] = t
    if is0.any():
        d = max(1, digits - 2)
        if len(rest):
            nc = max(len(t) for t in texts)
            if d > 1 and d + 6 > nc:
                d = max(1, nc - 7)
            sep = "" if d == 1 and nc <= 6 else " "
        else:
            sep = "" if d == 1 else " "
        text = "<" + sep + format_numbers([eps], d)[0].strip()
        for i in np.flatnonzero(is0):
            out[i] = text
    return out


def format_number(value: float, digits: int = 7) -> str:
    return format_numbers([value], digits)[0]


def r_round(x, digits: int = 0):
    """R's round(): IEC 60559 half-to-even at the given decimals (numpy agrees)."""
    return np.round(np.asarray(x, dtype=np.float64), digits)


def cat_number(x: float) -> str:
    """How R's cat() writes one number (up to 7 significant digits)."""
    return format_number(x, 7).strip()


def zapsmall(x: np.ndarray, digits: int) -> np.ndarray:
    """R's (4.2) zapsmall(): round(x, digits - log10(max|x|)); R's round() takes the nearest
    whole number of digits when given a fraction."""
    x = np.asarray(x, dtype=np.float64)
    mx = np.max(np.abs(x[np.isfinite(x)])) if np.isfinite(x).any() else 0.0
    dig = max(0.0, digits - math.log10(mx)) if mx > 0 else digits
    return np.round(x, int(math.floor(dig + 0.5)))


def abbreviate(name: str, minlength: int = 4) -> str:
    """R's abbreviate() (method 'left.kept'): drop lower-case vowels, then lower-case letters,
    from the right, until the name is at most ``minlength`` characters."""
    s = list(name.strip())
    if len(s) <= minlength:
        return "".join(s)

    def first_char(i: int) -> bool:
        return s[i - 1].isspace()

    def last_char(i: int) -> bool:
        return not s[i - 1].isspace() and (i + 1 >= len(s) or s[i + 1].isspace())

    def vowel(i: int) -> bool:
        return s[i] in "aeiou"

    def spaces() -> int:
        return sum(1 for c in s[1:] if c.isspace())

    def done() -> bool:
        return len(s) - spaces() <= minlength

    passes = [
        lambda i: vowel(i) and last_char(i),
        lambda i: vowel(i) and not first_char(i),
        lambda i: s[i].islower() and last_char(i),
        lambda i: s[i].islower() and not first_char(i),
        lambda i: not first_char(i) and not s[i].isspace(),
    ]
    for rule in passes:
        i = len(s) - 1
        while i > 0:
            if i < len(s) and rule(i):
                del s[i]
            if done():
                break
            i -= 1
        if done():
            break
    if len(s) > minlength:
        s = [c for k, c in enumerate(s) if k == 0 or not c.isspace()]
    return "".join(s)


def print_matrix(cells: list[list[str]], colnames: list[str], rownames: list[str],
                 right: bool = False, width: int | None = None) -> list[str]:
    """R's print.default of a character matrix, quote = FALSE (left-aligned unless right);
    with ``width`` (R's getOption("width")), the columns that do not fit (a line stays
    narrower than ``width``, as R's printMatrix keeps it) go on in further
    blocks, each with the row names, as R wraps a wide matrix."""
    rw = max([len(r) for r in rownames] + [0])
    widths = [max([len(c)] + [len(row[j]) for row in cells]) for j, c in enumerate(colnames)]

    def cell(text: str, w: int) -> str:
        return text.rjust(w) if right else text.ljust(w)

    blocks, start = [], 0
    while start < len(colnames) or not blocks:
        stop, used = start, rw
        while stop < len(colnames) and (stop == start or width is None
                                        or used + 1 + widths[stop] < width):
            used += 1 + widths[stop]
            stop += 1
        blocks.append(range(start, stop))
        start = stop
    lines = []
    for block in blocks:
        lines.append(" " * rw + "".join(" " + cell(colnames[j], widths[j]) for j in block))
        for name, row in zip(rownames, cells):
            lines.append(name.ljust(rw) + "".join(" " + cell(row[j], widths[j])
                                                  for j in block))
    return lines


def print_named(values: list[str], names: list[str], gap: int = 1, width: int = 80
                ) -> list[str]:
    """R's print of a named vector: one common column width, each field then ``gap``
    spaces (print.gap), as many fields a line as fit in ``width`` (getOption("width"))."""
    w = max(len(x) for x in list(values) + list(names))
    per_line = max(1, width // (w + gap))
    lines = []
    for start in range(0, len(names), per_line):
        lines.append("".join(n.rjust(w) + " " * gap for n in names[start:start + per_line]))
        lines.append("".join(v.rjust(w) + " " * gap for v in values[start:start + per_line]))
    return lines


SIGNIF_LEGEND = "Signif. codes:  0 ‘***’ 0.001 ‘**’ 0.01 ‘*’ 0.05 ‘.’ 0.1 ‘ ’ 1"


def stars(p: float) -> str:
    """R's symnum() significance stars."""
    for cut, mark in ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, ".")):
        if p < cut:
            return mark
    return " "


def print_coefmat(table, digits: int, cs: tuple = (), tst: tuple = (), zap: tuple = (),
                  width: int | None = None, has_p: bool | None = None) -> list[str]:
    """R's printCoefmat (stats/R/lm.R) of a DataFrame whose last column, if named
    ``Pr(...)`` (or with ``has_p``), holds p-values: the ``cs`` columns (coefficients and
    standard errors) rounded together to digits − (digits before the point of the smallest)
    and formatted in common; the test statistics ``tst`` rounded to dig.tst = digits − 1
    decimals, then formatted; ``zap`` columns zapsmall()ed; every other column formatted on
    its own; a
    non-zero value shown as 0 formatted again with digits − 1 (R's not.both.0); p-values
    by format.pval(dig.tst) with stars and their legend where one is below 0.1; missing
    values blank."""
    names, rows = list(table.columns), list(table.index)
    if has_p is None:
        has_p = bool(names) and names[-1].startswith("Pr(")
    dig_tst = max(1, min(5, digits - 1))
    X = table.to_numpy(dtype=np.float64)
    ok = np.isfinite(X)
    cells = np.full(X.shape, "", dtype=object)
    X = X.copy()
    for j in (names.index(c) for c in zap):
        X[ok[:, j], j] = zapsmall(X[ok[:, j], j], digits)
    cs_j = [names.index(c) for c in cs]
    if cs_j:
        block = X[:, cs_j]
        acs = np.abs(block[np.isfinite(block)])
        acs = acs[acs != 0]
        dec = int(max(1, *(digits - (1 + np.floor(np.log10([acs.min(), acs.max()])))))) \
            if len(acs) else digits
        good = np.isfinite(block)
        texts = iter(format_numbers(r_round(block[good], dec), digits))
        for i, j in zip(*np.nonzero(good)):
            cells[i, cs_j[j]] = next(texts)
    tst_j = [names.index(c) for c in tst]
    for j in tst_j:
        for i, text in zip(np.flatnonzero(ok[:, j]), format_numbers(r_round(X[ok[:, j], j],
                                                                            dig_tst), digits)):
            cells[i, j] = text
    last = len(names) - 1 if has_p else len(names)
    for j in (j for j in range(last) if j not in cs_j and j not in tst_j):
        for i, text in zip(np.flatnonzero(ok[:, j]), format_numbers(X[ok[:, j], j], digits)):
            cells[i, j] = text
    for j in (j for j in range(last) if j not in tst_j):  # not.both.0
        for i in np.flatnonzero(ok[:, j]):
            if X[i, j] != 0 and float(cells[i, j]) == 0:
                cells[i, j] = format_numbers([X[i, j]], max(1, digits - 1))[0]
    header, legend = list(names), []
    if has_p:
        p = X[:, -1]
        good = np.isfinite(p)
        for i, text in zip(np.flatnonzero(good), format_pval(p[good], dig_tst)):
            cells[i, -1] = text
        if (p[good] < 0.1).any():
            marks = [stars(v) if np.isfinite(v) else "" for v in p]
            w = max(len(m) for m in marks)
            cells = np.column_stack([cells, [m.ljust(w) for m in marks]])
            header.append(" " * w)
            legend = ["---", SIGNIF_LEGEND]
    return print_matrix([list(r) for r in cells], header, rows, right=True,
                        width=width) + legend
