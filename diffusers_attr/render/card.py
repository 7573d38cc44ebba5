"""A one-picture summary of an attribution: the output, where its top source is used, the
dominant-source collage, and the top training items with their shares."""

from __future__ import annotations

from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

from .colormap import CATEGORICAL

TILE = 112
LABEL = 30
GAP = 8


def _tile(image: Image.Image) -> Image.Image:
    return image.convert("RGB").resize((TILE, TILE), Image.NEAREST if max(image.size) < TILE else Image.BICUBIC)


def summary_card(
    output: Image.Image, heatmap: Image.Image, collage: Image.Image,
    sources: Sequence[Image.Image], captions: Sequence[str],
) -> Image.Image:
    """Tiles left to right: output, heatmap, collage, then one tile per source with its caption.

    Each source tile gets a bar in its collage colour so the collage can be read against it.
    """
    tiles = [(_tile(output), "output"), (_tile(heatmap), "top source used"), (_tile(collage), "dominant sources")]
    tiles += [(_tile(source), caption) for source, caption in zip(sources, captions)]
    width = len(tiles) * (TILE + GAP) + GAP
    card = Image.new("RGB", (width, TILE + LABEL + 2 * GAP), "white")
    draw = ImageDraw.Draw(card)
    font = ImageFont.load_default(size=12)
    for position, (tile, caption) in enumerate(tiles):
        left = GAP + position * (TILE + GAP)
        card.paste(tile, (left, GAP))
        source_rank = position - 3
        if 0 <= source_rank < len(CATEGORICAL):
            colour = tuple(int(c) for c in CATEGORICAL[source_rank])
            draw.rectangle([left, GAP + TILE, left + TILE, GAP + TILE + 3], fill=colour)
        for line, text in enumerate(caption.split("\n")[:2]):
            draw.text((left, GAP + TILE + 5 + 12 * line), text, fill=(30, 30, 30), font=font)
    return card
