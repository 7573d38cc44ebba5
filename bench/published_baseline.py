"""A straightforward re-implementation of the published NDA scoring code, used as the speed/memory
baseline in ``bench/engine.py``.

Reference: Zhao et al., "Nonparametric Data Attribution for Diffusion Models", arXiv 2510.14269, and
the public code (github.com/sail-sg/NDA, ``*/nda_single_scale.py``,
``patch_score_model_helper_conv_softmax``). This file re-implements that algorithm; it copies no code.

The algorithm, single scale, for one query ``x_t [C, H, W]`` and training set ``Y [N, C, H, W]``:

* One query window per pixel, side ``p``, top-left offset ``(p - 1) // 2``, zero-filled outside the
  image (``F.unfold`` of the zero-padded query).
* Query windows are processed in "kernel batches" of ``kernel_batch_size`` windows. For each batch,
  ``F.conv2d`` of the zero-padded (and ``alpha``-scaled) training set with the windows as output
  channels gives ``<q_i, alpha * y_n window l>`` for all ``n`` and every key position ``l``: a
  ``[N, kernel_batch, H, W]`` tensor. Key norms come from one conv with a ones kernel.
* ``||q_i - alpha k||^2 = ||q_i||^2 + ||alpha k||^2 - 2 <q_i, alpha k>`` (clamped at 0), the logits
  ``-d / (2 sigma^2)``, a softmax over all ``N * H * W`` entries per query window, and a sum over key
  positions (or over the top-k positions) gives ``[kernel_batch, N]``; summing over every query
  window gives ``score [N]``.

Boundary handling (the one place where this differs from DESIGN.md §2, which restricts each query
window to key windows with the same valid set *exactly*). Two variants:

``mask_mode="embed"`` (default; what the public code does): every out-of-image entry of a query
    window and of the padded training images is set to ``mask_value`` (public default ``1e3``)
    instead of 0. Entries invalid in both cancel; an entry valid in one and invalid in the other costs
    about ``mask_value ** 2``, so in exact arithmetic a query window only competes with key windows
    of the same valid set. In float32 the ``mask_value ** 2`` terms inside ``||q||^2 + ||k||^2 -
    2 <q, k>`` cancel catastrophically, which perturbs the scores of border windows.

``mask_mode="additive"``: zero fill everywhere and an additive penalty ``mask_value`` (default
    ``1e4``) on the *distance* of every key window whose valid set differs from the query window's.
    For key windows of the same class, ``||q - alpha k||^2`` over the query's valid entries equals the
    full-window distance (both are zero outside), so the key norms from the single ones-kernel conv
    are the masked norms; the other key windows are masked anyway. Same cost as ``"embed"``.

In float64 both variants agree with the DESIGN semantics to rounding (see ``bench/test_published_baseline.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["brute_force_scores", "published_scores", "published_scores_batch", "window_classes"]


def _pads(patch_size: int) -> tuple[int, int]:
    lo = (patch_size - 1) // 2
    return lo, patch_size - 1 - lo


def window_classes(height: int, width: int, patch_size: int) -> torch.Tensor:
    """Boundary class id ``[H * W]`` of every window position: two positions share an id iff their
    windows have the same set of in-image entries."""
    lo, _ = _pads(patch_size)

    def clips(size: int) -> torch.Tensor:
        start = torch.arange(size) - lo
        end = start + patch_size - 1
        before = (-start).clamp(min=0)
        after = (end - (size - 1)).clamp(min=0)
        return before * (patch_size + 1) + after  # unique per (before, after)

    rows, cols = clips(height), clips(width)
    k = (patch_size + 1) ** 2
    return (rows[:, None] * k + cols[None, :]).flatten()


def published_scores(
    query: torch.Tensor,
    train: torch.Tensor,
    *,
    alpha: float,
    sigma: float,
    patch_size: int = 7,
    topk: int | None = None,
    kernel_batch_size: int = 16,
    mask_mode: str = "embed",
    mask_value: float | None = None,
    windows: torch.Tensor | Sequence[int] | None = None,
) -> torch.Tensor:
    """Scores ``[N]`` of one query ``[C, H, W]`` (or ``[1, C, H, W]``) against ``train [N, C, H, W]``.

    Computation happens in the dtype and on the device of ``train`` (the query is cast to it).

    Args:
        kernel_batch_size: query windows per conv call (the public code's ``--kernel_batch_size``;
            its default is 16). Peak memory grows linearly with it.
        mask_mode: ``"embed"`` (public code) or ``"additive"``; see the module docstring.
        mask_value: defaults to ``1e3`` for ``"embed"`` (public default) and ``1e4`` for ``"additive"``.
        windows: optional flat indices (``row * W + col``) of the query windows to process; the
            result is then the sum over those windows only (used to time a subset and extrapolate).
    """
    if query.dim() == 4:
        if query.shape[0] != 1:
            raise ValueError("published_scores takes one query; use published_scores_batch")
        query = query[0]
    if mask_mode not in ("embed", "additive"):
        raise ValueError(f"mask_mode must be 'embed' or 'additive', got {mask_mode!r}")
    if mask_value is None:
        mask_value = 1e3 if mask_mode == "embed" else 1e4
    dtype, device = train.dtype, train.device
    query = query.to(device=device, dtype=dtype)
    n_items, channels, height, width = train.shape
    p = patch_size
    lo, hi = _pads(p)
    pad = (lo, hi, lo, hi)
    variance2 = 2.0 * float(sigma) ** 2

    # query windows [H*W, C, p, p] (zero-filled) and their validity
    q = F.unfold(F.pad(query[None], pad), p).transpose(1, 2).reshape(height * width, channels, p, p)
    ones = torch.ones(1, channels, height, width, device=device, dtype=dtype)
    valid_image = F.pad(ones, pad)  # [1, C, H+p-1, W+p-1]
    y_eff = float(alpha) * F.pad(train, pad)
    if mask_mode == "embed":
        q_valid = F.unfold(valid_image, p).transpose(1, 2).reshape(height * width, channels, p, p)
        q = q + mask_value * (1 - q_valid)
        y_eff = y_eff + mask_value * (1 - valid_image)
        classes = None
    else:
        classes = window_classes(height, width, p).to(device)
    ones_kernel = torch.ones(1, channels, p, p, device=device, dtype=dtype)
    key_norms = F.conv2d(y_eff.square(), ones_kernel).view(1, n_items, height, width)

    if windows is None:
        index = torch.arange(height * width, device=device)
    else:
        index = torch.as_tensor(windows, device=device, dtype=torch.long).flatten()
    scores = torch.zeros(n_items, device=device, dtype=dtype)
    for start in range(0, index.numel(), kernel_batch_size):
        idx = index[start : start + kernel_batch_size]
        kernels = q[idx]  # [kb, C, p, p]
        kb = kernels.shape[0]
        dots = F.conv2d(y_eff, kernels)  # [N, kb, H, W]
        q_norms = kernels.square().sum(dim=(1, 2, 3)).view(kb, 1, 1, 1)
        dist = (q_norms + key_norms - 2 * dots.permute(1, 0, 2, 3)).clamp_(min=0)  # [kb, N, H, W]
        if classes is not None:
            other_class = (classes.view(1, -1) != classes[idx].view(-1, 1)).view(kb, 1, height, width)
            dist = dist + mask_value * other_class.to(dtype)
        weights = torch.softmax((-dist / variance2).flatten(1), dim=-1).view(kb, n_items, height * width)
        if topk is not None:
            per_item = weights.topk(min(topk, height * width), dim=2).values.sum(dim=2)
        else:
            per_item = weights.sum(dim=2)
        scores += per_item.sum(dim=0)
    return scores


def published_scores_batch(queries: torch.Tensor, train: torch.Tensor, *, alpha, sigma, **kwargs) -> torch.Tensor:
    """``[B, N]`` scores for queries ``[B, C, H, W]``; ``alpha``/``sigma`` floats or length-B sequences."""
    out = []
    for b in range(queries.shape[0]):
        a = alpha[b] if isinstance(alpha, (list, tuple, torch.Tensor)) else alpha
        s = sigma[b] if isinstance(sigma, (list, tuple, torch.Tensor)) else sigma
        out.append(published_scores(queries[b], train, alpha=float(a), sigma=float(s), **kwargs))
    return torch.stack(out)


def brute_force_scores(
    query: torch.Tensor, train: torch.Tensor, *, alpha: float, sigma: float, patch_size: int = 7,
    topk: int | None = None,
) -> torch.Tensor:
    """The DESIGN.md §2 semantics written out directly (exact boundary classes, no constants); for
    tests on tiny problems. Runs in the dtype of ``train``."""
    if query.dim() == 4:
        query = query[0]
    dtype = train.dtype
    query = query.to(dtype)
    n_items, _, height, width = train.shape
    p = patch_size
    lo, hi = _pads(p)
    pad = (lo, hi, lo, hi)
    qw = F.unfold(F.pad(query[None], pad), p)[0].T  # [P, D]
    kw = F.unfold(F.pad(train, pad), p).transpose(1, 2)  # [N, P, D]
    classes = window_classes(height, width, p)
    scores = torch.zeros(n_items, dtype=dtype)
    for i in range(height * width):
        same = classes == classes[i]
        keys = kw[:, same]  # [N, m, D]
        dist = (qw[i] - alpha * keys).square().sum(-1)  # [N, m]
        logits = -dist / (2 * sigma**2)
        w = torch.softmax(logits.flatten(), 0).view_as(logits)
        if topk is not None:
            w = w.topk(min(topk, w.shape[1]), dim=1).values
        scores += w.sum(1)
    return scores


def baseline_macs(n_items: int, channels: int, height: int, width: int, patch_size: int, n_windows: int | None = None) -> float:
    """Multiply-adds of the baseline's convolutions for one query (all windows unless given)."""
    n_windows = height * width if n_windows is None else n_windows
    return float(n_windows) * n_items * height * width * channels * patch_size**2


if __name__ == "__main__":  # tiny smoke check
    torch.manual_seed(0)
    y = torch.randn(5, 2, 6, 7, dtype=torch.float64)
    x = 0.8 * y[0] + 0.6 * torch.randn(2, 6, 7, dtype=torch.float64)
    ref = brute_force_scores(x, y, alpha=0.8, sigma=0.6, patch_size=3)
    for mode in ("embed", "additive"):
        got = published_scores(x, y, alpha=0.8, sigma=0.6, patch_size=3, mask_mode=mode)
        print(mode, float((got - ref).abs().max()), float(got.sum()), math.prod(x.shape[1:]))
