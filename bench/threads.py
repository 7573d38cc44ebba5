"""The engine on a shared CPU: the default thread policy against torch's default and 1 thread, with
the machine to itself and with one competing busy process; and how fast the command line answers.

    python bench/threads.py [--repeats 5] [--write-docs]
    python bench/threads.py --quick                 # CI smoke run (tiny workload, 1 repeat)
    python bench/threads.py --cli-before ../main    # also time `--help` of another checkout (before/after)

Workload: what ``Attributor`` gives the engine for one existing image in the README's setting
(``nda_attribute``: 32x32x3 query, 3 noise levels x 2 draws, 65 training items of 32x32x3 (crops of
scikit-image's photos), patch 7, maps of the top 3, shared over levels), one call per measurement.

Thread settings, each measured with and without a competitor (``python -c "while True: pass"``,
started before and killed after the measurement):

* ``auto``: the default, :func:`diffusers_attr.threads.cpu_threads` with ``threads=None`` (the cores
  other processes leave free, decided at the start of the call, its 0.05 s look included);
* ``torch default``: one thread per core, what torch starts with;
* ``1``: one thread.

All six (setting, competitor) cells run once per round, in an order rotated from round to round, so
the machine's other load falls on all of them alike; medians over rounds. "other load" is the share
of all cores other processes (the competitor included) used during a measurement. Writes
``bench/results/threads_cpu[_quick].json`` and, with ``--write-docs``, the section "Engine threads
on a shared machine" of ``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine_info, write_docs_section  # noqa: E402
from bench.engine import OtherLoad, make_photos  # noqa: E402
from diffusers_attr.engine import nda_attribute  # noqa: E402
from diffusers_attr.threads import cpu_threads  # noqa: E402

SETTINGS = ("auto", "torch default", "1")
COMPETITION = ("alone", "one busy process")
LEVELS = ((0.95, 0.31), (0.9, 0.44), (0.83, 0.56))  # (alpha, sigma) near training timesteps 100, 200, 300


def workload(items: int, size: int, draws: int) -> dict:
    """Queries ``[levels x draws, 3, size, size]`` and training items, as the Attributor builds them."""
    train, x0 = make_photos(items + 1, seed=0)
    if size != 32:
        resize = lambda x: torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", antialias=True)
        train, x0 = resize(train), resize(x0[None])[0]
    generator = torch.Generator().manual_seed(0)
    alpha = torch.tensor([a for a, _ in LEVELS for _ in range(draws)], dtype=torch.float64)
    sigma = torch.tensor([s for _, s in LEVELS for _ in range(draws)], dtype=torch.float64)
    eps = torch.randn((len(alpha), *x0.shape), generator=generator)
    queries = (alpha.float()[:, None, None, None] * x0 + sigma.float()[:, None, None, None] * eps).contiguous()
    return {"queries": queries, "train": train[:items].contiguous(), "alpha": alpha, "sigma": sigma}


def attribute(work: dict) -> None:
    nda_attribute(work["queries"], work["train"], alpha=work["alpha"], sigma=work["sigma"], patch_size=7,
                  maps=3, shared_maps=True)


def measure_once(work: dict, setting: str, torch_default: int) -> dict:
    """One timed engine call with the thread ``setting``; the chosen count and the others' load."""
    with OtherLoad() as load:
        start = time.perf_counter()
        threads = None if setting == "auto" else (torch_default if setting == "torch default" else int(setting))
        with cpu_threads(threads) as used:
            attribute(work)
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "threads": used, "other_load": load.other_share}


def start_competitor() -> subprocess.Popen:
    competitor = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    time.sleep(0.5)  # running, and seen by the scheduler
    return competitor


def stop(competitor: subprocess.Popen | None) -> None:
    if competitor is not None:
        competitor.kill()
        competitor.wait()


def engine_rounds(work: dict, repeats: int) -> list[dict]:
    torch_default = torch.get_num_threads()
    attribute(work)  # warm-up
    cells = [(setting, competition) for competition in COMPETITION for setting in SETTINGS]
    rows = []
    for round_ in range(repeats):
        order = cells[round_ % len(cells):] + cells[: round_ % len(cells)]
        for setting, competition in order:
            competitor = start_competitor() if competition != "alone" else None
            try:
                row = measure_once(work, setting, torch_default)
            finally:
                stop(competitor)
            rows.append({"round": round_, "setting": setting, "competition": competition, **row})
            print(f"round {round_} {setting:13s} {competition:16s} {row['seconds']:7.2f} s "
                  f"({row['threads']} threads, other load {row['other_load']:.0%})", file=sys.stderr)
    return rows


