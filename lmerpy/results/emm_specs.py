"""emmeans' specs: ``"~ A"``, ``"~ A * B | C"``, ``"pairwise ~ A"``, ``"~ 1"`` — a small
grammar, read token by token with the character of any error; the names are checked
against the model later, where the data are."""

from __future__ import annotations

import re

from ..errors import ModelError
from .emm_contrasts import CONTRAST_METHODS

_SPEC_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z_.][A-Za-z0-9_.]*|1\b)|(?P<op>[~|+*:]))")


def parse_specs(specs) -> tuple[str | None, list[str], list[str]]:
    """``"method ~ a * b | c"`` → (method, [a, b], [c]); a list of names is the specs."""
    if isinstance(specs, (list, tuple)):
        return None, names_of(specs), []
    if not isinstance(specs, str):
        raise ModelError(f"specs must be a string such as '~ A | B' or a list of names, not "
                         f"{type(specs).__name__}")
    tokens, pos = [], 0
    text = specs.rstrip()
    while pos < len(text):
        match = _SPEC_TOKEN.match(text, pos)
        if match is None:
            where = len(text) - len(text[pos:].lstrip())
            raise ModelError(f"specs {specs!r}: unexpected {text[where]!r} at character "
                             f"{where + 1}")
        tokens.append((match.group("name") or match.group("op"), match.end()))
        pos = match.end()
    method = None
    if len(tokens) > 1 and tokens[1][0] == "~" and tokens[0][0] not in "~|+*:":
        method = tokens[0][0]
        if method not in CONTRAST_METHODS:
            raise ModelError(f"specs {specs!r}: unknown contrast method {method!r} (use "
                             f"{', '.join(CONTRAST_METHODS)})")
        tokens = tokens[1:]
    if tokens and tokens[0][0] == "~":
        tokens = tokens[1:]
    parts: list[list[str]] = [[]]
    expect_name = True
    for token, end in tokens:
        is_name = token not in "~|+*:"
        if is_name != expect_name or token == "~":
            raise ModelError(f"specs {specs!r}: unexpected {token!r} ending at character "
                             f"{end}")
        if is_name:
            parts[-1].append(token)
        elif token == "|":
            if len(parts) == 2:
                raise ModelError(f"specs {specs!r}: a second '|' at character {end}")
            parts.append([])
        expect_name = not is_name
    if expect_name:
        raise ModelError(f"specs {specs!r}: a variable name is missing at the end")
    if "1" in parts[-1] and len(parts) > 1 or parts[0].count("1") and len(parts[0]) > 1:
        raise ModelError(f"specs {specs!r}: '1' (the overall mean) stands alone before '|'")
    return method, [p for p in parts[0] if p != "1"], parts[1] if len(parts) > 1 else []


def names_of(value) -> list[str]:
    names = [value] if isinstance(value, str) else list(value)
    if not all(isinstance(n, str) and n for n in names):
        raise ModelError(f"expected variable names, not {value!r}")
    return names


__all__ = ["names_of", "parse_specs"]
