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
