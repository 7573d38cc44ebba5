"""Small text formatters and the file writer shared by the model card and the HTML reports."""

from __future__ import annotations

import html
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .._version import __version__


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


SHARES = (
    "Share: at each noise level every patch of the image (one per pixel) spreads one unit of weight over "
    "the patches of the training set (a softmax over their distances); an item's score is the weight it "
    "receives, averaged over the levels, and its share that score over the total score, which is the number "
    "of patches (256 for a 16x16 image)."
)
"""What a share is, for every report that shows one."""


def images_noun(origins: Iterable[str | None], count: int) -> str:
    """``"3 generated images"``, ``"1 existing image"``, or ``"4 images"`` when both kinds are mixed
    (``origins``: each result's ``origin``; results without one were generated)."""
    kinds = {origin or "generated" for origin in origins}
    adjective = f"{kinds.pop()} " if len(kinds) == 1 else ""
    return f"{count:,} {adjective}image{'s' if count != 1 else ''}"


def html_head(title: str, css: str) -> str:
    """The start of a self-contained report page: doctype, ``<head>`` with the generator tag, the title
    and the inline ``css``."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="diffusers-attr {escape(__version__)}">
<title>{escape(title)}</title>
<style>{css}</style>
</head>"""


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file renamed into place, so a reader never
    sees a half-written file and a failure leaves the old file (or none)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        os.chmod(partial, 0o644)
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
