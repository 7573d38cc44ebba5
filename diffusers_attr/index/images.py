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


def _resize_and_crop(size: tuple[int, int], resolution: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """For an image of ``size`` (width, height): the size its shorter side is resized to
    ``resolution`` at, and the top-left corner of the centred ``resolution`` square in it."""
    width, height = size
    if width <= height:
        resized = (resolution, int(resolution * height / width))
    else:
        resized = (int(resolution * width / height), resolution)
    left = int(round((resized[0] - resolution) / 2.0))
    top = int(round((resized[1] - resolution) / 2.0))
    return resized, (left, top)


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
    size, (left, top) = _resize_and_crop(image.size, resolution)
    if size != image.size:
        image = image.resize(size, Image.BILINEAR)
    return image.crop((left, top, left + resolution, top + resolution))


def crop_box(size: tuple[int, int], resolution: int | None) -> tuple[float, float, float, float]:
    """The part of an image of ``size`` (width, height) that :func:`resize_center_crop` keeps.

    Parameters
    ----------
    size:
        The image's ``(width, height)``.
    resolution:
        The side :func:`resize_center_crop` is called with; ``None`` keeps the whole image.

    Returns
    -------
    ``(left, top, right, bottom)`` in the image's own pixels (fractional where the resize is).
    """
    width, height = size
    if resolution is None:
        return 0.0, 0.0, float(width), float(height)
    resized, (left, top) = _resize_and_crop(size, resolution)
    x, y = width / resized[0], height / resized[1]
    return left * x, top * y, (left + resolution) * x, (top + resolution) * y


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


def index_preparation(space: dict) -> tuple[int, int | None]:
    """How images are prepared for an index with this space fingerprint: ``(channels, side)``.

    ``channels`` are those of the model's input (of the VAE for a latent index); ``side`` is the
    square resolution images are resized and centre-cropped to (:func:`resize_center_crop`), or
    ``None`` when the index has no square resolution (images are then used as they are).
    """
    resolution = space.get("resolution")
    side = int(resolution[0]) if resolution and resolution[0] == resolution[1] else None
    if space.get("kind") == "latent":
        return int((space.get("vae_config") or {}).get("in_channels", 3)), side
    return int(space["item_shape"][0]), side


def prepare_like_index(image: Image.Image, space: dict) -> tuple[torch.Tensor, tuple[float, float, float, float]]:
    """An image as the index with fingerprint ``space`` prepared its items (before any encoding).

    Parameters
    ----------
    image:
        Any PIL image.
    space:
        The index's space fingerprint (``index.space``, or ``metadata["index"]["space"]`` of a result).

    Returns
    -------
    ``([C, H, W]`` float32 in ``[-1, 1]``, the part of ``image`` it shows as ``(left, top, right, bottom)``).
    """
    channels, side = index_preparation(space)
    return to_model_input(image, channels=channels, resolution=side), crop_box(image.size, side)
