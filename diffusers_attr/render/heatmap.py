"""Heatmap overlays: a map at model resolution, upsampled and blended over an image."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .colormap import CATEGORICAL, OTHER_COLOUR, heat


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


def _blend(image: Image.Image | None, colours: np.ndarray, opacity: float) -> Image.Image:
    """``colours [H, W, 3]`` over ``image`` resized to match (the colours alone without an image)."""
    if image is None:
        return Image.fromarray(colours)
    size = (colours.shape[1], colours.shape[0])
    base = np.asarray(image.convert("RGB").resize(size, Image.BICUBIC), dtype=np.float64)
    blended = base * (1 - opacity) + colours.astype(np.float64) * opacity
    return Image.fromarray(blended.round().astype(np.uint8))


def overlay(image: Image.Image | None, map_: torch.Tensor, size: tuple[int, int], opacity: float = 0.6) -> Image.Image:
    """The map (normalised to its maximum, heat colours) blended over ``image``, at ``size``."""
    return _blend(image, heat(normalise(upsample(map_, size))), opacity)


def dominant_collage(
    image: Image.Image | None, dominant: torch.Tensor, legend: list[int], size: tuple[int, int], opacity: float = 0.65
) -> Image.Image:
    """Each pixel coloured by the training item that contributes most to it, at ``size``.

    ``legend[k]`` is the training index drawn in ``CATEGORICAL[k]``; any other item is dark grey.
    """
    index_map = upsample(dominant, size, mode="nearest").astype(np.int64)
    colours = np.broadcast_to(OTHER_COLOUR, index_map.shape + (3,)).copy()
    for slot, item in enumerate(legend[: len(CATEGORICAL)]):
        colours[index_map == item] = CATEGORICAL[slot]
    return _blend(image, colours, opacity)
