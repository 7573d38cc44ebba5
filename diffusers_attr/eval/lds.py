"""The linear datamodeling score (LDS) with a bootstrap confidence interval over subsets.

Ground truth: ``n_subsets`` models, each trained on a random subset of the training set
(``masks[s, n] = 1`` when training item ``n`` was in subset ``s``), and the loss of each model on each
query (``losses[s, q]``). An attribution ``scores[q, n]`` predicts the effect of a subset on query
``q`` as ``prediction[s, q] = sum_n masks[s, n] * scores[q, n]``; since a larger score means the item
*lowers* the query's loss, the LDS of query ``q`` is the Spearman correlation over subsets between
``prediction[:, q]`` and ``-losses[:, q]``, and the LDS is its mean over queries (Park et al., TRAK,
2023; Zheng et al., D-TRAK, 2024).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

__all__ = ["LDSResult", "lds", "spearman_columns", "as_query_train"]


@dataclass
class LDSResult:
    """``mean``: mean Spearman over queries; ``ci_low``/``ci_high``: the bootstrap interval over subsets
    (percentile, level ``ci``); ``per_query``: Spearman of every query (NaN where undefined)."""

    mean: float
    ci_low: float
    ci_high: float
    per_query: np.ndarray = field(repr=False)
    n_subsets: int = 0
    n_queries: int = 0
    ci: float = 0.95

    def to_dict(self) -> dict:
        return dict(mean=self.mean, ci_low=self.ci_low, ci_high=self.ci_high, n_subsets=self.n_subsets,
                    n_queries=self.n_queries, ci=self.ci)

    def __str__(self) -> str:
        return f"{100 * self.mean:.1f} [{100 * self.ci_low:.1f}, {100 * self.ci_high:.1f}]"


def _rank(x: np.ndarray) -> np.ndarray:
    """Average ranks along axis 0 (ties share their mean rank), as ``scipy.stats.rankdata``."""
    n = x.shape[0]
    order = np.argsort(x, axis=0, kind="mergesort")
    sorted_x = np.take_along_axis(x, order, axis=0)
    ranks_sorted = np.empty_like(sorted_x, dtype=np.float64)
    # ties: for each column, assign the mean of the positions of equal values
    new_group = np.ones_like(sorted_x, dtype=bool)
    new_group[1:] = sorted_x[1:] != sorted_x[:-1]
    group_id = np.cumsum(new_group, axis=0) - 1  # [n, m]
    pos = np.arange(1, n + 1, dtype=np.float64)[:, None]
    m = x.shape[1]
    offsets = (np.arange(m) * n)[None, :]
    flat_id = (group_id + offsets).ravel()
    sums = np.bincount(flat_id, weights=np.broadcast_to(pos, (n, m)).ravel(), minlength=n * m)
    counts = np.bincount(flat_id, minlength=n * m)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_pos = sums / np.maximum(counts, 1)
    ranks_sorted[:] = mean_pos[flat_id].reshape(n, m)
    ranks = np.empty_like(ranks_sorted)
    np.put_along_axis(ranks, order, ranks_sorted, axis=0)
    return ranks


def spearman_columns(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlation of every column of ``a`` [S, Q] with the same column of ``b``; NaN for a
    constant column."""
    ra, rb = _rank(np.asarray(a, np.float64)), _rank(np.asarray(b, np.float64))
    ra -= ra.mean(0)
    rb -= rb.mean(0)
    num = (ra * rb).sum(0)
    den = np.sqrt((ra * ra).sum(0) * (rb * rb).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    out[den == 0] = np.nan
    return out


def as_query_train(scores, n_train: int, n_query: int, orientation: str = "auto") -> np.ndarray:
    """``scores`` as a float64 array [n_query, n_train].

    ``orientation``: ``"query_train"`` (this package's ``[n_query, n_train]``), ``"train_query"``
    (dattri's ``[n_train, n_test]``) or ``"auto"`` (from the shape; ambiguous when
    ``n_query == n_train``, which then raises and asks for an explicit orientation).
    """
    s = np.asarray(scores.detach().cpu().numpy() if hasattr(scores, "detach") else scores, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"scores must be 2-D, got shape {s.shape}")
    if orientation == "auto":
        if n_query == n_train and s.shape == (n_train, n_query):
            raise ValueError("scores are square (n_query == n_train): pass orientation='query_train' or 'train_query'")
        if s.shape == (n_query, n_train):
            return s
        if s.shape == (n_train, n_query):
            return s.T
    elif orientation == "query_train":
        if s.shape == (n_query, n_train):
            return s
    elif orientation == "train_query":
        if s.shape == (n_train, n_query):
            return s.T
    else:
        raise ValueError(f"orientation must be 'auto', 'query_train' or 'train_query', got {orientation!r}")
    raise ValueError(
        f"scores of shape {s.shape} do not fit {n_query} queries x {n_train} training items "
        f"(orientation={orientation!r})"
    )


def lds(
    scores,
    masks,
    losses,
    *,
    orientation: str = "auto",
    n_bootstrap: int = 1000,
    ci: float = 0.95,
    seed: int = 0,
) -> LDSResult:
    """Linear datamodeling score of ``scores`` against retrained-subset ground truth.

    Parameters:
        scores: ``[n_query, n_train]`` (or dattri's ``[n_train, n_query]``, see ``orientation``);
            larger = the item lowers the query's loss more.
        masks: ``[n_subsets, n_train]``, 1/True where the item was in the subset.
        losses: ``[n_subsets, n_query]``, each subset model's loss on each query.
        n_bootstrap: resamples of the subsets (with replacement) for the confidence interval; 0 skips it.
        ci: level of the percentile interval.
        seed: seed of the bootstrap.

    Returns:
        ``LDSResult``; ``mean`` is the mean over queries (queries with an undefined correlation, e.g.
        a constant loss, are left out).
    """
    masks = np.asarray(masks, dtype=np.float64)
    losses = np.asarray(losses, dtype=np.float64)
    if masks.ndim != 2 or losses.ndim != 2 or masks.shape[0] != losses.shape[0]:
        raise ValueError(f"masks [S, N] and losses [S, Q] must share S; got {masks.shape} and {losses.shape}")
    n_subsets, n_train = masks.shape
    n_query = losses.shape[1]
    if n_subsets < 3:
        raise ValueError(f"the LDS needs at least 3 subsets, got {n_subsets}")
    s = as_query_train(scores, n_train, n_query, orientation)
    prediction = masks @ s.T  # [S, Q]
    per_query = spearman_columns(prediction, -losses)
    mean = float(np.nanmean(per_query)) if np.isfinite(per_query).any() else float("nan")
    lo = hi = float("nan")
    if n_bootstrap > 0:
        rng = np.random.default_rng(seed)
        boots = np.empty(n_bootstrap)
        for b in range(n_bootstrap):
            idx = rng.integers(0, n_subsets, n_subsets)
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a resample may leave no defined query
                boots[b] = np.nanmean(spearman_columns(prediction[idx], -losses[idx]))
        alpha = (1 - ci) / 2
        lo, hi = (float(v) for v in np.nanquantile(boots, [alpha, 1 - alpha]))
    return LDSResult(mean, lo, hi, per_query, n_subsets, n_query, ci)
