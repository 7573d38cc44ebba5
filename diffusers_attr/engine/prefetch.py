"""Streaming the training set to the GPU: reads run ahead of the compute.

A background thread reads chunks from the source (an ``AttributionIndex`` reads its memory-mapped
shards) into a ring of pinned host buffers; the main thread copies each buffer to the device on a
side stream, and the compute stream waits for that copy only, so the next chunk travels while the
previous one computes. On CPUs chunks are used as read (no thread: nothing to overlap with).
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator

import torch

from .source import TrainingSource

_DONE = object()


def read_ahead(chunks: Iterator[torch.Tensor], stage: Callable[[torch.Tensor], object], depth: int = 2) -> Iterator[object]:
    """``stage(chunk)`` of every chunk, computed by a background thread at most ``depth`` chunks
    ahead of the consumer, in order. An exception of the reader is raised in the consumer; closing
    the iterator early stops the reader."""
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> None:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def reader() -> None:
        try:
            for chunk in chunks:
                if stop.is_set():
                    return
                put(stage(chunk))
            put(_DONE)
        except BaseException as error:  # handed to the consumer, raised there
            put(error)

    thread = threading.Thread(target=reader, name="diffusers-attr-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = ready.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


class _PinnedRing:
    """``depth + 2`` pinned host buffers reused in turn (the reader may run ``depth + 1`` chunks
    ahead of the copy last issued); a buffer is refilled only once the device copy that read it has
    finished (its event)."""

    def __init__(self, shape: tuple[int, ...], dtype: torch.dtype, depth: int):
        self.buffers = [torch.empty(shape, dtype=dtype, pin_memory=True) for _ in range(depth + 2)]
        self.events: list[torch.cuda.Event | None] = [None] * len(self.buffers)
        self.turn = 0

    def fill(self, chunk: torch.Tensor) -> tuple[int, torch.Tensor]:
        slot = self.turn % len(self.buffers)
        self.turn += 1
        if self.events[slot] is not None:
            self.events[slot].synchronize()
        buffer = self.buffers[slot][: chunk.shape[0]]
        buffer.copy_(chunk)
        return slot, buffer


def device_chunks(
    source: TrainingSource, chunk_size: int, device: torch.device, dtype: torch.dtype, depth: int = 2
) -> Iterator[torch.Tensor]:
    """Consecutive training chunks on ``device`` in ``dtype``; on CUDA read ahead into pinned
    buffers and copied on a side stream (see the module docstring)."""
    if device.type != "cuda":
        for chunk in source.iter_chunks(chunk_size):
            yield chunk.to(device=device, dtype=dtype)
        return
    ring = _PinnedRing((chunk_size, *source.item_shape), torch.float32, depth)
    copy_stream = torch.cuda.Stream(device)
    compute_stream = torch.cuda.current_stream(device)
    for slot, buffer in read_ahead(iter(source.iter_chunks(chunk_size)), ring.fill, depth):
        with torch.cuda.stream(copy_stream):
            chunk = buffer.to(device, non_blocking=True)
            event = torch.cuda.Event()
            event.record(copy_stream)
        ring.events[slot] = event
        compute_stream.wait_event(event)
        chunk.record_stream(compute_stream)
        yield chunk.to(dtype)
