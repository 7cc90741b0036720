"""Parse formula text into expression nodes with the grammar in ``grammar/lmerpy.ebnf``.

Lark builds an LALR(1) parser from that file; this module only turns Lark's tree into
:mod:`lmerpy.formula.nodes` and Lark's errors into :class:`FormulaError` with a column.
Nothing here evaluates anything.
"""

from __future__ import annotations

import ast
from functools import lru_cache
from importlib import resources
from pathlib import Path

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from ..errors import FormulaError
from . import nodes as N

MAX_LENGTH = 20_000  # formulas longer than this are refused before parsing

_TOKEN_TEXT = {
    "RPAR": "')'", "LPAR": "'('", "COMMA": "','", "BAR": "'|'", "TILDE": "'~'",
    "RSQB": "']'", "LSQB": "'['", "EQUALS": "'='",
}


def grammar_text() -> str:
    """The grammar: packaged copy in a wheel, else the repository's ``grammar/`` file."""
    packaged = resources.files("lmerpy.formula").joinpath("lmerpy.ebnf")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    repo = Path(__file__).resolve().parents[2] / "grammar" / "lmerpy.ebnf"
    return repo.read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def _lark() -> Lark:
    # cache=True: Lark keeps the built LALR tables in the temp folder (keyed by the grammar's
    # hash), so a new process loads them instead of rebuilding (~90 ms -> a few ms)
    try:
        return Lark(grammar_text(), parser="lalr", propagate_positions=True,
                    maybe_placeholders=True, cache=True)
    except OSError:  # read-only temp folder: build without the cache
        return Lark(grammar_text(), parser="lalr", propagate_positions=True,
                    maybe_placeholders=True)


@v_args(meta=True)
class _ToNodes(Transformer):
    """Lark tree -> nodes; every node keeps the 0-based offset of its first character."""

    def _bin(self, meta, children, op=None):
        left, tok, right = children
        symbol = op or str(tok)
        if symbol == "**":
            symbol = "^"
        return N.BinOp(symbol, left, right, pos=meta.start_pos, op_pos=tok.start_pos)

    def add(self, meta, c):
        return self._bin(meta, c)

    sub = mul = div = interaction = pow = compare = bar = add

    def neg(self, meta, c):
        return N.Unary("-", c[1], pos=meta.start_pos)

    def pos(self, meta, c):
        return N.Unary("+", c[1], pos=meta.start_pos)

    def name(self, meta, c):
        text = str(c[0])
        ident = text[1:-1] if text.startswith("`") else text
        if "__" in ident:
            raise FormulaError(f"name '{ident}' is not allowed (names may not contain '__')",
                               meta.start_pos + 1)
        return N.Name(ident, pos=meta.start_pos)

    def number(self, meta, c):
        return N.Number(float(str(c[0]).rstrip("L")), pos=meta.start_pos)

    def string(self, meta, c):
        return N.String(ast.literal_eval(str(c[0])), pos=meta.start_pos)

    def dot(self, meta, c):
        return N.Dot(pos=meta.start_pos)

    def ellipsis(self, meta, c):
        return N.Ellipsis_(pos=meta.start_pos)

    def paren(self, meta, c):
        return N.Paren(c[1], pos=meta.start_pos)

    def tuple(self, meta, c):
        items = [x for x in c if not isinstance(x, Token) and x is not None]
        return N.Seq(tuple(items), "(", pos=meta.start_pos)

    def list(self, meta, c):
        items = [x for x in c if not isinstance(x, Token) and x is not None]
        return N.Seq(tuple(items), "[", pos=meta.start_pos)

    def kwarg(self, meta, c):
        return ("kw", str(c[0]), c[2], meta.start_pos)

    def arguments(self, meta, c):
        return [x for x in c if not (isinstance(x, Token) and x.type == "COMMA")]

    def call(self, meta, c):
        fn = str(c[0])
        if "__" in fn:
            raise FormulaError(f"name '{fn}' is not allowed (names may not contain '__')",
                               meta.start_pos + 1)
        args: list[N.Node] = []
        kwargs: list[tuple[str, N.Node]] = []
        kw_pos: list[int] = []
        for a in c[2] or []:
            if isinstance(a, tuple) and a and a[0] == "kw":
                _, key, value, at = a
                if key in dict(kwargs):
                    raise FormulaError(f"keyword argument '{key}' given twice", at + 1)
                kwargs.append((key, value))
                kw_pos.append(at)
            else:
                if kwargs:
                    raise FormulaError("positional argument after keyword argument",
                                       a.pos + 1)
                args.append(a)
        return N.Call(fn, tuple(args), tuple(kwargs), tuple(kw_pos), pos=meta.start_pos)

    def formula(self, meta, c):
        lhs, _tilde, rhs = c
        return (lhs, rhs, _tilde.start_pos)

    def start(self, meta, c):
        return c[0]


