"""The training-set interface the engine streams over.

The engine never needs the whole training set in memory: it asks a source for consecutive chunks.
A plain tensor ``[N, C, H, W]`` is wrapped by :class:`TensorSource`; ``diffusers_attr.AttributionIndex``
implements the same protocol over its memory-mapped shards.
"""

from __future__ import annotations

from typing import Iterator, Protocol, runtime_checkable

import torch


@runtime_checkable
class TrainingSource(Protocol):
    """Anything the engine can stream training items from (all in the model's space)."""

    def __len__(self) -> int:
        """Number of training items N."""

    @property
    def item_shape(self) -> tuple[int, int, int]:
        """Shape ``(C, H, W)`` of one item."""

    def iter_chunks(self, chunk_size: int) -> Iterator[torch.Tensor]:
        """Yield consecutive ``[n, C, H, W]`` tensors (n <= chunk_size) covering items 0..N-1 in order."""

    def gather(self, indices: list[int]) -> torch.Tensor:
        """The items at ``indices`` as one ``[len(indices), C, H, W]`` tensor."""


class TensorSource:
    """A :class:`TrainingSource` over an in-memory tensor ``[N, C, H, W]``."""

    def __init__(self, items: torch.Tensor):
        if items.dim() != 4:
            raise ValueError(
                f"train must be a tensor [N, C, H, W] or an AttributionIndex; got a tensor of shape "
                f"{tuple(items.shape)}"
            )
        self.items = items

    def __len__(self) -> int:
        return self.items.shape[0]

    @property
    def item_shape(self) -> tuple[int, int, int]:
        return tuple(self.items.shape[1:])  # type: ignore[return-value]

    def iter_chunks(self, chunk_size: int) -> Iterator[torch.Tensor]:
        for start in range(0, len(self), chunk_size):
            yield self.items[start : start + chunk_size]

    def gather(self, indices: list[int]) -> torch.Tensor:
        return self.items[torch.as_tensor(indices, dtype=torch.long, device=self.items.device)]


class SourceShard:
    """A :class:`TrainingSource` over the contiguous items ``start:stop`` of another source, read
    through its ``gather`` (an ``AttributionIndex`` reads only those items from disk)."""

    def __init__(self, source: TrainingSource, start: int, stop: int):
        if not 0 <= start <= stop <= len(source):
            raise ValueError(f"shard {start}:{stop} is not within the {len(source)} items of the source")
        self.source, self.start, self.stop = source, start, stop
        parent_ids = getattr(source, "ids", None)
        self.ids = list(parent_ids[start:stop]) if parent_ids is not None else None

    def __len__(self) -> int:
        return self.stop - self.start

    @property
    def item_shape(self) -> tuple[int, int, int]:
        return tuple(self.source.item_shape)  # type: ignore[return-value]

    def iter_chunks(self, chunk_size: int) -> Iterator[torch.Tensor]:
        for first in range(self.start, self.stop, chunk_size):
            yield self.source.gather(list(range(first, min(first + chunk_size, self.stop))))

    def gather(self, indices: list[int]) -> torch.Tensor:
        return self.source.gather([self.start + int(i) for i in indices])


def shard(train: torch.Tensor | TrainingSource, rank: int, world_size: int) -> SourceShard:
    """Process ``rank``'s contiguous share of ``train`` when ``world_size`` processes split it (sizes
    differ by at most one item; shards follow the rank order, so concatenating them in rank order
    gives the whole set back). For sharded scoring with ``nda_scores(..., process_group=...)``."""
    if not (isinstance(world_size, int) and isinstance(rank, int) and 0 <= rank < world_size):
        raise ValueError(f"need 0 <= rank < world_size; got rank={rank!r}, world_size={world_size!r}")
    source = TensorSource(train) if isinstance(train, torch.Tensor) else train
    total = len(source)
    return SourceShard(source, total * rank // world_size, total * (rank + 1) // world_size)
