"""Spatial maps from the same softmax weights as the scores (DESIGN.md §2).

* query map  ``M_n(i) = sum_l w_i(n, l)``: which output regions come from training item n;
* source map ``S_n(l) = sum_i w_i(n, l)``: which regions of item n were used;
* dominant source ``argmax_n M_n(i)``: the output as a collage of training items.

With top-k only the kept key windows count, so ``sum_i M_n(i) = score_n``. Multiscale maps are the
weighted sums of the per-scale maps (every scale has one window per pixel).
"""

from __future__ import annotations

from dataclasses import dataclass
import torch

from .logits import ScalePlan, augmented_keys, class_logits, round_windows
from .source import TrainingSource


@dataclass
class NDAMaps:
    """Spatial attribution maps for each query.

    Attributes:
        items (`torch.LongTensor` of shape `(B, M)`): training indices the maps below are for.
        query_maps (`torch.Tensor` of shape `(B, M, H, W)`): mass each query pixel's window puts on
            the item; summing over pixels gives the item's score.
        source_maps (`torch.Tensor` of shape `(B, M, H, W)`): mass drawn from each window of the item.
        dominant_source (`torch.LongTensor` of shape `(B, H, W)`): index of the training item that
            puts the most mass on each query pixel, over the whole training set.
        dominant_share (`torch.Tensor` of shape `(B, H, W)`): that item's mass divided by the total
            scale weight (1 at a pixel drawn from a single item, single scale, no top-k).
    """

    items: torch.Tensor
    query_maps: torch.Tensor
    source_maps: torch.Tensor
    dominant_source: torch.Tensor
    dominant_share: torch.Tensor


class DominantTracker:
    """Running ``argmax_n`` of the fused per-pixel mass while chunks stream by."""

    def __init__(self, batch: int, positions: int, like: torch.Tensor):
        self.best = torch.full((batch, positions), -1.0, dtype=like.dtype, device=like.device)
        self.index = torch.zeros((batch, positions), dtype=torch.long, device=like.device)

    def update(self, shares: torch.Tensor, start: int) -> None:
        """Fold in ``shares [B, P, n]`` of items ``start .. start + n - 1``."""
        if shares.shape[-1] == 0:  # an empty shard of a sharded set
            return
        value, index = shares.max(dim=-1)
        better = value > self.best
        self.best = torch.where(better, value, self.best)
        self.index = torch.where(better, index + start, self.index)


def _keep_topk(weights: torch.Tensor, topk: int | None) -> torch.Tensor:
    """Zero all but the ``topk`` largest weights along the last axis (key windows)."""
    if topk is None or topk >= weights.shape[-1]:
        return weights
    kept = torch.zeros_like(weights)
    index = weights.topk(topk, dim=-1).indices
    return kept.scatter_(-1, index, weights.gather(-1, index))


def item_maps(
    plans: list[ScalePlan],
    normalisers: list[torch.Tensor],
    source: TrainingSource,
    items: torch.Tensor,
    topk: int | None,
    image_size: tuple[int, int],
    precision: str = "exact",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Query and source maps ``[B, M, H, W]`` of the given ``items [B, M]`` of each query (GEMM
    inputs rounded to ``precision``, as for the normalisers)."""
    batch, count = items.shape
    like = normalisers[0]
    query_maps = like.new_zeros(batch, count, image_size[0] * image_size[1])
    source_maps = torch.zeros_like(query_maps)
    for b in range(batch):
        selected = source.gather(items[b].tolist()).to(like)
        for plan, normaliser in zip(plans, normalisers):
            keys = round_windows(augmented_keys(selected, plan.scale), precision)
            own = plan.for_query(b)
            for group, query_group in zip(own.groups, own.query_groups):
                logits = class_logits(round_windows(query_group, precision), keys, group)[:, 0]
                weights = (logits - normaliser[b, group][:, :, None, None]).exp_()  # [c, m, M, m]
                weights = _keep_topk(weights, topk).mul_(plan.scale.weight)
                flat = group.flatten()
                query_maps[b][:, flat] += weights.sum(-1).permute(2, 0, 1).reshape(count, -1)
                source_maps[b][:, flat] += weights.sum(1).transpose(0, 1).reshape(count, -1)
    shape = (batch, count, *image_size)
    return query_maps.view(shape), source_maps.view(shape)
