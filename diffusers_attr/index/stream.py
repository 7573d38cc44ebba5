"""Records -> batches of items in the model's space (normalise, check sizes, encode, check values)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from tqdm.auto import tqdm

from .images import to_model_input
from .sources import ItemSource, Record

if TYPE_CHECKING:
    from ..autoencoders import Autoencoder


@dataclass
class Batch:
    """Consecutive training items.

    Attributes
    ----------
    ids, metadata:
        One entry per item.
    inputs:
        ``[n, C, H, W]`` float32: the normalised pixels fed to the encoder, or the given items.
    items:
        ``[n, C', H', W']`` float32 in the model's space, or ``None`` for items a resumed build
        already wrote (they are only re-read to check the source is unchanged).
    """

    ids: list[str]
    metadata: list[dict]
    inputs: torch.Tensor
    items: torch.Tensor | None


def check_finite(items: torch.Tensor, ids: list[str], stage: str) -> None:
    """Raise naming the first item with NaN or inf values.

    Parameters
    ----------
    items:
        ``[n, ...]`` tensor.
    ids:
        The items' ids.
    stage:
        What produced the values, for the message (e.g. ``"after encoding"``).
    """
    finite = torch.isfinite(items.reshape(items.shape[0], -1)).all(dim=1)
    if not bool(finite.all()):
        bad = int((~finite).nonzero()[0, 0])
        raise ValueError(
            f"item {ids[bad]!r} has NaN or inf values {stage}; check that image (and, with an encoder, run the "
            f"VAE in float32: float16 VAEs can overflow), or leave the item out"
        )


def _input_tensor(record: Record, first: tuple, *, channels: int, resolution: int | None) -> tuple[torch.Tensor, tuple]:
    """The record as a model input tensor, checked against the first record's ``(id, tensor shape)``.

    Returns the tensor and ``first`` (set from this record when it is the first).
    """
    if isinstance(record.image, torch.Tensor):
        tensor = record.image.to(torch.float32)
        hint = "all items of a tensor training set must have the same shape"
    else:
        tensor = to_model_input(record.image, channels=channels, resolution=resolution)
        hint = "pass resolution=... to resize (shorter side) and centre-crop every image to one square size"
    if not first:
        return tensor, (record.id, tuple(tensor.shape))
    if tuple(tensor.shape) != first[1]:
        raise ValueError(
            f"item {record.id!r} has shape {tuple(tensor.shape)} (C, H, W) but the first item {first[0]!r} has "
            f"{first[1]}; {hint}"
        )
    return tensor, first


def iter_batches(
    source: ItemSource,
    *,
    encoder: Autoencoder | None,
    channels: int | None,
    resolution: int | None,
    batch_size: int,
    skip: int = 0,
    progress: bool = True,
) -> Iterator[Batch]:
    """Stream a source as batches of items in the model's space.

    Parameters
    ----------
    source:
        From :func:`~diffusers_attr.index.sources.open_source`.
    encoder:
        The autoencoder adapter applied to the normalised pixels, or ``None``.
    channels, resolution:
        How PIL images are converted (see :func:`~diffusers_attr.index.images.to_model_input`).
    batch_size:
        Items per encoder call. Batches always start at multiples of ``batch_size``, so a resumed
        build encodes every item in the same batch as an uninterrupted one (identical results).
    skip:
        The first ``skip`` items are yielded with ``items=None`` (a resumed build already wrote them
        and only checks the source); a batch that straddles ``skip`` is encoded whole and split.
    progress:
        Show a tqdm progress bar.

    Returns
    -------
    An iterator of :class:`Batch`.
    """
    first: tuple = ()
    pending: list[Record] = []
    inputs: list[torch.Tensor] = []
    begin = 0
    with tqdm(total=source.length, unit="image", desc="indexing", disable=not progress) as bar:
        for record in source.records():
            tensor, first = _input_tensor(record, first, channels=channels, resolution=resolution)
            pending.append(record)
            inputs.append(tensor)
            if len(pending) == batch_size:
                yield from _batches(pending, inputs, encoder, skip=skip - begin)
                bar.update(len(pending))
                begin += len(pending)
                pending, inputs = [], []
        if pending:
            yield from _batches(pending, inputs, encoder, skip=skip - begin)
            bar.update(len(pending))


def _batches(
    records: list[Record], inputs: list[torch.Tensor], encoder: Autoencoder | None, *, skip: int
) -> Iterator[Batch]:
    """Stack, encode and check one batch; its first ``skip`` items come out separately, not encoded."""
    ids = [record.id for record in records]
    metadata = [record.metadata for record in records]
    pixels = torch.stack(inputs)
    cut = min(max(skip, 0), len(records))
    if cut:
        yield Batch(ids[:cut], metadata[:cut], pixels[:cut], None)
    if cut < len(records):
        items = (pixels if encoder is None else encoder.encode(pixels))[cut:]
        check_finite(items, ids[cut:], "in the model's space" if encoder is None else "after encoding")
        yield Batch(ids[cut:], metadata[cut:], pixels[cut:], items)
