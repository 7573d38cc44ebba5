"""Nonparametric patch attribution (DESIGN.md §2), streamed over the training set.

Per chunk of training items the engine keeps only ``L[b, i, n] = log sum_{l (top-k)} exp(logit)``;
the softmax normaliser ``LSE_i`` is merged across chunks with a running log-sum-exp, and
``score_n = sum_i exp(L[i, n] - LSE_i)``. When the masses ``L`` of the whole set fit half the memory
budget they are cached and the scores follow in one pass over the data; otherwise a second pass
recomputes them chunk by chunk. Either way peak memory is set by the budget, never by N.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import torch
from tqdm.auto import tqdm

from .distributed import (
    all_log_add,
    check_process_group,
    gather_scores,
    merge_dominant,
    shard_offset,
    sharded_item_maps,
)
from .backend import check_precision, select_backend
from .logits import ScalePlan, chunk_log_mass, plan_scale
from .maps import DominantTracker, NDAMaps, item_maps
from .prefetch import device_chunks
from .source import TrainingSource
from .streaming import log_add
from .validation import (
    ScaleSpec,
    as_source,
    check_chunk_finite,
    check_items_finite,
    check_queries,
    check_topk,
    coefficients,
    resolve_scales,
)

DEFAULT_MEMORY_BUDGET = 512 * 2**20
CPU_CHUNK_BYTES = 8 * 2**20
"""On CPUs, chunks whose temporaries stay near cache size run faster than larger ones (measured:
about 1.6x at 32x32x3, p=7, against chunks of 512 MiB), so the budget is only an upper bound there."""


@dataclass
class NDAResult:
    """Scores and, when requested, spatial maps.

    Attributes:
        scores (`torch.Tensor` of shape `(B, N)`): attribution of each query to each training item;
            larger means more influence. Without top-k each row sums to ``sum_s weight_s * H * W``.
        maps (`NDAMaps` or None): query/source maps of selected items and the dominant-source map.
        backend (`str`): what computed the masses (``"torch"`` or ``"triton"``, see ``engine.backend``).
        precision (`str`): the GEMM input precision used (``"exact"``, ``"tf32"`` or ``"bf16"``).
    """

    scores: torch.Tensor
    maps: NDAMaps | None = None
    backend: str = "torch"
    precision: str = "exact"


def _chunk_size(
    plans: list[ScalePlan], batch: int, budget: int, itemsize: int, topk: int | None, device: torch.device
) -> int:
    """Training items per chunk so that the largest per-chunk temporaries fit ``budget`` bytes
    (and stay near cache size on CPUs)."""
    per_item = 0
    for plan in plans:
        positions = sum(g.numel() for g in plan.groups)
        depth = plan.query_groups[0].shape[-1]
        largest_class = max(g.shape[0] * g.shape[1] ** 2 for g in plan.groups)
        top = max(g.shape[0] * g.shape[1] * min(topk, g.shape[1]) for g in plan.groups) if topk else 0
        scale_bytes = batch * (largest_class + 2 * top + 2 * positions) + 3 * positions * depth
        per_item = max(per_item, scale_bytes * itemsize)
    if device.type == "cpu":
        budget = min(budget, CPU_CHUNK_BYTES)
    return max(1, budget // per_item)


def _chunks(
    source: TrainingSource, chunk_size: int, like: torch.Tensor, progress: bool, label: str
) -> Iterator[tuple[int, torch.Tensor]]:
    """Checked training chunks moved to the queries' device and dtype, with their start index.

    On CUDA the chunks are read ahead (``prefetch.device_chunks``) and checked once at the end of the
    pass, so no chunk waits for the host; elsewhere each chunk is checked as it arrives."""
    start = 0
    lazy = like.device.type == "cuda"
    finite = []
    with tqdm(total=len(source), desc=label, unit="item", disable=not progress, leave=False) as bar:
        for chunk in device_chunks(source, chunk_size, like.device, like.dtype):
            if lazy:
                finite.append(torch.isfinite(chunk).flatten(1).all(dim=1))
            else:
                check_chunk_finite(chunk, start, source)
            yield start, chunk
            start += chunk.shape[0]
            bar.update(chunk.shape[0])
    if finite:
        check_items_finite(torch.cat(finite), 0, source)
    if start != len(source):
        raise ValueError(f"the training source yielded {start} items but reports {len(source)}")


def nda_attribute(
    queries: torch.Tensor,
    train: torch.Tensor | TrainingSource,
    *,
    alpha: float | torch.Tensor,
    sigma: float | torch.Tensor,
    patch_size: int = 7,
    topk: int | None = None,
    scales: Sequence[ScaleSpec] | None = None,
    maps: int | None = None,
    map_items: torch.Tensor | None = None,
    shared_maps: bool = False,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    progress: bool = False,
    process_group: Any = None,
    precision: str = "exact",
    backend: str = "auto",
) -> NDAResult:
    """Attribution scores of noisy queries to training items, optionally with spatial maps.

    Parameters:
        queries: noisy states ``[B, C, H, W]`` in the model's space (``x_t = alpha x_0 + sigma eps``).
        train: training items ``[N, C, H, W]`` in the same space, or an ``AttributionIndex``.
        alpha, sigma: forward-process coefficients, floats or one value per query.
        patch_size: odd side of the patch window (single scale; ignored when ``scales`` is given).
        topk: keep only the top-k key windows of each (query window, training item) pair.
        scales: ``[(factor, patch_size, weight), ...]`` for the multiscale score.
        maps: also compute query/source maps of each query's top-``maps`` items.
        map_items: ``LongTensor [B, M]`` choosing the map items explicitly (overrides ``maps``).
        shared_maps: map the top-``maps`` items of the mean score over the batch, the same items for
            every query (for queries that are several noise levels of one image).
        memory_budget: bytes for the engine's temporaries; sets the training chunk size.
        progress: show tqdm progress bars over the training set.
        process_group: a ``torch.distributed`` process group (e.g. ``torch.distributed.group.WORLD``)
            whose processes each hold one shard of the training set as ``train`` (shards in rank order,
            see :func:`~diffusers_attr.engine.source.shard`) and the same queries: the softmax runs
            over all shards, and each process gets the scores of its own shard (assemble them with
            :func:`~diffusers_attr.engine.distributed.gather_scores`). Maps, when asked for, are of
            the whole set, with global item indices, on every process.
        precision: GEMM input precision: ``"exact"`` (default; float32 inputs and accumulation, or
            float64 for float64 queries), ``"tf32"`` or ``"bf16"`` (rounded inputs, float32
            accumulation; faster on GPUs, fidelity in docs/benchmarks.md). Never chosen for you.
        backend: ``"auto"`` (the fused Triton kernel on CUDA when installed, else torch), ``"torch"``
            or ``"triton"``; see :mod:`diffusers_attr.engine.backend`.

    Returns:
        ``NDAResult`` with ``scores [B, N]`` (computed in float64 for float64 queries, else float32),
        ``maps`` when requested, and the backend and precision used.

    Example:
        >>> import torch
        >>> from diffusers_attr.engine import nda_attribute
        >>> train = torch.rand(10, 1, 8, 8) * 2 - 1
        >>> queries = 0.9 * train[:2] + 0.3 * torch.randn(2, 1, 8, 8)
        >>> result = nda_attribute(queries, train, alpha=0.9, sigma=0.3, patch_size=3, maps=2)
        >>> result.scores.shape, result.maps.query_maps.shape
        (torch.Size([2, 10]), torch.Size([2, 2, 8, 8]))
    """
    check_queries(queries)
    source = as_source(train, queries, allow_empty=process_group is not None)
    batch, _, height, width = queries.shape
    specs = resolve_scales(scales, patch_size, height, width)
    topk = check_topk(topk)
    alpha_b = coefficients(alpha, "alpha", batch)
    sigma_b = coefficients(sigma, "sigma", batch)
    if map_items is not None and (map_items.dim() != 2 or map_items.shape[0] != batch):
        raise ValueError(f"map_items must be a LongTensor [B={batch}, M]; got {tuple(map_items.shape)}")
    want_maps = maps is not None or map_items is not None
    check_process_group(process_group)

    dtype = torch.float64 if queries.dtype == torch.float64 else torch.float32
    precision = check_precision(precision, dtype)
    backend = select_backend(backend, queries.device, dtype)
    x = queries.detach().to(dtype)
    plans = [plan_scale(x, spec, alpha_b, sigma_b) for spec in specs]
    itemsize = x.element_size()
    chunk_size = _chunk_size(plans, batch, memory_budget, itemsize, topk, x.device)
    total = len(source)
    positions = height * width
    cache_fits = len(plans) * batch * positions * total * itemsize <= memory_budget // 2

    normalisers = [x.new_full((batch, positions), float("-inf")) for _ in plans]
    # One preallocated block rather than a list of small tensors: no heap fragmentation between chunks.
    cache = x.new_empty(len(plans), batch, positions, total) if cache_fits else None
    for start, chunk in _chunks(source, chunk_size, x, progress, "attribution"):
        stop = start + chunk.shape[0]
        for i, plan in enumerate(plans):
            out = cache[i, :, :, start:stop] if cache is not None else None
            _, normaliser = chunk_log_mass(plan, chunk, topk, out=out, backend=backend, precision=precision)
            normalisers[i] = log_add(normalisers[i], normaliser)
    if process_group is not None:  # the other shards' mass joins every window's normaliser
        normalisers = [all_log_add(normaliser, process_group) for normaliser in normalisers]

    def mass_chunks() -> Iterator[tuple[int, list[torch.Tensor]]]:
        if cache is not None:
            yield 0, list(cache)
            return
        for start, chunk in _chunks(source, chunk_size, x, progress, "attribution (pass 2)"):
            yield start, [chunk_log_mass(plan, chunk, topk, backend=backend, precision=precision)[0] for plan in plans]

    tracker = DominantTracker(batch, positions, x) if want_maps else None
    offset = shard_offset(total, x.device, process_group) if want_maps and process_group is not None else 0
    scores = x.new_zeros(batch, total)
    for start, masses in mass_chunks():
        shares = sum(
            plan.scale.weight * (mass - normaliser[..., None]).exp_()
            for plan, mass, normaliser in zip(plans, masses, normalisers)
        )
        scores[:, start : start + shares.shape[-1]] = shares.sum(1)
        if tracker is not None:
            tracker.update(shares, offset + start)
    if tracker is None:
        return NDAResult(scores, backend=backend, precision=precision)

    every_score = scores
    if process_group is not None:
        tracker.best, tracker.index = merge_dominant(tracker.best, tracker.index, process_group)
        every_score = gather_scores(scores, process_group)
    if map_items is None:
        count = min(int(maps), every_score.shape[1])  # type: ignore[arg-type]
        ranked = every_score.mean(0, keepdim=True) if shared_maps else every_score
        map_items = ranked.topk(count, dim=1).indices.expand(batch, count)
    map_items = map_items.to(device=x.device, dtype=torch.long)
    if process_group is None:
        query_maps, source_maps = item_maps(plans, normalisers, source, map_items, topk, (height, width), precision)
    else:
        if map_items.numel() and not 0 <= int(map_items.min()) <= int(map_items.max()) < every_score.shape[1]:
            raise IndexError(f"map_items must lie in [0, {every_score.shape[1]}) (the whole sharded set)")
        query_maps, source_maps = sharded_item_maps(
            plans, normalisers, source, map_items, offset, topk, (height, width), process_group, precision
        )
    total_weight = sum(spec.weight for spec in specs)
    return NDAResult(
        scores,
        NDAMaps(
            items=map_items,
            query_maps=query_maps,
            source_maps=source_maps,
            dominant_source=tracker.index.view(batch, height, width),
            dominant_share=(tracker.best / total_weight).view(batch, height, width),
        ),
        backend=backend,
        precision=precision,
    )


def nda_scores(
    queries: torch.Tensor,
    train: torch.Tensor | TrainingSource,
    *,
    alpha: float | torch.Tensor,
    sigma: float | torch.Tensor,
    patch_size: int = 7,
    topk: int | None = None,
    scales: Sequence[ScaleSpec] | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    progress: bool = False,
    process_group: Any = None,
    precision: str = "exact",
    backend: str = "auto",
) -> torch.Tensor:
    """Attribution scores ``[B, N]`` of noisy queries to training items (DESIGN.md §2).

    Same parameters as :func:`nda_attribute` without the maps; larger score = more influence. With
    ``process_group`` each process passes its shard of the training set and gets that shard's scores.

    Example:
        >>> import torch
        >>> from diffusers_attr import nda_scores
        >>> train = torch.rand(10, 1, 8, 8) * 2 - 1
        >>> scores = nda_scores(train[:1], train, alpha=1.0, sigma=0.1, patch_size=3)
        >>> int(scores.argmax())
        0
    """
    return nda_attribute(
        queries, train, alpha=alpha, sigma=sigma, patch_size=patch_size, topk=topk,
        scales=scales, memory_budget=memory_budget, progress=progress, process_group=process_group,
        precision=precision, backend=backend,
    ).scores
