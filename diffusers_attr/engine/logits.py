"""Logits of query windows against key windows, one boundary class at a time.

For each query window i and each key window l of training image n in the same boundary class,

    logit_i(n, l) = -|| B(z_i(x_t) - alpha z_l(y_n)) ||^2 / (2 sigma^2)

Dropping the constant ``||B z_i||^2`` (the softmax ignores it) leaves
``(alpha / sigma^2) <q, k> - (alpha^2 / (2 sigma^2)) ||k||^2``. Both factors belong to the query, so
queries are stored augmented as ``[q * alpha / sigma^2, -alpha^2 / (2 sigma^2)]`` and keys as
``[k, ||k||^2]``: one batched GEMM per group of classes yields the logits with no further pass over them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import fused
from .backend import round_inputs
from .streaming import log_sum_exp_
from .windows import Scale, boundary_class_groups, project_windows


@dataclass
class ScalePlan:
    """Everything about one scale that does not depend on the training chunk.

    Attributes:
        scale: the scale.
        groups: boundary classes, each ``LongTensor [n_classes, class_size]`` of window positions.
        query_groups: per group, augmented queries ``[n_classes, B * class_size, D + 1]``.
    """

    scale: Scale
    groups: list[torch.Tensor]
    query_groups: list[torch.Tensor]

    @property
    def batch(self) -> int:
        return self.query_groups[0].shape[1] // self.groups[0].shape[1]

    def for_query(self, b: int) -> "ScalePlan":
        """The plan of query ``b`` alone."""
        own = [q.view(g.shape[0], self.batch, g.shape[1], -1)[:, b] for g, q in zip(self.groups, self.query_groups)]
        return ScalePlan(self.scale, self.groups, own)


def plan_scale(queries: torch.Tensor, scale: Scale, alpha: torch.Tensor, sigma: torch.Tensor) -> ScalePlan:
    """Boundary classes and augmented query windows of one scale for queries ``[B, C, H, W]`` with
    forward-process coefficients ``alpha``, ``sigma`` ``[B]`` (float64, converted here)."""
    _, _, height, width = queries.shape
    groups = [g.to(queries.device) for g in boundary_class_groups(height, width, scale)]
    windows = project_windows(queries, scale)  # [B, P, D]
    variance = sigma.square()
    dot = (alpha / variance).to(windows).view(-1, 1, 1)
    norm = (-alpha.square() / (2 * variance)).to(windows).view(-1, 1, 1)
    augmented = torch.cat([windows * dot, norm.expand(-1, windows.shape[1], 1)], dim=-1)  # [B, P, D + 1]
    batch, depth = augmented.shape[0], augmented.shape[2]
    query_groups = [
        augmented[:, g.flatten()].view(batch, *g.shape, depth).transpose(0, 1).reshape(g.shape[0], -1, depth)
        for g in groups
    ]
    return ScalePlan(scale, groups, query_groups)


def augmented_keys(items: torch.Tensor, scale: Scale) -> torch.Tensor:
    """Key windows ``[n, P, D + 1]``: the projected windows of ``items [n, C, H, W]`` and their
    squared norms."""
    windows = project_windows(items, scale)
    return torch.cat([windows, windows.square().sum(-1, keepdim=True)], dim=-1)


def class_logits(query_group: torch.Tensor, keys: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
    """Logits ``[n_classes, B, m, n, m]`` of every query window against every key window of the
    same boundary class (up to the per-query-window constant, which the softmax ignores)."""
    n_classes, size = group.shape
    n_items, _, depth = keys.shape
    grouped = keys[:, group.flatten()].view(n_items, n_classes, size, depth).transpose(0, 1)
    grouped = grouped.reshape(n_classes, n_items * size, depth)
    return torch.bmm(query_group, grouped.transpose(1, 2)).view(n_classes, -1, size, n_items, size)


def round_windows(augmented: torch.Tensor, precision: str) -> torch.Tensor:
    """Augmented windows with the window part (not the norm column) rounded to ``precision``."""
    if precision == "exact":
        return augmented
    return torch.cat([round_inputs(augmented[..., :-1], precision), augmented[..., -1:]], dim=-1)


def chunk_log_mass(
    plan: ScalePlan,
    chunk: torch.Tensor,
    topk: int | None,
    out: torch.Tensor | None = None,
    backend: str = "torch",
    precision: str = "exact",
) -> tuple[torch.Tensor, torch.Tensor]:
    """For one scale and one chunk of training items, return

    * ``L [B, P, n]``: log of the (top-k) unnormalised mass each query window puts on each item
      (written into ``out`` when given);
    * ``Z [B, P]``: log of the full unnormalised mass of the chunk (the softmax normaliser's share).

    ``backend`` (resolved, ``backend.select_backend``) picks the fused kernel or torch GEMMs for each
    class; ``precision`` rounds the GEMM inputs (``backend.PRECISIONS``).
    """
    keys = augmented_keys(chunk, plan.scale)
    n_items, positions = keys.shape[:2]
    mass = chunk.new_empty(plan.batch, positions, n_items) if out is None else out
    normaliser = chunk.new_empty(plan.batch, positions)
    torch_keys = None
    for group, query_group in zip(plan.groups, plan.query_groups):
        truncated = topk is not None and topk < group.shape[1]
        if backend == "triton" and not truncated:
            full = fused.class_log_mass(query_group, keys, group, precision).view(*group.shape[:1], plan.batch, -1, n_items)
            kept = full
        else:
            torch_keys = round_windows(keys, precision) if torch_keys is None else torch_keys
            logits = class_logits(round_windows(query_group, precision), torch_keys, group)
            if truncated:
                kept = log_sum_exp_(logits.topk(topk, dim=-1).values)
                full = log_sum_exp_(logits)  # [n_classes, B, m, n]; overwrites logits
            else:
                kept = full = log_sum_exp_(logits)
        flat = group.flatten()
        mass[:, flat] = kept.transpose(0, 1).reshape(plan.batch, -1, n_items)
        normaliser[:, flat] = full.logsumexp(-1).transpose(0, 1).reshape(plan.batch, -1)
    return mass, normaliser
