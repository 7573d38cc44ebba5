"""AttributionIndex: in-memory index, save / load round trip, reading items, the engine protocol."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from diffusers_attr.engine.source import TrainingSource
from diffusers_attr.index import AttributionIndex


@pytest.fixture
def items() -> torch.Tensor:
    return torch.randn(23, 3, 5, 6, generator=torch.Generator().manual_seed(0))


@pytest.fixture
def saved(tmp_path, items):
    ids = [f"img-{n}" for n in range(23)]
    metadata = [{"caption": f"caption {n}", "label": n % 3} for n in range(23)]
    AttributionIndex.from_images(items, ids=ids, metadata=metadata, progress=False).save(tmp_path / "idx", shard_size=5)
    return tmp_path / "idx", ids, metadata


def test_tensor_is_used_as_is(items):
    index = AttributionIndex.from_images(items, progress=False)
    assert torch.equal(index[:], items)
    assert index.ids == [str(n) for n in range(23)]
    assert index.metadata == [{}] * 23
    assert index.space["kind"] == "pixel" and index.space["item_shape"] == [3, 5, 6]
    assert index.path is None


def test_round_trip(saved, items):
    path, ids, metadata = saved
    index = AttributionIndex.load(path)
    assert len(index) == 23 and index.item_shape == (3, 5, 6) and index.dtype == "float32"
    assert index.ids == ids and index.metadata == metadata
    assert torch.equal(index[:], items)
    manifest = json.loads((path / "index.json").read_text())
    assert [s["num_items"] for s in manifest["shards"]] == [5, 5, 5, 5, 3]
    shards = [f"items-{n:05d}.safetensors" for n in range(5)]
    assert sorted(p.name for p in path.iterdir()) == sorted(["index.json", "items.jsonl", *shards])


@pytest.mark.parametrize("chunk_size", [1, 4, 5, 7, 23, 100])
def test_iter_chunks_streams_items_in_order(saved, items, chunk_size):
    index = AttributionIndex.load(saved[0])
    chunks = list(index.iter_chunks(chunk_size))
    assert all(c.dtype == torch.float32 for c in chunks)
    assert [c.shape[0] for c in chunks[:-1]] == [chunk_size] * (len(chunks) - 1)
    assert torch.equal(torch.cat(chunks), items)


def test_loaded_items_are_memory_mapped_and_chunks_are_copies(saved, items):
    index = AttributionIndex.load(saved[0])
    assert all(isinstance(block, np.memmap) for block in index._blocks)
    chunk = next(index.iter_chunks(4))
    chunk.zero_()
    assert torch.equal(index[:4], items[:4])


def test_item_access_and_gather(saved, items):
    index = AttributionIndex.load(saved[0])
    assert torch.equal(index[7], items[7]) and torch.equal(index[-1], items[-1])
    assert torch.equal(index[3:12], items[3:12])
    picks = [22, 0, 9, 9, -2, 14]
    assert torch.equal(index.gather(picks), items[picks])
    with pytest.raises(IndexError, match="out of range"):
        index[23]
    with pytest.raises(IndexError, match="indices must lie"):
        index.gather([0, 23])


def test_implements_the_engine_protocol(saved):
    assert isinstance(AttributionIndex.load(saved[0]), TrainingSource)


def test_float16_storage(tmp_path, items):
    AttributionIndex.from_images(items, progress=False).save(tmp_path / "half", dtype="float16")
    index = AttributionIndex.load(tmp_path / "half")
    assert index.dtype == "float16"
    assert (tmp_path / "half" / "items-00000.safetensors").stat().st_size < items.numel() * 2 + 200
    chunk = next(index.iter_chunks(50))
    assert chunk.dtype == torch.float32 and torch.equal(chunk, items.half().float())


def test_float16_overflow_names_the_item(tmp_path, items):
    items = items.clone()
    items[4, 0, 0, 0] = 1e6
    index = AttributionIndex.from_images(items, ids=[f"x{n}" for n in range(23)], progress=False)
    with pytest.raises(ValueError, match=r"'x4'.*float16.*dtype='float32'"):
        index.save(tmp_path / "half", dtype="float16")
    assert not (tmp_path / "half").exists()


def test_save_refuses_to_replace_without_overwrite(saved, items):
    path = saved[0]
    other = AttributionIndex.from_images(items[:3], progress=False)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        other.save(path)
    other.save(path, overwrite=True)
    assert len(AttributionIndex.load(path)) == 3
    assert sorted(p.name for p in path.parent.iterdir()) == ["idx"]


def test_save_refuses_a_folder_that_is_not_an_index(tmp_path, items):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not an index"):
        AttributionIndex.from_images(items, progress=False).save(tmp_path / "photos", overwrite=True)
    assert (tmp_path / "photos" / "keep.txt").read_text() == "mine"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"ids": ["a"] * 23}, "ids must be unique"),
        ({"ids": ["a", "b"]}, "ids has 2 entries but the training set has 23"),
        ({"ids": list(range(23))}, "ids must be strings"),
        ({"metadata": [{}] * 5}, "metadata has 5 entries but the training set has 23"),
        ({"metadata": [{"x": object()}] + [{}] * 22}, r"metadata.*'x'.*cannot be stored"),
    ],
)
def test_bad_ids_and_metadata(items, kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        AttributionIndex.from_images(items, progress=False, **kwargs)


def test_nan_names_the_item(items):
    items = items.clone()
    items[6, 1, 2, 3] = float("nan")
    with pytest.raises(ValueError, match="item '6' has NaN or inf"):
        AttributionIndex.from_images(items, progress=False)


def test_empty_and_malformed_tensors():
    with pytest.raises(ValueError, match="empty"):
        AttributionIndex.from_images(torch.zeros(0, 3, 4, 4), progress=False)
    with pytest.raises(ValueError, match=r"float \[N, C, H, W\]"):
        AttributionIndex.from_images(torch.zeros(3, 4, 4), progress=False)
    with pytest.raises(ValueError, match=r"float \[N, C, H, W\]"):
        AttributionIndex.from_images(torch.zeros(2, 3, 4, 4, dtype=torch.uint8), progress=False)


def test_import_does_not_load_diffusers_or_datasets():
    code = "import sys, diffusers_attr.index; print(sorted({'diffusers', 'datasets'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
