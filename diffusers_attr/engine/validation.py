"""Checks at the engine's public boundary: each error says what was wrong and how to fix it."""

from __future__ import annotations

from typing import Sequence, Union

import torch

from .source import TensorSource, TrainingSource
from .windows import Scale

ScaleSpec = Union[Scale, Sequence[float]]


def check_queries(queries: torch.Tensor) -> None:
    """Queries must be a finite floating tensor ``[B, C, H, W]``."""
    if not isinstance(queries, torch.Tensor) or queries.dim() != 4:
        shape = tuple(queries.shape) if isinstance(queries, torch.Tensor) else type(queries).__name__
        raise ValueError(f"queries must be a tensor [B, C, H, W]; got {shape}")
    if not queries.is_floating_point():
        raise ValueError(f"queries must be a floating-point tensor; got dtype {queries.dtype}")
    if queries.shape[0] == 0:
        raise ValueError("queries is empty (B = 0); pass at least one noisy state")
    bad = ~torch.isfinite(queries).flatten(1).all(dim=1)
    if bad.any():
        rows = bad.nonzero().flatten().tolist()
        raise ValueError(f"queries contain NaN or inf (rows {rows}); check the recorded states")


def as_source(train: torch.Tensor | TrainingSource, queries: torch.Tensor, allow_empty: bool = False) -> TrainingSource:
    """Wrap ``train`` as a :class:`TrainingSource` and check it matches the queries' space (empty only
    when ``allow_empty``: one process's shard of a set split over more processes than items)."""
    source = TensorSource(train) if isinstance(train, torch.Tensor) else train
    if not isinstance(source, TrainingSource):
        raise TypeError(
            f"train must be a tensor [N, C, H, W] or an AttributionIndex; got {type(train).__name__}"
        )
    if len(source) == 0 and not allow_empty:
        raise ValueError("the training set is empty; build the index from at least one image")
    query_shape = tuple(queries.shape[1:])
    if tuple(source.item_shape) != query_shape:
        raise ValueError(
            f"queries have (C, H, W) = {query_shape} but training items have {tuple(source.item_shape)}; "
            "queries and training set must live in the same space (same channels and resolution: "
            "for a latent pipeline, build the index through the pipeline's VAE)"
        )
    return source


def check_chunk_finite(chunk: torch.Tensor, start: int, source: TrainingSource) -> None:
    """Raise when a streamed chunk of training items holds NaN or inf, naming the first bad item."""
    check_items_finite(torch.isfinite(chunk).flatten(1).all(dim=1), start, source)


def check_items_finite(finite: torch.Tensor, start: int, source: TrainingSource) -> None:
    """Raise naming the first item whose entry of ``finite [n]`` (items ``start ..``) is False."""
    if not finite.all():
        position = start + int((~finite).nonzero()[0])
        ids = getattr(source, "ids", None)
        name = f" (id {ids[position]!r})" if ids is not None else ""
        raise ValueError(
            f"training item {position}{name} contains NaN or inf; remove it or rebuild the index"
        )


def coefficients(value: float | torch.Tensor, name: str, batch: int) -> torch.Tensor:
    """``alpha``/``sigma`` as a float64 tensor ``[B]`` (a float or a tensor of one or B values)."""
    tensor = torch.as_tensor(value, dtype=torch.float64).detach().cpu().flatten()
    if tensor.numel() == 1:
        tensor = tensor.expand(batch).clone()
    if tensor.numel() != batch:
        raise ValueError(f"{name} must be a float or hold one value per query ({batch}); got {tensor.numel()}")
    if not torch.isfinite(tensor).all():
        raise ValueError(f"{name} must be finite; got {tensor.tolist()}")
    if name == "sigma" and (tensor <= 0).any():
        raise ValueError(f"sigma must be > 0 (the noise level of each query); got {tensor.tolist()}")
    if name == "alpha" and (tensor < 0).any():
        raise ValueError(f"alpha must be >= 0 (the signal scale of each query); got {tensor.tolist()}")
    return tensor


def check_patch_size(patch_size: object, name: str = "patch_size") -> int:
    """Patch sizes are odd positive integers, so every window has a centre pixel."""
    if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 1:
        raise ValueError(f"{name}={patch_size!r} must be a positive odd integer such as 5 or 7")
    if patch_size % 2 == 0:
        raise ValueError(f"{name}={patch_size} must be odd; use {patch_size - 1} or {patch_size + 1}")
    return patch_size


def resolve_scales(
    scales: Sequence[ScaleSpec] | None, patch_size: int, height: int, width: int
) -> list[Scale]:
    """Turn ``scales`` (or the single scale ``patch_size``) into checked :class:`Scale` objects."""
    if scales is None:
        specs: list[Scale] = [Scale(1, check_patch_size(patch_size), 1.0)]
    else:
        if len(scales) == 0:
            raise ValueError("scales is empty; pass None or a list of (factor, patch_size, weight)")
        specs = []
        for spec in scales:
            if not isinstance(spec, Scale):
                if len(spec) != 3:
                    raise ValueError(f"each scale is (factor, patch_size, weight); got {spec!r}")
                spec = Scale(spec[0], spec[1], float(spec[2]))  # type: ignore[arg-type]
            if isinstance(spec.factor, bool) or not isinstance(spec.factor, int) or spec.factor < 1:
                raise ValueError(f"scale factor={spec.factor!r} must be a positive integer")
            check_patch_size(spec.patch_size)
            if not torch.isfinite(torch.tensor(spec.weight)):
                raise ValueError(f"scale weight={spec.weight!r} must be finite")
            specs.append(spec)
    for spec in specs:
        if spec.window > min(height, width):
            largest = min(height, width) // spec.factor
            largest -= 1 - largest % 2
            raise ValueError(
                f"patch window {spec.factor}x{spec.patch_size} = {spec.window} pixels is larger than "
                f"the {height}x{width} image; use patch_size <= {largest} at factor {spec.factor}"
            )
    return specs


def check_topk(topk: int | None) -> int | None:
    """``topk`` is None (sum every key window) or a positive integer."""
    if topk is not None and (isinstance(topk, bool) or not isinstance(topk, int) or topk < 1):
        raise ValueError(f"topk={topk!r} must be None or a positive integer")
    return topk
