"""Logits of query windows against key windows, one boundary class at a time.

For each query window i and each key window l of training image n in the same boundary class,

    logit_i(n, l) = -|| B(z_i(x_t) - alpha z_l(y_n)) ||^2 / (2 sigma^2)

Dropping the constant ``||B z_i||^2`` (the softmax ignores it) leaves
``(alpha <q, k> - alpha^2 ||k||^2 / 2) / sigma^2``: one batched GEMM per group of classes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .streaming import log_sum_exp_
from .windows import Scale, boundary_class_groups, project_windows


@dataclass
class ScalePlan:
    """Everything about one scale that does not depend on the training chunk."""

    scale: Scale
    groups: list[torch.Tensor]  # boundary classes, each [n_classes, class_size] window positions
    query_groups: list[torch.Tensor]  # per group: projected queries [n_classes, B * class_size, D]


def plan_scale(queries: torch.Tensor, scale: Scale) -> ScalePlan:
    """Boundary classes and projected query windows of one scale for queries [B, C, H, W]."""
    _, _, height, width = queries.shape
    groups = [g.to(queries.device) for g in boundary_class_groups(height, width, scale)]
    windows = project_windows(queries, scale)  # [B, P, D]
    batch, depth = windows.shape[0], windows.shape[2]
    query_groups = [
        windows[:, g.flatten()].view(batch, *g.shape, depth).transpose(0, 1).reshape(g.shape[0], -1, depth)
        for g in groups
    ]
    return ScalePlan(scale, groups, query_groups)


@dataclass
class Temperature:
    """Per-query factors of the logit: ``alpha / sigma^2`` on <q, k> and ``alpha^2 / (2 sigma^2)`` on
    ``||k||^2``, shaped to broadcast over ``[classes, B, windows, items, windows]``."""

    dot: torch.Tensor
    norm: torch.Tensor

    @classmethod
    def of(cls, alpha: torch.Tensor, sigma: torch.Tensor, like: torch.Tensor) -> "Temperature":
        variance = sigma.square()
        shape = (1, -1, 1, 1, 1)
        dot = (alpha / variance).to(like).view(shape)
        norm = (alpha.square() / (2 * variance)).to(like).view(shape)
        return cls(dot, norm)


def class_logits(
    query_group: torch.Tensor, key_windows: torch.Tensor, key_norms: torch.Tensor,
    group: torch.Tensor, temperature: Temperature,
) -> torch.Tensor:
    """Logits ``[n_classes, B, m, n, m]`` of every query window against every key window of the
    same boundary class (up to the per-query-window constant, which the softmax ignores)."""
    n_classes, size = group.shape
    n_items, _, depth = key_windows.shape
    flat = group.flatten()
    keys = key_windows[:, flat].view(n_items, n_classes, size, depth).transpose(0, 1)
    keys = keys.reshape(n_classes, n_items * size, depth)
    logits = torch.bmm(query_group, keys.transpose(1, 2)).view(n_classes, -1, size, n_items, size)
    norms = key_norms[:, flat].view(n_items, n_classes, size).transpose(0, 1)
    logits.mul_(temperature.dot).sub_(norms[:, None, None] * temperature.norm)
    return logits


def chunk_log_mass(
    plan: ScalePlan, chunk: torch.Tensor, temperature: Temperature, topk: int | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """For one scale and one chunk of training items, return

    * ``L [B, P, n]``: log of the (top-k) unnormalised mass each query window puts on each item;
    * ``Z [B, P]``: log of the full unnormalised mass of the chunk (the softmax normaliser's share).
    """
    key_windows = project_windows(chunk, plan.scale)  # [n, P, D]
    key_norms = key_windows.square().sum(-1)
    batch = temperature.dot.shape[1]
    n_items, positions = key_windows.shape[:2]
    mass = chunk.new_empty(batch, positions, n_items)
    normaliser = chunk.new_empty(batch, positions)
    for group, query_group in zip(plan.groups, plan.query_groups):
        logits = class_logits(query_group, key_windows, key_norms, group, temperature)
        flat = group.flatten()
        if topk is not None and topk < group.shape[1]:
            kept = log_sum_exp_(logits.topk(topk, dim=-1).values)
            full = log_sum_exp_(logits)  # [n_classes, B, m, n]; overwrites logits
        else:
            kept = full = log_sum_exp_(logits)
        mass[:, flat] = kept.transpose(0, 1).reshape(batch, -1, n_items)
        normaliser[:, flat] = full.logsumexp(-1).transpose(0, 1).reshape(batch, -1)
    return mass, normaliser
