"""Writing shards into an unfinished build folder, and picking up a build where it stopped.

An unfinished build lives in ``<path>.partial``::

    build.json               the build's settings (source, encoder fingerprint, resolution, dtype, ...)
    items-00000.safetensors  a finished shard
    items-00000.json         its record: manifest entry, ids, SHA-256 of its *input* pixels

A shard counts as finished only once its record exists (both are written atomically, record last).
A resumed build re-reads the items of finished shards without encoding them, and checks their ids
and input hashes against the records, so a changed source is caught instead of mixed in.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from itertools import count
from pathlib import Path
from typing import Any

import torch

from .manifest import BUILD_STATE, shard_name, write_json
from .shardfile import DTYPES, sha256_file, write_shard
from .stream import Batch, check_finite

SHARD_BYTES = 256 * 2**20
"""Default shard size in bytes, when ``shard_size`` (items) is not given."""


def storage_dtype(dtype: str | torch.dtype) -> str:
    """Validate a storage dtype; return its name (``"float32"`` or ``"float16"``)."""
    name = str(dtype).removeprefix("torch.")
    if name not in DTYPES:
        raise ValueError(f"dtype={dtype!r} is not supported; use 'float32' (default) or 'float16'")
    return name


def record_name(number: int) -> str:
    """File name of the record of shard ``number``: ``items-00000.json``."""
    return f"items-{number:05d}.json"


def _hash_inputs(digest: Any, inputs: torch.Tensor) -> None:
    """Add a slice of input pixels (float32) to a running SHA-256."""
    digest.update(inputs.contiguous().numpy().tobytes())


def open_partial(partial: Path, state: dict, resume: bool) -> list[dict]:
    """Prepare the unfinished build folder and return the records of the shards already finished.

    Parameters
    ----------
    partial:
        ``<path>.partial``.
    state:
        This build's settings (JSON-safe); a resumed build must have the same.
    resume:
        Continue a previous build found in ``partial``; ``False`` starts over.

    Returns
    -------
    The finished shards' records, in order (empty when starting over).
    """
    state = json.loads(json.dumps(state))  # compare as it will read back (tuples become lists)
    state_file = partial / BUILD_STATE
    if partial.exists() and not state_file.is_file() and any(partial.iterdir()):
        raise FileExistsError(f"{partial} exists and is not an unfinished index build; move or delete it")
    if resume and state_file.is_file():
        saved = json.loads(state_file.read_text(encoding="utf-8"))
        changed = [_change(key, saved.get(key), state.get(key)) for key in sorted(set(saved) | set(state))]
        changed = [line for line in changed if line]
        if changed:
            raise ValueError(
                f"the unfinished build at {partial} was started with other settings:\n" + "\n".join(changed)
                + "\nRun it with the same arguments to resume, or pass resume=False to start over"
            )
        return _finished_shards(partial)
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    write_json(state_file, state)
    return []


def _change(key: str, was: Any, now: Any) -> str:
    """A line saying how one build setting changed ("" when it did not); dicts name their changed keys."""
    if was == now:
        return ""
    if isinstance(was, dict) and isinstance(now, dict):
        keys = sorted(k for k in set(was) | set(now) if was.get(k) != now.get(k))
        return f"  {key}: differs in {', '.join(keys)}"
    return f"  {key}: was {was!r}, now {now!r}"


def _finished_shards(partial: Path) -> list[dict]:
    """Records of the leading shards whose files are intact; every other file is deleted."""
    records = []
    for number in count():
        path = partial / record_name(number)
        if not path.is_file():
            break
        record = json.loads(path.read_text(encoding="utf-8"))
        shard = partial / record["entry"]["file"]
        if not shard.is_file() or shard.stat().st_size != record["entry"]["bytes"]:
            break
        if sha256_file(shard) != record["entry"]["sha256"]:
            break
        records.append(record)
    keep = {BUILD_STATE} | {record_name(n) for n in range(len(records))} | {r["entry"]["file"] for r in records}
    for path in partial.iterdir():
        if path.name not in keep:
            path.unlink()
    return records


class ResumeCheck:
    """Checks the items a resumed build skips against the records of the shards it already wrote."""

    def __init__(self, partial: Path, records: list[dict]):
        self.partial = partial
        self.records = records
        self._shard = 0
        self._offset = 0
        self._digest = hashlib.sha256()

    def check(self, batch: Batch) -> None:
        """Compare one batch of skipped items (ids and input pixels) with the finished shards."""
        start = 0
        while start < len(batch.ids):
            record = self.records[self._shard]
            take = min(record["entry"]["num_items"] - self._offset, len(batch.ids) - start)
            for now, was in zip(batch.ids[start : start + take], record["ids"][self._offset : self._offset + take]):
                if now != was:
                    self.fail(f"item {was!r} is now {now!r}")
            _hash_inputs(self._digest, batch.inputs[start : start + take])
            start += take
            self._offset += take
            if self._offset == record["entry"]["num_items"]:
                if self._digest.hexdigest() != record["input_sha256"]:
                    self.fail(f"the images of shard {record['entry']['file']} (items {record['ids'][0]!r}...) differ")
                self._shard, self._offset, self._digest = self._shard + 1, 0, hashlib.sha256()

    def fail(self, what: str) -> None:
        """Raise: the source no longer matches the finished shards (``what`` says how)."""
        raise ValueError(
            f"the training set changed since the unfinished build at {self.partial} was started: {what}. "
            f"Pass resume=False (or delete {self.partial}) to start over"
        )


class ShardWriter:
    """Cuts a stream of batches into shards and writes each, with its record, as it fills."""

    def __init__(self, folder: Path, dtype: str, shard_size: int | None, first_number: int):
        self.folder = folder
        self.dtype = dtype
        self.shard_size = shard_size
        self.number = first_number
        self.records: list[dict] = []
        self._ids: list[str] = []
        self._items: list[torch.Tensor] = []
        self._digest = hashlib.sha256()

    def add(self, batch: Batch) -> None:
        """Buffer a batch; write every shard it completes."""
        assert batch.items is not None
        if self.shard_size is None:
            item_bytes = batch.items[0].numel() * getattr(torch, self.dtype).itemsize
            self.shard_size = max(1, SHARD_BYTES // item_bytes)
        start = 0
        while start < len(batch.ids):
            take = min(self.shard_size - len(self._ids), len(batch.ids) - start)
            self._ids += batch.ids[start : start + take]
            self._items.append(batch.items[start : start + take])
            _hash_inputs(self._digest, batch.inputs[start : start + take])
            start += take
            if len(self._ids) == self.shard_size:
                self.flush()

    def flush(self) -> None:
        """Write the buffered items as one shard (if any), then its record."""
        if not self._ids:
            return
        items = torch.cat(self._items).to(getattr(torch, self.dtype))
        if self.dtype == "float16":
            check_finite(items, self._ids, "when stored as float16 (beyond +-65504); store as dtype='float32'")
        entry = write_shard(self.folder / shard_name(self.number), items)
        record = {
            "entry": entry, "item_shape": list(items.shape[1:]), "ids": self._ids,
            "input_sha256": self._digest.hexdigest(),
        }
        write_json(self.folder / record_name(self.number), record)
        self.records.append(record)
        self.number += 1
        self._ids, self._items, self._digest = [], [], hashlib.sha256()
