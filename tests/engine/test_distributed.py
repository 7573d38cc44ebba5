"""Sharded scoring and maps over real torch.distributed processes (gloo on CPU) against the float64 oracle."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from diffusers_attr import AttributionIndex
from diffusers_attr.engine import gather_scores, nda_attribute, nda_scores, shard

from .oracle import oracle
from .test_scores import assert_rel, problem

CASES = {
    "single-scale": dict(items=7, world=3, scales=[(1, 3, 1.0)], topk=None, index=False),
    "two-scale-topk-index": dict(items=7, world=2, scales=[(1, 3, 1.0), (2, 1, 0.5)], topk=2, index=True),
    "more-processes-than-items": dict(items=2, world=3, scales=[(1, 3, 1.0)], topk=None, index=False),
}


def shared_problem(items: int, index: bool = False):
    train, x0, noise = problem(3, items=items)
    alpha = torch.tensor([0.9, 0.6], dtype=torch.float64)
    sigma = torch.tensor([0.4, 0.8], dtype=torch.float64)
    queries = alpha.view(-1, 1, 1, 1) * x0 + sigma.view(-1, 1, 1, 1) * noise
    if index:  # float32 storage: the oracle then runs on the stored values
        return AttributionIndex.from_images(train.float(), progress=False), queries, alpha, sigma
    return train, queries, alpha, sigma


def sharded_worker(rank: int, world: int, init_file: str, out_dir: str, case: str) -> None:
    """One process: its shard of the training set, the same queries, scores over all shards."""
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        settings = CASES[case]
        train, queries, alpha, sigma = shared_problem(settings["items"], settings["index"])
        mine = shard(train, rank, world)
        common = dict(alpha=alpha, sigma=sigma, scales=settings["scales"], topk=settings["topk"],
                      process_group=dist.group.WORLD)
        local = nda_scores(queries, mine, **common)
        mapped = nda_attribute(queries, mine, maps=2, **common)
        torch.save({"local": local, "full": gather_scores(local), "maps": mapped.maps, "mapped_scores": mapped.scores},
                   Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("case", list(CASES))
def test_sharded_scores_match_the_oracle_over_the_whole_set(case, tmp_path):
    settings = CASES[case]
    world = settings["world"]
    mp.spawn(sharded_worker, args=(world, str(tmp_path / "init"), str(tmp_path), case), nprocs=world)

    train, queries, alpha, sigma = shared_problem(settings["items"], settings["index"])
    items = train[:] if settings["index"] else train
    expected_scores = oracle(queries, items, alpha, sigma, settings["scales"], settings["topk"])["scores"]
    map_items = torch.as_tensor(expected_scores).topk(2, dim=1).indices
    expected = oracle(queries, items, alpha, sigma, settings["scales"], settings["topk"], map_items.numpy())
    for rank in range(world):
        result = torch.load(tmp_path / f"rank{rank}.pt", weights_only=False)
        assert_rel(result["full"], expected_scores)
        mine = shard(train, rank, world)
        assert_rel(result["local"], expected_scores[:, mine.start : mine.stop])
        assert_rel(result["mapped_scores"], expected_scores[:, mine.start : mine.stop])
        maps = result["maps"]  # the whole set's maps, with global indices, on every process
        assert torch.equal(maps.items, map_items)
        assert_rel(maps.query_maps, expected["query_maps"])
        assert_rel(maps.source_maps, expected["source_maps"])
        assert torch.equal(maps.dominant_source, torch.as_tensor(expected["dominant"]))


def test_shards_cover_the_set_in_rank_order():
    index = AttributionIndex.from_images(torch.rand(10, 1, 4, 4) * 2 - 1, progress=False)
    shards = [shard(index, rank, 4) for rank in range(4)]
    assert [len(s) for s in shards] == [2, 3, 2, 3]
    assert sum((s.ids for s in shards), []) == index.ids
    torch.testing.assert_close(torch.cat([torch.cat(list(s.iter_chunks(2))) for s in shards]), index[:])
    torch.testing.assert_close(shards[1].gather([2, 0]), index.gather([4, 2]))
    with pytest.raises(ValueError, match="rank"):
        shard(index, 4, 4)


def test_process_group_needs_an_initialised_torch_distributed():
    train, queries, alpha, sigma = shared_problem(3)
    with pytest.raises(ValueError, match="init_process_group"):
        nda_scores(queries, train, alpha=alpha, sigma=sigma, patch_size=3, process_group=object())


def test_one_process_group_gives_the_unsharded_result(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'init'}", rank=0, world_size=1)
    try:
        train, queries, alpha, sigma = shared_problem(3)
        common = dict(alpha=alpha, sigma=sigma, patch_size=3, maps=2)
        alone = nda_attribute(queries, train, process_group=dist.group.WORLD, **common)
        plain = nda_attribute(queries, train, **common)
        torch.testing.assert_close(alone.scores, plain.scores)
        torch.testing.assert_close(alone.maps.query_maps, plain.maps.query_maps)
        with pytest.raises(IndexError, match="map_items"):
            nda_attribute(queries, train, alpha=alpha, sigma=sigma, patch_size=3,
                          map_items=torch.tensor([[0, 3], [1, 2]]), process_group=dist.group.WORLD)
    finally:
        dist.destroy_process_group()
