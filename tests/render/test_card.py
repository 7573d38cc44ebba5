"""The summary card: tiles keep their pictures' aspect ratio and captions stay inside their tile."""

import numpy as np
from PIL import Image

from diffusers_attr.render import summary_card
from diffusers_attr.render.card import GAP, LABEL, TILE
from diffusers_attr.render.legend import fit_text, font


def test_long_ids_are_shortened_to_their_tile():
    square = Image.new("RGB", (16, 16), (90, 90, 90))
    long_ids = [f"#{k} a-very-long-training-item-id-{k:04d}.png\n{12.5 - k:.1f}%" for k in range(1, 5)]
    card = np.asarray(summary_card(square, square, square, [square] * 4, long_ids))
    captions = card[GAP + TILE + 4 : GAP + TILE + LABEL + GAP]
    for position in range(1, 7):  # the gaps between tiles carry no ink
        left = position * (TILE + GAP)
        assert (captions[:, left : left + GAP - 1] == 255).all(), position
    shortened = fit_text("a-very-long-training-item-id-0001.png", TILE)
    assert "…" in shortened and shortened.endswith(".png") and font().getlength(shortened) <= TILE
    assert fit_text("short", TILE) == "short"


def test_tiles_keep_the_aspect_ratio():
    wide = Image.new("RGB", (300, 100), (0, 0, 0))
    card = np.asarray(summary_card(wide, wide, wide, [], []))
    tile = card[GAP : GAP + TILE, GAP : GAP + TILE]
    band = round(TILE / 3)
    top = (TILE - band) // 2
    assert (tile[: top - 1] == 255).all() and (tile[top + 1 : top + band - 1] == 0).all()
