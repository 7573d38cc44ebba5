"""Shard files: safetensors compatible, memory-mapped by our own header parser, damage detected."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from diffusers_attr.index import AttributionIndex, IndexFormatError
from diffusers_attr.index.shardfile import open_shard, write_shard


@pytest.fixture
def items() -> torch.Tensor:
    return torch.randn(10, 2, 3, 4, generator=torch.Generator().manual_seed(1))


@pytest.fixture
def path(tmp_path, items):
    AttributionIndex.from_images(items, progress=False).save(tmp_path / "idx", shard_size=4)
    return tmp_path / "idx"


def test_shards_are_plain_safetensors(path, items):
    assert torch.equal(load_file(path / "items-00001.safetensors")["items"], items[4:8])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_open_shard_maps_the_data_in_place(tmp_path, items, dtype):
    entry = write_shard(tmp_path / "s.safetensors", items.to(dtype))
    assert entry["num_items"] == 10 and entry["bytes"] == (tmp_path / "s.safetensors").stat().st_size
    mapped = open_shard(tmp_path / "s.safetensors", str(dtype).removeprefix("torch."), 10, (2, 3, 4))
    assert isinstance(mapped, np.memmap) and mapped.shape == (10, 2, 3, 4)
    assert torch.equal(torch.from_numpy(np.array(mapped)), items.to(dtype))
    with pytest.raises(IndexFormatError, match=r"manifest says .*\[9, 2, 3, 4\]"):
        open_shard(tmp_path / "s.safetensors", str(dtype).removeprefix("torch."), 9, (2, 3, 4))


def test_truncated_shard_is_caught_even_without_hashing(path):
    shard = path / "items-00001.safetensors"
    shard.write_bytes(shard.read_bytes()[:-10])
    for verify in (True, False):
        message = r"items-00001.safetensors is \d+ bytes, the manifest says \d+.*truncated"
        with pytest.raises(IndexFormatError, match=message):
            AttributionIndex.load(path, verify=verify)


def test_corrupted_shard_is_caught_by_its_sha256(path, items):
    shard = path / "items-00002.safetensors"
    data = bytearray(shard.read_bytes())
    data[-3] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(IndexFormatError, match=r"items-00002.safetensors is corrupted.*SHA-256"):
        AttributionIndex.load(path)
    index = AttributionIndex.load(path, verify=False)
    assert not torch.equal(index[8:], items[8:])
    with pytest.raises(IndexFormatError, match="items-00002.safetensors is corrupted"):
        index.verify()


def test_verify_passes_on_an_intact_index(path):
    AttributionIndex.load(path, verify=False).verify()


def test_missing_shard(path):
    (path / "items-00000.safetensors").unlink()
    with pytest.raises(IndexFormatError, match="items-00000.safetensors is missing"):
        AttributionIndex.load(path)
