"""Aggregating many attribution results: time and memory of ``diffusers_attr.report.aggregate``.

    python bench/aggregate.py [--outputs 1000 3000 10000] [--items 5000] [--write-docs]

Writes a synthetic run folder per size (what ``AttributedPipeline(...)(...).save(..., heatmaps=False)``
writes, minus the arrays: a 16x16 PNG with the attribution embedded plus its ``.attribution.json``
sidecar; top-10 items drawn from a skewed popularity over ``--items`` index items with label, source,
licence and contributor metadata), then times ``aggregate(folder)`` (default settings: JSON top items,
near-copy screening on) and, in a second pass under ``tracemalloc``, its peak Python/numpy heap. The
model-card and HTML writers are timed on the largest summary. Results go to
``bench/results/aggregate.json``; ``--write-docs`` rewrites the ``aggregate`` section of
``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine_info, write_docs_section  # noqa: E402
from diffusers_attr.provenance import sidecar_path, write_png, write_sidecar
from diffusers_attr.report import aggregate, scan_run, write_model_card, write_summary_html

LEVELS = ((100.0, 0.9857, 0.1686), (200.0, 0.9475, 0.3197), (300.0, 0.8864, 0.4630))
LABELS = list(range(10))
SOURCES = ["scan-a", "scan-b", "web"]
LICENCES = ["CC0-1.0", "CC-BY-4.0", "BSD-3-Clause", "proprietary"]


def synthetic_metadata(rng: random.Random, n_items: int, popularity: np.ndarray, top: int, fingerprint: dict) -> dict:
    """One result in the ``Attribution.to_dict()`` schema with plausible numbers."""
    picked = np.random.default_rng(rng.randrange(2**32)).choice(n_items, size=top, replace=False, p=popularity)
    raw = sorted((rng.random() ** 3 for _ in range(top)), reverse=True)
    listed = rng.uniform(0.1, 0.5)
    shares = [listed * r / sum(raw) for r in raw]
    total = 256.0
    items, levels = [], [{"timestep": t, "alpha": a, "sigma": s, "step": 40 - 5 * k, "top_scores": []} for k, (t, a, s) in enumerate(LEVELS)]
    for rank, (index, share) in enumerate(zip(picked.tolist(), shares), start=1):
        score = share * total
        weights = [2.0, 1.0, 0.5]
        parts = [score * 3 * w / sum(weights) for w in weights]  # mean over levels is the score
        for level, part in zip(levels, parts):
            level["top_scores"].append(part)
        items.append({
            "rank": rank, "index": index, "id": f"item-{index:06d}", "score": score, "share": share,
            "metadata": {
                "label": LABELS[index % 10], "source": SOURCES[index % 3], "licence": LICENCES[(index // 3) % 4],
                "contributor": f"contributor-{index % 200:03d}",
            },
        })
    return {
        "format": "diffusers-attr", "version": 1, "model": "SyntheticPipeline(UNet2DModel)", "scheduler": "DDIMScheduler",
        "index": fingerprint,
        "config": {"patch_size": 5, "topk": None, "scales": None, "timesteps": None, "sigmas": None,
                   "mode": "trajectory", "draws": 2, "seed": 0, "top": top, "maps": 3},
        "top": items, "levels": levels, "total_score": total,
    }


def write_run(folder: Path, outputs: int, n_items: int, top: int = 10, seed: int = 0) -> float:
    """A synthetic run folder of ``outputs`` PNGs with embedded metadata and sidecars; returns seconds."""
    start = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    weights = 1.0 / np.arange(1, n_items + 1) ** 0.8
    popularity = weights / weights.sum()
    fingerprint = {"space": {"kind": "pixel", "item_shape": [1, 16, 16], "normalisation": "[-1,1]", "resolution": None},
                   "items": n_items, "ids_sha256": "0" * 64}
    picture = Image.fromarray(np.random.default_rng(seed).integers(0, 256, (16, 16), dtype=np.uint8))
    for k in range(outputs):
        metadata = synthetic_metadata(rng, n_items, popularity, top, fingerprint)
        path = folder / f"image-{k:05d}.png"
        write_png(picture, path, metadata)
        write_sidecar(sidecar_path(path), metadata)
    return time.perf_counter() - start


def measure(folder: Path) -> dict:
    start = time.perf_counter()
    summary = aggregate(folder)
    seconds = time.perf_counter() - start
    tracemalloc.start()
    aggregate(folder)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"outputs": summary.outputs, "seconds": seconds, "per_output_ms": 1000 * seconds / summary.outputs,
            "peak_heap_mib": peak / 2**20, "items_seen": summary.items_seen, "summary": summary}


def scan_peak(folder: Path) -> float:
    """Peak heap (MiB) of ``scan_run``, which holds every result's metadata at once: the comparison."""
    tracemalloc.start()
    folder_contents = scan_run(folder)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del folder_contents
    return peak / 2**20


