"""Exact second stage of a candidate search: the patch softmax on a subset of the training set.

Given the items a first stage proposed (``candidates``), the engine computes their exact masses; the
softmax normaliser of the items it did not examine is estimated from a seeded uniform sample of them
(``Z_rest ~= (R / S) * Z_sample``, unbiased), so each result reports the share of mass it left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .logits import chunk_log_mass, plan_scale
from .source import TrainingSource
from .streaming import log_add
from .validation import ScaleSpec, as_source, check_queries, check_topk, coefficients, resolve_scales


@dataclass
class CandidateResult:
    """Scores ``[B, N]`` (zero outside ``examined``), the examined item indices and, per query, the
    estimated share of the total mass held by the items not examined."""

    scores: torch.Tensor
    examined: torch.Tensor
    unexamined_share: torch.Tensor


def _log_normaliser_and_mass(plans, source, items, x, chunk_size, topk, want_mass):
    """Per scale: log normaliser ``[B, P]`` over ``items`` and (optionally) masses ``[B, P, len(items)]``."""
    normalisers = [x.new_full((x.shape[0], x.shape[2] * x.shape[3]), float("-inf")) for _ in plans]
    masses = [[] for _ in plans]
    for first in range(0, len(items), chunk_size):
        chunk = source.gather(items[first : first + chunk_size]).to(x)
        for s, plan in enumerate(plans):
            mass, normaliser = chunk_log_mass(plan, chunk, topk)
            normalisers[s] = log_add(normalisers[s], normaliser)
            if want_mass:
                masses[s].append(mass)
    return normalisers, [torch.cat(m, -1) if m else None for m in masses]


def nda_candidate_scores(
    queries: torch.Tensor,
    train: torch.Tensor | TrainingSource,
    candidates: Sequence[int] | torch.Tensor,
    *,
    alpha: float | torch.Tensor,
    sigma: float | torch.Tensor,
    patch_size: int = 7,
    topk: int | None = None,
    scales: Sequence[ScaleSpec] | None = None,
    samples: int = 64,
    seed: int = 0,
    chunk_size: int = 256,
) -> CandidateResult:
    """Exact NDA scores of ``candidates`` with the normaliser of the other items estimated by sampling.

    Parameters:
        queries, train, alpha, sigma, patch_size, topk, scales: as in :func:`~diffusers_attr.engine.nda_attribute`.
        candidates: item indices to examine exactly (repeats are dropped).
        samples: how many of the other items are drawn (seeded) to estimate their share of the normaliser;
            0 treats them as holding no mass.
        seed: seed of that draw.
        chunk_size: items per engine call.

    Returns:
        :class:`CandidateResult`; with every item a candidate the scores equal the exact engine's.
    """
    check_queries(queries)
    source = as_source(train, queries)
    batch, _, height, width = queries.shape
    specs = resolve_scales(scales, patch_size, height, width)
    topk = check_topk(topk)
    alpha_b, sigma_b = coefficients(alpha, "alpha", batch), coefficients(sigma, "sigma", batch)
    total = len(source)
    examined = torch.unique(torch.as_tensor(candidates, dtype=torch.long).flatten())
    if examined.numel() == 0 or int(examined.min()) < 0 or int(examined.max()) >= total:
        raise ValueError(f"candidates must be a non-empty set of item indices in [0, {total})")
    dtype = torch.float64 if queries.dtype == torch.float64 else torch.float32
    x = queries.detach().to(dtype)
    plans = [plan_scale(x, spec, alpha_b, sigma_b) for spec in specs]
    z_cand, masses = _log_normaliser_and_mass(plans, source, examined.tolist(), x, chunk_size, topk, True)
    rest = torch.ones(total, dtype=torch.bool)
    rest[examined] = False
    rest_items = rest.nonzero().flatten()
    drawn = min(samples, rest_items.numel())
    z_total = z_cand
    if drawn:
        pick = torch.randperm(rest_items.numel(), generator=torch.Generator().manual_seed(seed))[:drawn]
        z_sample, _ = _log_normaliser_and_mass(plans, source, rest_items[pick].tolist(), x, chunk_size, topk, False)
        factor = torch.log(torch.tensor(rest_items.numel() / drawn, dtype=dtype))
        z_rest = [z + factor for z in z_sample]
        z_total = [log_add(c, r) for c, r in zip(z_cand, z_rest)]
        left_out = sum(p.scale.weight * (r - t).exp().sum(1) for p, r, t in zip(plans, z_rest, z_total))
    else:
        left_out = x.new_zeros(batch)
    scores = x.new_zeros(batch, total)
    scores[:, examined] = sum(
        p.scale.weight * (m - t[..., None]).exp().sum(1) for p, m, t in zip(plans, masses, z_total)
    )
    full = sum(spec.weight for spec in specs) * height * width
    return CandidateResult(scores, examined, left_out / full)