def cli_seconds(root: Path, argv: list[str], repeats: int) -> list[float]:
    """Wall seconds of ``diffusers-attr ARGV`` (the console script; ``python -m diffusers_attr`` where it
    is not installed) with the package from ``root``."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    script = shutil.which("diffusers-attr")
    command = [script] if script else [sys.executable, "-m", "diffusers_attr"]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([*command, *argv], env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def python_seconds(code: str, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def cli_rounds(repeats: int, before: Path | None) -> dict:
    """Interleaved start-up times: bare Python, importing torch, and `--help`, `show IMAGE` and
    `index info INDEX` of this checkout (and `--help` of another one, when given)."""
    from PIL import Image

    from diffusers_attr import AttributionIndex
    from diffusers_attr.provenance import write_png

    folder = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    image, index = folder / "image.png", folder / "index"
    write_png(Image.new("L", (8, 8)), image, {"format": "diffusers-attr", "top": [], "levels": []})
    AttributionIndex.from_images(torch.zeros(4, 1, 8, 8), progress=False).save(index)
    runs = {"python -c pass": lambda: python_seconds("pass", 1),
            "python -c 'import torch'": lambda: python_seconds("import torch", 1),
            "diffusers-attr --help": lambda: cli_seconds(ROOT, ["--help"], 1),
            "diffusers-attr show IMAGE": lambda: cli_seconds(ROOT, ["show", str(image)], 1),
            "diffusers-attr index info INDEX": lambda: cli_seconds(ROOT, ["index", "info", str(index)], 1)}
    if before is not None:
        runs["diffusers-attr --help (before)"] = lambda: cli_seconds(before, ["--help"], 1)
    times: dict[str, list[float]] = {name: [] for name in runs}
    try:
        for _ in range(repeats):
            for name, run in runs.items():
                times[name] += run()
    finally:
        shutil.rmtree(folder)
    return times


def summarise(rows: list[dict]) -> dict:
    cells = {}
    for setting in SETTINGS:
        for competition in COMPETITION:
            mine = [r for r in rows if r["setting"] == setting and r["competition"] == competition]
            seconds = [r["seconds"] for r in mine]
            cells[f"{setting} | {competition}"] = {
                "median_s": statistics.median(seconds), "min_s": min(seconds), "max_s": max(seconds),
                "threads": sorted({r["threads"] for r in mine}),
                "other_load_median": statistics.median(r["other_load"] for r in mine),
            }
    # ratios per round (side by side), then their median and range
    ratios: dict[str, list[float]] = {}
    for round_ in sorted({r["round"] for r in rows}):
        at = {(r["setting"], r["competition"]): r["seconds"] for r in rows if r["round"] == round_}
        for setting in SETTINGS:
            ratios.setdefault(f"{setting}: busy / alone", []).append(at[(setting, COMPETITION[1])] / at[(setting, COMPETITION[0])])
        for competition in COMPETITION:
            best = min(at[(s, competition)] for s in SETTINGS if s != "auto")
            ratios.setdefault(f"auto / best fixed, {competition}", []).append(at[("auto", competition)] / best)
        ratios.setdefault("busy: auto / 1 thread alone", []).append(at[("auto", COMPETITION[1])] / at[("1", COMPETITION[0])])
    return {"cells": cells, "ratios": {k: {"median": statistics.median(v), "min": min(v), "max": max(v), "values": v}
                                       for k, v in ratios.items()}}


def docs_section(report: dict) -> str:
    cells, ratios, machine = report["summary"]["cells"], report["summary"]["ratios"], report["machine"]
    lines = [
        "## Engine threads on a shared machine",
        "",
        "The engine with the default thread policy (`auto`: the cores other processes leave free,",
        "`diffusers_attr/threads.py`) against torch's default (one thread per core) and 1 thread, without",
        "(\"alone\") and with one competing busy process (`python -c \"while True: pass\"`). Workload: one",
        f"existing image as the Attributor gives it to the engine (`nda_attribute`, {report['config']['size']}x"
        f"{report['config']['size']}x3, 3 noise levels x 2",
        f"draws, {report['config']['items']} training items, patch 7, maps of the top 3). Each round runs all six",
        "cells once, in an order rotated between rounds; ratios are taken within a round, then their median",
        "and range over rounds are shown. Produced by `bench/threads.py`.",
        "",
        f"* Machine: {machine['cpu_model']}, {machine['cpu_cores']} cores; torch {machine['torch']}, Python "
        f"{machine['python']}; commit {machine['git_commit']}; {report['date']}.",
        f"* Command: `{report['command']}` ({report['runtime_seconds'] / 60:.1f} min, {report['config']['repeats']} rounds).",
        "",
        "| threads | competition | median s | range s | threads used | other load (median) |",
        "|---|---|---:|---:|---|---:|",
    ]
    for key, cell in cells.items():
        setting, competition = key.split(" | ")
        lines.append(f"| {setting} | {competition} | {cell['median_s']:.2f} | {cell['min_s']:.2f}-{cell['max_s']:.2f} | "
                     f"{', '.join(map(str, cell['threads']))} | {cell['other_load_median']:.0%} |")
    lines += ["", "| ratio (within each round) | median | range |", "|---|---:|---:|"]
    for key, ratio in ratios.items():
        lines.append(f"| {key} | {ratio['median']:.2f}x | {ratio['min']:.2f}-{ratio['max']:.2f}x |")
    cli = report.get("cli")
    if cli:
        lines += ["", f"Command-line start-up, wall seconds (median of {report['config']['cli_repeats']} interleaved runs, range):", "",
                  "| command | median s | range s |", "|---|---:|---:|"]
        for name, times in cli.items():
            lines.append(f"| `{name}` | {statistics.median(times):.2f} | {min(times):.2f}-{max(times):.2f} |")
    notes = report.get("notes")
    if notes:
        lines += ["", notes.strip()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=None, help="rounds of the six cells (default 5; quick 1)")
    parser.add_argument("--items", type=int, default=None, help="training items (default 65; quick 8)")
    parser.add_argument("--cli-repeats", type=int, default=None, help="runs of each start-up command (default 7; quick 2)")
    parser.add_argument("--cli-before", type=Path, default=None, help="another checkout whose `--help` is timed too")
    parser.add_argument("--quick", action="store_true", help="tiny workload, one round (CI smoke run)")
    parser.add_argument("--notes", type=Path, default=ROOT / "bench" / "threads_notes.md",
                        help="markdown appended to the docs section (default bench/threads_notes.md)")
    parser.add_argument("--out-dir", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--write-docs", action="store_true", help="rewrite the section of docs/benchmarks.md")
    parser.add_argument("--docs-only", action="store_true", help="only rewrite the section from the results file")
    args = parser.parse_args(argv)
    if args.docs_only:
        report = json.loads((args.out_dir / f"threads_cpu{'_quick' if args.quick else ''}.json").read_text())
        if args.notes and args.notes.exists():
            report["notes"] = args.notes.read_text()
        write_docs_section("threads", docs_section(report))
        return 0
    repeats = args.repeats or (1 if args.quick else 5)
    items = args.items or (8 if args.quick else 65)
    cli_repeats = args.cli_repeats or (2 if args.quick else 7)
    started = time.perf_counter()
    size = 16 if args.quick else 32
    work = workload(items, size, draws=2)
    report = {
        "command": "python " + " ".join(shlex.quote(a) for a in ["bench/threads.py", *argv]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": machine_info("cpu"),
        "config": {"repeats": repeats, "items": items, "size": size, "quick": args.quick, "cli_repeats": cli_repeats},
    }
    report["rows"] = engine_rounds(work, repeats)
    report["summary"] = summarise(report["rows"])
    report["cli"] = cli_rounds(cli_repeats, args.cli_before.resolve() if args.cli_before else None)
    report["runtime_seconds"] = time.perf_counter() - started
    if args.notes and args.notes.exists():
        report["notes"] = args.notes.read_text()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / f"threads_cpu{'_quick' if args.quick else ''}.json"
    out.write_text(json.dumps(report, indent=1) + "\n")
    section = docs_section(report)
    print(section)
    print(f"\nwrote {out.relative_to(ROOT)}")
    if args.write_docs:
        write_docs_section("threads", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
