"""Strict JSON: what the package writes is valid JSON (no NaN or infinity), what it reads is depth-limited.

Python's ``json`` writes ``NaN`` and ``Infinity`` (not JSON: browsers and other tools refuse it) and
recurses once per nesting level when reading, so a small file of deeply nested brackets raises
``RecursionError``. :func:`dumps` refuses non-finite numbers by name; :func:`loads` refuses text
nested deeper than :data:`MAX_DEPTH` with a ``ValueError`` before parsing.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 64
"""The deepest nesting of objects and arrays :func:`loads` accepts (attribution metadata needs < 10)."""

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def dumps(value: Any, **options: Any) -> str:
    """``json.dumps`` that raises a ``ValueError`` naming the first NaN or infinite number it meets."""
    try:
        return json.dumps(value, allow_nan=False, **options)
    except ValueError as error:
        where = _non_finite(value)
        raise ValueError(f"refusing to write {where or 'a non-finite number'}: NaN and infinity are not JSON") from error


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` for untrusted text: ``ValueError`` when it is nested deeper than ``max_depth`` or
    holds ``NaN``/``Infinity`` (not JSON)."""
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8")
    depth = deepest = 0
    for bracket in _BRACKET.findall(_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        if depth > deepest:
            deepest = depth
            if deepest > max_depth:
                raise ValueError(f"JSON nested more than {max_depth} levels deep; not attribution metadata")
    return json.loads(text, parse_constant=_refuse_constant)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _non_finite(value: Any, where: str = "value") -> str | None:
    """The path of the first non-finite float inside ``value`` (``value["top"][0]["score"]=nan``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{where}={value}"
    if isinstance(value, dict):
        items = ((f"{where}[{k!r}]", v) for k, v in value.items())
    elif isinstance(value, (list, tuple)):
        items = ((f"{where}[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for path, item in items:
        found = _non_finite(item, path)
        if found:
            return found
    return None
