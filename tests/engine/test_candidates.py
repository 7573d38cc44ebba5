"""The exact second stage of a candidate search against the exact engine."""

import torch

from diffusers_attr.engine import nda_scores
from diffusers_attr.engine.candidates import nda_candidate_scores


def _data(n=12, seed=0):
    gen = torch.Generator().manual_seed(seed)
    train = torch.rand(n, 1, 8, 8, generator=gen, dtype=torch.float64) * 2 - 1
    queries = 0.9 * train[:2] + 0.4 * torch.randn(2, 1, 8, 8, generator=gen, dtype=torch.float64)
    return train, queries


def test_every_item_a_candidate_equals_the_exact_engine():
    train, queries = _data()
    for topk, scales in ((None, None), (3, None), (None, [(1, 3, 1.0), (2, 3, 0.5)])):
        exact = nda_scores(queries, train, alpha=0.9, sigma=0.4, patch_size=3, topk=topk, scales=scales)
        result = nda_candidate_scores(
            queries, train, range(len(train)), alpha=0.9, sigma=0.4, patch_size=3, topk=topk, scales=scales,
            chunk_size=5,
        )
        torch.testing.assert_close(result.scores, exact)
        assert result.unexamined_share.abs().max() == 0


def test_unexamined_share_is_exact_when_the_rest_are_copies():
    """Non-candidates that are copies of one item: the sampled estimate of their mass is exact."""
    train, queries = _data(6)
    train = torch.cat([train, train[5:].expand(20, -1, -1, -1)])  # items 5..25 identical
    exact = nda_scores(queries, train, alpha=0.9, sigma=0.4, patch_size=3)
    result = nda_candidate_scores(queries, train, [0, 1, 2, 3, 4], alpha=0.9, sigma=0.4, patch_size=3, samples=3)
    torch.testing.assert_close(result.scores[:, :5], exact[:, :5])
    assert (result.scores[:, 5:] == 0).all()
    torch.testing.assert_close(result.unexamined_share, exact[:, 5:].sum(1) / 64)
    assert (result.unexamined_share > 0.01).all()  # the case is not trivial
