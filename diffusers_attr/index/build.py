"""Building an index: in memory (:func:`collect`) or streamed to disk, resumable and atomic (:func:`build_index`).

A disk build writes shards into ``<path>.partial`` as it goes and renames that folder to ``path``
only once the manifest is written, so ``path`` never holds an incomplete index. Run the same build
again after an interruption and it continues after the last finished shard.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import torch

from ..autoencoders import Autoencoder, autoencoder_for
from .images import MODES
from .manifest import BUILD_STATE, FORMAT_VERSION, MANIFEST, PARTIAL_SUFFIX, write_items, write_manifest
from .sources import ItemSource, open_source
from .space import NORMALISATION, encoder_fingerprint, make_space
from .stream import iter_batches
from .writer import ResumeCheck, ShardWriter, open_partial, record_name, storage_dtype

def _positive(name: str, value: int | None) -> None:
    """Raise unless ``value`` is ``None`` or a positive int."""
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ValueError(f"{name}={value!r} must be a positive integer")


def _settings(
    images: Any,
    source: ItemSource,
    encoder: Autoencoder | None,
    *,
    resolution: int | None,
    channels: int | None,
    space: dict | None,
) -> dict:
    """Validate how items are made and return the JSON-safe settings (channels, resolution, encoder, space)."""
    _positive("resolution", resolution)
    if source.in_model_space:
        if encoder is not None or resolution is not None or channels is not None:
            raise ValueError(
                "a tensor (or index) training set is used as is, already in the model's space, so encoder, "
                "resolution and channels must be None; to encode images pass PIL images, a folder or a dataset"
            )
        return {"channels": None, "resolution": None, "encoder": None, "space": space or getattr(images, "space", None)}
    if space is not None:
        raise ValueError("space= describes a tensor training set; for images it follows from encoder and resolution")
    in_channels = None if encoder is None else encoder.in_channels
    if channels is None:
        channels = in_channels or 3
    if channels not in MODES:
        raise ValueError(f"channels={channels} is not supported; use 3 (RGB) or 1 (grayscale)")
    if in_channels is not None and channels != in_channels:
        raise ValueError(f"channels={channels} but the encoder takes {in_channels} channels; leave channels=None")
    encoder_fields = None if encoder is None else encoder_fingerprint(encoder)
    return {"channels": channels, "resolution": resolution, "encoder": encoder_fields, "space": None}


def _space(settings: dict, item_shape: list[int], input_shape: list[int], in_model_space: bool) -> dict:
    """The finished index's space fingerprint."""
    given = settings["space"]
    if given is not None:
        if list(given.get("item_shape", item_shape)) != list(item_shape):
            raise ValueError(f"space['item_shape']={given['item_shape']} but the items have shape {item_shape}")
        return given
    resolution = None if in_model_space else input_shape[1:]
    return make_space(item_shape, settings["encoder"], NORMALISATION, resolution)


def _empty_error() -> ValueError:
    """The error for a training set that yielded no items."""
    return ValueError("the training set is empty: no readable images were found; pass at least one image")


def collect(
    images: Any,
    ids: Any = None,
    metadata: Any = None,
    encoder: Any = None,
    *,
    resolution: int | None = None,
    channels: int | None = None,
    batch_size: int = 16,
    strict: bool = False,
    progress: bool = True,
    space: dict | None = None,
) -> tuple[torch.Tensor, list[str], list[dict], dict]:
    """Bring a training set into the model's space, in memory.

    Parameters
    ----------
    See ``AttributionIndex.from_images``.

    Returns
    -------
    ``(items [N, C, H, W] float32, ids, metadata, space fingerprint)``.
    """
    _positive("batch_size", batch_size)
    source = open_source(images, ids, metadata, strict=strict)
    encoder = None if encoder is None else autoencoder_for(encoder)
    settings = _settings(images, source, encoder, resolution=resolution, channels=channels, space=space)
    all_ids: list[str] = []
    all_metadata: list[dict] = []
    items: list[torch.Tensor] = []
    input_shape: list[int] = []
    for batch in iter_batches(
        source, encoder=encoder, channels=settings["channels"], resolution=resolution, batch_size=batch_size,
        progress=progress,
    ):
        all_ids += batch.ids
        all_metadata += batch.metadata
        items.append(batch.items)
        input_shape = input_shape or list(batch.inputs.shape[1:])
    if not items:
        raise _empty_error()
    stacked = torch.cat(items)
    return stacked, all_ids, all_metadata, _space(settings, list(stacked.shape[1:]), input_shape, source.in_model_space)


