"""Streaming builds to disk: interrupted builds never look complete, and resume where they stopped."""

from __future__ import annotations

import json
import shutil
import warnings

import pytest
import torch

from diffusers_attr.index import AttributionIndex, IndexFormatError


class Crash(RuntimeError):
    """Stands in for a killed process."""


def crash_after(items, k):
    """Yield ``items`` but raise after ``k`` of them, like a build killed half way."""
    for n, item in enumerate(items):
        if n == k:
            raise Crash(f"killed after {k} items")
        yield item


def manifest(path):
    return json.loads((path / "index.json").read_text())


@pytest.fixture
def records(digit_images):
    return [{"image": image, "caption": f"digit {n}"} for n, image in enumerate(digit_images)]


def test_build_equals_from_images(tmp_path, records, make_vae):
    vae = make_vae(0)
    built = AttributionIndex.build(tmp_path / "idx", records, encoder=vae, shard_size=5, batch_size=5, progress=False)
    memory = AttributionIndex.from_images(records, encoder=vae, batch_size=5, progress=False)
    assert built.path == tmp_path / "idx" and len(built) == 12
    assert torch.equal(built[:], memory[:])
    assert built.ids == memory.ids and built.metadata == memory.metadata and built.space == memory.space
    assert [s["num_items"] for s in manifest(tmp_path / "idx")["shards"]] == [5, 5, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]


def test_interrupted_build_resumes_and_matches_an_uninterrupted_one(tmp_path, records, make_vae):
    vae = make_vae(0)
    path, partial = tmp_path / "idx", tmp_path / "idx.partial"
    with pytest.raises(Crash):
        AttributionIndex.build(path, crash_after(records, 9), encoder=vae, shard_size=4, batch_size=3, progress=False)
    assert not path.exists() and partial.is_dir()
    with pytest.raises(FileNotFoundError, match=r"unfinished build exists at .*idx\.partial"):
        AttributionIndex.load(path)
    with pytest.raises(IndexFormatError, match="unfinished index build"):
        AttributionIndex.load(partial)
    first_shard = (partial / "items-00000.safetensors").stat()
    written = sorted(p.name for p in partial.glob("items-*.safetensors"))
    assert written == ["items-00000.safetensors", "items-00001.safetensors"]

    resumed = AttributionIndex.build(path, records, encoder=vae, shard_size=4, batch_size=3, progress=False)
    assert not partial.exists()
    again = (path / "items-00000.safetensors").stat()
    assert (again.st_ino, again.st_mtime_ns) == (first_shard.st_ino, first_shard.st_mtime_ns)

    whole = AttributionIndex.build(tmp_path / "whole", records, encoder=vae, shard_size=4, batch_size=3, progress=False)
    assert manifest(path) == manifest(tmp_path / "whole")
    assert torch.equal(resumed[:], whole[:])
    assert resumed.ids == whole.ids and resumed.metadata == whole.metadata


def test_resume_takes_the_current_metadata(tmp_path, records):
    with pytest.raises(Crash):
        AttributionIndex.build(tmp_path / "idx", crash_after(records, 7), shard_size=3, batch_size=2, progress=False)
    metadata = [{"license": "CC0"}] * 12
    index = AttributionIndex.build(tmp_path / "idx", records, metadata=metadata, shard_size=3, progress=False)
    assert index.metadata[0] == {"caption": "digit 0", "license": "CC0"}


def test_resume_refuses_a_changed_training_set(tmp_path, records):
    path = tmp_path / "idx"
    with pytest.raises(Crash):
        AttributionIndex.build(path, crash_after(records, 7), shard_size=3, batch_size=2, progress=False)
    swapped = [records[1], records[0], *records[2:]]
    with pytest.raises(ValueError, match=r"training set changed.*shard items-00000.*resume=False"):
        AttributionIndex.build(path, swapped, shard_size=3, progress=False)
    renamed = AttributionIndex.build
    with pytest.raises(ValueError, match=r"item '0' is now 'a'"):
        renamed(path, records, ids=[chr(97 + n) for n in range(12)], shard_size=3, progress=False)
    with pytest.raises(ValueError, match=r"training set changed.*fewer than the 6"):
        AttributionIndex.build(path, records[:5], shard_size=3, progress=False)
    with pytest.raises(ValueError, match=r"other settings:\n  dtype: was 'float32', now 'float16'"):
        AttributionIndex.build(path, records, shard_size=3, dtype="float16", progress=False)
    assert not path.exists()
    index = AttributionIndex.build(path, swapped, shard_size=3, resume=False, progress=False)
    assert index.metadata[0]["caption"] == "digit 1"


def test_resume_redoes_a_damaged_shard(tmp_path, records):
    path, partial = tmp_path / "idx", tmp_path / "idx.partial"
    with pytest.raises(Crash):
        AttributionIndex.build(path, crash_after(records, 7), shard_size=3, batch_size=2, progress=False)
    shard = partial / "items-00001.safetensors"
    shard.write_bytes(shard.read_bytes()[:-4])
    (partial / "items-00002.safetensors.tmp").write_bytes(b"half written")
    index = AttributionIndex.build(path, records, shard_size=3, progress=False)
    assert torch.equal(index[:], AttributionIndex.from_images(records, progress=False)[:])


def test_folder_build_resumes_and_warns_about_skipped_files(tmp_path, digits_folder):
    (digits_folder / "notes.md").write_text("not an image")
    path = tmp_path / "idx"
    with pytest.warns(UserWarning, match="notes.md"):
        AttributionIndex.build(path, digits_folder, shard_size=5, progress=False)
    shutil.move(path, tmp_path / "first")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = AttributionIndex.build(path, digits_folder, shard_size=5, progress=False)
    assert again.ids[0] == "0/img_00.png" and again.metadata[0]["label"] == "0"
    assert manifest(path) == manifest(tmp_path / "first")


def test_an_existing_folder_that_is_not_a_build_is_left_alone(tmp_path, records):
    (tmp_path / "idx.partial").mkdir()
    (tmp_path / "idx.partial" / "mine.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="not an unfinished index build"):
        AttributionIndex.build(tmp_path / "idx", records, progress=False)
    assert (tmp_path / "idx.partial" / "mine.txt").read_text() == "keep"


def test_build_refuses_an_existing_index_unless_overwrite(tmp_path, records):
    path = tmp_path / "idx"
    AttributionIndex.build(path, records[:3], progress=False)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        AttributionIndex.build(path, records, progress=False)
    assert len(AttributionIndex.build(path, records, overwrite=True, progress=False)) == 12


def test_bad_build_arguments(tmp_path, records):
    with pytest.raises(ValueError, match="dtype='bfloat16' is not supported"):
        AttributionIndex.build(tmp_path / "idx", records, dtype="bfloat16", progress=False)
    with pytest.raises(ValueError, match="shard_size=0 must be a positive integer"):
        AttributionIndex.build(tmp_path / "idx", records, shard_size=0, progress=False)
    with pytest.raises(ValueError, match="empty"):
        AttributionIndex.build(tmp_path / "idx", iter([]), progress=False)
    assert sorted(tmp_path.iterdir()) == []


def test_resume_refuses_another_encoder(tmp_path, records, make_vae):
    path = tmp_path / "idx"
    settings = {"shard_size": 3, "batch_size": 2, "progress": False}
    with pytest.raises(Crash):
        AttributionIndex.build(path, crash_after(records, 7), encoder=make_vae(0), **settings)
    with pytest.raises(ValueError, match=r"other settings:\n  encoder: differs in vae_weights_sha256\n"):
        AttributionIndex.build(path, records, encoder=make_vae(1), **settings)
