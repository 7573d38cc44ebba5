"""PIL images -> tensors in ``[-1, 1]``, the way diffusers prepares them.

``diffusers`` maps uint8 pixels to ``x / 255 * 2 - 1`` (``VaeImageProcessor``; the training scripts'
``ToTensor()`` + ``Normalize([0.5], [0.5])`` give the same float32 values). Training scripts resize
the shorter side to the resolution (bilinear) and centre-crop; :func:`resize_center_crop` does the
same with PIL alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

MODES = {1: "L", 3: "RGB"}
"""Supported channel counts and the PIL mode each converts to."""


def image_extensions() -> set[str]:
    """Lower-case file extensions PIL can open (``".png"``, ``".jpg"``, ...)."""
    return {ext for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}


def load_image(path: Path) -> Image.Image:
    """Open and fully decode an image file, applying its EXIF orientation (as ``diffusers.utils.load_image``).

    Parameters
    ----------
    path:
        The image file.

    Returns
    -------
    The decoded image (its file is closed).

    Raises
    ------
    OSError, SyntaxError, ValueError
        When the file is not a readable image.
    """
    with Image.open(path) as image:
        image.load()
        return ImageOps.exif_transpose(image)


def resize_center_crop(image: Image.Image, resolution: int) -> Image.Image:
    """Resize the shorter side to ``resolution`` (bilinear), then centre-crop to a square.

    Matches torchvision's ``Resize(resolution)`` + ``CenterCrop(resolution)`` used by diffusers'
    training scripts.

    Parameters
    ----------
    image:
        Any PIL image.
    resolution:
        Side of the output square.

    Returns
    -------
    A ``resolution x resolution`` image.
    """
    width, height = image.size
    if width <= height:
        size = (resolution, int(resolution * height / width))
    else:
        size = (int(resolution * width / height), resolution)
    if size != image.size:
        image = image.resize(size, Image.BILINEAR)
    left = int(round((size[0] - resolution) / 2.0))
    top = int(round((size[1] - resolution) / 2.0))
    return image.crop((left, top, left + resolution, top + resolution))


def to_model_input(image: Image.Image, *, channels: int, resolution: int | None) -> torch.Tensor:
    """Convert a PIL image to a ``[C, H, W]`` float32 tensor in ``[-1, 1]``.

    Parameters
    ----------
    image:
        Any PIL image.
    channels:
        1 (converted to ``"L"``) or 3 (converted to ``"RGB"``).
    resolution:
        When given, :func:`resize_center_crop` to this square size first.

    Returns
    -------
    ``[channels, H, W]`` float32 tensor with values ``x / 255 * 2 - 1``.
    """
    image = image.convert(MODES[channels])
    if resolution is not None:
        image = resize_center_crop(image, resolution)
    array = np.asarray(image, dtype=np.float32) / 255.0 * 2.0 - 1.0
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1)))
