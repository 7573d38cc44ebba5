"""nda_scores / nda_attribute against the brute-force float64 oracle, plus the method's invariants."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from diffusers_attr.engine import TensorSource, nda_attribute, nda_scores

from .oracle import oracle

REL = 1e-9


def problem(seed: int, batch: int = 2, channels: int = 2, size: tuple[int, int] = (6, 5), items: int = 3):
    gen = torch.Generator().manual_seed(seed)
    train = torch.rand(items, channels, *size, generator=gen, dtype=torch.float64) * 2 - 1
    x0 = train[torch.randint(items, (batch,), generator=gen)]
    noise = torch.randn(batch, channels, *size, generator=gen, dtype=torch.float64)
    return train, x0, noise


def assert_rel(actual: torch.Tensor, expected: np.ndarray) -> None:
    expected_t = torch.as_tensor(expected, dtype=torch.float64)
    torch.testing.assert_close(actual, expected_t, rtol=REL, atol=0)


class ChunkedSource(TensorSource):
    """A training source that yields tiny chunks whatever the engine asks for (like index shards)."""

    def iter_chunks(self, chunk_size: int):
        yield from super().iter_chunks(1)


@pytest.mark.parametrize(
    "case",
    [
        dict(scales=[(1, 3, 1.0)], topk=None),
        dict(scales=[(1, 3, 1.0)], topk=2),
        dict(scales=[(1, 5, 1.0)], topk=None),  # almost every window is a border class on 6x5
        dict(scales=[(1, 1, 1.0)], topk=None),
        dict(scales=[(2, 1, 1.0)], topk=None),  # even window side 2
        dict(scales=[(1, 3, 0.7), (2, 1, 0.3)], topk=None),
        dict(scales=[(1, 3, 1.0), (2, 1, 0.5)], topk=3),
    ],
    ids=["single", "topk", "p5-borders", "p1", "factor2", "two-scale", "two-scale-topk"],
)
def test_matches_oracle(case):
    train, x0, noise = problem(0)
    alpha = torch.tensor([0.9, 0.6], dtype=torch.float64)
    sigma = torch.tensor([0.4, 0.8], dtype=torch.float64)
    queries = alpha.view(-1, 1, 1, 1) * x0 + sigma.view(-1, 1, 1, 1) * noise
    expected = oracle(queries, train, alpha, sigma, case["scales"], case["topk"])
    scores = nda_scores(queries, train, alpha=alpha, sigma=sigma, scales=case["scales"], topk=case["topk"])
    assert scores.dtype == torch.float64
    assert_rel(scores, expected["scores"])


def test_factor3_matches_oracle():
    train, x0, noise = problem(1, batch=1, channels=1, size=(9, 9), items=2)
    queries = 0.8 * x0 + 0.5 * noise
    scales = [(3, 3, 1.0), (3, 1, 0.5)]
    expected = oracle(queries, train, 0.8, 0.5, scales)
    assert_rel(nda_scores(queries, train, alpha=0.8, sigma=0.5, scales=scales), expected["scores"])


def test_patch_size_argument_is_single_scale():
    train, x0, noise = problem(2)
    queries = 0.7 * x0 + 0.5 * noise
    expected = oracle(queries, train, 0.7, 0.5, [(1, 3, 1.0)])
    assert_rel(nda_scores(queries, train, alpha=0.7, sigma=0.5, patch_size=3), expected["scores"])


@pytest.mark.parametrize("budget", [1, 4096], ids=["one-item-chunks-two-pass", "small-chunks"])
def test_streaming_is_exact(budget):
    """Chunking, the two-pass path and shard-like sources give the same float64 result."""
    train, x0, noise = problem(3, items=5)
    queries = 0.9 * x0 + 0.4 * noise
    expected = oracle(queries, train, 0.9, 0.4, [(1, 3, 1.0)], topk=2)
    for source in (train, ChunkedSource(train)):
        scores = nda_scores(queries, source, alpha=0.9, sigma=0.4, patch_size=3, topk=2, memory_budget=budget)
        assert_rel(scores, expected["scores"])


@pytest.mark.parametrize("topk", [None, 2])
def test_maps_match_oracle(topk):
    train, x0, noise = problem(4, items=4)
    queries = 0.8 * x0 + 0.6 * noise
    scales = [(1, 3, 0.6), (2, 1, 0.4)]
    result = nda_attribute(queries, ChunkedSource(train), alpha=0.8, sigma=0.6, scales=scales, topk=topk, maps=3)
    maps = result.maps
    expected = oracle(queries, train, 0.8, 0.6, scales, topk, map_items=maps.items.numpy())
    assert_rel(result.scores, expected["scores"])
    assert torch.equal(maps.items, result.scores.topk(3, dim=1).indices)
    assert_rel(maps.query_maps, expected["query_maps"])
    assert_rel(maps.source_maps, expected["source_maps"])
    assert torch.equal(maps.dominant_source, torch.as_tensor(expected["dominant"]))
    torch.testing.assert_close(maps.query_maps.sum((2, 3)), result.scores.gather(1, maps.items), rtol=1e-12, atol=0)


def test_explicit_map_items():
    train, x0, noise = problem(5, items=4)
    queries = 0.8 * x0 + 0.6 * noise
    items = torch.tensor([[3, 0], [1, 2]])
    result = nda_attribute(queries, train, alpha=0.8, sigma=0.6, patch_size=3, map_items=items)
    expected = oracle(queries, train, 0.8, 0.6, [(1, 3, 1.0)], map_items=items.numpy())
    assert torch.equal(result.maps.items, items)
    assert_rel(result.maps.query_maps, expected["query_maps"])


def test_shared_maps_use_the_top_items_of_the_mean_score():
    train, x0, noise = problem(10, items=5)
    queries = 0.8 * x0[:1].expand(2, -1, -1, -1) + torch.tensor([0.3, 0.6]).double().view(-1, 1, 1, 1) * noise
    result = nda_attribute(queries, train, alpha=0.8, sigma=[0.3, 0.6], patch_size=3, maps=2, shared_maps=True)
    expected_items = result.scores.mean(0).topk(2).indices
    assert torch.equal(result.maps.items, expected_items.expand(2, 2))
    expected = oracle(queries, train, 0.8, [0.3, 0.6], [(1, 3, 1.0)], map_items=result.maps.items.numpy())
    assert_rel(result.maps.query_maps, expected["query_maps"])


def test_scores_sum_to_window_count_per_scale():
    train, x0, noise = problem(6, batch=3, channels=3, size=(12, 10), items=7)
    queries = 0.5 * x0 + 0.9 * noise
    single = nda_scores(queries, train, alpha=0.5, sigma=0.9, patch_size=5)
    torch.testing.assert_close(single.sum(1), torch.full((3,), 120.0, dtype=torch.float64))
    fused = nda_scores(queries, train, alpha=0.5, sigma=0.9, scales=[(1, 5, 1.0), (2, 3, 0.25)])
    torch.testing.assert_close(fused.sum(1), torch.full((3,), 150.0, dtype=torch.float64))


def test_exact_copy_takes_almost_all_mass_at_small_sigma():
    gen = torch.Generator().manual_seed(7)
    train = torch.rand(20, 3, 16, 16, generator=gen) * 2 - 1
    queries = 0.99 * train[[4, 11]] + 0.05 * torch.randn(2, 3, 16, 16, generator=gen)
    scores = nda_scores(queries, train, alpha=0.99, sigma=0.05, patch_size=5)
    share = scores / scores.sum(1, keepdim=True)
    assert share[0, 4] > 0.99 and share[1, 11] > 0.99


def test_duplicate_item_splits_score_evenly():
    train, x0, noise = problem(8, items=4)
    queries = 0.9 * x0 + 0.5 * noise
    before = nda_scores(queries, train, alpha=0.9, sigma=0.5, patch_size=3)
    doubled = torch.cat([train, train[2:3]])
    after = nda_scores(queries, doubled, alpha=0.9, sigma=0.5, patch_size=3)
    torch.testing.assert_close(after[:, 2], after[:, 4], rtol=1e-12, atol=0)
    # the pair draws more mass than the single copy did, taken from the others
    assert (after[:, 2] + after[:, 4] > before[:, 2]).all()
    assert (after[:, [0, 1, 3]] < before[:, [0, 1, 3]]).all()


def test_float32_ranks_like_float64_at_realistic_size():
    """32x32x3 items, N=300, a mid noise level: float32 ranks items like float64."""
    from skimage import data, transform

    photo = transform.resize(data.astronaut(), (128, 128), anti_aliasing=True)  # (128,128,3) in [0,1]
    crops = [photo[r : r + 32, c : c + 32] for r in range(0, 97, 6) for c in range(0, 97, 6)]
    train64 = torch.tensor(np.stack(crops[:300]), dtype=torch.float64).permute(0, 3, 1, 2) * 2 - 1
    gen = torch.Generator().manual_seed(9)
    queries64 = 0.8 * train64[[10, 200]] + 0.6 * torch.randn(2, 3, 32, 32, generator=gen, dtype=torch.float64)
    exact = nda_scores(queries64, train64, alpha=0.8, sigma=0.6, patch_size=7)
    fast = nda_scores(queries64.float(), train64.float(), alpha=0.8, sigma=0.6, patch_size=7)
    assert fast.dtype == torch.float32
    for row in range(2):
        assert spearmanr(exact[row].numpy(), fast[row].double().numpy()).statistic >= 0.999


class GeneratedSource:
    """A large training set made chunk by chunk on request (never held whole), recording the
    chunk sizes and passes the engine asks for."""

    def __init__(self, count: int):
        self.count, self.requests = count, []

    def __len__(self) -> int:
        return self.count

    @property
    def item_shape(self):
        return (1, 8, 8)

    def iter_chunks(self, chunk_size: int):
        self.requests.append(chunk_size)
        for start in range(0, self.count, chunk_size):
            gen = torch.Generator().manual_seed(start)
            yield torch.rand(min(chunk_size, self.count - start), 1, 8, 8, generator=gen) * 2 - 1

    def gather(self, indices):
        raise AssertionError("no maps were asked for")


def test_chunk_size_is_set_by_the_budget_not_by_n():
    queries = torch.rand(2, 1, 8, 8) * 2 - 1
    budget = 2**20
    sources = [GeneratedSource(n) for n in (1_000, 20_000)]
    for source in sources:
        scores = nda_scores(queries, source, alpha=0.9, sigma=0.5, patch_size=3, memory_budget=budget)
        assert scores.shape == (2, len(source))
        torch.testing.assert_close(scores.sum(1), torch.full((2,), 64.0), rtol=1e-4, atol=0)
    small, large = sources
    assert small.requests[0] == large.requests[0]  # the same chunk size for 20x the items
    assert len(small.requests) == 1  # 1,000 items: per-window masses cached, one pass
    assert len(large.requests) == 2  # 20,000 items: masses exceed half the budget, recomputed in pass 2
