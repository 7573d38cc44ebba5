"""The manifest: folders that are not (complete) indexes, and a damaged items.jsonl."""

from __future__ import annotations

import json

import pytest
import torch

from diffusers_attr.index import AttributionIndex, IndexFormatError


@pytest.fixture
def path(tmp_path):
    ids = [f"a/{n}.png" for n in range(6)]
    metadata = [{"caption": "été ☀", "n": n} for n in range(6)]
    index = AttributionIndex.from_images(torch.rand(6, 1, 4, 4) * 2 - 1, ids=ids, metadata=metadata, progress=False)
    index.save(tmp_path / "idx")
    return tmp_path / "idx"


def test_manifest_contents(path):
    manifest = json.loads((path / "index.json").read_text(encoding="utf-8"))
    assert manifest["format"] == "diffusers-attr-index" and manifest["format_version"] == 1
    assert manifest["num_items"] == 6 and manifest["item_shape"] == [1, 4, 4] and manifest["dtype"] == "float32"
    assert set(manifest["shards"][0]) == {"file", "num_items", "sha256", "bytes"}
    assert manifest["space"]["kind"] == "pixel"
    lines = (path / "items.jsonl").read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[2]) == {"id": "a/2.png", "metadata": {"caption": "été ☀", "n": 2}}


def test_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no index at .*nope; build one"):
        AttributionIndex.load(tmp_path / "nope")


def test_folder_that_is_not_an_index(tmp_path):
    (tmp_path / "photos").mkdir()
    with pytest.raises(IndexFormatError, match=r"not an AttributionIndex folder \(no index.json\)"):
        AttributionIndex.load(tmp_path / "photos")


def test_partial_folder_is_not_an_index(path):
    partial = path.with_name("idx.partial")
    path.rename(partial)
    with pytest.raises(IndexFormatError, match="unfinished index build"):
        AttributionIndex.load(partial)


def test_manifest_removed(path):
    (path / "index.json").unlink()
    with pytest.raises(IndexFormatError, match="no index.json"):
        AttributionIndex.load(path)


def test_newer_format_version(path):
    manifest = json.loads((path / "index.json").read_text(encoding="utf-8"))
    manifest["format_version"] = 99
    (path / "index.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(IndexFormatError, match="newer diffusers-attr"):
        AttributionIndex.load(path)


def test_edited_items_file_is_detected(path):
    items = path / "items.jsonl"
    items.write_text(items.read_text(encoding="utf-8").replace("a/3.png", "a/9.png"), encoding="utf-8")
    with pytest.raises(IndexFormatError, match="items.jsonl is corrupted"):
        AttributionIndex.load(path, verify=False)
