"""Legends under pictures written to files: what the heat colours and the collage colours mean."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .colormap import heat

PAD = 6
LINE = 15
_INK = (30, 30, 30)
_MUTED = (95, 102, 119)


def font(size: int = 12) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The font of every caption and legend (Pillow's bundled default, so pictures look the same everywhere)."""
    return ImageFont.load_default(size=size)


def fit_text(text: str, width: float, typeface=None) -> str:
    """``text`` shortened in the middle (``…``) until it is at most ``width`` pixels wide, so both the
    start and the end of a long id stay readable."""
    typeface = typeface or font()
    if typeface.getlength(text) <= width:
        return text
    keep = len(text)
    while keep > 1:
        keep -= 1
        head, tail = text[: (keep + 1) // 2], text[len(text) - keep // 2 :] if keep // 2 else ""
        shortened = f"{head}…{tail}"
        if typeface.getlength(shortened) <= width:
            return shortened
    return "…"


def _with_strip(picture: Image.Image, height: int) -> tuple[Image.Image, ImageDraw.ImageDraw, int]:
    """A white canvas with ``picture`` on top and ``height`` pixels below it; returns the canvas,
    a drawing context and the strip's top."""
    canvas = Image.new("RGB", (picture.width, picture.height + height), "white")
    canvas.paste(picture.convert("RGB"), (0, 0))
    return canvas, ImageDraw.Draw(canvas), picture.height


def with_heat_legend(picture: Image.Image, title: str) -> Image.Image:
    """``picture`` with a strip below it: ``title`` (one line per ``\\n``, each shortened to fit), then
    the heat ramp from "unused" to "most used"."""
    typeface = font()
    lines = title.split("\n")
    canvas, draw, top = _with_strip(picture, (len(lines) + 1) * LINE + 3 * PAD + 8)
    width = picture.width - 2 * PAD
    for number, line in enumerate(lines):
        draw.text((PAD, top + PAD + number * LINE), fit_text(line, width, typeface), fill=_INK, font=typeface)
    bar_top = top + PAD + len(lines) * LINE + 2
    ramp = heat(np.linspace(0.0, 1.0, max(width, 1)))[None].repeat(8, axis=0)
    canvas.paste(Image.fromarray(ramp), (PAD, bar_top))
    labels_top = bar_top + 10
    draw.text((PAD, labels_top), "unused", fill=_MUTED, font=typeface)
    most = "most used"
    draw.text((PAD + width - typeface.getlength(most), labels_top), most, fill=_MUTED, font=typeface)
    return canvas


def with_colour_legend(picture: Image.Image, title: str, entries: Sequence[tuple[Sequence[int], str]]) -> Image.Image:
    """``picture`` with a strip below it: ``title``, then one swatch and text per entry (two columns
    when the picture is wide enough for the longest entry)."""
    typeface = font()
    widest = max((typeface.getlength(text) for _, text in entries), default=0.0) + 18
    columns = 2 if widest <= (picture.width - 2 * PAD) // 2 else 1
    rows = -(-len(entries) // columns)
    canvas, draw, top = _with_strip(picture, LINE + rows * LINE + 2 * PAD + 2)
    draw.text((PAD, top + PAD), fit_text(title, picture.width - 2 * PAD, typeface), fill=_INK, font=typeface)
    column_width = (picture.width - 2 * PAD) // columns
    for position, (colour, text) in enumerate(entries):
        row, column = divmod(position, columns)
        left, y = PAD + column * column_width, top + PAD + LINE + 2 + row * LINE
        draw.rectangle([left, y + 2, left + 9, y + 11], fill=tuple(int(c) for c in colour))
        draw.text((left + 14, y), fit_text(text, column_width - 18, typeface), fill=_INK, font=typeface)
    return canvas
