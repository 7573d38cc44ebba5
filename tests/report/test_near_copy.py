"""Near-copy flags: the evidence functions, and real generations of the embedded digits DDPM with two
planted copies in the index (one exact, one shifted by 2 px)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from diffusers_attr.report import NearCopyThresholds, aggregate
from diffusers_attr.report.near_copy import dominance, map_alignment, pixel_distance


def test_map_alignment_finds_the_shift():
    rng = np.random.default_rng(0)
    source = np.zeros((16, 16))
    source[3:9, 4:10] = rng.random((6, 6)) + 0.5
    query = np.zeros_like(source)
    query[5:11, 1:7] = source[3:9, 4:10]  # the output shows the region moved down 2, left 3
    cosine, shift = map_alignment(query, source, max_shift=4)
    assert cosine == pytest.approx(1.0) and shift == (2, -3)
    assert map_alignment(query, source, max_shift=2)[0] < 0.9  # out of reach
    assert map_alignment(np.ones((4, 4)), np.ones((4, 4)), 2) == (pytest.approx(1.0), (0, 0))
    assert map_alignment(np.zeros((4, 4)), np.ones((4, 4)), 2) == (0.0, (0, 0))
    with pytest.raises(ValueError, match="one shape"):
        map_alignment(np.ones((4, 4)), np.ones((4, 5)), 1)


def test_pixel_distance_over_shifts_and_large_images():
    rng = np.random.default_rng(1)
    item = rng.uniform(-1, 1, (16, 16, 1))
    output = np.full_like(item, -1.0)
    output[:-2, 1:] = item[2:, :-1]  # moved up 2, right 1
    distance, shift = pixel_distance(output, item, max_shift=3)
    assert distance == pytest.approx(0.0) and shift == (-2, 1)
    assert pixel_distance(output, item, max_shift=1)[0] > 0.3
    # a large image is searched coarse to fine
    big = rng.uniform(-1, 1, (200, 200, 3))
    big = (big + np.roll(big, 1, 0) + np.roll(big, 1, 1)) / 3  # some spatial correlation
    moved = np.roll(big, (8, -5), axis=(0, 1))
    distance, shift = pixel_distance(moved, big, max_shift=12)
    assert distance == pytest.approx(0.0, abs=1e-9) and shift == (8, -5)


def test_dominance_and_thresholds():
    assert dominance(np.array([1.0, 6.0, 2.0, 1.0])) == (1, 0.6, 0.2)
    assert dominance(np.array([5.0])) == (0, 1.0, 0.0)
    with pytest.raises(ValueError, match="min_share=1.5 must be a number in"):
        NearCopyThresholds(min_share=1.5)
    with pytest.raises(ValueError, match="min_ratio=0.5 must be a number >= 1"):
        NearCopyThresholds(min_ratio=0.5)
    with pytest.raises(ValueError, match="max_shift=-1"):
        NearCopyThresholds(max_shift=-1)


def test_planted_copies_are_flagged_and_ordinary_generations_are_not(planted_run):
    summary = aggregate(planted_run["run"])
    assert summary.outputs == planted_run["count"]
    flags = {Path(e.output).name: e for e in summary.flags}
    assert set(flags) == {"image-000.png", "image-001.png"}
    exact, shifted = flags["image-000.png"], flags["image-001.png"]
    assert exact.item_id == "planted-exact" and shifted.item_id == "planted-shifted"
    # the shifted copy is found at its shift: the output is the item moved 2 px up and left
    assert exact.alignment_shift == (0, 0) and exact.distance_shift == (0, 0)
    assert shifted.alignment_shift == (-2, -2) and shifted.distance_shift == (-2, -2)
    for evidence in (exact, shifted):
        assert evidence.exact and evidence.item_rank == 1
        assert evidence.share > 0.2 and evidence.ratio > 10
        assert evidence.alignment > 0.95 and evidence.distance < 0.02
        assert evidence.files[1].endswith(".attribution.safetensors") and evidence.files[2].endswith(".train-1.png")
    # ordinary generations: no flag, and not even one dominant item
    assert [e.output for e in summary.near_copies if not e.flagged] == []
    # the same with exact pixels from the index
    from diffusers_attr import AttributionIndex

    index = AttributionIndex.load(planted_run["index"])
    with_index = aggregate(planted_run["run"], index=index, full_scores=True)
    assert {Path(e.output).name for e in with_index.flags} == {"image-000.png", "image-001.png"}
    assert {e.distance_source for e in with_index.flags} == {"index"}
    assert with_index.basis == "full" and with_index.coverage["50%"] is not None
    assert with_index.items[0].id in ("planted-exact", "planted-shifted")


def test_missing_arrays_make_a_candidate_not_a_flag(planted_copy):
    (planted_copy / "image-001.attribution.safetensors").unlink()
    summary = aggregate(planted_copy)
    assert [Path(e.output).name for e in summary.flags] == ["image-000.png"]
    [candidate] = summary.candidates
    assert Path(candidate.output).name == "image-001.png" and candidate.item_id == "planted-shifted"
    assert not candidate.exact and "arrays file is missing" in candidate.reasons[0]


def test_thresholds_are_configurable(planted_run):
    # a 1-pixel search cannot reach the copy shifted by 2: it is checked and cleared, the exact copy stays
    strict = aggregate(planted_run["run"], near_copy=NearCopyThresholds(max_shift=1))
    status = {Path(e.output).name: e for e in strict.near_copies}
    assert status["image-000.png"].flagged
    assert status["image-001.png"].status == "cleared"
    assert any("pixel distance" in reason for reason in status["image-001.png"].reasons)
    higher_share = aggregate(planted_run["run"], near_copy=NearCopyThresholds(min_share=0.6))
    assert higher_share.near_copies == []


def test_copies_of_a_512px_photo_are_flagged_against_a_32px_index(capsys, photo_folder, tmp_path):
    """Like with like (issue 10, item 1): a byte-exact and a JPEG copy of a 512x512 training photo,
    attributed against an index built at 32 px, are compared with the item at the index's resolution
    (prepared as the index prepared its items), so both are flagged; with or without the index."""
    import shutil

    from PIL import Image

    from diffusers_attr import AttributionIndex
    from diffusers_attr.cli import main

    index_dir = tmp_path / "index"
    AttributionIndex.build(index_dir, photo_folder, resolution=32, progress=False)
    copies = tmp_path / "copies"
    copies.mkdir()
    shutil.copy(photo_folder / "astronaut.png", copies / "exact.png")
    with Image.open(photo_folder / "astronaut.png") as photo:
        assert photo.size == (512, 512)
        photo.save(copies / "jpeg.jpg", quality=85)
    run = tmp_path / "run"
    assert main(["attribute", str(copies), "--index", str(index_dir), "--out", str(run)]) == 0
    card = tmp_path / "README.md"
    assert main(["report", str(run), "--index", str(index_dir), "--card", str(card)]) == 0
    printed = capsys.readouterr().out
    assert "near-copies flagged: 2" in printed, printed
    index = AttributionIndex.load(index_dir)
    for summary in (aggregate(run, index=index), aggregate(run)):  # exact pixels, then the thumbnails
        flags = {Path(e.output).name: e for e in summary.flags}
        assert set(flags) == {"exact.png", "jpeg.png"}, [e.summary() for e in summary.near_copies]
        assert all(e.item_id == "astronaut.png" for e in flags.values())
        assert flags["exact.png"].distance < 1e-6 and flags["jpeg.png"].distance < 0.02
        assert all(e.distance_basis.startswith("at the index resolution 32x32") for e in flags.values())
    text = card.read_text()
    assert "exact.png" in text and "jpeg.png" in text and "(not copies)" not in text
