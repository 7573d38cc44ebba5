"""Index shards held by several processes (``torch.distributed``): one exact softmax over all of them.

Each process streams its own shard; the per-window softmax normalisers are then merged across
processes with an exact log-sum-exp (:func:`all_log_add`), so every process scores its shard against
the whole training set. :func:`gather_scores` assembles the full ``[B, N]`` scores on every process.
Works with any backend (gloo on CPUs, nccl on GPUs); ``accelerate`` sets up the same default group.
"""

from __future__ import annotations

from typing import Any

import torch


def check_process_group(group: Any, want_maps: bool) -> None:
    """Raise a clear ``ValueError`` when sharded scoring cannot run as asked."""
    if group is None:
        return
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise ValueError(
            "process_group was given but torch.distributed is not initialised; call "
            "torch.distributed.init_process_group(...) in every process first (or pass process_group=None)"
        )
    if want_maps:
        raise ValueError(
            "maps are not computed for sharded training sets; score with process_group, gather the scores "
            "(gather_scores), then compute maps for the chosen items on one process with map_items"
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


def gather_scores(local: torch.Tensor, group: Any = None) -> torch.Tensor:
    """The full scores ``[B, N]`` on every process, from each process's ``[B, N_rank]`` (shards may
    differ in size; they are concatenated in rank order)."""
    import torch.distributed as dist

    sizes = [torch.zeros(1, dtype=torch.long, device=local.device) for _ in range(dist.get_world_size(group))]
    dist.all_gather(sizes, torch.tensor([local.shape[1]], device=local.device), group=group)
    widest = int(max(size.item() for size in sizes))
    padded = torch.zeros(local.shape[0], widest, dtype=local.dtype, device=local.device)
    padded[:, : local.shape[1]] = local
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded, group=group)
    return torch.cat([part[:, : int(size.item())] for part, size in zip(parts, sizes)], dim=1)
