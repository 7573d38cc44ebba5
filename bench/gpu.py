"""The engine on one GPU at Stable-Diffusion scale: ONE script, under 6 minutes on an H200.

    python bench/gpu.py                 # on the GPU machine: bench/results/engine_cuda.json + docs section
    python bench/gpu.py --dry-run       # the same code at tiny sizes on CPU (tests/bench/test_gpu.py runs it)

Settings: 4x64x64 p=7 (SD 1.5/2 at 512 px), 4x128x128 p=7 (SDXL at 1024 px), 16x64x64 p=5 (SD3/Flux
at 512 px), each with N in {1k, 10k, 100k} synthetic latents (smooth random fields, not white noise)
in a float32 memory-mapped file on disk, streamed by the engine (pinned read-ahead on CUDA). One query,
one noise level (alpha=0.8, sigma=0.6): the figure is seconds per image per level. When a run would
exceed ``--budget`` seconds, the engine is timed on the first items of the file and the time is
extrapolated linearly in N (the engine is linear in N; the table says "extrapolated").

Figures per run: seconds, nominal TFLOP/s (2 * d FLOPs per query window, key window and item,
d = C * p^2, key windows (H-p+1)(W-p+1) per item: the dense work of DESIGN.md §2), the share of the
GPU's dense fp32 and tf32 peaks (``--fp32-peak``, ``--tf32-peak``; H200 defaults 67 and 495 TFLOP/s),
peak GPU memory and host-to-device throughput of the index file. The published algorithm
(``bench/published_baseline.py``) is timed on the same GPU on a few items and scaled per item.
Needs torch (+ triton for the fused kernel) and safetensors only: no diffusers on the GPU machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ROOT, machine_info, write_docs_section  # noqa: E402
from published_baseline import published_scores  # noqa: E402

from diffusers_attr.engine import nda_scores  # noqa: E402

SETTINGS = [("4x64x64 p=7", (4, 64, 64), 7), ("4x128x128 p=7", (4, 128, 128), 7), ("16x64x64 p=5", (16, 64, 64), 5)]
SIZES = [1_000, 10_000, 100_000]
DRY_SETTINGS = [("2x12x12 p=5", (2, 12, 12), 5), ("1x8x8 p=3", (1, 8, 8), 3)]
DRY_SIZES = [20, 60]
ALPHA, SIGMA = 0.8, 0.6


class MemmapSource:
    """A training source over a float32 ``[N, C, H, W]`` file on disk, read chunk by chunk."""

    def __init__(self, path: Path, shape: tuple[int, int, int, int], limit: int | None = None):
        self.array = np.memmap(path, dtype=np.float32, mode="r", shape=shape)
        self.n = min(limit or shape[0], shape[0])

    def __len__(self) -> int:
        return self.n

    @property
    def item_shape(self) -> tuple[int, int, int]:
        return tuple(self.array.shape[1:])

    def iter_chunks(self, chunk_size: int) -> Iterator[torch.Tensor]:
        for start in range(0, self.n, chunk_size):
            yield torch.from_numpy(np.array(self.array[start:min(start + chunk_size, self.n)]))

    def gather(self, indices: list[int]) -> torch.Tensor:
        return torch.from_numpy(np.array(self.array[indices]))


def write_latents(path: Path, n: int, shape: tuple[int, int, int], seed: int = 0, block: int = 1024) -> None:
    """``n`` smooth random latents (white noise blurred by a 4x box filter, unit spread) into ``path``."""
    c, h, w = shape
    out = np.memmap(path, dtype=np.float32, mode="w+", shape=(n, c, h, w))
    g = torch.Generator().manual_seed(seed)
    for start in range(0, n, block):
        m = min(block, n - start)
        noise = torch.randn(m, c, h + 3, w + 3, generator=g)
        smooth = torch.nn.functional.avg_pool2d(noise, 4, stride=1) * 4.0
        out[start:start + m] = smooth.numpy()
    out.flush()


def nominal_flops(shape: tuple[int, int, int], p: int, n: int) -> float:
    c, h, w = shape
    return 2.0 * c * p * p * h * w * (h - p + 1) * (w - p + 1) * n


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_engine(source: MemmapSource, query: torch.Tensor, p: int, device: torch.device, precision: str) -> float:
    _sync(device)
    t0 = time.perf_counter()
    scores = nda_scores(query.to(device), source, alpha=ALPHA, sigma=SIGMA, patch_size=p, precision=precision,
                        memory_budget=8 << 30 if device.type == "cuda" else 64 << 20)
    _sync(device)
    assert torch.isfinite(scores).all(), "non-finite scores"
    return time.perf_counter() - t0


def h2d_throughput(source: MemmapSource, device: torch.device) -> float | None:
    """GB/s of reading the file and copying it to the GPU through pinned memory (None on CPU)."""
    if device.type != "cuda":
        return None
    t0, total = time.perf_counter(), 0
    for chunk in source.iter_chunks(4096):
        chunk.pin_memory().to(device, non_blocking=True)
        total += chunk.numel() * 4
    torch.cuda.synchronize(device)
    return total / (time.perf_counter() - t0) / 1e9


def time_published(train: torch.Tensor, query: torch.Tensor, p: int) -> float:
    """Seconds per item of the published algorithm on ``train`` (on its device)."""
    published_scores(query, train[:1], alpha=ALPHA, sigma=SIGMA, patch_size=p)  # warm-up
    _sync(train.device)
    t0 = time.perf_counter()
    published_scores(query, train, alpha=ALPHA, sigma=SIGMA, patch_size=p)
    _sync(train.device)
    return (time.perf_counter() - t0) / len(train)


def items_in(path: Path, shape: tuple[int, int, int]) -> int:
    """How many float32 items of ``shape`` the file at ``path`` holds (0 when absent)."""
    return path.stat().st_size // (4 * int(np.prod(shape))) if path.exists() else 0


def run_setting(name: str, shape: tuple[int, int, int], p: int, sizes: list[int], device: torch.device,
                folder: Path, budget: float, precisions: list[str], baseline_items: int) -> list[dict]:
    """Rows of one setting: every N and precision, the file written only as far as a run reads it."""
    path = folder / f"{name.split()[0]}.f32"
    query = (torch.randn(1, *shape, generator=torch.Generator().manual_seed(1)) * SIGMA).to(device)
    rows: list[dict] = []
    per_item = None
    for n in sizes:
        timed = n if per_item is None or per_item * n <= budget else max(1, min(n, int(budget / per_item)))
        if items_in(path, shape) < timed:
            write_latents(path, timed, shape)
        source = MemmapSource(path, (items_in(path, shape), *shape), limit=timed)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        first = len(rows)
        for precision in precisions:
            seconds = time_engine(source, query, p, device, precision) * n / timed
            row = dict(setting=name, n=n, timed_items=timed, extrapolated=timed < n, precision=precision,
                       seconds=seconds, tflops=nominal_flops(shape, p, n) / seconds / 1e12)
            if device.type == "cuda":
                row["peak_gpu_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
            rows.append(row)
        per_item = rows[first]["seconds"] / n
        rows[first]["h2d_gb_s"] = h2d_throughput(source, device)
    train = MemmapSource(path, (items_in(path, shape), *shape)).gather(list(range(baseline_items))).to(device)
    published = time_published(train, query[0], p)
    for row in rows:
        row["published_seconds"] = published * row["n"]
        row["speedup_vs_published"] = row["published_seconds"] / row["seconds"]
    return rows


def markdown(rows: list[dict], fp32_peak: float, tf32_peak: float) -> str:
    lines = ["| setting | N | precision | s / image / level | TFLOP/s | % fp32 peak | % tf32 peak | peak GPU GiB "
             "| H2D GB/s | published (s) | speed-up |", "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        gib = f"{r['peak_gpu_gib']:.2f}" if "peak_gpu_gib" in r else "-"
        h2d = f"{r['h2d_gb_s']:.1f}" if r.get("h2d_gb_s") else "-"
        note = " (extrapolated)" if r["extrapolated"] else ""
        lines.append(f"| {r['setting']} | {r['n']:,} | {r['precision']} | {r['seconds']:.3g}{note} | {r['tflops']:.2f} "
                     f"| {100 * r['tflops'] / fp32_peak:.1f} | {100 * r['tflops'] / tf32_peak:.1f} | {gib} | {h2d} "
                     f"| {r['published_seconds']:.3g} | {r['speedup_vs_published']:.0f}x |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on CPU: checks the script, measures nothing")
    parser.add_argument("--budget", type=float, default=15.0, help="seconds one timed engine call may take")
    parser.add_argument("--fp32-peak", type=float, default=67.0, help="dense fp32 TFLOP/s of the GPU (H200: 67)")
    parser.add_argument("--tf32-peak", type=float, default=495.0, help="dense tf32 TFLOP/s of the GPU (H200: 495)")
    parser.add_argument("--out", default=None, help="results JSON (default bench/results/engine_cuda.json; none for --dry-run)")
    parser.add_argument("--write-docs", action="store_true", help="rewrite the GPU section of docs/benchmarks.md")
    args = parser.parse_args(argv)
    if args.dry_run:
        device, settings, sizes, precisions, baseline_items = torch.device("cpu"), DRY_SETTINGS, DRY_SIZES, ["exact"], 4
    elif torch.cuda.is_available():
        device, settings, sizes, precisions, baseline_items = torch.device("cuda"), SETTINGS, SIZES, ["exact", "tf32"], 8
    else:
        parser.error("no CUDA device: run on a GPU machine, or use --dry-run to check the script on CPU")
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="gpu-bench-") as folder:
        for name, shape, p in settings:
            rows += run_setting(name, shape, p, sizes, device, Path(folder), args.budget, precisions, baseline_items)
            print(markdown([r for r in rows if r["setting"] == name], args.fp32_peak, args.tf32_peak), flush=True)
    report = dict(machine=machine_info(device.type), dry_run=args.dry_run, alpha=ALPHA, sigma=SIGMA,
                  fp32_peak_tflops=args.fp32_peak, tf32_peak_tflops=args.tf32_peak, rows=rows)
    # A dry run measures nothing: it writes a file only where --out asks, never over the GPU figures.
    out = Path(args.out) if args.out else None if args.dry_run else ROOT / "bench" / "results" / "engine_cuda.json"
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1) + "\n")
    if args.write_docs and not args.dry_run:
        gpu = report["machine"].get("gpu", "the GPU")
        write_docs_section("gpu", f"## Engine on one GPU\n\nMachine: {gpu}. Command: `python bench/gpu.py "
                           f"--write-docs`.\n\n" + markdown(rows, args.fp32_peak, args.tf32_peak) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
