"""One shard on disk: a safetensors file holding ``items`` ``[n, C, H, W]``.

Shards are written with ``safetensors`` and read back memory-mapped: the header (8-byte
little-endian length, then JSON with dtype / shape / data_offsets) is parsed here and a
``numpy.memmap`` is opened at the data offset, so no item is read until it is used.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import IndexFormatError

if TYPE_CHECKING:
    import torch

TENSOR_NAME = "items"
DTYPES = {"float32": ("F32", np.float32), "float16": ("F16", np.float16)}
"""Storage dtypes: name (also the torch dtype's name) -> (safetensors code, numpy dtype)."""

_HASH_BLOCK = 1 << 24


def sha256_file(path: Path) -> str:
    """SHA-256 hex digest of a file, read in 16 MiB blocks.

    Parameters
    ----------
    path:
        The file.

    Returns
    -------
    The hex digest.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def fsync_file(path: Path) -> None:
    """Flush a written file to disk, so a rename after it never exposes a half-written file."""
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def write_shard(path: Path, items: torch.Tensor) -> dict:
    """Write ``items`` atomically (temporary name, then rename) as a safetensors shard.

    Parameters
    ----------
    path:
        Destination, e.g. ``folder / "items-00000.safetensors"``.
    items:
        ``[n, C, H, W]`` tensor already in the storage dtype.

    Returns
    -------
    The shard's manifest entry: ``{"file", "num_items", "sha256", "bytes"}``.
    """
    from safetensors.torch import save  # torch only when writing: reading a manifest needs none

    data = save({TENSOR_NAME: items.contiguous()})
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    digest = hashlib.sha256(data).hexdigest()
    return {"file": path.name, "num_items": int(items.shape[0]), "sha256": digest, "bytes": len(data)}


def open_shard(path: Path, dtype: str, num_items: int, item_shape: tuple[int, ...]) -> np.memmap:
    """Memory-map the ``items`` tensor of a shard, checking its header against the manifest.

    Parameters
    ----------
    path:
        The shard file.
    dtype:
        Expected storage dtype name (``"float32"`` or ``"float16"``).
    num_items, item_shape:
        Expected number of items and ``(C, H, W)``.

    Returns
    -------
    A read-only ``numpy.memmap`` of shape ``[num_items, C, H, W]``.

    Raises
    ------
    IndexFormatError
        When the header is unreadable or disagrees with the manifest, or the file is truncated.
    """
    code, np_dtype = DTYPES[dtype]
    size = path.stat().st_size
    with open(path, "rb") as f:
        prefix = f.read(8)
        header_len = struct.unpack("<Q", prefix)[0] if len(prefix) == 8 else size
        if 8 + header_len > size:
            raise IndexFormatError(f"shard {path} is truncated (its header is incomplete); rebuild the index")
        try:
            header = json.loads(f.read(header_len))
            entry = header[TENSOR_NAME]
            begin, end = entry["data_offsets"]
        except (ValueError, KeyError, TypeError) as err:
            raise IndexFormatError(
                f"shard {path} has an unreadable safetensors header ({err}); rebuild the index"
            ) from err
    expected_shape = [num_items, *item_shape]
    if entry["dtype"] != code or list(entry["shape"]) != expected_shape:
        raise IndexFormatError(
            f"shard {path} holds {entry['dtype']} {entry['shape']}, but the manifest says {code} {expected_shape}; "
            f"the shard does not belong to this index: rebuild the index"
        )
    if end - begin != num_items * int(np.prod(item_shape)) * np.dtype(np_dtype).itemsize or 8 + header_len + end > size:
        raise IndexFormatError(f"shard {path} is truncated or malformed (data ends past the file); rebuild the index")
    return np.memmap(path, dtype=np_dtype, mode="r", offset=8 + header_len + begin, shape=tuple(expected_shape))