def _check_target(path: Path, overwrite: bool) -> None:
    """Refuse to build over a folder that is not an index, or over an index unless ``overwrite``."""
    if not path.exists():
        return
    if not (path / MANIFEST).is_file():
        raise FileExistsError(f"{path} exists and is not an index; choose another path or delete it")
    if not overwrite:
        raise FileExistsError(f"an index already exists at {path}; pass overwrite=True to replace it")


def _move_into_place(partial: Path, path: Path) -> None:
    """Rename the finished build folder to ``path`` (replacing an old index there)."""
    if not path.exists():
        os.rename(partial, path)
        return
    old = path.with_name(path.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    os.rename(path, old)
    os.rename(partial, path)
    shutil.rmtree(old)


def build_index(
    path: str | Path,
    images: Any,
    ids: Any = None,
    metadata: Any = None,
    encoder: Any = None,
    *,
    resolution: int | None = None,
    channels: int | None = None,
    dtype: str | torch.dtype = "float32",
    shard_size: int | None = None,
    batch_size: int = 16,
    resume: bool = True,
    overwrite: bool = False,
    strict: bool = False,
    progress: bool = True,
    space: dict | None = None,
) -> Path:
    """Stream a training set to an index folder; resumable and atomic.

    Parameters
    ----------
    See ``AttributionIndex.build``.

    Returns
    -------
    The finished index folder ``path``.
    """
    path = Path(path)
    _check_target(path, overwrite)
    dtype = storage_dtype(dtype)
    _positive("shard_size", shard_size)
    _positive("batch_size", batch_size)
    source = open_source(images, ids, metadata, strict=strict)
    encoder = None if encoder is None else autoencoder_for(encoder)
    settings = _settings(images, source, encoder, resolution=resolution, channels=channels, space=space)
    state = {
        "format_version": FORMAT_VERSION, "source": source.description, "dtype": dtype, "shard_size": shard_size,
        **settings,
    }
    partial = path.with_name(path.name + PARTIAL_SUFFIX)
    finished = open_partial(partial, state, resume)
    skip = sum(record["entry"]["num_items"] for record in finished)
    check = ResumeCheck(partial, finished)
    writer = ShardWriter(partial, dtype, shard_size, len(finished))
    all_ids: list[str] = []
    all_metadata: list[dict] = []
    input_shape: list[int] = []
    for batch in iter_batches(
        source, encoder=encoder, channels=settings["channels"], resolution=resolution, batch_size=batch_size,
        skip=skip, progress=progress,
    ):
        all_ids += batch.ids
        all_metadata += batch.metadata
        input_shape = input_shape or list(batch.inputs.shape[1:])
        if batch.items is None:
            check.check(batch)
        else:
            writer.add(batch)
    writer.flush()
    if len(all_ids) < skip:
        check.fail(f"it now has {len(all_ids)} items, fewer than the {skip} already written")
    records = finished + writer.records
    if not records:
        shutil.rmtree(partial)
        raise _empty_error()
    item_shape = records[0]["item_shape"]
    write_manifest(
        partial,
        item_shape=item_shape,
        dtype=dtype,
        shards=[record["entry"] for record in records],
        items=write_items(partial, all_ids, all_metadata),
        space=_space(settings, item_shape, input_shape, source.in_model_space),
    )
    _check_target(path, overwrite)
    _move_into_place(partial, path)
    for number in range(len(records)):  # bookkeeping of the build, removed only now: a build killed
        (path / record_name(number)).unlink()  # before the rename resumes from it
    (path / BUILD_STATE).unlink()
    return path