def write_docs(result: dict, path: Path) -> None:
    rows = "\n".join(
        f"| {r['outputs']:,} | {r['seconds']:.2f} | {r['per_output_ms']:.2f} | {r['peak_heap_mib']:.1f} | {r['items_seen']:,} |"
        for r in result["runs"]
    )
    writers = result["writers"]
    section = f"""## Aggregating attribution over many outputs (model-card report)

`diffusers_attr.report.aggregate` streams over a run folder (one image's metadata in memory at a
time) and keeps one accumulator per *index item*, so its memory grows with the index, not with the
number of outputs. Synthetic run folders: per output a 16x16 PNG with the attribution embedded and
its `.attribution.json` sidecar (top {result['config']['top']} items over an index of
{result['config']['items']:,} items with label/source/licence/contributor metadata); default settings
(shares from the JSON top items, near-copy screening on). Peak heap: `tracemalloc` peak during
`aggregate` (Python objects and numpy arrays), a second pass.

| outputs | seconds | ms per output | peak heap (MiB) | items seen |
|---:|---:|---:|---:|---:|
{rows}

For comparison, holding every result in memory (`scan_run` on the same {result['runs'][-1]['outputs']:,} outputs)
peaks at {result['scan_run_peak_heap_mib']:.0f} MiB. The remaining growth of `aggregate`'s peak comes from the folder
listing (the file names, which `iter_run` sorts) and the items seen (bounded by the index).

On the {result['runs'][-1]['outputs']:,}-output summary, `write_model_card` takes {writers['model_card_s']:.2f} s and
`write_summary_html` (matplotlib plots, {writers['html_items']} item rows with thumbnails) {writers['html_s']:.2f} s.
Most of the aggregation time is reading each PNG (PIL verifies it and inflates its metadata chunk)
and its sidecar, which `scan_run` checks against each other so that corrupted sidecars are reported.

Measured {result['date'][:10]} on {result['machine']['cpu_cores']} CPU cores, Python {result['machine']['python']}
(commit {result['machine']['git_commit'] or 'unknown'}; 1-minute load average {result['machine']['load_average_1min']} when
it finished, other processes included): `{result['command']}`. Raw numbers:
`bench/results/aggregate.json`."""
    write_docs_section("aggregate", section, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--outputs", type=int, nargs="+", default=[1000, 3000, 10000])
    parser.add_argument("--items", type=int, default=5000, help="index size (default 5000)")
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--work-dir", default=None, help="where to write the synthetic folders (default: a temp dir)")
    parser.add_argument("--write-docs", action="store_true", help="rewrite the aggregate section of docs/benchmarks.md")
    args = parser.parse_args(argv)

    runs = []
    with tempfile.TemporaryDirectory(dir=args.work_dir) as work:
        for outputs in args.outputs:
            folder = Path(work) / f"run-{outputs}"
            written = write_run(folder, outputs, args.items, args.top)
            run = measure(folder)
            run["write_seconds"] = written
            summary = run.pop("summary")
            runs.append(run)
            print(f"{outputs:>6} outputs: aggregate {run['seconds']:.2f} s ({run['per_output_ms']:.2f} ms/output), "
                  f"peak heap {run['peak_heap_mib']:.1f} MiB (writing the folder took {written:.1f} s)", flush=True)
        holding_all = scan_peak(folder)
        print(f"for comparison, scan_run (every result in memory) peaks at {holding_all:.1f} MiB on {outputs} outputs")
        start = time.perf_counter()
        write_model_card(summary, Path(work) / "README.md")
        card_s = time.perf_counter() - start
        start = time.perf_counter()
        write_summary_html(summary, Path(work) / "report.html")
        html_s = time.perf_counter() - start
    print(f"model card {card_s:.2f} s, HTML report {html_s:.2f} s")
    result = {
        "command": "python bench/aggregate.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "config": {"items": args.items, "top": args.top},
        "runs": runs,
        "writers": {"model_card_s": card_s, "html_s": html_s, "html_items": min(len(summary.items), 200)},
        "scan_run_peak_heap_mib": holding_all,
    }
    out = ROOT / "bench" / "results" / "aggregate.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    if args.write_docs:
        write_docs(result, ROOT / "docs" / "benchmarks.md")
        print("updated docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
