"""Generation time with and without AttributedPipeline on the embedded digits DDPM (CPU), and the
attribution time per image.

    python bench/pipeline.py [--images 4] [--steps 50] [--repeats 3] [--write-docs]

Calls are interleaved (plain, recorder only, wrapped) in each repeat so that the machine's noise hits
all three alike; the table reports medians and the ratio to the plain call.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import machine_info, write_docs_section  # noqa: E402
from diffusers_attr import AttributedPipeline, AttributionIndex  # noqa: E402
from diffusers_attr.recorder import TrajectoryRecorder  # noqa: E402
from diffusers_attr.training.digits import digits_split, load_digits_ddpm  # noqa: E402


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def measure(images: int, steps: int, repeats: int, patch_size: int) -> dict:
    from diffusers import DDIMScheduler

    pipe = load_digits_ddpm()
    pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    train, _ = digits_split()
    index = AttributionIndex.from_images(train.images, ids=train.ids, metadata=train.metadata, progress=False)
    wrapped = AttributedPipeline(pipe, index, patch_size=patch_size, progress=False)

    def call(target) -> None:
        target(batch_size=images, num_inference_steps=steps, generator=torch.Generator().manual_seed(0))

    def recorded() -> None:
        with TrajectoryRecorder(pipe, nearest=wrapped.levels):  # what the wrapper records
            call(pipe)

    call(wrapped)  # warm-up
    times: dict[str, list[float]] = {"plain": [], "recorder only": [], "wrapped": []}
    for _ in range(repeats):
        times["plain"].append(timed(lambda: call(pipe)))
        times["recorder only"].append(timed(recorded))
        times["wrapped"].append(timed(lambda: call(wrapped)))
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {
        "images": images, "steps": steps, "repeats": repeats, "patch_size": patch_size,
        "index_items": len(index), "levels": len(wrapped.levels), "times_s": times, "median_s": medians,
        "attribution_s_per_image": (medians["wrapped"] - medians["plain"]) / images,
    }


def docs_section(result: dict, command: str, machine: dict) -> str:
    plain = result["median_s"]["plain"]
    rows = "\n".join(
        f"| {name} | {seconds:.2f} | {seconds / plain:.2f}x |" for name, seconds in result["median_s"].items()
    )
    return f"""## Pipeline wrapper (digits DDPM, CPU)

Machine: {machine['cpu_model']}, {machine['cpu_cores']} cores, torch {machine['torch']}. Command: `{command}`.

The embedded digits DDPM (16x16, DDIM {result['steps']} steps), a batch of {result['images']} images,
attributed against the {result['index_items']} training digits at {result['levels']} noise levels
(patch {result['patch_size']}, trajectory mode). Median of {result['repeats']} interleaved repeats.

| call | seconds per batch | vs plain |
|---|---|---|
{rows}

Attribution adds **{result['attribution_s_per_image']:.2f} s per image**; recording the trajectory alone
costs {result['median_s']['recorder only'] / plain - 1:+.1%} (within noise). Raw figures:
[`bench/results/pipeline_cpu.json`](../bench/results/pipeline_cpu.json).
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--patch-size", type=int, default=5)
    parser.add_argument("--write-docs", action="store_true", help="rewrite the section in docs/benchmarks.md")
    args = parser.parse_args(argv)
    command = "python bench/pipeline.py " + " ".join(argv if argv is not None else sys.argv[1:])
    result = measure(args.images, args.steps, args.repeats, args.patch_size)
    machine = machine_info("cpu")
    out = ROOT / "bench" / "results" / "pipeline_cpu.json"
    out.write_text(json.dumps({"command": command, "machine": machine, **result}, indent=1))
    section = docs_section(result, command.strip(), machine)
    print(section)
    if args.write_docs:
        write_docs_section("pipeline", section, ROOT / "docs" / "benchmarks.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
