"""A one-picture summary of an attribution: the output, where its top source is used, the
dominant-source collage, and the top training items with their shares."""

from __future__ import annotations

from typing import Sequence

from PIL import Image, ImageDraw

from .colormap import CATEGORICAL
from .legend import fit_text, font

TILE = 112
LABEL = 30
GAP = 8


def _tile(image: Image.Image) -> Image.Image:
    """``image`` fitted into a TILE x TILE square, aspect ratio kept (letterboxed on white)."""
    scale = TILE / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    fitted = image.convert("RGB").resize(size, Image.NEAREST if max(image.size) < TILE else Image.BICUBIC)
    tile = Image.new("RGB", (TILE, TILE), "white")
    tile.paste(fitted, ((TILE - size[0]) // 2, (TILE - size[1]) // 2))
    return tile


def summary_card(
    output: Image.Image, heatmap: Image.Image, collage: Image.Image,
    sources: Sequence[Image.Image], captions: Sequence[str],
) -> Image.Image:
    """Tiles left to right: output, heatmap, collage, then one tile per source with its caption.

    Each source tile gets a bar in its collage colour so the collage can be read against it. Pictures
    keep their aspect ratio; captions longer than a tile are shortened in the middle.
    """
    tiles = [(_tile(output), "output"), (_tile(heatmap), "top source used"), (_tile(collage), "dominant sources")]
    tiles += [(_tile(source), caption) for source, caption in zip(sources, captions)]
    width = len(tiles) * (TILE + GAP) + GAP
    card = Image.new("RGB", (width, TILE + LABEL + 2 * GAP), "white")
    draw = ImageDraw.Draw(card)
    typeface = font()
    for position, (tile, caption) in enumerate(tiles):
        left = GAP + position * (TILE + GAP)
        card.paste(tile, (left, GAP))
        source_rank = position - 3
        if 0 <= source_rank < len(CATEGORICAL):
            colour = tuple(int(c) for c in CATEGORICAL[source_rank])
            draw.rectangle([left, GAP + TILE, left + TILE, GAP + TILE + 3], fill=colour)
        for line, text in enumerate(caption.split("\n")[:2]):
            draw.text((left, GAP + TILE + 5 + 12 * line), fit_text(text, TILE, typeface), fill=(30, 30, 30), font=typeface)
    return card
