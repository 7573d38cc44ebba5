"""Heatmap overlays: a map at model resolution, upsampled and blended over the region of an image
it describes (the rest of the image is dimmed)."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .colormap import CATEGORICAL, OTHER_COLOUR, heat

Region = tuple[float, float, float, float]
"""``(left, top, right, bottom)`` in an image's pixels."""

DISPLAY_SIDE = 256
"""Pictures written to files are scaled up by a whole factor until their longer side reaches this."""
_OUTSIDE_DIM = 0.35
"""Brightness kept outside the attributed region."""


def upsample(map_: torch.Tensor, size: tuple[int, int], mode: str = "bilinear") -> np.ndarray:
    """Resize a 2-D map ``[h, w]`` to ``size = (width, height)`` (PIL order) as a float64 array."""
    width, height = size
    grid = map_.detach().double().cpu()[None, None]
    options = {} if mode == "nearest" else {"align_corners": False}
    return F.interpolate(grid, size=(height, width), mode=mode, **options)[0, 0].numpy()


def normalise(values: np.ndarray) -> np.ndarray:
    """Scale to [0, 1] by the maximum (an all-zero map stays zero)."""
    peak = float(values.max()) if values.size else 0.0
    return values / peak if peak > 0 else np.zeros_like(values)


def display_size(size: tuple[int, int]) -> tuple[int, int]:
    """``size`` scaled up by the smallest whole factor that brings its longer side to ``DISPLAY_SIDE``
    (never scaled down), so a 16x16 output is drawn at 256x256 with crisp pixels."""
    factor = max(1, math.ceil(DISPLAY_SIDE / max(size)))
    return size[0] * factor, size[1] * factor


def resized(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """``image`` as RGB at ``size``: whole-factor enlargements keep crisp pixels, others are bicubic."""
    image = image.convert("RGB")
    if image.size == size:
        return image
    whole = size[0] % image.size[0] == 0 and size[1] % image.size[1] == 0 and size[0] > image.size[0]
    return image.resize(size, Image.NEAREST if whole else Image.BICUBIC)


def _pixel_box(region: Region | None, source: tuple[int, int], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """``region`` (in ``source`` pixels; None = all of it) in whole pixels of a picture of ``size``."""
    if region is None:
        return 0, 0, size[0], size[1]
    x, y = size[0] / source[0], size[1] / source[1]
    left, top = round(region[0] * x), round(region[1] * y)
    right, bottom = max(left + 1, round(region[2] * x)), max(top + 1, round(region[3] * y))
    return max(0, left), max(0, top), min(size[0], right), min(size[1], bottom)


def _paint(
    image: Image.Image | None, colours_for: Callable[[tuple[int, int]], np.ndarray], size: tuple[int, int],
    opacity: float, region: Region | None,
) -> Image.Image:
    """The picture at ``size``: ``colours_for(box size)`` blended over ``image`` inside the region's box,
    the image dimmed outside it (without an image: the colours on black)."""
    box = _pixel_box(region, image.size if image is not None else size, size)
    colours = colours_for((box[2] - box[0], box[3] - box[1])).astype(np.float64)
    inside = (slice(box[1], box[3]), slice(box[0], box[2]))
    if image is None:
        canvas = np.zeros((size[1], size[0], 3))
        canvas[inside] = colours
    else:
        picture = np.asarray(resized(image, size), dtype=np.float64)
        canvas = picture * _OUTSIDE_DIM
        canvas[inside] = picture[inside] * (1 - opacity) + colours * opacity
    return Image.fromarray(canvas.round().clip(0, 255).astype(np.uint8))


def overlay(
    image: Image.Image | None, map_: torch.Tensor, size: tuple[int, int], opacity: float = 0.6,
    region: Region | None = None,
) -> Image.Image:
    """The map (normalised to its maximum, heat colours) blended over ``image``, at ``size``.

    ``region`` is the part of ``image`` (in its own pixels) the map describes: the map is drawn
    there only, the rest of the image dimmed. Default: the whole image.
    """
    return _paint(image, lambda box: heat(normalise(upsample(map_, box))), size, opacity, region)


def dominant_collage(
    image: Image.Image | None, dominant: torch.Tensor, legend: list[int], size: tuple[int, int], opacity: float = 0.65,
    region: Region | None = None,
) -> Image.Image:
    """Each pixel of ``region`` (default the whole image) coloured by the training item that
    contributes most to it, at ``size``; outside the region the image is dimmed.

    ``legend[k]`` is the training index drawn in ``CATEGORICAL[k]``; any other item is dark grey.
    """

    def colours(box: tuple[int, int]) -> np.ndarray:
        index_map = upsample(dominant, box, mode="nearest").astype(np.int64)
        painted = np.broadcast_to(OTHER_COLOUR, index_map.shape + (3,)).copy()
        for slot, item in enumerate(legend[: len(CATEGORICAL)]):
            painted[index_map == item] = CATEGORICAL[slot]
        return painted

    return _paint(image, colours, size, opacity, region)
