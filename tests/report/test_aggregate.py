"""Aggregation over many results: the numbers on a hand-built set, streaming, and bad input."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from diffusers_attr import Attribution, NoiseLevel, TopItem
from diffusers_attr.report import NearCopyThresholds, aggregate

from .conftest import FINGERPRINT, ITEM_METADATA, OUTPUTS, result

# totals over the 4 outputs (sums of shares), from the table in conftest
TOTALS = {0: 0.5 + 0.4 + 0.3, 3: 0.6 + 0.25, 1: 0.3 + 0.1, 2: 0.2}


def test_item_shares_top_counts_and_listed_mass(handbuilt_results):
    summary = aggregate(handbuilt_results)
    assert summary.outputs == 4 and summary.basis == "top-k" and summary.top_k == {2: 4}
    assert summary.listed_mass == pytest.approx(sum(TOTALS.values()) / 4)  # 2.65 / 4
    assert summary.outside_mass == pytest.approx(1 - 2.65 / 4)
    assert [item.id for item in summary.items] == ["item0", "item3", "item1", "item2"]
    by_id = {item.id: item for item in summary.items}
    for index, total in TOTALS.items():
        item = by_id[f"item{index}"]
        assert item.index == index
        assert item.total_share == pytest.approx(total)
        assert item.mean_share == pytest.approx(total / 4)
        assert item.metadata == ITEM_METADATA[index]
    assert {i: by_id[i].top1 for i in by_id} == {"item0": 3, "item3": 1, "item1": 0, "item2": 0}
    assert {i: by_id[i].listed for i in by_id} == {"item0": 3, "item3": 2, "item1": 2, "item2": 1}
    assert by_id["item3"].max_share == pytest.approx(0.6) and by_id["item3"].max_output == "result-3"
    assert by_id["item0"].max_share == pytest.approx(0.5) and by_id["item0"].max_output == "result-1"
    assert summary.items_seen == 4 and summary.index_items == 6


def test_coverage_and_concentration(handbuilt_results):
    summary = aggregate(handbuilt_results)
    # cumulative share of all mass, largest first: .3, .5125, .6125, .6625
    assert summary.coverage == {"50%": 2, "90%": None}
    # of the listed mass: .453, .774, .925, 1
    assert summary.coverage_listed == {"50%": 2, "90%": 3}
    totals = np.array([TOTALS[0], TOTALS[3], TOTALS[1], TOTALS[2], 0.0, 0.0])
    p = totals[totals > 0] / totals.sum()
    entropy = -(p * np.log2(p)).sum()
    gini = np.abs(totals[:, None] - totals[None, :]).sum() / (2 * len(totals) ** 2 * totals.mean())
    c = summary.concentration
    assert c["entropy_bits"] == pytest.approx(entropy)
    assert c["effective_items"] == pytest.approx(2**entropy)
    assert c["normalised_entropy"] == pytest.approx(entropy / math.log2(6))
    assert c["gini"] == pytest.approx(gini)
    assert c["distinct_top1"] == 2 and c["top1_max"] == 3
    x, y = summary.coverage_curve
    assert list(x) == [1, 2, 3, 4, 5, 6] and y[-1] == pytest.approx(2.65 / 4)


def test_breakdowns_by_metadata_fields(handbuilt_results):
    summary = aggregate(handbuilt_results)
    # label, licence and contributor are broken down; the caption (free text) is not
    assert list(summary.breakdowns) == ["label", "licence", "contributor"]
    label = {row.value: row for row in summary.breakdowns["label"]}
    assert set(label) == {"0", "1"}  # no item with label 2 carries any listed mass
    assert label["0"].share == pytest.approx((TOTALS[0] + TOTALS[2]) / 4) and label["0"].items == 2 and label["0"].top1 == 3
    assert label["1"].share == pytest.approx((TOTALS[1] + TOTALS[3]) / 4) and label["1"].items == 2 and label["1"].top1 == 1
    contributor = {row.value: row.share for row in summary.breakdowns["contributor"]}
    assert contributor == pytest.approx({"alice": TOTALS[0] / 4, "bob": (TOTALS[1] + TOTALS[2]) / 4, "carol": TOTALS[3] / 4})
    only = aggregate(handbuilt_results, fields=["caption", "missing"])
    assert list(only.breakdowns) == ["caption", "missing"]
    assert [row.value for row in only.breakdowns["missing"]] == ["(missing)"]


def test_per_noise_level_view(handbuilt_results):
    summary = aggregate(handbuilt_results)
    fine, coarse = summary.levels  # sorted least noisy first, whatever the order in the metadata
    assert fine.noise == pytest.approx(0.2, abs=1e-3) and coarse.noise == pytest.approx(0.6, abs=1e-3)
    assert fine.outputs == coarse.outputs == 4
    assert dict(fine.top)["item3"] == pytest.approx((0.9 + 0.25) / 4)
    assert dict(coarse.top)["item3"] == pytest.approx((0.3 + 0.25) / 4)
    assert fine.listed_mass == pytest.approx((0.8 + 0.6 + 0.95 + 0.55) / 4)
    by_id = {item.id: item for item in summary.items}
    assert by_id["item1"].level_shares == pytest.approx([(0.3 + 0.05) / 4, (0.3 + 0.15) / 4])
    mass = np.array([0.5 + 0.4 + 0.3, 0.3 + 0.05, 0.2, 0.9 + 0.25])
    p = mass / mass.sum()
    assert fine.effective_items == pytest.approx(np.exp(-(p * np.log(p)).sum()))


def test_streams_from_a_generator_and_json_round_trip(handbuilt_results):
    def results():
        yield from (copy.deepcopy(r) for r in handbuilt_results)

    streamed = aggregate(results())
    direct = aggregate(handbuilt_results)
    assert json.dumps(streamed.to_dict(), sort_keys=True) == json.dumps(direct.to_dict(), sort_keys=True)
    assert json.loads(json.dumps(direct.to_dict()))["coverage"] == {"50%": 2, "90%": None}


def test_a_dominated_output_without_arrays_is_a_candidate_not_a_flag(handbuilt_results):
    summary = aggregate(handbuilt_results)
    assert summary.flags == []
    [candidate] = summary.candidates
    assert (candidate.output, candidate.item_id, candidate.status) == ("result-3", "item3", "candidate")
    assert candidate.share == pytest.approx(0.9) and candidate.ratio == pytest.approx(18)
    assert not candidate.exact and "not checked" in candidate.reasons[0]
    assert aggregate(handbuilt_results, near_copy=None).near_copies == []
    assert aggregate(handbuilt_results, near_copy=NearCopyThresholds(min_ratio=20)).near_copies == []


def test_results_from_different_indexes_are_refused_unless_allowed(handbuilt_results):
    other = result(OUTPUTS["o1"], fingerprint=FINGERPRINT | {"items": 7, "ids_sha256": "b" * 64})
    with pytest.raises(ValueError, match=r"different indexes.*result-5.*7 items.*result-1.*6 items.*allow_mixed_indexes"):
        aggregate(handbuilt_results + [other])
    mixed = aggregate(handbuilt_results + [other], allow_mixed_indexes=True)
    assert mixed.outputs == 5 and len(mixed.indexes) == 2 and mixed.index_items == 13
    zeros = [item for item in mixed.items if item.id == "item0"]  # the same id in two indexes stays apart
    assert sorted((item.index_group, round(item.total_share, 6)) for item in zeros) == [(0, 1.2), (1, 0.5)]


def test_unusable_results_are_skipped_with_the_reason(handbuilt_results):
    broken = copy.deepcopy(handbuilt_results[0])
    del broken["top"][1]["index"]
    foreign = {"format": "something-else", "top": []}
    summary = aggregate([broken, foreign, *handbuilt_results[1:]])
    assert summary.outputs == 3
    reasons = {str(item.path): item.reason for item in summary.skipped}
    assert "top[1].index=None is not an index position" in reasons["result-1"]
    assert "format='something-else'" in reasons["result-2"]
    with pytest.raises(ValueError, match="no attribution results"):
        aggregate([foreign])
    with pytest.raises(TypeError, match="cannot aggregate a int"):
        aggregate([3])
    with pytest.raises(ValueError, match="max_items"):
        aggregate(handbuilt_results, max_items=-1)


def test_folder_with_corrupted_sidecars_and_no_metadata(tmp_path, handbuilt_results, write_folder):
    folder = tmp_path / "run"
    paths = write_folder(folder, handbuilt_results)
    # image-000: sidecar corrupted but metadata embedded -> used, sidecar listed
    (folder / "image-000.attribution.json").write_text('{"format": "diffusers-attr", "top": [')
    # image-001: no embedded metadata and a corrupted sidecar -> skipped, both listed
    with Image.open(paths[1]) as image:
        image.copy().save(paths[1])
    (folder / "image-001.attribution.json").write_bytes(b"\xff\xfe not json")
    (folder / "notes.txt").write_text("not an image")
    # image-003: the picture is gone, its sidecar still counts; a lonely corrupted sidecar is skipped
    paths[3].unlink()
    (folder / "lonely.attribution.json").write_text("{")
    summary = aggregate(folder)
    assert summary.outputs == 3
    assert summary.sources == [folder.name]  # never the absolute path
    assert {item.id: item.top1 for item in summary.items}["item0"] == 2  # o1 (image-000) and o4 (image-003)
    skipped = {item.path.name: item.reason for item in summary.skipped}
    assert set(skipped) == {"image-000.attribution.json", "image-001.attribution.json", "image-001.png",
                            "lonely.attribution.json"}
    assert "corrupted sidecar" in skipped["image-001.attribution.json"]
    assert "corrupted sidecar" in skipped["lonely.attribution.json"]
    # a single file, and a sidecar given by name
    assert aggregate(paths[2]).outputs == 1
    assert aggregate(folder / "image-003.attribution.json").outputs == 1

    empty = tmp_path / "empty"
    empty.mkdir()
    Image.new("L", (8, 8)).save(empty / "plain.png")
    with pytest.raises(ValueError, match=r"(?s)no attribution results in .*empty.*plain\.png"):
        aggregate(empty)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        aggregate(tmp_path / "missing")


def _object(image: Image.Image, source: Image.Image, shares: list[float], query: torch.Tensor, source_map: torch.Tensor,
            level_fine: list[float]) -> Attribution:
    """An Attribution over an index of len(shares) items with one map (for the top item)."""
    total = 256.0
    scores = torch.tensor(shares) * total
    order = scores.argsort(descending=True)
    top = [TopItem(rank=r + 1, index=int(i), id=f"item{int(i)}", score=float(scores[i]), share=float(shares[i]),
                   metadata={"label": int(i) % 3}) for r, i in enumerate(order[:3])]
    fine = torch.tensor(level_fine) * total
    coarse = 2 * scores - fine
    return Attribution(
        scores=scores, level_scores=torch.stack([coarse, fine]),
        levels=[NoiseLevel(timestep=300, alpha=COARSE_AS[0], sigma=COARSE_AS[1]), NoiseLevel(timestep=100, alpha=FINE_AS[0], sigma=FINE_AS[1])],
        top=top, query_maps=query[None], source_maps=source_map[None], dominant_source=torch.zeros(16, 16, dtype=torch.long),
        config={"patch_size": 5, "top": 3, "maps": 1}, index=FINGERPRINT | {"items": len(shares)}, model="M", scheduler="S",
        image=image, source_images=[source],
    )


FINE_AS, COARSE_AS = (0.98, 0.2), (0.8, 0.6)


def _blob(dy: int = 0, dx: int = 0) -> torch.Tensor:
    grid = torch.zeros(16, 16)
    grid[4 + dy: 10 + dy, 5 + dx: 12 + dx] = 1.0
    grid[6 + dy, 7 + dx] = 3.0
    return grid


def test_full_scores_and_flags_from_objects():
    rng = np.random.default_rng(0)
    item = rng.integers(0, 256, (16, 16), dtype=np.uint8)
    copy_shifted = np.zeros_like(item)
    copy_shifted[1:, 3:] = item[:-1, :-3]  # the output shows the item moved down 1 and right 3
    shares = [0.5, 0.1, 0.1, 0.1, 0.1, 0.1]
    fine = [0.8, 0.04, 0.04, 0.04, 0.04, 0.04]
    flagged = _object(Image.fromarray(copy_shifted), Image.fromarray(item), shares, _blob(1, 3), _blob(), fine)
    other = rng.integers(0, 256, (16, 16), dtype=np.uint8)
    cleared = _object(Image.fromarray(other), Image.fromarray(item), shares, _blob(1, 3), _blob(), fine)
    ordinary = _object(Image.fromarray(other), Image.fromarray(item), [0.2] * 5 + [0.0], _blob(), _blob(),
                       [0.2] * 5 + [0.0])

    summary = aggregate([flagged, cleared, ordinary], full_scores=True)
    assert summary.basis == "full" and summary.outputs_full == 3 and summary.listed_mass == pytest.approx(1.0)
    assert summary.coverage == {"50%": 2, "90%": 5}  # totals 1.2, .4, .4, .4, .4, .2 over 3 outputs
    assert [round(item.total_share, 6) for item in summary.items] == [1.2, 0.4, 0.4, 0.4, 0.4, 0.2]
    assert summary.items[-1].id == "#5"  # never listed in a top-3: no id in the metadata

    [flag] = summary.flags
    assert flag.output == "result-1" and flag.item_id == "item0" and flag.exact
    assert flag.share == pytest.approx(0.8) and flag.ratio == pytest.approx(20)
    assert flag.alignment == pytest.approx(1.0) and flag.alignment_shift == (1, 3)
    assert flag.distance == pytest.approx(0.0) and flag.distance_shift == (1, 3)
    assert set(flag.pictures) == {"output", "source", "query_map", "source_map"}
    [other_evidence] = [e for e in summary.near_copies if not e.flagged]
    assert other_evidence.output == "result-2" and other_evidence.status == "cleared"
    assert any("pixel distance" in reason for reason in other_evidence.reasons)
    # JSON-only aggregation of the same objects: top-3 shares, the same flag
    topk = aggregate([flagged, cleared, ordinary])
    assert topk.basis == "top-k" and topk.listed_mass == pytest.approx((0.7 + 0.7 + 0.6) / 3)
    assert [e.output for e in topk.flags] == ["result-1"]
