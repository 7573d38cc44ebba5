"""Fixtures of the report tests: a hand-built set of results with known numbers, and one real run of
the embedded digits DDPM whose index holds planted copies of two of its outputs.

The hand-built set (``handbuilt_results``): an index of 6 items, 4 outputs listing their top 2 items,
2 noise levels (listed noisiest first, to check the sorting):

    output  top items (share)      finest-level shares   coarse-level shares
    o1      item0 .5, item1 .3     .5, .3                 .5, .3
    o2      item0 .4, item2 .2     .4, .2                 .4, .2
    o3      item3 .6, item1 .1     .9, .05                .3, .15     <- one item dominates fine detail
    o4      item0 .3, item3 .25    .3, .25                .3, .25

Scores are shares times ``total_score`` = 100 and the mean of the levels is the score.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

FINE, COARSE = (0.98, 0.2), (0.8, 0.6)  # (alpha, sigma): nu = 0.2 and 0.6
FINGERPRINT = {"space": {"kind": "pixel", "item_shape": [1, 16, 16]}, "items": 6, "ids_sha256": "a" * 64}
ITEM_METADATA = [
    {"label": 0, "licence": "CC0-1.0", "contributor": "alice", "caption": "zero"},
    {"label": 1, "licence": "CC-BY-4.0", "contributor": "bob", "caption": "one"},
    {"label": 0, "licence": "CC0-1.0", "contributor": "bob", "caption": "another zero"},
    {"label": 1, "licence": "CC-BY-4.0", "contributor": "carol", "caption": "another one"},
    {"label": 2, "licence": "CC0-1.0", "contributor": "alice", "caption": "two"},
    {"label": 2, "licence": "CC0-1.0", "contributor": "carol", "caption": "another two"},
]
# output -> [(item, share, fine factor)]; the coarse factor is 2 - fine so the mean is the share
OUTPUTS = {
    "o1": [(0, 0.5, 1.0), (1, 0.3, 1.0)],
    "o2": [(0, 0.4, 1.0), (2, 0.2, 1.0)],
    "o3": [(3, 0.6, 1.5), (1, 0.1, 0.5)],
    "o4": [(0, 0.3, 1.0), (3, 0.25, 1.0)],
}


def result(top: list[tuple[int, float, float]], fingerprint: dict | None = None) -> dict:
    """One result in the ``Attribution.to_dict()`` schema."""
    total = 100.0
    items = [
        {"rank": rank, "index": item, "id": f"item{item}", "score": share * total, "share": share,
         "metadata": copy.deepcopy(ITEM_METADATA[item])}
        for rank, (item, share, _) in enumerate(top, start=1)
    ]
    fine = [share * total * factor for _, share, factor in top]
    coarse = [share * total * (2 - factor) for _, share, factor in top]
    return {
        "format": "diffusers-attr", "version": 1, "model": "HandBuilt(UNet2DModel)", "scheduler": "DDIMScheduler",
        "index": copy.deepcopy(fingerprint or FINGERPRINT),
        "config": {"patch_size": 5, "topk": None, "mode": "trajectory", "top": 2, "maps": 1},
        "top": items,
        "levels": [
            {"timestep": 300.0, "alpha": COARSE[0], "sigma": COARSE[1], "step": 10, "top_scores": coarse},
            {"timestep": 100.0, "alpha": FINE[0], "sigma": FINE[1], "step": 30, "top_scores": fine},
        ],
        "total_score": total,
    }


@pytest.fixture
def handbuilt_results() -> list[dict]:
    return [result(top) for top in OUTPUTS.values()]


@pytest.fixture(scope="session")
def planted_run(tmp_path_factory) -> dict:
    """10 real generations of the embedded digits DDPM (DDIM, 20 steps), attributed against the 1000
    training digits plus two planted items: output 0 exactly, and output 1 shifted 2 px down and right
    (background fill). Saved as a run folder with heatmaps, thumbnails and arrays."""
    from diffusers import DDIMScheduler

    from diffusers_attr import AttributedPipeline, AttributionIndex
    from diffusers_attr.training.digits import digits_split, load_digits_ddpm

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        pipe = load_digits_ddpm()
        pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)
        train, _ = digits_split()
        count = 10
        generated = pipe(batch_size=count, num_inference_steps=20, output_type="np",
                         generator=torch.Generator().manual_seed(0)).images
        x = torch.from_numpy(generated).permute(0, 3, 1, 2) * 2 - 1
        shifted = torch.full_like(x[1:2], -1.0)
        shifted[..., 2:, 2:] = x[1:2, ..., :-2, :-2]
        items = torch.cat([train.images, x[0:1], shifted])
        ids = train.ids + ["planted-exact", "planted-shifted"]
        metadata = [
            {"label": int(label), "source": "scikit-learn digits", "licence": "BSD-3-Clause"} for label in train.labels.tolist()
        ] + [{"label": -1, "source": "planted", "licence": "unknown"}] * 2
        index = AttributionIndex.from_images(items, ids=ids, metadata=metadata, progress=False)
        folder = tmp_path_factory.mktemp("planted-run")
        index.save(folder / "index")
        wrapped = AttributedPipeline(pipe, index, patch_size=5, progress=False)
        output = wrapped(batch_size=count, num_inference_steps=20, generator=torch.Generator().manual_seed(0))
        output.save(folder / "run")
    finally:
        torch.set_num_threads(threads)
    return {"run": folder / "run", "index": folder / "index", "count": count}


@pytest.fixture
def planted_copy(planted_run, tmp_path) -> Path:
    """A copy of the planted run folder that a test may damage."""
    import shutil

    target = tmp_path / "run"
    shutil.copytree(planted_run["run"], target)
    return target


@pytest.fixture
def write_folder():
    """``write_folder(folder, results)``: PNGs with their sidecars, like a run folder without arrays."""
    return _write_folder


def _write_folder(folder: Path, results: list[dict], *, names: list[str] | None = None) -> list[Path]:
    """PNGs (16x16, metadata embedded) with their sidecars, like a run folder without arrays."""
    from PIL import Image

    from diffusers_attr.provenance import sidecar_path, write_png, write_sidecar

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, metadata in enumerate(results):
        path = folder / (names[k] if names else f"image-{k:03d}.png")
        write_png(Image.new("L", (16, 16), 30 * k), path, metadata)
        write_sidecar(sidecar_path(path), metadata)
        paths.append(path)
    return paths
