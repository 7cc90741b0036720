"""The name a caller gave an object, as R prints its arguments ('Data: sleepstudy')."""

from __future__ import annotations

import inspect


def caller_name(obj, depth: int = 2) -> str | None:
    """The caller's variable name for ``obj`` (R prints 'Data: sleepstudy'); identity only."""
    frame = inspect.currentframe()
    try:
        for _ in range(depth):
            frame = frame.f_back if frame is not None else None
        if frame is None:
            return None
        for name, value in frame.f_locals.items():
            if value is obj and not name.startswith("_"):
                return name
    finally:
        del frame
    return None


__all__ = ["caller_name"]