def _check_brackets(text: str) -> None:
    """Report unbalanced brackets precisely, before the parser's more generic message."""
    stack: list[tuple[str, int]] = []
    pairs = {")": "(", "]": "["}
    quote: str | None = None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
            continue
        if ch in "\"'`":
            quote = ch
        elif ch in "([":
            stack.append((ch, i))
        elif ch in ")]":
            if not stack:
                raise FormulaError(f"unbalanced parentheses: '{ch}' has no matching opening "
                                   f"'{pairs[ch]}'", i + 1, text)
            opener, _ = stack.pop()
            if opener != pairs[ch]:
                raise FormulaError(f"mismatched brackets: '{ch}' closes '{opener}'", i + 1, text)
    if quote:
        raise FormulaError(f"unterminated {'name' if quote == '`' else 'string'}",
                           text.rindex(quote) + 1, text)
    if stack:
        opener, at = stack[-1]
        closer = ")" if opener == "(" else "]"
        raise FormulaError(f"unbalanced parentheses: '{opener}' is never closed with "
                           f"'{closer}'", at + 1, text)


def _describe(tok: Token) -> str:
    if tok.type == "$END":
        return "end of formula"
    return _TOKEN_TEXT.get(tok.type, repr(str(tok)))


def _syntax_error(err: UnexpectedInput, text: str) -> FormulaError:
    if isinstance(err, UnexpectedCharacters):
        return FormulaError(f"unexpected character {text[err.pos_in_stream]!r}",
                            err.pos_in_stream + 1, text)
    if isinstance(err, UnexpectedEOF) or (
        isinstance(err, UnexpectedToken) and err.token.type == "$END"
    ):
        return FormulaError("formula ends too early", len(text.rstrip()) + 1, text)
    assert isinstance(err, UnexpectedToken)
    tok = err.token
    col = tok.start_pos + 1
    before = text[: tok.start_pos].rstrip()
    prev = before[-1:] if before else ""
    if tok.type == "RPAR" and prev == "(":
        return FormulaError("empty parentheses", col, text)
    if tok.type == "RPAR" and prev == "|":
        return FormulaError("empty grouping factor after '|'", col, text)
    if tok.type == "BAR" and prev == "(":
        return FormulaError(f"empty random-effect expression before '{tok}'", col, text)
    if tok.type == "BAR":
        return FormulaError(f"a second bar '{tok}' in one random-effect term", col, text)
    if tok.type == "TILDE":
        return FormulaError("a formula has exactly one '~'", col, text)
    if tok.type == "EQUALS":
        return FormulaError("'=' is only allowed for keyword arguments of a function", col, text)
    return FormulaError(f"unexpected {_describe(tok)}", col, text)


def parse_expression(text: str) -> tuple[N.Node | None, N.Node, int]:
    """Parse ``text`` into (response or None, right-hand side, offset of '~')."""
    if not isinstance(text, str):
        raise FormulaError(f"a formula must be a string, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"formula is longer than {MAX_LENGTH} characters")
    if not text.strip():
        raise FormulaError("empty formula")
    if "~" not in text:
        at = len(text) - len(text.lstrip()) + 1
        raise FormulaError("a formula needs '~' (as in 'y ~ x')", at, text)
    _check_brackets(text)
    try:
        tree = _lark().parse(text)
        return _ToNodes().transform(tree)
    except UnexpectedInput as err:
        raise _syntax_error(err, text) from None
    except FormulaError as err:
        raise FormulaError(err.message, err.column, text) from None
    except Exception as err:  # lark wraps transformer errors; unwrap ours
        inner = getattr(err, "orig_exc", None)
        if isinstance(inner, FormulaError):
            raise FormulaError(inner.message, inner.column, text) from None
        if isinstance(err, RecursionError) or isinstance(inner, RecursionError):
            raise FormulaError("formula is nested too deeply") from None
        raise


__all__ = ["parse_expression", "grammar_text"]
