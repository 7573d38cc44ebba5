"""Small text formatters shared by the model card and the HTML reports."""

from __future__ import annotations

import html
from typing import Any


def escape(value: Any) -> str:
    """Escaped text for HTML content and attribute values."""
    return html.escape(str(value), quote=True)


def percent(share: float | None) -> str:
    """A share as a percentage with precision that suits its size (``–`` when unknown)."""
    if share is None:
        return "–"
    if share >= 0.1:
        return f"{share:.1%}"
    if share >= 0.001:
        return f"{share:.2%}"
    return f"{share * 100:.2g}%"


def ratio(value: float) -> str:
    """A dominance ratio such as ``4.2x`` (``no runner-up`` when infinite)."""
    return "no runner-up" if value == float("inf") else f"{value:.1f}x"
