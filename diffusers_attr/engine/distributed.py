"""Index shards held by several processes (``torch.distributed``): one exact softmax over all of them.

Each process streams its own shard; the per-window softmax normalisers are then merged across
processes with an exact log-sum-exp (:func:`all_log_add`), so every process scores its shard against
the whole training set. :func:`gather_scores` assembles the full ``[B, N]`` scores on every process.
Maps use global item indices (shards in rank order): each process maps the chosen items it holds and
the maps are summed across processes; the dominant source is the maximum over all shards.
Works with any backend (gloo on CPUs, nccl on GPUs); ``accelerate`` sets up the same default group.
"""

from __future__ import annotations

from typing import Any

import torch

from .logits import ScalePlan
from .maps import item_maps
from .source import TrainingSource


def check_process_group(group: Any) -> None:
    """Raise a clear ``ValueError`` when sharded scoring cannot run."""
    if group is None:
        return
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise ValueError(
            "process_group was given but torch.distributed is not initialised; call "
            "torch.distributed.init_process_group(...) in every process first (or pass process_group=None)"
        )


def all_log_add(partial: torch.Tensor, group: Any = None) -> torch.Tensor:
    """``log sum_ranks exp(partial_rank)`` elementwise, on every process of ``group`` (None: the
    default group). Exact and safe for ``-inf`` entries: the shared peak comes first (all-reduce MAX),
    then the shifted masses are summed (all-reduce SUM). Every process must pass the same shape."""
    import torch.distributed as dist

    peak = partial.clone()
    dist.all_reduce(peak, op=dist.ReduceOp.MAX, group=group)
    peak = torch.where(torch.isfinite(peak), peak, torch.zeros_like(peak))
    total = (partial - peak).exp_()
    dist.all_reduce(total, op=dist.ReduceOp.SUM, group=group)
    return total.log_().add_(peak)


def _shard_sizes(local_count: int, device: torch.device, group: Any) -> list[int]:
    import torch.distributed as dist

    sizes = [torch.zeros(1, dtype=torch.long, device=device) for _ in range(dist.get_world_size(group))]
    dist.all_gather(sizes, torch.tensor([local_count], device=device), group=group)
    return [int(size.item()) for size in sizes]


def shard_offset(local_count: int, device: torch.device, group: Any = None) -> int:
    """Global index of this process's first item (shards concatenated in rank order)."""
    import torch.distributed as dist

    return sum(_shard_sizes(local_count, device, group)[: dist.get_rank(group)])


def gather_scores(local: torch.Tensor, group: Any = None) -> torch.Tensor:
    """The full scores ``[B, N]`` on every process, from each process's ``[B, N_rank]`` (shards may
    differ in size; they are concatenated in rank order)."""
    import torch.distributed as dist

    sizes = _shard_sizes(local.shape[1], local.device, group)
    padded = torch.zeros(local.shape[0], max(sizes), dtype=local.dtype, device=local.device)
    padded[:, : local.shape[1]] = local
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded, group=group)
    return torch.cat([part[:, :size] for part, size in zip(parts, sizes)], dim=1)


def merge_dominant(best: torch.Tensor, index: torch.Tensor, group: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The dominant source over all shards from each process's running maximum ``best`` and its global
    ``index``: the largest share, and among equal shares the lowest index (as one process picks)."""
    import torch.distributed as dist

    overall = best.clone()
    dist.all_reduce(overall, op=dist.ReduceOp.MAX, group=group)
    candidate = torch.where(best == overall, index, torch.full_like(index, torch.iinfo(index.dtype).max))
    dist.all_reduce(candidate, op=dist.ReduceOp.MIN, group=group)
    return overall, candidate


def sharded_item_maps(
    plans: list[ScalePlan],
    normalisers: list[torch.Tensor],
    source: TrainingSource,
    items: torch.Tensor,
    offset: int,
    topk: int | None,
    image_size: tuple[int, int],
    group: Any = None,
    precision: str = "exact",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Query and source maps ``[B, M, H, W]`` of the global ``items [B, M]``: each process maps the
    items of its shard (``offset`` .. ``offset + len(source) - 1``), and the maps are summed."""
    import torch.distributed as dist

    owned = (items >= offset) & (items < offset + len(source))
    shape = (*items.shape, *image_size)
    if owned.any():
        local = torch.where(owned, items - offset, torch.zeros_like(items))
        query_maps, source_maps = item_maps(plans, normalisers, source, local, topk, image_size, precision)
        keep = owned[:, :, None, None].to(query_maps.dtype)
        query_maps, source_maps = query_maps * keep, source_maps * keep
    else:
        query_maps = normalisers[0].new_zeros(shape)
        source_maps = normalisers[0].new_zeros(shape)
    dist.all_reduce(query_maps, op=dist.ReduceOp.SUM, group=group)
    dist.all_reduce(source_maps, op=dist.ReduceOp.SUM, group=group)
    return query_maps, source_maps
