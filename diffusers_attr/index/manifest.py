"""The index manifest ``index.json`` and the per-item file ``items.jsonl``.

Folder layout::

    index.json               format, version, item count / shape / dtype, shards, space fingerprint
    items.jsonl              one line per item: {"id": ..., "metadata": {...}}
    items-00000.safetensors  float tensor "items" [n, C, H, W]
    items-00001.safetensors  ...

``index.json`` is written last; a folder without it is not an index.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import IndexFormatError
from .shardfile import DTYPES, fsync_file, sha256_file

FORMAT = "diffusers-attr-index"
FORMAT_VERSION = 1
MANIFEST = "index.json"
ITEMS_FILE = "items.jsonl"
PARTIAL_SUFFIX = ".partial"
BUILD_STATE = "build.json"


def shard_name(number: int) -> str:
    """File name of shard ``number``: ``items-00000.safetensors``."""
    return f"items-{number:05d}.safetensors"


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically: temporary file, fsync, rename."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    fsync_file(tmp)
    os.replace(tmp, path)


def write_items(folder: Path, ids: list[str], metadata: list[dict]) -> dict:
    """Write ``items.jsonl`` and return its manifest entry ``{"file", "sha256", "bytes"}``."""
    path = folder / ITEMS_FILE
    with open(path, "w", encoding="utf-8") as f:
        for item_id, meta in zip(ids, metadata):
            f.write(json.dumps({"id": item_id, "metadata": meta}, ensure_ascii=False) + "\n")
    fsync_file(path)
    return {"file": ITEMS_FILE, "sha256": sha256_file(path), "bytes": path.stat().st_size}


def write_manifest(
    folder: Path, *, item_shape: list[int], dtype: str, shards: list[dict], items: dict, space: dict
) -> None:
    """Write ``index.json``; call it last, once shards and ``items.jsonl`` are on disk.

    Parameters
    ----------
    folder:
        The index folder.
    item_shape, dtype:
        ``[C, H, W]`` and the storage dtype name.
    shards:
        Entries from :func:`~diffusers_attr.index.shardfile.write_shard`, in item order.
    items:
        The entry from :func:`write_items`.
    space:
        The space fingerprint.
    """
    write_json(
        folder / MANIFEST,
        {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "num_items": sum(s["num_items"] for s in shards),
            "item_shape": item_shape,
            "dtype": dtype,
            "shards": shards,
            "items": items,
            "space": space,
        },
    )


def missing_manifest_error(folder: Path) -> Exception:
    """The error for a folder that holds no complete index, saying what it is instead."""
    partial = folder.with_name(folder.name + PARTIAL_SUFFIX)
    if folder.name.endswith(PARTIAL_SUFFIX) or (folder / BUILD_STATE).exists():
        return IndexFormatError(
            f"{folder} is an unfinished index build, not an index; finish it by running the same "
            f"AttributionIndex.build(...) again (it resumes), then load the folder without '{PARTIAL_SUFFIX}'"
        )
    if not folder.exists():
        hint = (
            f"; an unfinished build exists at {partial}: run the same AttributionIndex.build(...) again to finish it"
            if partial.exists()
            else "; build one with AttributionIndex.build(path, images) or index.save(path)"
        )
        return FileNotFoundError(f"no index at {folder}{hint}")
    return IndexFormatError(
        f"{folder} is not an AttributionIndex folder (no {MANIFEST}); build one with "
        f"AttributionIndex.build(path, images) or index.save(path)"
    )


def read_manifest(folder: Path) -> dict:
    """Read and sanity-check ``index.json``.

    Parameters
    ----------
    folder:
        The index folder.

    Returns
    -------
    The manifest dict.

    Raises
    ------
    FileNotFoundError, IndexFormatError
        When there is no index, or the manifest is unreadable, from a newer version, or inconsistent.
    """
    path = folder / MANIFEST
    if not path.is_file() or folder.name.endswith(PARTIAL_SUFFIX):
        raise missing_manifest_error(folder)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise IndexFormatError(f"{path} is not valid JSON ({err}); rebuild the index") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise IndexFormatError(f"{path} is not a diffusers-attr index manifest (format != {FORMAT!r})")
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise IndexFormatError(
            f"{folder} was written by a newer diffusers-attr (format version {manifest['format_version']}, "
            f"this one reads up to {FORMAT_VERSION}); upgrade diffusers-attr"
        )
    required = ("num_items", "item_shape", "dtype", "shards", "items", "space")
    missing = [key for key in required if key not in manifest]
    if missing:
        raise IndexFormatError(f"{path} lacks {missing}; rebuild the index")
    if manifest["dtype"] not in DTYPES:
        raise IndexFormatError(f"{path} has unknown dtype {manifest['dtype']!r}; expected one of {list(DTYPES)}")
    if sum(s["num_items"] for s in manifest["shards"]) != manifest["num_items"]:
        raise IndexFormatError(f"{path}: shard item counts do not add up to num_items; rebuild the index")
    return manifest


def check_file(folder: Path, entry: dict, *, hash_contents: bool) -> Path:
    """Check one file listed in the manifest: present, right size, and (optionally) right SHA-256.

    Parameters
    ----------
    folder:
        The index folder.
    entry:
        ``{"file", "bytes", "sha256", ...}`` from the manifest.
    hash_contents:
        Also compare the SHA-256 (reads the whole file).

    Returns
    -------
    The file's path.

    Raises
    ------
    IndexFormatError
        Naming the file and what is wrong with it.
    """
    path = folder / entry["file"]
    if not path.is_file():
        raise IndexFormatError(f"{path} is missing; the index is incomplete: rebuild it")
    size = path.stat().st_size
    if size != entry["bytes"]:
        raise IndexFormatError(
            f"{path} is {size} bytes, the manifest says {entry['bytes']}: the file is truncated or was "
            f"replaced; rebuild the index (or restore the file from a copy)"
        )
    if hash_contents and sha256_file(path) != entry["sha256"]:
        raise IndexFormatError(
            f"{path} is corrupted: its SHA-256 does not match the manifest; rebuild the index "
            f"(or restore the file from a copy)"
        )
    return path


def read_items(folder: Path, entry: dict, num_items: int) -> tuple[list[str], list[dict]]:
    """Read ids and metadata from ``items.jsonl``, always checking its SHA-256 (it is small).

    Parameters
    ----------
    folder:
        The index folder.
    entry:
        The manifest's ``items`` entry.
    num_items:
        Expected number of lines.

    Returns
    -------
    ``(ids, metadata)``.
    """
    path = check_file(folder, entry, hash_contents=True)
    ids, metadata = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            ids.append(record["id"])
            metadata.append(record["metadata"])
    if len(ids) != num_items:
        raise IndexFormatError(f"{path} lists {len(ids)} items, the manifest says {num_items}; rebuild the index")
    return ids, metadata
