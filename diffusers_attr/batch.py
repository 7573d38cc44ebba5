"""Resumable batch jobs: many inputs, one output folder each, split across processes, safe to kill.

:func:`run_batch` gives every item a key (a file-system-safe name) and an output folder
``<out>/<key>/``. Items go to ranks round-robin by their position in the (whole) list, so every
process of a ``torchrun`` / ``accelerate launch`` job knows its share without talking to the others.
A worker writes one item's files into a fresh staging folder; the folder is renamed into place
(atomic) and only then is the key appended to the rank's done-log ``<out>/.batch/done-rank<r>.log``
(flushed and fsync'd). A rerun (with any number of processes) reads every done-log and skips what is
done, so a crash or a kill loses at most the items in flight and never leaves a half-written output
or a duplicate. An output folder that appeared before its log line (a kill between the two) is
complete, and is logged on the rerun instead of being computed again.

Example::

    from diffusers_attr.batch import folder_items, run_batch

    def work(path, staging):
        (staging / "size.txt").write_text(str(path.stat().st_size))

    run_batch(folder_items("images", (".png",)), work, "out")   # each rank does its share
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

STATE_DIR = ".batch"
_SAFE_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")


@dataclass
class BatchResult:
    """What one process did in :func:`run_batch`.

    Attributes
    ----------
    out_dir: the output folder; item ``key``'s files are in ``out_dir / key``.
    rank, world_size: this process and the number of processes the items were split over.
    ran: keys this process computed in this call.
    skipped: keys of this process's share that were done already (by any earlier run).
    """

    out_dir: Path
    rank: int
    world_size: int
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def process_rank() -> tuple[int, int]:
    """``(rank, world_size)`` of this process: the initialised ``torch.distributed`` default group,
    else the ``RANK`` / ``WORLD_SIZE`` variables ``torchrun`` and ``accelerate launch`` set, else ``(0, 1)``."""
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            return dist.get_rank(), dist.get_world_size()
    except ImportError:  # torch absent: the launcher's variables still say
        pass
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def folder_items(folder: str | os.PathLike, suffixes: Iterable[str]) -> list[Path]:
    """The files under ``folder`` (recursively) whose suffix is one of ``suffixes`` (case-insensitive),
    in sorted order, so every process lists them the same way."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"the batch input folder {root} does not exist (or is not a folder)")
    wanted = {s.lower() for s in suffixes}
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in wanted)


def default_key(item: Any) -> str:
    """An item's key: a path's name without its suffix, a string as it is."""
    if isinstance(item, os.PathLike):
        return Path(item).stem
    if isinstance(item, str):
        return item
    raise TypeError(f"items of type {type(item).__name__} need a key= function giving each a name")


def done_keys(out_dir: str | os.PathLike) -> set[str]:
    """Every key recorded done in ``out_dir`` by any rank of any earlier run. A last line cut short by
    a kill (no newline) does not count."""
    state = Path(out_dir) / STATE_DIR
    keys: set[str] = set()
    for log in sorted(state.glob("done-rank*.log")):
        text = log.read_text(encoding="utf-8")
        lines = text.split("\n")
        keys.update(line for line in lines[:-1] if line)  # lines[-1] is "" or an unfinished line
    return keys


def _keys_of(items: Sequence[Any], key: Callable[[Any], str]) -> list[str]:
    keys = [key(item) for item in items]
    seen: dict[str, int] = {}
    for position, name in enumerate(keys):
        if not isinstance(name, str) or not _SAFE_KEY.fullmatch(name) or name == STATE_DIR:
            raise ValueError(f"item {position} ({items[position]!r}) has key {name!r}, which cannot name an output "
                             "folder; keys need letters, digits, '_', '-' or '.' and must not start with '.' or '-'")
        if name in seen:
            raise ValueError(f"items {seen[name]} ({items[seen[name]]!r}) and {position} ({items[position]!r}) have "
                             f"the same key {name!r}; pass key= giving each item its own name")
        seen[name] = position
    return keys


def _fsync(path: Path) -> None:
    """Flush a file (or a folder's entries) to disk."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


class _DoneLog:
    """One rank's append-only list of finished keys, each line on disk before it counts."""

    def __init__(self, path: Path):
        self.path = path
        if path.exists() and path.stat().st_size and not path.read_bytes().endswith(b"\n"):
            with open(path, "ab") as stream:  # a line cut short by a kill: end it, done_keys ignored it
                stream.write(b"\n")
        self.stream = open(path, "a", encoding="utf-8")

    def add(self, key: str) -> None:
        self.stream.write(key + "\n")
        self.stream.flush()
        os.fsync(self.stream.fileno())

    def close(self) -> None:
        self.stream.close()


def run_batch(
    items: Sequence[Any],
    work: Callable[[Any, Path], None],
    out_dir: str | os.PathLike,
    *,
    key: Callable[[Any], str] = default_key,
    rank: int | None = None,
    world_size: int | None = None,
    progress: bool = True,
) -> BatchResult:
    """Run ``work(item, staging)`` for this process's share of ``items`` not done yet.

    Parameters
    ----------
    items: the whole job, in the same order on every process (e.g. :func:`folder_items`).
    work: writes one item's outputs into the empty folder ``staging``; it becomes ``out_dir / key(item)``
        once ``work`` returns. An exception stops the batch (the item stays pending) and is re-raised
        with the item named.
    out_dir: the output folder (created); its ``.batch`` folder holds the done-logs.
    key: an item's output-folder name (default: a path's stem); keys must be unique.
    rank, world_size: this process and the job's size; default :func:`process_rank`. Item ``i`` belongs
        to rank ``i % world_size``.
    progress: show a progress bar (rank 0 only).

    Returns
    -------
    A :class:`BatchResult` with the keys this process computed and skipped.
    """
    detected = process_rank()
    rank = detected[0] if rank is None else rank
    world_size = detected[1] if world_size is None else world_size
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank={rank} must be in 0..world_size-1 with world_size={world_size} >= 1")
    keys = _keys_of(items, key)
    out = Path(out_dir)
    state = out / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    done = done_keys(out)
    result = BatchResult(out, rank, world_size)
    mine = [(item, name) for position, (item, name) in enumerate(zip(items, keys)) if position % world_size == rank]
    log = _DoneLog(state / f"done-rank{rank}.log")
    try:
        for item, name in tqdm(mine, desc=f"batch (rank {rank}/{world_size})", disable=not progress or rank != 0):
            final = out / name
            if name in done:
                result.skipped.append(name)
                continue
            if final.is_dir():  # renamed into place, killed before its log line: complete
                log.add(name)
                result.skipped.append(name)
                continue
            staging = state / f"{name}.partial"
            shutil.rmtree(staging, ignore_errors=True)  # a killed earlier attempt's leftovers
            staging.mkdir()
            try:
                work(item, staging)
            except Exception as error:
                shutil.rmtree(staging, ignore_errors=True)
                raise RuntimeError(f"batch item {name!r} ({item!r}) failed on rank {rank}: "
                                   f"{type(error).__name__}: {error}") from error
            for path in staging.rglob("*"):
                if path.is_file():
                    _fsync(path)
            os.replace(staging, final)
            _fsync(out)
            log.add(name)
            result.ran.append(name)
    finally:
        log.close()
    return result
