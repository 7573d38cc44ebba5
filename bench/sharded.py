"""Sharded scoring on CPU: the training set split over W processes (torch.distributed, gloo), each
with one thread, against one process with one thread, on the same queries and training set.

    python bench/sharded.py [--items 4000] [--world 2] [--repeats 3] [--write-docs]

Each repeat times one process scoring the whole set (one thread, then W threads), then W processes
scoring one shard each (from
a barrier after start-up and data loading to the gathered ``[B, N]`` on every process; the slowest
process counts). Process start-up is reported separately. The gathered scores must equal the
single-process scores to float32 rounding. Figures go to ``bench/results/sharded_cpu.json`` and,
with ``--write-docs``, to the ``sharded`` section of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine_info, write_docs_section  # noqa: E402
from bench.engine import ALPHA, SIGMA, make_photos  # noqa: E402
from diffusers_attr.engine import gather_scores, nda_scores, shard  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "sharded_cpu.json"
PATCH_SIZE = 7


def problem(items: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The engine benchmark's 32x32x3 photo crops and a batch of three noisy queries."""
    train, x0 = make_photos(items)
    noise = torch.randn(3, *x0.shape, generator=torch.Generator().manual_seed(1))
    return train, ALPHA * x0 + SIGMA * noise


def score(queries: torch.Tensor, train, group=None) -> torch.Tensor:
    return nda_scores(queries, train, alpha=ALPHA, sigma=SIGMA, patch_size=PATCH_SIZE, process_group=group)


def worker(rank: int, world: int, init_file: str, items: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    started = time.perf_counter()
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        train, queries = problem(items)
        mine = shard(train, rank, world)
        dist.barrier()
        t0 = time.perf_counter()
        full = gather_scores(score(queries, mine, dist.group.WORLD))
        seconds = time.perf_counter() - t0
        torch.save({"seconds": seconds, "startup": t0 - started, "scores": full}, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def sharded_run(world: int, items: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        mp.spawn(worker, args=(world, str(Path(tmp) / "init"), items, tmp), nprocs=world)
        wall = time.perf_counter() - t0
        ranks = [torch.load(Path(tmp) / f"rank{r}.pt") for r in range(world)]
    return {"seconds": max(r["seconds"] for r in ranks), "startup": max(r["startup"] for r in ranks),
            "wall": wall, "scores": ranks[0]["scores"]}


def measure(items: int, world: int, repeats: int) -> dict:
    machine = machine_info("cpu")  # before the runs: its load average is the machine's, not ours
    torch.set_num_threads(1)
    train, queries = problem(items)
    single, threaded, sharded, startup, wall, worst = [], [], [], [], [], 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        reference = score(queries, train)
        single.append(time.perf_counter() - t0)
        torch.set_num_threads(world)
        t0 = time.perf_counter()
        score(queries, train)
        threaded.append(time.perf_counter() - t0)
        torch.set_num_threads(1)
        run = sharded_run(world, items)
        sharded.append(run["seconds"])
        startup.append(run["startup"])
        wall.append(run["wall"])
        worst = max(worst, float(((run["scores"] - reference).abs() / reference.abs().amax()).max()))
    return {
        "setting": f"32x32x3 photo crops, p={PATCH_SIZE}, 3 queries, N={items}",
        "world": world, "repeats": repeats,
        "single_s": statistics.median(single), "sharded_s": statistics.median(sharded),
        "speedup": statistics.median(single) / statistics.median(sharded),
        "threaded_s": statistics.median(threaded),
        "startup_s": statistics.median(startup), "sharded_wall_s": statistics.median(wall),
        "max_difference_relative_to_top_score": worst,
        "single_all": single, "threaded_all": threaded, "sharded_all": sharded,
        "machine": machine,
    }


def docs_section(report: dict) -> str:
    m = report["machine"]
    return "\n".join([
        "## Sharded scoring (torch.distributed, CPU)",
        "",
        f"`python bench/sharded.py --items {report['setting'].split('N=')[1]} --world {report['world']} "
        f"--write-docs`: {report['setting']}; one process with one thread, then with {report['world']} threads, "
        f"against {report['world']} gloo processes with one thread each, median of {report['repeats']} interleaved repeats. Machine: "
        f"{m['cpu_model']}, {m['cpu_cores']} cores, torch {m['torch']}, load average {m['load_average_1min']} at the start.",
        "",
        "| run | scoring time |",
        "|---|---|",
        f"| 1 process, 1 thread | {report['single_s']:.2f} s |",
        f"| 1 process, {report['world']} threads | {report['threaded_s']:.2f} s "
        f"({report['single_s'] / report['threaded_s']:.2f}x) |",
        f"| {report['world']} processes, one shard each (barrier to gathered scores) | {report['sharded_s']:.2f} s "
        f"({report['speedup']:.2f}x) |",
        f"| {report['world']} processes, wall time including start-up | {report['sharded_wall_s']:.2f} s |",
        "",
        f"Inside each process, joining the process group and loading the data took {report['startup_s']:.1f} s; "
        "the rest of the wall time is spawning the processes and importing torch. The gathered scores "
        f"differ from the single-process scores by at most {report['max_difference_relative_to_top_score']:.1e} "
        "of the top score (float32 summation order).",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=4000)
    parser.add_argument("--world", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args(argv)
    report = measure(args.items, args.world, args.repeats)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=1) + "\n")
    section = docs_section(report)
    print(section)
    if args.write_docs:
        write_docs_section("sharded", section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
